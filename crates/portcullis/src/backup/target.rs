//! Where backups go: an `object_store` location (a local directory or S3; see
//! [`crate::object_stores`]). Its layout:
//!
//! - `backups/<id>.age`: the encrypted archive;
//! - `backups/<id>.manifest.json` and `backups/<id>.manifest.sig`: the archive's manifest in
//!   plain form with its SHA-256, and the node's Ed25519 signature of that file;
//! - `keyring/<tenant>.age`: the tenant's wrapped keys, age-encrypted, rewritten by every run;
//!   bulk archives never hold tenant keys, so deleting this one object puts every backup of the
//!   tenant out of reach;
//! - `erasures/<tenant>.json`: the signed erasure certificate of an erased tenant; a restore
//!   restores nothing of a tenant listed here.

use anyhow::Context;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use portcullis_core::ids::TenantId;
use portcullis_core::ports::{BlobStore, ByteStream};
use portcullis_store::ObjectBlobStore;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A backup target.
#[derive(Debug, Clone)]
pub struct BackupTarget {
    store: Arc<dyn ObjectStore>,
    /// The same store through the document store's streaming upload and download.
    streams: ObjectBlobStore,
    shown: String,
}

fn path(key: &str) -> anyhow::Result<Path> {
    Path::parse(key).map_err(|e| anyhow::anyhow!("bad object name {key:?}: {e}"))
}

pub fn archive_key(id: &str) -> String {
    format!("backups/{id}.age")
}
pub fn manifest_key(id: &str) -> String {
    format!("backups/{id}.manifest.json")
}
pub fn signature_key(id: &str) -> String {
    format!("backups/{id}.manifest.sig")
}
pub fn keyring_key(tenant: &str) -> String {
    format!("keyring/{tenant}.age")
}
pub fn erasure_key(tenant: &str) -> String {
    format!("erasures/{tenant}.json")
}

impl BackupTarget {
    /// A target on `store`, named `shown` in messages.
    pub fn new(store: Arc<dyn ObjectStore>, shown: String) -> Self {
        Self { streams: ObjectBlobStore::new(store.clone()), store, shown }
    }

    /// How to name this target in messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Upload a stream; the object appears whole or not at all.
    pub async fn put_stream(&self, key: &str, body: ByteStream) -> anyhow::Result<u64> {
        self.streams.put(key, body).await.map_err(|e| anyhow::anyhow!("writing {key} to the backup target: {e}"))
    }

    pub async fn get_stream(&self, key: &str) -> anyhow::Result<ByteStream> {
        self.streams.get(key, None).await.map_err(|e| match e {
            portcullis_core::Error::NotFound => anyhow::anyhow!("{key} is not in the backup target {}", self.shown),
            other => anyhow::anyhow!("reading {key} from the backup target: {other}"),
        })
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&path(key)?, bytes::Bytes::from(bytes).into())
            .await
            .with_context(|| format!("writing {key} to the backup target"))?;
        Ok(())
    }

    /// A small object's bytes, or `None` if it does not exist.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.store.get(&path(key)?).await {
            Ok(r) => Ok(Some(r.bytes().await.with_context(|| format!("reading {key}"))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading {key} from the backup target: {e}")),
        }
    }

    pub async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        match self.store.head(&path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(anyhow::anyhow!("looking up {key} in the backup target: {e}")),
        }
    }

    /// Delete an object; one already gone is fine.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("deleting {key} from the backup target: {e}")),
        }
    }

    /// The names of the objects under `prefix/` (without the prefix).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let p = path(prefix)?;
        let mut names = Vec::new();
        let mut s = self.store.list(Some(&p));
        while let Some(meta) = s.next().await {
            let meta = meta.with_context(|| format!("listing {prefix}/ in the backup target"))?;
            let full = meta.location.to_string();
            if let Some(name) = full.strip_prefix(&format!("{prefix}/")) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The tenants with an erasure record here: restore none of their data.
    pub async fn erased_tenants(&self) -> anyhow::Result<BTreeSet<String>> {
        Ok(self.list("erasures").await?.into_iter().filter_map(|n| n.strip_suffix(".json").map(String::from)).collect())
    }

    /// Carry a tenant's erasure to this target: store its certificate under `erasures/` and
    /// delete its keyring, so no backup, old or new, holds a key that opens its data, and a
    /// restore skips it. Idempotent. The certificate is written first: if the deletion then
    /// fails, the next call (or backup run) finishes it, and restores already skip the tenant.
    pub async fn apply_erasure(&self, tenant: TenantId, certificate: &[u8]) -> anyhow::Result<()> {
        let t = tenant.to_string();
        self.put(&erasure_key(&t), certificate.to_vec()).await?;
        self.delete(&keyring_key(&t)).await
    }
}
