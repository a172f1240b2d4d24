//! The domain's records. Plain data: what may be done with them is decided in `policy`, how they
//! are stored in the store crate.

use crate::ids::{
    AlertId, ApprovalId, DeliveryId, DocumentId, MailId, MatterId, MessageId, OperatorId, PasskeyId, TenantId, TokenId,
    UserId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A subscriber: one firm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    /// Short unique name used at sign-in (lowercase letters, digits, dashes).
    pub name: String,
    pub display_name: String,
    pub created_at: OffsetDateTime,
    /// Staff (owner, admin, staff) must use a second factor.
    pub two_factor_staff: bool,
    /// Clients must use a second factor.
    pub two_factor_clients: bool,
    /// Where its subscription stands (see `service::lifecycle`).
    pub status: TenantStatus,
    /// When the subscription last ended; the retention period runs from here.
    pub ended_at: Option<OffsetDateTime>,
}

/// A user's active TOTP factor. The secret is sealed in the database like client information.
#[derive(Clone, Debug)]
pub struct TotpRecord {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// Base32, as authenticator apps take it.
    pub secret: secrecy::SecretString,
    pub enrolled_at: OffsetDateTime,
    /// The newest time step a code was accepted for: that step and older ones are refused.
    pub last_step: u64,
}

/// A registered passkey or security key: its public key and signature counter (in
/// `credential`), and the name its owner gave it. Nothing here is secret.
#[derive(Clone, Debug)]
pub struct PasskeyRecord {
    pub id: PasskeyId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub credential: crate::authn::webauthn::StoredPasskey,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a WebAuthn ceremony is for; a challenge answers only the purpose it was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengePurpose {
    Register,
    SignIn,
    StepUp,
}

impl ChallengePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::Register => "register",
            ChallengePurpose::SignIn => "sign_in",
            ChallengePurpose::StepUp => "step_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ChallengePurpose::Register, ChallengePurpose::SignIn, ChallengePurpose::StepUp]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A WebAuthn ceremony waiting for the browser's answer: used once, then deleted.
#[derive(Clone, Debug)]
pub struct WebauthnChallenge {
    /// Random, given to the client with the options.
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub purpose: ChallengePurpose,
    /// The ceremony state (JSON), which holds the challenge the answer must sign.
    pub state: String,
    pub expires_at: OffsetDateTime,
}

/// A TOTP enrolment waiting for its first code.
#[derive(Clone, Debug)]
pub struct PendingTotp {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub secret: secrecy::SecretString,
    pub created_at: OffsetDateTime,
}

/// A user's role within their tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Staff,
    Client,
    /// Reads the audit log; sees no client content.
    Auditor,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::Staff, Role::Client, Role::Auditor];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Client => "client",
            Role::Auditor => "auditor",
        }
    }

    /// Parse a stored or wire name.
    pub fn parse(s: &str) -> crate::Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("role", "must be one of owner, admin, staff, client, auditor"))
    }

    /// The firm's own people (everyone but clients): the staff two-factor requirement covers them.
    pub fn is_staff_side(self) -> bool {
        !matches!(self, Role::Client)
    }

    /// Roles that work matters: they see every unrestricted matter and can be put on any
    /// matter's list. Clients see only matters they are on; auditors see none.
    pub fn works_matters(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Staff)
    }
}

/// Whether a user can sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Created, waiting for the user to choose a password through their one-time link.
    Invited,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "invited" => Ok(UserStatus::Invited),
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            other => Err(crate::Error::internal(format!("unknown user status {other:?}"))),
        }
    }
}

/// A staff or client user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    /// Normalised (trimmed, lowercase).
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: OffsetDateTime,
}

/// A client case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matter {
    pub id: MatterId,
    pub tenant_id: TenantId,
    pub reference: String,
    pub title: String,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    /// An ethical wall: only the users on the matter's list see it, whatever their role.
    pub restricted: bool,
}

/// A user on a matter's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatterMember {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub added_at: OffsetDateTime,
}

