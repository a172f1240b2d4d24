//! Row shapes as the SQL returns them, and their conversion into domain records. Decoding a
//! stored value that does not parse is an internal error: the database was written by us.

use portcullis_core::audit::StoredEvent;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::model::{
    Alert, AlertChannel, AlertDelivery, AlertKind, ApiToken, ApprovalRequest, ApprovalState, Baseline, Block,
    BlockScope, DeliveryState, Detection, DetectionKind, Document, ErasureReason, ErasureRecord, KeyPurpose,
    KeyRotation, LinkPurpose, LinkRecord, MailKind, Matter, MatterMember, Message, NewAlert, Notice, Operator,
    OperatorGrant, OperatorRole, OutboxMail, PasskeyRecord, PendingTotp, PlatformApproval, Role, SealedColumn,
    SessionRecord, Severity, StoredField, Tenant, TenantKeyRecord, TenantStatus, TenantSummary, TotpRecord, User,
    UserStatus, VettingRecord, WebauthnChallenge,
};
use portcullis_core::policy::Scope;
use uuid::Uuid;

/// Parse a stored id into its newtype.
pub(crate) fn id<T>(s: &str, wrap: fn(Uuid) -> T) -> Result<T> {
    Uuid::parse_str(s).map(wrap).map_err(|_| Error::internal(format!("stored id {s:?} is not a UUID")))
}

fn version(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::internal(format!("stored key version {v} is out of range")))
}

fn count(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::internal(format!("stored count {n} is negative")))
}

fn opt_id<T>(s: Option<String>, wrap: fn(Uuid) -> T) -> Result<Option<T>> {
    s.map(|s| id(&s, wrap)).transpose()
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: String,
    name: String,
    display_name: String,
    created_at: i64,
    two_factor_staff: i64,
    two_factor_clients: i64,
    status: String,
    ended_at: Option<i64>,
}

