//! Audit events and their per-tenant hash chain. Each event's hash covers the previous event's
//! hash, so removing, editing or reordering an event breaks every hash after it. The store
//! appends an event in the same transaction as the action it records.

use crate::ids::{
    AlertId, ApprovalId, BlockId, DetectionId, DocumentId, IncidentId, MatterId, OperatorId, PasskeyId, TenantId,
    TokenId, UserId,
};
use aws_lc_rs::digest;
use time::OffsetDateTime;

pub mod search;

crate::model::stored_enum! {
    /// What an event records: a dotted verb, stored as text (`as_str`). The stored strings are
    /// part of the chain (each event's hash covers its action) and of what auditors search, so
    /// they never change; a new action is a new variant.
    pub enum Action ("audit action") {
        AlertDelivered = "alert.delivered",
        AlertDeliveryFailed = "alert.delivery_failed",
        AlertRaised = "alert.raised",
        ApprovalApprove = "approval.approve",
        ApprovalRefused = "approval.refused",
        ApprovalReject = "approval.reject",
        ApprovalRequest = "approval.request",
        AuditExport = "audit.export",
        AuditVerificationFailed = "audit.verification_failed",
        AuthLogin = "auth.login",
        /// A sign-in refused because its source or account is blocked.
        AuthLoginBlocked = "auth.login_blocked",
        AuthLoginFailed = "auth.login_failed",
        AuthLoginLocked = "auth.login_locked",
        /// A sign-in refused because the account is under intrusion protection.
        AuthLoginProtected = "auth.login_protected",
        AuthLoginRefusedNetwork = "auth.login_refused_network",
        AuthLoginRefusedSubscription = "auth.login_refused_subscription",
        AuthLogout = "auth.logout",
        AuthNewDevice = "auth.new_device",
        AuthPasskeyAdded = "auth.passkey_added",
        AuthPasskeyRegistrationFailed = "auth.passkey_registration_failed",
        AuthPasskeyRegistrationStarted = "auth.passkey_registration_started",
        AuthPasskeyRemoved = "auth.passkey_removed",
        AuthSecondFactorFailed = "auth.second_factor_failed",
        /// A password was right and the second factor is now asked for.
        AuthSecondFactorRequired = "auth.second_factor_required",
        /// A second factor confirmed again before a sensitive action.
        AuthStepUp = "auth.step_up",
        AuthStepUpFailed = "auth.step_up_failed",
        AuthTotpEnrolled = "auth.totp_enrolled",
        AuthTotpEnrolmentFailed = "auth.totp_enrolment_failed",
        AuthTotpEnrolmentStarted = "auth.totp_enrolment_started",
        AuthTotpRemoved = "auth.totp_removed",
        BackupCreate = "backup.create",
        BackupFailed = "backup.failed",
        BackupPrune = "backup.prune",
        BackupRestore = "backup.restore",
        /// A firm told of a breach that touched it (on the firm's chain).
        BreachNotified = "breach.notified",
        /// The security limits in the configuration changed.
        ConfigSecurityLimits = "config.security_limits",
        DlpDocumentDeleted = "dlp.document_deleted",
        DlpDocumentFlagged = "dlp.document_flagged",
        DlpDocumentReleased = "dlp.document_released",
        DlpDownloadCapLifted = "dlp.download_cap_lifted",
        DlpDownloadCapped = "dlp.download_capped",
        DlpMessageFlagged = "dlp.message_flagged",
        DlpMessageRefused = "dlp.message_refused",
        DocumentDownload = "document.download",
        DocumentIntegrityFailure = "document.integrity_failure",
        DocumentList = "document.list",
        DocumentUpload = "document.upload",
        DocumentUploadRefused = "document.upload_refused",
        ExportApproved = "export.approved",
        ExportDownloadRefused = "export.download_refused",
        ExportDownloaded = "export.downloaded",
        ExportExpired = "export.expired",
        ExportFailed = "export.failed",
        ExportFinished = "export.finished",
        ExportRefused = "export.refused",
        ExportRequested = "export.requested",
        /// One event of an imported firm's original chain, carried over whole.
        ImportAuditEvent = "import.audit_event",
        ImportDocument = "import.document",
        ImportFinished = "import.finished",
        ImportMatter = "import.matter",
        ImportUser = "import.user",
        IncidentNotify = "incident.notify",
        IncidentReport = "incident.report",
        IncidentScope = "incident.scope",
        IncidentTriageOverdue = "incident.triage_overdue",
        IncidentUpdate = "incident.update",
        KeysRotateMaster = "keys.rotate_master",
        /// The master key rotated without a second operator (approval switched off).
        KeysRotateMasterUnapproved = "keys.rotate_master_unapproved",
        KeysRotateTenantDocumentFailed = "keys.rotate_tenant.document_failed",
        KeysRotateTenantFinish = "keys.rotate_tenant.finish",
        KeysRotateTenantStart = "keys.rotate_tenant.start",
        KeysRotateTenantWork = "keys.rotate_tenant.work",
        /// A firm's keys destroyed (erasure).
        KeysShred = "keys.shred",
        MailFailed = "mail.failed",
        MailSent = "mail.sent",
        MatterCreate = "matter.create",
        MatterList = "matter.list",
        MatterMemberAdd = "matter.member_add",
        MatterMemberList = "matter.member_list",
        MatterMemberRemove = "matter.member_remove",
        MatterView = "matter.view",
        MessagePost = "message.post",
        MessageRead = "message.read",
        OperatorAdd = "operator.add",
        OperatorGrant = "operator.grant",
        OperatorGrantRefused = "operator.grant_refused",
        OperatorRefused = "operator.refused",
        OperatorRoleSuspended = "operator.role_suspended",
        OperatorSignOut = "operator.sign_out",
        OperatorToken = "operator.token",
        OperatorTokensRevoked = "operator.tokens_revoked",
        OperatorVetting = "operator.vetting",
        PlatformApprovalApproved = "platform.approval_approved",
        PlatformApprovalRejected = "platform.approval_rejected",
        PlatformApprovalRequested = "platform.approval_requested",
        PlatformApprovalUsed = "platform.approval_used",
        SecurityAccountProtected = "security.account_protected",
        SecurityAccountProtectionLifted = "security.account_protection_lifted",
        /// An intrusion detector fired.
        SecurityDetection = "security.detection",
        SecurityDownloadsPaused = "security.downloads_paused",
        SecurityDownloadsResumed = "security.downloads_resumed",
        SecuritySourceBlocked = "security.source_blocked",
        SecuritySourceUnblocked = "security.source_unblocked",
        SessionEnd = "session.end",
        SessionEndAll = "session.end_all",
        SetupCompleted = "setup.completed",
        SetupLinkIssued = "setup.link_issued",
        SubscriptionEnd = "subscription.end",
        SubscriptionEndRequested = "subscription.end_requested",
        SubscriptionReactivate = "subscription.reactivate",
        /// Owners told when an ended firm's data will be erased.
        SubscriptionRetentionNotice = "subscription.retention_notice",
        TenantCertificateMailed = "tenant.certificate_mailed",
        TenantCreate = "tenant.create",
        TenantDlpPolicy = "tenant.dlp_policy",
        TenantErased = "tenant.erased",
        TenantErasureRefused = "tenant.erasure_refused",
        TenantErasureStart = "tenant.erasure_start",
        /// The erasure of a firm reached every backup.
        TenantErasureSyncedToBackups = "tenant.erasure_synced_to_backups",
        TenantImport = "tenant.import",
        TenantNetworkAccess = "tenant.network_access",
        TenantTwoFactorPolicy = "tenant.two_factor_policy",
        TenantUploadPolicy = "tenant.upload_policy",
        TokenCreate = "token.create",
        TokenRevoke = "token.revoke",
        UserCreate = "user.create",
        UserDeactivate = "user.deactivate",
        UserPasswordChange = "user.password_change",
        UserPasswordChangeFailed = "user.password_change_failed",
        UserPasswordSet = "user.password_set",
        UserReactivate = "user.reactivate",
        UserRoleChange = "user.role_change",
        UserRoleChangeRefused = "user.role_change_refused",
        UserUnlock = "user.unlock",
        /// A request refused at the edge (web application firewall).
        WafBlock = "waf.block",
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is about, stored as `<kind>:<id>` (see [`Target::to_stored`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    User(UserId),
    Tenant(TenantId),
    Matter(MatterId),
    Document(DocumentId),
    /// A firm's approval request.
    Approval(ApprovalId),
    /// A platform request awaiting a second operator.
    PlatformApproval(ApprovalId),
    /// A firm's data export (its id is the export request's).
    Export(ApprovalId),
    Token(TokenId),
    Passkey(PasskeyId),
    Operator(OperatorId),
    Incident(IncidentId),
    Alert(AlertId),
    Block(BlockId),
    Detection(DetectionId),
    /// A backup, by its id or kind (`backup:<id>`).
    Backup(String),
    /// The backups as a whole (pruning).
    Backups,
    /// An audit chain: a firm's id, or `platform`.
    Chain(String),
    /// An event of an imported chain, by its sequence number there.
    ImportedEvent(i64),
    /// The platform itself (setup, master key, configuration).
    Platform,
    /// A request refused at the edge.
    Request,
    /// An account that could not be found (a failed sign-in with an unknown address).
    Unknown,
    /// Any other stored text (events written before a kind existed, tests): kept as it is.
    Other(String),
}

impl Target {
    /// The stored form, e.g. `document:<id>`.
    pub fn to_stored(&self) -> String {
        match self {
            Target::User(id) => format!("user:{id}"),
            Target::Tenant(id) => format!("tenant:{id}"),
            Target::Matter(id) => format!("matter:{id}"),
            Target::Document(id) => format!("document:{id}"),
            Target::Approval(id) => format!("approval:{id}"),
            Target::PlatformApproval(id) => format!("platform_approval:{id}"),
            Target::Export(id) => format!("export:{id}"),
            Target::Token(id) => format!("token:{id}"),
            Target::Passkey(id) => format!("passkey:{id}"),
            Target::Operator(id) => format!("operator:{id}"),
            Target::Incident(id) => format!("incident:{id}"),
            Target::Alert(id) => format!("alert:{id}"),
            Target::Block(id) => format!("block:{id}"),
            Target::Detection(id) => format!("detection:{id}"),
            Target::Backup(b) => format!("backup:{b}"),
            Target::Backups => "backups".into(),
            Target::Chain(c) => format!("chain:{c}"),
            Target::ImportedEvent(seq) => format!("imported-event:{seq}"),
            Target::Platform => "platform".into(),
            Target::Request => "request".into(),
            Target::Unknown => "unknown".into(),
            Target::Other(s) => s.clone(),
        }
    }

    /// Read a stored target. Text of no known kind (or with an id that does not parse) is
    /// [`Target::Other`], so every stored target has a reading.
    pub fn parse(s: &str) -> Target {
        fn id<T: std::str::FromStr>(s: &str, f: impl FnOnce(T) -> Target) -> Option<Target> {
            s.parse().ok().map(f)
        }
        let known = match s.split_once(':') {
            None => match s {
                "backups" => Some(Target::Backups),
                "platform" => Some(Target::Platform),
                "request" => Some(Target::Request),
                "unknown" => Some(Target::Unknown),
                _ => None,
            },
            Some((kind, rest)) => match kind {
                "user" => id(rest, Target::User),
                "tenant" => id(rest, Target::Tenant),
                "matter" => id(rest, Target::Matter),
                "document" => id(rest, Target::Document),
                "approval" => id(rest, Target::Approval),
                "platform_approval" => id(rest, Target::PlatformApproval),
                "export" => id(rest, Target::Export),
                "token" => id(rest, Target::Token),
                "passkey" => id(rest, Target::Passkey),
                "operator" => id(rest, Target::Operator),
                "incident" => id(rest, Target::Incident),
                "alert" => id(rest, Target::Alert),
                "block" => id(rest, Target::Block),
                "detection" => id(rest, Target::Detection),
                "backup" => Some(Target::Backup(rest.to_string())),
                "chain" => Some(Target::Chain(rest.to_string())),
                "imported-event" => id(rest, Target::ImportedEvent),
                _ => None,
            },
        };
        known.unwrap_or_else(|| Target::Other(s.to_string()))
    }

    /// The user a stored actor (`user:<id>`) names, if it names one.
    pub fn user_of_actor(stored_actor: &str) -> Option<UserId> {
        match Target::parse(stored_actor) {
            Target::User(u) => Some(u),
            _ => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_stored())
    }
}

/// Who did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// A user through one of their API tokens: stored as the user (searches by actor find
    /// both), with the token's id added to the event's detail as `via_token` (see [`seal`]).
    Token {
        user: UserId,
        token: crate::ids::TokenId,
    },
    /// The local command-line tool.
    Cli,
    /// The server itself (scheduled jobs, first-start setup).
    System,
    /// Someone not signed in (a failed sign-in, a one-time link).
    Anonymous,
    /// A platform operator (the service's own staff).
    Operator(crate::ids::OperatorId),
}

impl Actor {
    /// The stored form.
    pub fn to_stored(&self) -> String {
        match self {
            Actor::User(id) | Actor::Token { user: id, .. } => format!("user:{id}"),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
            Actor::Anonymous => "anonymous".into(),
            Actor::Operator(id) => format!("operator:{id}"),
        }
    }
}

/// Where a request came from, for the audit trail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// The client's `User-Agent` (cut to 200 characters), shown in session lists; not audited.
    pub user_agent: Option<String>,
}

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// `None` for platform events that belong to no tenant.
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    /// What happened, e.g. [`Action::MatterCreate`].
    pub action: Action,
    /// What was acted on, e.g. [`Target::Matter`].
    pub target: Target,
    pub meta: RequestMeta,
    /// Extra facts; never secrets and never client content.
    pub detail: serde_json::Value,
    /// The matter the event concerns, if any: the matter itself, or one of its documents or
    /// messages. Searching by matter uses it (see [`StoredEvent::matter`]).
    pub matter: Option<MatterId>,
}

