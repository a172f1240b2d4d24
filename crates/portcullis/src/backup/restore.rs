//! Restoring a backup into an empty data directory and database. Everything that can be checked
//! is checked before anything is written: the manifest's signature, the archive's hash, every
//! entry (a full decrypting pass), the keyrings, the master key, the schema version, and that
//! the destination is empty (or `--force`). The second pass then loads every row in ONE
//! database transaction and writes the documents into a fresh directory beside the documents
//! directory; only when the transaction has committed is that directory moved into place. A
//! failure in the second pass rolls the transaction back and removes the fresh directory; what
//! stays is the schema the restore created in the (empty) database, which the next attempt
//! starts over on.

use super::{BackupTarget, LABEL, Verified, core, progress, read_lines, verify};
use crate::config::Config;
use anyhow::{Context, bail};
use futures::StreamExt;
use portcullis_core::archive::{self, ArchiveError, Digest};
use portcullis_core::crypto::signing::AuditPublicKey;
use portcullis_core::ports::{BlobStore, ByteStream};
use portcullis_store::dump::{Row, Table};
use portcullis_store::{ObjectBlobStore, SqlStore};
use secrecy::ExposeSecret;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;

/// A synchronous reader over an object's byte stream, for the archive reader running on a
/// blocking thread; it hashes the bytes it passes (the stored, encrypted form).
pub(crate) struct BlockingReader {
    stream: ByteStream,
    handle: tokio::runtime::Handle,
    buf: bytes::Bytes,
    hash: aws_lc_rs::digest::Context,
    size: u64,
    bar: indicatif::ProgressBar,
}

impl BlockingReader {
    /// Must be made on a blocking thread of the runtime (`spawn_blocking`).
    pub(crate) fn new(stream: ByteStream, bar: indicatif::ProgressBar) -> Self {
        Self {
            stream,
            handle: tokio::runtime::Handle::current(),
            buf: bytes::Bytes::new(),
            hash: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            size: 0,
            bar,
        }
    }

    pub(crate) fn digest(&self) -> Digest {
        Digest { size: self.size, sha256: hex::encode(self.hash.clone().finish().as_ref()) }
    }
}

impl Read for BlockingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(chunk) => {
                    let chunk = chunk?;
                    self.hash.update(&chunk);
                    self.size += chunk.len() as u64;
                    self.bar.inc(chunk.len() as u64);
                    self.buf = chunk;
                }
            }
        }
        let n = out.len().min(self.buf.len());
        let piece = self.buf.split_to(n);
        if let Some(dst) = out.get_mut(..n) {
            dst.copy_from_slice(&piece);
        }
        Ok(n)
    }
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    pub id: String,
    pub rows: u64,
    pub blobs: u64,
    /// Tenants left out: erased (an erasure record in the target).
    pub skipped_tenants: Vec<String>,
    /// With `--force`: where the documents that were there before were moved.
    pub moved_documents: Option<std::path::PathBuf>,
}

/// Rows of erased tenants, and rows hanging from rows left out, are left out.
struct Filter {
    erased: HashSet<String>,
    /// Table to the `id` values of its rows left out.
    skipped: HashMap<String, HashSet<String>>,
}

impl Filter {
    fn keep(&mut self, table: &str, row: &Row, info: Option<&Table>) -> bool {
        let val = |c: &str| row.get(c).and_then(|v| v.as_str());
        let erased = |c: &str| val(c).is_some_and(|v| self.erased.contains(v));
        let mut drop = (table == "tenants" && erased("id")) || erased("tenant_id") || erased("chain");
        if !drop && let Some(t) = info {
            drop = t
                .parents
                .iter()
                .any(|k| val(&k.column).is_some_and(|v| self.skipped.get(&k.parent).is_some_and(|s| s.contains(v))));
        }
        if drop && let Some(id) = val("id") {
            self.skipped.entry(table.to_string()).or_default().insert(id.to_string());
        }
        !drop
    }
}

fn rejected(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Rejected(e.to_string())
}

