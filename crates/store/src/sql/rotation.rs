//! Tenant-key rotation in SQL: rotation rows, and the documents and sealed values still under an
//! older key.

use super::documents::DocumentRow;
use super::{SqlTx, db, ms, size_i64};
use crate::rows::{self, count, id, version};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{DocumentId, TenantId};
use portcullis_core::model::{Document, KeyRotation, SealedColumn, StoredField};
use portcullis_core::policy::RotationReach;
use portcullis_core::ports::RotationRepo;
use time::OffsetDateTime;

/// The columns of `key_rotations`, in the order `KeyRotationRow` uses.
macro_rules! rotation_columns {
    () => {
        "tenant_id, target_version, started_at, finished_at, heartbeat_at, documents_done, fields_done"
    };
}

/// The statements re-encryption runs on one sealed column. Built from literals at compile time:
/// no name ever comes from input.
struct FieldSql {
    select: &'static str,
    count: &'static str,
    update: &'static str,
}

macro_rules! field_sql {
    ($table:literal, $col:literal, $bind1:literal, $bind2:literal) => {
        FieldSql {
            select: concat!(
                "SELECT id, ",
                $bind1,
                " AS bind1, ",
                $bind2,
                " AS bind2, ",
                $col,
                " AS value FROM ",
                $table,
                " WHERE tenant_id = $1 AND ",
                $col,
                " NOT LIKE $2 AND id > $3 ORDER BY id LIMIT $4"
            ),
            count: concat!("SELECT COUNT(*) FROM ", $table, " WHERE tenant_id = $1 AND ", $col, " NOT LIKE $2"),
            update: concat!(
                "UPDATE ",
                $table,
                " SET ",
                $col,
                " = $4 WHERE tenant_id = $1 AND id = $2 AND ",
                $col,
                " = $3"
            ),
        }
    };
}

/// Where each sealed column lives, and the ids its place binds (see `SealedColumn`).
fn field_sql(column: SealedColumn) -> FieldSql {
    match column {
        SealedColumn::UserEmail => field_sql!("users", "email", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)"),
        SealedColumn::UserDisplayName => {
            field_sql!("users", "display_name", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)")
        }
        SealedColumn::MatterReference => {
            field_sql!("matters", "reference", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)")
        }
        SealedColumn::MatterTitle => field_sql!("matters", "title", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)"),
        SealedColumn::DocumentName => field_sql!("documents", "name", "matter_id", "CAST(NULL AS TEXT)"),
        SealedColumn::MessageBody => field_sql!("messages", "body", "matter_id", "author_id"),
        SealedColumn::TotpSecret => field_sql!("user_totp", "secret", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)"),
        SealedColumn::TotpPending => {
            field_sql!("totp_enrolments", "secret", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)")
        }
    }
}

