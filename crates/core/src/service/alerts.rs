//! Security alerts: raised in the transaction of the event that causes them (so no alert is
//! lost and none exists without its cause), then told to the operators' channels (mail to
//! `alert_email_to`, the signed webhook) and, for attacks on a firm's accounts or damage to its
//! documents, mailed to the firm's owners and admins.
//!
//! Floods are folded: occurrences of the same kind, tenant and subject within one
//! deduplication window (windows are fixed slots of `alert_dedup_minutes`, counted from the
//! Unix epoch, so every node agrees on them) are one alert with a count. Each channel hears of
//! an alert at most twice: a first notice at once, and, if it occurred again within its window,
//! a follow-up with the final count when the window ends.
//!
//! Which channels there are is the sending node's configuration: an alert is stored without
//! channels, and the first node with channels that finds it queues one delivery per channel
//! (a compare-and-set claim, so several nodes queue it once). So an alert raised where no
//! channel is configured (the command line) is told by the servers. Deliveries go through an
//! outbox like mail (see `outbox`): leases, retries with capped exponential backoff and jitter,
//! given up (and audited) after `alert_give_up_hours`.

use super::Portal;
use super::notifications::{one_line, utc};
use super::outbox::{Backoff, Failure, Outbox, random_sample};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::authn::lockout;
use crate::clock::{from_millis, to_millis};
use crate::error::{Error, Result};
use crate::ids::{AlertId, DeliveryId, MailId, TenantId, UserId};
use crate::model::{
    Alert, AlertChannel, AlertDelivery, AlertKind, DeliveryState, MailKind, NewAlert, Notice, OutboxMail, Severity,
    Tenant,
};
use crate::ports::{Mailer, Tx, Webhook};
use async_trait::async_trait;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

pub use super::outbox::DeliveryReport;

/// At most this many alerts are dispatched per run; the rest wait for the next.
const DISPATCH_BATCH: i64 = 50;

/// How alerts are deduplicated, retried and labelled (from configuration).
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// Operators' addresses (`alert_email_to`).
    pub email_to: Vec<String>,
    /// Mail a firm's owners and admins the alerts about their firm that concern them.
    pub tenant_admins: bool,
    /// Occurrences of one kind, tenant and subject within a window of this length are one alert.
    pub dedup_window: Duration,
    /// Retries of a failed delivery.
    pub backoff: Backoff,
    /// A delivery still failing this long after it was queued is given up.
    pub give_up_after: Duration,
    /// This node's name, in every notice it sends.
    pub node: String,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            email_to: Vec::new(),
            tenant_admins: true,
            dedup_window: Duration::minutes(15),
            backoff: Backoff { first: Duration::seconds(10), cap: Duration::minutes(15) },
            give_up_after: Duration::hours(48),
            node: "portcullis".into(),
        }
    }
}

/// The alert an occurrence was counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    pub id: AlertId,
    /// 1 for a new alert; more when it was folded into one raised earlier in its window.
    pub occurrences: u32,
}

/// The channels this node delivers alerts to.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlertChannels<'a> {
    /// SMTP: operators' addresses, and the firm admins' mail (through the mail outbox).
    pub mailer: Option<&'a dyn Mailer>,
    pub webhook: Option<&'a dyn Webhook>,
}

