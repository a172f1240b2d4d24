//! Separation of duties (four eyes). Sensitive actions — making someone an owner or admin,
//! lowering the firm's two-factor requirement — do not happen when asked: they become a
//! request, and take effect only when a second, different owner or admin approves it, in the
//! approval's own transaction. Requests expire; every step is audited, refusals included.

use super::{Portal, actor};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::error::{Error, Result};
use crate::ids::{ApprovalId, UserId};
use crate::model::{ApprovalRequest, ApprovalState, Role, SensitiveAction};
use crate::policy::can;
use crate::policy::{self, Principal};
use crate::ports::Tx;
use time::Duration;

/// A request not approved within this time can no longer be.
pub const APPROVAL_TTL: Duration = Duration::hours(24);

/// What asking for a change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Not sensitive: done at once.
    Applied,
    /// Sensitive: waiting for a second person.
    Requested(ApprovalRequest),
}

impl Portal {
    /// Change a user's role. Making someone an owner or admin becomes a request for a second
    /// person's approval; other changes happen at once. An owner's role is not changed here.
    pub async fn change_role(&self, p: &Principal, user: UserId, role: &str, meta: &RequestMeta) -> Result<Change> {
        match self.try_change_role(p, user, role, meta).await {
            Err(e @ Error::Forbidden(_)) => {
                self.audit_refusal(p, Action::UserRoleChangeRefused, Target::User(user), &e, meta).await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn try_change_role(&self, p: &Principal, user: UserId, role: &str, meta: &RequestMeta) -> Result<Change> {
        policy::authorize_tenant::<can::ManageUsers>(p)?;
        let role = Role::parse(role)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let target = tx.users().user(p.tenant_id, user).await?.ok_or(Error::NotFound)?;
        if policy::may_change_role(p, target.role, role)? == policy::RoleChangeRule::NeedsApproval {
            let req = self.request(&mut *tx, p, SensitiveAction::GrantRole { user_id: user, role }, meta).await?;
            tx.commit().await?;
            return Ok(Change::Requested(req));
        }
        let grant = policy::authorize_tenant::<can::ManageUsers>(p)?;
        let left = self.apply_role(&mut *tx, &grant, user, target.role, role).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::UserRoleChange, Target::User(user), meta)
            .with_detail(role_change(target.role, role, None, left));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        Ok(Change::Applied)
    }

    /// Record a request for `action`, in `tx`.
    pub(super) async fn request(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        action: SensitiveAction,
        meta: &RequestMeta,
    ) -> Result<ApprovalRequest> {
        let now = self.clock.now();
        let req = ApprovalRequest {
            id: ApprovalId::new(),
            tenant_id: p.tenant_id,
            action,
            requested_by: p.user_id,
            requested_at: now,
            expires_at: now + APPROVAL_TTL,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
        };
        tx.approvals().insert_approval(&req).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::ApprovalRequest, Target::Approval(req.id), meta)
            .with_detail(serde_json::json!({ "action": &req.action }));
        tx.audit().append_audit(&ev, now).await?;
        Ok(req)
    }

    /// The firm's requests, newest first (owners and admins).
    pub async fn list_approvals(&self, p: &Principal) -> Result<Vec<ApprovalRequest>> {
        policy::authorize_tenant::<can::DecideApprovals>(p)?;
        self.read().await?.approvals().list_approvals(p.tenant_id, 100).await
    }

    /// Approve another person's request: its action is carried out now, in this transaction.
    pub async fn approve(&self, p: &Principal, id: ApprovalId, meta: &RequestMeta) -> Result<ApprovalRequest> {
        self.decide(p, id, ApprovalState::Approved, meta).await
    }

    /// Reject another person's request.
    pub async fn reject(&self, p: &Principal, id: ApprovalId, meta: &RequestMeta) -> Result<ApprovalRequest> {
        self.decide(p, id, ApprovalState::Rejected, meta).await
    }

    async fn decide(
        &self,
        p: &Principal,
        id: ApprovalId,
        state: ApprovalState,
        meta: &RequestMeta,
    ) -> Result<ApprovalRequest> {
        // Who may decide is asked below, so that a refusal of any kind is audited.
        let mut tx = self.write().await?;
        let req = tx.approvals().approval(p.tenant_id, id).await?.ok_or(Error::NotFound)?;
        let now = self.clock.now();
        let refusal = match policy::may_decide(p, &req) {
            Err(e) => Some(e),
            Ok(()) if req.state != ApprovalState::Pending => {
                Some(Error::Conflict(format!("A decision on this request ({})", req.state.as_str()).into()))
            }
            Ok(()) if now > req.expires_at => Some(Error::RequestExpired),
            Ok(()) => match self.require_step_up(&mut *tx, p).await {
                Err(e) => Some(e),
                // The rules are asked again as things stand now: a requester who lost the
                // right since asking (demoted, deactivated) no longer has it, and neither has
                // their request.
                Ok(()) if state == ApprovalState::Approved => self.still_allowed(&mut *tx, &req).await.err(),
                Ok(()) => None,
            },
        };
        if let Some(e) = refusal {
            drop(tx);
            self.audit_refusal(p, Action::ApprovalRefused, Target::Approval(id), &e, meta).await?;
            return Err(e);
        }
        if !tx.approvals().decide_approval(p.tenant_id, id, state, p.user_id, now).await? {
            return Err(Error::Conflict("A decision on this request".into()));
        }
        if state == ApprovalState::Approved {
            self.carry_out(&mut *tx, p, &req, meta).await?;
        }
        let action = if state == ApprovalState::Approved { Action::ApprovalApprove } else { Action::ApprovalReject };
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), action, Target::Approval(id), meta)
            .with_detail(serde_json::json!({ "action": &req.action, "requested_by": req.requested_by.to_string() }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(ApprovalRequest { state, decided_by: Some(p.user_id), decided_at: Some(now), ..req })
    }

    /// Do what an approved request asked, as its approver.
    async fn carry_out(&self, tx: &mut dyn Tx, p: &Principal, req: &ApprovalRequest, meta: &RequestMeta) -> Result<()> {
        let now = self.clock.now();
        match &req.action {
            SensitiveAction::GrantRole { user_id, role } => {
                let user = tx.users().user(p.tenant_id, *user_id).await?.ok_or(Error::NotFound)?;
                let grant = policy::authorize_tenant::<can::ManageUsers>(p)?;
                let left = self.apply_role(tx, &grant, *user_id, user.role, *role).await?;
                let ev =
                    NewEvent::new(Some(p.tenant_id), actor(p), Action::UserRoleChange, Target::User(*user_id), meta)
                        .with_detail(role_change(user.role, *role, Some(&approval_of(req, p)), left));
                tx.audit().append_audit(&ev, now).await
            }
            SensitiveAction::ReactivateUser { user_id } => {
                self.apply_reactivation(tx, p, *user_id, Some(&approval_of(req, p)), meta).await
            }
            SensitiveAction::TwoFactorPolicy { staff, clients } => {
                self.apply_two_factor_policy(tx, p, *staff, *clients, Some(&approval_of(req, p)), meta).await
            }
            // Recorded and committed here, with the approval; the lifecycle job destroys the
            // data (blobs cannot be deleted inside a database transaction).
            SensitiveAction::EraseTenant => {
                let tenant = tx.tenants().tenant(p.tenant_id).await?.ok_or(Error::NotFound)?;
                self.begin_erasure(tx, &tenant, super::erasure::Requested::customer(req, p, now)).await
            }
            SensitiveAction::ExportTenant { recipient } => self.approve_export(tx, p, req, recipient, meta).await,
        }
    }
}

impl Portal {
    /// Whether the requester of `req` may still ask for it, by the policy as it stands now:
    /// they must still be an active user whose role allows the request, and the request must
    /// still fit its subject (a role change is judged against the user's role now).
    async fn still_allowed(&self, tx: &mut dyn Tx, req: &ApprovalRequest) -> Result<()> {
        let gone = || Error::Forbidden("carry out this request: its requester may no longer ask for it".into());
        let requester = tx.users().user(req.tenant_id, req.requested_by).await?;
        let Some(requester) = requester.filter(|u| u.status == crate::model::UserStatus::Active) else {
            return Err(gone());
        };
        // The requester as they stand now, asking in a session (requests are made in sessions).
        let asking = super::accounts::principal_of(
            requester,
            policy::Via::Session { csrf_token: String::new(), session_hash: String::new() },
        );
        let allowed = match &req.action {
            SensitiveAction::GrantRole { user_id, role } => {
                let user = tx.users().user(req.tenant_id, *user_id).await?.ok_or(Error::NotFound)?;
                policy::may_change_role(&asking, user.role, *role).map(|_| ())
            }
            SensitiveAction::ReactivateUser { user_id } => {
                let user = tx.users().user(req.tenant_id, *user_id).await?.ok_or(Error::NotFound)?;
                if user.status != crate::model::UserStatus::Disabled {
                    return Err(Error::WrongState("the user is no longer deactivated".into()));
                }
                policy::may_reactivate(&asking, user.role).map(|_| ())
            }
            SensitiveAction::TwoFactorPolicy { .. } => {
                policy::authorize_tenant::<can::ManageTenantSecurity>(&asking).map(|_| ())
            }
            SensitiveAction::EraseTenant => policy::authorize_tenant::<can::RequestErasure>(&asking).map(|_| ()),
            SensitiveAction::ExportTenant { .. } => policy::authorize_tenant::<can::ExportTenant>(&asking).map(|_| ()),
        };
        allowed.map_err(|e| match e {
            Error::Forbidden(_) => gone(),
            other => other,
        })
    }
}

/// The change record's account of a request approved by `p`, who carries it out.
fn approval_of(req: &ApprovalRequest, p: &Principal) -> crate::changes::Approval {
    crate::changes::Approval {
        id: req.id.to_string(),
        requested_by: Actor::User(req.requested_by).to_stored(),
        approved_by: actor(p).to_stored(),
    }
}

/// The detail of a `user.role_change` (a change record), with how many matter lists the user
/// was taken off.
fn role_change(
    from: Role,
    to: Role,
    approval: Option<&crate::changes::Approval>,
    lists_left: u64,
) -> serde_json::Value {
    let mut detail = crate::changes::detail(
        serde_json::json!({ "role": from.as_str() }),
        serde_json::json!({ "role": to.as_str() }),
        approval,
    );
    if let Some(d) = detail.as_object_mut() {
        d.insert("memberships_removed".into(), lists_left.into());
    }
    detail
}
