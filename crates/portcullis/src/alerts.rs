//! Outgoing webhooks: the operators' alert webhook (the core's `Webhook` port) and each node's
//! heartbeat. Both are HTTP POSTs of a JSON body signed with HMAC-SHA256 (see
//! `portcullis_core::crypto::webhook`) by reqwest over rustls (aws-lc-rs), with a time limit on
//! every request and no redirects followed (a redirect is a failed delivery: the signed body is
//! never re-sent somewhere the configuration did not name).
//!
//! URLs must be `https://`: alerts name firms and IP addresses and must not cross a network in
//! clear. Plain `http://` is accepted only to a loopback address (a local relay or agent, and
//! the tests). The URL's path may hold a token, so it is never logged or shown; the signing
//! secrets are read from files, never from the configuration text.

use crate::config::{Config, read_secret_file};
use anyhow::Context;
use async_trait::async_trait;
use portcullis_core::clock::Clock;
use portcullis_core::crypto::webhook::{SIGNATURE_HEADER, WebhookSigner};
use portcullis_core::error::{Error, Result};
use portcullis_core::ports::Webhook;
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take (far inside the outbox's lease).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Check a webhook URL without connecting: `https://HOST...`, or `http://` to loopback only.
/// The error names the key and never repeats the URL's path or credentials.
pub fn check_webhook_url(key: &str, url: &str) -> anyhow::Result<()> {
    let shown = redact_origin(url);
    let u = url::Url::parse(url).map_err(|_| anyhow::anyhow!("key `{key}`: {shown} is not a URL"))?;
    if u.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("key `{key}`: {shown} names no host");
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if crate::mail::is_loopback(&u) => Ok(()),
        "http" => anyhow::bail!(
            "key `{key}`: {shown} would send over the network unencrypted; use https:// (plain http:// is \
             accepted only to a loopback address)"
        ),
        _ => anyhow::bail!("key `{key}`: {shown} must be an https:// URL"),
    }
}

/// A webhook URL as it may be shown: scheme, host and port; the path and query (which may hold a
/// token) and any credentials are hidden.
pub fn redact_origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/... (path hidden)",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<redacted: not a URL>".into(),
    }
}

/// Read a webhook signing secret from its file (which others must not be able to read).
pub fn load_secret(key: &str, path: &Path) -> anyhow::Result<SecretString> {
    let secret = read_secret_file(path).with_context(|| format!("key `{key}`"))?;
    if secret.expose_secret().len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "key `{key}`: the secret in {} is shorter than {MIN_SECRET_BYTES} bytes; make one with \
             `openssl rand -hex 32`",
            path.display()
        );
    }
    Ok(secret)
}

/// Signed JSON POSTs to one URL.
pub struct HttpWebhook {
    client: reqwest::Client,
    url: SecretString,
    signer: WebhookSigner,
    /// The wall clock: the signing time is what a receiver compares with its own clock.
    clock: Arc<dyn Clock>,
    /// Which key this is, for error texts (never the URL).
    key: &'static str,
}

