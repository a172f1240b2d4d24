//! The one authorization module. Every decision about who may do what goes through
//! [`authorize_tenant`], [`authorize_matter`] or [`authorize_matter_list`]; each returns a grant
//! that only this module can construct, and the store's content methods demand a grant. A code
//! path that forgot to ask therefore does not compile.

use crate::error::{Error, Result};
use crate::ids::{MatterId, TenantId, UserId};
use crate::model::{ApprovalRequest, ExportState, FlagState, Role, SensitiveAction, Tenant, TenantExport};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

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

/// Every action the policy decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    ListMatters,
    CreateMatter,
    ViewMatter,
    ListMembers,
    ManageMembers,
    ListDocuments,
    ReadDocument,
    UploadDocument,
    ReadMessages,
    PostMessage,
    ListUsers,
    ManageUsers,
    ManageOwnTokens,
    /// Enrol, replace or remove one's own second factors.
    ManageOwnFactors,
    /// Tenant-wide security settings (the two-factor requirement).
    ManageTenantSecurity,
    /// Read the firm's audit log.
    ReadAudit,
    /// Approve or reject another admin's request for a sensitive action.
    DecideApprovals,
    /// See and end one's own sessions; change one's own password.
    ManageOwnSessions,
    /// Direct the erasure of all of the firm's data (a request a second owner or admin approves).
    RequestErasure,
    /// Export all of the firm's data (a request a second owner or admin approves), follow the
    /// export and download its archive.
    ExportTenant,
}

impl Permission {
    pub const ALL: [Permission; 20] = [
        Permission::ListMatters,
        Permission::CreateMatter,
        Permission::ViewMatter,
        Permission::ListMembers,
        Permission::ManageMembers,
        Permission::ListDocuments,
        Permission::ReadDocument,
        Permission::UploadDocument,
        Permission::ReadMessages,
        Permission::PostMessage,
        Permission::ListUsers,
        Permission::ManageUsers,
        Permission::ManageOwnTokens,
        Permission::ManageOwnFactors,
        Permission::ManageTenantSecurity,
        Permission::ReadAudit,
        Permission::DecideApprovals,
        Permission::ManageOwnSessions,
        Permission::RequestErasure,
        Permission::ExportTenant,
    ];

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

