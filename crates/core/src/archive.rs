//! The archive format shared by backups and tenant exports: a tar stream encrypted with age to
//! an X25519 recipient. The first entry is a version marker, the last a manifest naming every
//! entry with its size and SHA-256, so a reader knows at the end whether it saw exactly what was
//! written. Entries are written from streams (a piece at a time) and their hashes collected as
//! the bytes pass, so an archive of any size is made in bounded memory; the ciphertext's own
//! SHA-256 is collected too, for a signed manifest kept beside the archive.
//!
//! The writer is synchronous and writes into a buffer the caller drains after each call
//! ([`ArchiveWriter::take_output`]), so async code can feed it from a database cursor or a blob
//! stream and hand the output to an upload without a thread per archive.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// The name of the first entry, and the start of its content (a format label follows).
pub const VERSION_ENTRY: &str = "VERSION";
/// The format this module writes and reads.
pub const FORMAT: &str = "portcullis-archive-v1";
/// The name of the last entry.
pub const MANIFEST_ENTRY: &str = "manifest.json";
/// A manifest larger than this is refused (it lists entries, it does not hold data).
const MAX_MANIFEST: u64 = 256 * 1024 * 1024;
const BLOCK: u64 = 512;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The identity given does not open it (another recipient's archive, or not age at all).
    #[error("the archive is not encrypted to this identity (or is not an age file): {0}")]
    NotForThisKey(String),
    /// Decryption or the tar structure failed part-way: the archive was cut short or altered.
    #[error("the archive is damaged or truncated: {0}")]
    Damaged(String),
    /// Readable, but not what the manifest says or not this format.
    #[error("the archive does not match its manifest: {0}")]
    Mismatch(String),
    /// The caller's visitor refused an entry (its own message).
    #[error("{0}")]
    Rejected(String),
    #[error("archive I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// One entry as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The last entry: what the archive holds, and what it is (`about`, chosen by the caller:
/// backup kind, schema version, node, tenant...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub about: serde_json::Value,
    /// Every entry before the manifest, in order (the version marker first).
    pub entries: Vec<EntryInfo>,
}

/// The encrypted archive's own size and SHA-256 (hex), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub size: u64,
    pub sha256: String,
}

/// Where the age stream writes: a buffer shared with the writer, drained by the caller.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct OpenEntry {
    name: String,
    size: u64,
    written: u64,
    hash: digest::Context,
}

/// Writes one archive. Call [`begin`](Self::begin), [`write`](Self::write) (any number of
/// times), [`end`](Self::end) per entry, draining [`take_output`](Self::take_output) as you go,
/// then [`finish`](Self::finish).
pub struct ArchiveWriter {
    age: age::stream::StreamWriter<Sink>,
    out: Arc<Mutex<Vec<u8>>>,
    mtime: u64,
    entries: Vec<EntryInfo>,
    open: Option<OpenEntry>,
    cipher: digest::Context,
    cipher_len: u64,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter").field("entries", &self.entries.len()).finish_non_exhaustive()
    }
}

fn hex_of(ctx: digest::Context) -> String {
    hex::encode(ctx.finish().as_ref())
}

