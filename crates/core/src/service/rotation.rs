//! Tenant-key rotation: a new data key version that new writes use at once, on every node, and
//! the re-encryption of every document and sealed field still under an older version, by a
//! worker that can be stopped at any point (even by `kill -9`) and resumed.
//!
//! Why an interruption loses nothing:
//! - A document's new copy is written under a fresh name, recorded as `pending` before its first
//!   byte; the copy in use is never touched while the new one is written.
//! - The switch is one transaction: it claims the pending record (which fails if a sweep gave it
//!   up meanwhile), points the row at the new copy only if it still points at the old one, and
//!   records the old copy as replaced. Before that commit the old copy serves; after it, the new.
//! - Replaced and given-up copies are deleted before their records, so a crash leaves at most a
//!   record whose deletion is repeated.
//! - A field is replaced only if it still holds the value that was re-encrypted
//!   (compare-and-set), a batch per transaction.
//! - Older key versions are kept: every value opens at every moment, and backups taken before
//!   the rotation still restore. (Retiring an old version is a crypto-shred of what it covers,
//!   left to the retention work, which knows when its backups have expired.)
//!
//! Only one rotation per tenant is open at a time; starting another resumes it.

use super::{Portal, documents::Meter};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::crypto::sealed::field_cipher;
use crate::crypto::stream::{self, DocCipher, Header};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, TenantId};
use crate::model::{Document, KeyPurpose, KeyRotation, SealedColumn, blob_key};
use crate::policy::{self, RotationReach};
use time::Duration;

/// Documents read per query while looking for work.
const DOCUMENT_BATCH: i64 = 32;
/// Fields re-encrypted per transaction.
const FIELD_BATCH: i64 = 256;
/// How many passes a worker makes before giving up on writers that keep adding old values.
const PASSES: usize = 3;

/// What starting a rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationStart {
    /// A new data key version was made.
    Started { from: u32, to: u32 },
    /// A rotation to this version was already open; it goes on.
    Resumed { to: u32 },
}

/// What one run of the worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub target: u32,
    pub documents: u64,
    pub fields: u64,
    /// Items that could not be re-encrypted (damaged), with the reason; they stay under their
    /// old key and the rotation stays open.
    pub failed: Vec<String>,
    pub finished: bool,
}

/// A tenant's newest rotation and what is still to do.
#[derive(Clone, Debug)]
pub struct RotationStatus {
    pub rotation: KeyRotation,
    pub documents_left: u64,
    pub fields_left: u64,
}

/// Called at named points of the work, so crash tests can stop the process exactly there.
pub type Step<'a> = &'a (dyn Fn(&str) + Send + Sync);

impl Portal {
    /// Start rotating a tenant's data key: add the next version, which new writes use from now
    /// on, and open a rotation for the re-encryption. If one is already open it is resumed.
    pub async fn start_tenant_rotation(&self, tenant: TenantId, meta: &RequestMeta) -> Result<RotationStart> {
        let mut tx = self.write().await?;
        // Two starts at once on PostgreSQL: the second waits, then sees the first one's rotation.
        tx.keys().lock_tenant_keys().await?;
        if let Some(open) = tx.rotation().latest_key_rotation(tenant).await?.filter(|r| r.finished_at.is_none()) {
            return Ok(RotationStart::Resumed { to: open.target_version });
        }
        let from = tx
            .keys()
            .tenant_key(tenant, KeyPurpose::Data, None)
            .await?
            .ok_or_else(|| Error::Integrity("the tenant has no data key (destroyed)".into()))?
            .version;
        let to = from.checked_add(1).ok_or_else(|| Error::internal("no key version left"))?;
        self.add_tenant_key(&mut *tx, tenant, KeyPurpose::Data, to).await?;
        let now = self.clock.now();
        tx.rotation()
            .insert_key_rotation(&KeyRotation {
                tenant_id: tenant,
                target_version: to,
                started_at: now,
                finished_at: None,
                heartbeat_at: None,
                documents_done: 0,
                fields_done: 0,
            })
            .await?;
        let ev = NewEvent::new(Some(tenant), Actor::Cli, Action::KeysRotateTenantStart, Target::Tenant(tenant), meta)
            .with_detail(crate::changes::detail(
                serde_json::json!({ "version": from }),
                serde_json::json!({ "version": to }),
                None,
            ));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(RotationStart::Started { from, to })
    }

