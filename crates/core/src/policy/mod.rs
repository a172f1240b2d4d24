//! The one authorization module. Every decision about who may do what goes through
//! [`authorize_tenant`], [`authorize_matter`] or [`authorize_list`]; each returns a grant that
//! only this module can construct, whose type names the permission it proves (a
//! `MatterGrant<can::ReadDocument>` opens one matter's documents for reading and nothing else).
//! The store's content methods demand the grant of their permission, so a code path that did
//! not ask the policy for that permission on that matter does not compile.
//!
//! `roles` is the permission × role table (default deny: a permission is allowed to the roles
//! its row lists and no other); `grants` makes the grants; `rules` holds the decisions beside
//! the table; `platform` is the operators' side.

mod grants;
mod platform;
mod roles;
mod rules;
#[cfg(test)]
mod tests;

pub use grants::{
    Action, AuditReach, ExportRead, ImportReach, ImportWrite, ListAction, MatterAction, MatterFacts, MatterGrant,
    MatterListGrant, MatterVisibility, RotationReach, TenantAction, TenantGrant, authorize_list, authorize_matter,
    authorize_tenant, creator_membership, export_matter, export_reach, import_matter, import_reach, rotation_reach,
};
pub use platform::{
    OperatorPrincipal, PlatformPermission, authorize_platform, may_decide_platform, may_grant, vetting_current,
};
pub use roles::{allowed_roles, permission_table_markdown, rises_in_reach, role_allows};
pub use rules::{
    RoleChangeRule, SourceCredential, download_cap, flagged_document, may_change_role, may_create_user, may_deactivate,
    may_decide, may_download, may_reactivate, may_review, network_allows, passes_source_block, protected_sign_in,
    protection_resets_step_up, role_change_clears_memberships,
};

use crate::error::{Error, Result};
use crate::ids::{TenantId, UserId};
use crate::model::{Role, Tenant};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Declares every permission once: the [`Permission`] value (for tables, documentation and
/// errors) and its type in [`can`] (for grants), with the kinds of grant it may be made into.
/// The kinds are marker traits of `grants`: `MatterAction` (on one matter, where its list
/// counts), `TenantAction` (firm-wide), `ListAction` (firm-wide but filtered by the ethical
/// walls), `ExportRead` and `ImportWrite` (what an approved export reads and an import writes).
macro_rules! permissions {
    ($( $(#[$doc:meta])* $name:ident: $first:ident $(+ $kind:ident)* ;)*) => {
        /// Every action the policy decides on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Permission {
            $( $(#[$doc])* $name, )*
        }

        impl Permission {
            pub const ALL: [Permission; [$(stringify!($name)),*].len()] = [$(Permission::$name),*];

            /// Does this permission concern one matter (so membership matters for clients)?
            pub fn is_matter_scoped(self) -> bool {
                match self {
                    $( Permission::$name => permissions!(@matter $first), )*
                }
            }
        }

        /// One type per permission: the `A` of a grant, so its type says what it allows. They
        /// have no values; only the policy makes grants of them.
        pub mod can {
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub enum $name {}
                impl super::grants::Sealed for $name {}
                impl super::Action for $name {
                    const PERMISSION: super::Permission = super::Permission::$name;
                }
                impl super::$first for $name {}
                $( impl super::$kind for $name {} )*
            )*
        }
    };
    (@matter MatterAction) => { true };
    (@matter $other:ident) => { false };
}

permissions! {
    ListMatters: ListAction;
    CreateMatter: TenantAction;
    ViewMatter: MatterAction + ExportRead;
    ListMembers: MatterAction + ExportRead;
    /// Put people on a matter's list and take them off it.
    ManageMembers: MatterAction + ImportWrite;
    ListDocuments: MatterAction + ExportRead;
    ReadDocument: MatterAction + ExportRead;
    UploadDocument: MatterAction + ImportWrite;
    ReadMessages: MatterAction + ExportRead;
    PostMessage: MatterAction + ImportWrite;
    /// See, release or discard a document the data loss prevention policy holds for review:
    /// the firm's queue lists the held documents of the matters the reviewer may see, and each
    /// release or discard is decided on the document's own matter (its ethical wall binds).
    ReviewHeldDocuments: MatterAction + ListAction;
    ListUsers: TenantAction + ExportRead;
    /// Create users, change roles (through approval where reach rises), deactivate and
    /// reactivate them, unlock them, end their sessions.
    ManageUsers: TenantAction;
    ManageOwnTokens: TenantAction;
    /// Enrol, replace or remove one's own second factors.
    ManageOwnFactors: TenantAction;
    /// Tenant-wide security settings (the two-factor requirement, the upload allow-list, DLP,
    /// network list, download caps, blocks).
    ManageTenantSecurity: TenantAction;
    /// Read the firm's audit log: every event but those of restricted matters the reader is not
    /// on.
    ReadAudit: TenantAction + ListAction;
    /// Approve or reject another admin's request for a sensitive action.
    DecideApprovals: TenantAction;
    /// See and end one's own sessions; change one's own password.
    ManageOwnSessions: TenantAction;
    /// Direct the erasure of all of the firm's data (a request a second owner or admin approves).
    RequestErasure: TenantAction;
    /// Export all of the firm's data (a request a second owner or admin approves), follow the
    /// export and download its archive.
    ExportTenant: TenantAction;
}

/// What a bearer token may be used for. The three scopes are independent: a `write` token can
/// upload without being able to read anything back (a drop box for a scanner or a client's
/// accounting system), and an `admin` token manages users but cannot read matters unless it also
/// has `read`. A token may do what its user's role allows *and* its scopes name. Browser sessions
/// carry every scope their role allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read matters, members, documents, messages, users and (for auditors) the audit log.
    Read,
    /// Create matters, manage their members, upload documents, post messages.
    Write,
    /// Manage users: create, change roles (through approval), unlock, end their sessions.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            Error::invalid("scopes", format!("unknown scope {s:?}; the scopes are read, write and admin"))
        })
    }
}