impl std::fmt::Debug for HttpWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhook")
            .field("url", &redact_origin(self.url.expose_secret()))
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl HttpWebhook {
    /// A webhook for `url` (checked by [`check_webhook_url`]) signing with `secret`.
    pub fn new(
        key: &'static str,
        url: &SecretString,
        secret: &SecretString,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        check_webhook_url(key, url.expose_secret())?;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("Portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .with_context(|| format!("key `{key}`: building the HTTP client"))?;
        let signer = WebhookSigner::new(secret.expose_secret().as_bytes());
        Ok(Self { client, url: url.clone(), signer, clock, key })
    }

    /// POST `body`, signed; Ok only for a 2xx answer.
    pub async fn post_signed(&self, body: Vec<u8>) -> Result<()> {
        let signature = self.signer.header(self.clock.now().unix_timestamp(), &body);
        let resp = self
            .client
            .post(self.url.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| Error::internal(format!("{}: {}", self.key, error_chain(&e.without_url()))))?;
        let status = resp.status();
        if status.is_success() { Ok(()) } else { Err(Error::internal(format!("{} answered {status}", self.key))) }
    }
}

/// An error and its causes on one line (reqwest's own text is terse). Carries no URL: the
/// caller strips it first.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[async_trait]
impl Webhook for HttpWebhook {
    async fn post(&self, body: &[u8]) -> Result<()> {
        self.post_signed(body.to_vec()).await
    }
}

/// The webhooks a node sends, built (and their secrets read) at start, so a missing or
/// readable secret file stops the start with its reason.
#[derive(Debug)]
pub struct Webhooks {
    pub alerts: Option<Arc<HttpWebhook>>,
    pub heartbeat: Option<HttpWebhook>,
}

/// Build the configured webhooks. Signing times come from `wall`.
pub fn webhooks(cfg: &Config, wall: Arc<dyn Clock>) -> anyhow::Result<Webhooks> {
    let alert_secret =
        cfg.alert_webhook_secret_file.as_deref().map(|p| load_secret("alert_webhook_secret_file", p)).transpose()?;
    let alerts = match (&cfg.alert_webhook_url, &alert_secret) {
        (Some(url), Some(secret)) => Some(Arc::new(HttpWebhook::new("alert_webhook_url", url, secret, wall.clone())?)),
        (Some(_), None) => anyhow::bail!("key `alert_webhook_secret_file`: needed with `alert_webhook_url`"),
        (None, _) => None,
    };
    let heartbeat = match &cfg.heartbeat_url {
        Some(url) => {
            let secret = match &cfg.heartbeat_secret_file {
                Some(p) => load_secret("heartbeat_secret_file", p)?,
                None => alert_secret
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("key `heartbeat_secret_file`: needed with `heartbeat_url`"))?,
            };
            Some(HttpWebhook::new("heartbeat_url", url, &secret, wall)?)
        }
        None => None,
    };
    Ok(Webhooks { alerts, heartbeat })
}

/// The JSON of one heartbeat: which node, its sequence number since start, and times.
pub fn heartbeat_body(node: &str, seq: u64, started: OffsetDateTime, now: OffsetDateTime) -> serde_json::Value {
    let t = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string());
    serde_json::json!({
        "type": "heartbeat",
        "version": 1,
        "node": node,
        "seq": seq,
        "started_at": t(started),
        "sent_at": t(now),
        "software": concat!("portcullis ", env!("CARGO_PKG_VERSION")),
    })
}

/// Post a heartbeat every `every` (the first at start) until aborted. Heartbeats are not
/// queued: a late one is worthless, so a failure is only logged and the next goes out on time.
pub fn spawn_heartbeat(
    hook: HttpWebhook,
    node: String,
    every: Duration,
    clock: Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = clock.now();
        let mut tick = crate::background::ticker(Duration::ZERO, every);
        let mut seq = 0u64;
        let mut failing = false;
        loop {
            tick.tick().await;
            seq += 1;
            let body = heartbeat_body(&node, seq, started, clock.now());
            match serde_json::to_vec(&body).map_err(Error::internal) {
                Ok(bytes) => match hook.post_signed(bytes).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!(seq, "heartbeat delivered again");
                    }
                    Ok(()) => {}
                    Err(e) => {
                        failing = true;
                        tracing::warn!(seq, error = %e, "heartbeat not delivered; the next one goes out on time");
                    }
                },
                Err(e) => tracing::warn!(error = %e, "heartbeat not built"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_need_https_unless_loopback() {
        for ok in ["https://hooks.example.com/x", "http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]/"] {
            assert!(check_webhook_url("k", ok).is_ok(), "{ok}");
        }
        for bad in ["http://hooks.example.com/T0KEN", "http://10.0.0.5/T0KEN", "ftp://h/T0KEN", "not a url"] {
            let e = check_webhook_url("k", bad).unwrap_err().to_string();
            assert!(e.contains("`k`") && !e.contains("T0KEN"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_the_origin_is_shown() {
        assert_eq!(
            redact_origin("https://u:pw@h.example:8443/a/T0KEN?x=1"),
            "https://h.example:8443/... (path hidden)"
        );
        assert_eq!(redact_origin("nonsense"), "<redacted: not a URL>");
    }

    #[test]
    fn short_or_missing_secrets_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "short\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_secret("alert_webhook_secret_file", &p).unwrap_err().to_string();
        assert!(e.contains("alert_webhook_secret_file") && e.contains("shorter"), "{e}");
        let e = format!("{:#}", load_secret("alert_webhook_secret_file", &dir.path().join("none")).unwrap_err());
        assert!(e.contains("alert_webhook_secret_file") && e.contains("none"), "{e}");
        std::fs::write(&p, format!("{}\n", "a".repeat(64))).unwrap();
        assert_eq!(load_secret("k", &p).unwrap().expose_secret().len(), 64);
    }
}
