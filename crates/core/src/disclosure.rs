//! Vulnerability disclosure: the `security.txt` file (RFC 9116) that tells whoever finds a
//! weakness where to report it, in which languages, under which policy, and until when the
//! file itself can be trusted.

use crate::error::{Error, Result};
use time::{Duration, OffsetDateTime};

/// What `security.txt` says, from configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureSettings {
    /// Where to report (`mailto:`, `https://` or `tel:` URIs), most preferred first.
    pub contacts: Vec<String>,
    /// The disclosure policy's address (`https://`).
    pub policy: Option<String>,
    /// Languages reports may be written in (language tags, e.g. `en`).
    pub languages: Vec<String>,
    /// A fixed expiry the operator keeps up to date; without one, the file expires
    /// [`DEFAULT_EXPIRY`] after it is served, so it never goes stale by neglect.
    pub expires: Option<OffsetDateTime>,
}

impl Default for DisclosureSettings {
    fn default() -> Self {
        Self { contacts: Vec::new(), policy: None, languages: vec!["en".into()], expires: None }
    }
}

/// How far ahead a served file expires when no fixed date is configured (RFC 9116 advises
/// less than a year).
pub const DEFAULT_EXPIRY: Duration = Duration::days(180);

/// Check a `Contact:` value: a mail address, a secure web page or a telephone number, as a URI
/// without spaces or line breaks (which would start another field).
pub fn check_contact(uri: &str) -> Result<()> {
    let ok = ["mailto:", "https://", "tel:"].iter().any(|p| uri.len() > p.len() && uri.starts_with(p))
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(Error::invalid("contact", "a mailto:, https:// or tel: URI")) }
}

/// Check a `Policy:` value: an `https://` address without spaces or line breaks.
pub fn check_policy(uri: &str) -> Result<()> {
    if uri.len() > 8 && uri.starts_with("https://") && !uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(Error::invalid("policy", "an https:// address"))
    }
}

/// Check a language tag (letters, digits and dashes, as BCP 47 tags are).
pub fn check_language(tag: &str) -> Result<()> {
    if !tag.is_empty() && tag.len() <= 35 && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(Error::invalid("language", "a language tag such as en or cy"))
    }
}

/// The file served at `/.well-known/security.txt` of the service at `public_url`, or `None`
/// when no contact is configured (a file without `Contact:` is not valid).
pub fn security_txt(s: &DisclosureSettings, public_url: &str, now: OffsetDateTime) -> Option<String> {
    if s.contacts.is_empty() {
        return None;
    }
    let expires = s.expires.unwrap_or(now + DEFAULT_EXPIRY).to_offset(time::UtcOffset::UTC).replace_nanosecond(0);
    let expires = expires.ok()?.format(&time::format_description::well_known::Rfc3339).ok()?;
    let base = public_url.trim_end_matches('/');
    let mut out = format!("# Where to report a security vulnerability in the Portcullis service at {base}\n");
    for c in &s.contacts {
        out.push_str(&format!("Contact: {c}\n"));
    }
    out.push_str(&format!("Expires: {expires}\n"));
    if let Some(p) = &s.policy {
        out.push_str(&format!("Policy: {p}\n"));
    }
    if !s.languages.is_empty() {
        out.push_str(&format!("Preferred-Languages: {}\n", s.languages.join(", ")));
    }
    out.push_str(&format!("Canonical: {base}/.well-known/security.txt\n"));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_has_the_rfc_9116_fields() {
        let now = time::macros::datetime!(2026-12-02 10:11:12.5 UTC);
        let s = DisclosureSettings {
            contacts: vec!["mailto:security@example.net".into(), "https://example.net/report".into()],
            policy: Some("https://example.net/disclosure".into()),
            languages: vec!["en".into(), "cy".into()],
            expires: None,
        };
        let txt = security_txt(&s, "https://portal.example.net/", now).unwrap();
        assert_eq!(
            txt.lines().skip(1).collect::<Vec<_>>(),
            [
                "Contact: mailto:security@example.net",
                "Contact: https://example.net/report",
                "Expires: 2027-05-31T10:11:12Z",
                "Policy: https://example.net/disclosure",
                "Preferred-Languages: en, cy",
                "Canonical: https://portal.example.net/.well-known/security.txt",
            ]
        );
        let fixed = time::macros::datetime!(2027-01-31 00:00 +01:00);
        let txt = security_txt(&DisclosureSettings { expires: Some(fixed), ..s }, "https://p", now).unwrap();
        assert!(txt.contains("Expires: 2027-01-30T23:00:00Z\n"), "{txt}");
        assert_eq!(security_txt(&DisclosureSettings::default(), "https://p", now), None, "no contact, no file");
    }

    #[test]
    fn values_that_would_break_the_file_are_refused() {
        for ok in ["mailto:a@b.example", "https://x.example/r", "tel:+441234567890"] {
            assert!(check_contact(ok).is_ok(), "{ok}");
        }
        for bad in ["a@b.example", "http://x.example", "mailto:", "https://x\nPolicy: https://evil", "mailto:a b"] {
            assert!(check_contact(bad).is_err(), "{bad:?}");
        }
        assert!(check_policy("https://x.example/p").is_ok());
        assert!(check_policy("http://x.example/p").is_err());
        assert!(check_language("en-GB").is_ok());
        assert!(check_language("en GB").is_err() && check_language("").is_err());
    }
}
