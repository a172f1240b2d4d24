//! Sign-in sessions.

use crate::error::Result;
use crate::ids::{TenantId, UserId};
use crate::model::SessionRecord;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait SessionRepo: Send {
    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()>;
    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>>;
    async fn touch_session(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()>;
    async fn delete_session(&mut self, token_hash: &str) -> Result<()>;
    /// End every session of a user (password change, disabling).
    async fn delete_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    /// A user's sessions, most recently used first.
    async fn list_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<SessionRecord>>;
    /// End every session of the user but `keep` (a token hash); how many ended.
    async fn delete_other_sessions(&mut self, tenant: TenantId, user: UserId, keep: &str) -> Result<u64>;
}
