//! Backups: a logical dump of the whole database taken in one snapshot while the server keeps
//! serving, plus every document blob the snapshot names (the stored ciphertext as it is), in
//! one age-encrypted tar archive (`portcullis_core::archive`) per backup, with a signed
//! manifest beside it; the tenants' wrapped keys go to per-tenant keyring objects instead (see
//! `target`). `create`, `verify`, `restore` and `list` here; the schedule and rotation in
//! `schedule`.
//!
//! Why a logical dump rather than `pg_dump` or a copy of the SQLite file: nothing to install,
//! it works on managed PostgreSQL, it is the same format on both engines (a SQLite backup
//! restores into PostgreSQL), and it lets the tenant keys be left out of bulk backups, which
//! is what makes erasure reach every backup.

mod keyring;
pub(crate) mod progress;
mod restore;
pub mod schedule;
pub mod target;

pub use restore::{RestoreReport, restore};
pub use target::BackupTarget;

use crate::config::Config;
use anyhow::{Context, bail};
use futures::StreamExt;
use portcullis_core::archive::{self, ArchiveWriter, Digest, Manifest};
use portcullis_core::audit::{Action, Actor, Target};
use portcullis_core::crypto::signing::{AuditPublicKey, AuditSigner};
use portcullis_core::model::blob_key;
use portcullis_core::ports::{BlobStore, ByteStream};
use portcullis_core::service::{BACKUP_LEASE, Portal};
use portcullis_store::SqlStore;
use portcullis_store::dump::Row;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

/// The label in the archive's version entry.
pub const LABEL: &str = "backup";
/// What the manifest signature is a signature of.
const SIGNED_AS: &str = "backup-manifest";
/// Tables never in a bulk backup: tenant keys go to the keyrings; leases are live state.
const LEFT_OUT: &[&str] = &["tenant_keys", "leases"];
/// Rows are written in entries of about this many bytes.
const BATCH_BYTES: usize = 1024 * 1024;
/// A backup's lease lasts this long and is renewed while it runs.
const LEASE_TTL: time::Duration = time::Duration::minutes(30);

/// Daily, weekly and monthly backups come from the schedule; manual ones from the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Daily,
    Weekly,
    Monthly,
    Manual,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "daily",
            Kind::Weekly => "weekly",
            Kind::Monthly => "monthly",
            Kind::Manual => "manual",
        }
    }
}

/// What the archive's manifest says about the backup (its `about`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct About {
    pub kind: Kind,
    pub node: String,
    pub schema_version: i64,
    /// Per tenant, the key versions (purpose, version) its data needs, from its keyring.
    pub tenants: BTreeMap<String, Vec<(String, i64)>>,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    pub blobs: u64,
}

/// The plain manifest stored beside the archive and signed: the archive's manifest and the
/// encrypted archive's digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Signed {
    pub id: String,
    pub archive: Digest,
    pub manifest: Manifest,
}

impl Signed {
    pub fn about(&self) -> anyhow::Result<About> {
        serde_json::from_value(self.manifest.about.clone()).context("the manifest does not describe a backup")
    }
}

/// The target configured (`backup_target`, default `<data>/backups`).
pub fn target(cfg: &Config) -> anyhow::Result<BackupTarget> {
    let loc = crate::object_stores::backup_location(cfg)?;
    let store = crate::object_stores::open(cfg, &loc).context("opening the backup target")?;
    Ok(BackupTarget::new(store, loc.shown()))
}

/// The recipient configured (`backup_recipient` or the file `backup_recipient_file`).
pub fn recipient(cfg: &Config) -> anyhow::Result<age::x25519::Recipient> {
    let text = match (&cfg.backup_recipient, &cfg.backup_recipient_file) {
        (Some(r), _) => r.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading backup_recipient_file {}", f.display()))?
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default()
            .to_string(),
        (None, None) => bail!(
            "no backup recipient: set `backup_recipient` (an age public key, age1...) or `backup_recipient_file`; \
             keep the matching identity off this server"
        ),
    };
    parse_recipient(&text)
}

pub fn parse_recipient(text: &str) -> anyhow::Result<age::x25519::Recipient> {
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("key `backup_recipient`: {:?} is not an age X25519 public key: {e}", text.trim()))
}

