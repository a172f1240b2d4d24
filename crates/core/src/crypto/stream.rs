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

/// Encrypt a plaintext stream: the header, then the sealed chunks. Holds at most one chunk plus
/// one input piece. Each plaintext byte is copied once, into a buffer that already has room for
/// the tag, and sealed there in place.
pub fn encrypt(cipher: DocCipher, header: &Header, input: ByteStream) -> ByteStream {
    struct State {
        cipher: DocCipher,
        input: ByteStream,
        /// Input received but not yet copied into a chunk.
        pending: Bytes,
        index: u32,
        done: bool,
    }
    let head = Bytes::copy_from_slice(&header.encode());
    let state = State { cipher, input, pending: Bytes::new(), index: 0, done: false };
    let body = futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let mut chunk = BytesMut::with_capacity(CHUNK + TAG);
        // Fill the chunk; it is the last one only if the input ends before another byte comes.
        let last = loop {
            let room = CHUNK - chunk.len();
            if !s.pending.is_empty() {
                let take = room.min(s.pending.len());
                chunk.extend_from_slice(&s.pending.split_to(take));
            }
            if chunk.len() == CHUNK && !s.pending.is_empty() {
                break false;
            }
            match s.input.next().await {
                Some(Ok(bytes)) => s.pending = bytes,
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None => break true,
            }
        };
        s.done = last;
        let sealed = s.cipher.seal(s.index, last, &mut chunk).map_err(io_err);
        // The counter must never wrap (a repeated nonce); the upload limit keeps documents far
        // below 2^32 chunks, and this stops one that is not.
        match s.index.checked_add(1) {
            Some(i) => s.index = i,
            None => s.done = true,
        }
        Some((sealed.map(|()| chunk.freeze()), s))
    });
    Box::pin(futures::stream::once(async move { Ok(head) }).chain(body))
}

/// Decrypt stored chunks starting at chunk `first` (the input begins at that chunk's first
/// byte), yielding plaintext from `skip` bytes into the first chunk, `take` bytes in all.
/// `last_index` is the document's final chunk; input that ends before it is a truncation.
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
        buf: BytesMut,
        index: u32,
        skip: usize,
        left: u64,
        last_index: u32,
    }
    let state =
        State { cipher, input, buf: BytesMut::with_capacity(CHUNK + TAG), index: first, skip, left: take, last_index };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.left == 0 {
            return None;
        }
        let last = s.index == s.last_index;
        // Gather one sealed chunk: a full one, or whatever remains before the final chunk's end.
        let ended = loop {
            if s.buf.len() >= CHUNK + TAG {
                break false;
            }
            match s.input.next().await {
                // A piece we own outright becomes the buffer without a copy.
                Some(Ok(bytes)) if s.buf.is_empty() => {
                    s.buf = bytes.try_into_mut().unwrap_or_else(|shared| BytesMut::from(shared.as_ref()))
                }
                Some(Ok(bytes)) => s.buf.extend_from_slice(&bytes),
                Some(Err(e)) => {
                    s.left = 0;
                    return Some((Err(e), s));
                }
                None => break true,
            }
        };
        if ended && !last || s.buf.len() < TAG {
            let e = Error::Integrity(format!("the document ends early, at chunk {}", s.index));
            s.left = 0;
            return Some((Err(io_err(e)), s));
        }
        let take_len = if last { s.buf.len() } else { CHUNK + TAG };
        let rest = s.buf.split_off(take_len.min(s.buf.len()));
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
