//! Configuration in layers: built-in defaults, then a TOML file, then `PORTCULLIS_*` environment
//! variables (with `PORTCULLIS_DATABASE_URL_FILE` and `PORTCULLIS_SMTP_URL_FILE` for the
//! secrets; the webhook signing secrets are only ever read from files named by
//! `alert_webhook_secret_file` and `heartbeat_secret_file`). Unknown keys are refused with
//! their name, so a typo never silently falls back to a default.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every setting. Field names are the TOML keys; `PORTCULLIS_<KEY>` in the environment overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory: database, documents, TLS certificate.
    pub data: PathBuf,
    /// HTTPS listen address.
    pub listen: String,
    /// `sqlite://...` or `postgres://...`; default: SQLite in the data directory.
    #[serde(serialize_with = "redact_opt", default)]
    pub database_url: Option<SecretString>,
    /// Base URL for links the server prints or returns; default `https://<listen>`.
    pub public_url: Option<String>,
    /// PEM certificate chain and private key; default: a self-signed pair made on first start.
    pub tls_cert: Option<PathBuf>,
    /// Master key file; default `<data>/master.key`. `PORTCULLIS_MASTER_KEY` takes precedence.
    pub master_key_file: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Optional plain-HTTP listener that only redirects to HTTPS.
    pub redirect_http_listen: Option<String>,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub invite_link_hours: i64,
    pub max_upload_bytes: u64,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// On SIGTERM, how long the node keeps serving with readiness off (so a load balancer moves
    /// its traffic) before it stops accepting; 0: stop at once.
    pub drain_secs: u64,
    pub upload_idle_timeout_secs: u64,
    /// How often each node looks for an interrupted tenant-key rotation to resume.
    pub key_rotation_poll_secs: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// Four eyes on `keys rotate-master`: it needs a request approved by a second privileged
    /// operator. Turn off only where one person runs the whole installation.
    pub master_key_rotation_needs_approval: bool,
    /// The audit signing key (Ed25519); default `<data>/audit-signing.key`, made on first start.
    pub audit_signing_key_file: Option<PathBuf>,
    /// How often each node signs a checkpoint of every audit chain that grew.
    pub audit_checkpoint_secs: u64,
    /// Where notices to users go: `smtps://[USER:PASSWORD@]HOST[:PORT]`, or
    /// `smtp://HOST[:PORT]?tls=required`; plain `smtp://` only to a loopback relay. Unset: mail
    /// is queued but not sent.
    #[serde(serialize_with = "redact_opt", default)]
    pub smtp_url: Option<SecretString>,
    /// The sender of notices, a mailbox such as `Portcullis <portal@firm.example>`.
    pub mail_from: String,
    /// How often each node looks for mail to send.
    pub mail_poll_secs: u64,
    /// Days an ended subscription's data is kept before it is destroyed: at least 2557 (the
    /// policy's seven years), at most 36525.
    pub retention_days: u32,
    /// Notices to a firm's owners this many days before its data is destroyed (a TOML list, or
    /// comma-separated in the environment), each from 1 to `retention_days`.
    #[serde(deserialize_with = "list_or_csv", default = "default_notice_days")]
    pub retention_notice_days: Vec<String>,
    /// How often each node runs the lifecycle job: notices, retention, and destroying erased
    /// firms.
    pub lifecycle_poll_secs: u64,
    /// Ship logs to a syslog collector over TLS (RFC 5425): `tls://HOST[:PORT]` (port 6514 by
    /// default). Plain TCP and UDP are refused.
    pub syslog_url: Option<String>,
    /// PEM certificates to trust for the syslog collector instead of the system's roots.
    pub syslog_ca_file: Option<PathBuf>,
    /// The syslog facility: `local0` to `local7`, `user`, `daemon`, `auth` or `authpriv`.
    pub syslog_facility: String,
    /// Ship logs to an OpenTelemetry collector over OTLP/HTTP (JSON): its base URL, such as
    /// `https://otel.example:4318`. Plain `http://` only to a collector on this machine.
    pub otlp_endpoint: Option<String>,
    /// A secret file of `Name: value` header lines sent with every OTLP request (API keys).
    pub otlp_headers_file: Option<PathBuf>,
    /// PEM certificates to trust for the OTLP collector instead of the system's roots.
    pub otlp_ca_file: Option<PathBuf>,
    /// Lines each collector's buffer holds while the collector is unreachable; past this the
    /// oldest are dropped and counted.
    pub log_buffer_lines: usize,
    /// A secret file holding the bearer token that `GET /metrics` on the HTTPS listener requires.
    /// Unset: `/metrics` is not served there.
    pub metrics_token_file: Option<PathBuf>,
    /// A separate plain-HTTP listener for `/metrics` alone, on a loopback address (for an agent
    /// on the same machine), needing no token.
    pub metrics_listen: Option<String>,
    /// This node's name in alerts and heartbeats (letters, digits, `.`, `_`, `-`); default: the
    /// machine's host name.
    pub node_id: Option<String>,
    /// Where vulnerability finders report, for `security.txt` (RFC 9116): `mailto:`, `https://`
    /// or `tel:` URIs, most preferred first (a TOML list, or comma-separated in the
    /// environment). Default: `mailto:` each of `alert_email_to`; with neither, no file.
    #[serde(deserialize_with = "list_or_csv", default)]
    pub security_contact: Vec<String>,
    /// The vulnerability disclosure policy's `https://` address, for `security.txt`.
    pub security_policy_url: Option<String>,
    /// Languages reports may be written in, for `security.txt` (default `en`).
    #[serde(deserialize_with = "list_or_csv", default = "default_languages")]
    pub security_languages: Vec<String>,
    /// A fixed `Expires:` for `security.txt` (RFC 3339, e.g. `2027-06-30T00:00:00Z`), kept up to
    /// date by the operator; default: 180 days after each time it is served.
    pub security_txt_expires: Option<String>,
    /// Operators' addresses for security alerts (a TOML list, or comma-separated in the
    /// environment). Needs `smtp_url`.
    #[serde(deserialize_with = "list_or_csv", default)]
    pub alert_email_to: Vec<String>,
    /// Operators' webhook for security alerts: `https://...` (plain `http://` only to loopback).
    /// Shown without its path, which may hold a token.
    #[serde(serialize_with = "redact_origin_opt", default)]
    pub alert_webhook_url: Option<SecretString>,
    /// File holding the secret (at least 32 bytes) that signs webhooks; not readable by others.
    pub alert_webhook_secret_file: Option<PathBuf>,
    /// Also mail a firm's owners and admins the alerts about their firm (brute force against its
    /// accounts, damaged documents). Needs `smtp_url`.
    pub alert_tenant_admins: bool,
    /// Occurrences of one alert (kind, firm, subject) within this many minutes are one alert with
    /// a count.
    pub alert_dedup_minutes: u64,
    /// The longest wait between two attempts to deliver an alert (backoff starts at 10 seconds).
    pub alert_retry_max_secs: u64,
    /// An alert delivery still failing this long after it was queued is given up (and audited).
    pub alert_give_up_hours: u64,
    /// How often each node looks for alerts to deliver.
    pub alert_poll_secs: u64,
    /// Alert when the served TLS certificate expires within this many days (checked at start and
    /// daily).
    pub tls_expiry_warn_days: u64,
    /// Where each node posts its signed heartbeat (dead-man's switch); same URL rules as
    /// `alert_webhook_url`. Unset: no heartbeat.
    #[serde(serialize_with = "redact_origin_opt", default)]
    pub heartbeat_url: Option<SecretString>,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u64,
    /// The heartbeat's signing secret file; default: `alert_webhook_secret_file`.
    pub heartbeat_secret_file: Option<PathBuf>,
    /// Proxies (CIDR ranges) whose `client_ip_header` is believed. From any other peer the TCP
    /// address is the client's. A TOML list, or comma-separated in the environment.
    #[serde(deserialize_with = "list_or_csv", default)]
    pub trusted_proxies: Vec<String>,
    /// `x-forwarded-for` (the right-most untrusted hop), `forwarded` (RFC 7239), or the name of a
    /// header holding one address that the proxy overwrites (such as `x-real-ip`).
    pub client_ip_header: String,
    /// Requests per minute per client IP (token bucket refill; 0 turns the limit off).
    pub rate_limit_ip_per_minute: u32,
    /// Requests a client IP may make at once before the per-minute rate applies.
    pub rate_limit_ip_burst: u32,
    /// Requests per minute per signed-in user (session or API token); 0: off.
    pub rate_limit_account_per_minute: u32,
    pub rate_limit_account_burst: u32,
    /// Requests per minute per firm, all its users together; 0: off.
    pub rate_limit_tenant_per_minute: u32,
    pub rate_limit_tenant_burst: u32,
    /// Sign-in attempts per minute per firm and email address, from anywhere; 0: off.
    pub rate_limit_sign_in_per_minute: u32,
    pub rate_limit_sign_in_burst: u32,
    /// Public vulnerability and breach reports per minute per client IP; 0: off.
    pub rate_limit_report_per_minute: u32,
    pub rate_limit_report_burst: u32,
    /// A new incident is to be triaged within this many minutes; a miss raises an alert.
    pub incident_triage_minutes: u32,
    /// Requests in progress on this node beyond which new ones get 503 at once (load shedding).
    pub max_in_flight_requests: usize,
    /// Requests without credentials in progress from one source (429 beyond).
    pub max_in_flight_per_ip: usize,
    /// Open connections on this node, and from one peer address (trusted proxies exempt).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Seconds a client gets to send its request headers (HTTP/1; slow-loris defence).
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may move no bytes either way before it is closed (HTTP/1 and 2).
    pub connection_idle_timeout_secs: u64,
    /// Largest request head: HTTP/1 read buffer and HTTP/2 header list, and the filter's limit
    /// on the headers' total size.
    pub max_header_bytes: usize,
    /// Request filter rule groups: path, query string, headers, methods and content types.
    pub waf_path_rules: bool,
    pub waf_query_rules: bool,
    pub waf_header_rules: bool,
    pub waf_content_type_rules: bool,
    pub waf_max_path_bytes: usize,
    pub waf_max_query_bytes: usize,
    pub waf_max_headers: usize,
    /// Refused requests audited per client IP per minute; more are counted into the next event.
    pub waf_audit_per_minute: u32,
    /// Intrusion and anomaly detection on (off: nothing is counted, blocked or paused).
    pub ids_enabled: bool,
    /// Failed sign-ins and error answers are counted within windows of this many minutes.
    pub ids_window_minutes: u64,
    /// Failed sign-ins on one account from one address within the window that count as brute force (the address is blocked, the account protected).
    pub ids_brute_force_failures: u64,
    /// Distinct accounts failing from one address within the window that count as password spraying (the address is blocked).
    pub ids_spray_accounts: u64,
    /// Distinct addresses failing on one account within the window that count as credential stuffing (the account is protected).
    pub ids_stuffing_sources: u64,
    /// 401, 403 and 404 answers to one address within the window (per node) that count as an enumeration scan (the address is blocked).
    pub ids_scan_errors: u64,
    /// CSRF failures from one address within the window (per node) before the address is blocked.
    pub ids_csrf_failures: u64,
    /// How long a blocked address stays blocked (unless an operator lifts it).
    pub ids_block_minutes: u64,
    /// How long an attacked account stays protected (unless an admin lifts it).
    pub ids_protect_hours: u64,
    /// A day's downloads above this many times the user's baseline (count or bytes) pause the user.
    pub anomaly_download_factor: u64,
    /// ...but never at or below this many downloads in a day.
    pub anomaly_download_floor: u64,
    /// ...nor at or below this many MiB in a day.
    pub anomaly_download_floor_mib: u64,
    /// More downloads than this in a day pause the user whatever the history.
    pub anomaly_download_ceiling: u64,
    /// More MiB than this in a day pause the user whatever the history.
    pub anomaly_download_ceiling_mib: u64,
    /// Active days of history before the baseline is used (before, only the ceiling applies).
    pub anomaly_min_days: u64,
    /// Weight of the newest active day in the baselines, in percent.
    pub anomaly_ewma_percent: u64,
    /// Sign-ins recorded before one at a never-used hour counts as unusual.
    pub anomaly_hours_min_signins: u64,
    /// Where documents are kept: a directory (or `file:///dir`), or `s3://BUCKET[/PREFIX]` (see
    /// the `s3_*` keys); default `<data>/documents`. Nodes that share a database share this too.
    pub document_store: Option<String>,
    /// An S3-compatible endpoint (`https://...`; plain `http://` only to loopback); unset: AWS
    /// S3 in `s3_region`.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// Credentials; unset: the standard `AWS_*` environment (and instance roles) apply.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key_file: Option<PathBuf>,
    /// Scheduled backups on (they also need `backup_recipient`). The command line works either way.
    pub backup_enabled: bool,
    /// Where backups go: a directory (or `file:///dir`), or `s3://BUCKET[/PREFIX]`; default
    /// `<data>/backups`. Put it on other storage than the data directory.
    pub backup_target: Option<String>,
    /// The age public key (`age1...`) backups and keyrings are encrypted to. The identity that
    /// opens them must be kept off the servers.
    pub backup_recipient: Option<String>,
    /// A file holding the recipient instead (first line that is not a comment).
    pub backup_recipient_file: Option<PathBuf>,
    /// When the daily backup runs, `HH:MM` UTC.
    pub backup_at: String,
    /// Scheduled backups kept of each kind (grandfather-father-son): the newest this many
    /// daily, weekly and monthly ones.
    pub backup_keep_daily: u64,
    pub backup_keep_weekly: u64,
    pub backup_keep_monthly: u64,
    /// How often each node looks whether a backup is due.
    pub backup_poll_secs: u64,
}

