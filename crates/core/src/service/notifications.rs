//! Notices to users by mail, through an outbox. A use case that wants a user told something
//! queues a row in the same transaction as the change it is about, so the notice exists exactly
//! when the change does; the background sender delivers due rows later, on whichever node gets
//! to them first (see `outbox` for leases and retries).
//!
//! A failed attempt is retried with exponential backoff and given up (and audited) after
//! [`MAX_ATTEMPTS`]. Leases and individual retries are bookkeeping on the row itself; the
//! outcomes (`mail.sent`, `mail.failed`) are audited.

use super::Portal;
use super::outbox::{Backoff, Failure, Outbox};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::error::{Error, Result};
use crate::ids::MailId;
use crate::model::{DeliveryState, MailKind, OutboxMail, User};
use crate::ports::{Mailer, Tx};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

pub use super::outbox::{DeliveryReport, LEASE};

/// A mail is given up after this many failed attempts.
pub const MAX_ATTEMPTS: u32 = 10;

/// Mail retries: 30 seconds, doubling, at most 6 hours.
const MAIL_BACKOFF: Backoff = Backoff { first: Duration::seconds(30), cap: Duration::hours(6) };

/// The wait before the next attempt after `attempts` failed ones: 30 seconds, doubling each
/// time, at most 6 hours. Ten attempts span about four and a quarter hours.
pub fn backoff(attempts: u32) -> Duration {
    MAIL_BACKOFF.delay(attempts)
}

/// What a new-device notice is rendered from, as kept in the outbox row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDeviceDetail {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A message ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The new-device notice, in plain text. Every value from outside (the firm's name, the
/// browser's user agent) is cut to one line, so none can add lines or headers of its own.
pub fn render_new_device(firm: &str, d: &NewDeviceDetail, public_url: &str) -> Rendered {
    let firm = one_line(firm, 200);
    let at = utc(d.at);
    let ip = d.ip.as_deref().map(|s| one_line(s, 60)).unwrap_or_else(|| "unknown".into());
    let browser = d.user_agent.as_deref().map(|s| one_line(s, 200)).unwrap_or_else(|| "unknown".into());
    let security = format!("{}/account/security", public_url.trim_end_matches('/'));
    let body = format!(
        "Someone signed in to your account at {firm}\n\
         from a browser or device not used with your account before.\n\
         \n\
         Firm:       {firm}\n\
         Time (UTC): {at}\n\
         IP address: {ip}\n\
         Browser:    {browser}\n\
         \n\
         If this was you, there is nothing to do.\n\
         \n\
         If this was not you: change your password and end your other sessions at\n\
         {security}\n\
         and tell your firm's administrator.\n"
    );
    Rendered { subject: format!("New sign-in to your {firm} account"), body }
}

/// A time as mail shows it: `2026-11-05 14:03:22`, in UTC.
pub(super) fn utc(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"))
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// `s` without control characters (line breaks included), cut to `max` characters.
pub(super) fn one_line(s: &str, max: usize) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect()
}

impl Portal {
    /// Queue a new-device notice for `user`, in the caller's transaction.
    pub(super) async fn queue_new_device_notice(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let detail = NewDeviceDetail { ip: meta.ip.clone(), user_agent: meta.user_agent.clone(), at: now };
        tx.outbox()
            .insert_mail(&OutboxMail {
                id: MailId::new(),
                tenant_id: user.tenant_id,
                user_id: user.id,
                kind: MailKind::NewDevice,
                detail: serde_json::to_value(&detail).map_err(Error::internal)?,
                delivery: DeliveryState::due(now),
            })
            .await
    }

    /// Send the mail that is due through `mailer`. Mails another node holds a lease on are
    /// left to it. Errors of single mails are recorded on their rows, not returned.
    pub async fn deliver_mail(&self, mailer: &dyn Mailer) -> Result<DeliveryReport> {
        self.drain(&MailOutbox(mailer)).await
    }

    /// The recipient (read now, decrypted) and the rendered message.
    async fn compose(&self, mail: &OutboxMail) -> Result<(String, Rendered)> {
        let mut tx = self.read().await?;
        let user = tx.users().user(mail.tenant_id, mail.user_id).await?.ok_or(Error::NotFound)?;
        let tenant = tx.tenants().tenant(mail.tenant_id).await?.ok_or(Error::NotFound)?;
        let rendered = match mail.kind {
            MailKind::NewDevice => {
                let d: NewDeviceDetail = serde_json::from_value(mail.detail.clone()).map_err(Error::internal)?;
                render_new_device(&tenant.display_name, &d, &self.settings.public_url)
            }
            MailKind::BreachNotice => {
                let n: crate::incidents::BreachNotice =
                    serde_json::from_value(mail.detail.clone()).map_err(Error::internal)?;
                super::incidents::render_breach_notice(&tenant.display_name, &n, &self.settings.public_url)
            }
            MailKind::SecurityAlert => self.render_tenant_alert(&mut *tx, &tenant, &mail.detail).await?,
            MailKind::SubscriptionEnded | MailKind::RetentionNotice => {
                let d: super::RetentionDetail = serde_json::from_value(mail.detail.clone()).map_err(Error::internal)?;
                if mail.kind == MailKind::SubscriptionEnded {
                    super::lifecycle::render_subscription_ended(&tenant.display_name, &d)
                } else {
                    super::lifecycle::render_retention_notice(&tenant.display_name, &d)
                }
            }
        };
        Ok((user.email, rendered))
    }
}

