//! Documents and their DLP flags in SQL.

use super::{SqlTx, db, ms, size_i64};
use crate::rows::{self, id, version};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{DocumentId, MatterId, TenantId};
use portcullis_core::model::{Document, DocumentFlag, FlagState};
use portcullis_core::policy::MatterGrant;
use portcullis_core::ports::DocumentRepo;

#[derive(sqlx::FromRow)]
pub(crate) struct DocumentRow {
    id: String,
    tenant_id: String,
    matter_id: String,
    name: String,
    size: i64,
    content_type: String,
    sha256: String,
    uploaded_by: String,
    created_at: i64,
    key_version: i64,
    blob_rev: String,
}

impl DocumentRow {
    pub(crate) fn into_model(self) -> Result<Document> {
        Ok(Document {
            id: id(&self.id, portcullis_core::ids::DocumentId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            matter_id: id(&self.matter_id, portcullis_core::ids::MatterId::from_uuid)?,
            name: self.name,
            size: u64::try_from(self.size).map_err(Error::internal)?,
            content_type: self.content_type,
            sha256: self.sha256,
            uploaded_by: id(&self.uploaded_by, portcullis_core::ids::UserId::from_uuid)?,
            created_at: from_millis(self.created_at),
            key_version: version(self.key_version)?,
            blob_rev: self.blob_rev,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FlagRow {
    tenant_id: String,
    document_id: String,
    matter_id: String,
    state: String,
    findings: String,
    created_at: i64,
}

impl FlagRow {
    pub(crate) fn into_model(self) -> Result<portcullis_core::model::DocumentFlag> {
        Ok(portcullis_core::model::DocumentFlag {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            document_id: id(&self.document_id, portcullis_core::ids::DocumentId::from_uuid)?,
            matter_id: id(&self.matter_id, portcullis_core::ids::MatterId::from_uuid)?,
            state: portcullis_core::model::FlagState::parse(&self.state)?,
            findings: self.findings,
            created_at: from_millis(self.created_at),
        })
    }
}

#[async_trait]
impl DocumentRepo for SqlTx {
    async fn insert_document(&mut self, grant: &MatterGrant, d: &Document) -> Result<()> {
        if grant.tenant_id() != d.tenant_id || grant.matter_id() != d.matter_id {
            return Err(Error::NotFound);
        }
        const Q: &str = concat!(
            "INSERT INTO documents (",
            document_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let size = size_i64(d.size)?;
        on!(self, |c| sqlx::query(Q)
            .bind(d.id.to_string())
            .bind(d.tenant_id.to_string())
            .bind(d.matter_id.to_string())
            .bind(&d.name)
            .bind(size)
            .bind(&d.content_type)
            .bind(&d.sha256)
            .bind(d.uploaded_by.to_string())
            .bind(ms(d.created_at))
            .bind(i64::from(d.key_version))
            .bind(&d.blob_rev)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn list_documents(&mut self, grant: &MatterGrant) -> Result<Vec<Document>> {
        const Q: &str = concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents WHERE tenant_id = $1 AND matter_id = $2 ORDER BY created_at DESC"
        );
        let rows: Vec<DocumentRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, DocumentRow::into_model)
    }

    async fn document(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<Document>> {
        const Q: &str = concat!("SELECT ", document_columns!(), " FROM documents WHERE tenant_id = $1 AND id = $2");
        let row: Option<DocumentRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(DocumentRow::into_model).transpose()
    }

    async fn insert_document_flag(&mut self, grant: &MatterGrant, f: &DocumentFlag) -> Result<()> {
        if grant.tenant_id() != f.tenant_id || grant.matter_id() != f.matter_id {
            return Err(Error::NotFound);
        }
        const Q: &str = "INSERT INTO document_flags (tenant_id, document_id, matter_id, state, findings, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(f.tenant_id.to_string())
            .bind(f.document_id.to_string())
            .bind(f.matter_id.to_string())
            .bind(f.state.as_str())
            .bind(&f.findings)
            .bind(ms(f.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn document_flag(&mut self, tenant: TenantId, document: DocumentId) -> Result<Option<DocumentFlag>> {
        const Q: &str = "SELECT tenant_id, document_id, matter_id, state, findings, created_at FROM document_flags \
                         WHERE tenant_id = $1 AND document_id = $2";
        let row: Option<FlagRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        row.map(FlagRow::into_model).transpose()
    }

    async fn document_flags(
        &mut self,
        tenant: TenantId,
        matter: Option<MatterId>,
        state: Option<FlagState>,
    ) -> Result<Vec<DocumentFlag>> {
        const Q: &str = "SELECT tenant_id, document_id, matter_id, state, findings, created_at FROM document_flags \
                         WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR matter_id = $2) \
                         AND (CAST($3 AS TEXT) IS NULL OR state = $3) ORDER BY created_at DESC LIMIT 1000";
        let rows: Vec<FlagRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(matter.map(|m| m.to_string()))
            .bind(state.map(|s| s.as_str()))
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, FlagRow::into_model)
    }

    async fn set_document_flag_state(
        &mut self,
        tenant: TenantId,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool> {
        const Q: &str = "UPDATE document_flags SET state = $3 WHERE tenant_id = $1 AND document_id = $2";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .bind(state.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }

    async fn delete_document(&mut self, tenant: TenantId, document: DocumentId) -> Result<bool> {
        const FLAG: &str = "DELETE FROM document_flags WHERE tenant_id = $1 AND document_id = $2";
        const DOC: &str = "DELETE FROM documents WHERE tenant_id = $1 AND id = $2";
        on!(self, |c| sqlx::query(FLAG)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        let n = on!(self, |c| sqlx::query(DOC)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }
}
