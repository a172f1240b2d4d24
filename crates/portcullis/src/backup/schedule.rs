//! The backup schedule: once a day at `backup_at` (UTC, by the portal's clock), on one node
//! (the scheduler lease), a backup classified grandfather-father-son (monthly if there is no
//! monthly backup yet this month, else weekly if there is no weekly one this ISO week, else
//! daily), then the target pruned to the newest `backup_keep_*` of each scheduled kind. Manual
//! backups are never pruned: whoever made one deletes it.

use super::{Job, Kind, Made, core};
use portcullis_core::audit::{Action, Actor, Target};
use portcullis_core::service::{Portal, SCHEDULER_LEASE};
use std::sync::Arc;
use time::OffsetDateTime;

/// How many of each scheduled kind to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

/// A backup in the target, as the schedule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: String,
    pub kind: Kind,
    pub created: OffsetDateTime,
}

/// The kind of a scheduled backup made at `now`.
pub fn classify(now: OffsetDateTime, existing: &[Existing]) -> Kind {
    let month = (now.year(), now.month());
    let week = now.to_iso_week_date();
    let any =
        |kind: Kind, same: &dyn Fn(OffsetDateTime) -> bool| existing.iter().any(|e| e.kind == kind && same(e.created));
    let this_week = |t: OffsetDateTime| {
        let (y, w, _) = t.to_iso_week_date();
        (y, w) == (week.0, week.1)
    };
    if !any(Kind::Monthly, &|t| (t.year(), t.month()) == month) {
        Kind::Monthly
    } else if !any(Kind::Weekly, &this_week) {
        Kind::Weekly
    } else {
        Kind::Daily
    }
}

/// Whether today's scheduled backup is due at `now`: `at` has passed today and no scheduled
/// backup was made since.
pub fn due(now: OffsetDateTime, at: time::Time, existing: &[Existing]) -> bool {
    let today_at = now.date().with_time(at).assume_utc();
    now >= today_at && !existing.iter().any(|e| e.kind != Kind::Manual && e.created >= today_at)
}

/// The ids to delete so that only the newest `keep` of each scheduled kind remain.
pub fn to_prune(existing: &[Existing], keep: Keep) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, n) in [(Kind::Daily, keep.daily), (Kind::Weekly, keep.weekly), (Kind::Monthly, keep.monthly)] {
        let mut of_kind: Vec<&Existing> = existing.iter().filter(|e| e.kind == kind).collect();
        of_kind.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        out.extend(of_kind.into_iter().skip(n).map(|e| e.id.clone()));
    }
    out
}

/// The backups in the target whose manifest parses.
pub async fn existing(target: &super::BackupTarget) -> anyhow::Result<Vec<Existing>> {
    let mut out = Vec::new();
    for l in super::list(target).await? {
        let Some(signed) = l.signed else { continue };
        let about = signed.about()?;
        let created =
            OffsetDateTime::parse(&signed.manifest.created_at, &time::format_description::well_known::Rfc3339)?;
        out.push(Existing { id: l.id, kind: about.kind, created });
    }
    Ok(out)
}

/// What the scheduler needs (owned: it lives in a task).
#[derive(Debug)]
pub struct Scheduler {
    pub portal: Portal,
    pub store: portcullis_store::SqlStore,
    pub blobs: Arc<dyn portcullis_core::ports::BlobStore>,
    pub target: super::BackupTarget,
    pub recipient: age::x25519::Recipient,
    pub signer: portcullis_core::crypto::signing::AuditSigner,
    pub node: String,
    pub at: time::Time,
    pub keep: Keep,
}

/// After a failed run, the next attempt waits this long (by the portal's clock).
pub const RETRY_AFTER: time::Duration = time::Duration::minutes(15);
/// The scheduler lease covers one run.
const SCHEDULER_TTL: time::Duration = time::Duration::hours(6);

impl Scheduler {
    /// One look: run the due backup if this node gets the lease (the loop is
    /// `background::spawn_backups`). `Ok(None)` when nothing was
    /// due or another node has it.
    pub async fn tick(&self) -> Result<Option<Made>, (Kind, anyhow::Error)> {
        let now = self.portal.clock().now();
        let list = existing(&self.target).await.map_err(|e| (Kind::Daily, e))?;
        if !due(now, self.at, &list) {
            return Ok(None);
        }
        let holder = format!("{}:{}", self.node, uuid::Uuid::new_v4().simple());
        let taken = self.portal.take_lease(SCHEDULER_LEASE, &holder, SCHEDULER_TTL).await;
        if !taken.map_err(|e| (Kind::Daily, core(e)))? {
            return Ok(None);
        }
        let result = self.run(now).await;
        if let Err(e) = self.portal.release_lease(SCHEDULER_LEASE, &holder).await {
            tracing::warn!(error = %e, "releasing the scheduler lease; it expires by itself");
        }
        result
    }

