//! Exporting a whole firm for portability. The owner asks (after a fresh second-factor check),
//! naming an age recipient (`age1...`) they hold the identity of; a second owner or admin
//! approves (four eyes), which records the export; the export job then writes every matter
//! with its members, documents and messages, the users and the firm's audit log into one
//! archive in the shared format of `crate::archive`, encrypted to that recipient, recording
//! its progress as it goes. Documents are decrypted from their stored ciphertext a piece at a
//! time and go straight into the age stream, which goes straight to the blob store: no
//! plaintext is written anywhere. The archive is kept for [`EXPORT_KEEP`], downloadable by the
//! owners, then deleted.
//!
//! The archive's entries, after the version marker (label [`EXPORT_LABEL`]):
//! `tenant.json`, `users.jsonl` (no password hashes, second factors, sessions or tokens),
//! `matters.jsonl` (each with its members), `documents.jsonl` (metadata) and
//! `documents/<id>` (original bytes) per document, `messages.jsonl`, `audit.jsonl` (the
//! firm's chain as stored, hashes included, so it can be checked), then the manifest.

use super::{Portal, actor};
use crate::archive::{ArchiveError, ArchiveWriter, Digest, Manifest};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, StoredEvent, Target, chain_key};
use crate::error::{Error, Result};
use crate::ids::ApprovalId;
use crate::model::{ApprovalRequest, ApprovalState, Document, ExportState, SensitiveAction, TenantExport};
use crate::policy::can;
use crate::policy::{self, Principal};
use crate::ports::{ByteStream, Tx};
use futures::{SinkExt, StreamExt};
use std::str::FromStr;
use time::Duration;

/// The label in an export archive's version entry.
pub const EXPORT_LABEL: &str = "tenant-export";
/// How long a finished export can be downloaded before it is deleted.
pub const EXPORT_KEEP: Duration = Duration::days(7);
/// Audit events are read from the chain in pages of this many.
const AUDIT_PAGE: i64 = 500;

/// What one run of the export job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub finished: u32,
    pub failed: u32,
    pub expired: u32,
}

/// Check an age recipient as the owner typed it.
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text.trim())
        .map_err(|_| Error::invalid("recipient", "an age X25519 public key (age1...) is needed"))
}

/// The encrypted bytes go to the blob store's upload through this.
type Upload = futures::channel::mpsc::Sender<std::io::Result<bytes::Bytes>>;

fn archive_error(e: ArchiveError) -> Error {
    Error::internal(format!("export archive: {e}"))
}

/// JSON lines of `items`, each mapped by `line`.
fn jsonl<T>(items: &[T], line: impl Fn(&T) -> serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(line(item).to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    super::notifications::utc(t)
}

/// An audit event as an export line: every stored field, so the chain can be re-hashed.
pub fn event_line(e: &StoredEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq, "at_ms": crate::clock::to_millis(e.at), "actor": &e.actor, "action": &e.action,
        "target": &e.target, "ip": &e.ip, "request_id": &e.request_id, "detail": &e.detail,
        "matter": &e.matter, "prev_hash": &e.prev_hash, "hash": &e.hash,
    })
}

/// A document's metadata as an export line.
fn document_line(d: &Document) -> serde_json::Value {
    serde_json::json!({
        "id": d.id.to_string(), "matter_id": d.matter_id.to_string(), "name": &d.name, "size": d.size,
        "content_type": &d.content_type, "sha256": &d.sha256, "uploaded_by": d.uploaded_by.to_string(),
        "created_at": rfc3339(d.created_at),
    })
}

/// How long one node may take to write an export before another may take it over.
const EXPORT_LEASE: time::Duration = time::Duration::hours(6);