/// A stored document's metadata. The bytes live in the blob store under `blob_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub id: DocumentId,
    pub tenant_id: TenantId,
    pub matter_id: MatterId,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-256 of the plaintext, for integrity checks and later deduplication.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub created_at: OffsetDateTime,
    /// The tenant key version its bytes are encrypted under (also in the stored header).
    pub key_version: u32,
    /// Which stored copy holds the bytes: empty for the copy written at upload, a fresh random
    /// revision for each copy a key rotation writes, so a new copy never overwrites the one in use.
    pub blob_rev: String,
}

impl Document {
    /// Where the bytes live; derived from tenant and document ids so it can never point across
    /// tenants.
    pub fn blob_key(&self) -> String {
        blob_key(self.tenant_id, self.id, &self.blob_rev)
    }
}

/// The blob-store key of a document's stored copy `rev`.
pub fn blob_key(tenant: TenantId, doc: DocumentId, rev: &str) -> String {
    if rev.is_empty() {
        format!("tenants/{tenant}/documents/{doc}")
    } else {
        format!("tenants/{tenant}/documents/{doc}.{rev}")
    }
}

/// A column holding client information sealed by `crypto::fields`. Each knows the "place" its
/// values are bound to (column, row and the ids the row hangs from), which both sealing and
/// re-encryption build from here so they always agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedColumn {
    UserEmail,
    UserDisplayName,
    MatterReference,
    MatterTitle,
    /// Bound to its matter as well.
    DocumentName,
    /// Bound to its matter and author as well.
    MessageBody,
    /// A user's TOTP secret (keyed by the user's id).
    TotpSecret,
    /// The secret of an enrolment waiting for its first code.
    TotpPending,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 8] = [
        SealedColumn::UserEmail,
        SealedColumn::UserDisplayName,
        SealedColumn::MatterReference,
        SealedColumn::MatterTitle,
        SealedColumn::DocumentName,
        SealedColumn::MessageBody,
        SealedColumn::TotpSecret,
        SealedColumn::TotpPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SealedColumn::UserEmail => "users.email",
            SealedColumn::UserDisplayName => "users.display_name",
            SealedColumn::MatterReference => "matters.reference",
            SealedColumn::MatterTitle => "matters.title",
            SealedColumn::DocumentName => "documents.name",
            SealedColumn::MessageBody => "messages.body",
            SealedColumn::TotpSecret => "user_totp.secret",
            SealedColumn::TotpPending => "totp_enrolments.secret",
        }
    }

    /// The place a value of this column in row `row` is sealed for; `binds` are the further ids
    /// the column is bound to (see the variants), in that order.
    pub fn place(self, row: uuid::Uuid, binds: &[uuid::Uuid]) -> String {
        let mut p = format!("{}:{row}", self.as_str());
        for b in binds {
            p.push(':');
            p.push_str(&b.to_string());
        }
        p
    }
}

/// One sealed value as stored, with what its place is built from; read and replaced by
/// re-encryption only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredField {
    pub column: SealedColumn,
    pub row: uuid::Uuid,
    pub binds: Vec<uuid::Uuid>,
    pub value: String,
}

impl StoredField {
    pub fn place(&self) -> String {
        self.column.place(self.row, &self.binds)
    }
}

/// A tenant-key rotation: a new data key version, and the re-encryption of everything under
/// older versions. Open until nothing older is left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRotation {
    pub tenant_id: TenantId,
    pub target_version: u32,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    /// Last sign of life from a worker, so servers leave a rotation alone while another
    /// process is working on it.
    pub heartbeat_at: Option<OffsetDateTime>,
    pub documents_done: u64,
    pub fields_done: u64,
}

/// A message on a matter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub matter_id: MatterId,
    pub author_id: UserId,
    pub author_name: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

/// A server-side session. The cookie holds a random secret; only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The synchronizer token forms and API calls must echo.
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// When this session last checked a second factor.
    pub second_factor_at: Option<OffsetDateTime>,
    /// The firm required a second factor at sign-in and the user had none.
    pub enrol_required: bool,
    /// Where it was opened from.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionRecord {
    /// The public name of a session: the start of its cookie's hash (which itself reveals
    /// nothing of the cookie), enough to tell a user's sessions apart.
    pub fn public_id(&self) -> &str {
        self.token_hash.get(..16).unwrap_or(&self.token_hash)
    }
}