    async fn run(&self, now: OffsetDateTime) -> Result<Option<Made>, (Kind, anyhow::Error)> {
        // Listed again under the lease: another node may have just finished today's.
        let list = existing(&self.target).await.map_err(|e| (Kind::Daily, e))?;
        if !due(now, self.at, &list) {
            return Ok(None);
        }
        let kind = classify(now, &list);
        let job = Job {
            portal: &self.portal,
            store: &self.store,
            blobs: self.blobs.as_ref(),
            target: &self.target,
            recipient: &self.recipient,
            signer: &self.signer,
            node: &self.node,
            actor: Actor::System,
            show_progress: false,
        };
        let made = super::create(&job, kind).await.map_err(|e| (kind, e))?;
        tracing::info!(id = made.id, kind = kind.as_str(), size = made.archive.size, "backup made");
        metrics::gauge!("portcullis_backup_size_bytes").set(made.archive.size as f64);
        let list = existing(&self.target).await.map_err(|e| (kind, e))?;
        record_newest(&list);
        prune(&self.portal, &self.target, &list, self.keep, Actor::System).await.map_err(|e| (kind, e))?;
        Ok(Some(made))
    }
}

pub fn record_newest(list: &[Existing]) {
    if let Some(newest) = list.iter().map(|e| e.created).max() {
        metrics::gauge!("portcullis_backup_last_success_timestamp_seconds").set(newest.unix_timestamp() as f64);
    }
}

/// Delete what the policy does not keep; audited as `backup.prune` (one event naming them).
pub async fn prune(
    portal: &Portal,
    target: &super::BackupTarget,
    list: &[Existing],
    keep: Keep,
    actor: Actor,
) -> anyhow::Result<Vec<String>> {
    let gone = to_prune(list, keep);
    if gone.is_empty() {
        return Ok(gone);
    }
    for id in &gone {
        super::delete(target, id).await?;
    }
    let detail = serde_json::json!({
        "deleted": gone,
        "keep": {"daily": keep.daily, "weekly": keep.weekly, "monthly": keep.monthly},
    });
    portal.audit_backup(actor, Action::BackupPrune, Target::Backups, detail).await.map_err(core)?;
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, time};

    /// A year and a half of daily runs: after every run the target holds exactly the newest
    /// `keep` of each kind, one monthly per month and one weekly per ISO week at most.
    #[test]
    fn gfs_keeps_exactly_the_configured_set() {
        let keep = Keep { daily: 7, weekly: 5, monthly: 12 };
        let mut now = datetime!(2026-01-01 02:30 UTC);
        let mut list: Vec<Existing> = Vec::new();
        let mut made = 0;
        for _ in 0..550 {
            assert!(due(now, time!(02:00), &list));
            let kind = classify(now, &list);
            made += 1;
            list.push(Existing { id: format!("b{made:04}"), kind, created: now });
            assert!(!due(now, time!(02:00), &list), "one run a day");
            let gone = to_prune(&list, keep);
            list.retain(|e| !gone.contains(&e.id));
            now += time::Duration::days(1);
        }
        let count = |k: Kind| list.iter().filter(|e| e.kind == k).count();
        assert_eq!((count(Kind::Daily), count(Kind::Weekly), count(Kind::Monthly)), (7, 5, 12));
        let mut months: Vec<_> =
            list.iter().filter(|e| e.kind == Kind::Monthly).map(|e| (e.created.year(), e.created.month())).collect();
        months.dedup();
        assert_eq!(months.len(), 12, "one monthly backup per month");
        // The newest monthly is the first run of the current month.
        let newest = list.iter().filter(|e| e.kind == Kind::Monthly).map(|e| e.created).max().unwrap();
        assert_eq!(newest.day(), 1);
        // Manual backups are never pruned.
        list.push(Existing { id: "manual".into(), kind: Kind::Manual, created: now });
        assert!(!to_prune(&list, keep).contains(&"manual".to_string()));
    }

    #[test]
    fn a_run_before_the_hour_waits_and_classification_follows_the_calendar() {
        let at = time!(02:00);
        assert!(!due(datetime!(2026-03-02 01:59 UTC), at, &[]));
        assert!(due(datetime!(2026-03-02 02:00 UTC), at, &[]));
        let e = |kind, created| Existing { id: "x".into(), kind, created };
        let monthly = e(Kind::Monthly, datetime!(2026-03-01 02:00 UTC));
        // 2026-03-02 is a Monday: a new ISO week, same month.
        assert_eq!(classify(datetime!(2026-03-02 02:00 UTC), std::slice::from_ref(&monthly)), Kind::Weekly);
        let weekly = e(Kind::Weekly, datetime!(2026-03-02 02:00 UTC));
        assert_eq!(classify(datetime!(2026-03-03 02:00 UTC), &[monthly.clone(), weekly]), Kind::Daily);
        assert_eq!(classify(datetime!(2026-04-01 02:00 UTC), &[monthly]), Kind::Monthly);
        // A manual backup does not count as today's scheduled one.
        assert!(due(datetime!(2026-03-03 03:00 UTC), at, &[e(Kind::Manual, datetime!(2026-03-03 02:30 UTC))]));
    }
}