impl ArchiveWriter {
    /// Start an archive to `recipient`; `label` names what it holds (for example
    /// `backup`), written in the version entry after [`FORMAT`]. `created` is the entries'
    /// modification time.
    pub fn new(
        recipient: &age::x25519::Recipient,
        label: &str,
        created: time::OffsetDateTime,
    ) -> Result<Self, ArchiveError> {
        let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| ArchiveError::Io(std::io::Error::other(e.to_string())))?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let age = encryptor.wrap_output(Sink(out.clone()))?;
        let mut w = Self {
            age,
            out,
            mtime: u64::try_from(created.unix_timestamp()).unwrap_or(0),
            entries: Vec::new(),
            open: None,
            cipher: digest::Context::new(&digest::SHA256),
            cipher_len: 0,
        };
        w.add(VERSION_ENTRY, format!("{FORMAT} {label}\n").as_bytes())?;
        Ok(w)
    }

    /// A whole small entry at once.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        self.begin(name, data.len() as u64)?;
        self.write(data)?;
        self.end()
    }

    /// Start an entry of exactly `size` bytes.
    pub fn begin(&mut self, name: &str, size: u64) -> Result<(), ArchiveError> {
        if self.open.is_some() {
            return Err(ArchiveError::Mismatch(format!("entry {name} begun before the previous one ended")));
        }
        let mut header = tar::Header::new_ustar();
        header.set_path(name).map_err(|e| ArchiveError::Mismatch(format!("entry name {name:?}: {e}")))?;
        header.set_size(size);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        self.age.write_all(header.as_bytes())?;
        self.open =
            Some(OpenEntry { name: name.to_string(), size, written: 0, hash: digest::Context::new(&digest::SHA256) });
        Ok(())
    }

    /// Append to the open entry.
    pub fn write(&mut self, data: &[u8]) -> Result<(), ArchiveError> {
        let open = self.open.as_mut().ok_or_else(|| ArchiveError::Mismatch("write outside an entry".into()))?;
        open.written = open.written.saturating_add(data.len() as u64);
        if open.written > open.size {
            return Err(ArchiveError::Mismatch(format!(
                "entry {} is longer than the {} bytes declared",
                open.name, open.size
            )));
        }
        open.hash.update(data);
        self.age.write_all(data)?;
        Ok(())
    }

    /// Close the open entry; it must have received exactly its declared size.
    pub fn end(&mut self) -> Result<(), ArchiveError> {
        let open = self.open.take().ok_or_else(|| ArchiveError::Mismatch("no entry to end".into()))?;
        if open.written != open.size {
            return Err(ArchiveError::Mismatch(format!(
                "entry {} got {} of the {} bytes declared",
                open.name, open.written, open.size
            )));
        }
        let pad = (BLOCK - open.size % BLOCK) % BLOCK;
        self.age.write_all(&vec![0u8; usize::try_from(pad).unwrap_or(0)])?;
        self.entries.push(EntryInfo { name: open.name, size: open.size, sha256: hex_of(open.hash) });
        Ok(())
    }

    /// The encrypted bytes produced since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        let bytes = std::mem::take(&mut *self.out.lock().unwrap_or_else(|p| p.into_inner()));
        self.cipher.update(&bytes);
        self.cipher_len = self.cipher_len.saturating_add(bytes.len() as u64);
        bytes
    }

    /// Write the manifest and the end of the archive. Returns the manifest, the last encrypted
    /// bytes (to send after everything taken before), and the digest of the whole ciphertext.
    pub fn finish(
        mut self,
        about: serde_json::Value,
        created_at: String,
    ) -> Result<(Manifest, Vec<u8>, Digest), ArchiveError> {
        let manifest = Manifest { format: FORMAT.to_string(), created_at, about, entries: self.entries.clone() };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| ArchiveError::Io(std::io::Error::other(e)))?;
        self.add(MANIFEST_ENTRY, &text)?;
        self.age.write_all(&[0u8; 1024])?;
        let Self { age, out, mut cipher, mut cipher_len, .. } = self;
        age.finish()?;
        let tail = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
        cipher.update(&tail);
        cipher_len = cipher_len.saturating_add(tail.len() as u64);
        Ok((manifest, tail, Digest { size: cipher_len, sha256: hex_of(cipher) }))
    }
}

/// Passes reads through, hashing and counting them.
struct Hashing<'a, R> {
    inner: &'a mut R,
    hash: digest::Context,
    len: u64,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(got) = buf.get(..n) {
            self.hash.update(got);
        }
        self.len = self.len.saturating_add(n as u64);
        Ok(n)
    }
}

/// An I/O error met while decrypting or reading the tar structure: the archive is damaged.
fn damaged(e: std::io::Error) -> ArchiveError {
    ArchiveError::Damaged(e.to_string())
}

