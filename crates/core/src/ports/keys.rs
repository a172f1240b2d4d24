//! Tenant keys: each tenant's wrapped data and index keys, by purpose and version.

use crate::error::Result;
use crate::ids::TenantId;
use crate::model::{KeyPurpose, TenantKeyRecord};
use async_trait::async_trait;

#[async_trait]
pub trait KeyRepo: Send {
    async fn insert_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()>;
    /// One version, or the newest when `version` is `None`.
    async fn tenant_key(
        &mut self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: Option<u32>,
    ) -> Result<Option<TenantKeyRecord>>;
    /// Every version, oldest first.
    async fn tenant_keys(&mut self, tenant: TenantId, purpose: KeyPurpose) -> Result<Vec<TenantKeyRecord>>;
    /// Delete every key of a tenant (crypto-shredding). Returns how many were deleted.
    async fn destroy_tenant_keys(&mut self, tenant: TenantId) -> Result<u64>;
    /// Keep other transactions from adding or changing tenant keys until this one ends (a
    /// master-key rotation must see every key).
    async fn lock_tenant_keys(&mut self) -> Result<()>;
    /// Every tenant key of every tenant (platform key operations only).
    async fn all_tenant_keys(&mut self) -> Result<Vec<TenantKeyRecord>>;
    /// Replace a key's wrapped form and the master key id that wrapped it.
    async fn rewrap_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()>;
}
