//! The rules beside the permission table: flagged documents, download caps, source blocks,
//! protected accounts, network lists, reviews of oneself, user creation, role changes and
//! four-eyes decisions.

use super::{Principal, SecondFactor, TenantGrant, Via, authorize_tenant, can, rises_in_reach};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{ApprovalRequest, FlagState, Role, SensitiveAction};
use time::OffsetDateTime;

/// Who may see and download a document the DLP scan flagged. A document held for review
/// (quarantined) is downloaded by owners and admins only, until one of them releases it; one
/// blocked from clients, and a held one, do not exist for client users at all (listed or
/// fetched, they are `NotFound`). Matter access is decided first, by [`super::authorize_matter`].
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

/// Which role a user may be created with. Owners come only with their tenant; admin rights are
/// granted to an existing user with a second person's approval, except from the command line
/// (the machine's holder), so a one-owner firm can get its second admin.
pub fn may_create_user(p: &Principal, role: Role) -> Result<TenantGrant<can::ManageUsers>> {
    let grant = authorize_tenant::<can::ManageUsers>(p)?;
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
/// admin's only by an owner; only an owner asks to make someone an owner, and only owners and
/// admins ask for the admin role. Any change that widens the user's reach (see
/// [`rises_in_reach`]: a client made staff or an auditor, staff made an auditor or an admin, …)
/// waits for a second owner or admin; one that narrows it happens at once. Checked again when
/// an approved request is carried out, against the requester's role then.
pub fn may_change_role(p: &Principal, from: Role, to: Role) -> Result<RoleChangeRule> {
    authorize_tenant::<can::ManageUsers>(p)?;
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
        _ if rises_in_reach(from, to) => Ok(RoleChangeRule::NeedsApproval),
        _ => Ok(RoleChangeRule::Direct),
    }
}

/// Four eyes: a request is decided by an owner or admin other than its requester; making
/// someone an owner is approved by an owner.
pub fn may_decide(p: &Principal, req: &ApprovalRequest) -> Result<()> {
    authorize_tenant::<can::DecideApprovals>(p)?;
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

/// Decide deactivating `target` (whose role is `role`): owners and admins do it, never to
/// themselves (the firm would lose the person who can undo it), an admin's or owner's only by
/// an owner. Lowering reach needs no second person.
pub fn may_deactivate(p: &Principal, target: UserId, role: Role) -> Result<TenantGrant<can::ManageUsers>> {
    let grant = authorize_tenant::<can::ManageUsers>(p)?;
    if target == p.user_id {
        return Err(Error::invalid("user", "you cannot deactivate yourself: ask another owner or admin"));
    }
    if matches!(role, Role::Owner | Role::Admin) && p.role != Role::Owner {
        return Err(Error::Forbidden(format!("deactivate an {} (an owner must)", role.as_str()).into()));
    }
    Ok(grant)
}

/// Decide reactivating a user of `role`: giving access back is a rise in reach, so anyone but
/// a client waits for a second owner or admin (see [`may_change_role`]); an admin or owner is
/// reactivated only at an owner's request.
pub fn may_reactivate(p: &Principal, role: Role) -> Result<RoleChangeRule> {
    authorize_tenant::<can::ManageUsers>(p)?;
    if matches!(role, Role::Owner | Role::Admin) && p.role != Role::Owner {
        return Err(Error::Forbidden(format!("reactivate an {} (an owner must)", role.as_str()).into()));
    }
    // The command line is the machine's holder, who could change the database anyway; it is
    // how a firm locked out of its last admin recovers.
    Ok(if role == Role::Client || p.via == Via::Cli { RoleChangeRule::Direct } else { RoleChangeRule::NeedsApproval })
}

/// Whether a change of role from `from` to `to` takes the user off every matter's list: when
/// it crosses the line between the firm's people and its clients, or between those who work
/// matters and those who do not. A list entry made for one kind of person must not carry over
/// to another (a partner demoted to client keeps no restricted matter).
pub fn role_change_clears_memberships(from: Role, to: Role) -> bool {
    from.is_staff_side() != to.is_staff_side() || from.works_matters() != to.works_matters()
}
