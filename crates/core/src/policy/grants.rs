//! Grants: proof, made only here, that the policy allowed one permission — on one matter, on
//! the firm, or on the matters the caller may see. Their type names the permission
//! (`MatterGrant<can::ReleaseHeld…>`), so a store method that asks for a grant to delete a held
//! document of a matter cannot be handed a grant to view it.

use super::{Permission, Principal, Via, can, check_enrolment, check_scope, role_allows};
use crate::error::{Error, Result};
use crate::ids::{MatterId, TenantId, UserId};
use crate::model::{ExportState, TenantExport};
use std::marker::PhantomData;

/// Keeps the permission types to the ones `can` declares.
pub trait Sealed {}

/// A permission as a type (see [`can`]).
pub trait Action: Sealed + Send + Sync + 'static {
    const PERMISSION: Permission;
}
/// A permission on one matter: its list and its ethical wall count.
pub trait MatterAction: Action {}
/// A permission on the whole firm.
pub trait TenantAction: Action {}
/// A permission over the firm's matters, filtered by what the caller may see.
pub trait ListAction: Action {}
/// What an approved export of the whole firm reads.
pub trait ExportRead: Action {}
/// What an import of an export archive writes into the new firm.
pub trait ImportWrite: Action {}

/// Proof that the caller may perform `A` on the whole firm.
#[derive(Debug)]
pub struct TenantGrant<A: TenantAction> {
    tenant_id: TenantId,
    actor: UserId,
    _a: PhantomData<fn() -> A>,
}

impl<A: TenantAction> TenantGrant<A> {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn actor(&self) -> UserId {
        self.actor
    }
}

/// Which matters a caller may see.
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

/// Proof that the caller may perform `A` over the firm's matters, and which of them it sees.
/// A store method taking it filters by [`MatterListGrant::visibility`].
#[derive(Debug)]
pub struct MatterListGrant<A: ListAction> {
    tenant_id: TenantId,
    visibility: MatterVisibility,
    _a: PhantomData<fn() -> A>,
}

impl<A: ListAction> MatterListGrant<A> {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn visibility(&self) -> MatterVisibility {
        self.visibility
    }
}

/// Proof that the caller may perform `A` on one matter.
#[derive(Debug)]
pub struct MatterGrant<A: MatterAction> {
    tenant_id: TenantId,
    matter_id: MatterId,
    actor: UserId,
    _a: PhantomData<fn() -> A>,
}

impl<A: MatterAction> MatterGrant<A> {
    fn new(tenant_id: TenantId, matter_id: MatterId, actor: UserId) -> Self {
        Self { tenant_id, matter_id, actor, _a: PhantomData }
    }
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn matter_id(&self) -> MatterId {
        self.matter_id
    }
    pub fn actor(&self) -> UserId {
        self.actor
    }
}

/// The facts about one matter the policy needs, loaded by the caller from the caller's own tenant.
#[derive(Debug, Clone, Copy)]
pub struct MatterFacts {
    pub tenant_id: TenantId,
    pub matter_id: MatterId,
    /// The caller's role on the matter's list, if listed.
    pub membership: Option<crate::model::Role>,
    /// Behind an ethical wall: only its list sees it.
    pub restricted: bool,
}

/// Decide a firm-wide permission.
pub fn authorize_tenant<A: TenantAction>(p: &Principal) -> Result<TenantGrant<A>> {
    let perm = A::PERMISSION;
    check_enrolment(p, perm)?;
    if !role_allows(p.role, perm) {
        return Err(Error::Forbidden(perm.describe().into()));
    }
    check_scope(p, perm)?;
    Ok(TenantGrant { tenant_id: p.tenant_id, actor: p.user_id, _a: PhantomData })
}

/// Decide a permission over the firm's matters. Clients see the matters whose list holds them;
/// everyone else allowed `A` sees every unrestricted matter and the restricted ones whose list
/// holds them: an ethical wall binds owners, admins and auditors too.
pub fn authorize_list<A: ListAction>(p: &Principal) -> Result<MatterListGrant<A>> {
    let perm = A::PERMISSION;
    check_enrolment(p, perm)?;
    if !role_allows(p.role, perm) {
        return Err(Error::Forbidden(perm.describe().into()));
    }
    check_scope(p, perm)?;
    let visibility = if p.role.is_staff_side() {
        MatterVisibility::Unrestricted(p.user_id)
    } else {
        MatterVisibility::MemberOf(p.user_id)
    };
    Ok(MatterListGrant { tenant_id: p.tenant_id, visibility, _a: PhantomData })
}

/// Decide a permission on one matter. A matter the caller may not see at all is `NotFound`, so
/// its existence is not revealed; one they can see but not act on is `Forbidden`.
pub fn authorize_matter<A: MatterAction>(p: &Principal, m: &MatterFacts) -> Result<MatterGrant<A>> {
    let perm = A::PERMISSION;
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
    if !role_allows(p.role, perm) {
        return Err(Error::Forbidden(perm.describe().into()));
    }
    check_scope(p, perm)?;
    Ok(MatterGrant::new(p.tenant_id, m.matter_id, p.user_id))
}