impl NewEvent {
    pub fn new(tenant_id: Option<TenantId>, actor: Actor, action: Action, target: Target, meta: &RequestMeta) -> Self {
        Self { tenant_id, actor, action, target, meta: meta.clone(), detail: serde_json::Value::Null, matter: None }
    }

    /// Mark the event as concerning `matter` (or one of its documents or messages).
    pub fn on_matter(mut self, matter: MatterId) -> Self {
        self.matter = Some(matter);
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Count a written event in the metrics: every action, and sign-ins and second-factor failures
/// under their own names for dashboards and alert rules. Counted when written (a transaction
/// that later rolls back is still counted; such rollbacks are rare failures themselves).
pub fn count(ev: &NewEvent) {
    metrics::counter!("portcullis_audit_events_total", "action" => ev.action.as_str()).increment(1);
    let login = match ev.action {
        Action::AuthLogin => Some("success"),
        Action::AuthLoginFailed => Some("failure"),
        Action::AuthLoginLocked => Some("locked"),
        _ => None,
    };
    if let Some(outcome) = login {
        metrics::counter!("portcullis_logins_total", "outcome" => outcome).increment(1);
    }
    if matches!(ev.action, Action::AuthSecondFactorFailed | Action::AuthStepUpFailed) {
        metrics::counter!("portcullis_second_factor_failures_total").increment(1);
    }
}

/// An event as stored, with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The chain key: the tenant id, or empty for platform events.
    pub chain: String,
    pub seq: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
    /// The matter the event concerns (its id, as stored), so that a search by matter finds the
    /// events about the matter *and* about its documents and messages with one indexed column.
    ///
    /// A filter decides what an auditor sees, so the column must not be changeable without
    /// trace: anyone able to clear it could hide an event from a search by matter while the
    /// chain still verified. It is therefore covered by the event's hash like every other
    /// field (see [`event_hash`]): an event with a matter hashes under the `v2` domain tag with
    /// the matter as an extra field, one without hashes exactly as before (`v1`). Events written
    /// before the column existed keep verifying; setting the column on one of them, or clearing
    /// or changing it on a newer one, breaks that event's hash. (Deriving the column from the
    /// target or detail instead would leave the column itself uncovered.)
    pub matter: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent {
    /// The action, read back; `None` for text no [`Action`] stores (an imported or tampered
    /// event).
    pub fn action(&self) -> Option<Action> {
        Action::parse(&self.action).ok()
    }

    /// The target, read back.
    pub fn target(&self) -> Target {
        Target::parse(&self.target)
    }

    /// The user who acted, if a user did (directly or through a token).
    pub fn actor_user(&self) -> Option<UserId> {
        Target::user_of_actor(&self.actor)
    }
}

/// The chain key of an event's tenant.
pub fn chain_key(tenant: Option<TenantId>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

/// Build the stored form of `ev`, chained after `prev_hash` at position `seq`.
pub fn seal(ev: &NewEvent, seq: i64, at: OffsetDateTime, prev_hash: &str) -> StoredEvent {
    let mut e = StoredEvent {
        chain: chain_key(ev.tenant_id),
        seq,
        at,
        actor: ev.actor.to_stored(),
        action: ev.action.as_str().to_string(),
        target: ev.target.to_stored(),
        ip: ev.meta.ip.clone(),
        request_id: ev.meta.request_id.clone(),
        detail: stored_detail(ev).to_string(),
        matter: ev.matter.map(|m| m.to_string()),
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    e.hash = event_hash(&e);
    e
}

/// The detail as stored: an event caused through an API token names the token (`via_token`),
/// covered by the event's hash like the rest of the detail.
fn stored_detail(ev: &NewEvent) -> std::borrow::Cow<'_, serde_json::Value> {
    let Actor::Token { token, .. } = &ev.actor else {
        return std::borrow::Cow::Borrowed(&ev.detail);
    };
    let mut d = match &ev.detail {
        serde_json::Value::Object(m) => m.clone(),
        serde_json::Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("detail".to_string(), other.clone())]),
    };
    d.insert(VIA_TOKEN.into(), serde_json::Value::String(token.to_string()));
    std::borrow::Cow::Owned(serde_json::Value::Object(d))
}

/// The detail key naming the API token an event was caused through.
pub const VIA_TOKEN: &str = "via_token";

/// The hash of a stored event: SHA-256 over every field, each length-prefixed so no two
/// different events encode alike. An event without a matter hashes as in the first version of
/// the format (`v1`); one with a matter under the tag `v2`, with the matter after the detail, so
/// the two forms can never encode alike either.
pub fn event_hash(e: &StoredEvent) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let at = crate::clock::to_millis(e.at).to_string();
    let seq = e.seq.to_string();
    let tag = if e.matter.is_some() { "portcullis-audit-v2" } else { "portcullis-audit-v1" };
    let fields: [&str; 10] = [
        tag,
        &e.chain,
        &seq,
        &at,
        &e.actor,
        &e.action,
        &e.target,
        e.ip.as_deref().unwrap_or(""),
        e.request_id.as_deref().unwrap_or(""),
        &e.detail,
    ];
    for f in fields.into_iter().chain(e.matter.as_deref()).chain([e.prev_hash.as_str()]) {
        ctx.update(&(f.len() as u64).to_be_bytes());
        ctx.update(f.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// Check a run of consecutive events of one chain, starting after `prev_hash`. Returns the
/// sequence number of the first event that does not fit.
pub fn verify_run(prev_hash: &str, first_seq: i64, events: &[StoredEvent]) -> Result<(), i64> {
    let mut prev = prev_hash.to_string();
    for (expect, e) in (first_seq..).zip(events) {
        if e.seq != expect || e.prev_hash != prev || event_hash(e) != e.hash {
            return Err(e.seq);
        }
        prev = e.hash.clone();
    }
    Ok(())
}

/// How far one chain has grown and how much of it a signed checkpoint covers, for monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    pub chain: String,
    /// Events in the chain.
    pub length: i64,
    /// The newest checkpoint's sequence number (0: none yet).
    pub sealed_through: i64,
    /// When the newest checkpoint was signed.
    pub last_checkpoint_at: Option<OffsetDateTime>,
    /// When the oldest event no checkpoint covers yet was written.
    pub oldest_unsealed_at: Option<OffsetDateTime>,
}

/// A signed statement that a chain had `hash` at event `seq` (see `crypto::signing`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    pub signed_at: OffsetDateTime,
    pub key_id: String,
    /// Ed25519, hex.
    pub signature: String,
}

impl AuditCheckpoint {
    pub fn body(&self) -> crate::crypto::signing::CheckpointBody<'_> {
        crate::crypto::signing::CheckpointBody {
            chain: &self.chain,
            seq: self.seq,
            hash: &self.hash,
            signed_at: self.signed_at,
            key_id: &self.key_id,
        }
    }
}

