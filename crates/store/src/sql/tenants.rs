//! Tenants in SQL: their rows, and the firm-wide two-factor settings.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::Result;
use portcullis_core::ids::TenantId;
use portcullis_core::model::{Tenant, TenantStatus};
use portcullis_core::ports::TenantRepo;

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: String,
    name: String,
    display_name: String,
    created_at: i64,
    two_factor_staff: i64,
    two_factor_clients: i64,
    status: String,
    ended_at: Option<i64>,
}

impl TenantRow {
    pub(crate) fn into_model(self) -> Result<Tenant> {
        Ok(Tenant {
            id: id(&self.id, portcullis_core::ids::TenantId::from_uuid)?,
            name: self.name,
            display_name: self.display_name,
            created_at: from_millis(self.created_at),
            two_factor_staff: self.two_factor_staff != 0,
            two_factor_clients: self.two_factor_clients != 0,
            status: TenantStatus::parse(&self.status)?,
            ended_at: self.ended_at.map(from_millis),
        })
    }
}

#[async_trait]
impl TenantRepo for SqlTx {
    async fn count_tenants(&mut self) -> Result<i64> {
        on!(self, |c| sqlx::query_scalar("SELECT COUNT(*) FROM tenants").fetch_one(c).await).map_err(db)
    }

    async fn insert_tenant(&mut self, t: &Tenant) -> Result<()> {
        const Q: &str =
            concat!("INSERT INTO tenants (", tenant_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on!(self, |c| sqlx::query(Q)
            .bind(t.id.to_string())
            .bind(&t.name)
            .bind(&t.display_name)
            .bind(ms(t.created_at))
            .bind(i64::from(t.two_factor_staff))
            .bind(i64::from(t.two_factor_clients))
            .bind(t.status.as_str())
            .bind(t.ended_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn tenant_by_name(&mut self, name: &str) -> Result<Option<Tenant>> {
        const Q: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE name = $1");
        let row: Option<TenantRow> = on!(self, |c| sqlx::query_as(Q).bind(name).fetch_optional(c).await).map_err(db)?;
        row.map(TenantRow::into_model).transpose()
    }

    async fn tenant(&mut self, id: TenantId) -> Result<Option<Tenant>> {
        const Q: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE id = $1");
        let row: Option<TenantRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(TenantRow::into_model).transpose()
    }

    async fn set_tenant_two_factor(&mut self, tenant: TenantId, staff: bool, clients: bool) -> Result<()> {
        const Q: &str = "UPDATE tenants SET two_factor_staff = $2, two_factor_clients = $3 WHERE id = $1";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(staff))
            .bind(i64::from(clients))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn tenant_ids(&mut self) -> Result<Vec<TenantId>> {
        const Q: &str = "SELECT id FROM tenants ORDER BY id";
        let ids: Vec<String> = on!(self, |c| sqlx::query_scalar(Q).fetch_all(c).await).map_err(db)?;
        ids.iter().map(|s| rows::id(s, TenantId::from_uuid)).collect()
    }
}
