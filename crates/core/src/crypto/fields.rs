//! Encrypted database fields and blind indexes. Client information in the database (matter
//! titles and references, names, emails, messages, file names) is stored sealed with
//! AES-256-GCM under a key derived from the tenant's data key, bound by associated data to its
//! tenant, column and row, so a value cannot be moved to another row or tenant unnoticed.
//! Equality lookups (sign-in by email, duplicate checks) use a keyed HMAC-SHA256 "blind index"
//! under the tenant's separate index key instead of the plaintext.
//!
//! Stored form: `f1.<key version>.<base64(nonce | ciphertext | tag)>`.
//!
//! Nonces are random (96 bits). NIST SP 800-38D bounds a key to 2³² encryptions with random
//! nonces; a tenant writing that many fields under one key version should rotate its key first
//! (rotation creates a new version and a new derived field key).

use super::keys::KeyBytes;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use std::collections::BTreeMap;

const PREFIX: &str = "f1";

/// How every value sealed under key `version` begins; re-encryption finds the values still to
/// do by it.
pub fn version_prefix(version: u32) -> String {
    format!("{PREFIX}.{version}.")
}

fn derive(key: &KeyBytes, label: &[u8], owner: uuid::Uuid) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    let info = [label, owner.as_bytes()].concat();
    let parts = [info.as_slice()];
    let prk = Salt::new(HKDF_SHA256, b"portcullis fields").extract(key.expose());
    let okm = prk.expand(&parts, HKDF_SHA256).map_err(|_| Error::internal("key derivation failed"))?;
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    okm.fill(out.as_mut()).map_err(|_| Error::internal("key derivation failed"))?;
    Ok(out)
}

/// Seals and opens one tenant's fields, and computes its blind indexes.
pub struct FieldCipher {
    /// The tenant (or, for [`FieldCipher::for_incident`], the incident) whose values these are.
    owner: uuid::Uuid,
    current: u32,
    keys: BTreeMap<u32, LessSafeKey>,
    index: hmac::Key,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher")
            .field("owner", &self.owner)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl FieldCipher {
    /// From every data key version of the tenant (the highest seals new values) and its index key.
    pub fn new(tenant: TenantId, data_keys: &[(u32, KeyBytes)], index_key: &KeyBytes) -> Result<Self> {
        Self::with_labels(tenant.as_uuid(), b"portcullis field key v1", data_keys, index_key)
    }

    /// For one security incident's sealed record, under the incident's own data key (incidents
    /// belong to the platform, not to a tenant; the label keeps their keys apart from fields').
    pub fn for_incident(id: crate::ids::IncidentId, key: &KeyBytes) -> Result<Self> {
        Self::with_labels(id.as_uuid(), b"portcullis incident key v1", std::slice::from_ref(&(1, key.clone())), key)
    }

    fn with_labels(
        owner: uuid::Uuid,
        label: &[u8],
        data_keys: &[(u32, KeyBytes)],
        index_key: &KeyBytes,
    ) -> Result<Self> {
        let mut keys = BTreeMap::new();
        for (version, key) in data_keys {
            let k = derive(key, label, owner)?;
            let unbound = UnboundKey::new(&AES_256_GCM, k.as_ref()).map_err(|_| Error::internal("bad field key"))?;
            keys.insert(*version, LessSafeKey::new(unbound));
        }
        let current = *keys.keys().next_back().ok_or_else(|| Error::Integrity("the tenant has no data key".into()))?;
        let ik = derive(index_key, b"portcullis blind index v1", owner)?;
        Ok(Self { owner, current, keys, index: hmac::Key::new(hmac::HMAC_SHA256, ik.as_ref()) })
    }

    fn aad(&self, place: &str) -> Vec<u8> {
        [b"portcullis field v1".as_slice(), self.owner.as_bytes(), place.as_bytes()].concat()
    }

    /// The data key version new values are sealed under.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Seal `value` for `place` (e.g. `matters.title:<id>`).
    pub fn seal(&self, place: &str, value: &str) -> Result<String> {
        let key = self.keys.get(&self.current).ok_or_else(|| Error::internal("no current field key"))?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::internal("random number generator failed"))?;
        let mut buf = value.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(self.aad(place)), &mut buf)
            .map_err(|_| Error::internal("encryption failed"))?;
        Ok(format!("{}{}", version_prefix(self.current), STANDARD_NO_PAD.encode([nonce.as_slice(), &buf].concat())))
    }

    /// Open a value sealed for `place`.
    pub fn open(&self, place: &str, stored: &str) -> Result<String> {
        let bad = || Error::Integrity(format!("the stored value of {} failed its integrity check", column(place)));
        let mut parts = stored.splitn(3, '.');
        let (Some(PREFIX), Some(version), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let version: u32 = version.parse().map_err(|_| bad())?;
        let key =
            self.keys.get(&version).ok_or_else(|| Error::Integrity("the key for a stored value is gone".into()))?;
        let raw = STANDARD_NO_PAD.decode(body).map_err(|_| bad())?;
        let (nonce, sealed) = raw.split_at_checked(NONCE_LEN).ok_or_else(bad)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| bad())?;
        let mut buf = sealed.to_vec();
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(self.aad(place)), &mut buf)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }

    /// The blind index of a (normalised) value, for equality lookups.
    pub fn blind(&self, column: &str, value: &str) -> String {
        let tag = hmac::sign(&self.index, &[column.as_bytes(), b"\0", value.as_bytes()].concat());
        hex::encode(tag.as_ref())
    }
}