/// The first thing wrong with a chain: the event (by sequence number) where it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFault {
    pub seq: i64,
    pub reason: &'static str,
}

/// Checks one chain from its first event, fed in order a page at a time, against its signed
/// checkpoints. It finds an edited, deleted, reordered or inserted event (the links or hashes
/// stop matching), a chain rebuilt after such a change (its hashes no longer match a signed
/// checkpoint), a forged or unsigned checkpoint, and a chain cut back past a checkpoint.
#[derive(Debug)]
pub struct ChainVerifier {
    checkpoints: std::collections::BTreeMap<i64, AuditCheckpoint>,
    /// The hash the next event must link to; `None` before the first event of a resumed check
    /// (that event is held to its checkpoint instead).
    prev_hash: Option<String>,
    next_seq: i64,
    pub events: u64,
    fault: Option<ChainFault>,
}

impl ChainVerifier {
    /// Start with the chain's checkpoints; each must be signed by one of `trusted`.
    pub fn new(checkpoints: Vec<AuditCheckpoint>, trusted: &[crate::crypto::signing::AuditPublicKey]) -> Self {
        let fault = checkpoints
            .iter()
            .filter(|c| !trusted.iter().any(|k| k.verifies(&c.body(), &c.signature)))
            .map(|c| ChainFault { seq: c.seq, reason: "checkpoint signature is not valid (or its key is not trusted)" })
            .min_by_key(|f| f.seq);
        Self {
            checkpoints: checkpoints.into_iter().map(|c| (c.seq, c)).collect(),
            prev_hash: Some(String::new()),
            next_seq: 1,
            events: 0,
            fault,
        }
    }

