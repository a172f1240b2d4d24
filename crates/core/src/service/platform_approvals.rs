//! Four eyes on the platform: a sensitive platform action is requested by one privileged
//! (vetted) operator and approved by another before it is carried out, once. Rotating the master
//! key is then carried out by the command line (`keys rotate-master --approval ID`); ending a
//! firm's subscription is carried out by the approval itself, in its transaction, so there is no
//! approved-but-not-done state to forget. Requests expire after [`APPROVAL_TTL`]; every request,
//! decision, refusal and use is audited on the platform chain.

use super::{APPROVAL_TTL, Portal};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::error::{Error, Result};
use crate::ids::ApprovalId;
use crate::model::{ApprovalState, PlatformAction, PlatformApproval};
use crate::policy::{self, OperatorPrincipal, PlatformPermission};
use crate::ports::Tx;

impl Portal {
    /// Ask for a sensitive platform action; a second privileged operator must approve it.
    pub async fn request_platform_action(
        &self,
        op: &OperatorPrincipal,
        action: &str,
        meta: &RequestMeta,
    ) -> Result<PlatformApproval> {
        let now = self.clock.now();
        if let Err(e) = policy::authorize_platform(op, PlatformPermission::ApprovePlatformActions, now) {
            return Err(self.operator_refused(op, "request_platform_action", e).await?);
        }
        let action = PlatformAction::parse(action)?;
        let mut tx = self.write().await?;
        let req = insert_request(&mut *tx, op, action, meta, now).await?;
        tx.commit().await?;
        Ok(req)
    }

    /// The platform's requests, newest first (privileged operators).
    pub async fn list_platform_approvals(&self, op: &OperatorPrincipal) -> Result<Vec<PlatformApproval>> {
        policy::authorize_platform(op, PlatformPermission::ApprovePlatformActions, self.clock.now())?;
        self.read().await?.operators().list_platform_approvals(200).await
    }

