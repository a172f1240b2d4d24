//! Configuration in layers: built-in defaults, then a TOML file, then `PORTCULLIS_*` environment
//! variables (with `PORTCULLIS_DATABASE_URL_FILE` and `PORTCULLIS_SMTP_URL_FILE` for the
//! secrets; the webhook signing secrets are only ever read from files named by
//! `alert_webhook_secret_file` and `heartbeat_secret_file`). Unknown keys are refused with
//! their name, in the file and in the environment alike, so a typo never silently falls back to
//! a default.
//!
//! Every key is declared once, in `keys.rs`: its type, default, range and documentation. The
//! struct, the defaults, the environment's key list, the range checks and the README's table
//! follow from that declaration; a test fails if the README's table is stale.

mod declare;
mod env;
mod keys;
mod secrets;
#[cfg(test)]
mod tests;
mod validate;

pub use keys::{Config, KEYS};
pub use secrets::{read_secret_file, redact_url};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::Deserialize;
use std::path::Path;

fn default_languages() -> Vec<String> {
    vec!["en".into()]
}

fn default_notice_days() -> Vec<String> {
    vec!["90".into(), "30".into()]
}

/// A list from TOML, or a comma-separated string (as an environment variable gives it).
fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Many(Vec<String>),
        One(String),
    }
    Ok(match List::deserialize(d)? {
        List::Many(v) => v,
        List::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
    })
}

/// The settings that are security limits: a change to any of them between starts is a change
/// record (`config.security_limits`, see `Portal::record_security_limits`). Keys whose prefix
/// ends in `_` stand for every key that starts so.
const SECURITY_LIMIT_KEYS: &[&str] = &[
    "session_idle_minutes",
    "session_absolute_hours",
    "invite_link_hours",
    "max_upload_bytes",
    "max_body_bytes",
    "request_timeout_secs",
    "upload_idle_timeout_secs",
    "master_key_rotation_needs_approval",
    "retention_days",
    "alert_tenant_admins",
    "tls_expiry_warn_days",
    "trusted_proxies",
    "client_ip_header",
    "rate_limit_",
    "incident_triage_minutes",
    "max_in_flight_",
    "max_connections",
    "max_connections_per_ip",
    "header_read_timeout_secs",
    "connection_idle_timeout_secs",
    "max_header_bytes",
    "waf_",
    "ids_",
    "anomaly_",
    "backup_enabled",
    "backup_keep_",
];

impl Config {
    /// The security limits of this configuration, by key (see [`SECURITY_LIMIT_KEYS`]).
    pub fn security_limits(&self) -> anyhow::Result<serde_json::Value> {
        let serde_json::Value::Object(all) = serde_json::to_value(self).context("serialising the configuration")?
        else {
            bail!("the configuration did not serialise to an object");
        };
        let wanted =
            |k: &str| SECURITY_LIMIT_KEYS.iter().any(|w| if w.ends_with('_') { k.starts_with(w) } else { k == *w });
        Ok(serde_json::Value::Object(all.into_iter().filter(|(k, _)| wanted(k)).collect()))
    }
}

impl Config {
    /// Load defaults, then `file` (if given, it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                bail!("config file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        // A misspelt variable is refused here with its name; the other known variables (read
        // elsewhere, see `env::OTHER_VARIABLES`) are then left out of the keys by the filter.
        env::check(std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()))?;
        fig = fig.merge(Env::prefixed(env::PREFIX).filter(|k| KEYS.iter().any(|known| k == *known)));
        let mut cfg: Config = fig.extract().map_err(|e| {
            let mut msg = String::from("invalid configuration:");
            for err in e {
                let key = if err.path.is_empty() { "(top level)".to_string() } else { err.path.join(".") };
                msg.push_str(&format!("\n  key `{key}`: {}", err.kind));
            }
            anyhow::anyhow!(msg)
        })?;
        if let Ok(path) = std::env::var("PORTCULLIS_DATABASE_URL_FILE") {
            cfg.database_url = Some(read_secret_file(Path::new(&path))?);
        }
        if let Ok(path) = std::env::var("PORTCULLIS_SMTP_URL_FILE") {
            cfg.smtp_url = Some(read_secret_file(Path::new(&path))?);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// This node's name: `node_id`, else the machine's host name.
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .map(|h| h.trim().to_string())
                .find(|h| !h.is_empty())
                .unwrap_or_else(|| "portcullis".into())
        })
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> SecretString {
        match &self.database_url {
            Some(u) => u.clone(),
            None => SecretString::from(format!("sqlite://{}", self.data.join("portcullis.db").display())),
        }
    }

    /// The base for links.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("https://{}", self.listen))
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn redacted_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.database_url = Some(self.database_url());
        toml_string(&shown)
    }
}

fn toml_string(c: &Config) -> anyhow::Result<String> {
    // figment re-exports no TOML writer; render key = value lines from the JSON form.
    let v = serde_json::to_value(c)?;
    let mut out = String::new();
    if let serde_json::Value::Object(map) = v {
        for (k, v) in map {
            if !v.is_null() {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
    }
    Ok(out)
}
