//! Random secrets (session cookies, API tokens, one-time links) and how they are stored: only a
//! SHA-256 hash is kept, so a database dump does not yield usable credentials. The secrets have
//! 256 bits of entropy, so an unsalted fast hash is sufficient.

use crate::error::{Error, Result};
use aws_lc_rs::{digest, rand::SecureRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// A fresh 256-bit random secret, base64url-encoded, with a prefix naming what it is (so a
/// leaked one is recognisable by secret scanners).
pub fn generate(prefix: &str) -> Result<SecretString> {
    let mut buf = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf.as_mut_slice())
        .map_err(|_| Error::internal("system random number generator failed"))?;
    Ok(SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf.as_slice()))))
}

/// The stored form of a secret: hex SHA-256.
pub fn hash(secret: &SecretString) -> String {
    hash_str(secret.expose_secret())
}

/// The stored form of a secret given as plain text (as it arrives in a request).
pub fn hash_str(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

/// Compare two secrets in constant time.
pub fn equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_prefixed_and_hash_stably() {
        let a = generate("pc_").unwrap();
        let b = generate("pc_").unwrap();
        assert!(a.expose_secret().starts_with("pc_"));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash(&a), hash_str(a.expose_secret()));
        assert!(equal("abc", "abc"));
        assert!(!equal("abc", "abd"));
        assert!(!equal("abc", "abcd"));
    }
}