/// Read an age identity file (`AGE-SECRET-KEY-1...`, comments allowed), refusing one other
/// users can read.
pub fn identity(path: &std::path::Path) -> anyhow::Result<age::x25519::Identity> {
    use secrecy::ExposeSecret;
    let text = crate::config::read_secret_file(path)?;
    let line = text
        .expose_secret()
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or_else(|| anyhow::anyhow!("{}: no AGE-SECRET-KEY-1... line", path.display()))?
        .to_string();
    line.parse().map_err(|e| anyhow::anyhow!("{}: not an age X25519 identity: {e}", path.display()))
}

/// What `create` needs.
#[derive(Debug)]
pub struct Job<'a> {
    pub portal: &'a Portal,
    pub store: &'a SqlStore,
    /// The documents' blob store.
    pub blobs: &'a dyn BlobStore,
    pub target: &'a BackupTarget,
    pub recipient: &'a age::x25519::Recipient,
    pub signer: &'a AuditSigner,
    pub node: &'a str,
    pub actor: Actor,
    pub show_progress: bool,
}

/// A backup made.
#[derive(Debug, Clone)]
pub struct Made {
    pub id: String,
    pub kind: Kind,
    pub archive: Digest,
    pub entries: usize,
}

/// Carry every finished erasure the target has not had yet to it (its certificate stored, its
/// keyring deleted; see [`BackupTarget::apply_erasure`]) and mark it done. Call with the backup
/// lease held, so a backup being written cannot put an erased firm's keyring back.
pub async fn sync_erasures(portal: &Portal, target: &BackupTarget) -> anyhow::Result<usize> {
    let pending = portal.unsynced_erasures().await.map_err(core)?;
    for e in &pending {
        let certificate = e.certificate.as_deref().context("a finished erasure without its certificate")?;
        target.apply_erasure(e.tenant_id, certificate.as_bytes()).await?;
        portal.mark_erasure_synced(e.tenant_id).await.map_err(core)?;
        tracing::info!(tenant = %e.tenant_id, "erasure carried to the backup target");
    }
    Ok(pending.len())
}

/// [`sync_erasures`] when no backup is running: takes the backup lease, or leaves the work to
/// the next call (a running backup syncs before it writes, and the next call after it ends).
pub async fn sync_erasures_now(portal: &Portal, target: &BackupTarget, node: &str) -> anyhow::Result<usize> {
    let holder = format!("{node}:{}", uuid::Uuid::new_v4().simple());
    if !portal.take_lease(BACKUP_LEASE, &holder, LEASE_TTL).await.map_err(core)? {
        return Ok(0);
    }
    let synced = sync_erasures(portal, target).await;
    if let Err(e) = portal.release_lease(BACKUP_LEASE, &holder).await {
        tracing::warn!(error = %e, "releasing the backup lease; it expires by itself");
    }
    synced
}

/// Make a backup of `kind`: hold the backup lease (so replaced document copies stay while it
/// runs), write it, release the lease, then delete the copies it held back. Audited as
/// `backup.create` on the platform chain; a failure is returned (the scheduler raises the alert).
pub async fn create(job: &Job<'_>, kind: Kind) -> anyhow::Result<Made> {
    let holder = format!("{}:{}", job.node, uuid::Uuid::new_v4().simple());
    if !job.portal.take_lease(BACKUP_LEASE, &holder, LEASE_TTL).await.map_err(core)? {
        bail!("another backup is running (its lease has not expired); try again when it has finished");
    }
    // Erasures first, under the lease: no keyring of an erased firm is written again.
    let made = match sync_erasures(job.portal, job.target).await {
        Ok(_) => write_backup(job, kind, &holder).await,
        Err(e) => Err(e),
    };
    if let Err(e) = job.portal.release_lease(BACKUP_LEASE, &holder).await {
        tracing::warn!(error = %e, "releasing the backup lease; it expires by itself");
    }
    let made = made?;
    match job.portal.purge_replaced_blobs().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "replaced document copies held back by the backup deleted"),
        Err(e) => tracing::warn!(error = %e, "deleting replaced document copies; trying again after the next backup"),
    }
    let detail = serde_json::json!({
        "kind": kind.as_str(),
        "size": made.archive.size,
        "sha256": made.archive.sha256,
        "entries": made.entries,
        "node": job.node,
    });
    job.portal
        .audit_backup(job.actor, Action::BackupCreate, Target::Backup(made.id.to_string()), detail)
        .await
        .map_err(core)?;
    Ok(made)
}

