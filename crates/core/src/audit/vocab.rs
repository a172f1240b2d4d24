//! The audit log's vocabulary: what an event records ([`Action`]) and what it is about
//! ([`Target`]), each stored as text through one mechanism and matched as values.

use crate::ids::{
    AlertId, ApprovalId, BlockId, DetectionId, DocumentId, IncidentId, MatterId, OperatorId, PasskeyId, TenantId,
    TokenId, UserId,
};

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
