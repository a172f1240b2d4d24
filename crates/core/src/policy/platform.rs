//! What platform operators may do. None of it reaches tenant content: operators never get a
//! tenant principal, so no tenant permission can be granted to them.

use crate::error::{Error, Result};
use time::OffsetDateTime;

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
