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
    // The decoder's error would quote the offending byte and position of a key: say less.
    let bytes = zeroize::Zeroizing::new(
        STANDARD.decode(text.trim()).map_err(|_| anyhow::anyhow!("the master key is not base64"))?,
    );
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

/// Make the directory entries of `dir` durable (after creating or renaming files in it).
fn sync_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// Create a new key file durably and only if none is there: the key is written and synced to a
/// temporary file, linked into place (which fails if the name exists, so two rotations cannot
/// both create one), and the directory is synced, all before the key is used for anything.
fn create_key(path: &std::path::Path) -> anyhow::Result<()> {
    let key = KeyBytes::random().map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = zeroize::Zeroizing::new(STANDARD.encode(key.expose()));
    create_secret_file(path, text.as_bytes())
}

/// Write a new secret file (0600) durably, only if none is there (see `create_key`).
pub(crate) fn create_secret_file(path: &std::path::Path, text: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a key file needs a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    crate::tls::write_private(&tmp, text)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.with_context(|| format!("creating {} (does it exist already?)", path.display()))?;
    sync_dir(dir)
}

/// Load the master key(s). From the environment: that one key. From files: the key file, plus,
/// while a rotation is under way or was interrupted, the new key (which then wraps) and the
/// previous one (which still unwraps). On first start the key file is created.
///
/// `may_create` says whether a missing key may be made: only for a database that holds no
/// wrapped keys yet. Otherwise a missing key file (an unmounted volume, a wrong path) is an
/// error, not a reason to start with a key that can unwrap nothing.
pub fn load(cfg: &Config, may_create: bool) -> anyhow::Result<LocalKeyProvider> {
    if let Ok(v) = std::env::var(ENV) {
        let key = decode(&v).with_context(|| format!("reading {ENV}"))?;
        return LocalKeyProvider::new(&key).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let (current, next, previous) = (key_file(cfg), next_file(cfg), previous_file(cfg));
    if !current.exists() && !next.exists() {
        if !may_create {
            bail!(
                "no master key at {} but the database holds keys wrapped by one: restore the key file \
                 (or set {ENV}) rather than starting with a new key",
                current.display()
            );
        }
        create_key(&current)?;
        crate::logs::notice(&format!(
            "created a new master key in {}. Anyone with this file and a copy of the data can read it: \
             in production keep the key apart from the data ({ENV}, master_key_file on another volume, or a KMS).",
            current.display()
        ));
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

/// Whether a rotation was begun and not finished (its new key is on disk).
pub fn rotation_in_progress(cfg: &Config) -> bool {
    next_file(cfg).exists()
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
        // A previous key still here means the last rotation's old key was not moved offline;
        // overwriting it could destroy the only key some backup or straggler needs.
        if previous_file(cfg).exists() {
            bail!(
                "{} is still here: move it offline (backups made before the last rotation need it), then rotate",
                previous_file(cfg).display()
            );
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
    let dir = current.parent().context("a key file needs a directory")?;
    if current.exists() {
        if previous.exists() {
            bail!("{} exists; refusing to overwrite a master key", previous.display());
        }
        std::fs::rename(&current, &previous).with_context(|| format!("renaming {}", current.display()))?;
        sync_dir(dir)?;
    }
    step("between-renames");
    std::fs::rename(&next, &current).with_context(|| format!("renaming {}", next.display()))?;
    sync_dir(dir)
}
