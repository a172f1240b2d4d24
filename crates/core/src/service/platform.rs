//! Platform operators: the service's own staff. They manage subscriptions (tenants) and watch
//! system health; they can never read tenant content, because no tenant principal is ever made
//! for them. The privileged role needs a current vetting record (the policy's background
//! checks); when vetting lapses the role stops working at once and is suspended by the
//! background job, audited. Operators, vetting and tokens are managed on the command line.

use super::Portal;
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::authn::secret;
use crate::error::{Error, Result};
use crate::ids::OperatorId;
use crate::model::{Operator, OperatorGrant, OperatorRole, TenantSummary, VettingRecord};
use crate::policy::{self, OperatorPrincipal, PlatformPermission};
use crate::validate;
use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

/// An operator as `operator list` shows them.
#[derive(Clone, Debug)]
pub struct OperatorStatus {
    pub operator: Operator,
    pub grants: Vec<OperatorGrant>,
    pub vetting: Option<VettingRecord>,
}

/// What the platform health check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformHealth {
    pub database: bool,
    pub blob_store: bool,
    pub tenants: u64,
    pub open_key_rotations: u64,
}

/// Longest life of an operator token, in days.
pub const MAX_OPERATOR_TOKEN_DAYS: i64 = 30;

impl Portal {
    /// Add an operator (command line).
    pub async fn add_operator(&self, email: &str, name: &str) -> Result<Operator> {
        let email = validate::email(email)?;
        let display_name = validate::line("name", name, 200)?;
        let mut tx = self.write().await?;
        if tx.operators().operator_by_email(&email).await?.is_some() {
            return Err(Error::Conflict("An operator with this email".into()));
        }
        let op = Operator { id: OperatorId::new(), email, display_name, created_at: self.clock.now() };
        tx.operators().insert_operator(&op).await?;
        self.platform_event(&mut *tx, Actor::Cli, Action::OperatorAdd, &op, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(op)
    }

    /// Record an operator's background check (command line).
    pub async fn record_vetting(
        &self,
        email: &str,
        checked_by: &str,
        checked_at: OffsetDateTime,
        valid_until: OffsetDateTime,
    ) -> Result<VettingRecord> {
        let checked_by = validate::line("checked_by", checked_by, 200)?;
        let now = self.clock.now();
        if checked_at > now {
            return Err(Error::invalid("checked_at", "is in the future"));
        }
        if valid_until <= checked_at {
            return Err(Error::invalid("valid_until", "must be after the check"));
        }
        let mut tx = self.write().await?;
        let op = tx.operators().operator_by_email(&validate::email(email)?).await?.ok_or(Error::NotFound)?;
        let v = VettingRecord { operator_id: op.id, checked_by, checked_at, valid_until, recorded_at: now };
        tx.operators().insert_vetting(&v).await?;
        let detail = serde_json::json!({ "checked_by": &v.checked_by, "checked_at": checked_at.unix_timestamp(),
                                         "valid_until": valid_until.unix_timestamp() });
        self.platform_event(&mut *tx, Actor::Cli, Action::OperatorVetting, &op, detail).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Grant an operator a role (command line); privileged only with current vetting.
    pub async fn grant_operator_role(&self, email: &str, role: &str) -> Result<()> {
        let role = OperatorRole::parse(role)?;
        let mut tx = self.write().await?;
        let op = tx.operators().operator_by_email(&validate::email(email)?).await?.ok_or(Error::NotFound)?;
        let now = self.clock.now();
        if let Err(e) = policy::may_grant(role, tx.operators().vetting(op.id).await?.as_ref(), now) {
            let detail = serde_json::json!({ "role": role.as_str(), "reason": e.code() });
            self.platform_event(&mut *tx, Actor::Cli, Action::OperatorGrantRefused, &op, detail).await?;
            tx.commit().await?;
            return Err(e);
        }
        tx.operators()
            .put_operator_grant(&OperatorGrant { operator_id: op.id, role, granted_at: now, suspended_at: None })
            .await?;
        let detail = serde_json::json!({ "role": role.as_str() });
        self.platform_event(&mut *tx, Actor::Cli, Action::OperatorGrant, &op, detail).await?;
        tx.commit().await
    }

    /// A new API token for an operator (command line), shown once.
    pub async fn operator_token(&self, email: &str, days: i64) -> Result<SecretString> {
        if !(1..=MAX_OPERATOR_TOKEN_DAYS).contains(&days) {
            return Err(Error::invalid("days", format!("must be from 1 to {MAX_OPERATOR_TOKEN_DAYS}")));
        }
        let mut tx = self.write().await?;
        let op = tx.operators().operator_by_email(&validate::email(email)?).await?.ok_or(Error::NotFound)?;
        let token = secret::generate("pco_")?;
        let now = self.clock.now();
        tx.operators().insert_operator_token(op.id, &secret::hash(&token), now, now + Duration::days(days)).await?;
        self.platform_event(&mut *tx, Actor::Cli, Action::OperatorToken, &op, serde_json::json!({ "days": days }))
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// End every platform API token of an operator at once (command line), e.g. when they leave
    /// or a token may have leaked.
    pub async fn revoke_operator_tokens(&self, email: &str) -> Result<u64> {
        let mut tx = self.write().await?;
        let op = tx.operators().operator_by_email(&validate::email(email)?).await?.ok_or(Error::NotFound)?;
        let n = tx.operators().delete_operator_tokens(op.id).await?;
        self.platform_event(
            &mut *tx,
            Actor::Cli,
            Action::OperatorTokensRevoked,
            &op,
            serde_json::json!({ "tokens": n }),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Sign an operator out of the console: the token it signed in with is deleted, not only
    /// forgotten by the browser, so a copy of it (a cookie taken from the browser, the pasted
    /// token left in a clipboard) stops working too. Audited; the operator's other tokens stay.
    pub async fn sign_out_operator(&self, op: &OperatorPrincipal, bearer: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let revoked = tx.operators().delete_operator_token(op.operator.id, &secret::hash_str(bearer)).await?;
        let detail = serde_json::json!({ "token_revoked": revoked });
        self.platform_event(&mut *tx, Actor::Operator(op.operator.id), Action::OperatorSignOut, &op.operator, detail)
            .await?;
        tx.commit().await
    }

    /// Every operator with grants and newest vetting (command line).
    pub async fn list_operators(&self) -> Result<Vec<OperatorStatus>> {
        let mut tx = self.read().await?;
        let mut out = Vec::new();
        for operator in tx.operators().list_operators().await? {
            let grants = tx.operators().operator_grants(operator.id).await?;
            let vetting = tx.operators().vetting(operator.id).await?;
            out.push(OperatorStatus { operator, grants, vetting });
        }
        Ok(out)
    }

    /// Resolve an operator's bearer token, with the grants and vetting the policy needs.
    pub async fn authenticate_operator(&self, bearer: &str) -> Result<OperatorPrincipal> {
        let mut tx = self.read().await?;
        let operator = tx
            .operators()
            .operator_by_token(&secret::hash_str(bearer), self.clock.now())
            .await?
            .ok_or(Error::Unauthenticated)?;
        let grants = tx.operators().operator_grants(operator.id).await?;
        let vetting = tx.operators().vetting(operator.id).await?;
        Ok(OperatorPrincipal { operator, grants, vetting })
    }

    /// Whether the system is up, and how busy.
    pub async fn platform_health(&self, op: &OperatorPrincipal) -> Result<PlatformHealth> {
        policy::authorize_platform(op, PlatformPermission::ViewHealth, self.clock.now())?;
        let database = self.store.ping().await.is_ok();
        let blob_store = self.blobs.ping().await.is_ok();
        let mut tx = self.read().await?;
        let tenants = u64::try_from(tx.tenants().count_tenants().await?).map_err(Error::internal)?;
        let open_key_rotations = tx.rotation().open_key_rotations().await?.len() as u64;
        Ok(PlatformHealth { database, blob_store, tenants, open_key_rotations })
    }

    /// The tenant directory: names and counts, never content.
    pub async fn tenant_directory(&self, op: &OperatorPrincipal) -> Result<Vec<TenantSummary>> {
        policy::authorize_platform(op, PlatformPermission::ViewTenants, self.clock.now())?;
        self.read().await?.operators().tenant_summaries().await
    }

    /// Open a subscription: a new tenant and its owner, who gets a one-time set-up link.
    pub async fn create_subscription(
        &self,
        op: &OperatorPrincipal,
        name: &str,
        owner_email: &str,
        meta: &RequestMeta,
    ) -> Result<(crate::ids::TenantId, Option<String>)> {
        if let Err(e) = policy::authorize_platform(op, PlatformPermission::ManageSubscriptions, self.clock.now()) {
            return Err(self.operator_refused(op, "create_subscription", e).await?);
        }
        self.create_tenant_as(name, owner_email, None, Actor::Operator(op.operator.id), meta).await
    }

    /// Suspend every privileged grant whose operator's vetting no longer holds, each audited.
    /// Run by every node in the background; grants stop working at expiry regardless.
    pub async fn suspend_lapsed_operators(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let mut suspended = 0;
        for g in tx.operators().active_grants(OperatorRole::Privileged).await? {
            let vetting = tx.operators().vetting(g.operator_id).await?;
            if policy::vetting_current(vetting.as_ref(), now) {
                continue;
            }
            if tx.operators().suspend_operator_grant(g.operator_id, g.role, now).await?
                && let Some(op) = tx.operators().operator(g.operator_id).await?
            {
                let detail = serde_json::json!({
                    "role": g.role.as_str(),
                    "vetting_valid_until": vetting.map(|v| v.valid_until.unix_timestamp()),
                });
                self.platform_event(&mut *tx, Actor::System, Action::OperatorRoleSuspended, &op, detail).await?;
                suspended += 1;
            }
        }
        tx.commit().await?;
        Ok(suspended)
    }

    pub(super) async fn platform_event(
        &self,
        tx: &mut dyn crate::ports::Tx,
        by: Actor,
        action: crate::audit::Action,
        op: &Operator,
        detail: serde_json::Value,
    ) -> Result<()> {
        let ev = NewEvent::new(None, by, action, Target::Operator(op.id), &RequestMeta::default()).with_detail(detail);
        tx.audit().append_audit(&ev, self.clock.now()).await
    }
}