pub(crate) fn core(e: portcullis_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The archive's encrypted bytes go to the upload task through this.
type Upload = tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>;

async fn send(tx: &Upload, w: &mut ArchiveWriter) -> anyhow::Result<()> {
    let out = w.take_output();
    if out.is_empty() {
        return Ok(());
    }
    tx.send(Ok(bytes::Bytes::from(out))).await.map_err(|_| anyhow::anyhow!("the upload to the backup target stopped"))
}

fn text_of(row: &Row, column: &str) -> String {
    row.get(column).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

async fn write_backup(job: &Job<'_>, kind: Kind, holder: &str) -> anyhow::Result<Made> {
    let now = job.portal.clock().now();
    let stamp = now.format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))?;
    let id = format!("{stamp}-{}-{}", kind.as_str(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let body: ByteStream =
        Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }));
    let target = job.target.clone();
    let key = target::archive_key(&id);
    let upload = tokio::spawn(async move { target.put_stream(&key, body).await });
    let (manifest, digest, keys) = match stream_archive(job, kind, holder, now, &tx).await {
        Ok(done) => done,
        Err(e) => {
            // An error in the stream makes the upload abort: no partial archive is left.
            let _ = tx.send(Err(std::io::Error::other("the backup failed"))).await;
            drop(tx);
            let _ = upload.await;
            return Err(e);
        }
    };
    drop(tx);
    let stored = upload.await.context("the upload task")??;
    if stored != digest.size {
        bail!("the backup target stored {stored} of {} bytes", digest.size);
    }
    let entries = manifest.entries.len();
    let signed = Signed { id: id.clone(), archive: digest.clone(), manifest };
    if let Err(e) = seal(job, &signed, &keys).await {
        // Leave no archive that no manifest lists (and so nothing would ever prune).
        if let Err(d) = delete(job.target, &id).await {
            tracing::warn!(error = %d, id, "removing the archive of a failed backup");
        }
        return Err(e);
    }
    Ok(Made { id, kind, archive: digest, entries })
}

/// Finish a stored archive: rewrite the keyrings, then write the signature and the signed
/// manifest (last: a backup is listed by its manifest).
async fn seal(job: &Job<'_>, signed: &Signed, keys: &Keys) -> anyhow::Result<()> {
    keyring::write_all(job.target, job.recipient, keys).await?;
    let text = serde_json::to_vec_pretty(signed)?;
    let signature = job.signer.sign_document(SIGNED_AS, &text);
    job.target.put(&target::signature_key(&signed.id), format!("{signature}\n").into_bytes()).await?;
    job.target.put(&target::manifest_key(&signed.id), text).await
}

/// The keys read from the snapshot, per tenant.
type Keys = BTreeMap<String, Vec<Row>>;

