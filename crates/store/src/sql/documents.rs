//! Documents and their DLP flags in SQL.

use super::matters::{on_list, unrestricted_or_listed};
use super::{SqlTx, db, ms, size_i64};
use crate::rows::{self, id, id as id_of, version};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{DocumentId, MatterId, TenantId};
use portcullis_core::model::{Document, DocumentFlag, FlagState};
use portcullis_core::policy::{MatterGrant, MatterListGrant, MatterVisibility, can};
use portcullis_core::ports::DocumentRepo;

/// The held-documents queue's select, up to its ethical-wall clause (see `matters`).
macro_rules! held_select {
    () => {
        "SELECT f.tenant_id, f.document_id, f.matter_id, f.state, f.findings, f.created_at \
         FROM document_flags f JOIN matters m ON m.tenant_id = f.tenant_id AND m.id = f.matter_id \
         WHERE f.tenant_id = $1 AND f.state = $3 AND "
    };
}

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
    async fn insert_document(&mut self, grant: &MatterGrant<can::UploadDocument>, d: &Document) -> Result<()> {
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

    async fn list_documents(&mut self, grant: &MatterGrant<can::ListDocuments>) -> Result<Vec<Document>> {
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

    async fn document_matter(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<MatterId>> {
        const Q: &str = "SELECT matter_id FROM documents WHERE tenant_id = $1 AND id = $2";
        let matter: Option<String> =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        matter.map(|m| id_of(&m, MatterId::from_uuid)).transpose()
    }

    async fn document(&mut self, grant: &MatterGrant<can::ReadDocument>, id: DocumentId) -> Result<Option<Document>> {
        self.matter_document(grant.tenant_id(), grant.matter_id(), id).await
    }

    async fn insert_document_flag(&mut self, grant: &MatterGrant<can::UploadDocument>, f: &DocumentFlag) -> Result<()> {
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

    async fn document_flag(
        &mut self,
        grant: &MatterGrant<can::ReadDocument>,
        document: DocumentId,
    ) -> Result<Option<DocumentFlag>> {
        Ok(self.flags_of(grant.tenant_id(), grant.matter_id(), Some(document)).await?.into_iter().next())
    }

    async fn matter_flags(&mut self, grant: &MatterGrant<can::ListDocuments>) -> Result<Vec<DocumentFlag>> {
        self.flags_of(grant.tenant_id(), grant.matter_id(), None).await
    }

    async fn flags_in_state(
        &mut self,
        grant: &MatterListGrant<can::ReviewHeldDocuments>,
        state: FlagState,
    ) -> Result<Vec<DocumentFlag>> {
        const UNRESTRICTED: &str =
            concat!(held_select!(), unrestricted_or_listed!(), " ORDER BY f.created_at DESC LIMIT 1000");
        const MEMBER: &str = concat!(held_select!(), on_list!(), " ORDER BY f.created_at DESC LIMIT 1000");
        // No person's grant sees the whole firm (only an approved export does); `$2` is still
        // bound, so the statement keeps the same parameters.
        const WHOLE: &str = concat!(held_select!(), "($2 = $2) ORDER BY f.created_at DESC LIMIT 1000");
        let (q, user) = match grant.visibility() {
            MatterVisibility::Unrestricted(u) => (UNRESTRICTED, u.to_string()),
            MatterVisibility::MemberOf(u) => (MEMBER, u.to_string()),
            MatterVisibility::WholeFirm => (WHOLE, String::new()),
        };
        let rows: Vec<FlagRow> = on!(self, |c| sqlx::query_as(q)
            .bind(grant.tenant_id().to_string())
            .bind(&user)
            .bind(state.as_str())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, FlagRow::into_model)
    }

    async fn held_document(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
    ) -> Result<Option<(Document, Option<DocumentFlag>)>> {
        let Some(d) = self.matter_document(grant.tenant_id(), grant.matter_id(), document).await? else {
            return Ok(None);
        };
        let flag = self.flags_of(grant.tenant_id(), grant.matter_id(), Some(document)).await?.into_iter().next();
        Ok(Some((d, flag)))
    }

    async fn set_document_flag_state(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool> {
        const Q: &str =
            "UPDATE document_flags SET state = $4 WHERE tenant_id = $1 AND matter_id = $2 AND document_id = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .bind(document.to_string())
            .bind(state.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }

    async fn delete_document(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
    ) -> Result<bool> {
        const FLAG: &str = "DELETE FROM document_flags WHERE tenant_id = $1 AND matter_id = $2 AND document_id = $3";
        const DOC: &str = "DELETE FROM documents WHERE tenant_id = $1 AND matter_id = $2 AND id = $3";
        let (tenant, matter, document) =
            (grant.tenant_id().to_string(), grant.matter_id().to_string(), document.to_string());
        on!(self, |c| sqlx::query(FLAG)
            .bind(&tenant)
            .bind(&matter)
            .bind(&document)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        let n = on!(self, |c| sqlx::query(DOC)
            .bind(&tenant)
            .bind(&matter)
            .bind(&document)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }
}

impl SqlTx {
    /// A document of one matter: every read of a document is bound to the matter its grant is for.
    async fn matter_document(
        &mut self,
        tenant: TenantId,
        matter: MatterId,
        id: DocumentId,
    ) -> Result<Option<Document>> {
        const Q: &str = concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents WHERE tenant_id = $1 AND matter_id = $2 AND id = $3"
        );
        let row: Option<DocumentRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(matter.to_string())
            .bind(id.to_string())
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        row.map(DocumentRow::into_model).transpose()
    }

    /// The flags of one matter's documents, or of one of them.
    async fn flags_of(
        &mut self,
        tenant: TenantId,
        matter: MatterId,
        document: Option<DocumentId>,
    ) -> Result<Vec<DocumentFlag>> {
        const Q: &str = "SELECT tenant_id, document_id, matter_id, state, findings, created_at FROM document_flags \
                         WHERE tenant_id = $1 AND matter_id = $2 AND (CAST($3 AS TEXT) IS NULL OR document_id = $3) \
                         ORDER BY created_at DESC LIMIT 1000";
        let rows: Vec<FlagRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(matter.to_string())
            .bind(document.map(|d| d.to_string()))
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, FlagRow::into_model)
    }
}
