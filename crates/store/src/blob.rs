//! The `BlobStore` port on the `object_store` crate: a local directory by default; S3 and other
//! object stores plug in through the same builder without touching the domain.

use async_trait::async_trait;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart};
use portcullis_core::crypto::stream::{CHUNK, TAG};
use portcullis_core::error::{Error, Result};
use portcullis_core::ports::{BlobStore, ByteStream};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Parts are written in chunks of this size; S3 needs at least 5 MiB per part.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// At most this many parts in flight per upload, bounding memory to about 16 MiB an upload.
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// A local document is read this many bytes at a time: sixteen whole sealed chunks (about
/// 1 MiB). `object_store`'s own file stream reads 8 KiB per blocking task; a profile of a 1 GiB
/// download spent most of its time handing those tasks to the blocking pool and waking up
/// afterwards, not reading or decrypting. Whole chunks also let decryption open them in place.
const READ_SIZE: usize = 16 * (CHUNK + TAG);
/// Reads in flight per download: the next piece is read while the current one is decrypted and
/// sent. Bounds a download's read buffers to about 2 MiB.
const READS_AHEAD: usize = 2;

/// Documents on an `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
}

fn os(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound,
        other => Error::internal(format!("blob store: {other}")),
    }
}

fn path(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| Error::internal(format!("bad blob key {key:?}: {e}")))
}

impl ObjectBlobStore {
    /// A store in a local directory, created if missing. Uploads are written to a temporary file
    /// and renamed into place when complete.
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(os)?.with_automatic_cleanup(true);
        Ok(Self { inner: Arc::new(fs) })
    }

    /// Wrap any `object_store` backend (S3, memory for tests).
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

/// Abort a multipart upload so no part of it stays behind (on S3, parts would otherwise linger).
async fn abort(writer: WriteMultipart, key: &str) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(error = %e, key, "aborting a failed upload");
    }
}

/// Stream `range` of a local file in `READ_SIZE` pieces, each read by one blocking task at its
/// own offset (so reads ahead need no shared file position). A file shorter than the range is
/// an error, not a short stream. Each buffer is allocated by the task that streams the
/// download, which is also where it is freed: allocated on the blocking pool's threads, the
/// buffers stayed cached in those threads' allocator arenas and raised the server's peak RSS by
/// 6 to 10 MiB. It is zeroed on the blocking thread, off the download's path.
fn read_file(file: std::fs::File, range: Range<u64>) -> ByteStream {
    let file = Arc::new(file);
    let end = range.end;
    let offsets = futures::stream::iter(range.step_by(READ_SIZE));
    Box::pin(
        offsets
            .map(move |at| {
                let file = file.clone();
                let len = usize::try_from((end - at).min(READ_SIZE as u64)).unwrap_or(READ_SIZE);
                let mut buf = Vec::with_capacity(len);
                tokio::task::spawn_blocking(move || {
                    buf.resize(len, 0);
                    file.read_exact_at(&mut buf, at).map(|()| bytes::Bytes::from(buf))
                })
            })
            .buffered(READS_AHEAD)
            .map(|joined| joined.map_err(std::io::Error::other).flatten()),
    )
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        let upload = self.inner.put_multipart(&path(key)?).await.map_err(os)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut total: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    // Abort: the partial object is discarded, nothing becomes visible.
                    abort(writer, key).await;
                    return Err(match e.kind() {
                        std::io::ErrorKind::TimedOut => Error::Timeout,
                        _ => Error::UploadInterrupted(e.to_string()),
                    });
                }
            };
            total = total.saturating_add(chunk.len() as u64);
            if let Err(e) = writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                abort(writer, key).await;
                return Err(os(e));
            }
            writer.put(chunk);
        }
        writer.finish().await.map_err(os)?;
        Ok(total)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let r = self.inner.get_opts(&path(key)?, opts).await.map_err(os)?;
        Ok(match r.payload {
            GetResultPayload::File(file, _) => read_file(file, r.range),
            GetResultPayload::Stream(s) => Box::pin(s.map(|c| c.map_err(std::io::Error::other))),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(os(e)),
        }
    }

    async fn size(&self, key: &str) -> Result<u64> {
        Ok(self.inner.head(&path(key)?).await.map_err(os)?.size)
    }

    async fn ping(&self) -> Result<()> {
        let probe = path(".portcullis-ready")?;
        self.inner.put(&probe, bytes::Bytes::from_static(b"ok").into()).await.map_err(os)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stream(parts: Vec<std::io::Result<Bytes>>) -> ByteStream {
        Box::pin(futures::stream::iter(parts))
    }

    async fn read_all(mut s: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn put_get_range_and_failed_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let n = store
            .put("t/a", stream(vec![Ok(Bytes::from_static(b"hello ")), Ok(Bytes::from_static(b"world"))]))
            .await
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(read_all(store.get("t/a", None).await.unwrap()).await, b"hello world");
        assert_eq!(read_all(store.get("t/a", Some(6..11)).await.unwrap()).await, b"world");

        let failed =
            store.put("t/b", stream(vec![Ok(Bytes::from_static(b"part")), Err(std::io::Error::other("cut"))])).await;
        assert!(failed.is_err());
        assert!(matches!(store.get("t/b", None).await, Err(Error::NotFound)));
        store.delete("t/a").await.unwrap();
        assert!(matches!(store.get("t/a", None).await, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn local_reads_span_several_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::local(dir.path()).unwrap();
        let data: Vec<u8> = (0..2 * READ_SIZE + 12_345).map(|i| (i * 7 % 253) as u8).collect();
        store.put("t/big", stream(vec![Ok(Bytes::from(data.clone()))])).await.unwrap();
        assert_eq!(read_all(store.get("t/big", None).await.unwrap()).await, data);
        let (a, b) = (READ_SIZE - 3, 2 * READ_SIZE + 7);
        let got = read_all(store.get("t/big", Some(a as u64..b as u64)).await.unwrap()).await;
        assert_eq!(got, &data[a..b]);
    }
}