/// Write the archive into `tx`: the snapshot's tables, then the documents it names, then the
/// manifest. Returns the manifest, the ciphertext's digest and the tenant keys read.
async fn stream_archive(
    job: &Job<'_>,
    kind: Kind,
    holder: &str,
    now: time::OffsetDateTime,
    tx: &Upload,
) -> anyhow::Result<(Manifest, Digest, Keys)> {
    let mut w = ArchiveWriter::new(job.recipient, LABEL, now)?;
    let mut about = About {
        kind,
        node: job.node.to_string(),
        schema_version: 0,
        tenants: BTreeMap::new(),
        rows: BTreeMap::new(),
        blobs: 0,
    };
    let mut keys: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut blob_keys = Vec::new();
    {
        let mut snap = job.store.snapshot().await.map_err(core)?;
        about.schema_version = snap.schema_version().await.map_err(core)?;
        let tables = snap.tables().await.map_err(core)?;
        let bar = progress::counter(job.show_progress, "tables", tables.len() as u64);
        for t in &tables {
            bar.set_message(t.name.clone());
            bar.inc(1);
            if LEFT_OUT.contains(&t.name.as_str()) && t.name != "tenant_keys" {
                continue;
            }
            let mut rows = snap.rows(t).map_err(core)?;
            let (mut batch, mut part, mut count) = (Vec::new(), 0u32, 0u64);
            while let Some(row) = rows.next().await {
                let row = row.map_err(core)?;
                if t.name == "tenant_keys" {
                    keys.entry(text_of(&row, "tenant_id")).or_default().push(row);
                    continue;
                }
                if t.name == "documents" {
                    let (tenant, doc) = (text_of(&row, "tenant_id"), text_of(&row, "id"));
                    let parsed = tenant.parse().ok().zip(doc.parse().ok());
                    let (tenant, doc) = parsed.ok_or_else(|| anyhow::anyhow!("document row with bad ids"))?;
                    blob_keys.push(blob_key(tenant, doc, &text_of(&row, "blob_rev")));
                }
                serde_json::to_writer(&mut batch, &row)?;
                batch.push(b'\n');
                count += 1;
                if batch.len() >= BATCH_BYTES {
                    part += 1;
                    w.add(&format!("tables/{}/{part:06}.jsonl", t.name), &batch)?;
                    batch.clear();
                    send(tx, &mut w).await?;
                }
            }
            if !batch.is_empty() {
                part += 1;
                w.add(&format!("tables/{}/{part:06}.jsonl", t.name), &batch)?;
                send(tx, &mut w).await?;
            }
            if t.name != "tenant_keys" {
                about.rows.insert(t.name.clone(), count);
            }
        }
        bar.finish_and_clear();
        snap.close().await.map_err(core)?;
    }
    for (tenant, rows) in &keys {
        let versions =
            rows.iter().map(|r| (text_of(r, "purpose"), r.get("version").and_then(|v| v.as_i64()).unwrap_or(0)));
        about.tenants.insert(tenant.clone(), versions.collect());
    }
    about.blobs = blob_keys.len() as u64;
    let mut sizes = Vec::with_capacity(blob_keys.len());
    for key in &blob_keys {
        sizes.push(job.blobs.size(key).await.map_err(|e| anyhow::anyhow!("document copy {key}: {e}"))?);
    }
    let bar = progress::bytes(job.show_progress, "documents", sizes.iter().sum());
    let mut renewed = now;
    for (key, size) in blob_keys.iter().zip(sizes) {
        w.begin(&format!("blobs/{key}"), size)?;
        let mut s = job.blobs.get(key, None).await.map_err(|e| anyhow::anyhow!("document copy {key}: {e}"))?;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.with_context(|| format!("reading document copy {key}"))?;
            w.write(&chunk)?;
            bar.inc(chunk.len() as u64);
            send(tx, &mut w).await?;
        }
        w.end()?;
        let at = job.portal.clock().now();
        if at - renewed > LEASE_TTL / 3 {
            if !job.portal.take_lease(BACKUP_LEASE, holder, LEASE_TTL).await.map_err(core)? {
                bail!("the backup lease was lost (the backup ran longer than its lease); nothing was kept");
            }
            renewed = at;
        }
    }
    bar.finish_and_clear();
    let created = now.format(&time::format_description::well_known::Rfc3339)?;
    let (manifest, tail, digest) = w.finish(serde_json::to_value(&about)?, created)?;
    tx.send(Ok(bytes::Bytes::from(tail)))
        .await
        .map_err(|_| anyhow::anyhow!("the upload to the backup target stopped"))?;
    Ok((manifest, digest, keys))
}

/// A backup's stored manifest, as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub signed: Option<Signed>,
}

/// Every backup in the target, oldest first (a manifest that does not parse is listed with
/// `signed: None`).
pub async fn list(target: &BackupTarget) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for name in target.list("backups").await? {
        let Some(id) = name.strip_suffix(".manifest.json") else { continue };
        let signed = target.get(&name_key(&name)).await?.and_then(|b| serde_json::from_slice::<Signed>(&b).ok());
        out.push(Listed { id: id.to_string(), signed });
    }
    Ok(out)
}

fn name_key(name: &str) -> String {
    format!("backups/{name}")
}

/// What `verify` found.
#[derive(Debug)]
pub struct Verified {
    pub signed: Signed,
    pub about: About,
    /// Checked inside too (decrypted, every entry's hash).
    pub decrypted: bool,
    /// Keyrings found, per tenant (only with an identity).
    pub keyrings: BTreeMap<String, Vec<Row>>,
    /// Tenants in the backup with an erasure record in the target.
    pub erased: Vec<String>,
}

