//! Transparent encryption of client information in the database. [`SealingTx`] wraps the
//! store's transaction: what the use cases write is sealed on the way in (see `fields`) and
//! opened on the way out, and equality lookups by email go through the blind index. The use
//! cases see plaintext; the store only ever sees ciphertext. Because the portal wraps every
//! transaction it opens, no use case can forget to encrypt.

use super::fields::FieldCipher;
use super::keys::Keyring;
use crate::audit::{AuditCheckpoint, NewEvent, StoredEvent};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, MatterId, PasskeyId, TenantId, UserId};
use crate::model::{
    ChallengePurpose, Document, DocumentFlag, ErasureRecord, FlagState, KeyPurpose, KeyRotation, Matter, MatterMember,
    Message, PasskeyRecord, PendingTotp, Role, SealedColumn, StoredField, Tenant, TenantKeyRecord, TenantStatus,
    TotpRecord, User, UserStatus, WebauthnChallenge,
};
use crate::policy::{AuditReach, MatterFacts, MatterGrant, MatterListGrant, RotationReach, TenantGrant, can};
use crate::ports::{
    AlertRepo, ApprovalRepo, AuditRepo, BlobRepo, DeviceRepo, DocumentRepo, ExportRepo, FactorRepo, IncidentRepo,
    IntrusionRepo, KeyRepo, LeaseRepo, LifecycleRepo, LinkRepo, LoginRepo, MatterRepo, MessageRepo, OperatorRepo,
    OutboxRepo, ProtectionRepo, RotationRepo, SessionRepo, TenantRepo, TokenRepo, Tx, UserRepo,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// The column used for the email blind index.
const EMAIL_INDEX: &str = "users.email";

/// A transaction whose client-information fields are encrypted at rest.
pub struct SealingTx {
    inner: Box<dyn Tx>,
    keyring: Arc<Keyring>,
    ciphers: HashMap<TenantId, FieldCipher>,
    /// The oldest data key version each tenant's writes in this transaction used: checked at
    /// commit against a rotation that may have started meanwhile.
    wrote_under: HashMap<TenantId, u32>,
}

impl std::fmt::Debug for SealingTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingTx").field("tenants", &self.ciphers.len()).finish_non_exhaustive()
    }
}

impl SealingTx {
    pub fn new(inner: Box<dyn Tx>, keyring: Arc<Keyring>) -> Self {
        Self { inner, keyring, ciphers: HashMap::new(), wrote_under: HashMap::new() }
    }

    /// The tenant's field cipher, built once per transaction from its stored keys.
    async fn cipher(&mut self, tenant: TenantId) -> Result<&FieldCipher> {
        if !self.ciphers.contains_key(&tenant) {
            let cipher = field_cipher(&mut *self.inner, &self.keyring, tenant).await?;
            self.ciphers.insert(tenant, cipher);
        }
        self.ciphers.get(&tenant).ok_or_else(|| Error::internal("field cipher vanished"))
    }

    /// The cipher for sealing a tenant's values, noting the key version they go under.
    async fn sealer(&mut self, tenant: TenantId) -> Result<&FieldCipher> {
        let version = self.cipher(tenant).await?.current();
        self.wrote_under(tenant, version);
        self.cipher(tenant).await
    }

    fn wrote_under(&mut self, tenant: TenantId, version: u32) {
        let v = self.wrote_under.entry(tenant).or_insert(version);
        *v = (*v).min(version);
    }
}

/// A tenant's field cipher from its stored keys: every data key version opens, the newest seals.
pub async fn field_cipher(tx: &mut dyn Tx, keyring: &Keyring, tenant: TenantId) -> Result<FieldCipher> {
    let mut data = Vec::new();
    for rec in tx.keys().tenant_keys(tenant, KeyPurpose::Data).await? {
        data.push((rec.version, unwrap(keyring, &rec).await?));
    }
    let index = tx
        .keys()
        .tenant_key(tenant, KeyPurpose::Index, None)
        .await?
        .ok_or_else(|| Error::Integrity("the tenant's index key does not exist".into()))?;
    let index = unwrap(keyring, &index).await?;
    FieldCipher::new(tenant, &data, &index)
}