    /// Check only what came since a chain's newest checkpoint, fed from the checkpointed event
    /// on: that event must still have the hash the checkpoint signed, every later one must link
    /// to it, and the chain must not end before it. The checkpoint's signature is checked
    /// against `trusted`; pass no keys to skip that (a checkpoint by a key this node does not
    /// hold, after a key change).
    pub fn resume(checkpoint: AuditCheckpoint, trusted: &[crate::crypto::signing::AuditPublicKey]) -> Self {
        let seq = checkpoint.seq;
        let trusted_by_us =
            trusted.is_empty() || trusted.iter().any(|k| k.verifies(&checkpoint.body(), &checkpoint.signature));
        let fault = (!trusted_by_us)
            .then_some(ChainFault { seq, reason: "checkpoint signature is not valid (or its key is not trusted)" });
        Self { checkpoints: [(seq, checkpoint)].into(), prev_hash: None, next_seq: seq, events: 0, fault }
    }

    /// Check the next events of the chain, in order.
    pub fn feed(&mut self, events: &[StoredEvent]) {
        for e in events {
            if self.fault.as_ref().is_some_and(|f| f.seq <= e.seq) {
                return;
            }
            let reason = if e.seq != self.next_seq {
                Some("an event is missing or out of order here")
            } else if self.prev_hash.as_ref().is_some_and(|p| e.prev_hash != *p) {
                Some("the link to the previous event is broken")
            } else if event_hash(e) != e.hash {
                Some("the event was changed after it was written")
            } else if self.checkpoints.get(&e.seq).is_some_and(|c| c.hash != e.hash) {
                Some("the chain differs from what a signed checkpoint recorded")
            } else {
                None
            };
            if let Some(reason) = reason {
                let seq = e.seq.min(self.next_seq);
                self.fault = Some(ChainFault { seq, reason });
                return;
            }
            self.prev_hash = Some(e.hash.clone());
            self.next_seq += 1;
            self.events += 1;
        }
    }