/// An API bearer token's stored record (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub scopes: Vec<crate::policy::Scope>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a tenant key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Encrypts documents and database fields; rotated by version.
    Data,
    /// Computes blind indexes for equality lookups.
    Index,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Data => "data",
            KeyPurpose::Index => "index",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "data" => Ok(KeyPurpose::Data),
            "index" => Ok(KeyPurpose::Index),
            other => Err(crate::Error::internal(format!("unknown key purpose {other:?}"))),
        }
    }
}

/// A tenant key as stored: wrapped by the master key named by `key_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantKeyRecord {
    pub tenant_id: TenantId,
    pub purpose: KeyPurpose,
    pub version: u32,
    pub key_id: String,
    pub wrapped: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// What a one-time link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Create the first tenant and its owner on a fresh installation.
    Bootstrap,
    /// Let an invited user (or a new owner) choose a password.
    SetPassword,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Bootstrap => "bootstrap",
            LinkPurpose::SetPassword => "set_password",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "bootstrap" => Ok(LinkPurpose::Bootstrap),
            "set_password" => Ok(LinkPurpose::SetPassword),
            other => Err(crate::Error::internal(format!("unknown link purpose {other:?}"))),
        }
    }
}

/// A one-time link's stored record; only the hash of its secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRecord {
    pub token_hash: String,
    pub purpose: LinkPurpose,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored values are bound to these exact strings: changing one makes existing data unreadable.
    #[test]
    fn sealed_places_keep_their_stored_form() {
        let (a, b, c) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert_eq!(SealedColumn::UserEmail.place(a, &[]), format!("users.email:{a}"));
        assert_eq!(SealedColumn::UserDisplayName.place(a, &[]), format!("users.display_name:{a}"));
        assert_eq!(SealedColumn::MatterReference.place(a, &[]), format!("matters.reference:{a}"));
        assert_eq!(SealedColumn::MatterTitle.place(a, &[]), format!("matters.title:{a}"));
        assert_eq!(SealedColumn::DocumentName.place(a, &[b]), format!("documents.name:{a}:{b}"));
        assert_eq!(SealedColumn::MessageBody.place(a, &[b, c]), format!("messages.body:{a}:{b}:{c}"));
        let f = StoredField { column: SealedColumn::MessageBody, row: a, binds: vec![b, c], value: String::new() };
        assert_eq!(f.place(), SealedColumn::MessageBody.place(a, &[b, c]));
    }

    #[test]
    fn blob_keys_name_each_copy() {
        let (t, d) = (TenantId::new(), DocumentId::new());
        assert_eq!(blob_key(t, d, ""), format!("tenants/{t}/documents/{d}"));
        assert_eq!(blob_key(t, d, "abc"), format!("tenants/{t}/documents/{d}.abc"));
    }
}

/// A sensitive action that takes effect only once a second, different admin approves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SensitiveAction {
    /// Give a user a role that widens their reach (see `policy::rises_in_reach`).
    GrantRole { user_id: UserId, role: Role },
    /// Let a deactivated user sign in again.
    ReactivateUser { user_id: UserId },
    /// Lower the firm's two-factor requirement to these settings.
    TwoFactorPolicy { staff: bool, clients: bool },
    /// Destroy the firm and all its data (customer-directed erasure; see `service::erasure`).
    EraseTenant,
    /// Export all of the firm's data in an archive encrypted to this age recipient (`age1...`,
    /// supplied by the owner; see `service::export`).
    ExportTenant { recipient: String },
}

impl SensitiveAction {
    /// The stable name used in audit events and the API.
    pub fn name(&self) -> &'static str {
        match self {
            SensitiveAction::GrantRole { .. } => "grant_role",
            SensitiveAction::ReactivateUser { .. } => "reactivate_user",
            SensitiveAction::TwoFactorPolicy { .. } => "two_factor_policy",
            SensitiveAction::EraseTenant => "erase_tenant",
            SensitiveAction::ExportTenant { .. } => "export_tenant",
        }
    }
}

