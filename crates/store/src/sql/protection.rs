//! Protective controls in SQL: the settings of a firm and its users' download counts.

use super::{SqlTx, db, ms, size_i64};
use async_trait::async_trait;
use portcullis_core::error::Result;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::ports::ProtectionRepo;
use time::OffsetDateTime;

#[async_trait]
impl ProtectionRepo for SqlTx {
    async fn protection_settings(&mut self, tenant: TenantId) -> Result<Option<String>> {
        const Q: &str = "SELECT settings FROM tenant_protection WHERE tenant_id = $1";
        on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).fetch_optional(c).await).map_err(db)
    }

    async fn set_protection_settings(&mut self, tenant: TenantId, settings: &str, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "INSERT INTO tenant_protection (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(settings)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn add_download(&mut self, tenant: TenantId, user: UserId, day: &str, bytes: u64) -> Result<()> {
        const Q: &str = "INSERT INTO download_usage (tenant_id, user_id, day, downloads, bytes) \
                         VALUES ($1, $2, $3, 1, $4) ON CONFLICT (tenant_id, user_id, day) DO UPDATE \
                         SET downloads = download_usage.downloads + 1, bytes = download_usage.bytes + excluded.bytes";
        let bytes = size_i64(bytes)?;
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(day)
            .bind(bytes)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<(u64, u64)> {
        const Q: &str =
            "SELECT downloads, bytes FROM download_usage WHERE tenant_id = $1 AND user_id = $2 AND day = $3";
        let row: Option<(i64, i64)> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(day)
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        let (n, b) = row.unwrap_or((0, 0));
        Ok((u64::try_from(n).unwrap_or(0), u64::try_from(b).unwrap_or(0)))
    }

    async fn reset_download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<bool> {
        const Q: &str = "DELETE FROM download_usage WHERE tenant_id = $1 AND user_id = $2 AND day = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(day)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }
}