    /// Whether the verdict is known: the events checked reach the first fault, so no earlier
    /// one can turn up and later events need not be read. (A bad checkpoint far along the chain
    /// is a fault too, but an edited event before it would be the first.)
    pub fn is_settled(&self) -> bool {
        self.fault.as_ref().is_some_and(|f| f.seq <= self.next_seq)
    }

    /// The sequence number after the last event checked.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// The verdict, once every event was fed: `None` if the chain is intact.
    pub fn finish(self) -> Option<ChainFault> {
        if let Some(f) = self.fault {
            return Some(f);
        }
        // A signed checkpoint past the end: events it covered are gone.
        self.checkpoints
            .keys()
            .next_back()
            .filter(|seq| **seq >= self.next_seq)
            .map(|_| ChainFault { seq: self.next_seq, reason: "the chain ends before its last signed checkpoint" })
    }

    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEvent> {
        let t = TenantId::new();
        let mut prev = String::new();
        (1..=n)
            .map(|seq| {
                let ev = NewEvent::new(
                    Some(t),
                    Actor::System,
                    Action::MatterView,
                    Target::Other(format!("n:{seq}")),
                    &RequestMeta::default(),
                );
                let e = seal(&ev, seq, OffsetDateTime::UNIX_EPOCH, &prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn every_action_round_trips_and_its_stored_text_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()).unwrap(), *a);
            assert!(seen.insert(a.as_str()), "{a:?} stores the same text as another action");
            let stored = StoredEvent { action: a.as_str().into(), ..chain(1).remove(0) };
            assert_eq!(stored.action(), Some(*a));
        }
        assert!(Action::parse("nothing.happened").is_err());
        assert_eq!(Action::DocumentDownload.as_str(), "document.download");
        assert_eq!(Action::KeysRotateTenantStart.as_str(), "keys.rotate_tenant.start");
    }