/// The window `now` falls in: fixed slots of `window` from the Unix epoch.
fn window_of(now: OffsetDateTime, window: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let len = i64::try_from(window.whole_milliseconds()).unwrap_or(i64::MAX).max(1);
    let start = to_millis(now).div_euclid(len) * len;
    (from_millis(start), from_millis(start.saturating_add(len)))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl Portal {
    /// Raise an alert on its own: the entry point for jobs and later features (anomaly
    /// detection, backups). `alert.raised` is audited with a new alert, in the same transaction.
    pub async fn raise_alert(&self, alert: NewAlert) -> Result<Raised> {
        let mut tx = self.write().await?;
        let raised = self.raise_alert_in(&mut *tx, &alert, self.clock.now()).await?;
        tx.commit().await?;
        Ok(raised)
    }

    /// Raise an alert in the caller's transaction, beside the event that causes it. A new alert
    /// is audited as `alert.raised` on the platform chain (alerts are the operators' business;
    /// the cause is audited in the firm's own chain).
    pub(super) async fn raise_alert_in(&self, tx: &mut dyn Tx, a: &NewAlert, now: OffsetDateTime) -> Result<Raised> {
        let raised = self.store_alert(tx, a, now).await?;
        if raised.occurrences == 1 {
            let ev = NewEvent::new(
                None,
                Actor::System,
                Action::AlertRaised,
                Target::Alert(raised.id),
                &RequestMeta::default(),
            )
            .with_detail(json!({
                "kind": a.kind.as_str(),
                "severity": a.severity.as_str(),
                "tenant": a.tenant_id.map(|t| t.to_string()),
                "subject": one_line(&a.subject, 200),
            }));
            tx.audit().append_audit(&ev, now).await?;
        }
        Ok(raised)
    }

    /// Store (or count) an alert and log it, without an audit event: for when the audit log
    /// itself cannot be written.
    pub(super) async fn store_alert(&self, tx: &mut dyn Tx, a: &NewAlert, now: OffsetDateTime) -> Result<Raised> {
        let (start, end) = window_of(now, self.settings.alerts.dedup_window);
        let subject = one_line(&a.subject, 200);
        let tenant = a.tenant_id.map(|t| t.to_string()).unwrap_or_default();
        let record = Alert {
            id: AlertId::new(),
            dedup_key: format!("{}|{tenant}|{subject}|{}", a.kind.as_str(), to_millis(start)),
            facts: NewAlert { subject, summary: one_line(&a.summary, 300), ..a.clone() },
            occurrences: 1,
            first_at: now,
            last_at: now,
            window_end: end,
            dispatched_at: None,
            follow_up_dispatched_at: None,
        };
        let (id, occurrences) = tx.alerts().record_alert(&record).await?;
        tracing::warn!(
            alert = %id,
            kind = a.kind.as_str(),
            severity = a.severity.as_str(),
            tenant = %tenant,
            subject = %record.facts.subject,
            occurrences,
            "security alert: {}",
            record.facts.summary
        );
        Ok(Raised { id, occurrences })
    }

    /// A brute-force alert for a failed sign-in, in the sign-in's transaction: when the failure
    /// (the `failures`-th in a row) trips the throttle or locks the account, or (`None`) when a
    /// throttled or locked account is tried again. Other failures raise nothing.
    pub(super) async fn brute_force_alert(
        &self,
        tx: &mut dyn Tx,
        tenant: TenantId,
        user: UserId,
        failures: Option<u32>,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (severity, summary) = match failures {
            None => (Severity::Warning, "Sign-in attempts go on against a throttled or locked account".to_string()),
            Some(lockout::HARD_LIMIT) => (
                Severity::Critical,
                format!(
                    "An account was locked after {} consecutive failed sign-ins; an admin must unlock it",
                    lockout::HARD_LIMIT
                ),
            ),
            Some(lockout::FREE_FAILURES) => (
                Severity::Warning,
                format!("Sign-ins to an account are throttled after {} consecutive failures", lockout::FREE_FAILURES),
            ),
            Some(_) => return Ok(()),
        };
        let alert = NewAlert::new(AlertKind::BruteForce, severity, Some(tenant), format!("user:{user}"), summary)
            .with_detail(json!({ "ip": meta.ip, "consecutive_failures": failures }));
        self.raise_alert_in(tx, &alert, now).await.map(|_| ())
    }

    /// Queue the notices that are due to this node's channels, then send what is due in the
    /// alert outbox. Errors of single deliveries are recorded on them, not returned.
    pub async fn deliver_alerts(&self, channels: AlertChannels<'_>) -> Result<DeliveryReport> {
        self.dispatch_alerts(channels).await?;
        self.drain(&AlertOutbox { channels, settings: &self.settings.alerts }).await
    }

    /// Queue one delivery per channel for every alert with a notice due; returns how many
    /// alerts were dispatched.
    async fn dispatch_alerts(&self, channels: AlertChannels<'_>) -> Result<usize> {
        let due = {
            let mut tx = self.read().await?;
            tx.alerts().alerts_to_dispatch(self.clock.now(), DISPATCH_BATCH).await?
        };
        let mut dispatched = 0;
        for alert in due {
            let notice = if alert.dispatched_at.is_none() { Notice::First } else { Notice::FollowUp };
            let now = self.clock.now();
            let mut tx = self.write().await?;
            if !tx.alerts().claim_alert_dispatch(alert.id, notice, now).await? {
                continue;
            }
            let delivery = |channel, recipient| AlertDelivery {
                id: DeliveryId::new(),
                alert_id: alert.id,
                channel,
                recipient,
                notice,
                delivery: DeliveryState::due(now),
            };
            if channels.mailer.is_some() {
                for to in &self.settings.alerts.email_to {
                    tx.alerts().insert_alert_delivery(&delivery(AlertChannel::Email, Some(to.clone()))).await?;
                }
            }
            if channels.webhook.is_some() {
                tx.alerts().insert_alert_delivery(&delivery(AlertChannel::Webhook, None)).await?;
            }
            if let Some(tenant) = alert.facts.tenant_id
                && channels.mailer.is_some()
                && self.settings.alerts.tenant_admins
                && alert.facts.kind.tenant_admins_hear()
            {
                for user_id in tx.users().tenant_admins(tenant).await? {
                    tx.outbox()
                        .insert_mail(&OutboxMail {
                            id: MailId::new(),
                            tenant_id: tenant,
                            user_id,
                            kind: MailKind::SecurityAlert,
                            detail: json!({ "alert": alert.id.to_string(), "notice": notice.as_str() }),
                            delivery: DeliveryState::due(now),
                        })
                        .await?;
                }
            }
            tx.commit().await?;
            dispatched += 1;
        }
        Ok(dispatched)
    }

    /// Render and send one delivery (the alert is read now, with its current count).
    async fn send_alert(&self, d: &AlertDelivery, channels: AlertChannels<'_>) -> Result<()> {
        let (alert, tenant) = {
            let mut tx = self.read().await?;
            let alert = tx.alerts().alert(d.alert_id).await?.ok_or(Error::NotFound)?;
            let tenant = match alert.facts.tenant_id {
                Some(t) => tx.tenants().tenant(t).await?,
                None => None,
            };
            (alert, tenant)
        };
        let node = &self.settings.alerts.node;
        let now = self.clock.now();
        match d.channel {
            AlertChannel::Webhook => {
                let hook =
                    channels.webhook.ok_or_else(|| Error::internal("no alert webhook is configured on this node"))?;
                let body = webhook_body(&alert, tenant.as_ref(), d, node, now);
                hook.post(&serde_json::to_vec(&body).map_err(Error::internal)?).await
            }
            AlertChannel::Email => {
                let mailer = channels.mailer.ok_or_else(|| Error::internal("no SMTP is configured on this node"))?;
                let to = d.recipient.as_deref().ok_or_else(|| Error::internal("an email delivery has no address"))?;
                let (subject, body) = operator_mail(&alert, tenant.as_ref(), d.notice, node);
                mailer.send(to, &subject, &body).await
            }
        }
    }

    /// The mail to a firm's owner or admin about an alert concerning the firm. It names the
    /// account attacked (the admins manage it); documents only by id (an admin may be walled
    /// off from the matter).
    pub(super) async fn render_tenant_alert(
        &self,
        tx: &mut dyn Tx,
        tenant: &Tenant,
        detail: &serde_json::Value,
    ) -> Result<super::Rendered> {
        let id: AlertId = detail.get("alert").and_then(|v| v.as_str()).ok_or(Error::NotFound)?.parse()?;
        let alert =
            tx.alerts().alert(id).await?.filter(|a| a.facts.tenant_id == Some(tenant.id)).ok_or(Error::NotFound)?;
        let follow_up = detail.get("notice").and_then(|v| v.as_str()) == Some(Notice::FollowUp.as_str());
        let account = match Target::parse(&alert.facts.subject) {
            Target::User(u) => tx.users().user(tenant.id, u).await?.map(|u| u.email),
            _ => None,
        };
        let firm = one_line(&tenant.display_name, 200);
        let mut body = format!("Portcullis raised a security alert about your firm, {firm}.\n\n");
        if follow_up {
            body.push_str(&format!(
                "This is the final count at the end of its {}-minute window.\n\n",
                self.settings.alerts.dedup_window.whole_minutes()
            ));
        }
        body.push_str(&format!("What happened: {}\n", alert.facts.summary));
        if let Some(email) = account {
            body.push_str(&format!("Account:       {}\n", one_line(&email, 200)));
        } else {
            body.push_str(&format!("About:         {}\n", alert.facts.subject));
        }
        if let Some(ip) = alert.facts.detail.get("ip").and_then(|v| v.as_str()) {
            body.push_str(&format!("From IP:       {}\n", one_line(ip, 60)));
        }
        body.push_str(&format!(
            "Occurrences:   {} (first {} UTC, last {} UTC)\nSeverity:      {}\nAlert id:      {}\n\n",
            alert.occurrences,
            utc(alert.first_at),
            utc(alert.last_at),
            alert.facts.severity.as_str(),
            alert.id
        ));
        body.push_str(match alert.facts.kind {
            AlertKind::BruteForce => {
                "If the account's owner is not signing in, someone may be guessing its password. Check the\n\
                 audit log, and consider requiring a second factor for your firm. The service's operators\n\
                 have been told as well.\n"
            }
            AlertKind::DocumentQuarantined => {
                "An uploaded document held identifiers your firm's data loss prevention policy quarantines.\n\
                 Nobody but owners and admins can download it until an admin releases or deletes it\n\
                 (Security settings, held documents).\n"
            }
            _ => "The service's operators have been told and are investigating.\n",
        });
        Ok(super::Rendered { subject: format!("Security alert for {firm}: {}", alert.facts.kind.as_str()), body })
    }
}

/// The JSON a webhook receives (version 1). Ids, counts, times and the alert's facts only.
pub fn webhook_body(
    alert: &Alert,
    tenant: Option<&Tenant>,
    d: &AlertDelivery,
    node: &str,
    now: OffsetDateTime,
) -> serde_json::Value {
    json!({
        "type": "alert",
        "version": 1,
        "delivery": d.id.to_string(),
        "notice": d.notice.as_str(),
        "alert": alert.id.to_string(),
        "kind": alert.facts.kind.as_str(),
        "severity": alert.facts.severity.as_str(),
        "tenant": tenant.map(|t| json!({ "id": t.id.to_string(), "name": t.name })),
        "subject": alert.facts.subject,
        "summary": alert.facts.summary,
        "detail": alert.facts.detail,
        "occurrences": alert.occurrences,
        "first_at": rfc3339(alert.first_at),
        "last_at": rfc3339(alert.last_at),
        "node": node,
        "sent_at": rfc3339(now),
    })
}

/// The mail to an operator: subject and plain-text body.
pub fn operator_mail(alert: &Alert, tenant: Option<&Tenant>, notice: Notice, node: &str) -> (String, String) {
    let firm = match tenant {
        Some(t) => format!("{} (tenant {})", t.name, t.id),
        None => match alert.facts.tenant_id {
            Some(id) => format!("tenant {id}"),
            None => "the platform".into(),
        },
    };
    let update = match notice {
        Notice::First => "",
        Notice::FollowUp => "Update at the end of the deduplication window: the final count.\n\n",
    };
    let body = format!(
        "{update}Severity:    {}\nKind:        {}\nSummary:     {}\nConcerns:    {firm}\nSubject:     {}\n\
         Occurrences: {} (first {} UTC, last {} UTC)\nDetail:      {}\nAlert id:    {}\nNode:        {}\n",
        alert.facts.severity.as_str(),
        alert.facts.kind.as_str(),
        alert.facts.summary,
        alert.facts.subject,
        alert.occurrences,
        utc(alert.first_at),
        utc(alert.last_at),
        alert.facts.detail,
        alert.id,
        one_line(node, 100),
    );
    let again = if alert.occurrences > 1 { format!(" (x{})", alert.occurrences) } else { String::new() };
    (format!("[Portcullis {}] {}{again}", alert.facts.severity.as_str(), alert.facts.summary), body)
}

/// The alert outbox, sent to this node's channels.
struct AlertOutbox<'a> {
    channels: AlertChannels<'a>,
    settings: &'a AlertSettings,
}