/// Where a tenant export stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportState {
    /// Approved; the export job has not finished writing it (it starts over after a restart).
    Pending,
    /// The archive is stored and may be downloaded until `expires_at`.
    Done,
    /// Writing failed; `error` says why. A new request is needed.
    Failed,
    /// Past `expires_at`: the archive was deleted.
    Expired,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Pending => "pending",
            ExportState::Done => "done",
            ExportState::Failed => "failed",
            ExportState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(ExportState::Pending),
            "done" => Ok(ExportState::Done),
            "failed" => Ok(ExportState::Failed),
            "expired" => Ok(ExportState::Expired),
            other => Err(crate::Error::internal(format!("unknown export state {other:?}"))),
        }
    }
}

/// An export of a whole firm's data, identified by the approval that allowed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantExport {
    pub id: ApprovalId,
    pub tenant_id: TenantId,
    /// The age recipient the archive is encrypted to.
    pub recipient: String,
    pub requested_by: UserId,
    pub approved_by: UserId,
    pub state: ExportState,
    pub entries_done: u64,
    pub entries_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The stored archive's size and SHA-256 (hex) once done.
    pub archive_size: Option<u64>,
    pub archive_sha256: Option<String>,
    /// The SHA-256 of the archive's manifest entry, which an import names.
    pub manifest_sha256: Option<String>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
}

impl TenantExport {
    /// Where the archive is kept in the blob store.
    pub fn blob_key(&self) -> String {
        export_blob_key(self.tenant_id, self.id)
    }
}

/// The blob-store key of a tenant export's archive (under the tenant's prefix, so erasure
/// finds it).
pub fn export_blob_key(tenant: TenantId, id: ApprovalId) -> String {
    format!("tenants/{tenant}/exports/{id}.age")
}

/// Where an approval request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    /// Approved by a second admin, and carried out in the same transaction.
    Approved,
    Rejected,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(ApprovalState::Pending),
            "approved" => Ok(ApprovalState::Approved),
            "rejected" => Ok(ApprovalState::Rejected),
            other => Err(crate::Error::internal(format!("unknown approval state {other:?}"))),
        }
    }
}

/// A request for a sensitive action (four eyes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: ApprovalId,
    pub tenant_id: TenantId,
    pub action: SensitiveAction,
    pub requested_by: UserId,
    pub requested_at: OffsetDateTime,
    /// A pending request past this time can no longer be approved.
    pub expires_at: OffsetDateTime,
    pub state: ApprovalState,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<OffsetDateTime>,
}

/// A sensitive action on the whole platform, carried out only after two privileged operators
/// agreed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformAction {
    /// Rotate the master key (`portcullis keys rotate-master --approval ID`).
    RotateMasterKey,
    /// End a firm's subscription. It locks every one of the firm's people out, so one operator
    /// may only ask (`POST /api/v1/platform/tenants/{name}/end`); the second operator's approval
    /// ends it, in the approval's own transaction.
    EndSubscription(TenantId),
}

impl PlatformAction {
    /// The action's name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformAction::RotateMasterKey => "rotate_master_key",
            PlatformAction::EndSubscription(_) => "end_subscription",
        }
    }

    /// The firm the action is done to, if it is done to one.
    pub fn tenant(self) -> Option<TenantId> {
        match self {
            PlatformAction::RotateMasterKey => None,
            PlatformAction::EndSubscription(t) => Some(t),
        }
    }

    /// The stored form: the name, then `:` and the firm's id for an action done to a firm (so an
    /// approval names what it allows, and cannot be spent on another firm).
    pub fn to_stored(self) -> String {
        match self.tenant() {
            Some(t) => format!("{}:{t}", self.as_str()),
            None => self.as_str().to_string(),
        }
    }

    /// Read [`PlatformAction::to_stored`]'s form back.
    pub fn from_stored(s: &str) -> crate::Result<Self> {
        let bad = || crate::Error::internal(format!("unknown platform action {s:?}"));
        match s.split_once(':') {
            None if s == "rotate_master_key" => Ok(PlatformAction::RotateMasterKey),
            Some(("end_subscription", t)) => Ok(PlatformAction::EndSubscription(t.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }

    /// An action asked for by name on the approvals API. Only the actions done to no firm are
    /// asked for there; a firm's are asked for where they are done.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "rotate_master_key" => Ok(PlatformAction::RotateMasterKey),
            "end_subscription" => Err(crate::Error::invalid(
                "action",
                "a subscription's end is asked for with POST /api/v1/platform/tenants/{name}/end",
            )),
            _ => Err(crate::Error::invalid("action", "the platform actions needing approval are: rotate_master_key")),
        }
    }
}

