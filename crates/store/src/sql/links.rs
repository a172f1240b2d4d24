//! One-time links in SQL.

use super::{SqlTx, db, ms};
use crate::rows::opt_id;
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::Result;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::{LinkPurpose, LinkRecord};
use portcullis_core::ports::LinkRepo;
use time::OffsetDateTime;

#[derive(sqlx::FromRow)]
pub(crate) struct LinkRow {
    token_hash: String,
    purpose: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl LinkRow {
    pub(crate) fn into_model(self) -> Result<LinkRecord> {
        Ok(LinkRecord {
            token_hash: self.token_hash,
            purpose: LinkPurpose::parse(&self.purpose)?,
            tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: opt_id(self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            created_at: from_millis(self.created_at),
            expires_at: from_millis(self.expires_at),
        })
    }
}

#[async_trait]
impl LinkRepo for SqlTx {
    async fn insert_link(&mut self, l: &LinkRecord) -> Result<()> {
        const Q: &str = "INSERT INTO links (token_hash, purpose, tenant_id, user_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(&l.token_hash)
            .bind(l.purpose.as_str())
            .bind(l.tenant_id.map(|t| t.to_string()))
            .bind(l.user_id.map(|u| u.to_string()))
            .bind(ms(l.created_at))
            .bind(ms(l.expires_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn link(&mut self, token_hash: &str) -> Result<Option<LinkRecord>> {
        const Q: &str = "SELECT token_hash, purpose, tenant_id, user_id, created_at, expires_at \
                         FROM links WHERE token_hash = $1 AND used_at IS NULL";
        let row: Option<LinkRow> =
            on!(self, |c| sqlx::query_as(Q).bind(token_hash).fetch_optional(c).await).map_err(db)?;
        row.map(LinkRow::into_model).transpose()
    }

    async fn burn_user_links(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE links SET used_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn burn_bootstrap_links(&mut self, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE links SET used_at = $1 WHERE purpose = 'bootstrap' AND used_at IS NULL";
        on!(self, |c| sqlx::query(Q).bind(ms(at)).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(())
    }

    async fn use_link(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL";
        let r = on!(self, |c| sqlx::query(Q).bind(token_hash).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(r == 1)
    }
}
