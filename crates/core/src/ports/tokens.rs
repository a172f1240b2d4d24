//! API tokens.

use crate::error::Result;
use crate::ids::{TenantId, TokenId, UserId};
use crate::model::ApiToken;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait TokenRepo: Send {
    async fn insert_api_token(&mut self, t: &ApiToken, secret_hash: &str) -> Result<()>;
    async fn api_token_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiToken>>;
    async fn list_api_tokens(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<ApiToken>>;
    /// Revoke one of the user's tokens; false if there is no such live token.
    async fn revoke_api_token(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Revoke every live token of the user, at `at`; how many.
    async fn revoke_user_tokens(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<u64>;
    async fn touch_api_token(&mut self, tenant: TenantId, id: TokenId, at: OffsetDateTime) -> Result<()>;
}
