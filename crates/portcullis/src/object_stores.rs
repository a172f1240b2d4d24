//! Where objects live. Documents (`document_store`) and backups (`backup_target`) are each a
//! location: a local directory, or `s3://BUCKET[/PREFIX]` on AWS S3 or any S3-compatible
//! server (`s3_endpoint`). Both are opened here, through `object_store`, so the document store,
//! the backup target and every node agree on what a location means. One machine keeps the
//! default local directories; nodes that share one PostgreSQL database share one bucket.

use crate::config::{Config, read_secret_file};
use anyhow::{Context, bail};
use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use portcullis_store::ObjectBlobStore;
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::sync::Arc;

/// A configured location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parse the value of `key`: `s3://BUCKET[/PREFIX]`, `file:///DIR` or a directory.
    pub fn parse(key: &str, value: &str) -> anyhow::Result<Self> {
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // S3's bucket naming rules: 3 to 63 lower-case letters, digits, dots and hyphens.
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
                && !bucket.starts_with(['.', '-'])
                && !bucket.ends_with(['.', '-']);
            if !valid {
                bail!("key `{key}`: {bucket:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '.', '-')");
            }
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty() && prefix.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
                bail!("key `{key}`: the prefix {prefix:?} has an empty, '.' or '..' part");
            }
            return Ok(Self::S3 { bucket: bucket.into(), prefix: prefix.into() });
        }
        if value.contains("://") && !value.starts_with("file://") {
            bail!("key `{key}`: {value:?} is neither a directory, file:///DIR nor s3://BUCKET[/PREFIX]");
        }
        let dir = value.strip_prefix("file://").unwrap_or(value);
        if dir.is_empty() {
            bail!("key `{key}`: the directory is empty");
        }
        Ok(Self::Local(PathBuf::from(dir)))
    }

    /// How to name the location in messages (never credentials: they are not part of it).
    pub fn shown(&self) -> String {
        match self {
            Self::Local(dir) => dir.display().to_string(),
            Self::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// Where documents are kept.
pub fn document_location(cfg: &Config) -> anyhow::Result<Location> {
    match &cfg.document_store {
        Some(v) => Location::parse("document_store", v),
        None => Ok(Location::Local(cfg.data.join("documents"))),
    }
}

/// Where backups go.
pub fn backup_location(cfg: &Config) -> anyhow::Result<Location> {
    match &cfg.backup_target {
        Some(v) => Location::parse("backup_target", v),
        None => Ok(Location::Local(cfg.data.join("backups"))),
    }
}

/// The document store.
pub fn documents(cfg: &Config) -> anyhow::Result<ObjectBlobStore> {
    Ok(ObjectBlobStore::new(open(cfg, &document_location(cfg)?)?))
}

/// The readiness probe's object, which does not count as content.
const PROBE: &str = ".portcullis-ready";

/// Whether `store` holds any object besides the readiness probe.
pub async fn holds_objects(store: &dyn ObjectStore) -> anyhow::Result<bool> {
    use futures::StreamExt;
    let mut list = store.list(None);
    while let Some(meta) = list.next().await {
        if meta.context("listing the document store")?.location.as_ref() != PROBE {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Delete every object in `store` (a failed restore's documents, written into a store that was
/// empty before it).
pub async fn delete_all(store: &dyn ObjectStore) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut list = store.list(None);
    while let Some(meta) = list.next().await {
        let meta = meta.context("listing the document store")?;
        store.delete(&meta.location).await.with_context(|| format!("deleting {}", meta.location))?;
    }
    Ok(())
}

/// Check the locations and S3 settings without connecting anywhere (at configuration time).
pub fn check(cfg: &Config) -> anyhow::Result<()> {
    let uses_s3 = [document_location(cfg)?, backup_location(cfg)?].iter().any(|l| matches!(l, Location::S3 { .. }));
    if let Some(e) = &cfg.s3_endpoint {
        endpoint(e)?;
    }
    if cfg.s3_access_key_id.is_some() != cfg.s3_secret_access_key_file.is_some() {
        bail!("keys `s3_access_key_id` and `s3_secret_access_key_file`: set both or neither");
    }
    if !uses_s3 && (cfg.s3_endpoint.is_some() || cfg.s3_access_key_id.is_some()) {
        bail!("keys `s3_*`: set, but neither `document_store` nor `backup_target` is an s3:// location");
    }
    if cfg.s3_region.trim().is_empty() {
        bail!("key `s3_region`: must not be empty");
    }
    Ok(())
}

/// An endpoint's URL, and whether it is plain HTTP (allowed to a loopback address only: the
/// documents are encrypted, but the request signatures and bucket layout are not for the
/// network to read, and a proxy could drop writes unseen).
fn endpoint(e: &str) -> anyhow::Result<(url::Url, bool)> {
    let u = url::Url::parse(e).with_context(|| format!("key `s3_endpoint`: {e:?} is not a URL"))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match u.scheme() {
        "https" => Ok((u, false)),
        "http" if loopback => Ok((u, true)),
        "http" => bail!("key `s3_endpoint`: plain http:// is allowed to a loopback address only; use https://"),
        other => bail!("key `s3_endpoint`: the scheme {other:?} is neither https nor http"),
    }
}

/// Open `loc` (a local directory is created if missing).
pub fn open(cfg: &Config, loc: &Location) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match loc {
        Location::Local(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .with_context(|| format!("opening {}", dir.display()))?
                .with_automatic_cleanup(true);
            Ok(Arc::new(fs))
        }
        Location::S3 { bucket, prefix } => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&cfg.s3_region);
            if let Some(e) = &cfg.s3_endpoint {
                let (u, plain) = endpoint(e)?;
                // Compatible servers on one address name the bucket in the path.
                b = b.with_endpoint(u.as_str().trim_end_matches('/')).with_allow_http(plain);
                b = b.with_virtual_hosted_style_request(false);
            }
            if let (Some(id), Some(file)) = (&cfg.s3_access_key_id, &cfg.s3_secret_access_key_file) {
                let secret = read_secret_file(file)?;
                b = b.with_access_key_id(id).with_secret_access_key(secret.expose_secret());
            }
            let s3 = b.build().with_context(|| format!("opening {}", loc.shown()))?;
            Ok(if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix.as_str())) })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_name_the_key() {
        let s3 = |b: &str, p: &str| Location::S3 { bucket: b.into(), prefix: p.into() };
        assert_eq!(Location::parse("k", "s3://docs-1").unwrap(), s3("docs-1", ""));
        assert_eq!(Location::parse("k", "s3://docs.firm/eu/prod/").unwrap(), s3("docs.firm", "eu/prod"));
        assert_eq!(Location::parse("k", "file:///srv/docs").unwrap(), Location::Local("/srv/docs".into()));
        assert_eq!(Location::parse("k", "/srv/docs").unwrap(), Location::Local("/srv/docs".into()));
        assert_eq!(s3("b-1", "x/y").shown(), "s3://b-1/x/y");
        for bad in
            ["s3://", "s3://AB", "s3://-bucket", "s3://a_b_c", "s3://bucket/a//b", "s3://bucket/../x", "gs://b", ""]
        {
            let e = Location::parse("document_store", bad).unwrap_err().to_string();
            assert!(e.contains("document_store"), "{bad}: {e}");
        }
    }

    #[test]
    fn plain_http_endpoints_only_to_loopback() {
        assert!(!endpoint("https://s3.eu-west-2.amazonaws.com").unwrap().1);
        assert!(endpoint("http://127.0.0.1:9000").unwrap().1);
        assert!(endpoint("http://localhost:9000").unwrap().1);
        for bad in ["http://10.0.0.5:9000", "ftp://127.0.0.1", "not a url"] {
            assert!(endpoint(bad).unwrap_err().to_string().contains("s3_endpoint"), "{bad}");
        }
    }

    #[test]
    fn s3_settings_are_checked_together() {
        let s3 = Config { document_store: Some("s3://docs".into()), ..Config::default() };
        check(&s3).unwrap();
        let half = Config { s3_access_key_id: Some("AK".into()), ..s3.clone() };
        assert!(check(&half).unwrap_err().to_string().contains("set both"));
        let unused = Config { s3_endpoint: Some("https://s3.example".into()), ..Config::default() };
        assert!(check(&unused).unwrap_err().to_string().contains("neither"));
        let region = Config { s3_region: " ".into(), ..s3 };
        assert!(check(&region).unwrap_err().to_string().contains("s3_region"));
    }
}