    #[test]
    fn every_target_round_trips_through_its_stored_form() {
        let approval = ApprovalId::new();
        let targets = [
            Target::User(UserId::new()),
            Target::Tenant(TenantId::new()),
            Target::Matter(MatterId::new()),
            Target::Document(DocumentId::new()),
            Target::Approval(approval),
            Target::PlatformApproval(approval),
            Target::Export(approval),
            Target::Token(TokenId::new()),
            Target::Passkey(PasskeyId::new()),
            Target::Operator(OperatorId::new()),
            Target::Incident(IncidentId::new()),
            Target::Alert(AlertId::new()),
            Target::Block(BlockId::new()),
            Target::Detection(DetectionId::new()),
            Target::Backup("full".into()),
            Target::Backups,
            Target::Chain("platform".into()),
            Target::ImportedEvent(42),
            Target::Platform,
            Target::Request,
            Target::Unknown,
            Target::Other("n:1".into()),
            Target::Other("=HYPERLINK(\"x\")".into()),
            Target::Other("document:not-an-id".into()),
        ];
        let mut seen = std::collections::HashSet::new();
        for t in &targets {
            let stored = t.to_stored();
            assert_eq!(Target::parse(&stored), *t, "{stored}");
            assert!(seen.insert(stored));
        }
        // The stored form is today's `<kind>:<id>`, byte for byte.
        let d = DocumentId::new();
        assert_eq!(Target::Document(d).to_stored(), format!("document:{d}"));
        assert_eq!(Target::Approval(approval).to_stored(), format!("approval:{approval}"));
        assert_eq!(Target::PlatformApproval(approval).to_stored(), format!("platform_approval:{approval}"));
        assert_eq!(Target::ImportedEvent(7).to_stored(), "imported-event:7");
        let u = UserId::new();
        assert_eq!(Target::user_of_actor(&Actor::User(u).to_stored()), Some(u));
        assert_eq!(Target::user_of_actor(&Actor::Cli.to_stored()), None);
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_run("", 1, &chain(5)), Ok(()));
    }

    #[test]
    fn edit_delete_and_reorder_are_detected() {
        let mut edited = chain(5);
        edited[2].target = "changed".into();
        assert_eq!(verify_run("", 1, &edited), Err(3));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify_run("", 1, &deleted), Err(3));

        let mut swapped = chain(5);
        swapped.swap(1, 2);
        assert_eq!(verify_run("", 1, &swapped), Err(3));
    }

    #[test]
    fn an_event_without_a_matter_hashes_as_before_and_one_with_a_matter_covers_it() {
        let mut e = StoredEvent {
            chain: "t".into(),
            seq: 1,
            at: OffsetDateTime::UNIX_EPOCH,
            actor: "system".into(),
            action: "test.event".into(),
            target: "n:1".into(),
            ip: None,
            request_id: None,
            detail: "null".into(),
            matter: None,
            prev_hash: String::new(),
            hash: String::new(),
        };
        // Fixed vectors, computed independently of this code: the v1 form is the one events
        // were hashed with before matters were recorded, so old chains keep verifying.
        assert_eq!(event_hash(&e), "f0b1e8eaa49e40ce243aca06e65ad84aebce0aeec637075bfcc45c89b731946b");
        e.matter = Some("m".into());
        assert_eq!(event_hash(&e), "04aca1a8aa95f3d1152d39a8b9bdf1dd048656fbddb6445f02d8f8d1cf10ecbf");
        // Clearing, adding or changing the matter is an edit like any other.
        let ev = NewEvent::new(
            Some(TenantId::new()),
            Actor::System,
            Action::DocumentUpload,
            Target::Other("document:x".into()),
            &RequestMeta::default(),
        )
        .on_matter(MatterId::new());
        let sealed = seal(&ev, 1, OffsetDateTime::UNIX_EPOCH, "");
        assert_eq!(verify_run("", 1, std::slice::from_ref(&sealed)), Ok(()));
        for matter in [None, Some(MatterId::new().to_string()), Some(String::new())] {
            let tampered = StoredEvent { matter, ..sealed.clone() };
            assert_eq!(verify_run("", 1, &[tampered]), Err(1));
        }
    }

    use crate::crypto::signing::{AuditPublicKey, AuditSigner};

    fn signer() -> AuditSigner {
        AuditSigner::from_pkcs8(&AuditSigner::generate_pkcs8().unwrap()).unwrap()
    }

    fn checkpoint(s: &AuditSigner, e: &StoredEvent) -> AuditCheckpoint {
        let mut c = AuditCheckpoint {
            chain: e.chain.clone(),
            seq: e.seq,
            hash: e.hash.clone(),
            signed_at: OffsetDateTime::UNIX_EPOCH,
            key_id: s.key_id().to_string(),
            signature: String::new(),
        };
        c.signature = s.sign(&c.body());
        c
    }

    /// Verify `events` (fed in pages of two) against checkpoints at events 3 and 6.
    fn verdict(events: &[StoredEvent], checkpoints: Vec<AuditCheckpoint>, trusted: &[AuditPublicKey]) -> Option<i64> {
        let mut v = ChainVerifier::new(checkpoints, trusted);
        for page in events.chunks(2) {
            v.feed(page);
        }
        v.finish().map(|f| f.seq)
    }

    /// Rebuild every hash from `from` on, as someone with write access to the database could.
    fn rehash(events: &mut [StoredEvent], from: usize) {
        for i in from..events.len() {
            events[i].prev_hash = if i == 0 { String::new() } else { events[i - 1].hash.clone() };
            events[i].hash = event_hash(&events[i]);
        }
    }

    #[test]
    fn every_tampering_names_the_first_broken_event() {
        let s = signer();
        let trusted = [s.public_key()];
        let good = chain(8);
        let cps = || vec![checkpoint(&s, &good[2]), checkpoint(&s, &good[5])];
        assert_eq!(verdict(&good, cps(), &trusted), None);

        let mut edited = good.clone();
        edited[4].detail = "{\"x\":1}".into();
        assert_eq!(verdict(&edited, cps(), &trusted), Some(5), "edited");
        let mut deleted = good.clone();
        deleted.remove(3);
        assert_eq!(verdict(&deleted, cps(), &trusted), Some(4), "deleted");
        let mut reordered = good.clone();
        reordered.swap(6, 7);
        assert_eq!(verdict(&reordered, cps(), &trusted), Some(7), "reordered");
        // An event slipped in at 3, the later ones renumbered to make room.
        let mut inserted = good.clone();
        let mut extra = good[1].clone();
        extra.target = "inserted".into();
        inserted.insert(2, extra);
        for (i, e) in inserted.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verdict(&inserted, cps(), &trusted), Some(3), "inserted");
        // Cut back past the checkpoint at 6: the events it covered are gone.
        assert_eq!(verdict(&good[..4], cps(), &trusted), Some(5), "truncated");
        // Cut back after the last checkpoint: nothing signed covers those events yet.
        assert_eq!(verdict(&good[..7], cps(), &trusted), None, "tail after the last checkpoint");

        // Edited and every later hash rebuilt: the links hold, the signed checkpoint does not.
        let mut rebuilt = good.clone();
        rebuilt[1].action = "nothing.happened".into();
        rehash(&mut rebuilt, 1);
        assert_eq!(verify_run("", 1, &rebuilt), Ok(()));
        assert_eq!(verdict(&rebuilt, cps(), &trusted), Some(3), "rebuilt");
        // ...and re-signing it needs the key: a checkpoint by another key is not trusted.
        let forger = signer();
        let forged = vec![checkpoint(&forger, &rebuilt[2]), checkpoint(&forger, &rebuilt[5])];
        assert_eq!(verdict(&rebuilt, forged, &trusted), Some(3), "forged");
        let mut altered = cps();
        altered[1].seq = 5;
        assert_eq!(verdict(&good, altered, &trusted), Some(5), "moved checkpoint");
        // A bad checkpoint at 6 and an edit at 4: the edit is the first fault, and the verdict is
        // not settled until the events reach it.
        let mut both = good.clone();
        both[3].target = "changed".into();
        let mut bad = cps();
        bad[1].signature = bad[0].signature.clone();
        let mut v = ChainVerifier::new(bad, &trusted);
        v.feed(&both[..2]);
        assert!(!v.is_settled());
        v.feed(&both[2..]);
        assert!(v.is_settled());
        assert_eq!(v.finish().map(|f| f.seq), Some(4));
    }

    /// Resume at the checkpoint at 6 (`good[5]`), fed from that event on.
    fn resumed(events: &[StoredEvent], cp: AuditCheckpoint, trusted: &[AuditPublicKey]) -> Option<i64> {
        let mut v = ChainVerifier::resume(cp, trusted);
        v.feed(&events[5.min(events.len())..]);
        v.finish().map(|f| f.seq)
    }

    #[test]
    fn a_resumed_check_holds_the_tail_to_the_newest_checkpoint() {
        let s = signer();
        let trusted = [s.public_key()];
        let good = chain(8);
        let cp = || checkpoint(&s, &good[5]);
        assert_eq!(resumed(&good, cp(), &trusted), None);
        let mut edited = good.clone();
        edited[5].detail = "{}".into();
        assert_eq!(resumed(&edited, cp(), &trusted), Some(6), "checkpointed event edited");
        let mut rebuilt = good.clone();
        rebuilt[5].detail = "{}".into();
        rehash(&mut rebuilt, 5);
        assert_eq!(resumed(&rebuilt, cp(), &trusted), Some(6), "checkpointed event edited and rehashed");
        let mut relinked = good.clone();
        relinked[6].prev_hash = "00".into();
        assert_eq!(resumed(&relinked, cp(), &trusted), Some(7), "tail link broken");
        assert_eq!(resumed(&good[..4], cp(), &trusted), Some(6), "cut back past the checkpoint");
        let mut forged = cp();
        forged.hash = good[4].hash.clone();
        assert_eq!(resumed(&good, forged.clone(), &trusted), Some(6), "forged checkpoint");
        // With no trusted key the signature is not checked, the hashes still are.
        assert_eq!(resumed(&good, forged, &[]), Some(6));
        let other = signer();
        assert_eq!(resumed(&good, checkpoint(&other, &good[5]), &[]), None);
        assert_eq!(resumed(&good, checkpoint(&other, &good[5]), &trusted), Some(6));
    }
}