/// The audit event of a delivery's outcome, on the platform chain: which alert (and firm),
/// which delivery, which channel, after how many attempts. No address, no URL.
fn delivery_event(alert: &Alert, d: &AlertDelivery, action: crate::audit::Action, attempts: u32) -> NewEvent {
    NewEvent::new(None, Actor::System, action, Target::Alert(alert.id), &RequestMeta::default()).with_detail(json!({
        "tenant": alert.facts.tenant_id.map(|t| t.to_string()),
        "delivery": d.id.to_string(),
        "channel": d.channel.as_str(),
        "notice": d.notice.as_str(),
        "attempts": attempts,
    }))
}

#[async_trait]
impl Outbox for AlertOutbox<'_> {
    type Row = AlertDelivery;

    async fn due(&self, tx: &mut dyn Tx, now: OffsetDateTime, limit: i64) -> Result<Vec<AlertDelivery>> {
        tx.alerts().due_alert_deliveries(now, limit).await
    }

    async fn lease(&self, tx: &mut dyn Tx, d: &AlertDelivery, until: OffsetDateTime) -> Result<bool> {
        tx.alerts().lease_alert_delivery(d, until).await
    }

    async fn send(&self, portal: &Portal, d: &AlertDelivery) -> Result<()> {
        portal.send_alert(d, self.channels).await
    }

    async fn sent(&self, tx: &mut dyn Tx, d: &AlertDelivery, now: OffsetDateTime) -> Result<()> {
        tx.alerts().mark_alert_delivery_sent(d, now).await?;
        let alert = tx.alerts().alert(d.alert_id).await?.ok_or(Error::NotFound)?;
        tx.audit().append_audit(&delivery_event(&alert, d, Action::AlertDelivered, d.delivery.attempts + 1), now).await
    }

    fn state<'r>(&self, d: &'r AlertDelivery) -> &'r DeliveryState {
        &d.delivery
    }

    fn retry_at(&self, d: &AlertDelivery, attempts: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (now - d.delivery.created_at < self.settings.give_up_after)
            .then(|| now + self.settings.backoff.jittered(attempts, random_sample()))
    }

    async fn failed(&self, tx: &mut dyn Tx, d: &AlertDelivery, f: &Failure) -> Result<()> {
        let row = AlertDelivery {
            delivery: DeliveryState {
                attempts: f.attempts,
                last_error: Some(f.error.clone()),
                next_attempt_at: f.next_attempt_at,
                failed_at: f.gave_up,
                ..d.delivery.clone()
            },
            ..d.clone()
        };
        tx.alerts().record_alert_delivery_failure(&row).await?;
        if let Some(at) = f.gave_up {
            let alert = tx.alerts().alert(d.alert_id).await?.ok_or(Error::NotFound)?;
            tracing::error!(
                alert = %alert.id,
                delivery = %d.id,
                channel = d.channel.as_str(),
                attempts = f.attempts,
                error = %f.error,
                "an alert could not be delivered and was given up: {}",
                alert.facts.summary
            );
            tx.audit().append_audit(&delivery_event(&alert, d, Action::AlertDeliveryFailed, f.attempts), at).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_slots_every_node_agrees_on() {
        let w = Duration::minutes(15);
        let t = time::macros::datetime!(2026-11-05 14:03:22 UTC);
        let (s, e) = window_of(t, w);
        assert_eq!(s, time::macros::datetime!(2026-11-05 14:00 UTC));
        assert_eq!(e, time::macros::datetime!(2026-11-05 14:15 UTC));
        assert_eq!(window_of(e, w).0, e);
        assert_eq!(window_of(t, Duration::ZERO).0, t.replace_nanosecond(0).unwrap());
    }

    fn alert() -> Alert {
        let t = time::macros::datetime!(2026-11-05 14:03:22 UTC);
        let facts = NewAlert::new(
            AlertKind::BruteForce,
            Severity::Warning,
            Some(TenantId::new()),
            "user:abc",
            "Sign-ins to an account are throttled",
        );
        Alert {
            id: AlertId::new(),
            facts: facts.with_detail(json!({ "ip": "203.0.113.9" })),
            dedup_key: String::new(),
            occurrences: 3,
            first_at: t,
            last_at: t + Duration::minutes(2),
            window_end: t,
            dispatched_at: None,
            follow_up_dispatched_at: None,
        }
    }

    #[test]
    fn operator_notices_carry_the_facts_and_the_count() {
        let a = alert();
        let d = AlertDelivery {
            id: DeliveryId::new(),
            alert_id: a.id,
            channel: AlertChannel::Webhook,
            recipient: None,
            notice: Notice::FollowUp,
            delivery: DeliveryState::due(a.first_at),
        };
        let b = webhook_body(&a, None, &d, "node-1", a.last_at);
        assert_eq!(b["kind"], "brute_force");
        assert_eq!(b["occurrences"], 3);
        assert_eq!(b["notice"], "follow_up");
        assert_eq!(b["delivery"], d.id.to_string());
        assert_eq!(b["first_at"], "2026-11-05T14:03:22Z");
        let (subject, body) = operator_mail(&a, None, Notice::First, "node-1");
        assert_eq!(subject, "[Portcullis warning] Sign-ins to an account are throttled (x3)");
        for part in ["Kind:        brute_force", "Occurrences: 3 (first 2026-11-05 14:03:22 UTC", "203.0.113.9"] {
            assert!(body.contains(part), "{part:?} missing:\n{body}");
        }
    }
}
