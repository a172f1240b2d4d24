//! One-time links (set a password, first start).

use crate::error::Result;
use crate::ids::{TenantId, UserId};
use crate::model::LinkRecord;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait LinkRepo: Send {
    async fn insert_link(&mut self, l: &LinkRecord) -> Result<()>;
    async fn link(&mut self, token_hash: &str) -> Result<Option<LinkRecord>>;
    /// Mark every unused set-password link of a user used.
    async fn burn_user_links(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<()>;
    /// Mark every unused first-start link used.
    async fn burn_bootstrap_links(&mut self, at: OffsetDateTime) -> Result<()>;
    /// Mark a link used; returns false if it was already used (or never existed).
    async fn use_link(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<bool>;
}
