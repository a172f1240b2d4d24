//! Tenant keys in SQL: each tenant's wrapped keys, by purpose and version.

use super::{Inner, SqlTx, db, ms};
use crate::rows::{self, id, version};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::TenantId;
use portcullis_core::model::{KeyPurpose, TenantKeyRecord};
use portcullis_core::ports::KeyRepo;

#[derive(sqlx::FromRow)]
pub(crate) struct TenantKeyRow {
    tenant_id: String,
    purpose: String,
    version: i64,
    key_id: String,
    wrapped: String,
    created_at: i64,
}

impl TenantKeyRow {
    pub(crate) fn into_model(self) -> Result<TenantKeyRecord> {
        Ok(TenantKeyRecord {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            purpose: KeyPurpose::parse(&self.purpose)?,
            version: version(self.version)?,
            key_id: self.key_id,
            wrapped: hex::decode(&self.wrapped).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
        })
    }
}

#[async_trait]
impl KeyRepo for SqlTx {
    async fn insert_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        const Q: &str = "INSERT INTO tenant_keys (tenant_id, purpose, version, key_id, wrapped, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(k.tenant_id.to_string())
            .bind(k.purpose.as_str())
            .bind(i64::from(k.version))
            .bind(&k.key_id)
            .bind(hex::encode(&k.wrapped))
            .bind(ms(k.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn tenant_key(
        &mut self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: Option<u32>,
    ) -> Result<Option<TenantKeyRecord>> {
        const ONE: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                           WHERE tenant_id = $1 AND purpose = $2 AND version = $3";
        const NEWEST: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                              WHERE tenant_id = $1 AND purpose = $2 ORDER BY version DESC LIMIT 1";
        let t = tenant.to_string();
        let row: Option<TenantKeyRow> = match version {
            Some(v) => on!(self, |c| sqlx::query_as(ONE)
                .bind(&t)
                .bind(purpose.as_str())
                .bind(i64::from(v))
                .fetch_optional(c)
                .await),
            None => on!(self, |c| sqlx::query_as(NEWEST).bind(&t).bind(purpose.as_str()).fetch_optional(c).await),
        }
        .map_err(db)?;
        row.map(TenantKeyRow::into_model).transpose()
    }

    async fn tenant_keys(&mut self, tenant: TenantId, purpose: KeyPurpose) -> Result<Vec<TenantKeyRecord>> {
        const Q: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                         WHERE tenant_id = $1 AND purpose = $2 ORDER BY version";
        let rows: Vec<TenantKeyRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(purpose.as_str()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, TenantKeyRow::into_model)
    }

    async fn destroy_tenant_keys(&mut self, tenant: TenantId) -> Result<u64> {
        const Q: &str = "DELETE FROM tenant_keys WHERE tenant_id = $1";
        on!(self, |c| sqlx::query(Q).bind(tenant.to_string()).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }

    async fn lock_tenant_keys(&mut self) -> Result<()> {
        match &mut self.inner {
            // A SQLite writer already holds the database's only write lock.
            Inner::Sqlite(_) => Ok(()),
            Inner::Pg(t) => sqlx::query("LOCK TABLE tenant_keys IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut **t)
                .await
                .map(|_| ())
                .map_err(db),
        }
    }

    async fn all_tenant_keys(&mut self) -> Result<Vec<TenantKeyRecord>> {
        const Q: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                         ORDER BY tenant_id, purpose, version";
        let rows: Vec<TenantKeyRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, TenantKeyRow::into_model)
    }

    async fn rewrap_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        const Q: &str = "UPDATE tenant_keys SET key_id = $4, wrapped = $5 \
                         WHERE tenant_id = $1 AND purpose = $2 AND version = $3";
        on!(self, |c| sqlx::query(Q)
            .bind(k.tenant_id.to_string())
            .bind(k.purpose.as_str())
            .bind(i64::from(k.version))
            .bind(&k.key_id)
            .bind(hex::encode(&k.wrapped))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}
