//! Tenant exports in SQL: the row an approval creates and the export job updates as it writes
//! the archive.

use super::{SqlTx, db, ms, size_i64};
use crate::rows;
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{ApprovalId, TenantId, UserId};
use portcullis_core::model::{ExportState, TenantExport, export_blob_key};
use portcullis_core::ports::ExportRepo;

/// The columns of `tenant_exports`, in the order `ExportRow` uses.
macro_rules! export_columns {
    () => {
        "id, tenant_id, recipient, requested_by, approved_by, state, entries_done, entries_total, bytes_done, \
         bytes_total, archive_size, archive_sha256, manifest_sha256, error, created_at, finished_at, expires_at"
    };
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    id: String,
    tenant_id: String,
    recipient: String,
    requested_by: String,
    approved_by: String,
    state: String,
    entries_done: i64,
    entries_total: i64,
    bytes_done: i64,
    bytes_total: i64,
    archive_size: Option<i64>,
    archive_sha256: Option<String>,
    manifest_sha256: Option<String>,
    error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
    expires_at: Option<i64>,
}

fn count(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::internal(format!("stored count {n} is negative")))
}

impl ExportRow {
    fn into_model(self) -> Result<TenantExport> {
        Ok(TenantExport {
            id: rows::id(&self.id, ApprovalId::from_uuid)?,
            tenant_id: rows::id(&self.tenant_id, TenantId::from_uuid)?,
            recipient: self.recipient,
            requested_by: rows::id(&self.requested_by, UserId::from_uuid)?,
            approved_by: rows::id(&self.approved_by, UserId::from_uuid)?,
            state: ExportState::parse(&self.state)?,
            entries_done: count(self.entries_done)?,
            entries_total: count(self.entries_total)?,
            bytes_done: count(self.bytes_done)?,
            bytes_total: count(self.bytes_total)?,
            archive_size: self.archive_size.map(count).transpose()?,
            archive_sha256: self.archive_sha256,
            manifest_sha256: self.manifest_sha256,
            error: self.error,
            created_at: from_millis(self.created_at),
            finished_at: self.finished_at.map(from_millis),
            expires_at: self.expires_at.map(from_millis),
        })
    }
}

impl SqlTx {
    /// The blob keys of a tenant's stored export archives (for erasure).
    pub(super) async fn exp_blob_keys(&mut self, tenant: TenantId) -> Result<Vec<String>> {
        const Q: &str = "SELECT id FROM tenant_exports WHERE tenant_id = $1 AND state = 'done' ORDER BY id";
        let ids: Vec<String> =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).fetch_all(c).await).map_err(db)?;
        ids.iter().map(|id| Ok(export_blob_key(tenant, rows::id(id, ApprovalId::from_uuid)?))).collect()
    }
}

#[async_trait]
impl ExportRepo for SqlTx {
    /// The row's fixed columns; every mutable one is then written by [`Self::update_export`].
    async fn insert_export(&mut self, x: &TenantExport) -> Result<()> {
        const Q: &str = "INSERT INTO tenant_exports (id, tenant_id, recipient, requested_by, approved_by, state, \
                         entries_done, entries_total, bytes_done, bytes_total, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, $7)";
        on!(self, |c| sqlx::query(Q)
            .bind(x.id.to_string())
            .bind(x.tenant_id.to_string())
            .bind(&x.recipient)
            .bind(x.requested_by.to_string())
            .bind(x.approved_by.to_string())
            .bind(x.state.as_str())
            .bind(ms(x.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        self.update_export(x).await
    }
    async fn tenant_export(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<TenantExport>> {
        const Q: &str = concat!("SELECT ", export_columns!(), " FROM tenant_exports WHERE tenant_id = $1 AND id = $2");
        let row: Option<ExportRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(ExportRow::into_model).transpose()
    }
    async fn exports_in_state(&mut self, state: ExportState) -> Result<Vec<TenantExport>> {
        const Q: &str =
            concat!("SELECT ", export_columns!(), " FROM tenant_exports WHERE state = $1 ORDER BY created_at, id");
        let rows: Vec<ExportRow> =
            on!(self, |c| sqlx::query_as(Q).bind(state.as_str()).fetch_all(c).await).map_err(db)?;
        rows.into_iter().map(ExportRow::into_model).collect()
    }
    async fn update_export(&mut self, x: &TenantExport) -> Result<()> {
        const Q: &str = "UPDATE tenant_exports SET state = $3, entries_done = $4, entries_total = $5, \
                         bytes_done = $6, bytes_total = $7, archive_size = $8, archive_sha256 = $9, \
                         manifest_sha256 = $10, error = $11, finished_at = $12, expires_at = $13 \
                         WHERE tenant_id = $1 AND id = $2";
        let (e_done, e_total) = (size_i64(x.entries_done)?, size_i64(x.entries_total)?);
        let (b_done, b_total) = (size_i64(x.bytes_done)?, size_i64(x.bytes_total)?);
        let size = x.archive_size.map(size_i64).transpose()?;
        let n = on!(self, |c| sqlx::query(Q)
            .bind(x.tenant_id.to_string())
            .bind(x.id.to_string())
            .bind(x.state.as_str())
            .bind(e_done)
            .bind(e_total)
            .bind(b_done)
            .bind(b_total)
            .bind(size)
            .bind(&x.archive_sha256)
            .bind(&x.manifest_sha256)
            .bind(&x.error)
            .bind(x.finished_at.map(ms))
            .bind(x.expires_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        if n == 1 { Ok(()) } else { Err(Error::NotFound) }
    }
}
