//! Password hashing with Argon2id. Parameters follow OWASP's recommendation (m = 19 MiB, t = 2,
//! p = 1). Hashing is CPU-heavy: callers run it on a blocking thread.

use crate::error::{Error, Result};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted. NIST SP 800-63B asks for at least 8; a portal holding identity
/// documents asks for more.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, so hashing cost stays bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(Error::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Reject passwords that are too short, too long, or known from breaches and common use
/// (NIST SP 800-63B 5.1.1.2). No composition rules: length and the block list do the work.
pub fn check_strength(password: &SecretString) -> Result<()> {
    let n = password.expose_secret().chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(Error::invalid("password", format!("must be at least {MIN_PASSWORD_CHARS} characters")));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Error::invalid("password", format!("must be at most {MAX_PASSWORD_CHARS} characters")));
    }
    if is_common(password.expose_secret()) {
        return Err(Error::invalid(
            "password",
            "is on the list of passwords known from breaches and common use; choose another (a few unrelated words work well)",
        ));
    }
    Ok(())
}

/// Whether a password is on the shipped block list (compared without regard to case). The list
/// holds only passwords long enough to pass the length check; see `crates/core/data/README.md`.
pub fn is_common(password: &str) -> bool {
    static LIST: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| include_str!("../../data/common-passwords.txt").lines().collect());
    list.contains(password.to_lowercase().as_str())
}

/// Hash a password into a PHC string (salt included).
pub fn hash(password: &SecretString) -> Result<String> {
    let hash = argon2()?.hash_password(password.expose_secret().as_bytes()).map_err(Error::internal)?;
    Ok(hash.to_string())
}

/// Verify a password against a PHC string. `None` (no such user) still spends the same work on a
/// fixed dummy hash, so the caller cannot tell an unknown user from a wrong password by timing.
pub fn verify(password: &SecretString, phc: Option<&str>) -> Result<bool> {
    let dummy;
    let target = match phc {
        Some(p) => p,
        None => {
            dummy = dummy_hash()?;
            dummy.as_str()
        }
    };
    let parsed = PasswordHash::new(target).map_err(Error::internal)?;
    let ok = argon2()?.verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
    Ok(ok && phc.is_some())
}

fn dummy_hash() -> Result<&'static String> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash(&SecretString::from("portcullis-dummy-password-for-timing"))?;
    Ok(DUMMY.get_or_init(|| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let pw = SecretString::from("correct horse battery staple");
        let h = hash(&pw).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&pw, Some(&h)).unwrap());
        assert!(!verify(&SecretString::from("wrong password!!"), Some(&h)).unwrap());
        assert!(!verify(&pw, None).unwrap());
    }

    #[test]
    fn short_password_is_refused() {
        assert!(check_strength(&SecretString::from("short")).is_err());
        assert!(check_strength(&SecretString::from("long enough password")).is_ok());
    }

    #[test]
    fn breached_and_common_passwords_are_refused_whatever_their_case() {
        for common in ["qwertyuiopasdfghjkl", "PasswordPassword", "1q2w3e4r5t6y"] {
            let e = check_strength(&SecretString::from(common)).unwrap_err();
            assert!(e.to_string().contains("breaches"), "{common}: {e}");
        }
        assert!(!is_common("correct horse battery staple"));
    }
}
