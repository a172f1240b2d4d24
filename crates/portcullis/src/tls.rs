//! TLS: rustls with the aws-lc-rs provider, TLS 1.2 and 1.3 only. Without configured files a
//! self-signed certificate is generated once (key file 0600) and its fingerprint printed, so a
//! first user can pin it. The served certificate's expiry is watched: an alert goes out when it
//! is within `tls_expiry_warn_days`.

use anyhow::Context;
use aws_lc_rs::digest;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Certificate and key files in use, and the certificate's SHA-256 fingerprint and expiry.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub fingerprint: String,
    pub generated: bool,
    /// The served (first) certificate's notAfter.
    pub not_after: time::OffsetDateTime,
}

/// Use the configured files, or make (once) a self-signed pair under `data/tls`.
pub fn ensure(data: &Path, cert: Option<&Path>, key: Option<&Path>) -> anyhow::Result<TlsFiles> {
    let (cert, key, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        _ => {
            let dir = data.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            let generated = !c.exists() || !k.exists();
            if generated {
                generate(&dir, &c, &k)?;
            }
            (c, k, generated)
        }
    };
    let fingerprint = fingerprint(&cert)?;
    let not_after = not_after(&cert)?;
    Ok(TlsFiles { cert, key, fingerprint, generated, not_after })
}

fn generate(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).context("generating a self-signed certificate")?;
    std::fs::write(cert, ck.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    write_private(key, ck.signing_key.serialize_pem().as_bytes())?;
    Ok(())
}

/// Write a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// SHA-256 of the first certificate in a PEM file, as colon-separated hex.
pub fn fingerprint(cert: &Path) -> anyhow::Result<String> {
    let der = CertificateDer::from_pem_file(cert).with_context(|| format!("reading {}", cert.display()))?;
    let d = digest::digest(&digest::SHA256, der.as_ref());
    Ok(d.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

/// The notAfter time of the first certificate in a PEM file.
pub fn not_after(cert: &Path) -> anyhow::Result<time::OffsetDateTime> {
    let der = CertificateDer::from_pem_file(cert).with_context(|| format!("reading {}", cert.display()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: not an X.509 certificate: {e}", cert.display()))?;
    Ok(parsed.validity().not_after.to_datetime())
}

/// The alert for a certificate expiring at `not_after`, if it is within `warn_days` of `now`:
/// a warning, critical in the last three days and once expired.
pub fn expiry_alert(
    not_after: time::OffsetDateTime,
    now: time::OffsetDateTime,
    warn_days: u64,
    fingerprint: &str,
    node: &str,
) -> Option<portcullis_core::service::NewAlert> {
    use portcullis_core::model::{AlertKind, Severity};
    let left = not_after - now;
    if left > time::Duration::days(i64::try_from(warn_days).unwrap_or(i64::MAX)) {
        return None;
    }
    let days = left.whole_days();
    let severity = if left < time::Duration::days(3) { Severity::Critical } else { Severity::Warning };
    let date = not_after.date();
    let summary = if left <= time::Duration::ZERO {
        format!("The TLS certificate served by node {node} expired on {date}")
    } else {
        format!("The TLS certificate served by node {node} expires in {days} day(s), on {date}")
    };
    let subject = format!("tls:{node}:{}", fingerprint.get(..23).unwrap_or(fingerprint));
    Some(
        portcullis_core::service::NewAlert::new(AlertKind::TlsCertificateExpiring, severity, None, subject, summary)
            .with_detail(serde_json::json!({
                "node": node,
                "not_after": not_after.format(&time::format_description::well_known::Rfc3339).ok(),
                "days_left": days,
                "fingerprint_sha256": fingerprint,
            })),
    )
}

/// A rustls server configuration from PEM files: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| format!("reading {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match or are unsupported")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::model::Severity;
    use time::macros::datetime;

    #[test]
    fn expiry_alerts_start_within_the_warning_days_and_turn_critical() {
        let end = datetime!(2026-12-01 00:00 UTC);
        let at = |days: i64| end - time::Duration::days(days);
        assert!(expiry_alert(end, at(15), 14, "AB:CD", "n1").is_none());
        let a = expiry_alert(end, at(14), 14, "AB:CD", "n1").unwrap();
        assert_eq!(a.severity, Severity::Warning);
        assert!(a.summary.contains("expires in 14 day(s), on 2026-12-01") && a.summary.contains("n1"), "{}", a.summary);
        assert_eq!(expiry_alert(end, at(2), 14, "AB:CD", "n1").unwrap().severity, Severity::Critical);
        let gone = expiry_alert(end, at(-1), 14, "AB:CD", "n1").unwrap();
        assert!(gone.summary.contains("expired on 2026-12-01"), "{}", gone.summary);
    }

    #[test]
    fn the_generated_certificate_lasts() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure(dir.path(), None, None).unwrap();
        assert!(files.not_after > datetime!(2100-01-01 00:00 UTC), "{}", files.not_after);
    }
}
