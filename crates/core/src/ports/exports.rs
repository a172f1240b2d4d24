//! Tenant exports (see `service::export`): the row an approval creates and the export job updates.

use crate::error::Result;
use crate::ids::{ApprovalId, TenantId};
use crate::model::{ExportState, TenantExport};
use async_trait::async_trait;

#[async_trait]
pub trait ExportRepo: Send {
    /// Record an approved tenant export (see `service::export`).
    async fn insert_export(&mut self, x: &TenantExport) -> Result<()>;
    async fn tenant_export(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<TenantExport>>;
    /// Exports of every tenant in `state`, oldest first.
    async fn exports_in_state(&mut self, state: ExportState) -> Result<Vec<TenantExport>>;
    /// Write an export's state, progress and outcome (every mutable column).
    async fn update_export(&mut self, x: &TenantExport) -> Result<()>;
}
