//! The key hierarchy: a master key (key-encryption key) held by a [`KeyProvider`] wraps
//! per-tenant data keys, which are stored only wrapped and are versioned; each document's key is
//! derived from its tenant key (see `stream`). Destroying a tenant's wrapped keys makes every
//! copy of its documents unreadable (crypto-shredding).
//!
//! An external KMS plugs in as another `KeyProvider`: `wrap` and `unwrap` become the KMS's
//! Encrypt/Decrypt calls (AWS KMS with the tenant context as encryption context; Vault transit
//! `encrypt`/`decrypt` with the context as `context`), so the master key never leaves the KMS.

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::model::KeyPurpose;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::SecureRandom;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// A 256-bit secret key in memory that is wiped when dropped and never printed.
#[derive(Clone)]
pub struct KeyBytes(Zeroizing<[u8; 32]>);

impl KeyBytes {
    /// A fresh random key.
    pub fn random() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::SystemRandom::new()
            .fill(k.as_mut())
            .map_err(|_| Error::internal("random number generator failed"))?;
        Ok(Self(k))
    }

    /// Take a key from bytes (which must be exactly 32).
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::internal("a key must be exactly 32 bytes"))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(REDACTED)")
    }
}

/// A data key wrapped by a master key, and which master key that was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapped {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// Holds the master key and wraps and unwraps data keys with it.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// A short, stable, non-secret identifier of the master key, stored beside what it wraps.
    fn key_id(&self) -> String;
    /// Wrap a data key; `context` is bound as associated data and must be given again to unwrap.
    /// Returns the id of the master key that wrapped it (stored beside it), so a provider whose
    /// current key changes between calls (a KMS mid-rotation) can never be recorded wrongly.
    async fn wrap(&self, key: &KeyBytes, context: &[u8]) -> Result<Wrapped>;
    /// Unwrap a data key wrapped by the master key `key_id`.
    async fn unwrap(&self, key_id: &str, wrapped: &[u8], context: &[u8]) -> Result<KeyBytes>;
}

/// A master key held locally (from a key file or an environment variable). Wrapping is
/// AES-256-GCM with a random 96-bit nonce: a master key wraps a handful of tenant keys, far
/// below the 2³² invocations NIST SP 800-38D allows for random nonces.
pub struct LocalKeyProvider {
    /// The first key wraps; every key unwraps what it wrapped (older keys stay loaded while a
    /// master-key rotation is under way or was interrupted).
    keys: Vec<(String, LessSafeKey)>,
}

impl std::fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("LocalKeyProvider").field("key_ids", &ids).finish_non_exhaustive()
    }
}

/// The non-secret identifier of a master key.
pub fn master_key_id(master: &KeyBytes) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"portcullis master key id");
    ctx.update(master.expose());
    let digest = ctx.finish();
    format!("local:{}", hex::encode(digest.as_ref().get(..8).unwrap_or_default()))
}

impl LocalKeyProvider {
    pub fn new(master: &KeyBytes) -> Result<Self> {
        Self::with_older(master, &[])
    }