    /// Work the tenant's open rotation: re-encrypt every document and field under an older key
    /// version, then mark it finished. Safe to run on several nodes at once and to interrupt.
    pub async fn run_tenant_rotation(
        &self,
        tenant: TenantId,
        actor: Actor,
        meta: &RequestMeta,
        step: Step<'_>,
    ) -> Result<RotationReport> {
        let Some(rot) = self.read().await?.rotation().latest_key_rotation(tenant).await? else {
            return Ok(RotationReport { finished: true, ..Default::default() });
        };
        let target = rot.target_version;
        let mut report = RotationReport { target, finished: rot.finished_at.is_some(), ..Default::default() };
        if report.finished {
            return Ok(report);
        }
        let reach = policy::rotation_reach(&rot)?;
        // Copies a dead worker was writing are given up and deleted. Should their worker still be
        // alive, its switch fails and it tries that document again.
        {
            let mut tx = self.write().await?;
            tx.blobs().abandon_pending_blobs(tenant).await?;
            let ev = NewEvent::new(Some(tenant), actor, Action::KeysRotateTenantWork, Target::Tenant(tenant), meta)
                .with_detail(serde_json::json!({ "to": target }));
            tx.audit().append_audit(&ev, self.clock.now()).await?;
            tx.rotation().touch_key_rotation(tenant, target, self.clock.now(), 0, 0).await?;
            tx.commit().await?;
        }
        self.delete_replaced_blobs(tenant).await?;
        for _ in 0..PASSES {
            self.reencrypt_documents(&reach, &mut report, actor, meta, step).await?;
            self.reencrypt_fields(&reach, &mut report, step).await?;
            if !report.failed.is_empty() {
                break;
            }
            if self.finish_rotation(tenant, target, actor, meta, step).await? {
                report.finished = true;
                break;
            }
        }
        self.delete_replaced_blobs(tenant).await?;
        Ok(report)
    }

    /// Work every open rotation that no live worker is on (no sign of life for `quiet`): what
    /// servers run in the background, so an interrupted rotation finishes by itself. One
    /// tenant's failure does not hold up the others.
    pub async fn resume_tenant_rotations(
        &self,
        quiet: Duration,
        meta: &RequestMeta,
    ) -> Result<Vec<(TenantId, Result<RotationReport>)>> {
        let open = self.read().await?.rotation().open_key_rotations().await?;
        let now = self.clock.now();
        let mut reports = Vec::new();
        for r in open.into_iter().filter(|r| r.heartbeat_at.is_none_or(|h| now - h > quiet)) {
            reports.push((r.tenant_id, self.run_tenant_rotation(r.tenant_id, Actor::System, meta, &|_| {}).await));
        }
        Ok(reports)
    }

    /// Every tenant's newest rotation, with what is left to do.
    pub async fn rotation_status(&self) -> Result<Vec<RotationStatus>> {
        let mut tx = self.read().await?;
        let mut tenants: Vec<TenantId> = tx.keys().all_tenant_keys().await?.into_iter().map(|k| k.tenant_id).collect();
        tenants.dedup();
        let mut out = Vec::new();
        for t in tenants {
            let Some(rotation) = tx.rotation().latest_key_rotation(t).await? else { continue };
            let v = rotation.target_version;
            let documents_left = tx.rotation().count_documents_below_version(t, v).await?;
            let mut fields_left = 0;
            for c in SealedColumn::ALL {
                fields_left += tx.rotation().count_stale_fields(t, c, v).await?;
            }
            out.push(RotationStatus { rotation, documents_left, fields_left });
        }
        Ok(out)
    }

