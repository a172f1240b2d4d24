//! Protective controls' records: DLP flags, detections, blocks and behaviour baselines.

use super::*;

/// A document's DLP flag. `findings` is the JSON object of counts per detector: never values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentFlag {
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub matter_id: MatterId,
    pub state: FlagState,
    pub findings: String,
    pub created_at: OffsetDateTime,
}

stored_enum! {
    /// What intrusion or anomaly detection noticed.
    pub enum DetectionKind ("detection kind") {
        /// Many consecutive failed sign-ins on one account from one source.
        BruteForce = "brute_force",
        /// Failed sign-ins across many accounts from one source.
        PasswordSpraying = "password_spraying",
        /// Failed sign-ins on one account from many sources.
        CredentialStuffing = "credential_stuffing",
        /// A burst of 401, 403 and 404 answers to one source.
        EnumerationScan = "enumeration_scan",
        /// Repeated CSRF failures from one source.
        CsrfFailures = "csrf_failures",
        /// Downloads far above the user's baseline (or above the absolute ceiling).
        Exfiltration = "exfiltration",
        /// A sign-in from an address the user has not used before.
        NewIp = "new_ip",
        /// A sign-in from a device the user has not used before.
        NewDevice = "new_device",
        /// A sign-in at an hour of the day the user has not been active at.
        UnusualHours = "unusual_hours",
    }
}

impl DetectionKind {
    /// The alert kind raised with this detection, if any.
    pub fn alert(self) -> Option<AlertKind> {
        match self {
            DetectionKind::BruteForce => Some(AlertKind::BruteForce),
            DetectionKind::PasswordSpraying => Some(AlertKind::PasswordSpraying),
            DetectionKind::CredentialStuffing => Some(AlertKind::CredentialStuffing),
            DetectionKind::EnumerationScan => Some(AlertKind::EnumerationScan),
            DetectionKind::CsrfFailures => Some(AlertKind::CsrfFailures),
            DetectionKind::Exfiltration => Some(AlertKind::Exfiltration),
            DetectionKind::NewIp | DetectionKind::NewDevice | DetectionKind::UnusualHours => None,
        }
    }
}

stored_enum! {
    /// What a block holds back.
    pub enum BlockScope ("block scope") {
        /// Requests from one client address (except valid sessions, tokens and known devices).
        Source = "source",
        /// One account: its sessions must step up before sensitive actions, and signing in
        /// needs a second factor (or, without one, a device known for the account).
        Account = "account",
        /// One user's downloads, until an admin resumes them.
        Downloads = "downloads",
    }
}

/// A block, as stored. Source blocks have an `ip` and no tenant; account and download blocks
/// have a tenant and user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub id: crate::ids::BlockId,
    pub scope: BlockScope,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub ip: Option<String>,
    pub reason: DetectionKind,
    pub detail: serde_json::Value,
    pub created_at: OffsetDateTime,
    /// `None`: until lifted.
    pub expires_at: Option<OffsetDateTime>,
    pub lifted_at: Option<OffsetDateTime>,
    /// Who lifted it (`user:<id>`, `operator:<id>`, `cli`).
    pub lifted_by: Option<String>,
}

/// Something detection noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub id: crate::ids::DetectionId,
    pub kind: DetectionKind,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
    pub created_at: OffsetDateTime,
}

/// A user's behaviour baseline (see `service::intrusion`). Averages are kept times 1000.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// Days since the Unix epoch (UTC) that `day_count` and `day_bytes` are for.
    pub day: i64,
    pub day_count: u64,
    pub day_bytes: u64,
    pub avg_count_milli: u64,
    pub avg_bytes_milli: u64,
    /// Active days folded into the averages.
    pub days: u32,
    /// Sign-ins per UTC hour.
    pub hours: [u32; 24],
}

stored_enum! {
    /// Where a tenant's subscription stands. A destroyed tenant has no record any more: the
    /// erasure ledger remembers it.
    pub enum TenantStatus ("tenant status") {
        /// Subscribed: its users work as usual.
        Active = "active",
        /// The subscription ended: nobody signs in, the data is kept (encrypted) for the
        /// retention period and the subscription can be reactivated.
        Ended = "ended",
        /// A destruction has started (retention ran out, or the firm directed erasure): nobody
        /// signs in, and the erasure job finishes it.
        Erasing = "erasing",
    }
}

stored_enum! {
    /// Why a tenant was destroyed.
    pub enum ErasureReason ("erasure reason") {
        /// The firm's owner directed it, and a second owner or admin approved.
        Customer = "customer",
        /// The retention period after the subscription ended ran out.
        Retention = "retention",
    }
}
