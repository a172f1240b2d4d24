//! Transparent encryption of client information in the database. [`SealingTx`] wraps the
//! store's transaction: what the use cases write is sealed on the way in (see `fields`) and
//! opened on the way out, and equality lookups by email go through the blind index. The use
//! cases see plaintext; the store only ever sees ciphertext. Because the portal wraps every
//! transaction it opens, no use case can forget to encrypt.

use super::fields::FieldCipher;
use super::keys::Keyring;
use crate::audit::{NewEvent, StoredEvent};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, MatterId, TenantId, TokenId, UserId};
use crate::model::{
    ApiToken, Document, KeyPurpose, LinkRecord, Matter, MatterMember, Message, Role, SessionRecord, Tenant,
    TenantKeyRecord, User, UserStatus,
};
use crate::policy::{MatterGrant, MatterListGrant, TenantGrant};
use crate::ports::Tx;
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
}

impl std::fmt::Debug for SealingTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingTx").field("tenants", &self.ciphers.len()).finish_non_exhaustive()
    }
}

impl SealingTx {
    pub fn new(inner: Box<dyn Tx>, keyring: Arc<Keyring>) -> Self {
        Self { inner, keyring, ciphers: HashMap::new() }
    }

    /// The tenant's field cipher, built once per transaction from its stored keys.
    async fn cipher(&mut self, tenant: TenantId) -> Result<&FieldCipher> {
        if !self.ciphers.contains_key(&tenant) {
            let keyring = self.keyring.clone();
            let mut data = Vec::new();
            for rec in self.inner.tenant_keys(tenant, KeyPurpose::Data).await? {
                data.push((rec.version, unwrap(&keyring, &rec).await?));
            }
            let index = self
                .inner
                .tenant_key(tenant, KeyPurpose::Index, None)
                .await?
                .ok_or_else(|| Error::Integrity("the tenant's index key does not exist".into()))?;
            let index = unwrap(&keyring, &index).await?;
            self.ciphers.insert(tenant, FieldCipher::new(tenant, &data, &index)?);
        }
        self.ciphers.get(&tenant).ok_or_else(|| Error::internal("field cipher vanished"))
    }
}

async fn unwrap(keyring: &Keyring, rec: &TenantKeyRecord) -> Result<super::keys::KeyBytes> {
    keyring.tenant_key(rec.tenant_id, rec.purpose, rec.version, &rec.key_id, &rec.wrapped).await
}

fn seal_user(c: &FieldCipher, u: &User) -> Result<User> {
    Ok(User {
        email: c.seal(&format!("users.email:{}", u.id), &u.email)?,
        display_name: c.seal(&format!("users.display_name:{}", u.id), &u.display_name)?,
        ..u.clone()
    })
}

fn open_user(c: &FieldCipher, u: User) -> Result<User> {
    Ok(User {
        email: c.open(&format!("users.email:{}", u.id), &u.email)?,
        display_name: c.open(&format!("users.display_name:{}", u.id), &u.display_name)?,
        ..u
    })
}

fn seal_matter(c: &FieldCipher, m: &Matter) -> Result<Matter> {
    Ok(Matter {
        reference: c.seal(&format!("matters.reference:{}", m.id), &m.reference)?,
        title: c.seal(&format!("matters.title:{}", m.id), &m.title)?,
        ..m.clone()
    })
}

fn open_matter(c: &FieldCipher, m: Matter) -> Result<Matter> {
    Ok(Matter {
        reference: c.open(&format!("matters.reference:{}", m.id), &m.reference)?,
        title: c.open(&format!("matters.title:{}", m.id), &m.title)?,
        ..m
    })
}

/// Where a document's name lives: bound to its matter too, so a row moved to another matter
/// no longer opens.
fn document_place(d: &Document) -> String {
    format!("documents.name:{}:{}", d.id, d.matter_id)
}

/// Where a message's body lives: bound to its matter and author too.
fn message_place(m: &Message) -> String {
    format!("messages.body:{}:{}:{}", m.id, m.matter_id, m.author_id)
}

fn open_document(c: &FieldCipher, d: Document) -> Result<Document> {
    Ok(Document { name: c.open(&document_place(&d), &d.name)?, ..d })
}

