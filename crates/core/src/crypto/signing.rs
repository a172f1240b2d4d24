//! The audit log's signing key: Ed25519 (aws-lc-rs), kept apart from the database, signs
//! periodic checkpoints of every audit hash chain. Someone who can write the database can
//! rebuild a chain's hashes after editing it, but cannot sign the rebuilt head; the verifier
//! trusts only public keys it gets from outside the database.

use crate::error::{Error, Result};
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// What a checkpoint asserts: chain `chain` had `hash` at event `seq` when it was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointBody<'a> {
    pub chain: &'a str,
    pub seq: i64,
    pub hash: &'a str,
    pub signed_at: OffsetDateTime,
    pub key_id: &'a str,
}

impl CheckpointBody<'_> {
    /// The signed bytes: every field length-prefixed, under a version label.
    fn message(&self) -> Vec<u8> {
        let seq = self.seq.to_string();
        let at = crate::clock::to_millis(self.signed_at).to_string();
        let mut out = Vec::new();
        for f in ["portcullis-checkpoint-v1", self.chain, &seq, self.hash, &at, self.key_id] {
            out.extend_from_slice(&(f.len() as u64).to_be_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }
}

/// The signed bytes of a document other than a checkpoint (an erasure certificate, a backup
/// manifest): the label, naming what the document is and its version, then the document, each
/// length-prefixed, so a signature over one kind of document never passes for another kind.
fn document_message(label: &str, document: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + document.len() + 16);
    for f in [label.as_bytes(), document] {
        out.extend_from_slice(&(f.len() as u64).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A public key's id: the first 16 hex digits of its SHA-256.
fn key_id_of(public: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, public).as_ref()).chars().take(16).collect()
}

/// The private signing key.
pub struct AuditSigner {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// A new key, as a PKCS#8 document to store.
    pub fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(Error::internal)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| Error::invalid("audit signing key", "not an Ed25519 PKCS#8 key"))?;
        let key_id = key_id_of(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> AuditPublicKey {
        AuditPublicKey { bytes: self.pair.public_key().as_ref().to_vec(), key_id: self.key_id.clone() }
    }

    /// The signature of a checkpoint, hex.
    pub fn sign(&self, body: &CheckpointBody<'_>) -> String {
        hex::encode(self.pair.sign(&body.message()).as_ref())
    }

    /// The signature of a document of the kind `label` names, hex.
    pub fn sign_document(&self, label: &str, document: &[u8]) -> String {
        hex::encode(self.pair.sign(&document_message(label, document)).as_ref())
    }
}

/// A public key the verifier trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPublicKey {
    bytes: Vec<u8>,
    key_id: String,
}

impl AuditPublicKey {
    /// From its hex form (as `audit-signing.pub` holds it).
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::invalid("public key", "expected 64 hex digits (an Ed25519 public key)"))?;
        Ok(Self { key_id: key_id_of(&bytes), bytes })
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `signature` (hex) is this key's signature of `document` as a `label` document.
    pub fn verifies_document(&self, label: &str, document: &[u8], signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature) else { return false };
        UnparsedPublicKey::new(&ED25519, &self.bytes).verify(&document_message(label, document), &sig).is_ok()
    }

    /// Whether `signature` (hex) is this key's signature of `body`.
    pub fn verifies(&self, body: &CheckpointBody<'_>, signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature) else { return false };
        body.key_id == self.key_id
            && UnparsedPublicKey::new(&ED25519, &self.bytes).verify(&body.message(), &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field_and_only_its_key_verifies_it() {
        let signer = AuditSigner::from_pkcs8(&AuditSigner::generate_pkcs8().unwrap()).unwrap();
        let other = AuditSigner::from_pkcs8(&AuditSigner::generate_pkcs8().unwrap()).unwrap();
        let at = OffsetDateTime::UNIX_EPOCH;
        let body = CheckpointBody { chain: "t", seq: 7, hash: "ab", signed_at: at, key_id: signer.key_id() };
        let sig = signer.sign(&body);
        let public = AuditPublicKey::from_hex(&signer.public_key().to_hex()).unwrap();
        assert!(public.verifies(&body, &sig));
        assert!(!other.public_key().verifies(&body, &sig));
        for changed in [
            CheckpointBody { seq: 8, ..body.clone() },
            CheckpointBody { hash: "ac", ..body.clone() },
            CheckpointBody { chain: "u", ..body.clone() },
            CheckpointBody { signed_at: at + time::Duration::seconds(1), ..body.clone() },
        ] {
            assert!(!public.verifies(&changed, &sig));
        }
        assert!(!public.verifies(&body, "zz"));
        assert!(AuditPublicKey::from_hex("abcd").is_err());
        assert!(format!("{signer:?}").contains(signer.key_id()));
    }
}
