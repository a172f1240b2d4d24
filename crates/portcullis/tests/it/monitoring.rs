//! Prometheus metrics: `/metrics` on the HTTPS listener only with the configured token (a
//! session is not enough), on a separate loopback listener without one, and not at all when
//! neither is configured. A scrape after some traffic shows request counts and latency by route
//! pattern (never an id), sign-ins by outcome, the audit chains and their checkpoint coverage,
//! key ages and the connection pool.

use portcullis_testkit::{Client, Db, PASSWORD, TestServer, secret_file};
use reqwest::StatusCode;
use serde_json::json;

const TOKEN: &str = "a-metrics-token-of-some-length";

/// The value of the first sample of `name` whose labels include every one of `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn with_token(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = secret_file(dir.path(), "metrics-token", TOKEN);
    let srv = TestServer::start_with(db, |c| c.metrics_token_file = Some(token_file.clone())).await;
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    assert_eq!(c.login("acme", &owner, "not the password").await.status, StatusCode::UNAUTHORIZED);
    c.login("acme", &owner, PASSWORD).await;
    let m = c.post("/api/v1/matters", json!({"reference": "M-1", "title": "Metrics"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c.get(&format!("/api/v1/matters/{m}")).await.status, StatusCode::OK);

    // A signed-in session, no token, a wrong token: refused.
    assert_eq!(c.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.with_bearer("a-wrong-token-of-some-length").get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    let r = c.with_bearer(TOKEN).get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    // The page sits behind the same layers as every route: security headers, request filter.
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(r.headers.contains_key("x-request-id"), "{:?}", r.headers);
    let probe = c.with_bearer(TOKEN).get("/metrics?x=%00").await;
    assert_eq!(probe.status, StatusCode::BAD_REQUEST, "the request filter did not see /metrics");
    let body = r.text();

    let by_route = |route: &str, status: &str| {
        sample(
            &body,
            "portcullis_http_requests_total",
            &[&format!("route=\"{route}\""), &format!("status=\"{status}\"")],
        )
    };
    assert_eq!(by_route("/api/v1/matters", "201"), Some(1.0), "{body}");
    assert_eq!(by_route("/api/v1/matters/{id}", "200"), Some(1.0), "{body}");
    assert!(!body.contains(&m), "a matter id leaked into the metrics");
    let bucket =
        sample(&body, "portcullis_http_request_duration_seconds_bucket", &["route=\"/api/v1/matters\"", "le=\"+Inf\""]);
    assert_eq!(bucket, Some(1.0), "{body}");
    assert!(
        sample(&body, "portcullis_http_body_bytes_total", &["direction=\"in\"", "route=\"/api/v1/matters\""])
            > Some(0.0)
    );
    assert!(sample(&body, "portcullis_http_body_bytes_total", &["direction=\"out\""]) > Some(0.0));
    assert_eq!(sample(&body, "portcullis_logins_total", &["outcome=\"failure\""]), Some(1.0));
    assert_eq!(sample(&body, "portcullis_logins_total", &["outcome=\"success\""]), Some(1.0));
    assert_eq!(sample(&body, "portcullis_audit_events_total", &["action=\"matter.create\""]), Some(1.0));
    assert_eq!(sample(&body, "portcullis_database_up", &[]), Some(1.0));
    assert!(sample(&body, "portcullis_audit_chains", &[]) >= Some(2.0), "a tenant chain and the platform chain");
    assert!(sample(&body, "portcullis_audit_events", &[]) >= Some(3.0));
    // The events since start-up are not sealed yet (the checkpoint job runs every five minutes).
    let unsealed = sample(&body, "portcullis_audit_unsealed_events", &[]).unwrap();
    assert!(unsealed >= 3.0 && Some(unsealed) <= sample(&body, "portcullis_audit_events", &[]), "{body}");
    assert!(sample(&body, "portcullis_audit_oldest_unsealed_seconds", &[]).is_some());
    assert!(sample(&body, "portcullis_tenant_key_oldest_age_seconds", &[]).is_some());
    assert!(sample(&body, "portcullis_tenant_keys", &[]) >= Some(1.0));
    assert!(sample(&body, "portcullis_db_pool_connections", &["state=\"max\""]) >= Some(1.0));
    // Scaling signals: the in-flight cap beside the in-flight gauge, the queues, draining.
    let cap = portcullis::config::Config::default().max_in_flight_requests as f64;
    assert_eq!(sample(&body, "portcullis_http_requests_in_flight_limit", &[]), Some(cap), "{body}");
    for queue in ["mail", "alerts", "exports"] {
        let depth = sample(&body, "portcullis_queue_depth", &[&format!("queue=\"{queue}\"")]);
        assert!(depth >= Some(0.0), "{queue}: {body}");
        assert!(sample(&body, "portcullis_queue_oldest_seconds", &[&format!("queue=\"{queue}\"")]).is_some());
    }
    assert_eq!(sample(&body, "portcullis_draining", &[]), Some(0.0));
    assert!(body.contains("# HELP portcullis_logins_total"));
    let expiry = sample(&body, "portcullis_tls_certificate_expiry_timestamp_seconds", &[]).unwrap();
    let now = portcullis_core::clock::Clock::now(srv.clock.as_ref()).unix_timestamp() as f64;
    assert!(expiry > now, "the certificate's expiry {expiry} is not after {now}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_sqlite() {
    with_token(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_postgres() {
    with_token(Db::Postgres).await
}

crate::both!(metrics_are_not_served_unless_configured, |srv| async move {
    let c = srv.client();
    assert_eq!(c.with_bearer(TOKEN).get("/metrics").await.status, StatusCode::NOT_FOUND);
});

/// The separate listener: plain HTTP on loopback, no token, nothing but `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_a_separate_loopback_listener() {
    let port = crate::support::free_port();
    let srv = TestServer::start_with(Db::Sqlite, |c| c.metrics_listen = Some(format!("127.0.0.1:{port}"))).await;
    let http = reqwest::Client::new();
    let r = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("portcullis_build_info"));
    let other = http.get(format!("http://127.0.0.1:{port}/api/v1/matters")).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // The main listener still has no /metrics (no token configured).
    let c: Client = srv.client();
    assert_eq!(c.get("/metrics").await.status, StatusCode::NOT_FOUND);
    srv.stop().await;
}

/// Every `portcullis_…` metric named in `text` (histogram series reduced to their family).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("portcullis_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        out.insert(family.to_string());
        rest = &tail[end..];
    }
    out
}

/// The shipped Prometheus rules pass `promtool check rules`; they and the Grafana dashboard
/// (valid JSON) use only metrics Portcullis records.
#[test]
fn alert_rules_and_dashboard_use_real_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules = root.join("deploy/prometheus/portcullis-rules.yml");
    let promtool = std::env::var("PORTCULLIS_TEST_PROMTOOL").expect("PORTCULLIS_TEST_PROMTOOL (set by scripts/test)");
    let o = std::process::Command::new(promtool).args(["check", "rules"]).arg(&rules).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));

    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/portcullis-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(parsed["panels"].as_array().unwrap().len() >= 10);
    let known: std::collections::BTreeSet<String> =
        portcullis::monitoring::METRICS.iter().map(|(n, _, _)| n.to_string()).collect();
    for (what, text) in [("rules", std::fs::read_to_string(&rules).unwrap()), ("dashboard", dashboard)] {
        let used = metric_names(&text);
        assert!(used.len() >= 8, "{what} uses few metrics: {used:?}");
        let unknown: Vec<_> = used.difference(&known).collect();
        assert!(unknown.is_empty(), "{what} names metrics Portcullis does not record: {unknown:?}");
    }
}
