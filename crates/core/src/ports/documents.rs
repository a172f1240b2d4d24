//! Documents, their DLP flags, and the removal of a held document. Every method that reads or
//! writes a document takes the policy's grant of its permission on the document's matter, and
//! the query is bound to that matter: a grant for one matter opens none of another's documents.
//! Only [`DocumentRepo::document_matter`] comes before the policy, and it returns the matter to
//! ask about, nothing of the document.

use crate::error::Result;
use crate::ids::{DocumentId, MatterId, TenantId};
use crate::model::{Document, DocumentFlag, FlagState};
use crate::policy::{MatterGrant, MatterListGrant, can};
use async_trait::async_trait;

#[async_trait]
pub trait DocumentRepo: Send {
    async fn insert_document(&mut self, grant: &MatterGrant<can::UploadDocument>, d: &Document) -> Result<()>;
    async fn list_documents(&mut self, grant: &MatterGrant<can::ListDocuments>) -> Result<Vec<Document>>;
    /// The matter a document of this tenant belongs to, to ask the policy about.
    async fn document_matter(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<MatterId>>;
    async fn document(&mut self, grant: &MatterGrant<can::ReadDocument>, id: DocumentId) -> Result<Option<Document>>;
    async fn insert_document_flag(
        &mut self,
        grant: &MatterGrant<can::UploadDocument>,
        flag: &DocumentFlag,
    ) -> Result<()>;
    async fn document_flag(
        &mut self,
        grant: &MatterGrant<can::ReadDocument>,
        document: DocumentId,
    ) -> Result<Option<DocumentFlag>>;
    /// The flags of one matter's documents.
    async fn matter_flags(&mut self, grant: &MatterGrant<can::ListDocuments>) -> Result<Vec<DocumentFlag>>;
    /// The firm's documents in `state`, of the matters the grant sees (the walls bind the
    /// reviewers too), newest first.
    async fn flags_in_state(
        &mut self,
        grant: &MatterListGrant<can::ReviewHeldDocuments>,
        state: FlagState,
    ) -> Result<Vec<DocumentFlag>>;
    /// A document under review and its flag.
    async fn held_document(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
    ) -> Result<Option<(Document, Option<DocumentFlag>)>>;
    async fn set_document_flag_state(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool>;
    /// Remove a held document's record (and its flag); the caller deletes its stored bytes.
    async fn delete_document(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
    ) -> Result<bool>;
}