async fn unwrap(keyring: &Keyring, rec: &TenantKeyRecord) -> Result<super::keys::KeyBytes> {
    keyring.tenant_key(rec.tenant_id, rec.purpose, rec.version, &rec.key_id, &rec.wrapped).await
}

/// The places of a user's sealed values.
fn user_places(id: UserId) -> (String, String) {
    let row = id.as_uuid();
    (SealedColumn::UserEmail.place(row, &[]), SealedColumn::UserDisplayName.place(row, &[]))
}

fn seal_user(c: &FieldCipher, u: &User) -> Result<User> {
    let (email, name) = user_places(u.id);
    Ok(User { email: c.seal(&email, &u.email)?, display_name: c.seal(&name, &u.display_name)?, ..u.clone() })
}

fn open_user(c: &FieldCipher, u: User) -> Result<User> {
    let (email, name) = user_places(u.id);
    Ok(User { email: c.open(&email, &u.email)?, display_name: c.open(&name, &u.display_name)?, ..u })
}

fn matter_places(m: &Matter) -> (String, String) {
    let row = m.id.as_uuid();
    (SealedColumn::MatterReference.place(row, &[]), SealedColumn::MatterTitle.place(row, &[]))
}

fn seal_matter(c: &FieldCipher, m: &Matter) -> Result<Matter> {
    let (reference, title) = matter_places(m);
    Ok(Matter { reference: c.seal(&reference, &m.reference)?, title: c.seal(&title, &m.title)?, ..m.clone() })
}

fn open_matter(c: &FieldCipher, m: Matter) -> Result<Matter> {
    let (reference, title) = matter_places(&m);
    Ok(Matter { reference: c.open(&reference, &m.reference)?, title: c.open(&title, &m.title)?, ..m })
}

/// Where a document's name lives: bound to its matter too, so a row moved to another matter
/// no longer opens.
fn document_place(d: &Document) -> String {
    SealedColumn::DocumentName.place(d.id.as_uuid(), &[d.matter_id.as_uuid()])
}

/// Where a message's body lives: bound to its matter and author too.
fn message_place(m: &Message) -> String {
    SealedColumn::MessageBody.place(m.id.as_uuid(), &[m.matter_id.as_uuid(), m.author_id.as_uuid()])
}

/// A user's TOTP secret, sealed in `column` (active or pending) of the user's row.
fn seal_secret(
    c: &FieldCipher,
    column: SealedColumn,
    user: UserId,
    secret: &secrecy::SecretString,
) -> Result<secrecy::SecretString> {
    use secrecy::ExposeSecret;
    Ok(secrecy::SecretString::from(c.seal(&column.place(user.as_uuid(), &[]), secret.expose_secret())?))
}

fn open_secret(
    c: &FieldCipher,
    column: SealedColumn,
    user: UserId,
    sealed: &secrecy::SecretString,
) -> Result<secrecy::SecretString> {
    use secrecy::ExposeSecret;
    Ok(secrecy::SecretString::from(c.open(&column.place(user.as_uuid(), &[]), sealed.expose_secret())?))
}

fn open_document(c: &FieldCipher, d: Document) -> Result<Document> {
    Ok(Document { name: c.open(&document_place(&d), &d.name)?, ..d })
}

fn open_message(c: &FieldCipher, m: Message) -> Result<Message> {
    let (_, author_name) = user_places(m.author_id);
    Ok(Message { body: c.open(&message_place(&m), &m.body)?, author_name: c.open(&author_name, &m.author_name)?, ..m })
}

fn open_member(c: &FieldCipher, m: MatterMember) -> Result<MatterMember> {
    let (email, name) = user_places(m.user_id);
    Ok(MatterMember { email: c.open(&email, &m.email)?, display_name: c.open(&name, &m.display_name)?, ..m })
}