/// The scopes a token of someone with this role could ever use: a scope that grants the role
/// nothing is refused when the token is made, rather than silently doing nothing.
pub fn usable_scopes(role: Role) -> Vec<Scope> {
    Scope::ALL
        .into_iter()
        .filter(|s| Permission::ALL.iter().any(|p| p.scope() == Some(*s) && role_allows(role, *p)))
        .collect()
}

impl Permission {
    /// The token scope an API token needs for this permission; `None` means tokens can never do it.
    pub fn scope(self) -> Option<Scope> {
        Some(match self {
            Permission::ListMatters
            | Permission::ViewMatter
            | Permission::ListMembers
            | Permission::ListDocuments
            | Permission::ReadDocument
            | Permission::ReadMessages
            | Permission::ListUsers
            | Permission::ReadAudit => Scope::Read,
            Permission::CreateMatter
            | Permission::ManageMembers
            | Permission::UploadDocument
            | Permission::PostMessage => Scope::Write,
            Permission::ManageUsers => Scope::Admin,
            // A token must not mint or revoke tokens: a leaked token could otherwise persist itself.
            // Nor change how its owner signs in, or the tenant's security settings.
            // Nor approve a sensitive action: that takes a person, in a session.
            Permission::ManageOwnTokens
            | Permission::ReviewHeldDocuments
            | Permission::ManageOwnFactors
            | Permission::ManageTenantSecurity
            | Permission::DecideApprovals
            | Permission::ManageOwnSessions
            | Permission::RequestErasure
            | Permission::ExportTenant => {
                return None;
            }
        })
    }

    /// The phrase used in "You are not allowed to ...".
    pub fn describe(self) -> &'static str {
        match self {
            Permission::ListMatters => "list matters",
            Permission::CreateMatter => "create matters",
            Permission::ViewMatter => "view this matter",
            Permission::ListMembers => "see who is on this matter",
            Permission::ManageMembers => "manage this matter's members",
            Permission::ListDocuments => "list documents",
            Permission::ReadDocument => "download documents",
            Permission::UploadDocument => "upload documents",
            Permission::ReadMessages => "read messages",
            Permission::PostMessage => "post messages",
            Permission::ListUsers => "list users",
            Permission::ManageUsers => "manage users",
            Permission::ManageOwnTokens => "manage API tokens",
            Permission::ManageOwnFactors => "manage your sign-in factors",
            Permission::ManageTenantSecurity => "change the firm's security settings",
            Permission::ReadAudit => "read the audit log",
            Permission::DecideApprovals => "approve or reject others' sensitive requests",
            Permission::ManageOwnSessions => "see and end your sessions, change your password",
            Permission::RequestErasure => "direct the erasure of all of the firm's data",
            Permission::ExportTenant => "export all of the firm's data",
            Permission::ReviewHeldDocuments => "review documents held by the data loss prevention policy",
        }
    }
}