    /// Approve or reject another operator's pending request. Approving a request to end a
    /// subscription ends it here, in this transaction, after checking again that the firm is
    /// still active (else a `wrong_state` refusal, audited, and nothing changes).
    pub async fn decide_platform_action(
        &self,
        op: &OperatorPrincipal,
        id: ApprovalId,
        approve: bool,
        meta: &RequestMeta,
    ) -> Result<PlatformApproval> {
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let req = tx.operators().platform_approval(id).await?.ok_or(Error::NotFound)?;
        if let Err(e) = policy::may_decide_platform(op, &req, now) {
            drop(tx);
            return Err(self.operator_refused(op, "decide_platform_action", e).await?);
        }
        if req.state != ApprovalState::Pending {
            return Err(Error::Conflict("A decision on this request".into()));
        }
        if now >= req.expires_at {
            return Err(Error::RequestExpired);
        }
        // What the approval carries out is checked before anything is decided: a refusal
        // leaves the request pending and the firm as it was.
        let firm = match (approve, req.action) {
            (true, PlatformAction::EndSubscription(tenant)) => {
                match self.endable_for_approval(&mut *tx, op, tenant, now).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        drop(tx);
                        return Err(self.operator_refused(op, "approve_end_subscription", e).await?);
                    }
                }
            }
            _ => None,
        };
        let state = if approve { ApprovalState::Approved } else { ApprovalState::Rejected };
        if !tx.operators().decide_platform_approval(id, state, op.operator.id, now).await? {
            return Err(Error::Conflict("A decision on this request".into()));
        }
        let mut decided =
            PlatformApproval { state, decided_by: Some(op.operator.id), decided_at: Some(now), ..req.clone() };
        let by = Actor::Operator(op.operator.id);
        let action = if approve { Action::PlatformApprovalApproved } else { Action::PlatformApprovalRejected };
        approval_event(&mut *tx, by, action, &decided, meta, now).await?;
        if let Some(t) = firm {
            self.end_approved(&mut *tx, t, &decided, meta).await?;
            if !tx.operators().use_platform_approval(id, now).await? {
                return Err(Error::Conflict("A use of this approval".into()));
            }
            decided.used_at = Some(now);
            approval_event(&mut *tx, by, Action::PlatformApprovalUsed, &decided, meta, now).await?;
        }
        tx.commit().await?;
        Ok(decided)
    }

    /// Spend an approval of `action` (command line, just before carrying it out). Refused unless
    /// a second operator approved it, it has not expired and it was not used before.
    pub async fn use_platform_approval(&self, id: ApprovalId, action: PlatformAction) -> Result<PlatformApproval> {
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let req = tx.operators().platform_approval(id).await?.filter(|r| r.action == action).ok_or(Error::NotFound)?;
        match req.state {
            ApprovalState::Pending => {
                return Err(Error::invalid("approval", "this request is not approved yet: a second operator must"));
            }
            ApprovalState::Rejected => return Err(Error::Forbidden("carry out a rejected request".into())),
            ApprovalState::Approved if req.used_at.is_some() => {
                return Err(Error::Conflict("A use of this approval".into()));
            }
            ApprovalState::Approved if now >= req.expires_at => return Err(Error::RequestExpired),
            ApprovalState::Approved => {}
        }
        if !tx.operators().use_platform_approval(id, now).await? {
            return Err(Error::Conflict("A use of this approval".into()));
        }
        let used = PlatformApproval { used_at: Some(now), ..req };
        approval_event(&mut *tx, Actor::Cli, Action::PlatformApprovalUsed, &used, &RequestMeta::default(), now).await?;
        tx.commit().await?;
        Ok(used)
    }

    /// Record that a master-key rotation begins without four eyes, because the configuration
    /// of this (one-person) installation turned the approval off.
    pub async fn record_unapproved_master_rotation(&self) -> Result<()> {
        let mut tx = self.write().await?;
        let ev = NewEvent::new(
            None,
            Actor::Cli,
            Action::KeysRotateMasterUnapproved,
            Target::Platform,
            &RequestMeta::default(),
        )
        .with_detail(serde_json::json!({ "reason": "master_key_rotation_needs_approval = false" }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Audit an operator's refused attempt; returns the refusal to answer with.
    pub(super) async fn operator_refused(&self, op: &OperatorPrincipal, wanted: &str, e: Error) -> Result<Error> {
        let mut tx = self.write().await?;
        let detail = serde_json::json!({ "wanted": wanted, "reason": e.code() });
        self.platform_event(&mut *tx, Actor::Operator(op.operator.id), Action::OperatorRefused, &op.operator, detail)
            .await?;
        tx.commit().await?;
        Ok(e)
    }
}

/// Record a new pending request for `action` by `op`, in `tx`.
pub(super) async fn insert_request(
    tx: &mut dyn Tx,
    op: &OperatorPrincipal,
    action: PlatformAction,
    meta: &RequestMeta,
    now: time::OffsetDateTime,
) -> Result<PlatformApproval> {
    let req = PlatformApproval {
        id: ApprovalId::new(),
        action,
        requested_by: op.operator.id,
        requested_at: now,
        expires_at: now + APPROVAL_TTL,
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        used_at: None,
    };
    tx.operators().insert_platform_approval(&req).await?;
    approval_event(tx, Actor::Operator(op.operator.id), Action::PlatformApprovalRequested, &req, meta, now).await?;
    Ok(req)
}

async fn approval_event(
    tx: &mut dyn Tx,
    by: Actor,
    action: crate::audit::Action,
    req: &PlatformApproval,
    meta: &RequestMeta,
    now: time::OffsetDateTime,
) -> Result<()> {
    let ev = NewEvent::new(None, by, action, Target::PlatformApproval(req.id), meta).with_detail(serde_json::json!({
        "action": req.action.as_str(),
        "tenant": req.action.tenant(),
        "requested_by": req.requested_by,
        "decided_by": req.decided_by,
    }));
    tx.audit().append_audit(&ev, now).await
}