// The lifecycle holds no sealed value. It is wrapped because destroying a tenant's keys or rows
// must drop the cipher this transaction cached for that tenant.
#[async_trait]
impl LifecycleRepo for SealingTx {
    async fn set_tenant_status(
        &mut self,
        tenant: TenantId,
        status: TenantStatus,
        ended_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        self.inner.lifecycle().set_tenant_status(tenant, status, ended_at).await
    }
    async fn revoke_tenant_access(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<(u64, u64)> {
        self.inner.lifecycle().revoke_tenant_access(tenant, at).await
    }
    async fn ended_tenants(&mut self) -> Result<Vec<Tenant>> {
        self.inner.lifecycle().ended_tenants().await
    }
    async fn record_retention_notice(
        &mut self,
        tenant: TenantId,
        ended_at: OffsetDateTime,
        days_before: u32,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.lifecycle().record_retention_notice(tenant, ended_at, days_before, at).await
    }
    async fn insert_erasure(&mut self, e: &ErasureRecord) -> Result<bool> {
        self.inner.lifecycle().insert_erasure(e).await
    }
    async fn erasure(&mut self, tenant: TenantId) -> Result<Option<ErasureRecord>> {
        self.inner.lifecycle().erasure(tenant).await
    }
    async fn erasure_by_name(&mut self, name: &str) -> Result<Option<ErasureRecord>> {
        self.inner.lifecycle().erasure_by_name(name).await
    }
    async fn open_erasures(&mut self) -> Result<Vec<ErasureRecord>> {
        self.inner.lifecycle().open_erasures().await
    }
    async fn erasure_keys_destroyed(&mut self, e: &ErasureRecord) -> Result<bool> {
        self.ciphers.remove(&e.tenant_id);
        self.inner.lifecycle().erasure_keys_destroyed(e).await
    }
    async fn tenant_blob_keys(&mut self, tenant: TenantId) -> Result<Vec<String>> {
        self.inner.lifecycle().tenant_blob_keys(tenant).await
    }
    async fn delete_tenant_rows(&mut self, tenant: TenantId) -> Result<Vec<(String, u64)>> {
        self.ciphers.remove(&tenant);
        self.inner.lifecycle().delete_tenant_rows(tenant).await
    }
    async fn finish_erasure(&mut self, e: &ErasureRecord) -> Result<bool> {
        self.inner.lifecycle().finish_erasure(e).await
    }
    async fn erasures_to_notify(&mut self) -> Result<Vec<ErasureRecord>> {
        self.inner.lifecycle().erasures_to_notify().await
    }
    async fn erasure_notified(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<()> {
        self.inner.lifecycle().erasure_notified(tenant, at).await
    }
    async fn unsynced_erasures(&mut self) -> Result<Vec<ErasureRecord>> {
        self.inner.lifecycle().unsynced_erasures().await
    }
    async fn mark_erasure_synced(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<bool> {
        self.inner.lifecycle().mark_erasure_synced(tenant, at).await
    }
}

// Tenant keys are wrapped by the keyring, not sealed here. Adding or destroying one drops the
// tenant's cached cipher, so the next use rebuilds it from the keys as they now are.
#[async_trait]
impl KeyRepo for SealingTx {
    async fn insert_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        self.ciphers.remove(&k.tenant_id);
        self.inner.keys().insert_tenant_key(k).await
    }
    async fn tenant_key(
        &mut self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: Option<u32>,
    ) -> Result<Option<TenantKeyRecord>> {
        self.inner.keys().tenant_key(tenant, purpose, version).await
    }
    async fn tenant_keys(&mut self, tenant: TenantId, purpose: KeyPurpose) -> Result<Vec<TenantKeyRecord>> {
        self.inner.keys().tenant_keys(tenant, purpose).await
    }
    async fn destroy_tenant_keys(&mut self, tenant: TenantId) -> Result<u64> {
        self.ciphers.remove(&tenant);
        self.inner.keys().destroy_tenant_keys(tenant).await
    }
    async fn lock_tenant_keys(&mut self) -> Result<()> {
        self.inner.keys().lock_tenant_keys().await
    }
    async fn all_tenant_keys(&mut self) -> Result<Vec<TenantKeyRecord>> {
        self.inner.keys().all_tenant_keys().await
    }
    async fn rewrap_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        self.inner.keys().rewrap_tenant_key(k).await
    }
}

#[async_trait]
impl UserRepo for SealingTx {
    async fn insert_user(&mut self, u: &User, email_lookup: &str, password_hash: Option<&str>) -> Result<()> {
        let c = self.sealer(u.tenant_id).await?;
        let (sealed, lookup) = (seal_user(c, u)?, c.blind(EMAIL_INDEX, email_lookup));
        self.inner.users().insert_user(&sealed, &lookup, password_hash).await
    }
    // The index tag is only a pointer: confirm the row really holds this email, so a tag
    // copied onto another row cannot redirect a sign-in.
    async fn user_by_email(&mut self, tenant: TenantId, email: &str) -> Result<Option<(User, Option<String>)>> {
        let lookup = self.cipher(tenant).await?.blind(EMAIL_INDEX, email);
        let found = self.inner.users().user_by_email(tenant, &lookup).await?;
        let c = self.cipher(tenant).await?;
        let Some((user, hash)) = found.map(|(u, h)| open_user(c, u).map(|u| (u, h))).transpose()? else {
            return Ok(None);
        };
        if !crate::authn::secret::equal(&user.email, email) {
            return Err(Error::Integrity("a user's email index does not match the email".into()));
        }
        Ok(Some((user, hash)))
    }
    async fn user(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>> {
        let found = self.inner.users().user(tenant, id).await?;
        let c = self.cipher(tenant).await?;
        found.map(|u| open_user(c, u)).transpose()
    }
    async fn set_password(&mut self, tenant: TenantId, id: UserId, hash: &str, status: UserStatus) -> Result<()> {
        self.inner.users().set_password(tenant, id, hash, status).await
    }
    async fn list_users(&mut self, grant: &TenantGrant<can::ListUsers>) -> Result<Vec<User>> {
        let found = self.inner.users().list_users(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        let mut users = found.into_iter().map(|u| open_user(c, u)).collect::<Result<Vec<_>>>()?;
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }
    async fn tenant_admins(&mut self, tenant: TenantId) -> Result<Vec<UserId>> {
        self.inner.users().tenant_admins(tenant).await
    }
    async fn set_user_status(&mut self, tenant: TenantId, id: UserId, status: UserStatus) -> Result<bool> {
        self.inner.users().set_user_status(tenant, id, status).await
    }
}

#[async_trait]
impl MatterRepo for SealingTx {
    async fn insert_matter(&mut self, grant: &TenantGrant<can::CreateMatter>, m: &Matter) -> Result<()> {
        let sealed = seal_matter(self.sealer(m.tenant_id).await?, m)?;
        self.inner.matters().insert_matter(grant, &sealed).await
    }
    async fn matter_facts(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<MatterFacts>> {
        self.inner.matters().matter_facts(tenant, matter, user).await
    }
    async fn matter(&mut self, grant: &MatterGrant<can::ViewMatter>) -> Result<Option<Matter>> {
        let found = self.inner.matters().matter(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.map(|m| open_matter(c, m)).transpose()
    }
    async fn list_matters(&mut self, grant: &MatterListGrant<can::ListMatters>) -> Result<Vec<Matter>> {
        let found = self.inner.matters().list_matters(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|m| open_matter(c, m)).collect()
    }
    async fn insert_member(
        &mut self,
        grant: &MatterGrant<can::ManageMembers>,
        user: UserId,
        role: Role,
        at: OffsetDateTime,
    ) -> Result<()> {
        self.inner.matters().insert_member(grant, user, role, at).await
    }
    async fn remove_member(&mut self, grant: &MatterGrant<can::ManageMembers>, user: UserId) -> Result<bool> {
        self.inner.matters().remove_member(grant, user).await
    }
    async fn remove_memberships(&mut self, grant: &TenantGrant<can::ManageUsers>, user: UserId) -> Result<u64> {
        self.inner.matters().remove_memberships(grant, user).await
    }
    async fn list_members(&mut self, grant: &MatterGrant<can::ListMembers>) -> Result<Vec<MatterMember>> {
        let found = self.inner.matters().list_members(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|m| open_member(c, m)).collect()
    }
}

#[async_trait]
impl DocumentRepo for SealingTx {
    async fn insert_document(&mut self, grant: &MatterGrant<can::UploadDocument>, d: &Document) -> Result<()> {
        self.wrote_under(d.tenant_id, d.key_version);
        let c = self.sealer(d.tenant_id).await?;
        let sealed = Document { name: c.seal(&document_place(d), &d.name)?, ..d.clone() };
        self.inner.documents().insert_document(grant, &sealed).await
    }
    async fn list_documents(&mut self, grant: &MatterGrant<can::ListDocuments>) -> Result<Vec<Document>> {
        let found = self.inner.documents().list_documents(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|d| open_document(c, d)).collect()
    }
    async fn document_matter(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<MatterId>> {
        self.inner.documents().document_matter(tenant, id).await
    }
    async fn document(&mut self, grant: &MatterGrant<can::ReadDocument>, id: DocumentId) -> Result<Option<Document>> {
        let found = self.inner.documents().document(grant, id).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.map(|d| open_document(c, d)).transpose()
    }
    async fn insert_document_flag(
        &mut self,
        grant: &MatterGrant<can::UploadDocument>,
        flag: &DocumentFlag,
    ) -> Result<()> {
        self.inner.documents().insert_document_flag(grant, flag).await
    }
    async fn document_flag(
        &mut self,
        grant: &MatterGrant<can::ReadDocument>,
        document: DocumentId,
    ) -> Result<Option<DocumentFlag>> {
        self.inner.documents().document_flag(grant, document).await
    }
    async fn matter_flags(&mut self, grant: &MatterGrant<can::ListDocuments>) -> Result<Vec<DocumentFlag>> {
        self.inner.documents().matter_flags(grant).await
    }
    async fn flags_in_state(
        &mut self,
        grant: &MatterListGrant<can::ReviewHeldDocuments>,
        state: FlagState,
    ) -> Result<Vec<DocumentFlag>> {
        self.inner.documents().flags_in_state(grant, state).await
    }
    async fn held_document(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
    ) -> Result<Option<(Document, Option<DocumentFlag>)>> {
        let found = self.inner.documents().held_document(grant, document).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.map(|(d, f)| Ok((open_document(c, d)?, f))).transpose()
    }
    async fn set_document_flag_state(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool> {
        self.inner.documents().set_document_flag_state(grant, document, state).await
    }
    async fn delete_document(
        &mut self,
        grant: &MatterGrant<can::ReviewHeldDocuments>,
        document: DocumentId,
    ) -> Result<bool> {
        self.inner.documents().delete_document(grant, document).await
    }
}

#[async_trait]
impl MessageRepo for SealingTx {
    async fn insert_message(&mut self, grant: &MatterGrant<can::PostMessage>, m: &Message) -> Result<()> {
        let c = self.sealer(m.tenant_id).await?;
        let sealed = Message { body: c.seal(&message_place(m), &m.body)?, ..m.clone() };
        self.inner.messages().insert_message(grant, &sealed).await
    }
    async fn list_messages(&mut self, grant: &MatterGrant<can::ReadMessages>) -> Result<Vec<Message>> {
        let found = self.inner.messages().list_messages(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|m| open_message(c, m)).collect()
    }
}

#[async_trait]
impl FactorRepo for SealingTx {
    async fn totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<TotpRecord>> {
        let found = self.inner.factors().totp(tenant, user).await?;
        let c = self.cipher(tenant).await?;
        found
            .map(|t| Ok(TotpRecord { secret: open_secret(c, SealedColumn::TotpSecret, user, &t.secret)?, ..t }))
            .transpose()
    }
    async fn put_totp(&mut self, t: &TotpRecord) -> Result<()> {
        let c = self.sealer(t.tenant_id).await?;
        let sealed =
            TotpRecord { secret: seal_secret(c, SealedColumn::TotpSecret, t.user_id, &t.secret)?, ..t.clone() };
        self.inner.factors().put_totp(&sealed).await
    }
    async fn use_totp_step(&mut self, tenant: TenantId, user: UserId, step: u64) -> Result<bool> {
        self.inner.factors().use_totp_step(tenant, user, step).await
    }
    async fn delete_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        self.inner.factors().delete_totp(tenant, user).await
    }
    async fn pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<PendingTotp>> {
        let found = self.inner.factors().pending_totp(tenant, user).await?;
        let c = self.cipher(tenant).await?;
        found
            .map(|t| Ok(PendingTotp { secret: open_secret(c, SealedColumn::TotpPending, user, &t.secret)?, ..t }))
            .transpose()
    }
    async fn put_pending_totp(&mut self, t: &PendingTotp) -> Result<()> {
        let c = self.sealer(t.tenant_id).await?;
        let sealed =
            PendingTotp { secret: seal_secret(c, SealedColumn::TotpPending, t.user_id, &t.secret)?, ..t.clone() };
        self.inner.factors().put_pending_totp(&sealed).await
    }
    async fn delete_pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        self.inner.factors().delete_pending_totp(tenant, user).await
    }
    async fn replace_recovery_codes(&mut self, tenant: TenantId, user: UserId, hashes: &[String]) -> Result<()> {
        self.inner.factors().replace_recovery_codes(tenant, user, hashes).await
    }
    async fn use_recovery_code(
        &mut self,
        tenant: TenantId,
        user: UserId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.factors().use_recovery_code(tenant, user, hash, at).await
    }
    async fn recovery_codes_left(&mut self, tenant: TenantId, user: UserId) -> Result<u64> {
        self.inner.factors().recovery_codes_left(tenant, user).await
    }
    async fn set_session_second_factor(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()> {
        self.inner.factors().set_session_second_factor(token_hash, at).await
    }
    async fn clear_enrol_required(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        self.inner.factors().clear_enrol_required(tenant, user).await
    }
    // Passkeys hold public keys and counters, no client information: they pass through.
    async fn passkeys(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyRecord>> {
        self.inner.factors().passkeys(tenant, user).await
    }
    async fn insert_passkey(&mut self, k: &PasskeyRecord) -> Result<()> {
        self.inner.factors().insert_passkey(k).await
    }
    async fn passkey_credential_exists(&mut self, credential_id: &str) -> Result<bool> {
        self.inner.factors().passkey_credential_exists(credential_id).await
    }
    async fn update_passkey(&mut self, k: &PasskeyRecord) -> Result<()> {
        self.inner.factors().update_passkey(k).await
    }
    async fn delete_passkey(&mut self, tenant: TenantId, user: UserId, id: PasskeyId) -> Result<bool> {
        self.inner.factors().delete_passkey(tenant, user, id).await
    }
    async fn insert_webauthn_challenge(&mut self, c: &WebauthnChallenge, now: OffsetDateTime) -> Result<()> {
        self.inner.factors().insert_webauthn_challenge(c, now).await
    }
    async fn take_webauthn_challenge(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: &str,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<Option<WebauthnChallenge>> {
        self.inner.factors().take_webauthn_challenge(tenant, user, id, purpose, now).await
    }
}

// A new rotation drops the tenant's cached cipher: its new key version seals from now on.
#[async_trait]
impl RotationRepo for SealingTx {
    // Rotation works on values as stored: they pass through sealed, untouched.
    async fn insert_key_rotation(&mut self, r: &KeyRotation) -> Result<()> {
        self.ciphers.remove(&r.tenant_id);
        self.inner.rotation().insert_key_rotation(r).await
    }
    async fn latest_key_rotation(&mut self, tenant: TenantId) -> Result<Option<KeyRotation>> {
        self.inner.rotation().latest_key_rotation(tenant).await
    }
    async fn open_key_rotations(&mut self) -> Result<Vec<KeyRotation>> {
        self.inner.rotation().open_key_rotations().await
    }
    async fn touch_key_rotation(
        &mut self,
        tenant: TenantId,
        target: u32,
        at: OffsetDateTime,
        documents: u64,
        fields: u64,
    ) -> Result<()> {
        self.inner.rotation().touch_key_rotation(tenant, target, at, documents, fields).await
    }
    async fn finish_key_rotation(&mut self, tenant: TenantId, target: u32, at: OffsetDateTime) -> Result<bool> {
        self.inner.rotation().finish_key_rotation(tenant, target, at).await
    }
    async fn reopen_key_rotation(&mut self, tenant: TenantId, target: u32) -> Result<()> {
        self.inner.rotation().reopen_key_rotation(tenant, target).await
    }
    async fn documents_below_version(
        &mut self,
        reach: &RotationReach,
        after: Option<DocumentId>,
        limit: i64,
    ) -> Result<Vec<Document>> {
        self.inner.rotation().documents_below_version(reach, after, limit).await
    }
    async fn count_documents_below_version(&mut self, tenant: TenantId, version: u32) -> Result<u64> {
        self.inner.rotation().count_documents_below_version(tenant, version).await
    }
    async fn switch_document_copy(
        &mut self,
        reach: &RotationReach,
        id: DocumentId,
        from_rev: &str,
        to_rev: &str,
    ) -> Result<bool> {
        self.inner.rotation().switch_document_copy(reach, id, from_rev, to_rev).await
    }
    async fn stale_fields(
        &mut self,
        reach: &RotationReach,
        column: SealedColumn,
        after: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredField>> {
        self.inner.rotation().stale_fields(reach, column, after, limit).await
    }
    async fn count_stale_fields(&mut self, tenant: TenantId, column: SealedColumn, version: u32) -> Result<u64> {
        self.inner.rotation().count_stale_fields(tenant, column, version).await
    }
    async fn replace_field(&mut self, reach: &RotationReach, field: &StoredField, sealed: &str) -> Result<bool> {
        self.inner.rotation().replace_field(reach, field, sealed).await
    }
}

// Audit events hold no sealed value: they pass through, and each one appended is counted.
#[async_trait]
impl AuditRepo for SealingTx {
    async fn append_audit(&mut self, ev: &NewEvent, at: OffsetDateTime) -> Result<()> {
        self.inner.audit().append_audit(ev, at).await?;
        crate::audit::count(ev);
        Ok(())
    }
    async fn audit_chains(&mut self) -> Result<Vec<String>> {
        self.inner.audit().audit_chains().await
    }
    async fn audit_chain_status(&mut self) -> Result<Vec<crate::audit::ChainStatus>> {
        self.inner.audit().audit_chain_status().await
    }
    async fn audit_window(
        &mut self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<(OffsetDateTime, String, i64)>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        self.inner.audit().audit_window(from, to, after, limit).await
    }
    async fn latest_audit_checkpoint(&mut self, chain: &str) -> Result<Option<AuditCheckpoint>> {
        self.inner.audit().latest_audit_checkpoint(chain).await
    }
    async fn audit_head(&mut self, chain: &str) -> Result<Option<StoredEvent>> {
        self.inner.audit().audit_head(chain).await
    }
    async fn insert_audit_checkpoint(&mut self, c: &AuditCheckpoint) -> Result<()> {
        self.inner.audit().insert_audit_checkpoint(c).await
    }
    async fn audit_checkpoints(&mut self, chain: &str) -> Result<Vec<AuditCheckpoint>> {
        self.inner.audit().audit_checkpoints(chain).await
    }
    async fn audit_chain(&mut self, chain: &str, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        self.inner.audit().audit_chain(chain, after_seq, limit).await
    }
    async fn search_audit(
        &mut self,
        reach: &AuditReach,
        filter: &crate::audit::search::AuditFilter,
        after_seq: i64,
        upto_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        self.inner.audit().search_audit(reach, filter, after_seq, upto_seq, limit).await
    }
}

#[async_trait]
impl Tx for SealingTx {
    /// Before committing, a tenant whose values went under an older key version than its newest
    /// gets its rotation reopened: a rotation that started while this transaction ran must not
    /// be reported finished while these values wait under the old key.
    async fn commit(mut self: Box<Self>) -> Result<()> {
        for (tenant, used) in std::mem::take(&mut self.wrote_under) {
            if let Some(newest) = self.inner.keys().tenant_key(tenant, KeyPurpose::Data, None).await?
                && newest.version > used
            {
                self.inner.rotation().reopen_key_rotation(tenant, newest.version).await?;
            }
        }
        self.inner.commit().await
    }

    // The areas with sealed values (or whose writes change a tenant's cipher) are this type's
    // own; every other area is the store's, untouched.
    fn tenants(&mut self) -> &mut dyn TenantRepo {
        self.inner.tenants()
    }
    fn lifecycle(&mut self) -> &mut dyn LifecycleRepo {
        self
    }
    fn exports(&mut self) -> &mut dyn ExportRepo {
        self.inner.exports()
    }
    fn keys(&mut self) -> &mut dyn KeyRepo {
        self
    }
    fn users(&mut self) -> &mut dyn UserRepo {
        self
    }
    fn sessions(&mut self) -> &mut dyn SessionRepo {
        self.inner.sessions()
    }
    fn links(&mut self) -> &mut dyn LinkRepo {
        self.inner.links()
    }
    fn tokens(&mut self) -> &mut dyn TokenRepo {
        self.inner.tokens()
    }
    fn matters(&mut self) -> &mut dyn MatterRepo {
        self
    }
    fn documents(&mut self) -> &mut dyn DocumentRepo {
        self
    }
    fn messages(&mut self) -> &mut dyn MessageRepo {
        self
    }
    // Operators hold no client information: their records pass through.
    // Platform approvals name operators and actions only.
    // Directory entries carry the tenant's name and counts, none of them sealed.
    fn operators(&mut self) -> &mut dyn OperatorRepo {
        self.inner.operators()
    }
    fn logins(&mut self) -> &mut dyn LoginRepo {
        self.inner.logins()
    }
    fn approvals(&mut self) -> &mut dyn ApprovalRepo {
        self.inner.approvals()
    }
    fn factors(&mut self) -> &mut dyn FactorRepo {
        self
    }
    fn rotation(&mut self) -> &mut dyn RotationRepo {
        self
    }
    fn blobs(&mut self) -> &mut dyn BlobRepo {
        self.inner.blobs()
    }
    fn leases(&mut self) -> &mut dyn LeaseRepo {
        self.inner.leases()
    }
    // Devices and the outbox hold no client information (hashes, IPs, user agents, times, the
    // same facts sessions and the audit log keep): they pass through. The recipient of a mail
    // is read with `user`, which opens it.
    fn devices(&mut self) -> &mut dyn DeviceRepo {
        self.inner.devices()
    }
    fn outbox(&mut self) -> &mut dyn OutboxRepo {
        self.inner.outbox()
    }
    // Alerts hold ids and facts, never client content: they pass through. A tenant admin's
    // address is read with `user`, which opens it.
    fn alerts(&mut self) -> &mut dyn AlertRepo {
        self.inner.alerts()
    }
    fn protection(&mut self) -> &mut dyn ProtectionRepo {
        self.inner.protection()
    }
    // Detection records hold ids, addresses and counts, never client content: they pass through.
    fn intrusion(&mut self) -> &mut dyn IntrusionRepo {
        self.inner.intrusion()
    }
    fn audit(&mut self) -> &mut dyn AuditRepo {
        self
    }
    // Incidents seal their own body under their own key (see `service::incidents`); the
    // columns hold no client content, and breach notices hold ids only.
    fn incidents(&mut self) -> &mut dyn IncidentRepo {
        self.inner.incidents()
    }
}