/// A list from TOML, or a comma-separated string (as an environment variable gives it).
fn default_languages() -> Vec<String> {
    vec!["en".into()]
}

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

fn redact_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    serialize_shown(v, s, redact_url)
}

fn redact_origin_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    serialize_shown(v, s, crate::alerts::redact_origin)
}

/// A secret URL as `shown` lets it be seen.
fn serialize_shown<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
    shown: fn(&str) -> String,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(url) => s.serialize_some(&shown(url.expose_secret())),
        None => s.serialize_none(),
    }
}

/// A database URL as it may be shown: engine, host, port and database only. Anything that does
/// not parse is hidden whole (it might be a key=value string with a password in it).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "sqlite" => format!("sqlite:{}", u.path()),
        Ok(u) => format!(
            "{}://{}{}{} (credentials and options hidden)",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "<redacted: not a URL>".into(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data: PathBuf::from("./portcullis-data"),
            listen: "127.0.0.1:8443".into(),
            database_url: None,
            public_url: None,
            tls_cert: None,
            master_key_file: None,
            tls_key: None,
            redirect_http_listen: None,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            invite_link_hours: 72,
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            drain_secs: 10,
            upload_idle_timeout_secs: 60,
            key_rotation_poll_secs: 30,
            log_format: "text".into(),
            master_key_rotation_needs_approval: true,
            audit_signing_key_file: None,
            audit_checkpoint_secs: 300,
            smtp_url: None,
            mail_from: "Portcullis <portcullis@localhost>".into(),
            mail_poll_secs: 5,
            retention_days: portcullis_core::service::MIN_RETENTION_DAYS,
            retention_notice_days: default_notice_days(),
            lifecycle_poll_secs: 60,
            syslog_url: None,
            syslog_ca_file: None,
            syslog_facility: "local0".into(),
            otlp_endpoint: None,
            otlp_headers_file: None,
            otlp_ca_file: None,
            log_buffer_lines: 100_000,
            metrics_token_file: None,
            metrics_listen: None,
            node_id: None,
            security_contact: Vec::new(),
            security_policy_url: None,
            security_languages: default_languages(),
            security_txt_expires: None,
            alert_email_to: Vec::new(),
            alert_webhook_url: None,
            alert_webhook_secret_file: None,
            alert_tenant_admins: true,
            alert_dedup_minutes: 15,
            alert_retry_max_secs: 900,
            alert_give_up_hours: 48,
            alert_poll_secs: 5,
            tls_expiry_warn_days: 14,
            heartbeat_url: None,
            heartbeat_secs: 60,
            heartbeat_secret_file: None,
            trusted_proxies: Vec::new(),
            client_ip_header: "x-forwarded-for".into(),
            rate_limit_ip_per_minute: 600,
            rate_limit_ip_burst: 200,
            rate_limit_account_per_minute: 600,
            rate_limit_account_burst: 200,
            rate_limit_tenant_per_minute: 6000,
            rate_limit_tenant_burst: 1000,
            rate_limit_sign_in_per_minute: 10,
            rate_limit_sign_in_burst: 10,
            rate_limit_report_per_minute: 1,
            rate_limit_report_burst: 5,
            incident_triage_minutes: 60,
            max_in_flight_requests: 512,
            max_in_flight_per_ip: 64,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_read_timeout_secs: 10,
            connection_idle_timeout_secs: 120,
            max_header_bytes: 16 * 1024,
            waf_path_rules: true,
            waf_query_rules: true,
            waf_header_rules: true,
            waf_content_type_rules: true,
            waf_max_path_bytes: 2048,
            waf_max_query_bytes: 4096,
            waf_max_headers: 64,
            waf_audit_per_minute: 10,
            ids_enabled: true,
            ids_window_minutes: 10,
            ids_brute_force_failures: 20,
            ids_spray_accounts: 10,
            ids_stuffing_sources: 5,
            ids_scan_errors: 200,
            ids_csrf_failures: 20,
            ids_block_minutes: 60,
            ids_protect_hours: 24,
            anomaly_download_factor: 5,
            anomaly_download_floor: 50,
            anomaly_download_floor_mib: 500,
            anomaly_download_ceiling: 1000,
            anomaly_download_ceiling_mib: 20480,
            anomaly_min_days: 5,
            anomaly_ewma_percent: 30,
            anomaly_hours_min_signins: 20,
            backup_enabled: true,
            backup_target: None,
            document_store: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key_file: None,
            backup_recipient: None,
            backup_recipient_file: None,
            backup_at: "02:00".into(),
            backup_keep_daily: 7,
            backup_keep_weekly: 5,
            backup_keep_monthly: 84,
            backup_poll_secs: 60,
        }
    }
}

