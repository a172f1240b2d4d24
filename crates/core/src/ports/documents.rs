//! Documents, their DLP flags, and the removal of a document's record.

use crate::error::Result;
use crate::ids::{DocumentId, MatterId, TenantId};
use crate::model::{Document, DocumentFlag, FlagState};
use crate::policy::MatterGrant;
use async_trait::async_trait;

#[async_trait]
pub trait DocumentRepo: Send {
    async fn insert_document(&mut self, grant: &MatterGrant, d: &Document) -> Result<()>;
    async fn list_documents(&mut self, grant: &MatterGrant) -> Result<Vec<Document>>;
    /// A document of this tenant (before authorization: callers pass its matter to the policy).
    async fn document(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<Document>>;
    async fn insert_document_flag(&mut self, grant: &MatterGrant, flag: &DocumentFlag) -> Result<()>;
    async fn document_flag(&mut self, tenant: TenantId, document: DocumentId) -> Result<Option<DocumentFlag>>;
    /// Flags of one matter (or of every matter), optionally in one state only.
    async fn document_flags(
        &mut self,
        tenant: TenantId,
        matter: Option<MatterId>,
        state: Option<FlagState>,
    ) -> Result<Vec<DocumentFlag>>;
    async fn set_document_flag_state(
        &mut self,
        tenant: TenantId,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool>;
    /// Remove a document's record (and its flag); the caller deletes its stored bytes.
    async fn delete_document(&mut self, tenant: TenantId, document: DocumentId) -> Result<bool>;
}
