//! The subscription lifecycle of a firm: active → ended → (reactivated | destroyed).
//!
//! Ending a subscription shuts the firm out at once (every session ended, every API token
//! revoked, new sign-ins refused with `subscription_ended`), so no operator can do it alone: one
//! privileged operator asks, and the firm carries on until a second one approves; the approval
//! ends it in the same transaction (see `platform_approvals`). The command line, which only the
//! machine's holder can run, ends it directly. The data is kept, encrypted, for the retention
//! period (`retention_days`, seven years by default and at least). One operator alone can
//! reactivate it at any time within that period (giving access back is not what four eyes guard
//! against): everything is there again, but sessions and tokens from before stay revoked. The
//! owners are mailed when it ends and before destruction (`retention_notice_days`, each notice
//! once per ending); when the period runs out the lifecycle job destroys the firm (see
//! `erasure`). Every transition is audited on the platform chain and on the firm's own chain.

use super::Portal;
use super::notifications::{Rendered, one_line, utc};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::error::{Error, Result};
use crate::ids::{MailId, TenantId};
use crate::model::{
    DeliveryState, ErasureRecord, MailKind, OutboxMail, PlatformAction, PlatformApproval, Role, Tenant, TenantStatus,
};
use crate::policy::{self, OperatorPrincipal, PlatformPermission};
use crate::ports::Tx;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The policy's minimum retention after a subscription ends: seven years, in days.
pub const MIN_RETENTION_DAYS: u32 = 2557;

/// How long ended firms are kept and when their owners hear of the coming destruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// How long after its subscription ends a firm's data is kept before destruction.
    pub retention: Duration,
    /// Notices to the owners this many days before destruction, each sent once per ending.
    pub notice_days: Vec<u32>,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self { retention: Duration::days(i64::from(MIN_RETENTION_DAYS)), notice_days: vec![90, 30] }
    }
}

/// Where a firm's subscription stands, as `tenant status` and the platform API show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionStatus {
    pub tenant_id: TenantId,
    pub name: String,
    /// `active`, `ended`, `erasing` or `destroyed`.
    pub status: &'static str,
    pub ended_at: Option<OffsetDateTime>,
    /// When the retention period of an ended subscription runs out.
    pub destroy_after: Option<OffsetDateTime>,
    /// The erasure ledger's row, once a destruction has started.
    pub erasure: Option<ErasureRecord>,
    /// An operator's request to end the subscription, waiting for a second operator.
    pub pending_end: Option<PlatformApproval>,
}

/// What a subscription-ended or retention notice is rendered from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDetail {
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub destroy_after: OffsetDateTime,
}

/// The mail to a firm's owners when its subscription ends.
pub fn render_subscription_ended(firm: &str, d: &RetentionDetail) -> Rendered {
    let firm = one_line(firm, 200);
    let (ended, destroy) = (utc(d.ended_at), utc(d.destroy_after));
    let body = format!(
        "The subscription of {firm} ended on {ended} UTC.\n\
         \n\
         Nobody of your firm can sign in any more. Your data is kept, encrypted, until\n\
         {destroy} UTC, and is then destroyed. Until then the subscription can be\n\
         reactivated at any time, with nothing lost: ask the service operator.\n"
    );
    Rendered { subject: format!("The subscription of {firm} has ended"), body }
}

/// The mail to a firm's owners before its data is destroyed.
pub fn render_retention_notice(firm: &str, d: &RetentionDetail) -> Rendered {
    let firm = one_line(firm, 200);
    let (ended, destroy) = (utc(d.ended_at), utc(d.destroy_after));
    let body = format!(
        "The subscription of {firm} ended on {ended} UTC, and the retention period\n\
         for its data runs out on {destroy} UTC.\n\
         \n\
         After that date all of the firm's data (matters, documents, messages, users and\n\
         its audit log) is destroyed for good, and a signed erasure certificate is mailed\n\
         to the firm's owners. To keep the data, ask the service operator to reactivate\n\
         the subscription before then.\n"
    );
    Rendered { subject: format!("The data of {firm} will be destroyed on {}", destroy), body }
}

