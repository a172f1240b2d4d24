//! Per-tenant keyrings in the backup target: `keyring/<tenant>.age`, the tenant's rows of
//! `tenant_keys` (each key still wrapped by the master key) encrypted to the backup recipient.
//! Every run rewrites each one from the live table, which keeps every key version ever made
//! for the tenant (rotation never deletes an old version; only erasure does), so the newest
//! keyring opens every older backup of the tenant. A tenant with an erasure record gets no
//! keyring again.

use super::target::{BackupTarget, keyring_key};
use anyhow::{Context, bail};
use portcullis_store::dump::Row;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

#[derive(Debug, Serialize, Deserialize)]
struct Keyring {
    tenant: String,
    keys: Vec<Row>,
}

/// Small data (a keyring) encrypted to `recipient`.
pub fn encrypt(recipient: &age::x25519::Recipient, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
    let enc = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .map_err(|e| anyhow::anyhow!("age: {e}"))?;
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out)?;
    w.write_all(plain)?;
    w.finish()?;
    Ok(out)
}

/// Rewrite the keyring of every tenant in `keys`, except erased ones.
pub async fn write_all(
    target: &BackupTarget,
    recipient: &age::x25519::Recipient,
    keys: &BTreeMap<String, Vec<Row>>,
) -> anyhow::Result<()> {
    let erased = target.erased_tenants().await?;
    for (tenant, rows) in keys {
        if erased.contains(tenant) {
            tracing::warn!(%tenant, "tenant erased but its keys are still in the database: no keyring written");
            continue;
        }
        let plain =
            zeroize::Zeroizing::new(serde_json::to_vec(&Keyring { tenant: tenant.clone(), keys: rows.clone() })?);
        target.put(&keyring_key(tenant), encrypt(recipient, &plain)?).await?;
    }
    Ok(())
}

/// A tenant's keyring, decrypted with `identity`.
pub async fn read(target: &BackupTarget, identity: &age::x25519::Identity, tenant: &str) -> anyhow::Result<Vec<Row>> {
    let Some(bytes) = target.get(&keyring_key(tenant)).await? else {
        bail!(
            "tenant {tenant}: its keyring {} is missing from the backup target and it has no erasure record, so its \
             data could not be opened",
            keyring_key(tenant)
        );
    };
    let dec = age::Decryptor::new(&bytes[..]).map_err(|e| anyhow::anyhow!("keyring of tenant {tenant}: {e}"))?;
    let mut r = dec
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| anyhow::anyhow!("keyring of tenant {tenant} is not encrypted to this identity: {e}"))?;
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    r.read_to_end(&mut plain).with_context(|| format!("keyring of tenant {tenant} is damaged"))?;
    let k: Keyring = serde_json::from_slice(&plain).with_context(|| format!("keyring of tenant {tenant}"))?;
    if k.tenant != tenant {
        bail!("keyring {} holds the keys of tenant {}", keyring_key(tenant), k.tenant);
    }
    Ok(k.keys)
}

/// Every key version `needed` is in the keyring.
pub fn check(tenant: &str, needed: &[(String, i64)], rows: &[Row]) -> anyhow::Result<()> {
    for (purpose, version) in needed {
        let found = rows.iter().any(|r| {
            r.get("purpose").and_then(|v| v.as_str()) == Some(purpose.as_str())
                && r.get("version").and_then(|v| v.as_i64()) == Some(*version)
        });
        if !found {
            bail!("tenant {tenant}: its keyring lacks the {purpose} key version {version} the backup needs");
        }
    }
    Ok(())
}
