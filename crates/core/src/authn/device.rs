//! The device cookie: a long-lived random secret a browser keeps so the portal can tell a
//! sign-in from a browser the user has used before from one it has never seen (which earns the
//! user a notice by mail). It is not a credential: it grants nothing and is never the session
//! cookie. Only its hash is stored, like every other secret.

use super::secret;
use crate::error::Result;
use secrecy::{ExposeSecret, SecretString};

/// What every device secret starts with, so a leaked one is recognisable.
const PREFIX: &str = "pcd_";

/// Longest cookie value considered at all: a generated one is 47 characters.
const MAX_LEN: usize = 100;

/// A device cookie's value. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct DeviceSecret(SecretString);

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSecret(REDACTED)")
    }
}

impl DeviceSecret {
    /// A fresh random device secret.
    pub fn generate() -> Result<Self> {
        secret::generate(PREFIX).map(Self)
    }

    /// A value presented by a browser, if it has the shape of one we made. Anything else
    /// (absent, oversized, foreign) counts as no cookie: the browser is treated as new.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let ok = value.len() <= MAX_LEN
            && value.starts_with(PREFIX)
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(SecretString::from(value.to_string())))
    }

    /// The stored form.
    pub fn hash(&self) -> String {
        secret::hash(&self.0)
    }

    /// The value, to put in a `Set-Cookie` header.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_round_trip_and_never_show_in_debug() {
        let s = DeviceSecret::generate().unwrap();
        let back = DeviceSecret::from_cookie(s.expose()).unwrap();
        assert_eq!(s.hash(), back.hash());
        assert!(!format!("{s:?}").contains(s.expose()));
        assert_ne!(s.hash(), DeviceSecret::generate().unwrap().hash());
    }

    #[test]
    fn foreign_values_are_no_cookie() {
        for v in ["", "abc", "pcd_a b", "pcs_sessioncookie", &format!("pcd_{}", "a".repeat(200))] {
            assert!(DeviceSecret::from_cookie(v).is_none(), "{v:?} accepted");
        }
    }
}
