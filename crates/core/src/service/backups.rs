//! What the backup work needs from the portal: leases (one scheduler across nodes; a backup in
//! progress holds back the deletion of replaced document copies its snapshot may still name),
//! the deferred deletion of those copies, and the platform audit events and alert of a backup
//! run. The backup itself (snapshot, archive, target) lives in the binary.

use super::Portal;
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::error::Result;
use crate::model::{AlertKind, NewAlert, Severity};

/// Held while a backup runs: replaced document copies are not deleted meanwhile.
pub const BACKUP_LEASE: &str = "backup";
/// Held by the node whose scheduler runs the due backup, so nodes never run it twice.
pub const SCHEDULER_LEASE: &str = "backup-scheduler";

impl Portal {
    /// Take or renew lease `name` for `holder`, for `ttl` from now. False if another holder
    /// has it and it has not expired.
    pub async fn take_lease(&self, name: &str, holder: &str, ttl: time::Duration) -> Result<bool> {
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let taken = tx.leases().take_lease(name, holder, now, now + ttl).await?;
        tx.commit().await?;
        Ok(taken)
    }

    /// Give lease `name` up (a no-op if `holder` no longer has it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let mut tx = self.write().await?;
        tx.leases().release_lease(name, holder).await?;
        tx.commit().await
    }

    /// Whether a backup is running now, so replaced document copies must stay.
    pub(super) async fn blob_deletions_held(&self) -> Result<bool> {
        self.read().await?.leases().lease_held(BACKUP_LEASE, self.clock.now()).await
    }

    /// Delete a copy already recorded as replaced (in `blob_garbage`), then its record; unless
    /// a backup is running, when it stays for [`Self::purge_replaced_blobs`]. The check comes
    /// after the commit that replaced the copy: a backup whose snapshot still names the copy
    /// took its lease before that snapshot, so before the commit, and is seen here.
    pub(super) async fn delete_replaced_blob(&self, key: &str) -> Result<bool> {
        if self.blob_deletions_held().await? {
            return Ok(false);
        }
        self.blobs.delete(key).await?;
        let mut tx = self.write().await?;
        tx.blobs().forget_blob(key).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Delete every replaced copy of every tenant that a backup held back. Returns how many.
    pub async fn purge_replaced_blobs(&self) -> Result<u64> {
        let mut done = 0u64;
        loop {
            let keys = self.read().await?.blobs().all_replaced_blobs(100).await?;
            if keys.is_empty() {
                return Ok(done);
            }
            for k in &keys {
                if !self.delete_replaced_blob(k).await? {
                    return Ok(done);
                }
                done += 1;
            }
        }
    }

    /// Audit a backup action (`backup.create`, `backup.prune`, `backup.restore`...) on the
    /// platform chain.
    pub async fn audit_backup(
        &self,
        actor: Actor,
        action: crate::audit::Action,
        target: crate::audit::Target,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let ev = NewEvent::new(None, actor, action, target, &RequestMeta::default()).with_detail(detail);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// A backup run failed: audit `backup.failed` on the platform chain and raise the
    /// `backup_failure` alert, in one transaction.
    pub async fn backup_failed(&self, actor: Actor, kind: &str, error: &str) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let detail = serde_json::json!({ "kind": kind, "error": error });
        let ev =
            NewEvent::new(None, actor, Action::BackupFailed, Target::Backup(kind.to_string()), &RequestMeta::default())
                .with_detail(detail.clone());
        tx.audit().append_audit(&ev, now).await?;
        let alert = NewAlert::new(
            AlertKind::BackupFailure,
            Severity::Critical,
            None,
            format!("backup:{kind}"),
            format!("The {kind} backup failed: {error}"),
        )
        .with_detail(detail);
        self.raise_alert_in(&mut *tx, &alert, now).await?;
        tx.commit().await
    }
}
