//! The API's request and response bodies.

use portcullis_core::audit::search::SearchInput;
use portcullis_core::authn::webauthn;
use portcullis_core::model::{ApiToken, Document, Matter, MatterMember, Message, PasskeyRecord, User};
use portcullis_core::policy::Principal;
use portcullis_core::service::{AuditPage, FactorProof};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

pub fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A list answer.
#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub tenant: String,
    pub email: String,
    pub password: String,
    /// A current code from the authenticator app, or a recovery code: needed when the user has
    /// a second factor (without it the answer is 401 `second_factor_required`).
    pub totp: Option<String>,
    /// Instead of `totp`: the answer to the passkey challenge the 401 carried.
    pub passkey: Option<PasskeyAnswer>,
}

/// An answer to a passkey challenge (sign-in or step-up).
#[derive(Deserialize, ToSchema)]
pub struct PasskeyAnswer {
    pub challenge_id: String,
    /// What `navigator.credentials.get` gave, as `PublicKeyCredential.toJSON()` renders it.
    #[schema(value_type = Object)]
    pub credential: Box<webauthn::PublicKeyCredential>,
}

/// The second factor offered with a sign-in or a step-up, if any.
pub fn factor_proof(code: Option<String>, passkey: Option<PasskeyAnswer>) -> Option<FactorProof> {
    match (passkey, code) {
        (Some(a), _) => Some(FactorProof::Passkey { challenge_id: a.challenge_id, answer: a.credential }),
        (None, Some(c)) => Some(FactorProof::Code(c)),
        (None, None) => None,
    }
}

/// A code to confirm an enrolment.
#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// Six digits from the authenticator app.
    pub code: String,
}

/// A step-up: a code, or the answer to a challenge from `POST /api/v1/session/step-up/passkey`.
#[derive(Deserialize, ToSchema)]
pub struct StepUpRequest {
    /// Six digits from the authenticator app, or a recovery code.
    pub code: Option<String>,
    pub passkey: Option<PasskeyAnswer>,
}

/// Start registering a passkey or security key.
#[derive(Deserialize, ToSchema)]
pub struct PasskeyStart {
    /// What to call it, e.g. "work laptop" or "blue key".
    pub name: String,
}

/// A WebAuthn challenge: pass `options.publicKey` to
/// `PublicKeyCredential.parseCreationOptionsFromJSON` (registration) or
/// `parseRequestOptionsFromJSON` (sign-in, step-up), and send the answer with `challenge_id`.
#[derive(Serialize, ToSchema)]
pub struct PasskeyChallengeView {
    pub challenge_id: String,
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

impl From<webauthn::PasskeyChallenge> for PasskeyChallengeView {
    fn from(c: webauthn::PasskeyChallenge) -> Self {
        Self { challenge_id: c.challenge_id, options: c.options }
    }
}

/// Finish registering: the browser's answer to the registration challenge.
#[derive(Deserialize, ToSchema)]
pub struct PasskeyFinish {
    pub challenge_id: String,
    /// What `navigator.credentials.create` gave, as `PublicKeyCredential.toJSON()` renders it.
    #[schema(value_type = Object)]
    pub credential: Box<webauthn::RegisterPublicKeyCredential>,
}

/// A registered passkey or security key.
#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<&PasskeyRecord> for PasskeyView {
    fn from(k: &PasskeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            created_at: ts(k.created_at),
            last_used_at: k.last_used_at.map(ts),
        }
    }
}

/// A new authenticator-app enrolment: shown once.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolmentView {
    /// Base32 secret, for typing into the app.
    pub secret: String,
    pub otpauth_url: String,
    /// The same URL as a QR code (an SVG document).
    pub qr_svg: String,
}

/// The recovery codes made at enrolment: shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesView {
    pub recovery_codes: Vec<String>,
}