/// A request for a sensitive platform action (four eyes among operators).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformApproval {
    pub id: ApprovalId,
    pub action: PlatformAction,
    pub requested_by: OperatorId,
    pub requested_at: OffsetDateTime,
    /// A pending request past this time can no longer be approved; an approved one can no
    /// longer be used.
    pub expires_at: OffsetDateTime,
    pub state: ApprovalState,
    pub decided_by: Option<OperatorId>,
    pub decided_at: Option<OffsetDateTime>,
    /// When the action it allowed was carried out (an approval allows it once).
    pub used_at: Option<OffsetDateTime>,
}

/// One of the service's own staff. Operators belong to no tenant and have no way to read tenant
/// content: no tenant principal is ever made for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub display_name: String,
    pub created_at: OffsetDateTime,
}

/// What an operator may do on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    /// Sees system health and the tenant directory (names and counts, never content).
    Support,
    /// Also manages subscriptions (creates tenants). Needs a current vetting record.
    Privileged,
}

impl OperatorRole {
    pub const ALL: [OperatorRole; 2] = [OperatorRole::Support, OperatorRole::Privileged];
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Support => "support",
            OperatorRole::Privileged => "privileged",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        OperatorRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("role", "must be support or privileged"))
    }
}

/// A role granted to an operator; a suspended grant gives nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorGrant {
    pub operator_id: OperatorId,
    pub role: OperatorRole,
    pub granted_at: OffsetDateTime,
    pub suspended_at: Option<OffsetDateTime>,
}

/// A background check of an operator (the policy's employee vetting): who checked, when, and
/// until when it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VettingRecord {
    pub operator_id: OperatorId,
    pub checked_by: String,
    pub checked_at: OffsetDateTime,
    pub valid_until: OffsetDateTime,
    pub recorded_at: OffsetDateTime,
}

/// One tenant as operators see it: a directory entry with counts, never content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSummary {
    pub tenant: Tenant,
    pub users: u64,
    pub documents: u64,
    pub stored_bytes: u64,
}

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

/// An enum stored as text: `as_str` is the stored form and `parse` reads it back (an unknown
/// value is an internal error: the database was written by us).
macro_rules! stored_enum {
    ($(#[$meta:meta])* pub enum $name:ident ($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> crate::Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| crate::Error::internal(format!(concat!("unknown ", $what, " {:?}"), s)))
            }
        }
    };
}
pub(crate) use stored_enum;

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

/// A row of the erasure ledger: one destroyed tenant (or one being destroyed), kept for good so
/// its id and name stay reserved and the erasure can be proved and re-applied to backups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRecord {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub reason: ErasureReason,
    /// Who asked: `user:<id>` or `system` (retention).
    pub requested_by: String,
    /// Who approved: `user:<id>` (customer erasure), `None` for retention.
    pub approved_by: Option<String>,
    pub requested_at: OffsetDateTime,
    pub approved_at: Option<OffsetDateTime>,
    /// When the tenant's keys were destroyed (crypto-shredding, the first step).
    pub keys_destroyed_at: Option<OffsetDateTime>,
    /// The tenant's audit chain as it ended: its last sequence number and head hash.
    pub audit_seq: Option<i64>,
    pub audit_head: Option<String>,
    pub finished_at: Option<OffsetDateTime>,
    /// What was destroyed, per kind (JSON object of counts).
    pub counts: serde_json::Value,
    /// The signed erasure certificate (JSON), once finished.
    pub certificate: Option<String>,
    /// The owners' addresses for the certificate mail, captured before destruction; emptied
    /// once it is sent.
    pub notify_to: Vec<String>,
    pub notified_at: Option<OffsetDateTime>,
    /// When the backup target applied the erasure; `None` until then.
    pub synced_to_backups_at: Option<OffsetDateTime>,
}

/// Work waiting in one of the durable queues, for monitoring and autoscaling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// `mail`, `alerts` or `exports`.
    pub queue: &'static str,
    /// Items not yet done (neither sent nor given up; for exports, not yet written).
    pub waiting: i64,
    /// When the oldest of them was queued.
    pub oldest_at: Option<OffsetDateTime>,
}