/// Check a backup: its manifest's signature with `trusted`, the archive's size and SHA-256
/// against the manifest; with `identity`, also decrypt it and check every entry, and that every
/// tenant's keyring (erased tenants aside) holds the key versions its data needs.
pub async fn verify(
    target: &BackupTarget,
    id: &str,
    trusted: &[AuditPublicKey],
    identity: Option<&age::x25519::Identity>,
    show_progress: bool,
) -> anyhow::Result<Verified> {
    let text = target
        .get(&target::manifest_key(id))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no backup {id} in {} (see `portcullis backup list`)", target.shown()))?;
    let sig = target.get(&target::signature_key(id)).await?.ok_or_else(|| {
        anyhow::anyhow!("backup {id} has no manifest signature: it is incomplete or was tampered with")
    })?;
    let sig = String::from_utf8_lossy(&sig).trim().to_string();
    if !trusted.iter().any(|k| k.verifies_document(SIGNED_AS, &text, &sig)) {
        bail!(
            "backup {id}: the manifest's signature does not verify with the trusted public key(s): the manifest was \
             altered, or the backup was made by another installation"
        );
    }
    let signed: Signed = serde_json::from_slice(&text).context("the signed manifest does not parse")?;
    if signed.id != id {
        bail!("backup {id}: the signed manifest is that of backup {}", signed.id);
    }
    let about = signed.about()?;
    let stream = target.get_stream(&target::archive_key(id)).await?;
    let bar = progress::bytes(show_progress, "verifying", signed.archive.size);
    let (digest, inner) = match identity {
        None => {
            let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            let mut size = 0u64;
            let mut s = stream;
            while let Some(chunk) = s.next().await {
                let chunk = chunk.context("reading the archive")?;
                hash.update(&chunk);
                size += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
            }
            (Digest { size, sha256: hex::encode(hash.finish().as_ref()) }, None)
        }
        Some(identity) => {
            let identity = identity.clone();
            let barc = bar.clone();
            tokio::task::spawn_blocking(move || {
                let mut reader = restore::BlockingReader::new(stream, barc);
                let read = archive::read(&mut reader, &identity, LABEL, |_, _| Ok(()));
                // Read to the end, so the digest covers the whole object even if reading stopped.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                (reader.digest(), Some(read))
            })
            .await
            .context("the verification task")?
        }
    };
    bar.finish_and_clear();
    if digest != signed.archive {
        bail!(
            "backup {id}: the archive is corrupted or truncated: {} bytes with SHA-256 {}, the manifest says {} bytes \
             with SHA-256 {}",
            digest.size,
            digest.sha256,
            signed.archive.size,
            signed.archive.sha256
        );
    }
    let mut keyrings = BTreeMap::new();
    let mut erased = Vec::new();
    let decrypted = inner.is_some();
    if let (Some(inner), Some(identity)) = (inner, identity) {
        let inner = inner.map_err(|e| anyhow::anyhow!("backup {id}: {e}"))?;
        if inner != signed.manifest {
            bail!("backup {id}: the archive's own manifest differs from the signed one");
        }
        let gone = target.erased_tenants().await?;
        for (tenant, needed) in &about.tenants {
            if gone.contains(tenant) {
                erased.push(tenant.clone());
                continue;
            }
            let rows = keyring::read(target, identity, tenant).await?;
            keyring::check(tenant, needed, &rows)?;
            keyrings.insert(tenant.clone(), rows);
        }
    }
    Ok(Verified { signed, about, decrypted, keyrings, erased })
}

/// Keep only the configured set of scheduled backups; returns the ids deleted. A backup's
/// manifest goes first, so a deletion cut short leaves an archive no listing shows rather
/// than a listed backup without its archive.
pub async fn delete(target: &BackupTarget, id: &str) -> anyhow::Result<()> {
    target.delete(&target::manifest_key(id)).await?;
    target.delete(&target::signature_key(id)).await?;
    target.delete(&target::archive_key(id)).await
}

/// Bytes of a reader, as a caller inside the blocking restore reads an entry.
pub(crate) fn read_lines(r: &mut dyn Read, mut each: impl FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        if !trimmed.is_empty() {
            each(trimmed)?;
        }
    }
}