/// The caller's second-factor state.
#[derive(Serialize, ToSchema)]
pub struct SecurityView {
    pub totp_enabled: bool,
    /// How many passkeys or security keys are registered.
    pub passkeys: usize,
    pub enrolment_pending: bool,
    pub recovery_codes_left: u64,
    pub two_factor_required: bool,
    /// When this session last checked a second factor (RFC 3339), if ever.
    pub second_factor_verified_at: Option<String>,
}

/// A step-up's result.
#[derive(Serialize, ToSchema)]
pub struct StepUpView {
    /// `totp` or `recovery_code`.
    pub factor: String,
}

/// The firm's two-factor requirement.
#[derive(Deserialize, ToSchema)]
pub struct TwoFactorPolicy {
    /// Owners, admins and staff must use a second factor.
    pub staff: bool,
    /// Clients must use a second factor.
    pub clients: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub status: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            tenant_id: u.tenant_id.to_string(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role.as_str().into(),
            status: u.status.as_str().into(),
        }
    }
}

impl From<&Principal> for UserView {
    fn from(p: &Principal) -> Self {
        Self {
            id: p.user_id.to_string(),
            tenant_id: p.tenant_id.to_string(),
            email: p.email.clone(),
            display_name: p.display_name.clone(),
            role: p.role.as_str().into(),
            status: "active".into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    /// Echo this in `X-CSRF-Token` on state-changing calls made with the session cookie.
    pub csrf_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    pub name: String,
    /// `read`, `write`, `admin`: independent of each other, and limited by the role.
    pub scopes: Vec<String>,
    /// 1 to 365; default 90.
    pub expires_in_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            scopes: t.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            created_at: ts(t.created_at),
            expires_at: t.expires_at.map(ts),
            revoked_at: t.revoked_at.map(ts),
            last_used_at: t.last_used_at.map(ts),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    /// The secret. Shown once; only its hash is stored.
    pub token: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    /// `admin` (owners only), `staff`, `client` or `auditor`.
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    pub user: UserView,
    /// One-time link for the new user to choose a password. Shown once.
    pub invite_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatterCreate {
    pub reference: String,
    pub title: String,
    /// An ethical wall: only the users on the matter's list see it (default false).
    #[serde(default)]
    pub restricted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MatterView {
    pub id: String,
    pub reference: String,
    pub title: String,
    pub created_by: String,
    pub created_at: String,
    pub restricted: bool,
}

impl From<&Matter> for MatterView {
    fn from(m: &Matter) -> Self {
        Self {
            id: m.id.to_string(),
            reference: m.reference.clone(),
            title: m.title.clone(),
            created_by: m.created_by.to_string(),
            created_at: ts(m.created_at),
            restricted: m.restricted,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAdd {
    pub email: String,
    /// `client` invites a client user (created if new); `staff` adds an existing staff user.
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct MemberAdded {
    pub user_id: String,
    /// Whether a new client user was created.
    pub created: bool,
    /// One-time link for an invited user to choose a password. Shown once.
    pub invite_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub added_at: String,
}

impl From<&MatterMember> for MemberView {
    fn from(m: &MatterMember) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            email: m.email.clone(),
            display_name: m.display_name.clone(),
            role: m.role.as_str().into(),
            added_at: ts(m.added_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub matter_id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: String,
    /// The DLP flag: `warned`, `quarantined`, `client_blocked`, `unscanned` or `released`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlp: Option<&'static str>,
    /// What the DLP scan found, as counts per detector (staff only; never the values).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dlp_findings: Option<serde_json::Value>,
}

impl DocumentView {
    /// A listed document with its flag; the counts are shown to the firm's side only.
    pub fn flagged(f: &portcullis_core::service::FlaggedDocument, staff: bool) -> Self {
        let mut v = Self::from(&f.document);
        if let Some(flag) = &f.flag {
            v.dlp = Some(flag.state.as_str());
            if staff {
                v.dlp_findings = serde_json::from_str(&flag.findings).ok();
            }
        }
        v
    }
}

impl From<&Document> for DocumentView {
    fn from(d: &Document) -> Self {
        Self {
            id: d.id.to_string(),
            matter_id: d.matter_id.to_string(),
            name: d.name.clone(),
            size: d.size,
            content_type: d.content_type.clone(),
            sha256: d.sha256.clone(),
            uploaded_by: d.uploaded_by.to_string(),
            created_at: ts(d.created_at),
            dlp: None,
            dlp_findings: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageCreate {
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub author_id: String,
    pub author_name: String,
    pub body: String,
    pub created_at: String,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            author_id: m.author_id.to_string(),
            author_name: m.author_name.clone(),
            body: m.body.clone(),
            created_at: ts(m.created_at),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The document's file name. A name ending in an executable, script, web-page or
    /// macro-enabled extension (`.exe`, `.vbs`, `.js`, `.html`, `.docm`, …) is refused; a name
    /// whose extension is not one of the detected type's gets that type's extension added.
    pub name: String,
}

/// Define a query-string struct for an audit search: the filters every search takes (actor,
/// action, from, to) and the fields listed. Unknown parameters are refused, so a misspelt
/// filter cannot silently widen a search.
macro_rules! audit_query {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// A user's id (on the platform: an operator's), or an actor as stored: `user:ID`,
            /// `operator:ID`, `cli`, `system` or `anonymous`.
            pub actor: Option<String>,
            /// An exact action (`matter.view`) or a prefix ending in a dot (`auth.`).
            pub action: Option<String>,
            /// Events at or after this time (RFC 3339, e.g. `2026-11-24T09:00:00Z`).
            pub from: Option<String>,
            /// Events at or before this time (RFC 3339).
            pub to: Option<String>,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl $name {
            /// The filters every search takes; the caller adds the others.
            fn common(&self) -> SearchInput {
                SearchInput {
                    actor: self.actor.clone(),
                    action: self.action.clone(),
                    from: self.from.clone(),
                    to: self.to.clone(),
                    ..SearchInput::default()
                }
            }
        }
    };
}

audit_query!(
    /// Searching the firm's audit log, a page at a time.
    AuditQuery {
        /// A matter's id: events about the matter and about its documents and messages.
        matter: Option<String>,
        /// Events after this sequence number: the `next` of the previous page (default 0).
        #[param(value_type = Option<i64>)]
        after: Option<String>,
        /// At most this many events (1 to 500; default 100).
        #[param(value_type = Option<i64>)]
        limit: Option<String>,
    }
);

impl AuditQuery {
    pub fn input(&self) -> SearchInput {
        SearchInput {
            matter: self.matter.clone(),
            after: self.after.clone(),
            limit: self.limit.clone(),
            ..self.common()
        }
    }
}

audit_query!(
    /// Exporting the firm's audit log: every matching event, streamed.
    AuditExportQuery {
        /// `jsonl` (default: one event per line, as the search returns it) or `csv`.
        format: Option<String>,
        /// A matter's id: events about the matter and about its documents and messages.
        matter: Option<String>,
    }
);

impl AuditExportQuery {
    pub fn input(&self) -> SearchInput {
        SearchInput { matter: self.matter.clone(), ..self.common() }
    }
}

audit_query!(
    /// Searching one chain a page at a time, without a matter filter: the platform's own audit
    /// events, and the change records (whose `action`, if given, must be a change action).
    PagedAuditQuery {
        /// Events after this sequence number: the `next` of the previous page (default 0).
        #[param(value_type = Option<i64>)]
        after: Option<String>,
        /// At most this many events (1 to 500; default 100).
        #[param(value_type = Option<i64>)]
        limit: Option<String>,
    }
);

impl PagedAuditQuery {
    pub fn input(&self) -> SearchInput {
        SearchInput { after: self.after.clone(), limit: self.limit.clone(), ..self.common() }
    }
}

/// One page of change records, oldest first.
#[derive(Serialize, ToSchema)]
pub struct ChangePageView {
    pub items: Vec<ChangeView>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next: Option<i64>,
}

impl From<&portcullis_core::service::ChangePage> for ChangePageView {
    fn from(p: &portcullis_core::service::ChangePage) -> Self {
        Self { items: p.changes.iter().map(ChangeView::from).collect(), next: p.next }
    }
}

/// One change to a security setting: who made it, when, the setting before and after, and the
/// second person's approval where separation of duties required one. It is an audit event
/// (`seq` in its chain), so the chain's hashes and checkpoints cover it.
#[derive(Serialize, ToSchema)]
pub struct ChangeView {
    /// `CHG-<seq>` (a firm's) or `CHG-P-<seq>` (the platform's).
    pub reference: String,
    pub seq: i64,
    pub at: String,
    /// The setting, in words.
    pub setting: String,
    /// The audit action that records it.
    pub action: String,
    /// `user:<id>`, `operator:<id>`, `cli` or `system`.
    pub actor: String,
    /// What was changed: `tenant:<id>`, `user:<id>`, `token:<id>`, `operator:<id>`, `platform`.
    pub subject: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
    pub approval: Option<ChangeApprovalView>,
}

/// Who asked for a change and who approved it.
#[derive(Serialize, ToSchema)]
pub struct ChangeApprovalView {
    pub id: String,
    pub requested_by: String,
    pub approved_by: String,
}

impl From<&portcullis_core::changes::ChangeRecord> for ChangeView {
    fn from(c: &portcullis_core::changes::ChangeRecord) -> Self {
        Self {
            reference: c.reference.clone(),
            seq: c.seq,
            at: ts(c.at),
            setting: c.setting.to_string(),
            action: c.action.clone(),
            actor: c.actor.clone(),
            subject: c.subject.clone(),
            before: c.before.clone(),
            after: c.after.clone(),
            approval: c.approval.as_ref().map(|a| ChangeApprovalView {
                id: a.id.clone(),
                requested_by: a.requested_by.clone(),
                approved_by: a.approved_by.clone(),
            }),
        }
    }
}

/// One page of audit events, oldest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPageView {
    pub items: Vec<AuditEventView>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next: Option<i64>,
}

impl From<&AuditPage> for AuditPageView {
    fn from(p: &AuditPage) -> Self {
        Self { items: p.events.iter().map(AuditEventView::from).collect(), next: p.next }
    }
}

/// One audit event. Hashes let a reader check the chain themselves.
#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The matter the event concerns (the matter itself, or one of its documents or messages).
    pub matter: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// JSON object with the action's particulars (ids and counts, never client content).
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&portcullis_core::audit::StoredEvent> for AuditEventView {
    fn from(e: &portcullis_core::audit::StoredEvent) -> Self {
        Self {
            seq: e.seq,
            at: ts(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            matter: e.matter.clone(),
            ip: e.ip.clone(),
            request_id: e.request_id.clone(),
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// A request for a sensitive action (four eyes).
#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    /// `{"action": "grant_role", "user_id", "role"}`, `{"action": "reactivate_user", "user_id"}`,
    /// `{"action": "two_factor_policy", "staff", "clients"}`, `{"action": "erase_tenant"}` or
    /// `{"action": "export_tenant", "recipient"}`.
    pub action: serde_json::Value,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    /// `pending`, `approved`, `rejected`, or `expired` (pending past its expiry).
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

impl ApprovalView {
    pub fn of(a: &portcullis_core::model::ApprovalRequest, now: OffsetDateTime) -> Self {
        use portcullis_core::model::ApprovalState;
        let state = match a.state {
            ApprovalState::Pending if now > a.expires_at => "expired",
            s => s.as_str(),
        };
        Self {
            id: a.id.to_string(),
            action: serde_json::to_value(&a.action).unwrap_or(serde_json::Value::Null),
            requested_by: a.requested_by.to_string(),
            requested_at: ts(a.requested_at),
            expires_at: ts(a.expires_at),
            state: state.to_string(),
            decided_by: a.decided_by.map(|u| u.to_string()),
            decided_at: a.decided_at.map(ts),
        }
    }
}

/// A new role for a user.
#[derive(Deserialize, ToSchema)]
pub struct RoleChange {
    /// A role that widens the user's reach (see `policy::rises_in_reach`) becomes a request a
    /// second owner or admin must approve.
    pub role: String,
}

/// One of the caller's sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Public name of the session (not its cookie), for ending it.
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session making this request.
    pub current: bool,
}

/// A password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters.
    pub new_password: String,
}

/// The platform's health, for operators.
#[derive(Serialize, ToSchema)]
pub struct PlatformHealthView {
    pub database: bool,
    pub blob_store: bool,
    pub tenants: u64,
    pub open_key_rotations: u64,
}

/// One tenant in the operators' directory: names and counts, never content.
#[derive(Serialize, ToSchema)]
pub struct TenantSummaryView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub users: u64,
    pub documents: u64,
    pub stored_bytes: u64,
    pub two_factor_staff: bool,
    pub two_factor_clients: bool,
    /// `active` or `ended` (or `erasing`, while a destruction runs).
    pub status: String,
}

/// Where a firm's subscription stands.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionView {
    pub tenant_id: String,
    pub name: String,
    /// `active`, `ended`, `erasing` or `destroyed`.
    pub status: String,
    pub ended_at: Option<String>,
    /// When the retention period of an ended subscription runs out and its data is destroyed.
    pub destroy_after: Option<String>,
    /// The erasure ledger's entry, once a destruction has started.
    pub erasure: Option<ErasureView>,
    /// An operator's request to end the subscription, waiting for a second operator.
    pub pending_end: Option<PlatformApprovalView>,
}

/// An entry of the erasure ledger.
#[derive(Serialize, ToSchema)]
pub struct ErasureView {
    /// `customer` or `retention`.
    pub reason: String,
    /// `user:<id>` or `system`.
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub requested_at: String,
    pub approved_at: Option<String>,
    pub keys_destroyed_at: Option<String>,
    pub finished_at: Option<String>,
    /// What was destroyed: counts per kind (tables, `blobs`, `tenant_keys`).
    #[schema(value_type = Object)]
    pub destroyed: serde_json::Value,
    /// The firm's audit chain as it ended.
    pub audit_final_seq: Option<i64>,
    pub audit_final_head: Option<String>,
    /// When the backups applied the erasure; null until then.
    pub synced_to_backups_at: Option<String>,
}

impl From<&portcullis_core::service::SubscriptionStatus> for SubscriptionView {
    fn from(s: &portcullis_core::service::SubscriptionStatus) -> Self {
        Self {
            tenant_id: s.tenant_id.to_string(),
            name: s.name.clone(),
            status: s.status.to_string(),
            ended_at: s.ended_at.map(ts),
            destroy_after: s.destroy_after.map(ts),
            erasure: s.erasure.as_ref().map(|e| ErasureView {
                reason: e.reason.as_str().to_string(),
                requested_by: e.requested_by.clone(),
                approved_by: e.approved_by.clone(),
                requested_at: ts(e.requested_at),
                approved_at: e.approved_at.map(ts),
                keys_destroyed_at: e.keys_destroyed_at.map(ts),
                finished_at: e.finished_at.map(ts),
                destroyed: e.counts.clone(),
                audit_final_seq: e.audit_seq,
                audit_final_head: e.audit_head.clone(),
                synced_to_backups_at: e.synced_to_backups_at.map(ts),
            }),
            pending_end: s.pending_end.as_ref().map(PlatformApprovalView::from),
        }
    }
}

/// A new subscription.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionCreate {
    /// The tenant's sign-in name (lowercase letters, digits, dashes).
    pub name: String,
    pub owner_email: String,
}

/// A subscription opened: the owner's one-time set-up link, shown once.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionCreated {
    pub tenant_id: String,
    pub owner_setup_url: Option<String>,
}

/// A sensitive platform action to ask for.
#[derive(Deserialize, ToSchema)]
pub struct PlatformActionRequest {
    /// `rotate_master_key` (a subscription's end is asked for at `/platform/tenants/{name}/end`).
    pub action: String,
}

/// A platform request and where it stands.
#[derive(Serialize, ToSchema)]
pub struct PlatformApprovalView {
    pub id: String,
    /// `rotate_master_key` or `end_subscription`.
    pub action: String,
    /// The firm the action is done to (`end_subscription`), so the approver knows which.
    pub tenant_id: Option<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub decided_by: Option<String>,
    pub used_at: Option<String>,
}

impl From<&portcullis_core::model::PlatformApproval> for PlatformApprovalView {
    fn from(a: &portcullis_core::model::PlatformApproval) -> Self {
        Self {
            id: a.id.to_string(),
            action: a.action.as_str().to_string(),
            tenant_id: a.action.tenant().map(|t| t.to_string()),
            requested_by: a.requested_by.to_string(),
            requested_at: ts(a.requested_at),
            expires_at: ts(a.expires_at),
            state: a.state.as_str().to_string(),
            decided_by: a.decided_by.map(|o| o.to_string()),
            used_at: a.used_at.map(ts),
        }
    }
}

/// The firm's upload allow-list: file types by name, checked from the content.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadPolicyView {
    pub allowed: Vec<String>,
}

/// The networks the firm's users may sign in from: CIDR ranges (a bare address is one host);
/// empty: anywhere.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkAccessView {
    pub networks: Vec<String>,
}

/// The firm's DLP actions per detector and the daily download cap per user.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DlpPolicyView {
    /// Detector name to `allow`, `warn`, `block_clients` or `quarantine`.
    #[schema(value_type = Object)]
    pub detectors: std::collections::BTreeMap<String, portcullis_core::service::DlpAction>,
    #[schema(value_type = Object)]
    pub download_cap: portcullis_core::service::DownloadCap,
}

/// A document held for review.
#[derive(Serialize, ToSchema)]
pub struct HeldDocumentView {
    pub document_id: String,
    pub matter_id: String,
    #[schema(value_type = Object)]
    pub findings: serde_json::Value,
    pub flagged_at: String,
}

/// Ask for an export of all of the firm's data.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The age X25519 public key (`age1...`) the archive is encrypted to; keep its identity.
    pub recipient: String,
}

/// A tenant export and its progress.
#[derive(Serialize, ToSchema)]
pub struct ExportView {
    /// The id of the approval that allowed it.
    pub id: String,
    /// `pending` (being written), `done` (downloadable until `expires_at`), `failed`, `expired`.
    pub state: String,
    pub entries_done: u64,
    pub entries_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// 0 to 100, by document bytes when there are any, else by entries.
    pub percent: u8,
    pub archive_size: Option<u64>,
    pub archive_sha256: Option<String>,
    /// SHA-256 of the archive's manifest entry, which an import names.
    pub manifest_sha256: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub expires_at: Option<String>,
}

impl From<&portcullis_core::model::TenantExport> for ExportView {
    fn from(x: &portcullis_core::model::TenantExport) -> Self {
        use portcullis_core::model::ExportState;
        let ratio = |done: u64, total: u64| done.saturating_mul(100).checked_div(total).unwrap_or(0);
        let percent = match x.state {
            ExportState::Done | ExportState::Expired => 100,
            _ if x.bytes_total > 0 => ratio(x.bytes_done, x.bytes_total),
            _ => ratio(x.entries_done, x.entries_total),
        };
        Self {
            id: x.id.to_string(),
            state: x.state.as_str().to_string(),
            entries_done: x.entries_done,
            entries_total: x.entries_total,
            bytes_done: x.bytes_done,
            bytes_total: x.bytes_total,
            percent: u8::try_from(percent.min(100)).unwrap_or(100),
            archive_size: x.archive_size,
            archive_sha256: x.archive_sha256.clone(),
            manifest_sha256: x.manifest_sha256.clone(),
            error: x.error.clone(),
            created_at: ts(x.created_at),
            finished_at: x.finished_at.map(ts),
            expires_at: x.expires_at.map(ts),
        }
    }
}