    async fn reencrypt_documents(
        &self,
        reach: &RotationReach,
        report: &mut RotationReport,
        actor: Actor,
        meta: &RequestMeta,
        step: Step<'_>,
    ) -> Result<()> {
        let tenant = reach.tenant_id();
        let mut after: Option<DocumentId> = None;
        loop {
            let batch = self.read().await?.rotation().documents_below_version(reach, after, DOCUMENT_BATCH).await?;
            let Some(last) = batch.last() else { return Ok(()) };
            after = Some(last.id);
            for doc in batch {
                match self.reencrypt_document(reach, &doc, step).await {
                    Ok(true) => report.documents += 1,
                    Ok(false) => {}
                    Err(e) => {
                        // A damaged document cannot be re-encrypted: it stays as it is (and keeps
                        // failing its integrity check on download); the rotation stays open.
                        let mut tx = self.write().await?;
                        let ev = NewEvent::new(
                            Some(tenant),
                            actor,
                            Action::KeysRotateTenantDocumentFailed,
                            Target::Document(doc.id),
                            meta,
                        )
                        .with_detail(serde_json::json!({ "error": e.to_string() }))
                        .on_matter(doc.matter_id);
                        tx.audit().append_audit(&ev, self.clock.now()).await?;
                        tx.commit().await?;
                        report.failed.push(format!("document {}: {e}", doc.id));
                    }
                }
            }
        }
    }

    /// Write a document's new copy under `target` and switch to it. False if the document
    /// changed meanwhile (another worker got there first).
    async fn reencrypt_document(&self, reach: &RotationReach, doc: &Document, step: Step<'_>) -> Result<bool> {
        let target = reach.target();
        let rev = uuid::Uuid::new_v4().simple().to_string();
        let new_key = blob_key(doc.tenant_id, doc.id, &rev);
        {
            let mut tx = self.write().await?;
            tx.blobs().mark_blob(doc.tenant_id, &new_key, true, self.clock.now()).await?;
            tx.commit().await?;
        }
        step("after-pending");
        if let Err(e) = self.write_copy(doc, target, &new_key).await {
            self.discard_blob(doc.tenant_id, &new_key).await?;
            return Err(e);
        }
        step("after-copy");
        let mut tx = self.write().await?;
        let switched = tx.blobs().claim_pending_blob(&new_key).await?
            && tx.rotation().switch_document_copy(reach, doc.id, &doc.blob_rev, &rev).await?;
        if !switched {
            drop(tx);
            self.discard_blob(doc.tenant_id, &new_key).await?;
            return Ok(false);
        }
        let old_key = doc.blob_key();
        tx.blobs().mark_blob(doc.tenant_id, &old_key, false, self.clock.now()).await?;
        tx.rotation().touch_key_rotation(doc.tenant_id, target, self.clock.now(), 1, 0).await?;
        tx.commit().await?;
        step("after-switch");
        // A running backup may name the old copy: it then stays until the backup ends.
        self.delete_replaced_blob(&old_key).await?;
        Ok(true)
    }

    /// Decrypt the document's copy in use and stream it, encrypted under `target`, into `key`.
    /// The plaintext must match the recorded length and SHA-256, or nothing is switched.
    async fn write_copy(&self, doc: &Document, target: u32, key: &str) -> Result<()> {
        let (_, tenant_key) = {
            let mut tx = self.read().await?;
            self.tenant_key(&mut *tx, doc.tenant_id, Some(target)).await?
        };
        let header = Header::new(target)?;
        let cipher = DocCipher::new(tenant_key.expose(), &header, doc.tenant_id, doc.matter_id, doc.id)?;
        let plain = self.open_document(doc, None).await?;
        let (plain, meter) = Meter::wrap(plain, doc.size);
        let written = self.blobs.put(key, stream::encrypt(cipher, &header, plain)).await?;
        let (size, sha256) = meter.result()?;
        if size != doc.size || sha256 != doc.sha256 {
            return Err(Error::Integrity("the document's bytes do not match its recorded checksum".into()));
        }
        if written != stream::stored_len(size) {
            return Err(Error::internal(format!("blob store wrote {written} of {size} bytes")));
        }
        Ok(())
    }

