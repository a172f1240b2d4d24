//! Matters and their members.

use crate::error::Result;
use crate::ids::{MatterId, TenantId, UserId};
use crate::model::{Matter, MatterMember, Role};
use crate::policy::{MatterGrant, MatterListGrant, TenantGrant};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait MatterRepo: Send {
    async fn insert_matter(&mut self, grant: &TenantGrant, m: &Matter) -> Result<()>;
    /// A matter of this tenant (before authorization: callers pass it to the policy).
    async fn matter(&mut self, tenant: TenantId, id: MatterId) -> Result<Option<Matter>>;
    async fn membership(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<Role>>;
    async fn list_matters(&mut self, grant: &MatterListGrant) -> Result<Vec<Matter>>;
    async fn insert_member(&mut self, grant: &MatterGrant, user: UserId, role: Role, at: OffsetDateTime) -> Result<()>;
    async fn list_members(&mut self, grant: &MatterGrant) -> Result<Vec<MatterMember>>;
}
