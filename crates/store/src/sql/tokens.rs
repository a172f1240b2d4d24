//! API tokens in SQL.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{TenantId, TokenId, UserId};
use portcullis_core::model::ApiToken;
use portcullis_core::policy::Scope;
use portcullis_core::ports::TokenRepo;
use time::OffsetDateTime;

/// `SELECT` of every API-token column except the secret hash, followed by a literal tail.
macro_rules! select_tokens {
    ($tail:literal) => {
        concat!(
            "SELECT id, tenant_id, user_id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM api_tokens ",
            $tail
        )
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    tenant_id: String,
    user_id: String,
    name: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn into_model(self) -> Result<ApiToken> {
        let scopes = self
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| Scope::parse(s).map_err(Error::internal))
            .collect::<Result<std::collections::BTreeSet<_>>>()?
            .into_iter()
            .collect();
        Ok(ApiToken {
            id: id(&self.id, portcullis_core::ids::TokenId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            name: self.name,
            scopes,
            created_at: from_millis(self.created_at),
            expires_at: self.expires_at.map(from_millis),
            revoked_at: self.revoked_at.map(from_millis),
            last_used_at: self.last_used_at.map(from_millis),
        })
    }
}

/// Scopes are stored as one space-separated text.
pub(crate) fn scopes_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl TokenRepo for SqlTx {
    async fn insert_api_token(&mut self, t: &ApiToken, secret_hash: &str) -> Result<()> {
        const Q: &str = "INSERT INTO api_tokens (id, tenant_id, user_id, secret_hash, name, scopes, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on!(self, |c| sqlx::query(Q)
            .bind(t.id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.user_id.to_string())
            .bind(secret_hash)
            .bind(&t.name)
            .bind(scopes_text(&t.scopes))
            .bind(ms(t.created_at))
            .bind(t.expires_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn api_token_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiToken>> {
        const Q: &str = select_tokens!("WHERE secret_hash = $1");
        let row: Option<TokenRow> =
            on!(self, |c| sqlx::query_as(Q).bind(secret_hash).fetch_optional(c).await).map_err(db)?;
        row.map(TokenRow::into_model).transpose()
    }

    async fn list_api_tokens(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<ApiToken>> {
        const Q: &str = select_tokens!("WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC");
        let rows: Vec<TokenRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, TokenRow::into_model)
    }

    async fn revoke_api_token(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE api_tokens SET revoked_at = $4 \
                         WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND revoked_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn revoke_user_tokens(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<u64> {
        const Q: &str =
            "UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)
    }

    async fn touch_api_token(&mut self, tenant: TenantId, id: TokenId, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND tenant_id = $3";
        on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(ms(at))
            .bind(tenant.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}