impl Portal {
    /// End a firm's subscription (command line).
    pub async fn end_subscription_cli(&self, name: &str) -> Result<SubscriptionStatus> {
        self.end_subscription_as(name, Actor::Cli, &RequestMeta::default()).await
    }

    /// Ask to end a firm's subscription (privileged operators). Ending locks every one of the
    /// firm's people out, so it waits for a second privileged operator's approval
    /// (`decide_platform_action`), which ends it; until then the firm stays active. One pending
    /// request per firm: asking again while one waits is a conflict.
    pub async fn request_end_subscription(
        &self,
        op: &OperatorPrincipal,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<PlatformApproval> {
        self.subscription_manager(op, "end_subscription").await?;
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let t = self.tenant_for_change(&mut *tx, name, "ended").await?;
        endable(&t)?;
        let action = PlatformAction::EndSubscription(t.id);
        if tx.operators().pending_platform_approval(action, now).await?.is_some() {
            return Err(Error::Conflict("A pending request to end this subscription".into()));
        }
        let req = super::platform_approvals::insert_request(&mut *tx, op, action, meta, now).await?;
        let facts =
            serde_json::json!({ "name": &t.name, "approval": req.id, "expires_at": req.expires_at.unix_timestamp() });
        self.lifecycle_events(
            &mut *tx,
            t.id,
            Actor::Operator(op.operator.id),
            Action::SubscriptionEndRequested,
            facts,
            meta,
        )
        .await?;
        tx.commit().await?;
        Ok(req)
    }

    /// The firm an approved request to end `tenant`'s subscription ends, checked in the
    /// approval's transaction: the approver may manage subscriptions, and the firm is still
    /// there and active (it may have been ended on the command line or be being erased since).
    pub(super) async fn endable_for_approval(
        &self,
        tx: &mut dyn Tx,
        op: &OperatorPrincipal,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> Result<Tenant> {
        policy::authorize_platform(op, PlatformPermission::ManageSubscriptions, now)?;
        let t = tx
            .tenants()
            .tenant(tenant)
            .await?
            .ok_or_else(|| Error::WrongState("the firm this request would end has been destroyed since".into()))?;
        endable(&t)?;
        Ok(t)
    }

    /// End `t`'s subscription as a second operator's approval of `req` allows, in its
    /// transaction; the approver is the actor, and the events name both operators.
    pub(super) async fn end_approved(
        &self,
        tx: &mut dyn Tx,
        t: Tenant,
        req: &PlatformApproval,
        meta: &RequestMeta,
    ) -> Result<SubscriptionStatus> {
        let decider = req.decided_by.ok_or_else(|| Error::internal("an approval without its approver"))?;
        let approval = crate::changes::Approval {
            id: req.id.to_string(),
            requested_by: Actor::Operator(req.requested_by).to_stored(),
            approved_by: Actor::Operator(decider).to_stored(),
        };
        self.end_in(tx, t, Actor::Operator(decider), meta, Some(approval)).await
    }

    /// Reactivate an ended subscription (command line).
    pub async fn reactivate_subscription_cli(&self, name: &str) -> Result<SubscriptionStatus> {
        self.reactivate_subscription_as(name, Actor::Cli, &RequestMeta::default()).await
    }

    /// Reactivate an ended subscription (privileged operators).
    pub async fn reactivate_subscription(
        &self,
        op: &OperatorPrincipal,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<SubscriptionStatus> {
        let by = self.subscription_manager(op, "reactivate_subscription").await?;
        self.reactivate_subscription_as(name, by, meta).await
    }

    /// The operator as the actor of a subscription change, if they may manage subscriptions; a
    /// refusal is audited.
    async fn subscription_manager(&self, op: &OperatorPrincipal, wanted: &str) -> Result<Actor> {
        match policy::authorize_platform(op, PlatformPermission::ManageSubscriptions, self.clock.now()) {
            Ok(()) => Ok(Actor::Operator(op.operator.id)),
            Err(e) => Err(self.operator_refused(op, wanted, e).await?),
        }
    }

    /// Where a firm's subscription stands (command line).
    pub async fn subscription_status_cli(&self, name: &str) -> Result<SubscriptionStatus> {
        self.subscription_status_of(name).await
    }

    /// Where a firm's subscription stands (any operator who may see the tenant directory).
    pub async fn subscription_status(&self, op: &OperatorPrincipal, name: &str) -> Result<SubscriptionStatus> {
        policy::authorize_platform(op, PlatformPermission::ViewTenants, self.clock.now())?;
        self.subscription_status_of(name).await
    }

    async fn subscription_status_of(&self, name: &str) -> Result<SubscriptionStatus> {
        let mut tx = self.read().await?;
        match tx.tenants().tenant_by_name(name).await? {
            Some(t) => {
                let erasure = tx.lifecycle().erasure(t.id).await?;
                let action = PlatformAction::EndSubscription(t.id);
                let pending_end = tx.operators().pending_platform_approval(action, self.clock.now()).await?;
                Ok(self.status_of(&t, erasure, pending_end))
            }
            None => {
                let e = tx.lifecycle().erasure_by_name(name).await?.ok_or(Error::NotFound)?;
                Ok(SubscriptionStatus {
                    tenant_id: e.tenant_id,
                    name: e.tenant_name.clone(),
                    status: if e.finished_at.is_some() { "destroyed" } else { "erasing" },
                    ended_at: None,
                    destroy_after: None,
                    erasure: Some(e),
                    pending_end: None,
                })
            }
        }
    }

    fn status_of(
        &self,
        t: &Tenant,
        erasure: Option<ErasureRecord>,
        pending_end: Option<PlatformApproval>,
    ) -> SubscriptionStatus {
        SubscriptionStatus {
            tenant_id: t.id,
            name: t.name.clone(),
            status: t.status.as_str(),
            ended_at: t.ended_at,
            destroy_after: t.ended_at.map(|e| e + self.settings.lifecycle.retention),
            erasure,
            pending_end,
        }
    }

    /// The tenant named `name`, for a lifecycle change; a destroyed firm's name gives a clear
    /// refusal rather than "not found".
    async fn tenant_for_change(&self, tx: &mut dyn Tx, name: &str, verb: &str) -> Result<Tenant> {
        if let Some(t) = tx.tenants().tenant_by_name(name).await? {
            return Ok(t);
        }
        match tx.lifecycle().erasure_by_name(name).await? {
            Some(e) => Err(Error::WrongState(
                format!(
                    "the tenant {name:?} was destroyed ({}, {}), so it cannot be {verb}",
                    e.reason.as_str(),
                    e.finished_at.map(utc).unwrap_or_else(|| "in progress".into())
                )
                .into(),
            )),
            None => Err(Error::NotFound),
        }
    }

    async fn end_subscription_as(&self, name: &str, by: Actor, meta: &RequestMeta) -> Result<SubscriptionStatus> {
        let mut tx = self.write().await?;
        let t = self.tenant_for_change(&mut *tx, name, "ended").await?;
        endable(&t)?;
        let status = self.end_in(&mut *tx, t, by, meta, None).await?;
        tx.commit().await?;
        Ok(status)
    }

    /// End the (active) firm's subscription in `tx`: status, access revoked, owners mailed,
    /// audited on both chains with the approval that allowed it, if one was needed.
    async fn end_in(
        &self,
        tx: &mut dyn Tx,
        t: Tenant,
        by: Actor,
        meta: &RequestMeta,
        approval: Option<crate::changes::Approval>,
    ) -> Result<SubscriptionStatus> {
        let now = self.clock.now();
        tx.lifecycle().set_tenant_status(t.id, TenantStatus::Ended, Some(now)).await?;
        let (sessions, tokens) = tx.lifecycle().revoke_tenant_access(t.id, now).await?;
        let detail = RetentionDetail { ended_at: now, destroy_after: now + self.settings.lifecycle.retention };
        self.mail_owners(tx, t.id, MailKind::SubscriptionEnded, &detail, now).await?;
        let mut facts = serde_json::json!({
            "name": &t.name,
            "sessions_ended": sessions,
            "tokens_revoked": tokens,
            "destroy_after": detail.destroy_after.unix_timestamp(),
        });
        if let (Some(a), Some(map)) = (approval, facts.as_object_mut()) {
            map.insert("approval".into(), serde_json::json!(a));
        }
        self.lifecycle_events(tx, t.id, by, Action::SubscriptionEnd, facts, meta).await?;
        let ended = Tenant { status: TenantStatus::Ended, ended_at: Some(now), ..t };
        Ok(self.status_of(&ended, None, None))
    }

    async fn reactivate_subscription_as(
        &self,
        name: &str,
        by: Actor,
        meta: &RequestMeta,
    ) -> Result<SubscriptionStatus> {
        let mut tx = self.write().await?;
        let t = self.tenant_for_change(&mut *tx, name, "reactivated").await?;
        match t.status {
            TenantStatus::Ended => {}
            TenantStatus::Active => {
                return Err(Error::WrongState(format!("the subscription of {name:?} is active").into()));
            }
            TenantStatus::Erasing => {
                return Err(Error::WrongState(
                    format!("the tenant {name:?} is being erased, so it cannot be reactivated").into(),
                ));
            }
        }
        tx.lifecycle().set_tenant_status(t.id, TenantStatus::Active, None).await?;
        let facts = serde_json::json!({ "name": &t.name, "ended_at": t.ended_at.map(|e| e.unix_timestamp()) });
        self.lifecycle_events(&mut *tx, t.id, by, Action::SubscriptionReactivate, facts, meta).await?;
        let active = Tenant { status: TenantStatus::Active, ended_at: None, ..t };
        let status = self.status_of(&active, None, None);
        tx.commit().await?;
        Ok(status)
    }

    /// Record a lifecycle transition on the firm's chain and on the platform chain, in `tx`.
    pub(super) async fn lifecycle_events(
        &self,
        tx: &mut dyn Tx,
        tenant: TenantId,
        by: Actor,
        action: crate::audit::Action,
        detail: serde_json::Value,
        meta: &RequestMeta,
    ) -> Result<()> {
        let now = self.clock.now();
        let target = Target::Tenant(tenant);
        let ev = NewEvent::new(Some(tenant), by, action, target.clone(), meta).with_detail(detail.clone());
        tx.audit().append_audit(&ev, now).await?;
        let ev = NewEvent::new(None, by, action, target, meta).with_detail(detail);
        tx.audit().append_audit(&ev, now).await
    }

    /// The firm's owners (active), with their addresses.
    pub(super) async fn owners(&self, tx: &mut dyn Tx, tenant: TenantId) -> Result<Vec<crate::model::User>> {
        let mut out = Vec::new();
        for id in tx.users().tenant_admins(tenant).await? {
            if let Some(u) = tx.users().user(tenant, id).await?
                && u.role == Role::Owner
            {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Queue a lifecycle mail to every owner of the firm, in `tx`.
    async fn mail_owners(
        &self,
        tx: &mut dyn Tx,
        tenant: TenantId,
        kind: MailKind,
        detail: &RetentionDetail,
        now: OffsetDateTime,
    ) -> Result<()> {
        let detail = serde_json::to_value(detail).map_err(Error::internal)?;
        for owner in self.owners(tx, tenant).await? {
            tx.outbox()
                .insert_mail(&OutboxMail {
                    id: MailId::new(),
                    tenant_id: tenant,
                    user_id: owner.id,
                    kind,
                    detail: detail.clone(),
                    delivery: DeliveryState::due(now),
                })
                .await?;
        }
        Ok(())
    }

    /// Queue the notices before destruction that are due, each once per ending, and start the
    /// destruction of firms whose retention ran out. Returns (notices queued, destructions
    /// started).
    pub(super) async fn retention_sweep(&self) -> Result<(u32, u32)> {
        let now = self.clock.now();
        let ended = self.read().await?.lifecycle().ended_tenants().await?;
        let (mut notices, mut started) = (0, 0);
        for t in ended {
            let Some(ended_at) = t.ended_at else { continue };
            let destroy_after = ended_at + self.settings.lifecycle.retention;
            if now >= destroy_after {
                let mut tx = self.write().await?;
                // Still ended? (It may have been reactivated since the list was read.)
                if tx
                    .tenants()
                    .tenant(t.id)
                    .await?
                    .is_some_and(|c| c.status == TenantStatus::Ended && c.ended_at == t.ended_at)
                {
                    match self.begin_erasure(&mut *tx, &t, super::erasure::Requested::retention(now)).await {
                        Ok(()) => {
                            tx.commit().await?;
                            started += 1;
                        }
                        // Another node started it meanwhile.
                        Err(Error::WrongState(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            // Every notice whose time has come is recorded; only the nearest is mailed (a
            // short retention can make several due at once).
            let due: Vec<u32> = self
                .settings
                .lifecycle
                .notice_days
                .iter()
                .copied()
                .filter(|d| now >= destroy_after - Duration::days(i64::from(*d)))
                .collect();
            let Some(nearest) = due.iter().copied().min() else { continue };
            let mut tx = self.write().await?;
            let mut mail = false;
            for d in &due {
                let fresh = tx.lifecycle().record_retention_notice(t.id, ended_at, *d, now).await?;
                mail |= fresh && *d == nearest;
            }
            if mail {
                let detail = RetentionDetail { ended_at, destroy_after };
                self.mail_owners(&mut *tx, t.id, MailKind::RetentionNotice, &detail, now).await?;
                let facts =
                    serde_json::json!({ "days_before": nearest, "destroy_after": destroy_after.unix_timestamp() });
                self.lifecycle_events(
                    &mut *tx,
                    t.id,
                    Actor::System,
                    Action::SubscriptionRetentionNotice,
                    facts,
                    &RequestMeta::default(),
                )
                .await?;
                notices += 1;
            }
            tx.commit().await?;
        }
        Ok((notices, started))
    }
}

/// Only an active subscription can end; the refusal says where it stands instead.
fn endable(t: &Tenant) -> Result<()> {
    let name = &t.name;
    match t.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Ended => {
            let since = t.ended_at.map(utc).unwrap_or_default();
            Err(Error::WrongState(format!("the subscription of {name:?} already ended ({since})").into()))
        }
        TenantStatus::Erasing => Err(Error::WrongState(format!("the tenant {name:?} is being erased").into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_the_firm_and_the_dates_on_one_line_each() {
        let d = RetentionDetail {
            ended_at: time::macros::datetime!(2026-01-02 03:04:05 UTC),
            destroy_after: time::macros::datetime!(2033-01-02 03:04:05 UTC),
        };
        let m = render_retention_notice("Smith\nLaw", &d);
        assert!(!m.subject.contains('\n'));
        assert!(m.subject.contains("2033-01-02 03:04:05"), "{}", m.subject);
        assert!(m.body.contains("2026-01-02 03:04:05") && m.body.contains("reactivate"), "{}", m.body);
        let m = render_subscription_ended("Smith Law", &d);
        assert_eq!(m.subject, "The subscription of Smith Law has ended");
        assert!(m.body.contains("2033-01-02 03:04:05 UTC"), "{}", m.body);
    }
}