fn open_message(c: &FieldCipher, m: Message) -> Result<Message> {
    Ok(Message {
        body: c.open(&message_place(&m), &m.body)?,
        author_name: c.open(&format!("users.display_name:{}", m.author_id), &m.author_name)?,
        ..m
    })
}

fn open_member(c: &FieldCipher, m: MatterMember) -> Result<MatterMember> {
    Ok(MatterMember {
        email: c.open(&format!("users.email:{}", m.user_id), &m.email)?,
        display_name: c.open(&format!("users.display_name:{}", m.user_id), &m.display_name)?,
        ..m
    })
}

#[async_trait]
impl Tx for SealingTx {
    async fn commit(self: Box<Self>) -> Result<()> {
        self.inner.commit().await
    }

    async fn count_tenants(&mut self) -> Result<i64> {
        self.inner.count_tenants().await
    }
    async fn insert_tenant(&mut self, t: &Tenant) -> Result<()> {
        self.inner.insert_tenant(t).await
    }
    async fn tenant_by_name(&mut self, name: &str) -> Result<Option<Tenant>> {
        self.inner.tenant_by_name(name).await
    }
    async fn tenant(&mut self, id: TenantId) -> Result<Option<Tenant>> {
        self.inner.tenant(id).await
    }

    async fn insert_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        self.ciphers.remove(&k.tenant_id);
        self.inner.insert_tenant_key(k).await
    }
    async fn tenant_key(
        &mut self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: Option<u32>,
    ) -> Result<Option<TenantKeyRecord>> {
        self.inner.tenant_key(tenant, purpose, version).await
    }
    async fn tenant_keys(&mut self, tenant: TenantId, purpose: KeyPurpose) -> Result<Vec<TenantKeyRecord>> {
        self.inner.tenant_keys(tenant, purpose).await
    }

    async fn destroy_tenant_keys(&mut self, tenant: TenantId) -> Result<u64> {
        self.ciphers.remove(&tenant);
        self.inner.destroy_tenant_keys(tenant).await
    }
    async fn lock_tenant_keys(&mut self) -> Result<()> {
        self.inner.lock_tenant_keys().await
    }
    async fn all_tenant_keys(&mut self) -> Result<Vec<TenantKeyRecord>> {
        self.inner.all_tenant_keys().await
    }
    async fn rewrap_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        self.inner.rewrap_tenant_key(k).await
    }

    async fn insert_user(&mut self, u: &User, email_lookup: &str, password_hash: Option<&str>) -> Result<()> {
        let c = self.cipher(u.tenant_id).await?;
        let (sealed, lookup) = (seal_user(c, u)?, c.blind(EMAIL_INDEX, email_lookup));
        self.inner.insert_user(&sealed, &lookup, password_hash).await
    }
    async fn user_by_email(&mut self, tenant: TenantId, email: &str) -> Result<Option<(User, Option<String>)>> {
        let lookup = self.cipher(tenant).await?.blind(EMAIL_INDEX, email);
        let found = self.inner.user_by_email(tenant, &lookup).await?;
        let c = self.cipher(tenant).await?;
        let Some((user, hash)) = found.map(|(u, h)| open_user(c, u).map(|u| (u, h))).transpose()? else {
            return Ok(None);
        };
        // The index tag is only a pointer: confirm the row really holds this email, so a tag
        // copied onto another row cannot redirect a sign-in.
        if !crate::authn::secret::equal(&user.email, email) {
            return Err(Error::Integrity("a user's email index does not match the email".into()));
        }
        Ok(Some((user, hash)))
    }
    async fn user(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>> {
        let found = self.inner.user(tenant, id).await?;
        let c = self.cipher(tenant).await?;
        found.map(|u| open_user(c, u)).transpose()
    }
    async fn set_password(&mut self, tenant: TenantId, id: UserId, hash: &str, status: UserStatus) -> Result<()> {
        self.inner.set_password(tenant, id, hash, status).await
    }
    async fn list_users(&mut self, grant: &TenantGrant) -> Result<Vec<User>> {
        let found = self.inner.list_users(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        let mut users = found.into_iter().map(|u| open_user(c, u)).collect::<Result<Vec<_>>>()?;
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }

    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()> {
        self.inner.insert_session(s).await
    }
    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>> {
        self.inner.session(token_hash).await
    }
    async fn touch_session(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()> {
        self.inner.touch_session(token_hash, at).await
    }
    async fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        self.inner.delete_session(token_hash).await
    }
    async fn delete_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        self.inner.delete_user_sessions(tenant, user).await
    }

    async fn insert_link(&mut self, l: &LinkRecord) -> Result<()> {
        self.inner.insert_link(l).await
    }
    async fn link(&mut self, token_hash: &str) -> Result<Option<LinkRecord>> {
        self.inner.link(token_hash).await
    }
    async fn burn_user_links(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<()> {
        self.inner.burn_user_links(tenant, user, at).await
    }
    async fn burn_bootstrap_links(&mut self, at: OffsetDateTime) -> Result<()> {
        self.inner.burn_bootstrap_links(at).await
    }
    async fn use_link(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<bool> {
        self.inner.use_link(token_hash, at).await
    }

    async fn insert_api_token(&mut self, t: &ApiToken, secret_hash: &str) -> Result<()> {
        self.inner.insert_api_token(t, secret_hash).await
    }
    async fn api_token_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiToken>> {
        self.inner.api_token_by_hash(secret_hash).await
    }
    async fn list_api_tokens(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<ApiToken>> {
        self.inner.list_api_tokens(tenant, user).await
    }
    async fn revoke_api_token(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.revoke_api_token(tenant, user, id, at).await
    }
    async fn touch_api_token(&mut self, tenant: TenantId, id: TokenId, at: OffsetDateTime) -> Result<()> {
        self.inner.touch_api_token(tenant, id, at).await
    }

    async fn insert_matter(&mut self, grant: &TenantGrant, m: &Matter) -> Result<()> {
        let sealed = seal_matter(self.cipher(m.tenant_id).await?, m)?;
        self.inner.insert_matter(grant, &sealed).await
    }
    async fn matter(&mut self, tenant: TenantId, id: MatterId) -> Result<Option<Matter>> {
        let found = self.inner.matter(tenant, id).await?;
        let c = self.cipher(tenant).await?;
        found.map(|m| open_matter(c, m)).transpose()
    }
    async fn membership(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<Role>> {
        self.inner.membership(tenant, matter, user).await
    }
    async fn list_matters(&mut self, grant: &MatterListGrant) -> Result<Vec<Matter>> {
        let found = self.inner.list_matters(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|m| open_matter(c, m)).collect()
    }
    async fn insert_member(&mut self, grant: &MatterGrant, user: UserId, role: Role, at: OffsetDateTime) -> Result<()> {
        self.inner.insert_member(grant, user, role, at).await
    }
    async fn list_members(&mut self, grant: &MatterGrant) -> Result<Vec<MatterMember>> {
        let found = self.inner.list_members(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|m| open_member(c, m)).collect()
    }

    async fn insert_document(&mut self, grant: &MatterGrant, d: &Document) -> Result<()> {
        let c = self.cipher(d.tenant_id).await?;
        let sealed = Document { name: c.seal(&document_place(d), &d.name)?, ..d.clone() };
        self.inner.insert_document(grant, &sealed).await
    }
    async fn list_documents(&mut self, grant: &MatterGrant) -> Result<Vec<Document>> {
        let found = self.inner.list_documents(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|d| open_document(c, d)).collect()
    }
    async fn document(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<Document>> {
        let found = self.inner.document(tenant, id).await?;
        let c = self.cipher(tenant).await?;
        found.map(|d| open_document(c, d)).transpose()
    }

    async fn insert_message(&mut self, grant: &MatterGrant, m: &Message) -> Result<()> {
        let c = self.cipher(m.tenant_id).await?;
        let sealed = Message { body: c.seal(&message_place(m), &m.body)?, ..m.clone() };
        self.inner.insert_message(grant, &sealed).await
    }
    async fn list_messages(&mut self, grant: &MatterGrant) -> Result<Vec<Message>> {
        let found = self.inner.list_messages(grant).await?;
        let c = self.cipher(grant.tenant_id()).await?;
        found.into_iter().map(|m| open_message(c, m)).collect()
    }

    async fn append_audit(&mut self, ev: &NewEvent, at: OffsetDateTime) -> Result<()> {
        self.inner.append_audit(ev, at).await
    }
    async fn audit_chain(&mut self, chain: &str, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        self.inner.audit_chain(chain, after_seq, limit).await
    }
}