/// How the caller proved who they are.
#[derive(Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session; state changes need this CSRF token. `session_hash` names the session
    /// (the SHA-256 of its cookie, never the cookie).
    Session { csrf_token: String, session_hash: String },
    /// An API bearer token with these scopes. Its id goes into every audit event it causes, so
    /// a breach can be scoped to a token that leaked (see `crate::incidents::BreachScope`).
    Token { id: crate::ids::TokenId, scopes: Vec<Scope> },
    /// The local command-line tool, run by whoever holds the machine.
    Cli,
}

/// The CSRF token is a secret of the session: debug output shows only that there is one.
impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Session { .. } => f.write_str("Session { csrf_token: REDACTED }"),
            Via::Token { id, scopes } => f.debug_struct("Token").field("id", id).field("scopes", scopes).finish(),
            Via::Cli => f.write_str("Cli"),
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub via: Via,
    pub second_factor: SecondFactor,
}

/// What the caller's session knows about their second factor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecondFactor {
    /// The firm requires a second factor of this user, who has none yet: until they enrol, the
    /// session may do nothing else.
    pub enrol_required: bool,
    /// When this session last checked a second factor (at sign-in or a step-up).
    pub verified_at: Option<OffsetDateTime>,
    /// The firm requires a second factor of this user, who has one, but this session never
    /// checked it (it began before the requirement, or before the factor): until it steps
    /// up, the session may do nothing else.
    pub step_up_required: bool,
}

/// How recent a second-factor check a sensitive action needs.
pub const STEP_UP_WINDOW: Duration = Duration::minutes(10);

/// Does the firm's policy require a second factor of a user with this role?
pub fn two_factor_required(tenant: &Tenant, role: Role) -> bool {
    if role.is_staff_side() { tenant.two_factor_staff } else { tenant.two_factor_clients }
}

/// Step-up for sensitive actions (changing factors, creating API tokens, role grants, exports,
/// security settings): a user who has a second factor must have checked it within
/// [`STEP_UP_WINDOW`]. A user without one (allowed only where the firm does not require it) has
/// nothing to step up with and is not blocked; the command line is the machine's holder.
pub fn step_up(p: &Principal, has_factor: bool, now: OffsetDateTime) -> Result<()> {
    match p.via {
        Via::Cli => Ok(()),
        _ if !has_factor => Ok(()),
        _ => match p.second_factor.verified_at {
            Some(at) if now - at <= STEP_UP_WINDOW => Ok(()),
            _ => Err(Error::StepUpRequired),
        },
    }
}

/// A session that must enrol a second factor, or check the one it has, may only do that, and
/// look after its own sign-in (sessions, password).
fn check_enrolment(p: &Principal, perm: Permission) -> Result<()> {
    let own_sign_in = matches!(perm, Permission::ManageOwnFactors | Permission::ManageOwnSessions);
    if p.second_factor.enrol_required && !own_sign_in {
        return Err(Error::EnrolmentRequired);
    }
    if p.second_factor.step_up_required && !own_sign_in {
        return Err(Error::StepUpRequired);
    }
    Ok(())
}

/// A token may do what its scopes name; a session and the command line carry every scope.
fn check_scope(p: &Principal, perm: Permission) -> Result<()> {
    match &p.via {
        Via::Session { .. } | Via::Cli => Ok(()),
        Via::Token { scopes, .. } => match perm.scope() {
            Some(needed) if scopes.contains(&needed) => Ok(()),
            _ => {
                Err(Error::Forbidden(format!("{} with this token (it lacks the needed scope)", perm.describe()).into()))
            }
        },
    }
}
