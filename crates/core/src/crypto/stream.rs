//! The document format: a versioned header followed by 64 KiB chunks, each sealed with
//! AES-256-GCM under a key derived for this one document (the STREAM construction).
//!
//! ```text
//! header  = "PCUL" | version (1 byte) | tenant key version (u32 BE) | salt (32 bytes)
//! chunk i = AES-256-GCM(doc key, nonce = 0^7 | i (u32 BE) | last (1 byte), aad, plaintext_i) | tag
//! doc key = HKDF-SHA256(ikm = tenant key, salt = header salt,
//!                       info = "portcullis document v1" | tenant id | matter id | document id)
//! aad     = "portcullis document v1" | tenant id | matter id | document id | header
//! ```
//!
//! Nonce safety (NIST SP 800-38D, section 8): a GCM key must never see the same nonce twice.
//! Every document has its own key, derived from a fresh 256-bit random salt, so two documents
//! share a key only if their salts collide (probability about n²/2²⁵⁷, negligible). Within a
//! document the nonce is the chunk counter plus the last-chunk flag, so nonces never repeat; the
//! 32-bit counter bounds a document to 2³² chunks (256 TiB), far above the upload limit, and the
//! 2³² invocation limit for one key is therefore never reached. Because nonces are deterministic,
//! the limit on random nonces does not apply.
//!
//! What the construction detects: a changed bit (tag), chunks reordered or dropped (counter in
//! the nonce), truncation (the final chunk carries the last flag, and a stream that ends before
//! it is an error), and a document or chunk moved to another document or tenant (their ids are
//! in both the key derivation and the associated data).

use crate::error::{Error, Result};
use crate::ids::{DocumentId, MatterId, TenantId};
use crate::ports::ByteStream;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::SecureRandom;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::ops::Range;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Authentication tag bytes per chunk.
pub const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"PCUL";
const VERSION: u8 = 1;
const SALT: usize = 32;
/// Bytes before the first chunk.
pub const HEADER_LEN: usize = 4 + 1 + 4 + SALT;
const LABEL: &[u8] = b"portcullis document v1";

/// The parsed header of a stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub key_version: u32,
    pub salt: [u8; SALT],
}

impl Header {
    /// A header with a fresh random salt.
    pub fn new(key_version: u32) -> Result<Self> {
        let mut salt = [0u8; SALT];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| Error::internal("random number generator failed"))?;
        Ok(Self { key_version, salt })
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let (magic, rest) = h.split_at_mut(4);
        magic.copy_from_slice(MAGIC);
        let (version, rest) = rest.split_at_mut(1);
        version.copy_from_slice(&[VERSION]);
        let (kv, salt) = rest.split_at_mut(4);
        kv.copy_from_slice(&self.key_version.to_be_bytes());
        salt.copy_from_slice(&self.salt);
        h
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = || Error::Integrity("the document header is damaged or not a Portcullis document".into());
        if bytes.len() != HEADER_LEN || bytes.get(..4) != Some(MAGIC.as_slice()) {
            return Err(bad());
        }
        if bytes.get(4) != Some(&VERSION) {
            return Err(Error::Integrity("the document uses an unknown format version".into()));
        }
        let kv: [u8; 4] = bytes.get(5..9).and_then(|s| s.try_into().ok()).ok_or_else(bad)?;
        let salt: [u8; SALT] = bytes.get(9..).and_then(|s| s.try_into().ok()).ok_or_else(bad)?;
        Ok(Self { key_version: u32::from_be_bytes(kv), salt })
    }
}

/// Seals and opens the chunks of one document.
pub struct DocCipher {
    key: LessSafeKey,
    aad: Vec<u8>,
}

impl std::fmt::Debug for DocCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocCipher(..)")
    }
}

