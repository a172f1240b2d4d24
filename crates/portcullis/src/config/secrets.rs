//! Secrets in the configuration: read from files others cannot read, and shown redacted.

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

/// Read a secret from a file, refusing files other users can read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<SecretString> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("reading secret file {}", path.display()))?;
    if meta.permissions().mode() & 0o007 != 0 {
        bail!("secret file {} is readable by other users; run chmod o-rwx on it", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading secret file {}", path.display()))?;
    Ok(SecretString::from(text.trim_end_matches(['\n', '\r']).to_string()))
}

pub(super) fn redact_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    serialize_shown(v, s, redact_url)
}

pub(super) fn redact_origin_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    serialize_shown(v, s, crate::alerts::redact_origin)
}

/// A secret URL as `shown` lets it be seen.
fn serialize_shown<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
    shown: fn(&str) -> String,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(url) => s.serialize_some(&shown(url.expose_secret())),
        None => s.serialize_none(),
    }
}

/// A database URL as it may be shown: engine, host, port and database only. Anything that does
/// not parse is hidden whole (it might be a key=value string with a password in it).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "sqlite" => format!("sqlite:{}", u.path()),
        Ok(u) => format!(
            "{}://{}{}{} (credentials and options hidden)",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "<redacted: not a URL>".into(),
    }
}