/// Whether a documents directory holds anything (the readiness probe aside).
fn has_documents(dir: &std::path::Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                if e?.file_name() != ".portcullis-ready" {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Restore backup `id` into the configured database and data directory. `force` allows a
/// destination that is not empty: its tables are dropped and its documents directory moved
/// aside (kept, named in the report) once every check has passed.
pub async fn restore(
    cfg: &Config,
    target: &BackupTarget,
    id: &str,
    trusted: &[AuditPublicKey],
    identity: &age::x25519::Identity,
    force: bool,
    show_progress: bool,
) -> anyhow::Result<RestoreReport> {
    // Pass 1: everything about the backup.
    let Verified { signed, about, keyrings, erased, .. } =
        verify(target, id, trusted, Some(identity), show_progress).await?;
    if about.schema_version > portcullis_store::latest_schema_version() {
        bail!(
            "backup {id} has schema version {}, newer than this Portcullis knows ({}): restore it with a Portcullis at \
             least as new as the one that made it",
            about.schema_version,
            portcullis_store::latest_schema_version()
        );
    }
    let master = {
        use portcullis_core::crypto::keys::KeyProvider;
        crate::master_key::load(cfg, false)
            .context("the master key that wraps the tenant keys is needed to restore: put it in place first")?
            .key_id()
    };
    for (tenant, rows) in &keyrings {
        for r in rows {
            let wrapped_by = r.get("key_id").and_then(|v| v.as_str()).unwrap_or_default();
            if wrapped_by != master {
                bail!(
                    "tenant {tenant}: its keys are wrapped by master key {wrapped_by}, but the configured master key is \
                     {master}: put that master key in place (see `master_key_file`)"
                );
            }
        }
    }
    // The destination.
    let store = SqlStore::open_unmigrated(cfg.database_url().expose_secret()).await.map_err(core)?;
    let result =
        restore_into(cfg, &store, target, id, identity, force, show_progress, &signed, &keyrings, &erased).await;
    store.close().await;
    let mut report = result?;
    report.skipped_tenants = erased;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn restore_into(
    cfg: &Config,
    store: &SqlStore,
    target: &BackupTarget,
    id: &str,
    identity: &age::x25519::Identity,
    force: bool,
    show_progress: bool,
    signed: &super::Signed,
    keyrings: &std::collections::BTreeMap<String, Vec<Row>>,
    erased: &[String],
) -> anyhow::Result<RestoreReport> {
    use crate::object_stores::Location;
    let about = signed.about()?;
    /// Where the documents go.
    enum Dest {
        Dir(std::path::PathBuf),
        Bucket(std::sync::Arc<dyn object_store::ObjectStore>),
    }
    let location = crate::object_stores::document_location(cfg)?;
    let dest = match &location {
        Location::Local(dir) => Dest::Dir(dir.clone()),
        s3 => Dest::Bucket(crate::object_stores::open(cfg, s3)?),
    };
    let version = store.schema_version().await.map_err(core)?;
    let full: Vec<(String, i64)> = if version == 0 {
        Vec::new()
    } else {
        store.row_counts().await.map_err(core)?.into_iter().filter(|(_, n)| *n > 0).collect()
    };
    let docs = match &dest {
        Dest::Dir(dir) => has_documents(dir)?,
        Dest::Bucket(b) => crate::object_stores::holds_objects(b.as_ref()).await?,
    };
    if (!full.is_empty() || docs) && !force {
        let tables: Vec<String> = full.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        bail!(
            "the destination is not empty (database rows in: {}; documents in {}: {}): restore into an empty data \
             directory and database, or pass --force to drop the database's tables and move the documents aside",
            if tables.is_empty() { "none".to_string() } else { tables.join(", ") },
            location.shown(),
            if docs { "yes" } else { "no" }
        );
    }
    if docs && matches!(dest, Dest::Bucket(_)) {
        bail!(
            "--force cannot set documents in {} aside (a bucket has no rename): empty that prefix or point \
             `document_store` at a new one; nothing was changed",
            location.shown()
        );
    }
    if version != 0 {
        store.wipe().await.map_err(core)?;
    }
    let documents = match dest {
        Dest::Dir(dir) => dir,
        // Into a bucket: straight into the (empty) document store; a failed load deletes what
        // it wrote.
        Dest::Bucket(b) => {
            store.migrate_to(about.schema_version).await.map_err(core)?;
            let blobs_store = ObjectBlobStore::new(b.clone());
            let loaded = load(store, target, id, identity, &blobs_store, keyrings, erased, show_progress, signed).await;
            let (rows, blobs) = match loaded {
                Ok(counts) => counts,
                Err(e) => {
                    if let Err(d) = crate::object_stores::delete_all(b.as_ref()).await {
                        tracing::warn!(error = %d, "removing the documents of a failed restore");
                    }
                    return Err(e);
                }
            };
            store.migrate().await.map_err(core)?;
            return Ok(RestoreReport {
                id: id.to_string(),
                rows,
                blobs,
                skipped_tenants: Vec::new(),
                moved_documents: None,
            });
        }
    };
    // Into a directory: staged beside it (same file system) and renamed into place, the old one
    // (with --force) moved aside.
    let name = documents.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "documents".into());
    let beside = |suffix: &str| documents.with_file_name(format!("{name}.{suffix}"));
    let mut moved_documents = None;
    if docs {
        let stamp = uuid::Uuid::new_v4().simple().to_string();
        let aside = beside(&format!("before-restore-{}", &stamp[..8]));
        std::fs::rename(&documents, &aside).with_context(|| format!("moving {} aside", documents.display()))?;
        moved_documents = Some(aside);
    }
    store.migrate_to(about.schema_version).await.map_err(core)?;
    // Pass 2: load.
    let staging = beside("restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let blobs_store = ObjectBlobStore::local(&staging).map_err(core)?;
    let loaded = load(store, target, id, identity, &blobs_store, keyrings, erased, show_progress, signed).await;
    let (rows, blobs) = match loaded {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if documents.exists() {
        std::fs::remove_dir_all(&documents).with_context(|| format!("removing the empty {}", documents.display()))?;
    }
    std::fs::rename(&staging, &documents)
        .with_context(|| format!("moving the restored documents to {}", documents.display()))?;
    store.migrate().await.map_err(core)?;
    Ok(RestoreReport { id: id.to_string(), rows, blobs, skipped_tenants: Vec::new(), moved_documents })
}

#[allow(clippy::too_many_arguments)]
async fn load(
    store: &SqlStore,
    target: &BackupTarget,
    id: &str,
    identity: &age::x25519::Identity,
    blobs_store: &ObjectBlobStore,
    keyrings: &std::collections::BTreeMap<String, Vec<Row>>,
    erased: &[String],
    show_progress: bool,
    signed: &super::Signed,
) -> anyhow::Result<(u64, u64)> {
    let blobs_store = blobs_store.clone();
    let mut loader = store.loader().await.map_err(core)?;
    let stream = target.get_stream(&super::target::archive_key(id)).await?;
    let bar = progress::bytes(show_progress, "restoring", signed.archive.size);
    let identity = identity.clone();
    let erased_set: HashSet<String> = erased.iter().cloned().collect();
    let (read, mut loader, rows, blobs) = tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        let mut reader = BlockingReader::new(stream, bar);
        let mut filter = Filter { erased: erased_set.clone(), skipped: HashMap::new() };
        let (mut rows, mut blobs) = (0u64, 0u64);
        let read = archive::read(&mut reader, &identity, LABEL, |name, r| {
            if let Some(rest) = name.strip_prefix("tables/") {
                let table = rest.split('/').next().unwrap_or_default().to_string();
                read_lines(r, |line| {
                    let row: Row = serde_json::from_slice(line).context("a row does not parse")?;
                    if filter.keep(&table, &row, loader.table(&table)) {
                        handle.block_on(loader.insert(&table, &row)).map_err(core)?;
                        rows += 1;
                    }
                    Ok(())
                })
                .map_err(rejected)
            } else if let Some(key) = name.strip_prefix("blobs/") {
                let tenant = key.split('/').nth(1).unwrap_or_default();
                if erased_set.contains(tenant) {
                    return Ok(());
                }
                copy_blob(&handle, &blobs_store, key, r).map_err(rejected)?;
                blobs += 1;
                Ok(())
            } else {
                Err(rejected(format!("unexpected entry {name}")))
            }
        });
        (read, loader, rows, blobs)
    })
    .await
    .context("the restore task")?;
    let manifest = read.map_err(|e| anyhow::anyhow!("backup {id}: {e}"))?;
    if manifest != signed.manifest {
        bail!("backup {id} changed while it was being restored");
    }
    let tenants: BTreeSet<&String> = keyrings.keys().collect();
    for tenant in tenants {
        for row in keyrings.get(tenant).into_iter().flatten() {
            loader.insert("tenant_keys", row).await.map_err(core)?;
        }
    }
    loader.commit().await.map_err(core)?;
    Ok((rows, blobs))
}

/// Stream one document copy from the archive into the staging store.
fn copy_blob(
    handle: &tokio::runtime::Handle,
    store: &ObjectBlobStore,
    key: &str,
    r: &mut dyn Read,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let body: ByteStream =
        Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }));
    let (store, k) = (store.clone(), key.to_string());
    let put = handle.spawn(async move { store.put(&k, body).await });
    loop {
        let mut buf = vec![0u8; 256 * 1024];
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
            break;
        }
    }
    drop(tx);
    handle
        .block_on(put)
        .context("the document copy task")?
        .map_err(|e| anyhow::anyhow!("writing document {key}: {e}"))?;
    Ok(())
}
