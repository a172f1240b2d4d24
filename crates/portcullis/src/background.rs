//! Work every node does on its own, besides answering requests: resuming tenant-key rotations
//! that no live worker is on, so an interrupted `keys rotate-tenant` finishes by itself,
//! suspending platform operators' privileged roles whose vetting has lapsed, sending the mail
//! and the alerts in the outboxes, watching the TLS certificate's expiry, running the
//! scheduled backups, and registering the node among the live ones.

use portcullis_core::audit::RequestMeta;
use portcullis_core::ports::{Mailer, Webhook};
use portcullis_core::service::{AlertChannels, DeliveryReport, Portal};
use std::sync::Arc;
use std::time::Duration;

/// The clock of a periodic job: first tick after `first`, then every `every`; a tick missed
/// while the job ran long is delayed, not fired in a burst.
pub(crate) fn ticker(first: Duration, every: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A rotation with no sign of life for this long (or never worked) is taken over. Workers give
/// one after every document and every batch of fields.
pub fn quiet_after(poll: Duration) -> time::Duration {
    let quiet = poll.saturating_mul(4).max(Duration::from_secs(120));
    time::Duration::try_from(quiet).unwrap_or(time::Duration::minutes(2))
}

/// Look every `poll` (the first time one `poll` after start) for rotations to resume, operators
/// whose vetting lapsed and incidents past their triage target, until the task is aborted (at
/// shutdown). A run cut off by the abort is resumed later, by this node or another.
pub fn spawn(portal: Portal, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(poll, poll);
        loop {
            tick.tick().await;
            match portal.resume_tenant_rotations(quiet_after(poll), &RequestMeta::default()).await {
                Ok(reports) => {
                    for (tenant, report) in reports {
                        match report {
                            Ok(r) => tracing::info!(
                                %tenant,
                                to = r.target,
                                documents = r.documents,
                                fields = r.fields,
                                failed = r.failed.len(),
                                finished = r.finished,
                                "tenant-key rotation worked"
                            ),
                            Err(e) => {
                                tracing::warn!(%tenant, error = %e, "tenant-key rotation failed; trying again later")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "resuming tenant-key rotations failed; trying again later"),
            }
            match portal.suspend_lapsed_operators().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(suspended = n, "privileged operator roles suspended: vetting lapsed"),
                Err(e) => tracing::warn!(error = %e, "checking operators' vetting failed; trying again later"),
            }
            match portal.check_incident_targets().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(incidents = n, "incidents missed their triage target; alerted"),
                Err(e) => tracing::warn!(error = %e, "checking incidents' target times failed; trying again later"),
            }
        }
    })
}

/// Register this node (`instance`) now and every [`NODE_HEARTBEAT`], giving the rate limiters
/// their share of the configured budgets as the number of live nodes changes, until aborted.
/// A failed round keeps the last share (the database being away is what the readiness probe
/// reports).
///
/// [`NODE_HEARTBEAT`]: portcullis_core::service::NODE_HEARTBEAT
pub fn spawn_heartbeat(
    portal: Portal,
    guards: Arc<portcullis_web::protect::Guards>,
    instance: String,
) -> tokio::task::JoinHandle<()> {
    let every = Duration::try_from(portcullis_core::service::NODE_HEARTBEAT).unwrap_or(Duration::from_secs(10));
    tokio::spawn(async move {
        let mut tick = ticker(Duration::ZERO, every);
        loop {
            tick.tick().await;
            match portal.register_node(&instance).await {
                Ok(nodes) => guards.share(nodes),
                Err(e) => tracing::warn!(error = %e, "registering this node failed; trying again later"),
            }
        }
    })
}

/// Send due mail every `poll` (the first time one `poll` after start), until the task is aborted
/// (at shutdown). A send cut off by the abort leaves its row leased; it is sent again once the
/// lease runs out, by this node or another (delivery is at least once).
pub fn spawn_mail(portal: Portal, mailer: Arc<dyn Mailer>, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(poll, poll);
        loop {
            tick.tick().await;
            log_delivery("mail", portal.deliver_mail(&*mailer).await);
        }
    })
}

