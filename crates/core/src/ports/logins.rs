//! Sign-in throttling.

use crate::authn::lockout::Lock;
use crate::error::Result;
use crate::ids::{TenantId, UserId};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait LoginRepo: Send {
    /// The account's lock, from its failure count.
    async fn login_lock(&mut self, tenant: TenantId, user: UserId) -> Result<Lock>;
    /// Count one more consecutive failure and store the lock it brings; the new count.
    async fn record_login_failure(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<u32>;
    /// A full sign-in, or an admin's unlock: the count starts again.
    async fn reset_login_failures(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
}