impl Portal {
    /// The firm's owner asks for an export of all of the firm's data, encrypted to
    /// `recipient`: a request that a second owner or admin must approve.
    pub async fn request_export(&self, p: &Principal, recipient: &str, meta: &RequestMeta) -> Result<ApprovalRequest> {
        match self.try_request_export(p, recipient, meta).await {
            Err(e @ (Error::Forbidden(_) | Error::StepUpRequired)) => {
                self.audit_refusal(p, Action::ExportRefused, Target::Tenant(p.tenant_id), &e, meta).await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn try_request_export(&self, p: &Principal, recipient: &str, meta: &RequestMeta) -> Result<ApprovalRequest> {
        policy::authorize_tenant::<can::ExportTenant>(p)?;
        let recipient = parse_recipient(recipient)?.to_string();
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let req =
            self.request(&mut *tx, p, SensitiveAction::ExportTenant { recipient: recipient.clone() }, meta).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::ExportRequested, Target::Export(req.id), meta)
            .with_detail(serde_json::json!({ "recipient": recipient }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        Ok(req)
    }

    /// Record the export an approval allows, in the approval's transaction; the export job
    /// writes it.
    pub(super) async fn approve_export(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        req: &ApprovalRequest,
        recipient: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        let now = self.clock.now();
        let x = TenantExport {
            id: req.id,
            tenant_id: p.tenant_id,
            recipient: parse_recipient(recipient)?.to_string(),
            requested_by: req.requested_by,
            approved_by: p.user_id,
            state: ExportState::Pending,
            entries_done: 0,
            entries_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            archive_size: None,
            archive_sha256: None,
            manifest_sha256: None,
            error: None,
            created_at: now,
            finished_at: None,
            expires_at: None,
        };
        tx.exports().insert_export(&x).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::ExportApproved, Target::Export(x.id), meta)
            .with_detail(serde_json::json!({ "requested_by": req.requested_by.to_string() }));
        tx.audit().append_audit(&ev, now).await
    }

    /// One export of the caller's firm (owners).
    pub async fn tenant_export(&self, p: &Principal, id: ApprovalId) -> Result<TenantExport> {
        policy::authorize_tenant::<can::ExportTenant>(p)?;
        let mut tx = self.read().await?;
        if let Some(x) = tx.exports().tenant_export(p.tenant_id, id).await? {
            return Ok(x);
        }
        // Asked for by its approval before a second person approved it: say so.
        match tx.approvals().approval(p.tenant_id, id).await? {
            Some(a) if matches!(a.action, SensitiveAction::ExportTenant { .. }) => {
                Err(Error::WrongState(format!("the export request is {}", awaiting(a.state)).into()))
            }
            _ => Err(Error::NotFound),
        }
    }

    /// Download a finished export's archive (owners, after a fresh second-factor check;
    /// audited before the first byte leaves).
    pub async fn download_export(&self, p: &Principal, id: ApprovalId, meta: &RequestMeta) -> Result<ByteStream> {
        match self.try_download_export(p, id, meta).await {
            Err(e @ (Error::Forbidden(_) | Error::StepUpRequired)) => {
                self.audit_refusal(p, Action::ExportDownloadRefused, Target::Export(id), &e, meta).await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn try_download_export(&self, p: &Principal, id: ApprovalId, meta: &RequestMeta) -> Result<ByteStream> {
        let x = self.tenant_export(p, id).await?;
        if x.state != ExportState::Done {
            return Err(Error::WrongState(format!("the export is {}", x.state.as_str()).into()));
        }
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::ExportDownloaded, Target::Export(id), meta)
            .with_detail(serde_json::json!({ "size": x.archive_size, "sha256": &x.archive_sha256 }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        self.blobs.get(&x.blob_key(), None).await
    }

    /// One run of the export job: write every approved export not yet written (one cut off by
    /// a restart starts over), and delete the archives past their time.
    pub async fn run_exports(&self) -> Result<ExportReport> {
        let mut report = ExportReport::default();
        let pending = self.read().await?.exports().exports_in_state(ExportState::Pending).await?;
        // One node writes each export: the others skip it while its lease holds (an export cut
        // off by a crash is taken up again once the lease has expired).
        let holder = uuid::Uuid::new_v4().to_string();
        for mut x in pending {
            let lease = format!("export:{}", x.id);
            if !self.take_lease(&lease, &holder, EXPORT_LEASE).await? {
                continue;
            }
            let outcome = match self.write_export(&mut x).await {
                Ok(()) => {
                    report.finished += 1;
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(export = %x.id, tenant = %x.tenant_id, error = %e, "a tenant export failed");
                    report.failed += 1;
                    self.fail_export(x, &e).await
                }
            };
            if let Err(e) = self.release_lease(&lease, &holder).await {
                tracing::warn!(error = %e, "releasing an export's lease; it expires by itself");
            }
            outcome?;
        }
        let now = self.clock.now();
        let done = self.read().await?.exports().exports_in_state(ExportState::Done).await?;
        for x in done.into_iter().filter(|x| x.expires_at.is_some_and(|at| at <= now)) {
            self.blobs.delete(&x.blob_key()).await?;
            let x = TenantExport { state: ExportState::Expired, ..x };
            self.export_event(&x, Action::ExportExpired, serde_json::json!({})).await?;
            report.expired += 1;
        }
        Ok(report)
    }

    /// Record `x` and an event about it in one transaction.
    async fn export_event(
        &self,
        x: &TenantExport,
        action: crate::audit::Action,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        tx.exports().update_export(x).await?;
        let ev = NewEvent::new(Some(x.tenant_id), Actor::System, action, Target::Export(x.id), &RequestMeta::default())
            .with_detail(detail);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    async fn fail_export(&self, x: TenantExport, why: &Error) -> Result<()> {
        // Whatever was stored of it goes (deleting a missing object succeeds).
        self.blobs.delete(&x.blob_key()).await?;
        let x = TenantExport {
            state: ExportState::Failed,
            error: Some(why.to_string()),
            finished_at: Some(self.clock.now()),
            ..x
        };
        self.export_event(&x, Action::ExportFailed, serde_json::json!({ "error": why.to_string() })).await
    }

    async fn save_progress(&self, x: &TenantExport) -> Result<()> {
        let mut tx = self.write().await?;
        tx.exports().update_export(x).await?;
        tx.commit().await
    }

    /// Write `x`'s archive to the blob store and record it done.
    async fn write_export(&self, x: &mut TenantExport) -> Result<()> {
        let (up, rx) = futures::channel::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
        let body: ByteStream = Box::pin(rx);
        let key = x.blob_key();
        let upload = self.blobs.put(&key, body);
        let produce = self.produce_export(x, up);
        let (stored, made) = futures::future::join(upload, produce).await;
        let (manifest, digest) = made?;
        let stored = stored?;
        if stored != digest.size {
            return Err(Error::internal(format!("the blob store kept {stored} of {} bytes", digest.size)));
        }
        let text = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
        let now = self.clock.now();
        x.state = ExportState::Done;
        x.archive_size = Some(digest.size);
        x.archive_sha256 = Some(digest.sha256.clone());
        x.manifest_sha256 = Some(hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &text).as_ref()));
        x.finished_at = Some(now);
        x.expires_at = Some(now + EXPORT_KEEP);
        let detail = serde_json::json!({
            "entries": manifest.entries.len(), "size": digest.size, "sha256": &digest.sha256,
            "manifest_sha256": &x.manifest_sha256,
        });
        self.export_event(x, Action::ExportFinished, detail).await
    }

    /// Produce the archive into `up`; an error stops the upload with nothing stored.
    async fn produce_export(&self, x: &mut TenantExport, mut up: Upload) -> Result<(Manifest, Digest)> {
        match self.produce_entries(x, &mut up).await {
            Ok(done) => Ok(done),
            Err(e) => {
                let _ = up.send(Err(std::io::Error::other("the export failed"))).await;
                Err(e)
            }
        }
    }

    async fn produce_entries(&self, x: &mut TenantExport, up: &mut Upload) -> Result<(Manifest, Digest)> {
        let recipient = parse_recipient(&x.recipient)?;
        let now = self.clock.now();
        let (users_grant, reach) = policy::export_reach(x)?;
        let mut tx = self.read().await?;
        let tenant = tx.tenants().tenant(x.tenant_id).await?.ok_or(Error::NotFound)?;
        let users = tx.users().list_users(&users_grant).await?;
        let matters = tx.matters().list_matters(&reach).await?;
        let mut matter_lines = Vec::new();
        let mut documents = Vec::new();
        let mut messages = Vec::new();
        for m in &matters {
            let members = tx.matters().list_members(&policy::export_matter(&reach, m.id, x.approved_by)?).await?;
            matter_lines.push(serde_json::json!({
                "id": m.id.to_string(), "reference": &m.reference, "title": &m.title,
                "created_by": m.created_by.to_string(), "created_at": rfc3339(m.created_at),
                "restricted": m.restricted,
                "members": members.iter().map(|u| serde_json::json!({
                    "user_id": u.user_id.to_string(), "role": u.role.as_str(), "added_at": rfc3339(u.added_at),
                })).collect::<Vec<_>>(),
            }));
            documents
                .extend(tx.documents().list_documents(&policy::export_matter(&reach, m.id, x.approved_by)?).await?);
            messages.extend(tx.messages().list_messages(&policy::export_matter(&reach, m.id, x.approved_by)?).await?);
        }
        drop(tx);
        x.entries_total = 7u64.saturating_add(documents.len() as u64);
        x.bytes_total = documents.iter().map(|d| d.size).sum();
        x.entries_done = 0;
        x.bytes_done = 0;
        self.save_progress(x).await?;

        let mut w = ArchiveWriter::new(&recipient, EXPORT_LABEL, now).map_err(archive_error)?;
        let tenant_json = serde_json::json!({
            "id": tenant.id.to_string(), "name": &tenant.name, "display_name": &tenant.display_name,
            "created_at": rfc3339(tenant.created_at), "two_factor_staff": tenant.two_factor_staff,
            "two_factor_clients": tenant.two_factor_clients,
        });
        let users_jsonl = jsonl(&users, |u| {
            serde_json::json!({
                "id": u.id.to_string(), "email": &u.email, "display_name": &u.display_name,
                "role": u.role.as_str(), "status": u.status.as_str(), "created_at": rfc3339(u.created_at),
            })
        });
        let small: [(&str, Vec<u8>); 4] = [
            ("tenant.json", tenant_json.to_string().into_bytes()),
            ("users.jsonl", users_jsonl),
            ("matters.jsonl", jsonl(&matter_lines, Clone::clone)),
            ("documents.jsonl", jsonl(&documents, document_line)),
        ];
        for (name, data) in small {
            w.add(name, &data).map_err(archive_error)?;
            self.step(x, &mut w, up, 0).await?;
        }
        for d in &documents {
            w.begin(&format!("documents/{}", d.id), d.size).map_err(archive_error)?;
            let mut plain = self.open_document(d, None).await?;
            while let Some(piece) = plain.next().await {
                let piece = piece.map_err(Error::internal)?;
                w.write(&piece).map_err(archive_error)?;
                send(up, &mut w).await?;
            }
            w.end().map_err(archive_error)?;
            self.step(x, &mut w, up, d.size).await?;
        }
        let messages_jsonl = jsonl(&messages, |m| {
            serde_json::json!({
                "id": m.id.to_string(), "matter_id": m.matter_id.to_string(), "author_id": m.author_id.to_string(),
                "author_name": &m.author_name, "body": &m.body, "created_at": rfc3339(m.created_at),
            })
        });
        w.add("messages.jsonl", &messages_jsonl).map_err(archive_error)?;
        self.step(x, &mut w, up, 0).await?;
        self.write_audit_entry(x, &mut w, up).await?;
        let about = serde_json::json!({
            "kind": EXPORT_LABEL, "tenant_id": x.tenant_id.to_string(), "tenant_name": &tenant.name,
            "export_id": x.id.to_string(), "users": users.len(), "matters": matters.len(),
            "documents": documents.len(), "messages": messages.len(),
        });
        let (manifest, tail, digest) = w.finish(about, rfc3339(now)).map_err(archive_error)?;
        up.send(Ok(bytes::Bytes::from(tail))).await.map_err(|_| Error::internal("the export upload stopped"))?;
        x.entries_done = x.entries_total;
        Ok((manifest, digest))
    }

    /// The firm's audit chain, as stored, one JSON line per event. Its size must be declared
    /// before the entry starts, so the chain is read twice: once to measure, once to write
    /// (pages of events, never the whole chain in memory). Events appended between the two
    /// readings are left out: the entry ends at the head measured.
    async fn write_audit_entry(&self, x: &mut TenantExport, w: &mut ArchiveWriter, up: &mut Upload) -> Result<()> {
        let chain = chain_key(Some(x.tenant_id));
        let (mut size, mut last) = (0u64, 0i64);
        let mut after = 0i64;
        loop {
            let page = self.read().await?.audit().audit_chain(&chain, after, AUDIT_PAGE).await?;
            let Some(tail) = page.last() else { break };
            after = tail.seq;
            for e in &page {
                size = size.saturating_add(event_line(e).to_string().len() as u64 + 1);
                last = e.seq;
            }
        }
        w.begin("audit.jsonl", size).map_err(archive_error)?;
        let mut after = 0i64;
        while after < last {
            let page = self.read().await?.audit().audit_chain(&chain, after, AUDIT_PAGE).await?;
            let Some(tail) = page.last() else { break };
            after = tail.seq;
            for e in page.iter().filter(|e| e.seq <= last) {
                let mut line = event_line(e).to_string().into_bytes();
                line.push(b'\n');
                w.write(&line).map_err(archive_error)?;
            }
            send(up, w).await?;
        }
        w.end().map_err(archive_error)?;
        self.step(x, w, up, 0).await
    }

    /// An entry is done: hand its bytes on and record the progress.
    async fn step(&self, x: &mut TenantExport, w: &mut ArchiveWriter, up: &mut Upload, bytes: u64) -> Result<()> {
        send(up, w).await?;
        x.entries_done = x.entries_done.saturating_add(1).min(x.entries_total);
        x.bytes_done = x.bytes_done.saturating_add(bytes);
        self.save_progress(x).await
    }
}

async fn send(up: &mut Upload, w: &mut ArchiveWriter) -> Result<()> {
    let out = w.take_output();
    if out.is_empty() {
        return Ok(());
    }
    up.send(Ok(bytes::Bytes::from(out))).await.map_err(|_| Error::internal("the export upload stopped"))
}

fn awaiting(state: ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "waiting for a second owner or admin to approve it",
        ApprovalState::Rejected => "rejected",
        ApprovalState::Approved => "approved",
    }
}
