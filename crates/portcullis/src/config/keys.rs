//! Every configuration key, declared once: its type, default, range and documentation. The
//! struct, the defaults, the environment's key list, the range checks and the README's table are
//! generated from this (see `declare.rs`); rules between keys are in `validate.rs`.

use super::declare::config_keys;
use super::secrets::{redact_opt, redact_origin_opt};
use super::{default_languages, default_notice_days, list_or_csv};
use std::path::PathBuf;

use secrecy::SecretString;

config_keys! {
    /// Data directory: database, documents, TLS files.
    data: PathBuf = PathBuf::from("./portcullis-data");
    /// HTTPS listen address.
    listen: String = "127.0.0.1:8443".into();
    /// `sqlite://...` or `postgres://user:pass@host/db` (several hosts `h1:5432,h2:5432`: the node
    /// follows the primary, see [docs/availability.md](docs/availability.md#several-database-hosts));
    /// `PORTCULLIS_DATABASE_URL_FILE` reads it from a file others cannot read.
    database_url: Option<SecretString> = None, shown "`sqlite://<data>/portcullis.db`",
        serde(serialize_with = "redact_opt", default);
    /// Base of links Portcullis prints and returns.
    public_url: Option<String> = None, shown "`https://<listen>`";
    /// PEM certificate chain (with `tls_key`); unset: a self-signed pair under `<data>/tls`, made
    /// on first start.
    tls_cert: Option<PathBuf> = None, shown "self-signed";
    /// PEM private key of `tls_cert`; set both or neither.
    tls_key: Option<PathBuf> = None, shown "self-signed";
    /// Master key file (base64 of 32 bytes; created on first start). `PORTCULLIS_MASTER_KEY`
    /// takes precedence; in production keep the key off the data volume.
    master_key_file: Option<PathBuf> = None, shown "`<data>/master.key`";
    /// A plain-HTTP listener that only redirects to `public_url`.
    redirect_http_listen: Option<String> = None, shown "off";
    /// A session unused this long ends.
    session_idle_minutes: i64 = 30, range 1..=7 * 24 * 60;
    /// A session ends this long after sign-in.
    session_absolute_hours: i64 = 12, range 1..=30 * 24;
    /// Lifetime of invitation links.
    invite_link_hours: i64 = 72, range 1..=30 * 24;
    /// Largest document (2 GiB by default, at most 1 TiB).
    max_upload_bytes: u64 = 2 * 1024 * 1024 * 1024, range 1..=1 << 40;
    /// Largest JSON or form body (1 MiB by default).
    max_body_bytes: usize = 1024 * 1024, range 1..;
    /// Whole-request limit (not for document streams).
    request_timeout_secs: u64 = 30, range 1..=3600;
    /// On SIGTERM, how long the node keeps serving with `/readyz` at 503 (so a load balancer
    /// moves its traffic) before it stops accepting; 0: stop at once
    /// ([docs/availability.md](docs/availability.md)).
    drain_secs: u64 = 10, range 0..=300;
    /// An upload that delivers less than 16 KiB in any period this long (silent or trickling) is
    /// abandoned.
    upload_idle_timeout_secs: u64 = 60, range 1..=3600;
    /// How often each node looks for an interrupted tenant-key rotation to resume.
    key_rotation_poll_secs: u64 = 30, range 1..=86_400;
    /// Log line format: `text` or `json`.
    log_format: String = "text".into();
    /// Four eyes on `keys rotate-master`: it needs `--approval ID`, a request a second privileged
    /// operator approved. Turn off only where one person runs the whole installation (each
    /// unapproved rotation is audited).
    master_key_rotation_needs_approval: bool = true;
    /// Ed25519 key that signs audit checkpoints (created on first start; its public half is
    /// written beside it as `.pub`).
    audit_signing_key_file: Option<PathBuf> = None, shown "`<data>/audit-signing.key`";
    /// How often each node signs a checkpoint of every audit chain that grew.
    audit_checkpoint_secs: u64 = 300, range 1..=86_400;
    /// Where notices to users are sent: `smtps://[USER:PASSWORD@]HOST[:PORT]` or
    /// `smtp://HOST[:PORT]?tls=required`; plain `smtp://` only to a relay on loopback.
    /// `PORTCULLIS_SMTP_URL_FILE` reads it from a file others cannot read. Unset: notices are
    /// queued but not sent, and the server warns at start.
    smtp_url: Option<SecretString> = None, serde(serialize_with = "redact_opt", default);
    /// The sender of notices, a mailbox such as `Portcullis <portal@firm.example>`.
    mail_from: String = "Portcullis <portcullis@localhost>".into();
    /// How often each node sends queued mail.
    mail_poll_secs: u64 = 5, range 1..=3600;
    /// Days an ended subscription's data is kept before it is destroyed: at least the policy's
    /// seven years.
    retention_days: u32 = portcullis_core::service::MIN_RETENTION_DAYS,
        range portcullis_core::service::MIN_RETENTION_DAYS..=36525;
    /// Notices to a firm's owners this many days before its data is destroyed (a TOML list, or
    /// comma-separated in the environment), each from 1 to `retention_days`.
    retention_notice_days: Vec<String> = default_notice_days(),
        serde(deserialize_with = "list_or_csv", default = "default_notice_days");
    /// How often each node runs the lifecycle job: notices, retention, and destroying erased
    /// firms.
    lifecycle_poll_secs: u64 = 60, range 1..=3600;
    /// Ship logs to a syslog collector over TLS (RFC 5425): `tls://HOST[:PORT]` (port 6514 by
    /// default). Plain TCP and UDP are refused.
    syslog_url: Option<String> = None;
    /// PEM certificates to trust for the syslog collector instead of the system's roots.
    syslog_ca_file: Option<PathBuf> = None, shown "system roots";
    /// The syslog facility: `local0` to `local7`, `user`, `daemon`, `auth` or `authpriv`.
    syslog_facility: String = "local0".into();
    /// Ship logs to an OpenTelemetry collector over OTLP/HTTP (JSON): its base URL, such as
    /// `https://otel.example:4318`. Plain `http://` only to a collector on this machine.
    otlp_endpoint: Option<String> = None;
    /// A secret file of `Name: value` header lines sent with every OTLP request (API keys).
    otlp_headers_file: Option<PathBuf> = None;
    /// PEM certificates to trust for the OTLP collector instead of the system's roots.
    otlp_ca_file: Option<PathBuf> = None, shown "system roots";
    /// Lines each collector's buffer holds while the collector is unreachable; past this the
    /// oldest are dropped and counted.
    log_buffer_lines: usize = 100_000, range 1_000..=10_000_000;
    /// A secret file holding the bearer token (16 or more characters) that `GET /metrics` on the
    /// HTTPS listener requires. Unset: `/metrics` is not served there.
    metrics_token_file: Option<PathBuf> = None;
    /// A separate plain-HTTP listener for `/metrics` alone, on a loopback address (for an agent
    /// on the same machine), needing no token.
    metrics_listen: Option<String> = None;
    /// This node's name in alerts and heartbeats (letters, digits, `.`, `_`, `-`).
    node_id: Option<String> = None, shown "the host name";
    /// Where vulnerability finders report, served in `/.well-known/security.txt` (RFC 9116):
    /// `mailto:`, `https://` or `tel:` URIs, most preferred first (a TOML list, or
    /// comma-separated in the environment). With none and no `alert_email_to`, the file is
    /// absent (404).
    security_contact: Vec<String> = Vec::new(), shown "`mailto:` each of `alert_email_to`",
        serde(deserialize_with = "list_or_csv", default);
    /// The vulnerability disclosure policy's `https://` address, for `security.txt` (`Policy:`).
    security_policy_url: Option<String> = None;
    /// Languages reports may be written in, for `security.txt` (`Preferred-Languages:`).
    security_languages: Vec<String> = default_languages(),
        serde(deserialize_with = "list_or_csv", default = "default_languages");
    /// A fixed `Expires:` for `security.txt` (RFC 3339, e.g. `2027-06-30T00:00:00Z`), kept up to
    /// date by the operator.
    security_txt_expires: Option<String> = None, shown "180 days after serving";
    /// Operators' addresses for security alerts (a TOML list, or comma-separated in the
    /// environment). Needs `smtp_url`.
    alert_email_to: Vec<String> = Vec::new(), serde(deserialize_with = "list_or_csv", default);
    /// Operators' webhook for security alerts: `https://...` (plain `http://` only to loopback).
    /// Shown without its path, which may hold a token.
    alert_webhook_url: Option<SecretString> = None, serde(serialize_with = "redact_origin_opt", default);
    /// File holding the secret (at least 32 bytes) that signs webhooks, not readable by others;
    /// required with `alert_webhook_url`.
    alert_webhook_secret_file: Option<PathBuf> = None;
    /// Also mail a firm's owners and admins the alerts about their firm (brute force against its
    /// accounts, damaged documents). Needs `smtp_url`.
    alert_tenant_admins: bool = true;
    /// Occurrences of one alert (kind, firm, subject) within this many minutes are one alert with
    /// a count.
    alert_dedup_minutes: u64 = 15, range 1..=1440;
    /// The longest wait between two attempts to deliver an alert (backoff starts at 10 seconds,
    /// with jitter).
    alert_retry_max_secs: u64 = 900, range 10..=86_400;
    /// An alert delivery still failing this long after it was queued is given up (and audited).
    alert_give_up_hours: u64 = 48, range 1..=720;
    /// How often each node looks for alerts to deliver.
    alert_poll_secs: u64 = 5, range 1..=3600;
    /// Alert when the served TLS certificate expires within this many days (checked at start and
    /// daily).
    tls_expiry_warn_days: u64 = 14, range 1..=365;
    /// Where each node posts its signed heartbeat (dead-man's switch); same URL rules as
    /// `alert_webhook_url`. Unset: no heartbeat.
    heartbeat_url: Option<SecretString> = None, serde(serialize_with = "redact_origin_opt", default);
    /// Seconds between heartbeats.
    heartbeat_secs: u64 = 60, range 1..=86_400;
    /// The heartbeat's signing secret file.
    heartbeat_secret_file: Option<PathBuf> = None, shown "`alert_webhook_secret_file`";
    /// Proxies (addresses or CIDR ranges; a TOML list, or comma-separated in the environment)
    /// whose `client_ip_header` is believed. From any other peer the TCP address is the client's.
    trusted_proxies: Vec<String> = Vec::new(), serde(deserialize_with = "list_or_csv", default);
    /// `x-forwarded-for` (the right-most untrusted hop), `forwarded` (RFC 7239), or the name of a
    /// header holding one address that the proxy overwrites (such as `x-real-ip`).
    client_ip_header: String = "x-forwarded-for".into();
    /// Requests per minute per client IP (token bucket refill; 0 turns the limit off); health
    /// probes are exempt.
    rate_limit_ip_per_minute: u32 = 600, range 0..=1_000_000;
    /// Requests a client IP may make at once before the per-minute rate applies (1 to 1000000
    /// while the limit is on).
    rate_limit_ip_burst: u32 = 200;
    /// Requests per minute per signed-in user (session or API token); 0: off.
    rate_limit_account_per_minute: u32 = 600, range 0..=1_000_000;
    /// Requests a signed-in user may make at once (1 to 1000000 while the limit is on).
    rate_limit_account_burst: u32 = 200;
    /// Requests per minute per firm, all its users together; 0: off.
    rate_limit_tenant_per_minute: u32 = 6000, range 0..=1_000_000;
    /// Requests a firm may make at once (1 to 1000000 while the limit is on).
    rate_limit_tenant_burst: u32 = 1000;
    /// Sign-in attempts per minute per firm and email address, from anywhere; 0: off.
    rate_limit_sign_in_per_minute: u32 = 10, range 0..=1_000_000;
    /// Sign-in attempts at once (1 to 1000000 while the limit is on).
    rate_limit_sign_in_burst: u32 = 10;
    /// Public vulnerability and breach reports per minute per client IP
    /// ([docs/incidents.md](docs/incidents.md)); 0: off.
    rate_limit_report_per_minute: u32 = 1, range 0..=1_000_000;
    /// Reports a client IP may send at once (1 to 1000000 while the limit is on).
    rate_limit_report_burst: u32 = 5;
    /// A new incident is to be triaged within this many minutes (at most a week); a miss raises
    /// an alert.
    incident_triage_minutes: u32 = 60, range 1..=10_080;
    /// Requests in progress on this node beyond which new ones get 503 with `Retry-After` at once
    /// (load shedding).
    max_in_flight_requests: usize = 512, range 1..=1_000_000;
    /// Requests without credentials in progress from one source (an IPv6 /64) beyond which its
    /// new ones get 429.
    max_in_flight_per_ip: usize = 64, range 1..=1_000_000;
    /// Open connections on this node; more are closed before the TLS handshake.
    max_connections: usize = 10_000, range 1..=1_000_000;
    /// Open connections from one peer address (trusted proxies exempt).
    max_connections_per_ip: usize = 256, range 1..=1_000_000;
    /// Seconds a client gets to send its request headers (HTTP/1; slow-loris defence).
    header_read_timeout_secs: u64 = 10, range 1..=300;
    /// Seconds a connection (HTTP/1 or 2) may move no bytes either way before it is closed: at
    /// least `request_timeout_secs` and `upload_idle_timeout_secs`, at most 3600.
    connection_idle_timeout_secs: u64 = 120;
    /// Largest request head: HTTP/1 read buffer and HTTP/2 header list, and the filter's limit
    /// on the headers' total size.
    max_header_bytes: usize = 16 * 1024, range 1024..=1024 * 1024;
    /// Request filter rule group for paths ([docs/security.md](docs/security.md#request-filter)).
    waf_path_rules: bool = true;
    /// Request filter rule group for query strings.
    waf_query_rules: bool = true;
    /// Request filter rule group for headers.
    waf_header_rules: bool = true;
    /// Request filter rule group for methods and content types.
    waf_content_type_rules: bool = true;
    /// Longest request path the filter lets through.
    waf_max_path_bytes: usize = 2048, range 64..=65_536;
    /// Longest query string the filter lets through.
    waf_max_query_bytes: usize = 4096, range 64..=1024 * 1024;
    /// Most request headers the filter lets through.
    waf_max_headers: usize = 64, range 8..=1000;
    /// Refused requests audited per client IP per minute; more are counted into the next event
    /// (0: refusals are counted and logged, not audited).
    waf_audit_per_minute: u32 = 10;
    /// Intrusion and anomaly detection on (off: nothing is counted, blocked or paused).
    ids_enabled: bool = true;
    /// Failed sign-ins and error answers are counted within windows of this many minutes.
    ids_window_minutes: u64 = 10, range 1..=1440;
    /// Failed sign-ins on one account from one address within the window that count as brute
    /// force (the address is blocked, the account protected).
    ids_brute_force_failures: u64 = 20, range 3..=100_000;
    /// Distinct accounts failing from one address within the window that count as password
    /// spraying (the address is blocked).
    ids_spray_accounts: u64 = 10, range 3..=100_000;
    /// Distinct addresses failing on one account within the window that count as credential
    /// stuffing (the account is protected).
    ids_stuffing_sources: u64 = 5, range 2..=100_000;
    /// 401, 403 and 404 answers to one address within the window (per node) that count as an
    /// enumeration scan (the address is blocked).
    ids_scan_errors: u64 = 200, range 10..=1_000_000;
    /// CSRF failures from one address within the window (per node) before the address is
    /// blocked.
    ids_csrf_failures: u64 = 20, range 3..=1_000_000;
    /// How long a blocked address stays blocked (unless an operator lifts it).
    ids_block_minutes: u64 = 60, range 1..=43_200;
    /// How long an attacked account stays protected (unless an admin lifts it).
    ids_protect_hours: u64 = 24, range 1..=8760;
    /// A day's downloads above this many times the user's baseline (count or bytes) pause the
    /// user.
    anomaly_download_factor: u64 = 5, range 2..=1000;
    /// ...but never at or below this many downloads in a day.
    anomaly_download_floor: u64 = 50, range 1..=1_000_000;
    /// ...nor at or below this many MiB in a day.
    anomaly_download_floor_mib: u64 = 500, range 1..=10_000_000;
    /// More downloads than this in a day pause the user whatever the history.
    anomaly_download_ceiling: u64 = 1000, range 1..=10_000_000;
    /// More MiB than this in a day pause the user whatever the history.
    anomaly_download_ceiling_mib: u64 = 20480, range 1..=100_000_000;
    /// Active days of history before the baseline is used (before, only the ceiling applies).
    anomaly_min_days: u64 = 5, range 1..=365;
    /// Weight of the newest active day in the baselines, in percent.
    anomaly_ewma_percent: u64 = 30, range 1..=100;
    /// Sign-ins recorded before one at a never-used hour counts as unusual.
    anomaly_hours_min_signins: u64 = 20, range 1..=100_000;
    /// Where documents are kept: a directory (or `file:///dir`), or `s3://BUCKET[/PREFIX]` (see
    /// the `s3_*` keys). Nodes that share a database share this too.
    document_store: Option<String> = None, shown "`<data>/documents`";
    /// An S3-compatible endpoint (`https://...`; plain `http://` only to loopback).
    s3_endpoint: Option<String> = None, shown "AWS S3 in `s3_region`";
    /// The bucket's region.
    s3_region: String = "us-east-1".into();
    /// S3 access key id, with `s3_secret_access_key_file`; set both or neither.
    s3_access_key_id: Option<String> = None, shown "the `AWS_*` environment";
    /// File holding the S3 secret access key, not readable by others.
    s3_secret_access_key_file: Option<PathBuf> = None, shown "the `AWS_*` environment";
    /// Scheduled backups on (they also need `backup_recipient`). The command line works either
    /// way.
    backup_enabled: bool = true;
    /// Where backups go: a directory (or `file:///dir`), or `s3://BUCKET[/PREFIX]` (with the
    /// `s3_*` keys). Put it on other storage than the data directory.
    backup_target: Option<String> = None, shown "`<data>/backups`";
    /// The age public key (`age1...`) backups and keyrings are encrypted to. The identity that
    /// opens them must be kept off the servers.
    backup_recipient: Option<String> = None;
    /// A file holding the recipient instead (first line that is not a comment).
    backup_recipient_file: Option<PathBuf> = None;
    /// When the daily backup runs, `HH:MM` UTC.
    backup_at: String = "02:00".into();
    /// Scheduled daily backups kept (grandfather-father-son: the newest this many).
    backup_keep_daily: u64 = 7, range 1..=10_000;
    /// Scheduled weekly backups kept.
    backup_keep_weekly: u64 = 5, range 0..=10_000;
    /// Scheduled monthly backups kept (84 months: the seven-year retention).
    backup_keep_monthly: u64 = 84, range 0..=10_000;
    /// How often each node looks whether a backup is due.
    backup_poll_secs: u64 = 60, range 1..=3600;
}
