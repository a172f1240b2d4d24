//! Platform operators (never tenant content): their approvals, grants, vetting and tokens, and the
//! tenant directory.

use crate::error::Result;
use crate::ids::{ApprovalId, OperatorId};
use crate::model::{
    ApprovalState, Operator, OperatorGrant, OperatorRole, PlatformAction, PlatformApproval, TenantSummary,
    VettingRecord,
};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait OperatorRepo: Send {
    async fn insert_platform_approval(&mut self, a: &PlatformApproval) -> Result<()>;
    async fn platform_approval(&mut self, id: ApprovalId) -> Result<Option<PlatformApproval>>;
    /// The newest request for exactly `action` that is still pending and unexpired at `now`.
    async fn pending_platform_approval(
        &mut self,
        action: PlatformAction,
        now: OffsetDateTime,
    ) -> Result<Option<PlatformApproval>>;
    /// Every platform request, newest first.
    async fn list_platform_approvals(&mut self, limit: i64) -> Result<Vec<PlatformApproval>>;
    /// Decide a pending request; false if it was no longer pending.
    async fn decide_platform_approval(
        &mut self,
        id: ApprovalId,
        state: ApprovalState,
        by: OperatorId,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Spend an approved, unused request; false if it was not (used meanwhile).
    async fn use_platform_approval(&mut self, id: ApprovalId, at: OffsetDateTime) -> Result<bool>;
    async fn insert_operator(&mut self, o: &Operator) -> Result<()>;
    async fn operator_by_email(&mut self, email: &str) -> Result<Option<Operator>>;
    async fn operator(&mut self, id: OperatorId) -> Result<Option<Operator>>;
    async fn list_operators(&mut self) -> Result<Vec<Operator>>;
    /// Grant (or re-grant, lifting a suspension) a role.
    async fn put_operator_grant(&mut self, g: &OperatorGrant) -> Result<()>;
    async fn operator_grants(&mut self, id: OperatorId) -> Result<Vec<OperatorGrant>>;
    /// Every unsuspended grant of `role`, of every operator.
    async fn active_grants(&mut self, role: OperatorRole) -> Result<Vec<OperatorGrant>>;
    /// Suspend a grant if it is not already; false if it was.
    async fn suspend_operator_grant(&mut self, id: OperatorId, role: OperatorRole, at: OffsetDateTime) -> Result<bool>;
    async fn insert_vetting(&mut self, v: &VettingRecord) -> Result<()>;
    /// The operator's newest vetting record.
    async fn vetting(&mut self, id: OperatorId) -> Result<Option<VettingRecord>>;
    async fn insert_operator_token(
        &mut self,
        id: OperatorId,
        hash: &str,
        at: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<()>;
    /// End every token of an operator; how many.
    async fn delete_operator_tokens(&mut self, id: OperatorId) -> Result<u64>;
    /// End one token of an operator (the one a console signs out with); false if it was gone.
    async fn delete_operator_token(&mut self, id: OperatorId, hash: &str) -> Result<bool>;
    /// The operator an unexpired token belongs to.
    async fn operator_by_token(&mut self, hash: &str, now: OffsetDateTime) -> Result<Option<Operator>>;
    /// Every tenant with its counts, for the operators' directory.
    async fn tenant_summaries(&mut self) -> Result<Vec<TenantSummary>>;
}