/// Read an archive from `input` with `identity`, calling `visit` with every entry's name and
/// content (a reader it may read fully, partly or not at all) between the version marker and
/// the manifest. Every entry's hash is checked against the manifest at the end, so what
/// `visit` saw is confirmed only when this returns `Ok`: a caller that writes as it goes must
/// write somewhere it can throw away. `expect_label` is the version entry's label.
pub fn read<R: Read>(
    input: R,
    identity: &age::x25519::Identity,
    expect_label: &str,
    mut visit: impl FnMut(&str, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<Manifest, ArchiveError> {
    let decryptor = age::Decryptor::new(input).map_err(|e| ArchiveError::NotForThisKey(e.to_string()))?;
    let plain = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| ArchiveError::NotForThisKey(e.to_string()))?;
    let mut tar = tar::Archive::new(plain);
    let mut seen: Vec<EntryInfo> = Vec::new();
    let mut manifest: Option<Manifest> = None;
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = entry.path().map_err(damaged)?.to_string_lossy().into_owned();
        if manifest.is_some() {
            return Err(ArchiveError::Mismatch(format!("entry {name} after the manifest")));
        }
        if seen.is_empty() && name != VERSION_ENTRY {
            return Err(ArchiveError::Mismatch(format!("first entry is {name}, not the {VERSION_ENTRY} marker")));
        }
        if name == MANIFEST_ENTRY {
            if entry.size() > MAX_MANIFEST {
                return Err(ArchiveError::Mismatch("manifest too large".into()));
            }
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(damaged)?;
            manifest =
                Some(serde_json::from_slice(&text).map_err(|e| ArchiveError::Mismatch(format!("manifest: {e}")))?);
            continue;
        }
        let mut h = Hashing { inner: &mut entry, hash: digest::Context::new(&digest::SHA256), len: 0 };
        if seen.is_empty() {
            let mut marker = String::new();
            (&mut h).take(1024).read_to_string(&mut marker).map_err(damaged)?;
            if marker != format!("{FORMAT} {expect_label}\n") {
                return Err(ArchiveError::Mismatch(format!(
                    "version marker {:?}: not a {FORMAT} {expect_label} archive",
                    marker.trim_end()
                )));
            }
        } else {
            visit(&name, &mut h)?;
        }
        std::io::copy(&mut h, &mut std::io::sink()).map_err(damaged)?;
        seen.push(EntryInfo { name, size: h.len, sha256: hex_of(h.hash) });
    }
    let manifest = manifest.ok_or_else(|| ArchiveError::Damaged("the archive ends before its manifest".into()))?;
    if manifest.format != FORMAT {
        return Err(ArchiveError::Mismatch(format!("format {:?}", manifest.format)));
    }
    if manifest.entries != seen {
        let first = manifest.entries.iter().zip(&seen).find(|(a, b)| a != b).map(|(a, _)| a.name.clone());
        return Err(ArchiveError::Mismatch(match first {
            Some(name) => format!("entry {name} differs from its manifest line"),
            None => format!("{} entries listed, {} found", manifest.entries.len(), seen.len()),
        }));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(recipient: &age::x25519::Recipient, big: &[u8]) -> (Vec<u8>, Manifest, Digest) {
        let mut w = ArchiveWriter::new(recipient, "test", time::OffsetDateTime::UNIX_EPOCH).unwrap();
        let mut out = w.take_output();
        w.add("tables/a/000001.jsonl", b"{\"x\":1}\n").unwrap();
        let long = format!("blobs/tenants/{}/documents/{}.{}", "t".repeat(36), "d".repeat(36), "r".repeat(32));
        w.begin(&long, big.len() as u64).unwrap();
        for piece in big.chunks(1000) {
            w.write(piece).unwrap();
            out.extend(w.take_output());
        }
        w.end().unwrap();
        out.extend(w.take_output());
        let (m, tail, d) = w.finish(serde_json::json!({"kind": "manual"}), "1970-01-01T00:00:00Z".into()).unwrap();
        out.extend(tail);
        (out, m, d)
    }

    #[test]
    fn round_trip_checks_hashes_and_refuses_damage_and_other_keys() {
        let id = age::x25519::Identity::generate();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (bytes, manifest, digest) = make(&id.to_public(), &big);
        assert_eq!(digest.size, bytes.len() as u64);
        assert_eq!(digest.sha256, hex::encode(digest::digest(&digest::SHA256, &bytes).as_ref()));
        assert_eq!(manifest.entries.len(), 3);
        let mut got = Vec::new();
        let read_back = read(&bytes[..], &id, "test", |name, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            got.push((name.to_string(), v.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(read_back, manifest);
        assert_eq!(got[1].1, big.len());

        let other = age::x25519::Identity::generate();
        assert!(matches!(read(&bytes[..], &other, "test", |_, _| Ok(())), Err(ArchiveError::NotForThisKey(_))));
        assert!(matches!(read(&bytes[..], &id, "export", |_, _| Ok(())), Err(ArchiveError::Mismatch(_))));
        let cut = &bytes[..bytes.len() - 100];
        assert!(matches!(read(cut, &id, "test", |_, _| Ok(())), Err(ArchiveError::Damaged(_))));
        let mut flipped = bytes.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 1;
        assert!(matches!(read(&flipped[..], &id, "test", |_, _| Ok(())), Err(ArchiveError::Damaged(_))));
    }

    #[test]
    fn entries_must_get_their_declared_size() {
        let id = age::x25519::Identity::generate();
        let mut w = ArchiveWriter::new(&id.to_public(), "test", time::OffsetDateTime::UNIX_EPOCH).unwrap();
        w.begin("a", 3).unwrap();
        assert!(w.write(b"abcd").is_err());
        let mut w = ArchiveWriter::new(&id.to_public(), "test", time::OffsetDateTime::UNIX_EPOCH).unwrap();
        w.begin("a", 3).unwrap();
        w.write(b"ab").unwrap();
        assert!(w.end().is_err());
    }
}
