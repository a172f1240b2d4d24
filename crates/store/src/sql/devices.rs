//! Known devices in SQL.

use super::{SqlTx, db, ms};
use async_trait::async_trait;
use portcullis_core::error::Result;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::KnownDevice;
use portcullis_core::ports::DeviceRepo;
use time::OffsetDateTime;

#[async_trait]
impl DeviceRepo for SqlTx {
    async fn touch_known_device(
        &mut self,
        tenant: TenantId,
        user: UserId,
        device_hash: &str,
        at: OffsetDateTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<bool> {
        const Q: &str = "UPDATE known_devices SET last_seen_at = $4, ip = $5, user_agent = $6 \
                         WHERE tenant_id = $1 AND user_id = $2 AND device_hash = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(device_hash)
            .bind(ms(at))
            .bind(ip)
            .bind(user_agent)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_known_device(&mut self, d: &KnownDevice) -> Result<()> {
        const Q: &str = "INSERT INTO known_devices (tenant_id, user_id, device_hash, first_seen_at, last_seen_at, \
                         user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on!(self, |c| sqlx::query(Q)
            .bind(d.tenant_id.to_string())
            .bind(d.user_id.to_string())
            .bind(&d.device_hash)
            .bind(ms(d.first_seen_at))
            .bind(ms(d.last_seen_at))
            .bind(&d.user_agent)
            .bind(&d.ip)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}
