//! What goes out: known devices, mail, the durable outbox rows and security alerts with their deliveries.

use super::*;

/// A browser a user has signed in from before, known by the hash of its device cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownDevice {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// Hex SHA-256 of the device cookie; the cookie itself is never stored.
    pub device_hash: String,
    pub first_seen_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// What a queued mail tells its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    /// Someone signed in to the account from a browser not seen before.
    NewDevice,
    /// A security alert about the user's firm (to its owners and admins).
    SecurityAlert,
    /// The firm's subscription ended (to its owners).
    SubscriptionEnded,
    /// The firm's data will be destroyed on a date (to its owners; see `retention_notice_days`).
    RetentionNotice,
    /// A confirmed breach touched the firm's data (to its owners and admins).
    BreachNotice,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::NewDevice => "new_device",
            MailKind::SecurityAlert => "security_alert",
            MailKind::SubscriptionEnded => "subscription_ended",
            MailKind::RetentionNotice => "retention_notice",
            MailKind::BreachNotice => "breach_notice",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "new_device" => Ok(MailKind::NewDevice),
            "security_alert" => Ok(MailKind::SecurityAlert),
            "subscription_ended" => Ok(MailKind::SubscriptionEnded),
            "retention_notice" => Ok(MailKind::RetentionNotice),
            "breach_notice" => Ok(MailKind::BreachNotice),
            other => Err(crate::Error::internal(format!("unknown mail kind {other:?}"))),
        }
    }
}

/// A mail in the outbox. The recipient is not stored here: it is read from the user's record
/// when the mail is sent, so the outbox holds no address and always uses the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: MailId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub kind: MailKind,
    /// Facts the message is rendered from (JSON: IP, user agent, time); never client content.
    pub detail: serde_json::Value,
    pub delivery: DeliveryState,
}

/// Where a row of a durable outbox (mail, alert notices) stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryState {
    pub created_at: OffsetDateTime,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Due from this time; while a node sends it, the end of that node's lease.
    pub next_attempt_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
    /// Set when sending was given up.
    pub failed_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

impl DeliveryState {
    /// A new row, due at once.
    pub fn due(now: OffsetDateTime) -> Self {
        Self { created_at: now, attempts: 0, next_attempt_at: now, sent_at: None, failed_at: None, last_error: None }
    }
}

stored_enum! {
    /// What a security alert is about.
    pub enum AlertKind ("alert kind") {
        /// Repeated failed sign-ins against one account: the throttle tripped, the account
        /// locked, or tries go on against a throttled or locked account.
        BruteForce = "brute_force",
        /// A stored document failed its integrity check.
        IntegrityFailure = "integrity_failure",
        /// An audit chain does not verify (links, hashes or signed checkpoints).
        AuditVerificationFailure = "audit_verification_failure",
        /// The TLS certificate a node serves expires soon (or has expired).
        TlsCertificateExpiring = "tls_certificate_expiring",
        /// A backup failed (raised by the backup job).
        BackupFailure = "backup_failure",
        /// The DLP scan held an uploaded document for an admin's review.
        DocumentQuarantined = "document_quarantined",
        /// Failed sign-ins across many accounts from one source.
        PasswordSpraying = "password_spraying",
        /// Failed sign-ins on one account from many sources.
        CredentialStuffing = "credential_stuffing",
        /// A burst of 401, 403 and 404 answers to one source.
        EnumerationScan = "enumeration_scan",
        /// Repeated CSRF failures from one source.
        CsrfFailures = "csrf_failures",
        /// A user downloaded far more than their baseline; their downloads are paused.
        Exfiltration = "exfiltration",
        /// A vulnerability or breach report arrived.
        IncidentReported = "incident_reported",
        /// An incident was not triaged by its target time.
        IncidentTriageOverdue = "incident_triage_overdue",
    }
}

impl AlertKind {
    /// Whether a firm's owners and admins are mailed this kind of alert about their firm (when
    /// `alert_tenant_admins` is on). Attacks on the firm's accounts and damage to its documents
    /// are theirs to hear of; the state of the platform (audit log, certificates, backups) is
    /// the operators' to investigate first.
    pub fn tenant_admins_hear(self) -> bool {
        matches!(
            self,
            AlertKind::BruteForce
                | AlertKind::IntegrityFailure
                | AlertKind::DocumentQuarantined
                | AlertKind::CredentialStuffing
                | AlertKind::Exfiltration
        )
    }
}

stored_enum! {
    /// How urgent an alert is.
    pub enum Severity ("severity") {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

/// What an alert says. The summary and detail must hold no client content (no names, emails,
/// titles or document text): ids and facts (IP addresses, counts, sequence numbers) only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub severity: Severity,
    /// The firm it concerns, if any; `None` for the platform.
    pub tenant_id: Option<TenantId>,
    /// What it is about, e.g. `user:<id>`, `document:<id>`, `chain:<key>`: with kind and tenant,
    /// the unit of deduplication.
    pub subject: String,
    /// One line for people.
    pub summary: String,
    /// Facts as JSON.
    pub detail: serde_json::Value,
}

impl NewAlert {
    pub fn new(
        kind: AlertKind,
        severity: Severity,
        tenant_id: Option<TenantId>,
        subject: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            severity,
            tenant_id,
            subject: subject.into(),
            summary: summary.into(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A security alert as stored. Occurrences of the same kind, tenant and subject within one
/// deduplication window are one alert with a count (see `service::alerts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub id: AlertId,
    /// What the first occurrence said.
    pub facts: NewAlert,
    /// Kind, tenant, subject and window start: occurrences with the same key are counted here.
    pub dedup_key: String,
    pub occurrences: u32,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    /// The end of the deduplication window: a follow-up with the final count is due then, if
    /// the alert occurred more than once.
    pub window_end: OffsetDateTime,
    /// When a node queued the first notice to its channels; `None` until then.
    pub dispatched_at: Option<OffsetDateTime>,
    /// When a node queued the follow-up (or folded it into a late first notice).
    pub follow_up_dispatched_at: Option<OffsetDateTime>,
}

stored_enum! {
    /// Which notice of an alert: the first, at once, or the follow-up at the end of its window.
    pub enum Notice ("notice") {
        First = "first",
        FollowUp = "follow_up",
    }
}

stored_enum! {
    /// Where an alert delivery goes.
    pub enum AlertChannel ("alert channel") {
        /// An operator's address from `alert_email_to`, by SMTP.
        Email = "email",
        /// The operators' signed webhook, `alert_webhook_url`.
        Webhook = "webhook",
    }
}

/// One notice of an alert to one channel, in the alert outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertDelivery {
    pub id: DeliveryId,
    pub alert_id: AlertId,
    pub channel: AlertChannel,
    /// The address, for email; `None` for the webhook (its URL comes from configuration).
    pub recipient: Option<String>,
    pub notice: Notice,
    pub delivery: DeliveryState,
}

stored_enum! {
    /// What the DLP scan made of a document.
    pub enum FlagState ("document flag state") {
        /// Identifiers found; the firm's policy is to warn: visible flag, audited.
        Warned = "warned",
        /// Held for review: only owners and admins may download it until it is released.
        Quarantined = "quarantined",
        /// Hidden from client users; staff work with it as usual.
        ClientBlocked = "client_blocked",
        /// The text could not be read (an encrypted PDF, say).
        Unscanned = "unscanned",
        /// Was held, and an admin released it.
        Released = "released",
    }
}
