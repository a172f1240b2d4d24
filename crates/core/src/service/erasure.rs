//! Destroying a firm: the routine shared by the retention job and customer-directed erasure,
//! the erasure ledger, and the signed erasure certificate.
//!
//! A destruction starts by writing the firm's row in the erasure ledger (in the transaction of
//! the approval, or of the retention job's decision) and shutting the firm out (status
//! `erasing`, sessions ended, tokens revoked). The lifecycle job then works through it, and
//! every step can be repeated, so a run cut off anywhere is finished by the next:
//!
//! 1. crypto-shred: the tenant's keys are deleted and the ledger records it, with the final
//!    head of the firm's audit chain, in one transaction. From here nothing of the firm can be
//!    decrypted anywhere, backups included.
//! 2. every stored object of the firm is deleted (deleting a missing object succeeds);
//! 3. every row of the firm in every table, its audit chain and its tenant row are deleted in
//!    one transaction with the certificate and the platform chain's `tenant.erased` event.
//!
//! The ledger row is kept for good: the id and name stay reserved, operators can fetch the
//! certificate, and the backups side re-applies every entry (`synced_to_backups_at`).

use super::Portal;
use super::notifications::utc;
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::crypto::certificate;
use crate::crypto::signing::AuditSigner;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::model::{
    ApprovalRequest, ApprovalState, ErasureReason, ErasureRecord, SensitiveAction, Tenant, TenantStatus,
};
use crate::policy::can;
use crate::policy::{self, OperatorPrincipal, PlatformPermission, Principal};
use crate::ports::{Mailer, Tx};
use time::OffsetDateTime;

/// Who asked for a destruction and who approved it.
#[derive(Clone, Debug)]
pub(super) struct Requested {
    reason: ErasureReason,
    by: Actor,
    requested_at: OffsetDateTime,
    approved_by: Option<Actor>,
    approved_at: Option<OffsetDateTime>,
}

impl Requested {
    /// The retention period ran out.
    pub(super) fn retention(now: OffsetDateTime) -> Self {
        Self {
            reason: ErasureReason::Retention,
            by: Actor::System,
            requested_at: now,
            approved_by: None,
            approved_at: None,
        }
    }

    /// The firm's owner asked (`req`) and `approver` approved.
    pub(super) fn customer(req: &ApprovalRequest, approver: &Principal, now: OffsetDateTime) -> Self {
        Self {
            reason: ErasureReason::Customer,
            by: Actor::User(req.requested_by),
            requested_at: req.requested_at,
            approved_by: Some(super::actor(approver)),
            approved_at: Some(now),
        }
    }
}

/// What one run of the lifecycle job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    /// Notices before destruction queued.
    pub notices: u32,
    /// Destructions started because retention ran out.
    pub started: u32,
    /// Destructions finished.
    pub destroyed: u32,
    /// Destructions that failed this time (they are tried again on the next run).
    pub failed: Vec<(TenantId, String)>,
    /// Certificates mailed to the firms' owners.
    pub certificates_mailed: u32,
}

