//! Logging: to standard error (text or JSON lines) and, when configured, shipped to central
//! collectors over syslog with TLS and OTLP. Every line is a structured record; lines written
//! while answering a request carry its `request_id`, `tenant_id` and `user_id` (see the web
//! layer's request span). Nothing here decides what is logged: call sites log ids and counts,
//! never secrets or client content (a test searches every line of a full scenario for them).
//!
//! Each collector has its own bounded buffer (see [`buffer`]), so an unreachable collector
//! neither blocks requests nor holds back the other collector.

mod buffer;
mod otlp;
mod record;
mod ship;
mod syslog;

use crate::config::Config;
use anyhow::Context;
use record::{LogRecord, RecordLayer, RecordSink};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use otlp::logs_url as check_otlp_endpoint;
pub use syslog::{facility as check_facility, parse_url as check_syslog_url};

/// How long a stopping server waits for buffered lines to reach the collectors.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The running shippers; aborting them at exit drops what is still buffered.
#[derive(Debug, Default)]
pub struct Shipping {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    buffers: Vec<Arc<buffer::LogBuffer>>,
}

impl Shipping {
    /// Wait (at most `limit`) until every buffer is empty, so the last lines before a stop
    /// reach the collectors when they are reachable.
    pub async fn drain(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.buffers.iter().any(|b| !b.is_empty()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Shipping {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// JSON lines on standard error.
struct Stderr;

impl RecordSink for Stderr {
    fn accept(&self, record: &Arc<LogRecord>) {
        use std::io::Write;
        let mut line = record.to_json();
        line.push('\n');
        // Nothing sensible can be done if standard error is gone.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Set up logging for `portcullis serve`: the level from `PORTCULLIS_LOG` (default `info`),
/// the format from `log_format`, and a shipper per configured collector. Must run inside the
/// runtime (shippers are tasks). Checks collector settings before anything is started, so a
/// mistake stops the start with a message naming the key.
pub fn init(cfg: &Config) -> anyhow::Result<Shipping> {
    // Every collector is checked before any shipper starts.
    let mut collectors: Vec<Box<dyn ship::Collector>> = Vec::new();
    if let Some(url) = &cfg.syslog_url {
        collectors.push(Box::new(syslog::Syslog::new(url, cfg.syslog_ca_file.as_deref(), &cfg.syslog_facility)?));
    }
    if let Some(e) = &cfg.otlp_endpoint {
        collectors.push(Box::new(otlp::Otlp::new(e, cfg.otlp_headers_file.as_deref(), cfg.otlp_ca_file.as_deref())?));
    }
    let mut shipping = Shipping::default();
    let mut sinks: Vec<Arc<dyn RecordSink>> = Vec::new();
    for c in collectors {
        let buffer = buffer::LogBuffer::new(cfg.log_buffer_lines);
        shipping.tasks.push(ship::spawn(buffer.clone(), c));
        shipping.buffers.push(buffer.clone());
        sinks.push(buffer);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let json = cfg.log_format == "json";
    let text = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let stderr_json = json.then(|| RecordLayer::new(vec![Arc::new(Stderr)]));
    // The shippers' own HTTP and TLS libraries log about every delivery at debug level; shipping
    // those lines would make each delivery cause the next.
    let quiet_transport = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("hyper", LevelFilter::WARN)
        .with_target("hyper_util", LevelFilter::WARN)
        .with_target("h2", LevelFilter::WARN)
        .with_target("reqwest", LevelFilter::WARN)
        .with_target("rustls", LevelFilter::WARN)
        .with_target("tokio_rustls", LevelFilter::WARN);
    let shipped = (!sinks.is_empty()).then(|| RecordLayer::new(sinks).with_filter(quiet_transport));
    // Fails only when a subscriber is already set (tests starting several servers in one process).
    let _ = tracing_subscriber::registry().with(filter).with(text).with(stderr_json).with(shipped).try_init();
    Ok(shipping)
}

/// A warning for whoever runs the command: a log line when the server's logging is set up (so
/// JSON logs stay JSON and reach the collectors), else a line on standard error.
pub fn notice(text: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!("{text}");
    } else {
        eprintln!("warning: {text}");
    }
}

/// A TLS client configuration trusting `ca_file` (PEM) if given, else the system's roots.
pub(crate) fn client_tls(ca_file: Option<&Path>, key: &str) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect())
                    .with_context(|| format!("key `{key}`: reading PEM certificates from {}", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("key `{key}`: {} holds no certificates", path.display());
            }
            for c in certs {
                roots
                    .add(c)
                    .with_context(|| format!("key `{key}`: a certificate in {} is unusable", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // Skip the odd unparsable system certificate rather than refuse to start.
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS client settings")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// This machine's name as logs show it (RFC 5424 HOSTNAME: printable ASCII, no spaces).
pub(crate) fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = name.trim().chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    if name.is_empty() { "-".into() } else { name }
}

/// Whether a URL points at this machine (plain HTTP is acceptable only there).
pub(crate) fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}