    async fn reencrypt_fields(&self, reach: &RotationReach, report: &mut RotationReport, step: Step<'_>) -> Result<()> {
        let (tenant, target) = (reach.tenant_id(), reach.target());
        for column in SealedColumn::ALL {
            let mut after = None;
            loop {
                let mut tx = self.write().await?;
                let cipher = field_cipher(&mut *tx, &self.keyring, tenant).await?;
                if cipher.current() != target {
                    return Err(Error::internal("a newer data key version than this rotation's exists"));
                }
                let batch = tx.rotation().stale_fields(reach, column, after, FIELD_BATCH).await?;
                let Some(last) = batch.last() else { break };
                after = Some(last.row);
                let mut done = 0;
                for f in &batch {
                    let place = f.place();
                    match cipher.open(&place, &f.value) {
                        Ok(plain) => {
                            let sealed = cipher.seal(&place, &plain)?;
                            if tx.rotation().replace_field(reach, f, &sealed).await? {
                                done += 1;
                            }
                        }
                        Err(e) => report.failed.push(format!("{} of row {}: {e}", column.as_str(), f.row)),
                    }
                }
                tx.rotation().touch_key_rotation(tenant, target, self.clock.now(), 0, done).await?;
                tx.commit().await?;
                report.fields += done;
                step("after-field-batch");
            }
        }
        Ok(())
    }

    /// Mark the rotation finished if nothing is left under an older version. The row is locked
    /// before counting, so a writer that used an old version either commits before the count
    /// (and is counted) or reopens the rotation after it (see `SealingTx::commit`).
    async fn finish_rotation(
        &self,
        tenant: TenantId,
        target: u32,
        actor: Actor,
        meta: &RequestMeta,
        step: Step<'_>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        if !tx.rotation().finish_key_rotation(tenant, target, self.clock.now()).await? {
            // Another worker finished it.
            return Ok(true);
        }
        let mut left = tx.rotation().count_documents_below_version(tenant, target).await?;
        for c in SealedColumn::ALL {
            left += tx.rotation().count_stale_fields(tenant, c, target).await?;
        }
        if left > 0 {
            return Ok(false);
        }
        let totals = tx.rotation().latest_key_rotation(tenant).await?;
        let ev = NewEvent::new(Some(tenant), actor, Action::KeysRotateTenantFinish, Target::Tenant(tenant), meta)
            .with_detail(crate::changes::detail(
                serde_json::json!({ "re_encrypting_to": target }),
                serde_json::json!({
                    "version": target,
                    "documents": totals.as_ref().map(|t| t.documents_done),
                    "fields": totals.as_ref().map(|t| t.fields_done),
                }),
                None,
            ));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        step("before-finish");
        tx.commit().await?;
        Ok(true)
    }

    /// Give up a copy: record it as replaced, delete it, forget it.
    async fn discard_blob(&self, tenant: TenantId, key: &str) -> Result<()> {
        let mut tx = self.write().await?;
        tx.blobs().mark_blob(tenant, key, false, self.clock.now()).await?;
        tx.commit().await?;
        self.blobs.delete(key).await?;
        let mut tx = self.write().await?;
        tx.blobs().forget_blob(key).await?;
        tx.commit().await
    }

    /// Delete every copy recorded as replaced, then its record; while a backup runs they stay,
    /// and the backup deletes them when it ends (`purge_replaced_blobs`).
    async fn delete_replaced_blobs(&self, tenant: TenantId) -> Result<()> {
        loop {
            let keys = self.read().await?.blobs().replaced_blobs(tenant, 100).await?;
            if keys.is_empty() {
                return Ok(());
            }
            for k in &keys {
                if !self.delete_replaced_blob(k).await? {
                    return Ok(());
                }
            }
        }
    }
}