    /// `primary` wraps new keys; `older` keys only unwrap.
    pub fn with_older(primary: &KeyBytes, older: &[KeyBytes]) -> Result<Self> {
        let keys = std::iter::once(primary)
            .chain(older)
            .map(|k| {
                let unbound =
                    UnboundKey::new(&AES_256_GCM, k.expose()).map_err(|_| Error::internal("bad master key"))?;
                Ok((master_key_id(k), LessSafeKey::new(unbound)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { keys })
    }

    fn primary(&self) -> Result<&(String, LessSafeKey)> {
        self.keys.first().ok_or_else(|| Error::internal("no master key loaded"))
    }
}

#[async_trait::async_trait]
impl KeyProvider for LocalKeyProvider {
    fn key_id(&self) -> String {
        self.keys.first().map(|(id, _)| id.clone()).unwrap_or_default()
    }

    async fn wrap(&self, key: &KeyBytes, context: &[u8]) -> Result<Wrapped> {
        let (key_id, master) = self.primary()?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::internal("random number generator failed"))?;
        let mut buf = key.expose().to_vec();
        master
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut buf)
            .map_err(|_| Error::internal("wrapping failed"))?;
        Ok(Wrapped { key_id: key_id.clone(), bytes: [nonce.as_slice(), &buf].concat() })
    }

    async fn unwrap(&self, key_id: &str, wrapped: &[u8], context: &[u8]) -> Result<KeyBytes> {
        let Some((_, master)) = self.keys.iter().find(|(id, _)| id == key_id) else {
            return Err(Error::internal(format!(
                "a key was wrapped by master key {key_id}, which is not loaded (loaded: {})",
                self.keys.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        let (nonce, sealed) =
            wrapped.split_at_checked(NONCE_LEN).ok_or_else(|| Error::internal("wrapped key too short"))?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::internal("wrapped key too short"))?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = master
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(context), buf.as_mut_slice())
            .map_err(|_| Error::Integrity("a wrapped tenant key failed its integrity check".into()))?;
        KeyBytes::from_slice(plain)
    }
}

/// The associated data a tenant key is wrapped with: it cannot be moved to another tenant or
/// version.
pub fn tenant_key_context(tenant: TenantId, purpose: KeyPurpose, version: u32) -> Vec<u8> {
    let mut c = b"portcullis tenant key v1".to_vec();
    c.extend_from_slice(tenant.as_uuid().as_bytes());
    c.extend_from_slice(purpose.as_str().as_bytes());
    c.extend_from_slice(&version.to_be_bytes());
    c
}

/// Unwrapped tenant keys, cached in memory so each document does not cost a KMS round trip.
#[derive(Debug)]
pub struct Keyring {
    provider: Arc<dyn KeyProvider>,
    cache: Mutex<HashMap<(TenantId, KeyPurpose, u32), KeyBytes>>,
}

impl Keyring {
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Self { provider, cache: Mutex::new(HashMap::new()) }
    }

    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// A new random tenant key, and its wrapped form.
    pub async fn new_tenant_key(
        &self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: u32,
    ) -> Result<(KeyBytes, Wrapped)> {
        let key = KeyBytes::random()?;
        let wrapped = self.provider.wrap(&key, &tenant_key_context(tenant, purpose, version)).await?;
        Ok((key, wrapped))
    }

    /// The tenant key of `purpose` and `version`, unwrapping (once) from its stored form.
    pub async fn tenant_key(
        &self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: u32,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<KeyBytes> {
        let slot = (tenant, purpose, version);
        if let Some(k) = self.cache.lock().map_err(|_| Error::internal("key cache lock poisoned"))?.get(&slot).cloned()
        {
            return Ok(k);
        }
        let key = self.provider.unwrap(key_id, wrapped, &tenant_key_context(tenant, purpose, version)).await?;
        self.cache.lock().map_err(|_| Error::internal("key cache lock poisoned"))?.insert(slot, key.clone());
        Ok(key)
    }

    /// Forget a tenant's cached keys (after rotation or destruction).
    pub fn forget(&self, tenant: TenantId) -> Result<()> {
        self.cache.lock().map_err(|_| Error::internal("key cache lock poisoned"))?.retain(|(t, _, _), _| *t != tenant);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wrap_binds_tenant_and_version() {
        let p = LocalKeyProvider::new(&KeyBytes::random().unwrap()).unwrap();
        let k = KeyBytes::random().unwrap();
        let t = TenantId::new();
        let ctx = |t, v| tenant_key_context(t, KeyPurpose::Data, v);
        let w = p.wrap(&k, &ctx(t, 1)).await.unwrap();
        assert_eq!(w.key_id, p.key_id());
        let w = w.bytes;
        let back = p.unwrap(&p.key_id(), &w, &ctx(t, 1)).await.unwrap();
        assert_eq!(back.expose(), k.expose());
        assert!(p.unwrap(&p.key_id(), &w, &ctx(t, 2)).await.is_err());
        assert!(p.unwrap(&p.key_id(), &w, &ctx(TenantId::new(), 1)).await.is_err());
        assert!(p.unwrap(&p.key_id(), &w, &tenant_key_context(t, KeyPurpose::Index, 1)).await.is_err());
        let other = LocalKeyProvider::new(&KeyBytes::random().unwrap()).unwrap();
        assert!(other.unwrap(&p.key_id(), &w, &ctx(t, 1)).await.is_err());
        assert!(!format!("{k:?} {p:?}").contains(&hex::encode(k.expose())));
    }
}