fn default_notice_days() -> Vec<String> {
    vec!["90".into(), "30".into()]
}

impl Config {
    /// Retention and notices, checked: the policy keeps ended firms' data at least seven years.
    pub fn lifecycle(&self) -> anyhow::Result<portcullis_core::service::LifecycleSettings> {
        use portcullis_core::service::MIN_RETENTION_DAYS;
        if !(MIN_RETENTION_DAYS..=36525).contains(&self.retention_days) {
            bail!(
                "key `retention_days`: must be from {MIN_RETENTION_DAYS} (the policy's seven years) to 36525, not {}",
                self.retention_days
            );
        }
        let mut notice_days = Vec::new();
        for d in &self.retention_notice_days {
            let n: u32 = d.trim().parse().ok().filter(|n| (1..=self.retention_days).contains(n)).ok_or_else(|| {
                anyhow::anyhow!("key `retention_notice_days`: {d:?} is not a number of days from 1 to `retention_days`")
            })?;
            notice_days.push(n);
        }
        Ok(portcullis_core::service::LifecycleSettings {
            retention: time::Duration::days(i64::from(self.retention_days)),
            notice_days,
        })
    }
}

impl Config {
    /// What `security.txt` says, checked: every contact a URI of an allowed kind, the policy an
    /// `https://` address, the languages tags, the expiry a time.
    pub fn disclosure(&self) -> anyhow::Result<portcullis_core::disclosure::DisclosureSettings> {
        use portcullis_core::disclosure::{check_contact, check_language, check_policy};
        let contacts = if self.security_contact.is_empty() {
            self.alert_email_to.iter().map(|a| format!("mailto:{}", a.trim())).collect()
        } else {
            self.security_contact.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>()
        };
        for c in &contacts {
            check_contact(c)
                .map_err(|_| anyhow::anyhow!("key `security_contact`: {c:?} is not a mailto:, https:// or tel: URI"))?;
        }
        if let Some(p) = &self.security_policy_url {
            check_policy(p)
                .map_err(|_| anyhow::anyhow!("key `security_policy_url`: {p:?} is not an https:// address"))?;
        }
        for l in &self.security_languages {
            check_language(l.trim())
                .map_err(|_| anyhow::anyhow!("key `security_languages`: {l:?} is not a language tag"))?;
        }
        let expires = match &self.security_txt_expires {
            Some(t) => {
                Some(time::OffsetDateTime::parse(t.trim(), &time::format_description::well_known::Rfc3339).map_err(
                    |_| {
                        anyhow::anyhow!(
                            "key `security_txt_expires`: {t:?} is not an RFC 3339 time (2027-06-30T00:00:00Z)"
                        )
                    },
                )?)
            }
            None => None,
        };
        Ok(portcullis_core::disclosure::DisclosureSettings {
            contacts,
            policy: self.security_policy_url.clone(),
            languages: self.security_languages.iter().map(|l| l.trim().to_string()).collect(),
            expires,
        })
    }
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

/// Keys the environment may set.
const KEYS: &[&str] = &[
    "data",
    "listen",
    "database_url",
    "public_url",
    "tls_cert",
    "master_key_file",
    "tls_key",
    "redirect_http_listen",
    "session_idle_minutes",
    "session_absolute_hours",
    "invite_link_hours",
    "max_upload_bytes",
    "max_body_bytes",
    "request_timeout_secs",
    "drain_secs",
    "upload_idle_timeout_secs",
    "key_rotation_poll_secs",
    "log_format",
    "master_key_rotation_needs_approval",
    "audit_signing_key_file",
    "audit_checkpoint_secs",
    "smtp_url",
    "mail_from",
    "mail_poll_secs",
    "retention_days",
    "retention_notice_days",
    "lifecycle_poll_secs",
    "syslog_url",
    "syslog_ca_file",
    "syslog_facility",
    "otlp_endpoint",
    "otlp_headers_file",
    "otlp_ca_file",
    "log_buffer_lines",
    "metrics_token_file",
    "metrics_listen",
    "node_id",
    "security_contact",
    "security_policy_url",
    "security_languages",
    "security_txt_expires",
    "alert_email_to",
    "alert_webhook_url",
    "alert_webhook_secret_file",
    "alert_tenant_admins",
    "alert_dedup_minutes",
    "alert_retry_max_secs",
    "alert_give_up_hours",
    "alert_poll_secs",
    "tls_expiry_warn_days",
    "heartbeat_url",
    "heartbeat_secs",
    "heartbeat_secret_file",
    "trusted_proxies",
    "client_ip_header",
    "rate_limit_ip_per_minute",
    "rate_limit_ip_burst",
    "rate_limit_account_per_minute",
    "rate_limit_account_burst",
    "rate_limit_tenant_per_minute",
    "rate_limit_tenant_burst",
    "rate_limit_sign_in_per_minute",
    "rate_limit_sign_in_burst",
    "rate_limit_report_per_minute",
    "rate_limit_report_burst",
    "incident_triage_minutes",
    "max_in_flight_requests",
    "max_in_flight_per_ip",
    "max_connections",
    "max_connections_per_ip",
    "header_read_timeout_secs",
    "connection_idle_timeout_secs",
    "max_header_bytes",
    "waf_path_rules",
    "waf_query_rules",
    "waf_header_rules",
    "waf_content_type_rules",
    "waf_max_path_bytes",
    "waf_max_query_bytes",
    "waf_max_headers",
    "waf_audit_per_minute",
    "ids_enabled",
    "ids_window_minutes",
    "ids_brute_force_failures",
    "ids_spray_accounts",
    "ids_stuffing_sources",
    "ids_scan_errors",
    "ids_csrf_failures",
    "ids_block_minutes",
    "ids_protect_hours",
    "anomaly_download_factor",
    "anomaly_download_floor",
    "anomaly_download_floor_mib",
    "anomaly_download_ceiling",
    "anomaly_download_ceiling_mib",
    "anomaly_min_days",
    "anomaly_ewma_percent",
    "anomaly_hours_min_signins",
    "backup_enabled",
    "backup_target",
    "document_store",
    "s3_endpoint",
    "s3_region",
    "s3_access_key_id",
    "s3_secret_access_key_file",
    "backup_recipient",
    "backup_recipient_file",
    "backup_at",
    "backup_keep_daily",
    "backup_keep_weekly",
    "backup_keep_monthly",
    "backup_poll_secs",
];

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
        // Only known keys are taken from the environment, so other PORTCULLIS_ variables
        // (used by tests or wrappers) are not mistaken for typos.
        fig = fig.merge(Env::prefixed("PORTCULLIS_").filter(|k| KEYS.iter().any(|known| k == *known)));
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

    fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("key `listen`: {:?} is not an address:port", self.listen))?;
        if let Some(r) = &self.redirect_http_listen {
            r.parse::<std::net::SocketAddr>()
                .with_context(|| format!("key `redirect_http_listen`: {r:?} is not an address:port"))?;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("keys `tls_cert` and `tls_key`: set both or neither");
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            bail!("key `log_format`: must be \"text\" or \"json\"");
        }
        for (key, v, max) in [
            ("session_idle_minutes", self.session_idle_minutes, 7 * 24 * 60),
            ("session_absolute_hours", self.session_absolute_hours, 30 * 24),
            ("invite_link_hours", self.invite_link_hours, 30 * 24),
        ] {
            if !(1..=max).contains(&v) {
                bail!("key `{key}`: must be from 1 to {max}");
            }
        }
        if !(1..=3600).contains(&self.request_timeout_secs) || !(1..=3600).contains(&self.upload_idle_timeout_secs) {
            bail!("keys `request_timeout_secs` and `upload_idle_timeout_secs`: must be from 1 to 3600");
        }
        if self.drain_secs > 300 {
            bail!("key `drain_secs`: must be from 0 to 300");
        }
        if !(1..=86_400).contains(&self.audit_checkpoint_secs) {
            bail!("key `audit_checkpoint_secs`: must be from 1 to 86400");
        }
        if !(1..=86_400).contains(&self.key_rotation_poll_secs) {
            bail!("key `key_rotation_poll_secs`: must be from 1 to 86400");
        }
        if !(1..=1 << 40).contains(&self.max_upload_bytes) || self.max_body_bytes == 0 {
            bail!("keys `max_upload_bytes` (at most 1 TiB) and `max_body_bytes`: must be positive");
        }
        if let Some(u) = &self.public_url {
            url::Url::parse(u).with_context(|| format!("key `public_url`: {u:?} is not a URL"))?;
        }
        if let Some(u) = &self.smtp_url {
            crate::mail::check_url(u.expose_secret())?;
        }
        crate::mail::parse_from(&self.mail_from)?;
        if !(1..=3600).contains(&self.mail_poll_secs) {
            bail!("key `mail_poll_secs`: must be from 1 to 3600");
        }
        self.lifecycle()?;
        if !(1..=3600).contains(&self.lifecycle_poll_secs) {
            bail!("key `lifecycle_poll_secs`: must be from 1 to 3600");
        }
        if let Some(u) = &self.syslog_url {
            crate::logs::check_syslog_url(u)?;
        }
        crate::logs::check_facility(&self.syslog_facility)?;
        if let Some(u) = &self.otlp_endpoint {
            crate::logs::check_otlp_endpoint(u)?;
        }
        if !(1_000..=10_000_000).contains(&self.log_buffer_lines) {
            bail!("key `log_buffer_lines`: must be from 1000 to 10000000");
        }
        if let Some(l) = &self.metrics_listen {
            let addr = l
                .parse::<std::net::SocketAddr>()
                .with_context(|| format!("key `metrics_listen`: {l:?} is not an address:port"))?;
            if !addr.ip().is_loopback() {
                bail!(
                    "key `metrics_listen`: {addr} is not a loopback address; the separate listener has no TLS \
                     and no token, so it serves this machine only (use `metrics_token_file` for remote scraping)"
                );
            }
        }
        if !(1..=10_080).contains(&self.incident_triage_minutes) {
            bail!("key `incident_triage_minutes`: must be from 1 to 10080 (a week)");
        }
        self.validate_alerts()?;
        // After the alert mailboxes: the contact may fall back to the first of them.
        self.disclosure()?;
        self.validate_backups()?;
        crate::object_stores::check(self)?;
        self.protect().map(|_| ())
    }

    fn validate_backups(&self) -> anyhow::Result<()> {
        self.backup_time()?;
        if let Some(r) = &self.backup_recipient {
            crate::backup::parse_recipient(r)?;
        }
        for (key, v, range) in [
            ("backup_keep_daily", self.backup_keep_daily, 1..=10_000),
            ("backup_keep_weekly", self.backup_keep_weekly, 0..=10_000),
            ("backup_keep_monthly", self.backup_keep_monthly, 0..=10_000),
            ("backup_poll_secs", self.backup_poll_secs, 1..=3600),
        ] {
            if !range.contains(&v) {
                bail!("key `{key}`: must be from {} to {}", range.start(), range.end());
            }
        }
        Ok(())
    }

    /// `backup_at` as a time of day (UTC).
    pub fn backup_time(&self) -> anyhow::Result<time::Time> {
        let format = time::macros::format_description!("[hour]:[minute]");
        time::Time::parse(&self.backup_at, &format)
            .map_err(|_| anyhow::anyhow!("key `backup_at`: {:?} is not a time of day HH:MM (UTC)", self.backup_at))
    }

    /// The protective settings (rate limits, shedding, client IP, request filter), checked.
    pub fn protect(&self) -> anyhow::Result<portcullis_web::protect::ProtectSettings> {
        use portcullis_web::protect::{ClientIpHeader, ProtectSettings, Rate, WafSettings};
        let mut trusted_proxies = Vec::new();
        for p in &self.trusted_proxies {
            let net = p
                .parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("key `trusted_proxies`: {p:?} is not an address or CIDR range"))?;
            trusted_proxies.push(net);
        }
        let client_ip_header = match self.client_ip_header.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => ClientIpHeader::XForwardedFor,
            "forwarded" => ClientIpHeader::Forwarded,
            other => ClientIpHeader::Single(
                axum::http::HeaderName::from_bytes(other.as_bytes())
                    .map_err(|_| anyhow::anyhow!("key `client_ip_header`: {other:?} is not a header name"))?,
            ),
        };
        let rate = |key: &str, per_minute: u32, burst: u32| -> anyhow::Result<Option<Rate>> {
            if per_minute == 0 {
                return Ok(None);
            }
            if !(1..=1_000_000).contains(&burst) || per_minute > 1_000_000 {
                bail!("keys `{key}_per_minute` and `{key}_burst`: must be from 1 to 1000000 (per minute 0: off)");
            }
            Ok(Some(Rate { per_minute, burst }))
        };
        for (key, v, range) in [
            ("max_in_flight_requests", self.max_in_flight_requests, 1..=1_000_000),
            ("max_in_flight_per_ip", self.max_in_flight_per_ip, 1..=1_000_000),
            ("max_connections", self.max_connections, 1..=1_000_000),
            ("max_connections_per_ip", self.max_connections_per_ip, 1..=1_000_000),
            ("max_header_bytes", self.max_header_bytes, 1024..=1024 * 1024),
            ("waf_max_path_bytes", self.waf_max_path_bytes, 64..=65_536),
            ("waf_max_query_bytes", self.waf_max_query_bytes, 64..=1024 * 1024),
            ("waf_max_headers", self.waf_max_headers, 8..=1000),
        ] {
            if !range.contains(&v) {
                bail!("key `{key}`: must be from {} to {}", range.start(), range.end());
            }
        }
        if !(1..=300).contains(&self.header_read_timeout_secs) {
            bail!("key `header_read_timeout_secs`: must be from 1 to 300");
        }
        // Longer than a request may take and an upload may pause, so only idle connections end.
        let floor = self.request_timeout_secs.max(self.upload_idle_timeout_secs);
        if !(floor..=3600).contains(&self.connection_idle_timeout_secs) {
            bail!(
                "key `connection_idle_timeout_secs`: must be from {floor} (request_timeout_secs and \
                 upload_idle_timeout_secs) to 3600"
            );
        }
        Ok(ProtectSettings {
            trusted_proxies,
            client_ip_header,
            per_ip: rate("rate_limit_ip", self.rate_limit_ip_per_minute, self.rate_limit_ip_burst)?,
            per_account: rate("rate_limit_account", self.rate_limit_account_per_minute, self.rate_limit_account_burst)?,
            per_tenant: rate("rate_limit_tenant", self.rate_limit_tenant_per_minute, self.rate_limit_tenant_burst)?,
            sign_in: rate("rate_limit_sign_in", self.rate_limit_sign_in_per_minute, self.rate_limit_sign_in_burst)?,
            reports: rate("rate_limit_report", self.rate_limit_report_per_minute, self.rate_limit_report_burst)?,
            max_in_flight: self.max_in_flight_requests,
            max_in_flight_per_ip: self.max_in_flight_per_ip,
            waf: WafSettings {
                path_rules: self.waf_path_rules,
                query_rules: self.waf_query_rules,
                header_rules: self.waf_header_rules,
                content_type_rules: self.waf_content_type_rules,
                max_path_bytes: self.waf_max_path_bytes,
                max_query_bytes: self.waf_max_query_bytes,
                max_headers: self.waf_max_headers,
                max_header_bytes: self.max_header_bytes,
                audit_per_minute: self.waf_audit_per_minute,
            },
        })
    }

    fn validate_alerts(&self) -> anyhow::Result<()> {
        if let Some(n) = &self.node_id
            && (n.is_empty()
                || n.len() > 100
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            bail!("key `node_id`: {n:?} must be 1 to 100 letters, digits, dots, dashes or underscores");
        }
        for to in &self.alert_email_to {
            crate::mail::parse_from(to)
                .map_err(|_| anyhow::anyhow!("key `alert_email_to`: {to:?} is not a mailbox"))?;
        }
        if !self.alert_email_to.is_empty() && self.smtp_url.is_none() {
            bail!("key `alert_email_to`: alert mail needs `smtp_url` to be set");
        }
        if let Some(u) = &self.alert_webhook_url {
            crate::alerts::check_webhook_url("alert_webhook_url", u.expose_secret())?;
            if self.alert_webhook_secret_file.is_none() {
                bail!("key `alert_webhook_secret_file`: needed with `alert_webhook_url` (webhooks are signed)");
            }
        }
        if let Some(u) = &self.heartbeat_url {
            crate::alerts::check_webhook_url("heartbeat_url", u.expose_secret())?;
            if self.heartbeat_secret_file.is_none() && self.alert_webhook_secret_file.is_none() {
                bail!(
                    "key `heartbeat_secret_file`: needed with `heartbeat_url` (heartbeats are signed; or set \
                     `alert_webhook_secret_file`)"
                );
            }
        }
        for (key, v, range) in [
            ("alert_dedup_minutes", self.alert_dedup_minutes, 1..=1440),
            ("alert_retry_max_secs", self.alert_retry_max_secs, 10..=86_400),
            ("alert_give_up_hours", self.alert_give_up_hours, 1..=720),
            ("alert_poll_secs", self.alert_poll_secs, 1..=3600),
            ("tls_expiry_warn_days", self.tls_expiry_warn_days, 1..=365),
            ("heartbeat_secs", self.heartbeat_secs, 1..=86_400),
            ("ids_window_minutes", self.ids_window_minutes, 1..=1440),
            ("ids_brute_force_failures", self.ids_brute_force_failures, 3..=100000),
            ("ids_spray_accounts", self.ids_spray_accounts, 3..=100000),
            ("ids_stuffing_sources", self.ids_stuffing_sources, 2..=100000),
            ("ids_scan_errors", self.ids_scan_errors, 10..=1000000),
            ("ids_csrf_failures", self.ids_csrf_failures, 3..=1000000),
            ("ids_block_minutes", self.ids_block_minutes, 1..=43200),
            ("ids_protect_hours", self.ids_protect_hours, 1..=8760),
            ("anomaly_download_factor", self.anomaly_download_factor, 2..=1000),
            ("anomaly_download_floor", self.anomaly_download_floor, 1..=1000000),
            ("anomaly_download_floor_mib", self.anomaly_download_floor_mib, 1..=10000000),
            ("anomaly_download_ceiling", self.anomaly_download_ceiling, 1..=10000000),
            ("anomaly_download_ceiling_mib", self.anomaly_download_ceiling_mib, 1..=100000000),
            ("anomaly_min_days", self.anomaly_min_days, 1..=365),
            ("anomaly_ewma_percent", self.anomaly_ewma_percent, 1..=100),
            ("anomaly_hours_min_signins", self.anomaly_hours_min_signins, 1..=100000),
        ] {
            if !range.contains(&v) {
                bail!("key `{key}`: must be from {} to {}", range.start(), range.end());
            }
        }
        Ok(())
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

/// Read a secret from a file, refusing files other users can read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<SecretString> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("reading secret file {}", path.display()))?;
    if meta.permissions().mode() & 0o007 != 0 {
        bail!("secret file {} is readable by other users; run chmod o-rwx on it", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading secret file {}", path.display()))?;
    Ok(SecretString::from(text.trim_end_matches(['\n', '\r']).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every default as it was before the keys were declared in one table, so moving them there
    /// (or any later edit) cannot change a default unnoticed.
    #[test]
    fn defaults_are_unchanged() {
        // A string, not `json!`: a literal this long passes the macro recursion limit.
        let expected: serde_json::Value = serde_json::from_str(
            r#"{
                "data": "./portcullis-data",
                "listen": "127.0.0.1:8443",
                "database_url": null,
                "public_url": null,
                "tls_cert": null,
                "master_key_file": null,
                "tls_key": null,
                "redirect_http_listen": null,
                "session_idle_minutes": 30,
                "session_absolute_hours": 12,
                "invite_link_hours": 72,
                "max_upload_bytes": 2147483648,
                "max_body_bytes": 1048576,
                "request_timeout_secs": 30,
                "drain_secs": 10,
                "upload_idle_timeout_secs": 60,
                "key_rotation_poll_secs": 30,
                "log_format": "text",
                "master_key_rotation_needs_approval": true,
                "audit_signing_key_file": null,
                "audit_checkpoint_secs": 300,
                "smtp_url": null,
                "mail_from": "Portcullis <portcullis@localhost>",
                "mail_poll_secs": 5,
                "retention_days": 2557,
                "retention_notice_days": ["90","30"],
                "lifecycle_poll_secs": 60,
                "syslog_url": null,
                "syslog_ca_file": null,
                "syslog_facility": "local0",
                "otlp_endpoint": null,
                "otlp_headers_file": null,
                "otlp_ca_file": null,
                "log_buffer_lines": 100000,
                "metrics_token_file": null,
                "metrics_listen": null,
                "node_id": null,
                "security_contact": [],
                "security_policy_url": null,
                "security_languages": ["en"],
                "security_txt_expires": null,
                "alert_email_to": [],
                "alert_webhook_url": null,
                "alert_webhook_secret_file": null,
                "alert_tenant_admins": true,
                "alert_dedup_minutes": 15,
                "alert_retry_max_secs": 900,
                "alert_give_up_hours": 48,
                "alert_poll_secs": 5,
                "tls_expiry_warn_days": 14,
                "heartbeat_url": null,
                "heartbeat_secs": 60,
                "heartbeat_secret_file": null,
                "trusted_proxies": [],
                "client_ip_header": "x-forwarded-for",
                "rate_limit_ip_per_minute": 600,
                "rate_limit_ip_burst": 200,
                "rate_limit_account_per_minute": 600,
                "rate_limit_account_burst": 200,
                "rate_limit_tenant_per_minute": 6000,
                "rate_limit_tenant_burst": 1000,
                "rate_limit_sign_in_per_minute": 10,
                "rate_limit_sign_in_burst": 10,
                "rate_limit_report_per_minute": 1,
                "rate_limit_report_burst": 5,
                "incident_triage_minutes": 60,
                "max_in_flight_requests": 512,
                "max_in_flight_per_ip": 64,
                "max_connections": 10000,
                "max_connections_per_ip": 256,
                "header_read_timeout_secs": 10,
                "connection_idle_timeout_secs": 120,
                "max_header_bytes": 16384,
                "waf_path_rules": true,
                "waf_query_rules": true,
                "waf_header_rules": true,
                "waf_content_type_rules": true,
                "waf_max_path_bytes": 2048,
                "waf_max_query_bytes": 4096,
                "waf_max_headers": 64,
                "waf_audit_per_minute": 10,
                "ids_enabled": true,
                "ids_window_minutes": 10,
                "ids_brute_force_failures": 20,
                "ids_spray_accounts": 10,
                "ids_stuffing_sources": 5,
                "ids_scan_errors": 200,
                "ids_csrf_failures": 20,
                "ids_block_minutes": 60,
                "ids_protect_hours": 24,
                "anomaly_download_factor": 5,
                "anomaly_download_floor": 50,
                "anomaly_download_floor_mib": 500,
                "anomaly_download_ceiling": 1000,
                "anomaly_download_ceiling_mib": 20480,
                "anomaly_min_days": 5,
                "anomaly_ewma_percent": 30,
                "anomaly_hours_min_signins": 20,
                "backup_enabled": true,
                "backup_target": null,
                "document_store": null,
                "s3_endpoint": null,
                "s3_region": "us-east-1",
                "s3_access_key_id": null,
                "s3_secret_access_key_file": null,
                "backup_recipient": null,
                "backup_recipient_file": null,
                "backup_at": "02:00",
                "backup_keep_daily": 7,
                "backup_keep_weekly": 5,
                "backup_keep_monthly": 84,
                "backup_poll_secs": 60
            }"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(Config::default()).unwrap(), expected);
    }

    /// Each numeric key's accepted range, as it was before the ranges were declared with the
    /// keys: one past either end is refused naming the key, both ends are accepted (other keys
    /// at their defaults). `None`: no upper end.
    const RANGES: &[(&str, i64, Option<i64>)] = &[
        ("session_idle_minutes", 1, Some(7 * 24 * 60)),
        ("session_absolute_hours", 1, Some(30 * 24)),
        ("invite_link_hours", 1, Some(30 * 24)),
        ("request_timeout_secs", 1, Some(3600)),
        ("upload_idle_timeout_secs", 1, Some(3600)),
        ("drain_secs", 0, Some(300)),
        ("audit_checkpoint_secs", 1, Some(86_400)),
        ("key_rotation_poll_secs", 1, Some(86_400)),
        ("max_upload_bytes", 1, Some(1 << 40)),
        ("max_body_bytes", 1, None),
        ("mail_poll_secs", 1, Some(3600)),
        ("retention_days", 2557, Some(36525)),
        ("lifecycle_poll_secs", 1, Some(3600)),
        ("log_buffer_lines", 1000, Some(10_000_000)),
        ("incident_triage_minutes", 1, Some(10_080)),
        ("alert_dedup_minutes", 1, Some(1440)),
        ("alert_retry_max_secs", 10, Some(86_400)),
        ("alert_give_up_hours", 1, Some(720)),
        ("alert_poll_secs", 1, Some(3600)),
        ("tls_expiry_warn_days", 1, Some(365)),
        ("heartbeat_secs", 1, Some(86_400)),
        ("ids_window_minutes", 1, Some(1440)),
        ("ids_brute_force_failures", 3, Some(100_000)),
        ("ids_spray_accounts", 3, Some(100_000)),
        ("ids_stuffing_sources", 2, Some(100_000)),
        ("ids_scan_errors", 10, Some(1_000_000)),
        ("ids_csrf_failures", 3, Some(1_000_000)),
        ("ids_block_minutes", 1, Some(43_200)),
        ("ids_protect_hours", 1, Some(8760)),
        ("anomaly_download_factor", 2, Some(1000)),
        ("anomaly_download_floor", 1, Some(1_000_000)),
        ("anomaly_download_floor_mib", 1, Some(10_000_000)),
        ("anomaly_download_ceiling", 1, Some(10_000_000)),
        ("anomaly_download_ceiling_mib", 1, Some(100_000_000)),
        ("anomaly_min_days", 1, Some(365)),
        ("anomaly_ewma_percent", 1, Some(100)),
        ("anomaly_hours_min_signins", 1, Some(100_000)),
        ("backup_keep_daily", 1, Some(10_000)),
        ("backup_keep_weekly", 0, Some(10_000)),
        ("backup_keep_monthly", 0, Some(10_000)),
        ("backup_poll_secs", 1, Some(3600)),
        ("rate_limit_ip_per_minute", 0, Some(1_000_000)),
        ("rate_limit_ip_burst", 1, Some(1_000_000)),
        ("rate_limit_account_per_minute", 0, Some(1_000_000)),
        ("rate_limit_account_burst", 1, Some(1_000_000)),
        ("rate_limit_tenant_per_minute", 0, Some(1_000_000)),
        ("rate_limit_tenant_burst", 1, Some(1_000_000)),
        ("rate_limit_sign_in_per_minute", 0, Some(1_000_000)),
        ("rate_limit_sign_in_burst", 1, Some(1_000_000)),
        ("rate_limit_report_per_minute", 0, Some(1_000_000)),
        ("rate_limit_report_burst", 1, Some(1_000_000)),
        ("max_in_flight_requests", 1, Some(1_000_000)),
        ("max_in_flight_per_ip", 1, Some(1_000_000)),
        ("max_connections", 1, Some(1_000_000)),
        ("max_connections_per_ip", 1, Some(1_000_000)),
        ("max_header_bytes", 1024, Some(1024 * 1024)),
        ("waf_max_path_bytes", 64, Some(65_536)),
        ("waf_max_query_bytes", 64, Some(1024 * 1024)),
        ("waf_max_headers", 8, Some(1000)),
        ("header_read_timeout_secs", 1, Some(300)),
        // Its lower end is the larger of `request_timeout_secs` and `upload_idle_timeout_secs`.
        ("connection_idle_timeout_secs", 60, Some(3600)),
    ];

    /// The default configuration with one key set to `v` (through serde, as a file would).
    fn with(key: &str, v: i64) -> Config {
        let mut j = serde_json::to_value(Config::default()).unwrap();
        j.as_object_mut().unwrap().insert(key.into(), v.into());
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn each_range_is_checked_at_both_ends() {
        for &(key, lo, hi) in RANGES {
            let named = |c: Config| c.validate().err().is_some_and(|e| e.to_string().contains(&format!("`{key}`")));
            // Another key may object to an end (a cross-key rule); this key must not.
            assert!(!named(with(key, lo)), "{key} = {lo} refused");
            if lo > 0 {
                assert!(named(with(key, lo - 1)), "{key} = {} accepted", lo - 1);
            }
            if let Some(hi) = hi {
                assert!(!named(with(key, hi)), "{key} = {hi} refused");
                assert!(named(with(key, hi + 1)), "{key} = {} accepted", hi + 1);
            }
        }
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h:5/db"), "postgres://h:5/db (credentials and options hidden)");
        assert!(!redact_url("postgres://h/db?password=secret").contains("secret"));
        assert!(!redact_url("host=h password=secret").contains("secret"));
        assert_eq!(redact_url("sqlite:///x/y.db"), "sqlite:/x/y.db");
        assert!(!redact_url("smtps://u:hunter2@mail.example.com:465").contains("hunter2"));
    }

    /// Validation errors of the mail keys, each naming its key.
    #[test]
    fn mail_settings_are_checked_and_errors_name_the_key() {
        let base = Config::default();
        assert!(base.validate().is_ok());
        let cases: [(Config, &str); 4] = [
            (Config { smtp_url: Some("smtp://mail.example.com:25".into()), ..base.clone() }, "smtp_url"),
            (Config { smtp_url: Some("ftp://mail.example.com".into()), ..base.clone() }, "smtp_url"),
            (Config { mail_from: "not a mailbox".into(), ..base.clone() }, "mail_from"),
            (Config { mail_poll_secs: 0, ..base.clone() }, "mail_poll_secs"),
        ];
        for (cfg, key) in [
            (Config { retention_days: 365, ..base.clone() }, "retention_days"),
            (Config { retention_days: 40000, ..base.clone() }, "retention_days"),
            (Config { retention_notice_days: vec!["0".into()], ..base.clone() }, "retention_notice_days"),
            (Config { retention_notice_days: vec!["soon".into()], ..base.clone() }, "retention_notice_days"),
            (Config { retention_notice_days: vec!["3000".into()], ..base.clone() }, "retention_notice_days"),
            (Config { lifecycle_poll_secs: 0, ..base.clone() }, "lifecycle_poll_secs"),
        ] {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        assert_eq!(base.lifecycle().unwrap().notice_days, [90, 30]);
        for (cfg, key) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        let ok = Config { smtp_url: Some("smtps://u:pw@mail.example.com".into()), ..base };
        assert!(ok.validate().is_ok());
        assert!(!ok.redacted_toml().unwrap().contains(":pw@"));
    }

    /// Validation errors of the alert keys, each naming its key; the webhook URLs' paths (which
    /// may hold tokens) never show.
    #[test]
    fn alert_settings_are_checked_and_errors_name_the_key() {
        let base = Config::default();
        let secret = Some(PathBuf::from("/run/secrets/hook"));
        let hook = |u: &str| Config {
            alert_webhook_url: Some(u.into()),
            alert_webhook_secret_file: secret.clone(),
            ..Config::default()
        };
        let cases: [(Config, &str); 9] = [
            (hook("http://alerts.example.com/hook"), "alert_webhook_url"),
            (hook("ftp://alerts.example.com/hook"), "alert_webhook_url"),
            (
                Config { alert_webhook_secret_file: None, ..hook("https://alerts.example.com/h") },
                "alert_webhook_secret_file",
            ),
            (
                Config { heartbeat_url: Some("https://hb.example.com/x".into()), ..base.clone() },
                "heartbeat_secret_file",
            ),
            (Config { alert_email_to: vec!["ops@example.com".into()], ..base.clone() }, "alert_email_to"),
            (Config { alert_email_to: vec!["not a mailbox".into()], ..base.clone() }, "alert_email_to"),
            (Config { node_id: Some("a b".into()), ..base.clone() }, "node_id"),
            (Config { alert_dedup_minutes: 0, ..base.clone() }, "alert_dedup_minutes"),
            (Config { tls_expiry_warn_days: 0, ..base.clone() }, "tls_expiry_warn_days"),
        ];
        for (cfg, key) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        for ok in
            ["https://alerts.example.com/T0KEN", "http://127.0.0.1:9000/hook", "http://localhost/h", "http://[::1]:1/"]
        {
            assert!(hook(ok).validate().is_ok(), "{ok}");
        }
        let shown = hook("https://alerts.example.com:8443/hooks/T0KEN?k=S3CRET").redacted_toml().unwrap();
        assert!(
            shown.contains("alerts.example.com:8443") && !shown.contains("T0KEN") && !shown.contains("S3CRET"),
            "{shown}"
        );
    }

    /// Validation errors of the protection keys, each naming its key.
    #[test]
    fn protection_settings_are_checked_and_errors_name_the_key() {
        let base = Config::default();
        let cases: [(Config, &str); 8] = [
            (Config { trusted_proxies: vec!["10.0.0.0/33".into()], ..base.clone() }, "trusted_proxies"),
            (Config { trusted_proxies: vec!["proxy.example".into()], ..base.clone() }, "trusted_proxies"),
            (Config { client_ip_header: "bad header".into(), ..base.clone() }, "client_ip_header"),
            (Config { rate_limit_ip_burst: 0, ..base.clone() }, "rate_limit_ip_burst"),
            (Config { max_in_flight_requests: 0, ..base.clone() }, "max_in_flight_requests"),
            (Config { header_read_timeout_secs: 0, ..base.clone() }, "header_read_timeout_secs"),
            (Config { connection_idle_timeout_secs: 59, ..base.clone() }, "connection_idle_timeout_secs"),
            (Config { max_connections_per_ip: 0, ..base.clone() }, "max_connections_per_ip"),
        ];
        for (cfg, key) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        let ok = Config {
            trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into(), "::1".into()],
            client_ip_header: "X-Real-IP".into(),
            rate_limit_ip_per_minute: 0,
            rate_limit_ip_burst: 0,
            ..base
        };
        let p = ok.protect().unwrap();
        assert_eq!(p.trusted_proxies.len(), 3);
        assert!(p.per_ip.is_none(), "0 per minute turns the limit off");
    }

    /// Validation errors of the backup keys, each naming its key.
    #[test]
    fn backup_settings_are_checked_and_errors_name_the_key() {
        let base = Config::default();
        let cases: [(Config, &str); 6] = [
            (Config { backup_at: "25:00".into(), ..base.clone() }, "backup_at"),
            (Config { backup_at: "2am".into(), ..base.clone() }, "backup_at"),
            (Config { backup_recipient: Some("age1notakey".into()), ..base.clone() }, "backup_recipient"),
            (Config { backup_keep_daily: 0, ..base.clone() }, "backup_keep_daily"),
            (Config { backup_keep_monthly: 10_001, ..base.clone() }, "backup_keep_monthly"),
            (Config { backup_poll_secs: 0, ..base.clone() }, "backup_poll_secs"),
        ];
        for (cfg, key) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let ok = Config { backup_at: "23:30".into(), backup_recipient: Some(recipient), ..base };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.backup_time().unwrap(), time::macros::time!(23:30));
    }

    #[test]
    fn alert_addresses_come_as_a_list_or_comma_separated() {
        let from = |v: serde_json::Value| -> Vec<String> {
            let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
                .merge(Serialized::default("alert_email_to", v))
                .extract()
                .unwrap();
            cfg.alert_email_to
        };
        assert_eq!(from(serde_json::json!(["a@x.example", "b@x.example"])), ["a@x.example", "b@x.example"]);
        assert_eq!(from(serde_json::json!("a@x.example, b@x.example")), ["a@x.example", "b@x.example"]);
    }

    #[test]
    fn the_security_limits_are_the_limits_and_nothing_else() {
        let limits = Config::default().security_limits().unwrap();
        let keys: Vec<&str> = limits.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "rate_limit_ip_per_minute",
            "max_in_flight_per_ip",
            "max_connections",
            "waf_path_rules",
            "ids_enabled",
            "anomaly_download_factor",
            "trusted_proxies",
            "master_key_rotation_needs_approval",
            "backup_keep_daily",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        for k in ["data", "database_url", "smtp_url", "alert_webhook_url", "listen", "backup_target", "log_format"] {
            assert!(!keys.contains(&k), "{k} is no security limit");
        }
        // Every key named in the list exists (a renamed setting must not drop out silently).
        for w in SECURITY_LIMIT_KEYS {
            assert!(keys.iter().any(|k| if w.ends_with('_') { k.starts_with(w) } else { k == w }), "{w}");
        }
    }
}