impl DocCipher {
    /// The cipher of document `doc` on `matter` of `tenant`, from the tenant key its header
    /// names. The matter is bound too, so a document moved to another matter (with other
    /// access rights) no longer opens.
    pub fn new(
        tenant_key: &[u8],
        header: &Header,
        tenant: TenantId,
        matter: MatterId,
        doc: DocumentId,
    ) -> Result<Self> {
        let mut info = LABEL.to_vec();
        info.extend_from_slice(tenant.as_uuid().as_bytes());
        info.extend_from_slice(matter.as_uuid().as_bytes());
        info.extend_from_slice(doc.as_uuid().as_bytes());
        let prk = Salt::new(HKDF_SHA256, &header.salt).extract(tenant_key);
        let info_parts = [info.as_slice()];
        let okm = prk.expand(&info_parts, &AES_256_GCM).map_err(|_| Error::internal("key derivation failed"))?;
        let key = LessSafeKey::new(UnboundKey::from(okm));
        let mut aad = info;
        aad.extend_from_slice(&header.encode());
        Ok(Self { key, aad })
    }

    fn nonce(index: u32, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        let (_, rest) = n.split_at_mut(7);
        let (counter, flag) = rest.split_at_mut(4);
        counter.copy_from_slice(&index.to_be_bytes());
        flag.copy_from_slice(&[u8::from(last)]);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypt one chunk in place, appending its tag.
    pub fn seal(&self, index: u32, last: bool, buf: &mut BytesMut) -> Result<()> {
        self.key
            .seal_in_place_append_tag(Self::nonce(index, last), Aad::from(self.aad.as_slice()), buf)
            .map_err(|_| Error::internal("encryption failed"))
    }

    /// Encrypt one chunk whose plaintext is `buf[..gathered]` followed by `rest`, leaving the
    /// sealed chunk (ciphertext and tag) in `buf`. `rest` is encrypted straight from where it
    /// lies into `buf` when `buf` is already long enough (a reused buffer), so it is never
    /// copied; a new buffer gets `rest` copied in first, since it has no initialised room to
    /// write into. Either way the output is the same, byte for byte.
    fn seal_parts(&self, index: u32, last: bool, buf: &mut BytesMut, gathered: usize, rest: &[u8]) -> Result<()> {
        let sealed_len = gathered + rest.len() + TAG;
        if buf.len() < sealed_len {
            buf.truncate(gathered);
            buf.extend_from_slice(rest);
            return self.seal(index, last, buf);
        }
        buf.truncate(sealed_len);
        let (head, tail) = buf.split_at_mut(gathered);
        self.key
            .seal_in_place_scatter(Self::nonce(index, last), Aad::from(self.aad.as_slice()), head, rest, tail)
            .map_err(|_| Error::internal("encryption failed"))
    }

    /// Decrypt one chunk (ciphertext and tag) in place, leaving the plaintext.
    pub fn open(&self, index: u32, last: bool, buf: &mut BytesMut) -> Result<()> {
        let n = self
            .key
            .open_in_place(Self::nonce(index, last), Aad::from(self.aad.as_slice()), buf.as_mut())
            .map_err(|_| Error::Integrity(format!("chunk {index} failed its integrity check")))?
            .len();
        buf.truncate(n);
        Ok(())
    }
}

/// How many chunks a document of `size` bytes has (an empty one still has its final chunk).
pub fn chunk_count(size: u64) -> u64 {
    if size == 0 { 1 } else { size.div_ceil(CHUNK as u64) }
}

/// The stored size of a document of `size` plaintext bytes.
pub fn stored_len(size: u64) -> u64 {
    HEADER_LEN as u64 + size + chunk_count(size) * TAG as u64
}

/// Which stored bytes hold the plaintext range `plain` of a document of `size` bytes: the
/// ciphertext range, the index of its first chunk, and how many plaintext bytes of that first
/// chunk to skip.
pub fn locate(plain: &Range<u64>, size: u64) -> (Range<u64>, u32, usize) {
    let c = CHUNK as u64;
    let first = plain.start / c;
    let last = plain.end.saturating_sub(1).max(plain.start) / c;
    let stride = c + TAG as u64;
    let start = HEADER_LEN as u64 + first * stride;
    let end = (HEADER_LEN as u64 + (last + 1) * stride).min(stored_len(size));
    let skip = usize::try_from(plain.start - first * c).unwrap_or(0);
    (start..end, u32::try_from(first).unwrap_or(u32::MAX), skip)
}

fn io_err(e: Error) -> std::io::Error {
    std::io::Error::other(e)
}

/// Stored bytes of one full chunk.
const STRIDE: usize = CHUNK + TAG;

/// Copy `src` into `buf` at `at`: over bytes already there (a reused buffer) or appended.
fn put_at(buf: &mut BytesMut, at: usize, src: &[u8]) {
    match buf.get_mut(at..at + src.len()) {
        Some(dst) => dst.copy_from_slice(src),
        None => {
            buf.truncate(at);
            buf.extend_from_slice(src);
        }
    }
}

/// Encrypt a plaintext stream: the header, then the sealed chunks. Holds at most one chunk plus
/// one input piece.
///
/// Plaintext that arrives split across input pieces is gathered into the chunk's buffer; the
/// piece that completes a chunk is encrypted from where it lies, without a copy, whenever the
/// chunk's buffer can be reused. The buffer of the chunk handed out last is reused once its
/// consumer has dropped it (checked, never assumed): an allocation and a copy of 64 KiB per
/// chunk were most of the gap to raw AES-GCM. Otherwise a new buffer, with room for the tag,
/// is filled and sealed in place.
pub fn encrypt(cipher: DocCipher, header: &Header, input: ByteStream) -> ByteStream {
    struct State {
        cipher: DocCipher,
        input: ByteStream,
        /// Input received but not yet sealed.
        pending: Bytes,
        /// The chunk handed out last, whose buffer the next chunk reuses if no one else holds it.
        previous: Option<Bytes>,
        index: u32,
        done: bool,
    }
    let head = Bytes::copy_from_slice(&header.encode());
    let state = State { cipher, input, pending: Bytes::new(), previous: None, index: 0, done: false };
    let body = futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let mut buf = match s.previous.take().map(Bytes::try_into_mut) {
            Some(Ok(reused)) if reused.len() == STRIDE => reused,
            _ => BytesMut::with_capacity(STRIDE),
        };
        // `buf[..gathered]` holds copied plaintext; `rest` is the input that completes the
        // chunk. It is the last chunk only if the input ends before another byte comes.
        let mut gathered = 0;
        let (rest, last) = loop {
            let room = CHUNK - gathered;
            if s.pending.len() > room {
                break (s.pending.split_to(room), false);
            }
            match s.input.next().await {
                Some(Ok(next)) if s.pending.len() == room && !next.is_empty() => {
                    break (std::mem::replace(&mut s.pending, next), false);
                }
                Some(Ok(next)) => {
                    put_at(&mut buf, gathered, &s.pending);
                    gathered += s.pending.len();
                    s.pending = next;
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None => break (std::mem::take(&mut s.pending), true),
            }
        };
        s.done = last;
        let sealed = s.cipher.seal_parts(s.index, last, &mut buf, gathered, &rest).map_err(io_err);
        // The counter must never wrap (a repeated nonce); the upload limit keeps documents far
        // below 2^32 chunks, and this stops one that is not.
        match s.index.checked_add(1) {
            Some(i) => s.index = i,
            None => s.done = true,
        }
        let chunk = buf.freeze();
        if !s.done {
            s.previous = Some(chunk.clone());
        }
        Some((sealed.map(|()| chunk), s))
    });
    Box::pin(futures::stream::once(async move { Ok(head) }).chain(body))
}

