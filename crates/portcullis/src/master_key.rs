//! Where the master key comes from: `PORTCULLIS_MASTER_KEY` (base64 of 32 bytes), or a key file
//! (default `<data>/master.key`, created 0600 on first start). A key file beside the data it
//! protects only guards against a leaked database dump or document store, not a copied disk:
//! production keeps the key elsewhere (another volume, a secret manager, or a KMS provider).

use crate::config::{Config, read_secret_file};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::crypto::keys::{KeyBytes, LocalKeyProvider};
use secrecy::ExposeSecret;
use std::path::PathBuf;

/// The environment variable that can carry the master key.
pub const ENV: &str = "PORTCULLIS_MASTER_KEY";

/// The key file in use.
pub fn key_file(cfg: &Config) -> PathBuf {
    cfg.master_key_file.clone().unwrap_or_else(|| cfg.data.join("master.key"))
}

fn decode(text: &str) -> anyhow::Result<KeyBytes> {
    let bytes = zeroize::Zeroizing::new(STANDARD.decode(text.trim()).context("the master key is not base64")?);
    if bytes.len() != 32 {
        bail!("the master key must be 32 bytes (base64 of 32 random bytes), not {}", bytes.len());
    }
    KeyBytes::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Load the master key, creating the key file on first start when no key is configured.
pub fn load(cfg: &Config) -> anyhow::Result<LocalKeyProvider> {
    let key = if let Ok(v) = std::env::var(ENV) {
        decode(&v).with_context(|| format!("reading {ENV}"))?
    } else {
        let path = key_file(cfg);
        if !path.exists() {
            let key = KeyBytes::random().map_err(|e| anyhow::anyhow!("{e}"))?;
            let text = zeroize::Zeroizing::new(STANDARD.encode(key.expose()));
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            crate::tls::write_private(&path, text.as_bytes())?;
            eprintln!(
                "warning: created a new master key in {}. Anyone with this file and a copy of the data can read it: \
                 in production keep the key apart from the data ({ENV}, master_key_file on another volume, or a KMS).",
                path.display()
            );
        }
        let secret = read_secret_file(&path)?;
        decode(secret.expose_secret()).with_context(|| format!("reading {}", path.display()))?
    };
    LocalKeyProvider::new(&key).map_err(|e| anyhow::anyhow!("{e}"))
}
