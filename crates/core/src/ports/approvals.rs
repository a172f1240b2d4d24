//! Four eyes: requests a second person decides, and the role changes they carry out.

use crate::error::Result;
use crate::ids::{ApprovalId, TenantId, UserId};
use crate::model::{ApprovalRequest, ApprovalState, Role};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait ApprovalRepo: Send {
    async fn insert_approval(&mut self, a: &ApprovalRequest) -> Result<()>;
    async fn approval(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<ApprovalRequest>>;
    /// The tenant's requests, newest first.
    async fn list_approvals(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<ApprovalRequest>>;
    /// Decide a pending request; false if it was no longer pending (decided meanwhile).
    async fn decide_approval(
        &mut self,
        tenant: TenantId,
        id: ApprovalId,
        state: ApprovalState,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Change a user's role.
    async fn set_user_role(&mut self, tenant: TenantId, user: UserId, role: Role) -> Result<()>;
}