/// Move up to `want - buf.len()` bytes from the front of `pending` to the end of `buf`, growing
/// `buf` at most once, to at least a whole chunk, rather than step by step.
fn gather(buf: &mut BytesMut, pending: &mut Bytes, want: usize) {
    let n = want.saturating_sub(buf.len()).min(pending.len());
    if buf.capacity() - buf.len() < n {
        let mut grown = BytesMut::with_capacity((buf.len() + n).max(STRIDE));
        grown.extend_from_slice(buf);
        *buf = grown;
    }
    buf.extend_from_slice(&pending.split_to(n));
}

/// Decrypt stored chunks starting at chunk `first` (the input begins at that chunk's first
/// byte), yielding plaintext from `skip` bytes into the first chunk, `take` bytes in all.
/// `last_index` is the document's final chunk; input that ends before it is a truncation, and
/// input that goes on after it fails the final chunk's check.
///
/// A chunk that lies whole in an input piece held by no one else is opened where it lies, with
/// neither a copy nor an allocation (the local blob store reads whole chunks). Only chunks that
/// straddle pieces, or lie in shared pieces, are copied, once, into a buffer of a chunk's size.
pub fn decrypt(
    cipher: DocCipher,
    input: ByteStream,
    first: u32,
    last_index: u32,
    skip: usize,
    take: u64,
) -> ByteStream {
    struct State {
        cipher: DocCipher,
        input: ByteStream,
        /// Stored bytes of the chunk being gathered (and, from an owned piece, those after it).
        buf: BytesMut,
        /// Input received but not yet moved to `buf`.
        pending: Bytes,
        index: u32,
        skip: usize,
        left: u64,
        last_index: u32,
    }
    let state = State {
        cipher,
        input,
        buf: BytesMut::new(),
        pending: Bytes::new(),
        index: first,
        skip,
        left: take,
        last_index,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.left == 0 {
            return None;
        }
        let last = s.index == s.last_index;
        // Gather one sealed chunk: a full one, or for the final chunk everything up to the end.
        let want = if last { usize::MAX } else { STRIDE };
        let ended = loop {
            if s.buf.len() >= want {
                break false;
            }
            if s.pending.is_empty() {
                match s.input.next().await {
                    Some(Ok(bytes)) => s.pending = bytes,
                    Some(Err(e)) => {
                        s.left = 0;
                        return Some((Err(e), s));
                    }
                    None => break true,
                }
            } else if s.buf.is_empty() {
                // A piece we own outright becomes the buffer without a copy.
                match std::mem::take(&mut s.pending).try_into_mut() {
                    Ok(owned) => s.buf = owned,
                    Err(shared) => {
                        s.pending = shared;
                        gather(&mut s.buf, &mut s.pending, want);
                    }
                }
            } else {
                gather(&mut s.buf, &mut s.pending, want);
            }
        };
        if ended && !last || s.buf.len() < TAG {
            let e = Error::Integrity(format!("the document ends early, at chunk {}", s.index));
            s.left = 0;
            return Some((Err(io_err(e)), s));
        }
        let rest = s.buf.split_off(want.min(s.buf.len()));
        let mut chunk = std::mem::replace(&mut s.buf, rest);
        if let Err(e) = s.cipher.open(s.index, last, &mut chunk) {
            s.left = 0;
            return Some((Err(io_err(e)), s));
        }
        let mut plain = chunk.split_off(s.skip.min(chunk.len()));
        s.skip = 0;
        let n = u64::try_from(plain.len()).unwrap_or(u64::MAX).min(s.left);
        plain.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        s.left -= n;
        s.index = s.index.saturating_add(1);
        Some((Ok(plain.freeze()), s))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    fn parts(data: &[u8], piece: usize) -> ByteStream {
        let v: Vec<std::io::Result<Bytes>> = data.chunks(piece.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Box::pin(futures::stream::iter(v))
    }

    async fn collect(mut s: ByteStream) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    async fn seal(t: TenantId, d: DocumentId, plain: &[u8]) -> Vec<u8> {
        let h = Header::new(1).unwrap();
        let c = DocCipher::new(&KEY, &h, t, MatterId::from_uuid(uuid::Uuid::nil()), d).unwrap();
        collect(encrypt(c, &h, parts(plain, 10_000))).await.unwrap()
    }

    async fn open_range(
        t: TenantId,
        d: DocumentId,
        stored: &[u8],
        size: u64,
        r: Range<u64>,
    ) -> std::io::Result<Vec<u8>> {
        let h = Header::parse(&stored[..HEADER_LEN]).map_err(io_err)?;
        let c = DocCipher::new(&KEY, &h, t, MatterId::from_uuid(uuid::Uuid::nil()), d).map_err(io_err)?;
        let (cr, first, skip) = locate(&r, size);
        let end = (cr.end as usize).min(stored.len());
        let start = (cr.start as usize).min(end);
        let last = u32::try_from(chunk_count(size) - 1).unwrap();
        collect(decrypt(c, parts(&stored[start..end], 7_777), first, last, skip, r.end - r.start)).await
    }

    #[tokio::test]
    async fn round_trips_at_every_boundary() {
        let (t, d) = (TenantId::new(), DocumentId::new());
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let plain = data(n);
            let stored = seal(t, d, &plain).await;
            assert_eq!(stored.len() as u64, stored_len(n as u64), "size {n}");
            let back = open_range(t, d, &stored, n as u64, 0..n as u64).await.unwrap();
            assert_eq!(back, plain, "size {n}");
        }
    }

    /// The format as defined, chunk by chunk: each chunk copied out whole and sealed in place.
    fn reference(c: &DocCipher, h: &Header, plain: &[u8]) -> Vec<u8> {
        let mut out = h.encode().to_vec();
        let pieces: Vec<&[u8]> = if plain.is_empty() { vec![&[]] } else { plain.chunks(CHUNK).collect() };
        for (i, piece) in pieces.iter().enumerate() {
            let mut buf = BytesMut::from(*piece);
            c.seal(i as u32, i + 1 == pieces.len(), &mut buf).unwrap();
            out.extend_from_slice(&buf);
        }
        out
    }

    #[tokio::test]
    async fn output_is_the_format_whatever_the_input_pieces_and_buffer_reuse() {
        let (t, m, d) = (TenantId::new(), MatterId::new(), DocumentId::new());
        let h = Header::new(1).unwrap();
        let cipher = || DocCipher::new(&KEY, &h, t, m, d).unwrap();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let plain = data(n);
            let want = reference(&cipher(), &h, &plain);
            for piece in [1_000, 10_000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7, 5 * CHUNK] {
                // Chunks dropped as they come (their buffers are reused) ...
                let got = collect(encrypt(cipher(), &h, parts(&plain, piece))).await.unwrap();
                assert_eq!(got, want, "size {n}, pieces of {piece}");
                // ... and chunks all held by the consumer (no buffer can be reused).
                let mut held = Vec::new();
                let mut out = encrypt(cipher(), &h, parts(&plain, piece));
                while let Some(c) = out.next().await {
                    held.push(c.unwrap());
                }
                assert_eq!(held.concat(), want, "size {n}, pieces of {piece}, held");
            }
        }
    }

    #[tokio::test]
    async fn decrypts_shared_and_uneven_pieces_and_refuses_trailing_bytes() {
        let (t, d) = (TenantId::new(), DocumentId::new());
        let n = 3 * CHUNK + 100;
        let plain = data(n);
        let stored = seal(t, d, &plain).await;
        let h = Header::parse(&stored[..HEADER_LEN]).unwrap();
        let cipher = || DocCipher::new(&KEY, &h, t, MatterId::from_uuid(uuid::Uuid::nil()), d).unwrap();
        let body = Bytes::copy_from_slice(&stored[HEADER_LEN..]);
        for piece in [1, 4_096, STRIDE - 1, STRIDE, STRIDE + 1, 3 * STRIDE] {
            // Slices of one buffer: none is held only by the decryptor.
            let shared: Vec<std::io::Result<Bytes>> =
                (0..body.len()).step_by(piece).map(|a| Ok(body.slice(a..(a + piece).min(body.len())))).collect();
            let out = decrypt(cipher(), Box::pin(futures::stream::iter(shared)), 0, 3, 0, n as u64);
            assert_eq!(collect(out).await.unwrap(), plain, "shared pieces of {piece}");
            let out = decrypt(cipher(), parts(&body, piece), 0, 3, 0, n as u64);
            assert_eq!(collect(out).await.unwrap(), plain, "owned pieces of {piece}");
        }
        let mut longer = body.to_vec();
        longer.extend_from_slice(b"extra");
        for piece in [STRIDE, longer.len()] {
            let out = decrypt(cipher(), parts(&longer, piece), 0, 3, 0, n as u64);
            assert!(is_integrity(collect(out).await.unwrap_err()), "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn ranges_decrypt_only_their_chunks() {
        let (t, d) = (TenantId::new(), DocumentId::new());
        let n = 5 * CHUNK + 123;
        let plain = data(n);
        let stored = seal(t, d, &plain).await;
        for r in [
            0..1u64,
            10..20,
            (CHUNK as u64 - 3)..(CHUNK as u64 + 3),
            (2 * CHUNK as u64)..(4 * CHUNK as u64 + 9),
            (n as u64 - 5)..n as u64,
        ] {
            let got = open_range(t, d, &stored, n as u64, r.clone()).await.unwrap();
            assert_eq!(got, &plain[r.start as usize..r.end as usize], "{r:?}");
            let (cr, _, _) = locate(&r, n as u64);
            assert!(cr.end - cr.start <= ((r.end - r.start) / CHUNK as u64 + 2) * (CHUNK + TAG) as u64);
        }
    }

    fn is_integrity(e: std::io::Error) -> bool {
        e.get_ref().and_then(|i| i.downcast_ref::<Error>()).is_some_and(|e| matches!(e, Error::Integrity(_)))
    }

    #[tokio::test]
    async fn tampering_is_detected() {
        let (t, d) = (TenantId::new(), DocumentId::new());
        let n = 3 * CHUNK + 100;
        let size = n as u64;
        let plain = data(n);
        let stored = seal(t, d, &plain).await;
        let stride = CHUNK + TAG;

        let mut flipped = stored.clone();
        flipped[HEADER_LEN + stride + 17] ^= 1;
        assert!(is_integrity(open_range(t, d, &flipped, size, 0..size).await.unwrap_err()));

        let mut swapped = stored.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + stride);
        let first: Vec<u8> = swapped[a..a + stride].to_vec();
        let second: Vec<u8> = swapped[b..b + stride].to_vec();
        swapped[a..a + stride].copy_from_slice(&second);
        swapped[b..b + stride].copy_from_slice(&first);
        assert!(is_integrity(open_range(t, d, &swapped, size, 0..size).await.unwrap_err()));

        let mut dropped = stored.clone();
        dropped.drain(HEADER_LEN + stride..HEADER_LEN + 2 * stride);
        assert!(is_integrity(open_range(t, d, &dropped, size, 0..size).await.unwrap_err()));

        // Truncated at a chunk boundary: every remaining chunk is intact, but the last is missing.
        let truncated = stored[..HEADER_LEN + 2 * stride].to_vec();
        assert!(is_integrity(open_range(t, d, &truncated, size, 0..size).await.unwrap_err()));

        // The same bytes read as another document, or as another tenant's.
        assert!(is_integrity(open_range(t, DocumentId::new(), &stored, size, 0..size).await.unwrap_err()));
        assert!(is_integrity(open_range(TenantId::new(), d, &stored, size, 0..size).await.unwrap_err()));

        let mut bad_header = stored.clone();
        bad_header[0] = b'X';
        assert!(is_integrity(open_range(t, d, &bad_header, size, 0..size).await.unwrap_err()));
    }
}
