//! Central log management, end to end against `portcullis serve`: JSON lines on standard error
//! and the same records shipped to a syslog collector over TLS and to an OTLP/HTTP collector,
//! each line of a request carrying its request id, tenant id and user id. Both collectors go
//! down while requests keep being answered; once they are back, every line logged meanwhile
//! arrives. Bad collector settings stop the start with a message naming the key.

use crate::support::{create_acme, portcullis, serve};
use portcullis_testkit::{Client, PASSWORD, SyslogSink, WebhookSink, secret_file};
use reqwest::StatusCode;
use serde_json::Value;

/// The JSON record inside an RFC 5424 message (after the header's six fields).
fn syslog_record(msg: &str) -> Value {
    let json = msg.splitn(7, ' ').nth(6).expect("an RFC 5424 message has a text part");
    let json = json.strip_prefix("- ").unwrap_or(json);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {msg}"))
}

/// The OTLP log records of one export request, with their attributes as a JSON object.
fn otlp_records(body: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for rl in body["resourceLogs"].as_array().unwrap() {
        for sl in rl["scopeLogs"].as_array().unwrap() {
            for r in sl["logRecords"].as_array().unwrap() {
                let mut attrs = serde_json::Map::new();
                for a in r["attributes"].as_array().unwrap() {
                    let v = a["value"].as_object().unwrap().values().next().unwrap().clone();
                    attrs.insert(a["key"].as_str().unwrap().to_string(), v);
                }
                out.push((r["body"]["stringValue"].as_str().unwrap_or_default().to_string(), Value::Object(attrs)));
            }
        }
    }
    out
}

/// The summary line of the request `id` among OTLP records, if this export holds it.
fn otlp_summary(body: &Value, id: &str) -> Option<Value> {
    otlp_records(body).into_iter().find(|(msg, a)| msg == "request answered" && a["request_id"] == id).map(|(_, a)| a)
}

async fn list_matters(c: &Client) -> String {
    let r = c.get("/api/v1/matters").await;
    assert_eq!(r.status, StatusCode::OK, "requests are answered whatever the collectors do");
    r.headers["x-request-id"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reach_syslog_and_otlp_and_survive_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_acme(portcullis(d), d);
    let mut syslog = SyslogSink::start().await;
    let otlp = WebhookSink::started().await;
    let log_path = d.join("server.log");
    let mut cmd = portcullis(d);
    cmd.env("PORTCULLIS_LOG_FORMAT", "json")
        .env("PORTCULLIS_SYSLOG_URL", syslog.url())
        .env("PORTCULLIS_SYSLOG_CA_FILE", syslog.ca_file())
        .env("PORTCULLIS_OTLP_ENDPOINT", format!("http://127.0.0.1:{}", otlp.port))
        .stderr(std::fs::File::create(&log_path).unwrap());
    let (_server, port) = serve(cmd).await;
    let mut c = Client::new(&format!("https://127.0.0.1:{port}"), &std::fs::read(d.join("tls/cert.pem")).unwrap());
    c.login("acme", "o@acme.example", PASSWORD).await;
    let id = list_matters(&c).await;

    // Syslog: RFC 5424 (facility local0, severity info), the JSON record as its text.
    let msg = syslog.wait_for(&format!("\"request_id\":\"{id}\"")).await;
    assert!(msg.starts_with("<134>1 "), "{msg}");
    let summary = syslog
        .messages()
        .iter()
        .map(|m| syslog_record(m))
        .find(|r| r["request_id"] == id.as_str() && r["message"] == "request answered")
        .expect("the request's summary line");
    assert_eq!(summary["route"], "/api/v1/matters");
    assert_eq!(summary["status"], 200);
    let (tenant, user) = (summary["tenant_id"].as_str().unwrap(), summary["user_id"].as_str().unwrap());
    assert!(uuid::Uuid::parse_str(tenant).is_ok() && uuid::Uuid::parse_str(user).is_ok(), "{summary}");

    // OTLP: the same record, its fields as attributes, the service named in the resource.
    let export = otlp.wait_for(1, |r| otlp_summary(&r.json(), &id).is_some()).await;
    assert_eq!(export[0].path, "/v1/logs");
    assert_eq!(export[0].header("content-type").as_deref(), Some("application/json"));
    let body = export[0].json();
    let attrs = otlp_summary(&body, &id).unwrap();
    assert_eq!((attrs["tenant_id"].as_str(), attrs["user_id"].as_str()), (Some(tenant), Some(user)));
    assert_eq!(attrs["route"], "/api/v1/matters");
    let resource = body["resourceLogs"][0]["resource"]["attributes"].to_string();
    assert!(resource.contains("service.name") && resource.contains("portcullis"), "{resource}");

    // Standard error: JSON lines, the request's with the same ids.
    let stderr = std::fs::read_to_string(&log_path).unwrap();
    let records: Vec<Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let local = records.iter().find(|r| r["request_id"] == id.as_str()).expect("the request on standard error");
    assert_eq!((local["tenant_id"].as_str(), local["user_id"].as_str()), (Some(tenant), Some(user)));

    // Both collectors go away; requests are still answered, and nothing logged meanwhile is lost.
    syslog.down().await;
    otlp.set_status(503);
    let mut during = Vec::new();
    for _ in 0..5 {
        during.push(list_matters(&c).await);
    }
    syslog.up().await;
    otlp.set_status(200);
    for id in &during {
        syslog.wait_for(&format!("\"request_id\":\"{id}\"")).await;
        otlp.wait_for(1, |r| otlp_summary(&r.json(), id).is_some()).await;
    }
}

/// Collector and metrics settings that cannot be right stop `config check` or `serve`, naming
/// the key; nothing is started.
#[test]
fn bad_collector_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let short = secret_file(d, "short-token", "too-short");
    let cases: [(&str, &str, &str); 6] = [
        ("PORTCULLIS_SYSLOG_URL", "tcp://logs.example.com:514", "syslog_url"),
        ("PORTCULLIS_SYSLOG_FACILITY", "kern", "syslog_facility"),
        ("PORTCULLIS_OTLP_ENDPOINT", "http://otel.example.com:4318", "otlp_endpoint"),
        ("PORTCULLIS_LOG_BUFFER_LINES", "5", "log_buffer_lines"),
        ("PORTCULLIS_METRICS_LISTEN", "0.0.0.0:9464", "metrics_listen"),
        ("PORTCULLIS_METRICS_TOKEN_FILE", short.to_str().unwrap(), "metrics_token_file"),
    ];
    for (var, value, key) in cases {
        let o = portcullis(d).env(var, value).env("PORTCULLIS_LISTEN", "127.0.0.1:0").arg("serve").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{var}={value} was accepted");
        assert!(err.contains(&format!("`{key}`")), "{var}={value}: {err}");
    }
    let missing = d.join("no-such-ca.pem");
    let o = portcullis(d)
        .env("PORTCULLIS_SYSLOG_URL", "tls://logs.example.com")
        .env("PORTCULLIS_SYSLOG_CA_FILE", &missing)
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`syslog_ca_file`"));
}