/// The mail outbox, sent through one mailer.
struct MailOutbox<'a>(&'a dyn Mailer);

#[async_trait]
impl Outbox for MailOutbox<'_> {
    type Row = OutboxMail;

    async fn due(&self, tx: &mut dyn Tx, now: OffsetDateTime, limit: i64) -> Result<Vec<OutboxMail>> {
        tx.outbox().due_mail(now, limit).await
    }

    async fn lease(&self, tx: &mut dyn Tx, mail: &OutboxMail, until: OffsetDateTime) -> Result<bool> {
        tx.outbox().lease_mail(mail.tenant_id, mail.id, mail.delivery.next_attempt_at, until).await
    }

    async fn send(&self, portal: &Portal, mail: &OutboxMail) -> Result<()> {
        let (to, m) = portal.compose(mail).await?;
        self.0.send(&to, &m.subject, &m.body).await
    }

    async fn sent(&self, tx: &mut dyn Tx, mail: &OutboxMail, now: OffsetDateTime) -> Result<()> {
        tx.outbox().mark_mail_sent(mail.tenant_id, mail.id, now).await?;
        // A firm destroyed while its mail was on the way: its audit chain must not start again.
        if tx.tenants().tenant(mail.tenant_id).await?.is_none() {
            return Ok(());
        }
        tx.audit().append_audit(&mail_event(mail, Action::MailSent, mail.delivery.attempts + 1), now).await
    }

    fn state<'r>(&self, mail: &'r OutboxMail) -> &'r DeliveryState {
        &mail.delivery
    }

    fn retry_at(&self, _: &OutboxMail, attempts: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (attempts < MAX_ATTEMPTS).then(|| now + backoff(attempts))
    }

    async fn failed(&self, tx: &mut dyn Tx, mail: &OutboxMail, f: &Failure) -> Result<()> {
        let next = f.gave_up.map(|at| at + backoff(f.attempts)).unwrap_or(f.next_attempt_at);
        tx.outbox().record_mail_failure(mail.tenant_id, mail.id, f.attempts, &f.error, next, f.gave_up).await?;
        if tx.tenants().tenant(mail.tenant_id).await?.is_none() {
            return Ok(());
        }
        match f.gave_up {
            Some(at) => tx.audit().append_audit(&mail_event(mail, Action::MailFailed, f.attempts), at).await,
            None => Ok(()),
        }
    }
}

/// The audit event of a mail's outcome: which mail, of what kind, to whom, after how many
/// attempts. No address and no message text.
fn mail_event(mail: &OutboxMail, action: crate::audit::Action, attempts: u32) -> NewEvent {
    NewEvent::new(Some(mail.tenant_id), Actor::System, action, Target::User(mail.user_id), &RequestMeta::default())
        .with_detail(
            serde_json::json!({ "mail": mail.id.to_string(), "kind": mail.kind.as_str(), "attempts": attempts }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_six_hours() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::minutes(1));
        assert_eq!(backoff(5), Duration::minutes(8));
        assert_eq!(backoff(12), Duration::hours(6));
        assert_eq!(backoff(u32::MAX), Duration::hours(6));
        let total: Duration = (1..MAX_ATTEMPTS).map(backoff).sum();
        assert!(total > Duration::hours(4) && total < Duration::hours(5), "{total}");
    }

    #[test]
    fn the_notice_names_firm_time_ip_browser_and_what_to_do() {
        let at = time::macros::datetime!(2026-11-05 14:03:22 UTC);
        let d = NewDeviceDetail { ip: Some("203.0.113.9".into()), user_agent: Some("Firefox/140".into()), at };
        let m = render_new_device("Smith Law", &d, "https://portal.example/");
        assert_eq!(m.subject, "New sign-in to your Smith Law account");
        for part in [
            "Firm:       Smith Law",
            "Time (UTC): 2026-11-05 14:03:22",
            "IP address: 203.0.113.9",
            "Browser:    Firefox/140",
            "https://portal.example/account/security",
            "tell your firm's administrator",
        ] {
            assert!(m.body.contains(part), "{part:?} missing from:\n{}", m.body);
        }
    }

    #[test]
    fn outside_values_cannot_add_lines() {
        let at = time::macros::datetime!(2026-11-05 14:03:22 +2);
        let d = NewDeviceDetail { ip: None, user_agent: Some("x\r\nBcc: evil@example.com".into()), at };
        let m = render_new_device("Firm\nX-Evil: 1", &d, "https://p.example");
        assert!(!m.subject.contains('\n'));
        assert!(m.body.lines().all(|l| !l.starts_with("Bcc:") && !l.starts_with("X-Evil")), "{}", m.body);
        assert!(m.body.contains("IP address: unknown"));
        assert!(m.body.contains("Time (UTC): 2026-11-05 12:03:22"), "{}", m.body);
    }
}
