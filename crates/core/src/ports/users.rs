//! A tenant's users.

use crate::error::Result;
use crate::ids::{TenantId, UserId};
use crate::model::{User, UserStatus};
use crate::policy::{TenantGrant, can};
use async_trait::async_trait;

#[async_trait]
pub trait UserRepo: Send {
    /// `email_lookup` is the value equality lookups by email use (see `user_by_email`).
    async fn insert_user(&mut self, u: &User, email_lookup: &str, password_hash: Option<&str>) -> Result<()>;
    /// The user and their password hash.
    /// Find by the `email_lookup` value the user was stored with.
    async fn user_by_email(&mut self, tenant: TenantId, email_lookup: &str) -> Result<Option<(User, Option<String>)>>;
    async fn user(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>>;
    async fn set_password(&mut self, tenant: TenantId, id: UserId, hash: &str, status: UserStatus) -> Result<()>;
    /// Deactivate (`Disabled`) or reactivate (`Active`) a user; false if there is no such user.
    async fn set_user_status(&mut self, tenant: TenantId, id: UserId, status: UserStatus) -> Result<bool>;
    async fn list_users(&mut self, grant: &TenantGrant<can::ListUsers>) -> Result<Vec<User>>;
    /// The active owners and admins of a tenant (who hear of alerts about their firm).
    async fn tenant_admins(&mut self, tenant: TenantId) -> Result<Vec<UserId>>;
}