/// Run the lifecycle job, then the export job, every `poll` (the first time one `poll` after start), until aborted:
/// notices before destruction, retention, destroying erased firms (certificates signed with
/// `signer`) and mailing their certificates. A destruction cut off part-way is finished by the
/// next run, on this node or another.
pub fn spawn_lifecycle(
    portal: Portal,
    signer: portcullis_core::crypto::signing::AuditSigner,
    mailer: Option<Arc<dyn Mailer>>,
    poll: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(poll, poll);
        loop {
            tick.tick().await;
            match portal.run_lifecycle(&signer, mailer.as_deref()).await {
                Ok(r) => {
                    metrics::counter!("portcullis_tenants_destroyed_total").increment(u64::from(r.destroyed));
                    metrics::gauge!("portcullis_tenant_erasures_failing").set(r.failed.len() as f64);
                    if r.notices + r.started + r.destroyed + r.certificates_mailed > 0 || !r.failed.is_empty() {
                        tracing::info!(
                            notices = r.notices,
                            started = r.started,
                            destroyed = r.destroyed,
                            failed = r.failed.len(),
                            certificates_mailed = r.certificates_mailed,
                            "lifecycle job worked"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the lifecycle job failed; trying again later"),
            }
            run_exports(&portal).await;
        }
    })
}

/// One run of the tenant export job (with the lifecycle job: both are about a firm's data as a
/// whole): write approved exports, delete expired archives.
async fn run_exports(portal: &Portal) {
    match portal.run_exports().await {
        Ok(r) => {
            metrics::counter!("portcullis_tenant_exports_total", "outcome" => "finished")
                .increment(u64::from(r.finished));
            metrics::counter!("portcullis_tenant_exports_total", "outcome" => "failed").increment(u64::from(r.failed));
            if r.finished + r.failed + r.expired > 0 {
                tracing::info!(finished = r.finished, failed = r.failed, expired = r.expired, "export job worked");
            }
        }
        Err(e) => tracing::warn!(error = %e, "the export job failed; trying again later"),
    }
}

/// Log what one delivery run of an outbox (`what`: "mail", "alerts") did.
fn log_delivery(what: &str, report: portcullis_core::Result<DeliveryReport>) {
    match report {
        Ok(DeliveryReport { sent: 0, retrying: 0, given_up: 0 }) => {}
        Ok(r) if r.retrying == 0 && r.given_up == 0 => tracing::info!(sent = r.sent, "{what} sent"),
        Ok(r) => tracing::warn!(
            sent = r.sent,
            retrying = r.retrying,
            given_up = r.given_up,
            "some {what} could not be sent; see last_error in its outbox"
        ),
        Err(e) => tracing::warn!(error = %e, "sending {what} failed; trying again later"),
    }
}

/// Queue and send due alerts to this node's channels every `poll` (the first time one `poll`
/// after start), until aborted. Like mail, a send cut off leaves its row leased for later.
pub fn spawn_alerts(
    portal: Portal,
    mailer: Option<Arc<dyn Mailer>>,
    webhook: Option<Arc<dyn Webhook>>,
    poll: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(poll, poll);
        loop {
            tick.tick().await;
            let channels = AlertChannels { mailer: mailer.as_deref(), webhook: webhook.as_deref() };
            log_delivery("alerts", portal.deliver_alerts(channels).await);
        }
    })
}

/// Check the served certificate's expiry at start and then daily, raising an alert while it
/// is within `warn_days` (once a day: each check falls in a new deduplication window).
pub fn spawn_tls_watch(
    portal: Portal,
    tls: crate::tls::TlsFiles,
    warn_days: u64,
    node: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(Duration::ZERO, Duration::from_secs(24 * 3600));
        loop {
            tick.tick().await;
            metrics::gauge!("portcullis_tls_certificate_expiry_timestamp_seconds")
                .set(tls.not_after.unix_timestamp() as f64);
            let now = portal.clock().now();
            let Some(alert) = crate::tls::expiry_alert(tls.not_after, now, warn_days, &tls.fingerprint, &node) else {
                continue;
            };
            if let Err(e) = portal.raise_alert(alert).await {
                tracing::error!(error = %e, "the TLS certificate expires soon, and raising the alert failed");
            }
        }
    })
}

/// Sign a checkpoint of every audit chain that grew, every `every`; the first one at start, so
/// a restart never leaves the newest events unsigned for a whole period.
pub fn spawn_checkpoints(
    portal: Portal,
    signer: portcullis_core::crypto::signing::AuditSigner,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(Duration::ZERO, every);
        loop {
            tick.tick().await;
            match portal.checkpoint_audit(&signer).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(chains = n, "audit checkpoints signed"),
                // Another node signing the same head at the same moment loses nothing.
                Err(e) => tracing::warn!(error = %e, "signing audit checkpoints failed; trying again later"),
            }
        }
    })
}

/// Look every `poll` whether a scheduled backup is due and run it when this node gets the
/// scheduler lease, until aborted (at shutdown). A failed run is audited, alerted and counted,
/// and tried again after `RETRY_AFTER` by the portal's clock.
pub fn spawn_backups(scheduler: crate::backup::schedule::Scheduler, poll: Duration) -> tokio::task::JoinHandle<()> {
    use crate::backup::schedule::{RETRY_AFTER, existing, record_newest};
    tokio::spawn(async move {
        let mut last_failure: Option<time::OffsetDateTime> = None;
        if let Ok(list) = existing(&scheduler.target).await {
            record_newest(&list);
        }
        let mut tick = ticker(Duration::ZERO, poll);
        loop {
            tick.tick().await;
            // Erasures reach the backups within a poll, whether or not a backup is due.
            if let Err(e) =
                crate::backup::sync_erasures_now(&scheduler.portal, &scheduler.target, &scheduler.node).await
            {
                tracing::error!(error = format!("{e:#}"), "carrying erasures to the backup target; trying again");
            }
            let now = scheduler.portal.clock().now();
            if last_failure.is_some_and(|at| now - at < RETRY_AFTER) {
                continue;
            }
            match scheduler.tick().await {
                Ok(_) => last_failure = None,
                Err((kind, e)) => {
                    last_failure = Some(now);
                    let error = format!("{e:#}");
                    metrics::counter!("portcullis_backup_failures_total", "kind" => kind.as_str()).increment(1);
                    tracing::error!(%error, kind = kind.as_str(), "scheduled backup failed");
                    let actor = portcullis_core::audit::Actor::System;
                    if let Err(a) = scheduler.portal.backup_failed(actor, kind.as_str(), &error).await {
                        tracing::error!(error = %a, "a backup failed, and raising its alert failed too");
                    }
                }
            }
        }
    })
}