    /// Does this permission concern one matter (so membership matters for clients)?
    pub fn is_matter_scoped(self) -> bool {
        matches!(
            self,
            Permission::ViewMatter
                | Permission::ListMembers
                | Permission::ManageMembers
                | Permission::ListDocuments
                | Permission::ReadDocument
                | Permission::UploadDocument
                | Permission::ReadMessages
                | Permission::PostMessage
        )
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

/// Who may see and download a document the DLP scan flagged. A document held for review
/// (quarantined) is downloaded by owners and admins only, until one of them releases it; one
/// blocked from clients, and a held one, do not exist for client users at all (listed or
/// fetched, they are `NotFound`). Matter access is decided first, by [`authorize_matter`].
pub fn flagged_document(p: &Principal, state: Option<FlagState>, download: bool) -> Result<()> {
    match state {
        Some(FlagState::ClientBlocked | FlagState::Quarantined) if !p.role.is_staff_side() => Err(Error::NotFound),
        Some(FlagState::Quarantined) if download && !matches!(p.role, Role::Owner | Role::Admin) => {
            Err(Error::Forbidden(
                "download this document yet: your firm's data loss prevention policy holds it until an owner or \
                 admin reviews and releases it"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

/// The daily download cap: refused when one more download would pass the count, or when the
/// bytes already taken today reach the byte cap (a download is never cut off part-way, so the
/// last one may take the total past it).
pub fn download_cap(used: (u64, u64), cap_downloads: Option<u64>, cap_bytes: Option<u64>) -> Result<()> {
    let (n, bytes) = used;
    if cap_downloads.is_some_and(|c| n >= c) || cap_bytes.is_some_and(|c| bytes >= c) {
        return Err(Error::DownloadCapReached);
    }
    Ok(())
}

/// What a request from a blocked source address carries that may let it through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceCredential {
    /// Nothing (or nothing valid): an anonymous request.
    None,
    /// A valid session or API token of an active user.
    Authenticated,
    /// A sign-in presenting a device cookie known for the account signing in.
    KnownDevice,
}

/// May a request from a source address pass that address's block (if any)? A block on an
/// address stops anonymous traffic from it, not the people behind it: a whole office behind one
/// NAT or proxy shares the address with the attacker. A valid session or token is already
/// proof of an account, and signing in needs, on a blocked address, a device the account has
/// used before, so the attacker (with no session and no known device of the account) stays
/// out while colleagues work on.
pub fn passes_source_block(block: Option<&crate::model::Block>, credential: SourceCredential) -> Result<()> {
    match (block, credential) {
        (None, _) | (Some(_), SourceCredential::Authenticated | SourceCredential::KnownDevice) => Ok(()),
        (Some(b), SourceCredential::None) => Err(Error::SourceBlocked { until: b.expires_at }),
    }
}

/// Sign-in of an account under protection (an attack on it was detected): a user with a second
/// factor must present it (as always); one without may sign in only from a device the account
/// has used before, and that session must enrol a factor before anything else. Returns whether
/// the session must enrol.
pub fn protected_sign_in(protected: bool, has_factor: bool, known_device: bool) -> Result<bool> {
    match (protected, has_factor, known_device) {
        (false, _, _) | (true, true, _) => Ok(false),
        (true, false, true) => Ok(true),
        (true, false, false) => Err(Error::AccountProtected),
    }
}

/// A session's second-factor check made before its account came under protection no longer
/// counts: the session must step up again before sensitive actions. A check made at the very
/// moment of protection does not count either (fail closed: it cannot be shown to come after).
pub fn protection_resets_step_up(sf: &mut SecondFactor, protected_since: Option<OffsetDateTime>) {
    if let (Some(since), Some(at)) = (protected_since, sf.verified_at)
        && at <= since
    {
        sf.verified_at = None;
    }
}

/// Whether the firm's sign-in network list lets `ip` in: inside one of `networks` (an empty
/// list allows every address; an unknown address is allowed by none). Used for sign-in, and
/// to refuse a list that would lock out the person saving it.
pub fn network_allows(networks: &[String], ip: Option<&str>) -> bool {
    if networks.is_empty() {
        return true;
    }
    let Some(ip) = ip.and_then(|i| i.parse::<std::net::IpAddr>().ok()) else { return false };
    networks.iter().filter_map(|n| n.parse::<ipnet::IpNet>().ok()).any(|n| n.contains(&ip))
}

/// A review of what concerns the reviewer's own account (their paused downloads, their
/// protected account, their daily cap, a document they uploaded) is for another owner or admin
/// when the firm has one: the person under review cannot clear themselves, nor can someone
/// holding their stolen session. A firm with a single owner or admin could otherwise never
/// clear it; there the reviewer may, and the audit event says so.
pub fn may_review(p: &Principal, subject: UserId, other_reviewers: bool) -> Result<()> {
    if subject == p.user_id && other_reviewers {
        return Err(Error::Forbidden(
            "another owner or admin must review this: it concerns your own account or upload".into(),
        ));
    }
    Ok(())
}

/// Downloads of a user whose downloads are paused (pending an admin's review) are refused.
pub fn may_download(paused: bool) -> Result<()> {
    if paused { Err(Error::DownloadsPaused) } else { Ok(()) }
}

/// A session that must enrol a second factor may only do that, and look after its own sign-in
/// (sessions, password).
fn check_enrolment(p: &Principal, perm: Permission) -> Result<()> {
    if p.second_factor.enrol_required && !matches!(perm, Permission::ManageOwnFactors | Permission::ManageOwnSessions) {
        return Err(Error::EnrolmentRequired);
    }
    Ok(())
}

/// What the role alone allows, before matter membership and token scopes. This table is the
/// policy; `docs/permissions.md` is generated from it.
pub fn role_allows(role: Role, perm: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Owner => true,
        // Erasing or exporting the whole firm is the owner's decision alone (an admin may
        // approve it).
        Role::Admin => !matches!(perm, RequestErasure | ExportTenant),
        Role::Staff => !matches!(
            perm,
            ManageUsers | ManageTenantSecurity | ReadAudit | DecideApprovals | RequestErasure | ExportTenant
        ),
        Role::Auditor => matches!(perm, ReadAudit | ManageOwnTokens | ManageOwnFactors | ManageOwnSessions),
        Role::Client => matches!(
            perm,
            ListMatters
                | ViewMatter
                | ListDocuments
                | ReadDocument
                | UploadDocument
                | ReadMessages
                | PostMessage
                | ManageOwnTokens
                | ManageOwnFactors
                | ManageOwnSessions
        ),
    }
}

/// Proof that the caller may perform a tenant-wide action.
#[derive(Debug)]
pub struct TenantGrant {
    tenant_id: TenantId,
    actor: UserId,
    permission: Permission,
}

impl TenantGrant {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn actor(&self) -> UserId {
        self.actor
    }
    pub fn permission(&self) -> Permission {
        self.permission
    }
}

/// Which matters a caller may list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatterVisibility {
    /// Every unrestricted matter of the tenant, and the restricted ones whose list holds this user.
    Unrestricted(UserId),
    /// Only matters whose list holds this user.
    MemberOf(UserId),
    /// Every matter of the tenant, restricted ones included: only for an approved export of
    /// the whole firm (see [`export_reach`]).
    WholeFirm,
}

/// Proof that the caller may list matters, and which.
#[derive(Debug)]
pub struct MatterListGrant {
    tenant_id: TenantId,
    visibility: MatterVisibility,
}

impl MatterListGrant {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn visibility(&self) -> MatterVisibility {
        self.visibility
    }
}

/// Proof that the caller may perform `permission` on one matter.
#[derive(Debug)]
pub struct MatterGrant {
    tenant_id: TenantId,
    matter_id: MatterId,
    actor: UserId,
    permission: Permission,
}

impl MatterGrant {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn matter_id(&self) -> MatterId {
        self.matter_id
    }
    pub fn actor(&self) -> UserId {
        self.actor
    }
    pub fn permission(&self) -> Permission {
        self.permission
    }
}

/// The facts about one matter the policy needs, loaded by the caller from the caller's own tenant.
#[derive(Debug, Clone, Copy)]
pub struct MatterFacts {
    pub tenant_id: TenantId,
    pub matter_id: MatterId,
    /// The caller's role on the matter's list, if listed.
    pub membership: Option<Role>,
    /// Behind an ethical wall: only its list sees it.
    pub restricted: bool,
}

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

/// Decide a tenant-wide permission.
pub fn authorize_tenant(p: &Principal, perm: Permission) -> Result<TenantGrant> {
    if perm.is_matter_scoped() {
        return Err(Error::internal(format!("{perm:?} is matter-scoped; use authorize_matter")));
    }
    check_enrolment(p, perm)?;
    if !role_allows(p.role, perm) {
        return Err(Error::Forbidden(perm.describe().into()));
    }
    check_scope(p, perm)?;
    Ok(TenantGrant { tenant_id: p.tenant_id, actor: p.user_id, permission: perm })
}

/// Decide which matters the caller may list.
pub fn authorize_matter_list(p: &Principal) -> Result<MatterListGrant> {
    let grant = authorize_tenant(p, Permission::ListMatters)?;
    let visibility = if p.role.works_matters() {
        MatterVisibility::Unrestricted(p.user_id)
    } else {
        MatterVisibility::MemberOf(p.user_id)
    };
    Ok(MatterListGrant { tenant_id: grant.tenant_id, visibility })
}

/// Decide a permission on one matter. A matter the caller may not see at all is `NotFound`, so
/// its existence is not revealed; one they can see but not act on is `Forbidden`.
pub fn authorize_matter(p: &Principal, perm: Permission, m: &MatterFacts) -> Result<MatterGrant> {
    if m.tenant_id != p.tenant_id {
        return Err(Error::NotFound);
    }
    // A restricted matter is seen by its list alone, owners and admins included (an ethical
    // wall binds partners too); others by the roles that work matters and by their list.
    let can_see = m.membership.is_some() || (p.role.works_matters() && !m.restricted);
    if !can_see {
        return Err(Error::NotFound);
    }
    check_enrolment(p, perm)?;
    if !perm.is_matter_scoped() || !role_allows(p.role, perm) {
        return Err(Error::Forbidden(perm.describe().into()));
    }
    check_scope(p, perm)?;
    Ok(MatterGrant { tenant_id: p.tenant_id, matter_id: m.matter_id, actor: p.user_id, permission: perm })
}

/// What an approved export of the whole firm may read: every user, and every matter with its
/// members, documents and messages, restricted matters included, since the data is the firm's
/// and its owner asked for all of it with a second owner or admin agreeing (the ethical wall
/// separates people inside the firm, not the firm from its own data). Nothing else reaches
/// [`MatterVisibility::WholeFirm`].
pub fn export_reach(x: &TenantExport) -> Result<(TenantGrant, MatterListGrant)> {
    if x.state != ExportState::Pending {
        return Err(Error::WrongState(format!("the export is {}", x.state.as_str()).into()));
    }
    Ok((
        TenantGrant { tenant_id: x.tenant_id, actor: x.approved_by, permission: Permission::ListUsers },
        MatterListGrant { tenant_id: x.tenant_id, visibility: MatterVisibility::WholeFirm },
    ))
}

/// One matter's share of an approved export (see [`export_reach`]).
pub fn export_matter(reach: &MatterListGrant, matter: MatterId, actor: UserId) -> Result<MatterGrant> {
    if reach.visibility != MatterVisibility::WholeFirm {
        return Err(Error::internal("an export's matter grant needs the export's reach"));
    }
    Ok(MatterGrant { tenant_id: reach.tenant_id, matter_id: matter, actor, permission: Permission::ReadDocument })
}

/// What an import of an export archive into a new firm may write: the firm's matters and
/// everything in them. Only the command line imports (the machine's holder, who also holds the
/// archive's identity); the new firm does not exist yet, so no user of it can ask.
pub fn import_reach(p: &Principal, new_tenant: TenantId) -> Result<TenantGrant> {
    if p.via != Via::Cli {
        return Err(Error::Forbidden("import a firm (only from the command line)".into()));
    }
    Ok(TenantGrant { tenant_id: new_tenant, actor: p.user_id, permission: Permission::CreateMatter })
}

/// One matter's share of an import (see [`import_reach`]).
pub fn import_matter(reach: &TenantGrant, matter: MatterId) -> Result<MatterGrant> {
    // Only the command line's reach (its actor is the nil id no user has) opens matters this
    // way; a user's grant to create matters does not.
    if reach.permission != Permission::CreateMatter || !reach.actor.as_uuid().is_nil() {
        return Err(Error::internal("an import's matter grant needs the import's reach"));
    }
    Ok(MatterGrant {
        tenant_id: reach.tenant_id,
        matter_id: matter,
        actor: reach.actor,
        permission: Permission::UploadDocument,
    })
}

/// Which role a user may be created with. Owners come only with their tenant; admin rights are
/// granted to an existing user with a second person's approval, except from the command line
/// (the machine's holder), so a one-owner firm can get its second admin.
pub fn may_create_user(p: &Principal, role: Role) -> Result<TenantGrant> {
    let grant = authorize_tenant(p, Permission::ManageUsers)?;
    if role == Role::Owner || (role == Role::Admin && p.via != Via::Cli) {
        return Err(Error::Forbidden(
            format!(
                "create {} users directly: create the user as staff, then ask for the role (a second admin approves)",
                role.as_str()
            )
            .into(),
        ));
    }
    Ok(grant)
}

/// How a role change may happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChangeRule {
    /// At once.
    Direct,
    /// As a request a second owner or admin approves (four eyes).
    NeedsApproval,
}

/// Decide changing a user's role from `from` to `to`. An owner's role is not changed here; an
/// admin's only by an owner; making someone an owner (asked by an owner) or admin (asked by an
/// owner or admin) needs approval.
pub fn may_change_role(p: &Principal, from: Role, to: Role) -> Result<RoleChangeRule> {
    authorize_tenant(p, Permission::ManageUsers)?;
    if from == to {
        return Err(Error::invalid("role", "the user already has this role"));
    }
    if from == Role::Owner {
        return Err(Error::Forbidden("change an owner's role".into()));
    }
    if from == Role::Admin && p.role != Role::Owner {
        return Err(Error::Forbidden("change an admin's role (an owner must)".into()));
    }
    match (to, p.role) {
        (Role::Owner, Role::Owner) | (Role::Admin, Role::Owner | Role::Admin) => Ok(RoleChangeRule::NeedsApproval),
        (Role::Owner | Role::Admin, _) => Err(Error::Forbidden(format!("ask for the {} role", to.as_str()).into())),
        _ => Ok(RoleChangeRule::Direct),
    }
}

/// Four eyes: a request is decided by an owner or admin other than its requester; making
/// someone an owner is approved by an owner.
pub fn may_decide(p: &Principal, req: &ApprovalRequest) -> Result<()> {
    authorize_tenant(p, Permission::DecideApprovals)?;
    if req.tenant_id != p.tenant_id {
        return Err(Error::NotFound);
    }
    if req.requested_by == p.user_id {
        return Err(Error::Forbidden("approve or reject your own request: a second person must".into()));
    }
    if matches!(req.action, SensitiveAction::GrantRole { role: Role::Owner, .. }) && p.role != Role::Owner {
        return Err(Error::Forbidden("approve making someone an owner (an owner must)".into()));
    }
    Ok(())
}

/// Four eyes among operators: a platform request is decided by a privileged operator other
/// than its requester.
pub fn may_decide_platform(
    op: &OperatorPrincipal,
    req: &crate::model::PlatformApproval,
    now: OffsetDateTime,
) -> Result<()> {
    authorize_platform(op, PlatformPermission::ApprovePlatformActions, now)?;
    if req.requested_by == op.operator.id {
        return Err(Error::Forbidden("approve or reject your own request: a second operator must".into()));
    }
    Ok(())
}

/// The grant to put a matter's creator on its list, right after creating it (a restricted
/// matter is invisible to everyone not on its list, its creator included, until then).
pub fn creator_membership(grant: &TenantGrant, matter: MatterId) -> Result<MatterGrant> {
    if grant.permission != Permission::CreateMatter {
        return Err(Error::internal("a creator's membership needs the grant that created the matter"));
    }
    Ok(MatterGrant {
        tenant_id: grant.tenant_id,
        matter_id: matter,
        actor: grant.actor,
        permission: Permission::ManageMembers,
    })
}

/// What platform operators do. None of it reaches tenant content: operators never get a
/// tenant principal, so no tenant permission can be granted to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformPermission {
    /// See whether the system is healthy.
    ViewHealth,
    /// See security incidents (reports, timelines, breach scopes).
    ViewIncidents,
    /// Work incidents: triage, assign, note, move on, scope a breach and notify the firms it
    /// touched.
    ManageIncidents,
    /// See the tenant directory: names and counts.
    ViewTenants,
    /// Create tenants (subscriptions).
    ManageSubscriptions,
    /// Request, approve or reject a sensitive platform action (master-key rotation).
    ApprovePlatformActions,
    /// Read the platform's own audit events (operators, vetting, platform approvals). Never a
    /// tenant's events: those are in the tenant's chain, which no operator call reads.
    ReadPlatformAudit,
    /// See blocked sources and the platform's intrusion detections.
    ViewSecurity,
    /// Lift a block on a source address.
    LiftSourceBlocks,
}

/// An authenticated operator, with the grants and vetting record read for this request.
#[derive(Clone, Debug)]
pub struct OperatorPrincipal {
    pub operator: crate::model::Operator,
    pub grants: Vec<crate::model::OperatorGrant>,
    pub vetting: Option<crate::model::VettingRecord>,
}

/// Whether a vetting record holds at `now`.
pub fn vetting_current(v: Option<&crate::model::VettingRecord>, now: OffsetDateTime) -> bool {
    v.is_some_and(|v| v.checked_at <= now && now < v.valid_until)
}

/// The privileged role goes only to an operator whose vetting holds.
pub fn may_grant(
    role: crate::model::OperatorRole,
    vetting: Option<&crate::model::VettingRecord>,
    now: OffsetDateTime,
) -> Result<()> {
    use crate::model::OperatorRole;
    if role == OperatorRole::Privileged && !vetting_current(vetting, now) {
        return Err(Error::Forbidden(
            "grant the privileged role to an operator without a current vetting record".into(),
        ));
    }
    Ok(())
}

/// Decide a platform permission. A privileged grant counts only while the operator's vetting
/// holds: fail closed, even before the background job suspends the grant.
pub fn authorize_platform(op: &OperatorPrincipal, perm: PlatformPermission, now: OffsetDateTime) -> Result<()> {
    use crate::model::OperatorRole;
    let has = |role: OperatorRole| op.grants.iter().any(|g| g.role == role && g.suspended_at.is_none());
    let privileged = has(OperatorRole::Privileged) && vetting_current(op.vetting.as_ref(), now);
    let allowed = match perm {
        PlatformPermission::ViewHealth
        | PlatformPermission::ViewTenants
        | PlatformPermission::ReadPlatformAudit
        | PlatformPermission::ViewSecurity
        | PlatformPermission::ViewIncidents => has(OperatorRole::Support) || privileged,
        PlatformPermission::ManageSubscriptions
        | PlatformPermission::ManageIncidents
        | PlatformPermission::ApprovePlatformActions
        | PlatformPermission::LiftSourceBlocks => privileged,
    };
    if allowed { Ok(()) } else { Err(Error::Forbidden("do this on the platform with your current role".into())) }
}

/// The permission × role table as Markdown, for the documentation.
pub fn permission_table_markdown() -> String {
    let mut out = String::from("| permission | token scope |");
    for r in Role::ALL {
        out.push_str(&format!(" {} |", r.as_str()));
    }
    out.push_str("\n|---|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for perm in Permission::ALL {
        let scope = perm.scope().map(Scope::as_str).unwrap_or("(session only)");
        out.push_str(&format!("| {} | {} |", perm.describe(), scope));
        for r in Role::ALL {
            let cell = match (role_allows(r, perm), perm.is_matter_scoped(), r.works_matters()) {
                (false, _, _) => "no",
                (true, true, false) => "if on the matter's list",
                (true, _, _) => "yes",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, via: Via) -> Principal {
        Principal {
            tenant_id: TenantId::new(),
            user_id: UserId::new(),
            email: "a@example.com".into(),
            display_name: "A".into(),
            role,
            via,
            second_factor: SecondFactor::default(),
        }
    }

    #[test]
    fn only_the_command_line_imports_a_firm() {
        let owner = principal(Role::Owner, session());
        let new = TenantId::new();
        assert!(matches!(import_reach(&owner, new), Err(Error::Forbidden(_))));
        let cli = Principal { user_id: UserId::from_uuid(uuid::Uuid::nil()), ..principal(Role::Owner, Via::Cli) };
        let reach = import_reach(&cli, new).unwrap();
        assert_eq!(import_matter(&reach, MatterId::new()).unwrap().tenant_id(), new);
        // A user's own grant to create matters opens no matter through the import's door.
        let mine = authorize_tenant(&owner, Permission::CreateMatter).unwrap();
        assert!(import_matter(&mine, MatterId::new()).is_err());
    }

    #[test]
    fn nobody_reviews_themselves_while_someone_else_can() {
        let p = principal(Role::Admin, session());
        let other = UserId::new();
        assert!(may_review(&p, other, true).is_ok() && may_review(&p, other, false).is_ok());
        assert!(matches!(may_review(&p, p.user_id, true), Err(Error::Forbidden(_))));
        assert!(may_review(&p, p.user_id, false).is_ok(), "a sole admin can clear their own");
    }

    #[test]
    fn protection_voids_checks_made_up_to_its_start() {
        let since = time::macros::datetime!(2026-11-24 12:00 UTC);
        for (at, kept) in [(since - Duration::seconds(1), false), (since, false), (since + Duration::seconds(1), true)]
        {
            let mut sf = SecondFactor { enrol_required: false, verified_at: Some(at) };
            protection_resets_step_up(&mut sf, Some(since));
            assert_eq!(sf.verified_at.is_some(), kept, "check at {at}");
            protection_resets_step_up(&mut sf, None);
            assert_eq!(sf.verified_at.is_some(), kept, "no protection changes nothing");
        }
    }

    #[test]
    fn step_up_needs_a_recent_check_only_of_users_with_a_factor() {
        let now = time::macros::datetime!(2026-11-24 12:00 UTC);
        let mut p = principal(Role::Staff, session());
        assert!(step_up(&p, false, now).is_ok(), "nothing to step up with");
        assert!(matches!(step_up(&p, true, now), Err(Error::StepUpRequired)));
        p.second_factor.verified_at = Some(now - Duration::minutes(9));
        assert!(step_up(&p, true, now).is_ok());
        p.second_factor.verified_at = Some(now - Duration::minutes(11));
        assert!(matches!(step_up(&p, true, now), Err(Error::StepUpRequired)));
        assert!(step_up(&principal(Role::Owner, Via::Cli), true, now).is_ok());
    }

    #[test]
    fn a_session_that_must_enrol_may_only_enrol() {
        for role in Role::ALL {
            let mut p = principal(role, session());
            p.second_factor.enrol_required = true;
            for perm in Permission::ALL {
                let r = if perm.is_matter_scoped() {
                    let facts = MatterFacts {
                        tenant_id: p.tenant_id,
                        matter_id: MatterId::new(),
                        membership: Some(role),
                        restricted: false,
                    };
                    authorize_matter(&p, perm, &facts).map(|_| ())
                } else {
                    authorize_tenant(&p, perm).map(|_| ())
                };
                if matches!(perm, Permission::ManageOwnFactors | Permission::ManageOwnSessions) {
                    assert!(r.is_ok(), "{role:?} could not enrol");
                } else {
                    assert!(matches!(r, Err(Error::EnrolmentRequired)), "{role:?} {perm:?}: {r:?}");
                }
            }
        }
    }

    fn session() -> Via {
        Via::Session { csrf_token: "x".into(), session_hash: "h".into() }
    }

    #[test]
    fn other_tenants_matter_is_not_found_for_every_role() {
        for role in Role::ALL {
            let p = principal(role, session());
            let facts = MatterFacts {
                tenant_id: TenantId::new(),
                matter_id: MatterId::new(),
                membership: Some(Role::Client),
                restricted: false,
            };
            assert!(matches!(authorize_matter(&p, Permission::ViewMatter, &facts), Err(Error::NotFound)));
        }
    }

    #[test]
    fn client_sees_only_listed_matters() {
        let p = principal(Role::Client, session());
        let mut facts =
            MatterFacts { tenant_id: p.tenant_id, matter_id: MatterId::new(), membership: None, restricted: false };
        assert!(matches!(authorize_matter(&p, Permission::ReadDocument, &facts), Err(Error::NotFound)));
        facts.membership = Some(Role::Client);
        assert!(authorize_matter(&p, Permission::ReadDocument, &facts).is_ok());
        assert!(matches!(authorize_matter(&p, Permission::ManageMembers, &facts), Err(Error::Forbidden(_))));
        assert_eq!(authorize_matter_list(&p).unwrap().visibility(), MatterVisibility::MemberOf(p.user_id));
    }

    #[test]
    fn token_scopes_limit_what_a_role_allows() {
        let p = principal(Role::Owner, Via::Token { id: crate::ids::TokenId::new(), scopes: vec![Scope::Read] });
        assert!(authorize_tenant(&p, Permission::ListMatters).is_ok());
        assert!(matches!(authorize_tenant(&p, Permission::CreateMatter), Err(Error::Forbidden(_))));
        assert!(matches!(authorize_tenant(&p, Permission::ManageUsers), Err(Error::Forbidden(_))));
        assert!(matches!(authorize_tenant(&p, Permission::ManageOwnTokens), Err(Error::Forbidden(_))));
        // Scopes do not imply each other: a write token cannot read back what it uploads.
        let w = principal(Role::Owner, Via::Token { id: crate::ids::TokenId::new(), scopes: vec![Scope::Write] });
        assert!(authorize_tenant(&w, Permission::CreateMatter).is_ok());
        assert!(matches!(authorize_tenant(&w, Permission::ListMatters), Err(Error::Forbidden(_))));
        let a = principal(Role::Owner, Via::Token { id: crate::ids::TokenId::new(), scopes: vec![Scope::Admin] });
        assert!(authorize_tenant(&a, Permission::ManageUsers).is_ok());
        assert!(matches!(authorize_tenant(&a, Permission::ListUsers), Err(Error::Forbidden(_))));
    }

    #[test]
    fn a_token_may_only_name_scopes_its_role_can_use() {
        assert_eq!(usable_scopes(Role::Owner), Scope::ALL.to_vec());
        assert_eq!(usable_scopes(Role::Staff), vec![Scope::Read, Scope::Write]);
        assert_eq!(usable_scopes(Role::Client), vec![Scope::Read, Scope::Write]);
        assert_eq!(usable_scopes(Role::Auditor), vec![Scope::Read]);
    }

    #[test]
    fn a_restricted_matter_is_seen_by_its_list_alone() {
        for role in Role::ALL {
            let p = principal(role, session());
            let mut facts =
                MatterFacts { tenant_id: p.tenant_id, matter_id: MatterId::new(), membership: None, restricted: true };
            assert!(
                matches!(authorize_matter(&p, Permission::ViewMatter, &facts), Err(Error::NotFound)),
                "{role:?} sees a restricted matter it is not on"
            );
            facts.membership = Some(if role == Role::Client { Role::Client } else { Role::Staff });
            assert_eq!(authorize_matter(&p, Permission::ViewMatter, &facts).is_ok(), role != Role::Auditor, "{role:?}");
        }
    }

    #[test]
    fn auditors_read_the_audit_log_and_no_client_content() {
        let p = principal(Role::Auditor, session());
        assert!(authorize_tenant(&p, Permission::ReadAudit).is_ok());
        for perm in [Permission::ListMatters, Permission::ListUsers, Permission::CreateMatter] {
            assert!(matches!(authorize_tenant(&p, perm), Err(Error::Forbidden(_))), "{perm:?}");
        }
        let facts =
            MatterFacts { tenant_id: p.tenant_id, matter_id: MatterId::new(), membership: None, restricted: false };
        assert!(matches!(authorize_matter(&p, Permission::ReadDocument, &facts), Err(Error::NotFound)));
        assert!(authorize_tenant(&principal(Role::Staff, session()), Permission::ReadAudit).is_err());
    }

    #[test]
    fn role_changes_follow_the_four_eyes_rules() {
        let owner = principal(Role::Owner, session());
        let admin = principal(Role::Admin, session());
        let staff = principal(Role::Staff, session());
        assert_eq!(may_change_role(&owner, Role::Staff, Role::Admin).unwrap(), RoleChangeRule::NeedsApproval);
        assert_eq!(may_change_role(&owner, Role::Staff, Role::Owner).unwrap(), RoleChangeRule::NeedsApproval);
        assert_eq!(may_change_role(&admin, Role::Staff, Role::Admin).unwrap(), RoleChangeRule::NeedsApproval);
        assert_eq!(may_change_role(&admin, Role::Staff, Role::Client).unwrap(), RoleChangeRule::Direct);
        assert!(matches!(may_change_role(&admin, Role::Staff, Role::Owner), Err(Error::Forbidden(_))));
        assert!(matches!(may_change_role(&admin, Role::Admin, Role::Staff), Err(Error::Forbidden(_))));
        assert!(matches!(may_change_role(&owner, Role::Owner, Role::Staff), Err(Error::Forbidden(_))));
        assert!(matches!(may_change_role(&staff, Role::Client, Role::Staff), Err(Error::Forbidden(_))));
        assert!(matches!(may_change_role(&owner, Role::Staff, Role::Staff), Err(Error::Invalid { .. })));
        assert!(may_create_user(&admin, Role::Admin).is_err());
        assert!(may_create_user(&principal(Role::Owner, Via::Cli), Role::Admin).is_ok());
        assert!(may_create_user(&principal(Role::Owner, Via::Cli), Role::Owner).is_err());
    }

    #[test]
    fn staff_cannot_manage_users() {
        let p = principal(Role::Staff, session());
        assert!(matches!(authorize_tenant(&p, Permission::ManageUsers), Err(Error::Forbidden(_))));
        assert!(authorize_tenant(&p, Permission::CreateMatter).is_ok());
    }

    #[test]
    fn documentation_shows_the_current_table() {
        let doc = include_str!("../../../docs/permissions.md");
        let expected = format!("<!-- generated:begin -->\n{}<!-- generated:end -->", permission_table_markdown());
        assert!(
            doc.contains(&expected),
            "docs/permissions.md is stale; put this between the generated markers:\n{expected}"
        );
    }

    #[test]
    fn table_has_a_row_per_permission() {
        let t = permission_table_markdown();
        assert_eq!(t.lines().count(), 2 + Permission::ALL.len());
    }
}