impl Portal {
    /// The firm's owner directs the erasure of all of the firm's data: a request that a second
    /// owner or admin must approve (four eyes), after a fresh second-factor check.
    pub async fn request_erasure(&self, p: &Principal, meta: &RequestMeta) -> Result<ApprovalRequest> {
        match self.try_request_erasure(p, meta).await {
            Err(e @ (Error::Forbidden(_) | Error::StepUpRequired)) => {
                self.audit_refusal(p, Action::TenantErasureRefused, Target::Tenant(p.tenant_id), &e, meta).await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn try_request_erasure(&self, p: &Principal, meta: &RequestMeta) -> Result<ApprovalRequest> {
        policy::authorize_tenant::<can::RequestErasure>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let now = self.clock.now();
        let waiting = tx.approvals().list_approvals(p.tenant_id, 100).await?.into_iter().any(|a| {
            a.action == SensitiveAction::EraseTenant && a.state == ApprovalState::Pending && a.expires_at >= now
        });
        if waiting {
            return Err(Error::WrongState("an erasure request is already waiting for approval".into()));
        }
        let req = self.request(&mut *tx, p, SensitiveAction::EraseTenant, meta).await?;
        tx.commit().await?;
        Ok(req)
    }

    /// Start destroying `tenant`, in `tx`: its ledger row (with the owners' addresses for the
    /// certificate), status `erasing`, and every session and token ended. The lifecycle job
    /// does the rest.
    pub(super) async fn begin_erasure(&self, tx: &mut dyn Tx, tenant: &Tenant, req: Requested) -> Result<()> {
        let now = self.clock.now();
        let notify_to = self.owners(tx, tenant.id).await?.into_iter().map(|u| u.email).collect();
        let record = ErasureRecord {
            tenant_id: tenant.id,
            tenant_name: tenant.name.clone(),
            reason: req.reason,
            requested_by: req.by.to_stored(),
            approved_by: req.approved_by.as_ref().map(Actor::to_stored),
            requested_at: req.requested_at,
            approved_at: req.approved_at,
            keys_destroyed_at: None,
            audit_seq: None,
            audit_head: None,
            finished_at: None,
            counts: serde_json::json!({}),
            certificate: None,
            notify_to,
            notified_at: None,
            synced_to_backups_at: None,
        };
        if !tx.lifecycle().insert_erasure(&record).await? {
            return Err(Error::WrongState(format!("the erasure of {:?} has already started", tenant.name).into()));
        }
        tx.lifecycle().set_tenant_status(tenant.id, TenantStatus::Erasing, tenant.ended_at).await?;
        let (sessions, tokens) = tx.lifecycle().revoke_tenant_access(tenant.id, now).await?;
        let by = req.approved_by.unwrap_or(req.by);
        let facts = serde_json::json!({
            "name": &tenant.name,
            "reason": req.reason.as_str(),
            "requested_by": &record.requested_by,
            "approved_by": &record.approved_by,
            "sessions_ended": sessions,
            "tokens_revoked": tokens,
        });
        self.lifecycle_events(tx, tenant.id, by, Action::TenantErasureStart, facts, &RequestMeta::default()).await
    }

    /// One run of the lifecycle job: notices and retention, every unfinished destruction, and
    /// the certificate mails (when a mailer is configured). `signer` signs the certificates.
    pub async fn run_lifecycle(&self, signer: &AuditSigner, mailer: Option<&dyn Mailer>) -> Result<LifecycleReport> {
        let (notices, started) = self.retention_sweep().await?;
        let mut report = LifecycleReport { notices, started, ..LifecycleReport::default() };
        let open = self.read().await?.lifecycle().open_erasures().await?;
        for e in open {
            match self.destroy(e.clone(), signer).await {
                Ok(true) => report.destroyed += 1,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(tenant = %e.tenant_id, error = %err, "destroying a tenant failed; trying again later");
                    report.failed.push((e.tenant_id, err.to_string()));
                }
            }
        }
        if let Some(mailer) = mailer {
            report.certificates_mailed = self.mail_certificates(mailer).await?;
        }
        Ok(report)
    }

    /// Carry a destruction as far as it goes; true if this call finished it.
    async fn destroy(&self, mut e: ErasureRecord, signer: &AuditSigner) -> Result<bool> {
        let tenant = e.tenant_id;
        if e.keys_destroyed_at.is_none() {
            let mut tx = self.write().await?;
            let head = tx.audit().audit_head(&tenant.to_string()).await?;
            let keys = tx.keys().destroy_tenant_keys(tenant).await?;
            e.keys_destroyed_at = Some(self.clock.now());
            e.audit_seq = head.as_ref().map(|h| h.seq);
            e.audit_head = head.map(|h| h.hash);
            e.counts = serde_json::json!({ "tenant_keys": keys });
            if !tx.lifecycle().erasure_keys_destroyed(&e).await? {
                // Another node shredded them first: carry on from its record.
                drop(tx);
                e = self.read().await?.lifecycle().erasure(tenant).await?.ok_or(Error::NotFound)?;
                return Box::pin(self.destroy(e, signer)).await;
            }
            let facts =
                serde_json::json!({ "keys_destroyed": keys, "audit_head": &e.audit_head, "audit_seq": e.audit_seq });
            self.erasure_event(&mut *tx, tenant, Action::KeysShred, facts).await?;
            tx.commit().await?;
        }
        // Whatever this node cached of the keys goes too.
        self.keyring.forget(tenant)?;
        let blobs = self.read().await?.lifecycle().tenant_blob_keys(tenant).await?;
        for key in &blobs {
            self.blobs.delete(key).await?;
        }
        let mut tx = self.write().await?;
        let rows = tx.lifecycle().delete_tenant_rows(tenant).await?;
        let mut counts = e.counts.as_object().cloned().unwrap_or_default();
        counts.insert("blobs".into(), blobs.len().into());
        for (table, n) in rows {
            // The keys were counted when they were shredded; here they are gone already.
            if table != "tenant_keys" {
                counts.insert(table, n.into());
            }
        }
        e.counts = serde_json::Value::Object(counts);
        e.finished_at = Some(self.clock.now());
        e.certificate = Some(certificate::sign(signer, &certificate_body(&e, signer))?);
        if !tx.lifecycle().finish_erasure(&e).await? {
            return Ok(false);
        }
        let facts = serde_json::json!({
            "name": &e.tenant_name,
            "reason": e.reason.as_str(),
            "requested_by": &e.requested_by,
            "approved_by": &e.approved_by,
            "destroyed": &e.counts,
            "audit_seq": e.audit_seq,
            "audit_head": &e.audit_head,
        });
        self.erasure_event(&mut *tx, tenant, Action::TenantErased, facts).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn erasure_event(
        &self,
        tx: &mut dyn Tx,
        tenant: TenantId,
        action: crate::audit::Action,
        detail: serde_json::Value,
    ) -> Result<()> {
        let ev = NewEvent::new(None, Actor::System, action, Target::Tenant(tenant), &RequestMeta::default())
            .with_detail(detail);
        tx.audit().append_audit(&ev, self.clock.now()).await
    }

    /// Mail each finished erasure's certificate to the owners captured before destruction, then
    /// forget their addresses. A failed send is tried again on the next run.
    async fn mail_certificates(&self, mailer: &dyn Mailer) -> Result<u32> {
        let mut mailed = 0;
        for e in self.read().await?.lifecycle().erasures_to_notify().await? {
            let Some(cert) = &e.certificate else { continue };
            let (subject, body) = certificate_mail(&e, cert);
            let mut sent = 0;
            for to in &e.notify_to {
                match mailer.send(to, &subject, &body).await {
                    Ok(()) => sent += 1,
                    Err(err) => {
                        tracing::warn!(tenant = %e.tenant_id, error = %err, "mailing an erasure certificate failed")
                    }
                }
            }
            if sent < e.notify_to.len() {
                continue;
            }
            let mut tx = self.write().await?;
            tx.lifecycle().erasure_notified(e.tenant_id, self.clock.now()).await?;
            self.erasure_event(
                &mut *tx,
                e.tenant_id,
                Action::TenantCertificateMailed,
                serde_json::json!({ "recipients": sent }),
            )
            .await?;
            tx.commit().await?;
            mailed += 1;
        }
        Ok(mailed)
    }

    /// A destroyed (or erasing) firm's ledger row, by name (command line).
    pub async fn erasure_record_cli(&self, name: &str) -> Result<ErasureRecord> {
        self.read().await?.lifecycle().erasure_by_name(name).await?.ok_or(Error::NotFound)
    }

    /// A destroyed firm's signed certificate (operators who may see the tenant directory).
    pub async fn erasure_certificate(&self, op: &OperatorPrincipal, name: &str) -> Result<String> {
        policy::authorize_platform(op, PlatformPermission::ViewTenants, self.clock.now())?;
        let e = self.read().await?.lifecycle().erasure_by_name(name).await?.ok_or(Error::NotFound)?;
        e.certificate.ok_or_else(|| Error::WrongState(format!("the erasure of {name:?} has not finished").into()))
    }

    /// Finished erasures the backup target has not applied yet (for the backup job).
    pub async fn unsynced_erasures(&self) -> Result<Vec<ErasureRecord>> {
        self.read().await?.lifecycle().unsynced_erasures().await
    }

    /// The backup target applied an erasure (for the backup job); audited on the platform chain.
    pub async fn mark_erasure_synced(&self, tenant: TenantId) -> Result<bool> {
        let mut tx = self.write().await?;
        let marked = tx.lifecycle().mark_erasure_synced(tenant, self.clock.now()).await?;
        if marked {
            self.erasure_event(&mut *tx, tenant, Action::TenantErasureSyncedToBackups, serde_json::json!({})).await?;
        }
        tx.commit().await?;
        Ok(marked)
    }
}

/// The signed statement: version marker, who, when, what, and the chain's final head.
fn certificate_body(e: &ErasureRecord, signer: &AuditSigner) -> serde_json::Value {
    let at = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    serde_json::json!({
        "format": certificate::FORMAT,
        "version": certificate::VERSION,
        "tenant_id": e.tenant_id.to_string(),
        "tenant_name": &e.tenant_name,
        "reason": e.reason.as_str(),
        "requested_by": &e.requested_by,
        "requested_at": at(Some(e.requested_at)),
        "approved_by": &e.approved_by,
        "approved_at": at(e.approved_at),
        "keys_destroyed_at": at(e.keys_destroyed_at),
        "finished_at": at(e.finished_at),
        "destroyed": &e.counts,
        "audit_chain": { "final_seq": e.audit_seq, "final_head": &e.audit_head },
        "signing_key_id": signer.key_id(),
    })
}

/// The certificate mail: a short explanation and the certificate itself.
fn certificate_mail(e: &ErasureRecord, cert: &str) -> (String, String) {
    let firm = super::notifications::one_line(&e.tenant_name, 200);
    let when = e.finished_at.map(utc).unwrap_or_default();
    let why = match e.reason {
        ErasureReason::Customer => "as your firm directed",
        ErasureReason::Retention => "because the retention period after the subscription ended ran out",
    };
    let body = format!(
        "All data of {firm} was destroyed on {when} UTC, {why}.\n\
         \n\
         Below is the signed erasure certificate. Keep it: it can be checked offline with\n\
         the service's public signing key (portcullis tenant verify-certificate FILE\n\
         --public-key KEY).\n\
         \n\
         {cert}\n"
    );
    (format!("Erasure certificate for {firm}"), body)
}
