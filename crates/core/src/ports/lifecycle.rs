//! Subscription lifecycle and erasure (see `service::lifecycle` and `service::erasure`).

use crate::error::Result;
use crate::ids::TenantId;
use crate::model::{ErasureRecord, Tenant, TenantStatus};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait LifecycleRepo: Send {
    /// Set a tenant's status and when its subscription ended (`None` once active again).
    async fn set_tenant_status(
        &mut self,
        tenant: TenantId,
        status: TenantStatus,
        ended_at: Option<OffsetDateTime>,
    ) -> Result<()>;
    /// End every session of the tenant and revoke every live API token of it, at `at`; how many
    /// sessions and tokens.
    async fn revoke_tenant_access(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<(u64, u64)>;
    /// Every tenant whose subscription has ended (status `ended`).
    async fn ended_tenants(&mut self) -> Result<Vec<Tenant>>;
    /// Record that the notice `days_before` destruction was queued for the ending at `ended_at`;
    /// false if it was already (each notice goes out once).
    async fn record_retention_notice(
        &mut self,
        tenant: TenantId,
        ended_at: OffsetDateTime,
        days_before: u32,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Add a row to the erasure ledger; false if the tenant already has one.
    async fn insert_erasure(&mut self, e: &ErasureRecord) -> Result<bool>;
    async fn erasure(&mut self, tenant: TenantId) -> Result<Option<ErasureRecord>>;
    async fn erasure_by_name(&mut self, name: &str) -> Result<Option<ErasureRecord>>;
    /// Ledger rows whose destruction has not finished, oldest first.
    async fn open_erasures(&mut self) -> Result<Vec<ErasureRecord>>;
    /// Record the crypto-shred: when, the counts so far, and the audit chain's final head;
    /// false if it was recorded already (by another node).
    async fn erasure_keys_destroyed(&mut self, e: &ErasureRecord) -> Result<bool>;
    /// Every stored object of the tenant: its documents' copies and the objects waiting to be
    /// deleted. Keys only (nothing that needs the tenant's keys to read).
    async fn tenant_blob_keys(&mut self, tenant: TenantId) -> Result<Vec<String>>;
    /// Delete every row of the tenant in every table, its audit chain and its tenant row; the
    /// rows deleted per table. The erasure ledger row must record the crypto-shred first (the
    /// database refuses to delete audit events otherwise).
    async fn delete_tenant_rows(&mut self, tenant: TenantId) -> Result<Vec<(String, u64)>>;
    /// Mark a destruction finished with its counts and certificate; false if it already was.
    async fn finish_erasure(&mut self, e: &ErasureRecord) -> Result<bool>;
    /// Finished erasures whose certificate mail has not gone out.
    async fn erasures_to_notify(&mut self) -> Result<Vec<ErasureRecord>>;
    /// The certificate mail went out: forget the addresses.
    async fn erasure_notified(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<()>;
    /// Finished erasures the backup target has not applied yet, oldest first.
    async fn unsynced_erasures(&mut self) -> Result<Vec<ErasureRecord>>;
    /// The backup target applied this erasure; false if it was marked already.
    async fn mark_erasure_synced(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<bool>;
}
