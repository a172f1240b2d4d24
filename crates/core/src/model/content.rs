//! A firm's client work: matters and their lists, documents and their stored copies, messages, and the sealed columns that hold client information.

use super::*;

/// A client case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matter {
    pub id: MatterId,
    pub tenant_id: TenantId,
    pub reference: String,
    pub title: String,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    /// An ethical wall: only the users on the matter's list see it, whatever their role.
    pub restricted: bool,
}

/// A user on a matter's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatterMember {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub added_at: OffsetDateTime,
}

/// A stored document's metadata. The bytes live in the blob store under `blob_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub id: DocumentId,
    pub tenant_id: TenantId,
    pub matter_id: MatterId,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-256 of the plaintext, for integrity checks and later deduplication.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub created_at: OffsetDateTime,
    /// The tenant key version its bytes are encrypted under (also in the stored header).
    pub key_version: u32,
    /// Which stored copy holds the bytes: empty for the copy written at upload, a fresh random
    /// revision for each copy a key rotation writes, so a new copy never overwrites the one in use.
    pub blob_rev: String,
}

impl Document {
    /// Where the bytes live; derived from tenant and document ids so it can never point across
    /// tenants.
    pub fn blob_key(&self) -> String {
        blob_key(self.tenant_id, self.id, &self.blob_rev)
    }
}

/// The blob-store key of a document's stored copy `rev`.
pub fn blob_key(tenant: TenantId, doc: DocumentId, rev: &str) -> String {
    if rev.is_empty() {
        format!("tenants/{tenant}/documents/{doc}")
    } else {
        format!("tenants/{tenant}/documents/{doc}.{rev}")
    }
}

/// A column holding client information sealed by `crypto::fields`. Each knows the "place" its
/// values are bound to (column, row and the ids the row hangs from), which both sealing and
/// re-encryption build from here so they always agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedColumn {
    UserEmail,
    UserDisplayName,
    MatterReference,
    MatterTitle,
    /// Bound to its matter as well.
    DocumentName,
    /// Bound to its matter and author as well.
    MessageBody,
    /// A user's TOTP secret (keyed by the user's id).
    TotpSecret,
    /// The secret of an enrolment waiting for its first code.
    TotpPending,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 8] = [
        SealedColumn::UserEmail,
        SealedColumn::UserDisplayName,
        SealedColumn::MatterReference,
        SealedColumn::MatterTitle,
        SealedColumn::DocumentName,
        SealedColumn::MessageBody,
        SealedColumn::TotpSecret,
        SealedColumn::TotpPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SealedColumn::UserEmail => "users.email",
            SealedColumn::UserDisplayName => "users.display_name",
            SealedColumn::MatterReference => "matters.reference",
            SealedColumn::MatterTitle => "matters.title",
            SealedColumn::DocumentName => "documents.name",
            SealedColumn::MessageBody => "messages.body",
            SealedColumn::TotpSecret => "user_totp.secret",
            SealedColumn::TotpPending => "totp_enrolments.secret",
        }
    }

    /// The place a value of this column in row `row` is sealed for; `binds` are the further ids
    /// the column is bound to (see the variants), in that order.
    pub fn place(self, row: uuid::Uuid, binds: &[uuid::Uuid]) -> String {
        let mut p = format!("{}:{row}", self.as_str());
        for b in binds {
            p.push(':');
            p.push_str(&b.to_string());
        }
        p
    }
}

/// One sealed value as stored, with what its place is built from; read and replaced by
/// re-encryption only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredField {
    pub column: SealedColumn,
    pub row: uuid::Uuid,
    pub binds: Vec<uuid::Uuid>,
    pub value: String,
}

impl StoredField {
    pub fn place(&self) -> String {
        self.column.place(self.row, &self.binds)
    }
}

/// A tenant-key rotation: a new data key version, and the re-encryption of everything under
/// older versions. Open until nothing older is left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRotation {
    pub tenant_id: TenantId,
    pub target_version: u32,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    /// Last sign of life from a worker, so servers leave a rotation alone while another
    /// process is working on it.
    pub heartbeat_at: Option<OffsetDateTime>,
    pub documents_done: u64,
    pub fields_done: u64,
}

/// A message on a matter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub matter_id: MatterId,
    pub author_id: UserId,
    pub author_name: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored values are bound to these exact strings: changing one makes existing data unreadable.
    #[test]
    fn sealed_places_keep_their_stored_form() {
        let (a, b, c) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert_eq!(SealedColumn::UserEmail.place(a, &[]), format!("users.email:{a}"));
        assert_eq!(SealedColumn::UserDisplayName.place(a, &[]), format!("users.display_name:{a}"));
        assert_eq!(SealedColumn::MatterReference.place(a, &[]), format!("matters.reference:{a}"));
        assert_eq!(SealedColumn::MatterTitle.place(a, &[]), format!("matters.title:{a}"));
        assert_eq!(SealedColumn::DocumentName.place(a, &[b]), format!("documents.name:{a}:{b}"));
        assert_eq!(SealedColumn::MessageBody.place(a, &[b, c]), format!("messages.body:{a}:{b}:{c}"));
        let f = StoredField { column: SealedColumn::MessageBody, row: a, binds: vec![b, c], value: String::new() };
        assert_eq!(f.place(), SealedColumn::MessageBody.place(a, &[b, c]));
    }

    #[test]
    fn blob_keys_name_each_copy() {
        let (t, d) = (TenantId::new(), DocumentId::new());
        assert_eq!(blob_key(t, d, ""), format!("tenants/{t}/documents/{d}"));
        assert_eq!(blob_key(t, d, "abc"), format!("tenants/{t}/documents/{d}.abc"));
    }
}
