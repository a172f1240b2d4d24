//! Tenants: their rows, names and firm-wide settings.

use crate::error::Result;
use crate::ids::TenantId;
use crate::model::Tenant;
use async_trait::async_trait;

#[async_trait]
pub trait TenantRepo: Send {
    async fn count_tenants(&mut self) -> Result<i64>;
    async fn insert_tenant(&mut self, t: &Tenant) -> Result<()>;
    async fn tenant_by_name(&mut self, name: &str) -> Result<Option<Tenant>>;
    async fn tenant(&mut self, id: TenantId) -> Result<Option<Tenant>>;
    async fn set_tenant_two_factor(&mut self, tenant: TenantId, staff: bool, clients: bool) -> Result<()>;
    /// Every tenant's id.
    async fn tenant_ids(&mut self) -> Result<Vec<TenantId>>;
}
