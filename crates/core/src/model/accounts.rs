//! Firms, their people and how they sign in: tenants, users and roles, second factors, sessions, API tokens, tenant keys and one-time links.

use super::*;

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
