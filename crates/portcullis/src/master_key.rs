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

/// The file a rotation writes the new key to before anything else changes.
fn next_file(cfg: &Config) -> PathBuf {
    key_file(cfg).with_extension("key.next")
}

/// Where the replaced key is kept after a rotation (backups made before it still need it:
/// move it offline, do not delete it while such backups exist).
fn previous_file(cfg: &Config) -> PathBuf {
    key_file(cfg).with_extension("key.previous")
}

fn read_key(path: &std::path::Path) -> anyhow::Result<KeyBytes> {
    let secret = read_secret_file(path)?;
    decode(secret.expose_secret()).with_context(|| format!("reading {}", path.display()))
}

fn create_key(path: &std::path::Path) -> anyhow::Result<()> {
    let key = KeyBytes::random().map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = zeroize::Zeroizing::new(STANDARD.encode(key.expose()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::tls::write_private(path, text.as_bytes())?;
    std::fs::File::open(path).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", path.display()))
}

/// Load the master key(s). From the environment: that one key. From files: the key file, plus,
/// while a rotation is under way or was interrupted, the new key (which then wraps) and the
/// previous one (which still unwraps). On first start the key file is created.
pub fn load(cfg: &Config) -> anyhow::Result<LocalKeyProvider> {
    if let Ok(v) = std::env::var(ENV) {
        let key = decode(&v).with_context(|| format!("reading {ENV}"))?;
        return LocalKeyProvider::new(&key).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let (current, next, previous) = (key_file(cfg), next_file(cfg), previous_file(cfg));
    if !current.exists() && !next.exists() {
        create_key(&current)?;
        eprintln!(
            "warning: created a new master key in {}. Anyone with this file and a copy of the data can read it: \
             in production keep the key apart from the data ({ENV}, master_key_file on another volume, or a KMS).",
            current.display()
        );
    }
    let mut keys = Vec::new();
    for path in [&next, &current, &previous] {
        if path.exists() {
            keys.push(read_key(path)?);
        }
    }
    let (primary, older) = keys.split_first().context("no master key file")?;
    LocalKeyProvider::with_older(primary, older).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Begin (or resume) a master-key rotation: make sure the new key is on disk, durably, before
/// any tenant key is wrapped with it.
pub fn begin_rotation(cfg: &Config) -> anyhow::Result<()> {
    if std::env::var(ENV).is_ok() {
        bail!(
            "the master key comes from {ENV}: rotate by re-wrapping with a key file instead (unset {ENV}, \
             put the current key in master_key_file, then run this again)"
        );
    }
    let next = next_file(cfg);
    if !next.exists() {
        if !key_file(cfg).exists() {
            bail!("no master key file at {}", key_file(cfg).display());
        }
        create_key(&next)?;
    }
    Ok(())
}

/// Finish a rotation once every tenant key is wrapped by the new key: the current key becomes
/// the previous one and the new key the current one. Each step is a rename, so a crash leaves a
/// state that `load` understands and a re-run completes.
pub fn finish_rotation(cfg: &Config, step: &dyn Fn(&str)) -> anyhow::Result<()> {
    let (current, next, previous) = (key_file(cfg), next_file(cfg), previous_file(cfg));
    if !next.exists() {
        return Ok(());
    }
    if current.exists() {
        std::fs::rename(&current, &previous).with_context(|| format!("renaming {}", current.display()))?;
    }
    step("between-renames");
    std::fs::rename(&next, &current).with_context(|| format!("renaming {}", next.display()))?;
    if let Some(dir) = current.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}