/// The grant to put a matter's creator on its list, right after creating it (a restricted
/// matter is invisible to everyone not on its list, its creator included, until then).
pub fn creator_membership(grant: &TenantGrant<can::CreateMatter>, matter: MatterId) -> MatterGrant<can::ManageMembers> {
    MatterGrant::new(grant.tenant_id, matter, grant.actor)
}

/// What an approved export of the whole firm may read: every user, and every matter with its
/// members, documents and messages, restricted matters included, since the data is the firm's
/// and its owner asked for all of it with a second owner or admin agreeing (the ethical wall
/// separates people inside the firm, not the firm from its own data). Nothing else reaches
/// [`MatterVisibility::WholeFirm`].
pub fn export_reach(x: &TenantExport) -> Result<(TenantGrant<can::ListUsers>, MatterListGrant<can::ListMatters>)> {
    if x.state != ExportState::Pending {
        return Err(Error::WrongState(format!("the export is {}", x.state.as_str()).into()));
    }
    Ok((
        TenantGrant { tenant_id: x.tenant_id, actor: x.approved_by, _a: PhantomData },
        MatterListGrant { tenant_id: x.tenant_id, visibility: MatterVisibility::WholeFirm, _a: PhantomData },
    ))
}

/// One matter's share of an approved export (see [`export_reach`]): reading only.
pub fn export_matter<A: MatterAction + ExportRead>(
    reach: &MatterListGrant<can::ListMatters>,
    matter: MatterId,
    actor: UserId,
) -> Result<MatterGrant<A>> {
    if reach.visibility != MatterVisibility::WholeFirm {
        return Err(Error::internal("an export's matter grant needs the export's reach"));
    }
    Ok(MatterGrant::new(reach.tenant_id, matter, actor))
}

/// What an import of an export archive into a new firm may write: the firm's matters and
/// everything in them. Only the command line imports (the machine's holder, who also holds the
/// archive's identity); the new firm does not exist yet, so no user of it can ask. The reach is
/// a type of its own, so no user's grant opens a matter through the import's door.
#[derive(Debug)]
pub struct ImportReach {
    tenant_id: TenantId,
    actor: UserId,
}

impl ImportReach {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    /// The grant to create the imported firm's matters.
    pub fn matters(&self) -> TenantGrant<can::CreateMatter> {
        TenantGrant { tenant_id: self.tenant_id, actor: self.actor, _a: PhantomData }
    }
}

/// Decide an import into `new_tenant` (see [`ImportReach`]).
pub fn import_reach(p: &Principal, new_tenant: TenantId) -> Result<ImportReach> {
    if p.via != Via::Cli {
        return Err(Error::Forbidden("import a firm (only from the command line)".into()));
    }
    Ok(ImportReach { tenant_id: new_tenant, actor: p.user_id })
}

/// One matter's share of an import (see [`import_reach`]): writing only.
pub fn import_matter<A: MatterAction + ImportWrite>(reach: &ImportReach, matter: MatterId) -> MatterGrant<A> {
    MatterGrant::new(reach.tenant_id, matter, reach.actor)
}

/// Whose audit events a search may return: a firm's chain seen through its reader's walls
/// (events of a restricted matter the reader is not on are left out, as the matter is), or the
/// platform's own chain, which names no tenant content.
#[derive(Debug)]
pub enum AuditReach {
    Firm(MatterListGrant<can::ReadAudit>),
    Platform,
}

impl AuditReach {
    /// The chain's key (see `crate::audit::chain_key`).
    pub fn chain(&self) -> String {
        match self {
            AuditReach::Firm(g) => crate::audit::chain_key(Some(g.tenant_id)),
            AuditReach::Platform => crate::audit::chain_key(None),
        }
    }

    /// The matters whose events the reader sees; `None` for the platform chain.
    pub fn walls(&self) -> Option<MatterVisibility> {
        match self {
            AuditReach::Firm(g) => Some(g.visibility),
            AuditReach::Platform => None,
        }
    }
}

/// What a tenant-key rotation may touch: every document's stored copy and every sealed value of
/// one firm, to re-encrypt them under the rotation's target key version. Made only from an
/// open rotation (started by an operator's or the firm's key command, resumed by the servers),
/// so the re-encryption job is the one path to the firm's documents that no person's grant
/// opens, and it ends with the rotation.
#[derive(Debug)]
pub struct RotationReach {
    tenant_id: TenantId,
    target: u32,
}

impl RotationReach {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    /// The key version everything is re-encrypted to.
    pub fn target(&self) -> u32 {
        self.target
    }
}

/// The reach of an open rotation (see [`RotationReach`]); a finished one reaches nothing.
pub fn rotation_reach(r: &crate::model::KeyRotation) -> Result<RotationReach> {
    if r.finished_at.is_some() {
        return Err(Error::WrongState("the rotation is finished".into()));
    }
    Ok(RotationReach { tenant_id: r.tenant_id, target: r.target_version })
}
