//! Stored objects waiting to be deleted (see the `blob_garbage` table).

use crate::error::Result;
use crate::ids::TenantId;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait BlobRepo: Send {
    /// Record (or re-mark) an object: `pending` while it is written, else replaced.
    async fn mark_blob(&mut self, tenant: TenantId, key: &str, pending: bool, at: OffsetDateTime) -> Result<()>;
    /// Take a pending object into use: removes its row; false if it was swept meanwhile.
    async fn claim_pending_blob(&mut self, key: &str) -> Result<bool>;
    /// Turn every pending object of a tenant into a replaced one (their writers are presumed gone).
    async fn abandon_pending_blobs(&mut self, tenant: TenantId) -> Result<u64>;
    /// Replaced objects of a tenant, to delete.
    async fn replaced_blobs(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<String>>;
    /// Forget an object once it is deleted.
    async fn forget_blob(&mut self, key: &str) -> Result<()>;
    /// Replaced objects of every tenant, to delete once no backup holds them back.
    async fn all_replaced_blobs(&mut self, limit: i64) -> Result<Vec<String>>;
}