/// The column part of a place, for error messages (never the row id or the value).
fn column(place: &str) -> &str {
    place.split(':').next().unwrap_or(place)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(t: TenantId, versions: &[(u32, KeyBytes)], idx: &KeyBytes) -> FieldCipher {
        FieldCipher::new(t, versions, idx).unwrap()
    }

    #[test]
    fn seal_open_and_bind_to_place_and_tenant() {
        let t = TenantId::new();
        let (k1, idx) = (KeyBytes::random().unwrap(), KeyBytes::random().unwrap());
        let c = cipher(t, &[(1, k1.clone())], &idx);
        let s = c.seal("matters.title:a", "Sale of 4 Quay Street").unwrap();
        assert!(s.starts_with("f1.1.") && !s.contains("Quay"));
        assert_eq!(c.open("matters.title:a", &s).unwrap(), "Sale of 4 Quay Street");
        assert!(matches!(c.open("matters.title:b", &s), Err(Error::Integrity(_))));
        assert!(matches!(c.open("matters.reference:a", &s), Err(Error::Integrity(_))));
        let other = cipher(TenantId::new(), &[(1, k1.clone())], &idx);
        assert!(other.open("matters.title:a", &s).is_err());
        assert!(c.open("matters.title:a", "plain text").is_err());
        assert_ne!(c.seal("x", "same").unwrap(), c.seal("x", "same").unwrap());
    }

    #[test]
    fn newer_versions_seal_and_older_ones_still_open() {
        let t = TenantId::new();
        let (k1, k2, idx) = (KeyBytes::random().unwrap(), KeyBytes::random().unwrap(), KeyBytes::random().unwrap());
        let old = cipher(t, &[(1, k1.clone())], &idx).seal("p", "v").unwrap();
        let both = cipher(t, &[(1, k1), (2, k2.clone())], &idx);
        assert_eq!(both.open("p", &old).unwrap(), "v");
        assert!(both.seal("p", "v").unwrap().starts_with("f1.2."));
        let only_new = cipher(t, &[(2, k2)], &idx);
        assert!(matches!(only_new.open("p", &old), Err(Error::Integrity(_))));
    }

    #[test]
    fn blind_indexes_are_keyed_and_per_column() {
        let t = TenantId::new();
        let k = KeyBytes::random().unwrap();
        let a = cipher(t, &[(1, k.clone())], &KeyBytes::random().unwrap());
        let b = cipher(t, &[(1, k)], &KeyBytes::random().unwrap());
        assert_eq!(a.blind("users.email", "a@b.c"), a.blind("users.email", "a@b.c"));
        assert_ne!(a.blind("users.email", "a@b.c"), b.blind("users.email", "a@b.c"));
        assert_ne!(a.blind("users.email", "a@b.c"), a.blind("other", "a@b.c"));
    }
}
