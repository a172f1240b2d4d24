//! Prometheus metrics. Counters and histograms are recorded where things happen (the web layer's
//! request middleware, the audit writer, the log shippers); the figures that live in the
//! database (audit chains and checkpoints, key ages, the connection pool) are read when scraped,
//! at most once per [`REFRESH`], so a scrape storm cannot load the database.
//!
//! Served two ways: `GET /metrics` on the HTTPS listener behind a bearer token
//! (`metrics_token_file`), or on a separate plain-HTTP listener bound to loopback
//! (`metrics_listen`) for an agent on the same machine. With neither configured there is no
//! `/metrics` at all.

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use portcullis_core::service::Portal;
use portcullis_store::SqlStore;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Database figures are read at most this often.
pub const REFRESH: Duration = Duration::from_secs(10);

/// Latency buckets (seconds): from a cached page to a large download.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process's recorder. One per process: the `metrics` facade has one global recorder, so
/// several servers in one process (the test suite) share it.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("portcullis_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then records nothing,
            // which the metrics test would show.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric Portcullis records, with its help text. The shipped alert rules and dashboard
/// may use only these (a test checks).
pub const METRICS: &[(&str, Kind, &str)] = &[
    ("portcullis_http_requests_total", Kind::Counter, "Requests answered, by method, route pattern and status."),
    ("portcullis_http_request_duration_seconds", Kind::Histogram, "Time to the response headers, by route."),
    ("portcullis_http_requests_in_flight", Kind::Gauge, "Requests being answered now."),
    (
        "portcullis_http_requests_in_flight_limit",
        Kind::Gauge,
        "The in-flight cap (max_in_flight_requests) past which requests are shed; in-flight over it is saturation.",
    ),
    ("portcullis_nodes_live", Kind::Gauge, "Nodes registered in the shared database now, this one included."),
    ("portcullis_draining", Kind::Gauge, "1 while this node drains before shutting down (readiness is off)."),
    ("portcullis_queue_depth", Kind::Gauge, "Work waiting, by queue (mail, alerts, exports), across all nodes."),
    ("portcullis_queue_oldest_seconds", Kind::Gauge, "How long the oldest waiting item has waited, by queue."),
    ("portcullis_http_body_bytes_total", Kind::Counter, "Body bytes received (in) and sent (out), by route."),
    (
        "portcullis_rate_limited_total",
        Kind::Counter,
        "Requests refused with 429, by limit (ip, account, tenant, sign_in).",
    ),
    ("portcullis_connections_refused_total", Kind::Counter, "Connections closed at once by a cap (server, ip)."),
    (
        "portcullis_connections_idle_closed_total",
        Kind::Counter,
        "Connections closed after moving no bytes for connection_idle_timeout_secs.",
    ),
    ("portcullis_requests_shed_total", Kind::Counter, "Requests refused with 503 because too many were in progress."),
    ("portcullis_waf_blocks_total", Kind::Counter, "Requests the request filter refused, by rule."),
    ("portcullis_audit_events_total", Kind::Counter, "Audit events written, by action."),
    ("portcullis_logins_total", Kind::Counter, "Sign-ins, by outcome (success, failure, locked)."),
    ("portcullis_second_factor_failures_total", Kind::Counter, "Refused second-factor answers (sign-in and step-up)."),
    ("portcullis_audit_chains", Kind::Gauge, "Audit chains (one per tenant, one for the platform)."),
    ("portcullis_audit_events", Kind::Gauge, "Audit events stored, all chains."),
    ("portcullis_audit_chain_length_max", Kind::Gauge, "Events in the longest audit chain."),
    ("portcullis_audit_unsealed_events", Kind::Gauge, "Audit events no signed checkpoint covers yet."),
    ("portcullis_audit_oldest_unsealed_seconds", Kind::Gauge, "How long the oldest unsealed audit event has waited."),
    ("portcullis_audit_last_checkpoint_age_seconds", Kind::Gauge, "Time since the newest signed checkpoint."),
    ("portcullis_tenant_key_oldest_age_seconds", Kind::Gauge, "Age of the oldest tenant key still in use."),
    ("portcullis_tenant_keys", Kind::Gauge, "Tenant keys held (all versions)."),
    ("portcullis_tenants_destroyed_total", Kind::Counter, "Firms destroyed by this node (retention or erasure)."),
    (
        "portcullis_tenant_exports_total",
        Kind::Counter,
        "Tenant exports written by this node, by outcome (finished, failed).",
    ),
    (
        "portcullis_tenant_erasures_failing",
        Kind::Gauge,
        "Destructions that failed in this node's last lifecycle run (retried next run).",
    ),
    ("portcullis_db_pool_connections", Kind::Gauge, "Database connections, by state (idle, busy, max)."),
    ("portcullis_database_up", Kind::Gauge, "1 if the last read of database figures succeeded."),
    ("portcullis_log_buffered_lines", Kind::Gauge, "Log lines waiting for a collector."),
    ("portcullis_log_lines_shipped_total", Kind::Counter, "Log lines delivered, by collector."),
    ("portcullis_log_lines_dropped_total", Kind::Counter, "Log lines lost: buffer full or refused by a collector."),
    (
        "portcullis_tls_certificate_expiry_timestamp_seconds",
        Kind::Gauge,
        "When the served TLS certificate expires (Unix time).",
    ),
    ("portcullis_build_info", Kind::Gauge, "Always 1; the version in a label."),
    (
        "portcullis_backup_last_success_timestamp_seconds",
        Kind::Gauge,
        "When the newest backup in the target was made (Unix time); set by the scheduler.",
    ),
    ("portcullis_backup_failures_total", Kind::Counter, "Scheduled backup runs that failed, by kind."),
    ("portcullis_backup_size_bytes", Kind::Gauge, "Size of the newest backup archive (encrypted)."),
];

