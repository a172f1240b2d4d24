//! Tenant-key rotation. Only the rotation use case calls these.

use crate::error::Result;
use crate::ids::{DocumentId, TenantId};
use crate::model::{Document, KeyRotation, SealedColumn, StoredField};
use crate::policy::RotationReach;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait RotationRepo: Send {
    /// Record a new rotation, in the transaction that adds its key version.
    async fn insert_key_rotation(&mut self, r: &KeyRotation) -> Result<()>;
    /// The tenant's newest rotation, open or finished.
    async fn latest_key_rotation(&mut self, tenant: TenantId) -> Result<Option<KeyRotation>>;
    /// Every open rotation, of every tenant.
    async fn open_key_rotations(&mut self) -> Result<Vec<KeyRotation>>;
    /// Add progress and a sign of life to an open rotation.
    async fn touch_key_rotation(
        &mut self,
        tenant: TenantId,
        target: u32,
        at: OffsetDateTime,
        documents: u64,
        fields: u64,
    ) -> Result<()>;
    /// Mark an open rotation finished, locking its row first; false if it was not open.
    async fn finish_key_rotation(&mut self, tenant: TenantId, target: u32, at: OffsetDateTime) -> Result<bool>;
    /// Open a rotation again: something was written under an older key version after it may
    /// have looked finished.
    async fn reopen_key_rotation(&mut self, tenant: TenantId, target: u32) -> Result<()>;
    /// The reach's documents under a key version below its target, by id, after `after` (a
    /// paging cursor).
    async fn documents_below_version(
        &mut self,
        reach: &RotationReach,
        after: Option<DocumentId>,
        limit: i64,
    ) -> Result<Vec<Document>>;
    async fn count_documents_below_version(&mut self, tenant: TenantId, version: u32) -> Result<u64>;
    /// Point a document at its stored copy `to_rev` under the reach's target version, if it
    /// still uses `from_rev`; false otherwise.
    async fn switch_document_copy(
        &mut self,
        reach: &RotationReach,
        id: DocumentId,
        from_rev: &str,
        to_rev: &str,
    ) -> Result<bool>;
    /// Values of `column` (as stored, sealed) not sealed under the reach's target version,
    /// after row `after`.
    async fn stale_fields(
        &mut self,
        reach: &RotationReach,
        column: SealedColumn,
        after: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredField>>;
    async fn count_stale_fields(&mut self, tenant: TenantId, column: SealedColumn, version: u32) -> Result<u64>;
    /// Replace a sealed value if it is still `field.value`; false if it changed meanwhile.
    async fn replace_field(&mut self, reach: &RotationReach, field: &StoredField, sealed: &str) -> Result<bool>;
}