impl TenantRow {
    pub(crate) fn into_model(self) -> Result<Tenant> {
        Ok(Tenant {
            id: id(&self.id, portcullis_core::ids::TenantId::from_uuid)?,
            name: self.name,
            display_name: self.display_name,
            created_at: from_millis(self.created_at),
            two_factor_staff: self.two_factor_staff != 0,
            two_factor_clients: self.two_factor_clients != 0,
            status: TenantStatus::parse(&self.status)?,
            ended_at: self.ended_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantKeyRow {
    tenant_id: String,
    purpose: String,
    version: i64,
    key_id: String,
    wrapped: String,
    created_at: i64,
}

impl TenantKeyRow {
    pub(crate) fn into_model(self) -> Result<TenantKeyRecord> {
        Ok(TenantKeyRecord {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            purpose: KeyPurpose::parse(&self.purpose)?,
            version: version(self.version)?,
            key_id: self.key_id,
            wrapped: hex::decode(&self.wrapped).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    display_name: String,
    role: String,
    status: String,
    created_at: i64,
    pub(crate) password_hash: Option<String>,
}

impl UserRow {
    pub(crate) fn into_model(self) -> Result<User> {
        Ok(User {
            id: id(&self.id, portcullis_core::ids::UserId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            email: self.email,
            display_name: self.display_name,
            role: Role::parse(&self.role).map_err(Error::internal)?,
            status: UserStatus::parse(&self.status)?,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    token_hash: String,
    tenant_id: String,
    user_id: String,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    second_factor_at: Option<i64>,
    enrol_required: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl SessionRow {
    pub(crate) fn into_model(self) -> Result<SessionRecord> {
        Ok(SessionRecord {
            token_hash: self.token_hash,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            csrf_token: self.csrf_token,
            created_at: from_millis(self.created_at),
            last_seen_at: from_millis(self.last_seen_at),
            second_factor_at: self.second_factor_at.map(from_millis),
            enrol_required: self.enrol_required != 0,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LinkRow {
    token_hash: String,
    purpose: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl LinkRow {
    pub(crate) fn into_model(self) -> Result<LinkRecord> {
        Ok(LinkRecord {
            token_hash: self.token_hash,
            purpose: LinkPurpose::parse(&self.purpose)?,
            tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: opt_id(self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            created_at: from_millis(self.created_at),
            expires_at: from_millis(self.expires_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    tenant_id: String,
    user_id: String,
    name: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn into_model(self) -> Result<ApiToken> {
        let scopes = self
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| Scope::parse(s).map_err(Error::internal))
            .collect::<Result<std::collections::BTreeSet<_>>>()?
            .into_iter()
            .collect();
        Ok(ApiToken {
            id: id(&self.id, portcullis_core::ids::TokenId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            name: self.name,
            scopes,
            created_at: from_millis(self.created_at),
            expires_at: self.expires_at.map(from_millis),
            revoked_at: self.revoked_at.map(from_millis),
            last_used_at: self.last_used_at.map(from_millis),
        })
    }
}

/// Scopes are stored as one space-separated text.
pub(crate) fn scopes_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

#[derive(sqlx::FromRow)]
pub(crate) struct MatterRow {
    id: String,
    tenant_id: String,
    reference: String,
    title: String,
    created_by: String,
    created_at: i64,
    restricted: i64,
}

impl MatterRow {
    pub(crate) fn into_model(self) -> Result<Matter> {
        Ok(Matter {
            id: id(&self.id, portcullis_core::ids::MatterId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            reference: self.reference,
            title: self.title,
            created_by: id(&self.created_by, portcullis_core::ids::UserId::from_uuid)?,
            created_at: from_millis(self.created_at),
            restricted: self.restricted != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
    added_at: i64,
}

impl MemberRow {
    pub(crate) fn into_model(self) -> Result<MatterMember> {
        Ok(MatterMember {
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            email: self.email,
            display_name: self.display_name,
            role: Role::parse(&self.role).map_err(Error::internal)?,
            added_at: from_millis(self.added_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DocumentRow {
    id: String,
    tenant_id: String,
    matter_id: String,
    name: String,
    size: i64,
    content_type: String,
    sha256: String,
    uploaded_by: String,
    created_at: i64,
    key_version: i64,
    blob_rev: String,
}

impl DocumentRow {
    pub(crate) fn into_model(self) -> Result<Document> {
        Ok(Document {
            id: id(&self.id, portcullis_core::ids::DocumentId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            matter_id: id(&self.matter_id, portcullis_core::ids::MatterId::from_uuid)?,
            name: self.name,
            size: u64::try_from(self.size).map_err(Error::internal)?,
            content_type: self.content_type,
            sha256: self.sha256,
            uploaded_by: id(&self.uploaded_by, portcullis_core::ids::UserId::from_uuid)?,
            created_at: from_millis(self.created_at),
            key_version: version(self.key_version)?,
            blob_rev: self.blob_rev,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: String,
    tenant_id: String,
    matter_id: String,
    author_id: String,
    author_name: String,
    body: String,
    created_at: i64,
}

impl MessageRow {
    pub(crate) fn into_model(self) -> Result<Message> {
        Ok(Message {
            id: id(&self.id, portcullis_core::ids::MessageId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            matter_id: id(&self.matter_id, portcullis_core::ids::MatterId::from_uuid)?,
            author_id: id(&self.author_id, portcullis_core::ids::UserId::from_uuid)?,
            author_name: self.author_name,
            body: self.body,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    chain: String,
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    ip: Option<String>,
    request_id: Option<String>,
    detail: String,
    matter_id: Option<String>,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    pub(crate) fn into_model(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            chain: self.chain,
            seq: self.seq,
            at: from_millis(self.at),
            actor: self.actor,
            action: self.action,
            target: self.target,
            ip: self.ip,
            request_id: self.request_id,
            detail: self.detail,
            matter: self.matter_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Convert a list of rows.
pub(crate) fn all<R, T>(rows: Vec<R>, f: fn(R) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(f).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRotationRow {
    tenant_id: String,
    target_version: i64,
    started_at: i64,
    finished_at: Option<i64>,
    heartbeat_at: Option<i64>,
    documents_done: i64,
    fields_done: i64,
}

impl KeyRotationRow {
    pub(crate) fn into_model(self) -> Result<KeyRotation> {
        Ok(KeyRotation {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            target_version: version(self.target_version)?,
            started_at: from_millis(self.started_at),
            finished_at: self.finished_at.map(from_millis),
            heartbeat_at: self.heartbeat_at.map(from_millis),
            documents_done: count(self.documents_done)?,
            fields_done: count(self.fields_done)?,
        })
    }
}

/// A sealed value as `stale_fields` selects it: the row id, up to two ids its place is bound
/// to (NULL where the column has fewer), and the value.
#[derive(sqlx::FromRow)]
pub(crate) struct FieldRow {
    id: String,
    bind1: Option<String>,
    bind2: Option<String>,
    value: String,
}

impl FieldRow {
    pub(crate) fn into_field(self, column: SealedColumn) -> Result<StoredField> {
        let binds = [self.bind1, self.bind2].into_iter().flatten().map(|b| id(&b, |u| u)).collect::<Result<_>>()?;
        Ok(StoredField { column, row: id(&self.id, |u| u)?, binds, value: self.value })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TotpRow {
    id: String,
    tenant_id: String,
    secret: String,
    enrolled_at: i64,
    last_step: i64,
}

impl TotpRow {
    pub(crate) fn into_model(self) -> Result<TotpRecord> {
        Ok(TotpRecord {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.id, portcullis_core::ids::UserId::from_uuid)?,
            secret: secrecy::SecretString::from(self.secret),
            enrolled_at: from_millis(self.enrolled_at),
            last_step: count(self.last_step)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PlatformApprovalRow {
    id: String,
    action: String,
    requested_by: String,
    requested_at: i64,
    expires_at: i64,
    state: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    used_at: Option<i64>,
}

impl PlatformApprovalRow {
    pub(crate) fn into_model(self) -> Result<PlatformApproval> {
        let operator = |s: &str| id(s, portcullis_core::ids::OperatorId::from_uuid);
        Ok(PlatformApproval {
            id: id(&self.id, portcullis_core::ids::ApprovalId::from_uuid)?,
            action: portcullis_core::model::PlatformAction::parse(&self.action).map_err(Error::internal)?,
            requested_by: operator(&self.requested_by)?,
            requested_at: from_millis(self.requested_at),
            expires_at: from_millis(self.expires_at),
            state: ApprovalState::parse(&self.state)?,
            decided_by: self.decided_by.as_deref().map(operator).transpose()?,
            decided_at: self.decided_at.map(from_millis),
            used_at: self.used_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PasskeyRow {
    id: String,
    tenant_id: String,
    user_id: String,
    name: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl PasskeyRow {
    pub(crate) fn into_model(self) -> Result<PasskeyRecord> {
        Ok(PasskeyRecord {
            id: id(&self.id, portcullis_core::ids::PasskeyId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            name: self.name,
            credential: serde_json::from_str(&self.credential).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
            last_used_at: self.last_used_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChallengeRow {
    id: String,
    tenant_id: String,
    user_id: String,
    purpose: String,
    state: String,
    expires_at: i64,
}

impl ChallengeRow {
    pub(crate) fn into_model(self) -> Result<WebauthnChallenge> {
        Ok(WebauthnChallenge {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            purpose: portcullis_core::model::ChallengePurpose::parse(&self.purpose)
                .ok_or_else(|| Error::internal(format!("unknown challenge purpose {:?}", self.purpose)))?,
            id: self.id,
            state: self.state,
            expires_at: from_millis(self.expires_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PendingTotpRow {
    id: String,
    tenant_id: String,
    secret: String,
    created_at: i64,
}

impl PendingTotpRow {
    pub(crate) fn into_model(self) -> Result<PendingTotp> {
        Ok(PendingTotp {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.id, portcullis_core::ids::UserId::from_uuid)?,
            secret: secrecy::SecretString::from(self.secret),
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    id: String,
    tenant_id: String,
    action: String,
    requested_by: String,
    requested_at: i64,
    expires_at: i64,
    state: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
}

impl ApprovalRow {
    pub(crate) fn into_model(self) -> Result<ApprovalRequest> {
        Ok(ApprovalRequest {
            id: id(&self.id, portcullis_core::ids::ApprovalId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            action: serde_json::from_str(&self.action).map_err(Error::internal)?,
            requested_by: id(&self.requested_by, portcullis_core::ids::UserId::from_uuid)?,
            requested_at: from_millis(self.requested_at),
            expires_at: from_millis(self.expires_at),
            state: ApprovalState::parse(&self.state)?,
            decided_by: opt_id(self.decided_by, portcullis_core::ids::UserId::from_uuid)?,
            decided_at: self.decided_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OperatorRow {
    id: String,
    email: String,
    display_name: String,
    created_at: i64,
}

impl OperatorRow {
    pub(crate) fn into_model(self) -> Result<Operator> {
        Ok(Operator {
            id: id(&self.id, portcullis_core::ids::OperatorId::from_uuid)?,
            email: self.email,
            display_name: self.display_name,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    operator_id: String,
    role: String,
    granted_at: i64,
    suspended_at: Option<i64>,
}

impl GrantRow {
    pub(crate) fn into_model(self) -> Result<OperatorGrant> {
        Ok(OperatorGrant {
            operator_id: id(&self.operator_id, portcullis_core::ids::OperatorId::from_uuid)?,
            role: OperatorRole::parse(&self.role).map_err(Error::internal)?,
            granted_at: from_millis(self.granted_at),
            suspended_at: self.suspended_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct VettingRow {
    operator_id: String,
    checked_by: String,
    checked_at: i64,
    valid_until: i64,
    recorded_at: i64,
}

impl VettingRow {
    pub(crate) fn into_model(self) -> Result<VettingRecord> {
        Ok(VettingRecord {
            operator_id: id(&self.operator_id, portcullis_core::ids::OperatorId::from_uuid)?,
            checked_by: self.checked_by,
            checked_at: from_millis(self.checked_at),
            valid_until: from_millis(self.valid_until),
            recorded_at: from_millis(self.recorded_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantSummaryRow {
    #[sqlx(flatten)]
    tenant: TenantRow,
    users: i64,
    documents: i64,
    stored_bytes: i64,
}

impl TenantSummaryRow {
    pub(crate) fn into_model(self) -> Result<TenantSummary> {
        Ok(TenantSummary {
            tenant: self.tenant.into_model()?,
            users: count(self.users)?,
            documents: count(self.documents)?,
            stored_bytes: count(self.stored_bytes)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MailRow {
    id: String,
    tenant_id: String,
    user_id: String,
    kind: String,
    detail: String,
    #[sqlx(flatten)]
    delivery: DeliveryStateRow,
}

/// The delivery columns every outbox table has.
#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryStateRow {
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
    last_error: Option<String>,
}

impl DeliveryStateRow {
    fn into_model(self) -> Result<DeliveryState> {
        Ok(DeliveryState {
            created_at: from_millis(self.created_at),
            attempts: u32::try_from(self.attempts).map_err(Error::internal)?,
            next_attempt_at: from_millis(self.next_attempt_at),
            sent_at: self.sent_at.map(from_millis),
            failed_at: self.failed_at.map(from_millis),
            last_error: self.last_error,
        })
    }
}

impl MailRow {
    pub(crate) fn into_model(self) -> Result<OutboxMail> {
        Ok(OutboxMail {
            id: id(&self.id, portcullis_core::ids::MailId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            kind: MailKind::parse(&self.kind)?,
            detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            delivery: self.delivery.into_model()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: String,
    kind: String,
    severity: String,
    tenant_id: Option<String>,
    subject: String,
    summary: String,
    detail: String,
    dedup_key: String,
    occurrences: i64,
    first_at: i64,
    last_at: i64,
    window_end: i64,
    dispatched_at: Option<i64>,
    follow_up_dispatched_at: Option<i64>,
}

impl AlertRow {
    pub(crate) fn into_model(self) -> Result<Alert> {
        Ok(Alert {
            id: id(&self.id, portcullis_core::ids::AlertId::from_uuid)?,
            facts: NewAlert {
                kind: AlertKind::parse(&self.kind)?,
                severity: Severity::parse(&self.severity)?,
                tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
                subject: self.subject,
                summary: self.summary,
                detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            },
            dedup_key: self.dedup_key,
            occurrences: u32::try_from(self.occurrences).map_err(Error::internal)?,
            first_at: from_millis(self.first_at),
            last_at: from_millis(self.last_at),
            window_end: from_millis(self.window_end),
            dispatched_at: self.dispatched_at.map(from_millis),
            follow_up_dispatched_at: self.follow_up_dispatched_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: String,
    alert_id: String,
    channel: String,
    recipient: Option<String>,
    notice: String,
    #[sqlx(flatten)]
    delivery: DeliveryStateRow,
}

impl DeliveryRow {
    pub(crate) fn into_model(self) -> Result<AlertDelivery> {
        Ok(AlertDelivery {
            id: id(&self.id, portcullis_core::ids::DeliveryId::from_uuid)?,
            alert_id: id(&self.alert_id, portcullis_core::ids::AlertId::from_uuid)?,
            channel: AlertChannel::parse(&self.channel)?,
            recipient: self.recipient,
            notice: Notice::parse(&self.notice)?,
            delivery: self.delivery.into_model()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FlagRow {
    tenant_id: String,
    document_id: String,
    matter_id: String,
    state: String,
    findings: String,
    created_at: i64,
}

impl FlagRow {
    pub(crate) fn into_model(self) -> Result<portcullis_core::model::DocumentFlag> {
        Ok(portcullis_core::model::DocumentFlag {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            document_id: id(&self.document_id, portcullis_core::ids::DocumentId::from_uuid)?,
            matter_id: id(&self.matter_id, portcullis_core::ids::MatterId::from_uuid)?,
            state: portcullis_core::model::FlagState::parse(&self.state)?,
            findings: self.findings,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BlockRow {
    id: String,
    scope: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    ip: Option<String>,
    reason: String,
    detail: String,
    created_at: i64,
    expires_at: Option<i64>,
    lifted_at: Option<i64>,
    lifted_by: Option<String>,
}

impl BlockRow {
    pub(crate) fn into_model(self) -> Result<Block> {
        Ok(Block {
            id: id(&self.id, portcullis_core::ids::BlockId::from_uuid)?,
            scope: BlockScope::parse(&self.scope)?,
            tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: opt_id(self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            ip: self.ip,
            reason: DetectionKind::parse(&self.reason)?,
            detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
            expires_at: self.expires_at.map(from_millis),
            lifted_at: self.lifted_at.map(from_millis),
            lifted_by: self.lifted_by,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DetectionRow {
    id: String,
    kind: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    ip: Option<String>,
    detail: String,
    created_at: i64,
}

impl DetectionRow {
    pub(crate) fn into_model(self) -> Result<Detection> {
        Ok(Detection {
            id: id(&self.id, portcullis_core::ids::DetectionId::from_uuid)?,
            kind: DetectionKind::parse(&self.kind)?,
            tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: opt_id(self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            ip: self.ip,
            detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BaselineRow {
    tenant_id: String,
    user_id: String,
    day: i64,
    day_count: i64,
    day_bytes: i64,
    avg_count: i64,
    avg_bytes: i64,
    days: i64,
    hours: String,
}

impl BaselineRow {
    pub(crate) fn into_model(self) -> Result<Baseline> {
        let hours: Vec<u32> = serde_json::from_str(&self.hours).map_err(Error::internal)?;
        Ok(Baseline {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            day: self.day,
            day_count: count(self.day_count)?,
            day_bytes: count(self.day_bytes)?,
            avg_count_milli: count(self.avg_count)?,
            avg_bytes_milli: count(self.avg_bytes)?,
            days: u32::try_from(self.days).map_err(Error::internal)?,
            hours: hours.try_into().map_err(|_| Error::internal("stored hours are not 24 counts"))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ErasureRow {
    tenant_id: String,
    tenant_name: String,
    reason: String,
    requested_by: String,
    approved_by: Option<String>,
    requested_at: i64,
    approved_at: Option<i64>,
    keys_destroyed_at: Option<i64>,
    audit_seq: Option<i64>,
    audit_head: Option<String>,
    finished_at: Option<i64>,
    counts: String,
    certificate: Option<String>,
    notify_to: String,
    notified_at: Option<i64>,
    synced_to_backups_at: Option<i64>,
}

impl ErasureRow {
    pub(crate) fn into_model(self) -> Result<ErasureRecord> {
        Ok(ErasureRecord {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            tenant_name: self.tenant_name,
            reason: ErasureReason::parse(&self.reason)?,
            requested_by: self.requested_by,
            approved_by: self.approved_by,
            requested_at: from_millis(self.requested_at),
            approved_at: self.approved_at.map(from_millis),
            keys_destroyed_at: self.keys_destroyed_at.map(from_millis),
            audit_seq: self.audit_seq,
            audit_head: self.audit_head,
            finished_at: self.finished_at.map(from_millis),
            counts: serde_json::from_str(&self.counts).map_err(Error::internal)?,
            certificate: self.certificate,
            notify_to: serde_json::from_str(&self.notify_to).map_err(Error::internal)?,
            notified_at: self.notified_at.map(from_millis),
            synced_to_backups_at: self.synced_to_backups_at.map(from_millis),
        })
    }
}

/// A row of `incidents`, in the order of `incident_columns!`.
#[derive(sqlx::FromRow)]
pub(crate) struct IncidentRow {
    id: String,
    reference: String,
    kind: String,
    severity: String,
    state: String,
    reported_at: i64,
    triage_due: i64,
    triage_alerted_at: Option<i64>,
    assignee: Option<String>,
    version: i64,
    key_id: String,
    wrapped_key: String,
    body: String,
}

impl IncidentRow {
    pub(crate) fn into_model(self) -> Result<portcullis_core::incidents::IncidentRecord> {
        use portcullis_core::incidents::{IncidentKind, IncidentRecord, IncidentSeverity, IncidentState};
        Ok(IncidentRecord {
            id: id(&self.id, portcullis_core::ids::IncidentId::from_uuid)?,
            reference: self.reference,
            kind: IncidentKind::parse(&self.kind)?,
            severity: IncidentSeverity::parse(&self.severity)?,
            state: IncidentState::parse(&self.state)?,
            reported_at: from_millis(self.reported_at),
            triage_due: from_millis(self.triage_due),
            triage_alerted_at: self.triage_alerted_at.map(from_millis),
            assignee: self
                .assignee
                .as_deref()
                .map(|a| id(a, portcullis_core::ids::OperatorId::from_uuid))
                .transpose()?,
            version: self.version,
            key_id: self.key_id,
            wrapped_key: hex::decode(&self.wrapped_key)
                .map_err(|_| Error::internal("a stored incident key is not hexadecimal"))?,
            body: self.body,
        })
    }
}
