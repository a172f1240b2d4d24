//! The TOTP second factor (RFC 6238) and recovery codes.
//!
//! TOTP: 160-bit random secrets (RFC 4226's recommendation), HMAC-SHA1, 6 digits, 30-second
//! steps — what every authenticator app understands — and one step of drift either way. A check
//! returns the time step the code matched, so the caller can refuse that step and every earlier
//! one next time: a code is accepted at most once (RFC 6238 section 5.2).
//!
//! Recovery codes: ten per enrolment, 60 random bits each, shown once and stored only as
//! SHA-256 hashes (like API tokens: with this much entropy a slow hash adds nothing), each
//! usable once.

use crate::error::{Error, Result};
use aws_lc_rs::rand::SecureRandom;
use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

/// Shown in authenticator apps beside the account.
pub const ISSUER: &str = "Portcullis";
/// How many recovery codes an enrolment makes.
pub const RECOVERY_CODES: usize = 10;
const SECRET_BYTES: usize = 20;
/// RFC 4648 base32 without padding, lowercase: what recovery codes are written in.
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A TOTP secret in base32, the form it is shown and stored (sealed) in.
pub fn new_secret() -> Result<SecretString> {
    let mut raw = Zeroizing::new([0u8; SECRET_BYTES]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| Error::internal("random number generator failed"))?;
    Ok(SecretString::from(totp_rs::Secret::from(*raw).to_base32()))
}

fn totp(secret: &SecretString, account: &str) -> Result<Totp> {
    let secret = totp_rs::Secret::try_from_base32(secret.expose_secret())
        .map_err(|_| Error::internal("a stored TOTP secret is not base32"))?;
    Builder::new()
        .with_secret(secret)
        .with_account_name(account.replace(':', " "))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| Error::internal(format!("TOTP setup: {e}")))
}

/// The `otpauth://` URL an authenticator app scans.
pub fn otpauth_url(secret: &SecretString, account: &str) -> Result<String> {
    totp(secret, account)?.to_url().map_err(|e| Error::internal(format!("TOTP URL: {e}")))
}

/// The enrolment QR code of `url`, as an SVG document (no script, no external references).
pub fn qr_svg(url: &str) -> Result<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| Error::internal(format!("QR code: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// Whether `code` is valid at `unix_secs` (one step of drift each way); the step it matched.
/// Input that is not six digits is simply not valid.
pub fn check(secret: &SecretString, code: &str, unix_secs: u64) -> Result<Option<u64>> {
    let Some(code) = six_digits(code) else { return Ok(None) };
    Ok(totp(secret, "check")?.check(&code, unix_secs))
}

/// Whether the input looks like a TOTP code rather than a recovery code.
pub fn is_totp_code(code: &str) -> bool {
    six_digits(code).is_some()
}

/// The code without spaces, if it is six digits.
fn six_digits(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// Fresh recovery codes, formatted for people (`abcd-efgh-ijkl`).
pub fn new_recovery_codes() -> Result<Vec<SecretString>> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = Zeroizing::new([0u8; 12]);
            rng.fill(raw.as_mut()).map_err(|_| Error::internal("random number generator failed"))?;
            // Each byte picks one of 32 symbols (5 of its 8 bits): 12 symbols, 60 bits.
            let symbols: Vec<char> = raw
                .iter()
                .map(|b| char::from(CODE_ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'a')))
                .collect();
            let groups: Vec<String> = symbols.chunks(4).map(|g| g.iter().collect()).collect();
            Ok(SecretString::from(groups.join("-")))
        })
        .collect()
}

/// A recovery code as typed (any case, with or without dashes and spaces), reduced to the form
/// its hash is taken of.
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 vectors, cut to 6 digits, with the ASCII secret
    /// "12345678901234567890".
    #[test]
    fn rfc_6238_vectors_and_drift() {
        let secret = SecretString::from(totp_rs::Secret::from(b"12345678901234567890".to_vec()).to_base32());
        for (t, code) in [(59u64, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924")] {
            assert_eq!(check(&secret, code, t).unwrap(), Some(t / 30), "t={t}");
            // One step of drift either way is accepted, two are not.
            assert_eq!(check(&secret, code, t + 30).unwrap(), Some(t / 30));
            assert_eq!(check(&secret, code, t.saturating_sub(30)).unwrap(), Some(t / 30));
            assert_eq!(check(&secret, code, t + 61).unwrap(), None);
        }
        assert_eq!(check(&secret, "28708", 59).unwrap(), None);
        assert_eq!(check(&secret, "abcdef", 59).unwrap(), None);
        assert_eq!(check(&secret, "287 082", 59).unwrap(), Some(1));
    }

    #[test]
    fn enrolment_material() {
        let s = new_secret().unwrap();
        assert_eq!(s.expose_secret().len(), 32, "160 bits in base32");
        let url = otpauth_url(&s, "o@acme.example").unwrap();
        assert!(url.starts_with("otpauth://totp/") && url.contains("issuer=Portcullis"), "{url}");
        let svg = qr_svg(&url).unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"));
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let first = codes[0].expose_secret();
        assert_eq!(first.len(), 14, "{first}");
        assert_eq!(normalise_recovery_code(&first.to_uppercase()), first.replace('-', ""));
        assert!(is_totp_code("123 456") && !is_totp_code(first));
    }
}