/// The LIKE pattern of values sealed under key `version`.
fn current_pattern(version: u32) -> String {
    format!("{}%", portcullis_core::crypto::fields::version_prefix(version))
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRotationRow {
    tenant_id: String,
    target_version: i64,
    started_at: i64,
    finished_at: Option<i64>,
    heartbeat_at: Option<i64>,
    documents_done: i64,
    fields_done: i64,
}

impl KeyRotationRow {
    pub(crate) fn into_model(self) -> Result<KeyRotation> {
        Ok(KeyRotation {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            target_version: version(self.target_version)?,
            started_at: from_millis(self.started_at),
            finished_at: self.finished_at.map(from_millis),
            heartbeat_at: self.heartbeat_at.map(from_millis),
            documents_done: count(self.documents_done)?,
            fields_done: count(self.fields_done)?,
        })
    }
}

/// A sealed value as `stale_fields` selects it: the row id, up to two ids its place is bound
/// to (NULL where the column has fewer), and the value.
#[derive(sqlx::FromRow)]
pub(crate) struct FieldRow {
    id: String,
    bind1: Option<String>,
    bind2: Option<String>,
    value: String,
}

impl FieldRow {
    pub(crate) fn into_field(self, column: SealedColumn) -> Result<StoredField> {
        let binds = [self.bind1, self.bind2].into_iter().flatten().map(|b| id(&b, |u| u)).collect::<Result<_>>()?;
        Ok(StoredField { column, row: id(&self.id, |u| u)?, binds, value: self.value })
    }
}

#[async_trait]
impl RotationRepo for SqlTx {
    async fn insert_key_rotation(&mut self, r: &KeyRotation) -> Result<()> {
        const Q: &str = "INSERT INTO key_rotations (tenant_id, target_version, started_at, finished_at, heartbeat_at, \
                         documents_done, fields_done) VALUES ($1, $2, $3, NULL, NULL, 0, 0)";
        on!(self, |c| sqlx::query(Q)
            .bind(r.tenant_id.to_string())
            .bind(i64::from(r.target_version))
            .bind(ms(r.started_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn latest_key_rotation(&mut self, tenant: TenantId) -> Result<Option<KeyRotation>> {
        const Q: &str = concat!(
            "SELECT ",
            rotation_columns!(),
            " FROM key_rotations WHERE tenant_id = $1 ORDER BY target_version DESC LIMIT 1"
        );
        let row: Option<KeyRotationRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(KeyRotationRow::into_model).transpose()
    }

    async fn open_key_rotations(&mut self) -> Result<Vec<KeyRotation>> {
        const Q: &str = concat!(
            "SELECT ",
            rotation_columns!(),
            " FROM key_rotations WHERE finished_at IS NULL ORDER BY started_at"
        );
        let rows: Vec<KeyRotationRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, KeyRotationRow::into_model)
    }

    async fn touch_key_rotation(
        &mut self,
        tenant: TenantId,
        target: u32,
        at: OffsetDateTime,
        documents: u64,
        fields: u64,
    ) -> Result<()> {
        const Q: &str = "UPDATE key_rotations SET heartbeat_at = $3, documents_done = documents_done + $4, \
                         fields_done = fields_done + $5 WHERE tenant_id = $1 AND target_version = $2";
        let (documents, fields) = (size_i64(documents)?, size_i64(fields)?);
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(target))
            .bind(ms(at))
            .bind(documents)
            .bind(fields)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn finish_key_rotation(&mut self, tenant: TenantId, target: u32, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE key_rotations SET finished_at = $3, heartbeat_at = $3 \
                         WHERE tenant_id = $1 AND target_version = $2 AND finished_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(target))
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn reopen_key_rotation(&mut self, tenant: TenantId, target: u32) -> Result<()> {
        const Q: &str = "UPDATE key_rotations SET finished_at = NULL WHERE tenant_id = $1 AND target_version = $2";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(target))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn documents_below_version(
        &mut self,
        reach: &RotationReach,
        after: Option<DocumentId>,
        limit: i64,
    ) -> Result<Vec<Document>> {
        let (tenant, version) = (reach.tenant_id(), reach.target());
        const Q: &str = concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents WHERE tenant_id = $1 AND key_version < $2 AND id > $3 ORDER BY id LIMIT $4"
        );
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows: Vec<DocumentRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(i64::from(version))
            .bind(&after)
            .bind(limit)
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, DocumentRow::into_model)
    }

    async fn count_documents_below_version(&mut self, tenant: TenantId, version: u32) -> Result<u64> {
        const Q: &str = "SELECT COUNT(*) FROM documents WHERE tenant_id = $1 AND key_version < $2";
        let n: i64 =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(i64::from(version)).fetch_one(c).await)
                .map_err(db)?;
        u64::try_from(n).map_err(Error::internal)
    }

    async fn switch_document_copy(
        &mut self,
        reach: &RotationReach,
        id: DocumentId,
        from_rev: &str,
        to_rev: &str,
    ) -> Result<bool> {
        let (tenant, to_version) = (reach.tenant_id(), reach.target());
        const Q: &str = "UPDATE documents SET key_version = $4, blob_rev = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND blob_rev = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(from_rev)
            .bind(i64::from(to_version))
            .bind(to_rev)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn stale_fields(
        &mut self,
        reach: &RotationReach,
        column: SealedColumn,
        after: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredField>> {
        let (tenant, version) = (reach.tenant_id(), reach.target());
        let q = field_sql(column).select;
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows: Vec<FieldRow> = on!(self, |c| sqlx::query_as(q)
            .bind(tenant.to_string())
            .bind(current_pattern(version))
            .bind(&after)
            .bind(limit)
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows.into_iter().map(|r| r.into_field(column)).collect()
    }

    async fn count_stale_fields(&mut self, tenant: TenantId, column: SealedColumn, version: u32) -> Result<u64> {
        let q = field_sql(column).count;
        let n: i64 = on!(self, |c| sqlx::query_scalar(q)
            .bind(tenant.to_string())
            .bind(current_pattern(version))
            .fetch_one(c)
            .await)
        .map_err(db)?;
        u64::try_from(n).map_err(Error::internal)
    }

    async fn replace_field(&mut self, reach: &RotationReach, field: &StoredField, sealed: &str) -> Result<bool> {
        let tenant = reach.tenant_id();
        let q = field_sql(field.column).update;
        let n = on!(self, |c| sqlx::query(q)
            .bind(tenant.to_string())
            .bind(field.row.to_string())
            .bind(&field.value)
            .bind(sealed)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
}