/// HELP lines for the metrics Portcullis records.
fn describe() {
    for &(name, kind, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// What the endpoint needs.
struct Exporter {
    handle: PrometheusHandle,
    portal: Portal,
    store: SqlStore,
    token: Option<SecretString>,
    last_refresh: Mutex<Option<Instant>>,
}

impl Exporter {
    /// Read the database figures into gauges, unless done within [`REFRESH`].
    async fn refresh(&self) {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        let (open, idle, max) = self.store.pool_stats();
        let pool =
            |state: &'static str, v: f64| metrics::gauge!("portcullis_db_pool_connections", "state" => state).set(v);
        pool("idle", idle as f64);
        pool("busy", (open as f64 - idle as f64).max(0.0));
        pool("max", f64::from(max));
        metrics::gauge!("portcullis_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        match self.portal.monitoring_snapshot().await {
            Ok(s) => {
                metrics::gauge!("portcullis_database_up").set(1.0);
                let secs = |d: time::Duration| d.as_seconds_f64().max(0.0);
                metrics::gauge!("portcullis_audit_chains").set(s.chains.len() as f64);
                metrics::gauge!("portcullis_audit_events").set(s.chains.iter().map(|c| c.length as f64).sum::<f64>());
                let longest = s.chains.iter().map(|c| c.length).max().unwrap_or(0);
                metrics::gauge!("portcullis_audit_chain_length_max").set(longest as f64);
                metrics::gauge!("portcullis_audit_unsealed_events").set(s.unsealed_events() as f64);
                metrics::gauge!("portcullis_audit_oldest_unsealed_seconds").set(secs(s.oldest_unsealed_age()));
                if let Some(at) = s.chains.iter().filter_map(|c| c.last_checkpoint_at).max() {
                    metrics::gauge!("portcullis_audit_last_checkpoint_age_seconds").set(secs(s.taken_at - at));
                }
                if let Some(at) = s.oldest_current_tenant_key_at {
                    metrics::gauge!("portcullis_tenant_key_oldest_age_seconds").set(secs(s.taken_at - at));
                }
                metrics::gauge!("portcullis_tenant_keys").set(s.tenant_keys as f64);
                for q in &s.queues {
                    metrics::gauge!("portcullis_queue_depth", "queue" => q.queue).set(q.waiting as f64);
                    let age = q.oldest_at.map_or(0.0, |at| secs(s.taken_at - at));
                    metrics::gauge!("portcullis_queue_oldest_seconds", "queue" => q.queue).set(age);
                }
            }
            Err(e) => {
                metrics::gauge!("portcullis_database_up").set(0.0);
                tracing::warn!(error = %e, "reading figures for the metrics failed");
            }
        }
    }

    /// Whether the request carries the configured token (compared in constant time).
    fn allowed(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        !sent.is_empty() && portcullis_core::authn::secret::equal(token.expose_secret(), sent.trim())
    }
}

async fn metrics_page(State(e): State<Arc<Exporter>>, headers: HeaderMap) -> Response {
    if !e.allowed(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a valid metrics token is required\n",
        )
            .into_response();
    }
    e.refresh().await;
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], e.handle.render()).into_response()
}

fn router(exporter: Arc<Exporter>) -> Router {
    Router::new().route("/metrics", get(metrics_page)).with_state(exporter)
}

/// The `/metrics` routes for the HTTPS listener (when a token is configured), and the separate
/// listener (when one is configured), started here.
pub async fn start(
    cfg: &crate::config::Config,
    portal: &Portal,
    store: &SqlStore,
) -> anyhow::Result<(Option<Router>, Option<tokio::task::JoinHandle<()>>)> {
    let handle = recorder();
    // Fixed for the node's life: the cap the saturation signal is measured against.
    metrics::gauge!("portcullis_http_requests_in_flight_limit").set(cfg.max_in_flight_requests as f64);
    metrics::gauge!("portcullis_draining").set(0.0);
    let exporter = |token: Option<SecretString>| {
        Arc::new(Exporter {
            handle: handle.clone(),
            portal: portal.clone(),
            store: store.clone(),
            token,
            last_refresh: Mutex::new(None),
        })
    };
    let on_https = match &cfg.metrics_token_file {
        Some(path) => {
            let token = crate::config::read_secret_file(path).context("key `metrics_token_file`")?;
            if token.expose_secret().len() < 16 {
                anyhow::bail!("key `metrics_token_file`: the token must be at least 16 characters");
            }
            Some(router(exporter(Some(token))))
        }
        None => None,
    };
    let separate = match &cfg.metrics_listen {
        Some(addr) => {
            let addr: SocketAddr = addr.parse().context("key `metrics_listen`")?;
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics_listen {addr}"))?;
            let app = router(exporter(None));
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            }))
        }
        None => None,
    };
    Ok((on_https, separate))
}
