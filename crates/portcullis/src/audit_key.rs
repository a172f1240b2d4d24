//! The audit signing key: an Ed25519 key in a file of its own (default
//! `<data>/audit-signing.key`, created 0600 on first start), never in the database, so whoever
//! can write the database still cannot sign a checkpoint. Its public half is written beside it
//! (`.pub`, hex); `audit verify` trusts that file or the key given with `--public-key`. Keep a
//! copy of the public key away from the server: a verifier that takes its trust from the server
//! itself only proves the database and the key file agree.

use crate::config::{Config, read_secret_file};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::crypto::signing::{AuditPublicKey, AuditSigner};
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};

pub fn key_file(cfg: &Config) -> PathBuf {
    cfg.audit_signing_key_file.clone().unwrap_or_else(|| cfg.data.join("audit-signing.key"))
}

fn public_file(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

/// Load the signing key, creating it (and its public half) on first use.
pub fn load(cfg: &Config) -> anyhow::Result<AuditSigner> {
    let path = key_file(cfg);
    if !path.exists() {
        let pkcs8 = AuditSigner::generate_pkcs8().map_err(|e| anyhow::anyhow!("{e}"))?;
        let text = zeroize::Zeroizing::new(STANDARD.encode(pkcs8.as_slice()));
        crate::master_key::create_secret_file(&path, text.as_bytes())?;
        crate::logs::notice(&format!(
            "created the audit signing key {}; keep a copy of {} off this server to verify the audit log against",
            path.display(),
            public_file(&path).display()
        ));
    }
    let text = read_secret_file(&path)?;
    let der = zeroize::Zeroizing::new(
        STANDARD.decode(text.expose_secret().trim()).map_err(|_| anyhow::anyhow!("{}: not base64", path.display()))?,
    );
    let signer = AuditSigner::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let public = public_file(&path);
    if !public.exists() {
        std::fs::write(&public, signer.public_key().to_hex() + "\n")
            .with_context(|| format!("writing {}", public.display()))?;
    }
    Ok(signer)
}

/// The public keys `audit verify` trusts: the file given, else the one beside the signing key.
pub fn trusted(cfg: &Config, given: Option<&Path>) -> anyhow::Result<Vec<AuditPublicKey>> {
    let path = given.map(Path::to_path_buf).unwrap_or_else(|| public_file(&key_file(cfg)));
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the public key {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| AuditPublicKey::from_hex(l).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())))
        .collect()
}
