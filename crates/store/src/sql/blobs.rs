//! Stored objects waiting to be deleted in SQL (the `blob_garbage` table).

use super::{SqlTx, db, ms};
use async_trait::async_trait;
use portcullis_core::error::Result;
use portcullis_core::ids::TenantId;
use portcullis_core::ports::BlobRepo;
use time::OffsetDateTime;

#[async_trait]
impl BlobRepo for SqlTx {
    async fn mark_blob(&mut self, tenant: TenantId, key: &str, pending: bool, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "INSERT INTO blob_garbage (blob_key, tenant_id, state, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (blob_key) DO UPDATE SET state = excluded.state";
        on!(self, |c| sqlx::query(Q)
            .bind(key)
            .bind(tenant.to_string())
            .bind(if pending { "pending" } else { "replaced" })
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn claim_pending_blob(&mut self, key: &str) -> Result<bool> {
        const Q: &str = "DELETE FROM blob_garbage WHERE blob_key = $1 AND state = 'pending'";
        let n = on!(self, |c| sqlx::query(Q).bind(key).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(n == 1)
    }

    async fn abandon_pending_blobs(&mut self, tenant: TenantId) -> Result<u64> {
        const Q: &str = "UPDATE blob_garbage SET state = 'replaced' WHERE tenant_id = $1 AND state = 'pending'";
        on!(self, |c| sqlx::query(Q).bind(tenant.to_string()).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }

    async fn replaced_blobs(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<String>> {
        const Q: &str = "SELECT blob_key FROM blob_garbage WHERE tenant_id = $1 AND state = 'replaced' \
                         ORDER BY blob_key LIMIT $2";
        on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(limit).fetch_all(c).await).map_err(db)
    }

    async fn forget_blob(&mut self, key: &str) -> Result<()> {
        const Q: &str = "DELETE FROM blob_garbage WHERE blob_key = $1";
        on!(self, |c| sqlx::query(Q).bind(key).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(())
    }

    async fn all_replaced_blobs(&mut self, limit: i64) -> Result<Vec<String>> {
        const Q: &str = "SELECT blob_key FROM blob_garbage WHERE state = 'replaced' ORDER BY blob_key LIMIT $1";
        on!(self, |c| sqlx::query_scalar(Q).bind(limit).fetch_all(c).await).map_err(db)
    }
}
