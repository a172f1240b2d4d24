//! Matters and their members. Every method that reads or writes a matter's content takes the
//! policy's grant of its permission; only [`MatterRepo::matter_facts`] comes before the policy,
//! and it returns what the policy needs (the wall and the caller's place on the list), nothing
//! of the matter itself.

use crate::error::Result;
use crate::ids::{MatterId, TenantId, UserId};
use crate::model::{Matter, MatterMember, Role};
use crate::policy::{MatterFacts, MatterGrant, MatterListGrant, TenantGrant, can};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait MatterRepo: Send {
    async fn insert_matter(&mut self, grant: &TenantGrant<can::CreateMatter>, m: &Matter) -> Result<()>;
    /// What the policy needs to decide on `user`'s access to a matter of this tenant: whether it
    /// is restricted and `user`'s role on its list. `None` if the tenant has no such matter.
    async fn matter_facts(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<MatterFacts>>;
    async fn matter(&mut self, grant: &MatterGrant<can::ViewMatter>) -> Result<Option<Matter>>;
    async fn list_matters(&mut self, grant: &MatterListGrant<can::ListMatters>) -> Result<Vec<Matter>>;
    /// Put `user` on the matter's list; a user already on it is a conflict.
    async fn insert_member(
        &mut self,
        grant: &MatterGrant<can::ManageMembers>,
        user: UserId,
        role: Role,
        at: OffsetDateTime,
    ) -> Result<()>;
    /// Take `user` off the matter's list; false if they were not on it.
    async fn remove_member(&mut self, grant: &MatterGrant<can::ManageMembers>, user: UserId) -> Result<bool>;
    /// Take `user` off every matter's list (their role changed across the line between the
    /// firm's people and its clients); how many lists.
    async fn remove_memberships(&mut self, grant: &TenantGrant<can::ManageUsers>, user: UserId) -> Result<u64>;
    async fn list_members(&mut self, grant: &MatterGrant<can::ListMembers>) -> Result<Vec<MatterMember>>;
}
