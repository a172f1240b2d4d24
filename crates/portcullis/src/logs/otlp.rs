//! OpenTelemetry logs over OTLP/HTTP with the JSON encoding (`POST <endpoint>/v1/logs`), which
//! every OTLP receiver accepts (OpenTelemetry Collector, Grafana Alloy, Vector, Datadog, Honeycomb
//! and others). The record's fields become attributes, so `request_id`, `tenant_id` and
//! `user_id` are searchable there as well. Retries follow the OTLP specification: 429, 502, 503,
//! 504 and network failures are retried; other refusals drop the batch (trying again cannot
//! change the answer) and count it.

use super::record::LogRecord;
use super::ship::{Collector, DeliveryError};
use anyhow::{Context, bail};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tracing::Level;

const TIMEOUT: Duration = Duration::from_secs(30);

/// An OTLP/HTTP logs receiver.
pub struct Otlp {
    client: reqwest::Client,
    url: reqwest::Url,
    resource: Value,
}

/// The logs URL from `otlp_endpoint`: HTTPS, or plain HTTP to a loopback collector (an agent on
/// the same machine). A base URL gets `/v1/logs` appended; a URL already naming it is kept.
pub fn logs_url(endpoint: &str) -> anyhow::Result<reqwest::Url> {
    let mut u =
        reqwest::Url::parse(endpoint).with_context(|| format!("key `otlp_endpoint`: {endpoint:?} is not a URL"))?;
    match u.scheme() {
        "https" => {}
        "http" if super::is_loopback(&u) => {}
        _ => bail!("key `otlp_endpoint`: must be https:// (plain http:// only to a collector on this machine)"),
    }
    if !u.path().ends_with("/v1/logs") {
        let path = format!("{}/v1/logs", u.path().trim_end_matches('/'));
        u.set_path(&path);
    }
    Ok(u)
}

/// Extra request headers (usually an API key or `Authorization`) from a secret file of
/// `Name: value` lines; the values are marked sensitive so no debug output shows them.
fn headers(file: Option<&Path>) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let Some(path) = file else { return Ok(map) };
    use secrecy::ExposeSecret;
    let text = crate::config::read_secret_file(path)?;
    for (n, line) in text.expose_secret().lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("key `otlp_headers_file`: line {}", n + 1);
        let (name, value) = line.split_once(':').with_context(|| format!("{}: expected `Name: value`", at()))?;
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).with_context(|| format!("{}: bad header name", at()))?;
        let mut value = HeaderValue::from_str(value.trim()).with_context(|| format!("{}: bad header value", at()))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

impl Otlp {
    pub fn new(endpoint: &str, headers_file: Option<&Path>, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let url = logs_url(endpoint)?;
        let mut builder = reqwest::Client::builder()
            .default_headers(headers(headers_file)?)
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("key `otlp_ca_file`: reading {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("key `otlp_ca_file`: {} holds no PEM certificates", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().context("building the OTLP client")?;
        let resource = json!({"attributes": [
            attr("service.name", &Value::from("portcullis")),
            attr("service.version", &Value::from(env!("CARGO_PKG_VERSION"))),
            attr("host.name", &Value::from(super::hostname())),
            attr("process.pid", &Value::from(std::process::id())),
        ]});
        Ok(Self { client, url, resource })
    }

    fn body(&self, lines: &[Arc<LogRecord>]) -> Value {
        let records: Vec<Value> = lines.iter().map(|r| record(r)).collect();
        json!({"resourceLogs": [{
            "resource": self.resource,
            "scopeLogs": [{"scope": {"name": "portcullis", "version": env!("CARGO_PKG_VERSION")}, "logRecords": records}],
        }]})
    }
}

/// One OTLP log record (JSON encoding: 64-bit integers as strings).
fn record(r: &LogRecord) -> Value {
    let (number, text) = match r.level {
        Level::ERROR => (17, "ERROR"),
        Level::WARN => (13, "WARN"),
        Level::INFO => (9, "INFO"),
        Level::DEBUG => (5, "DEBUG"),
        _ => (1, "TRACE"),
    };
    let nanos = r.at.unix_timestamp_nanos().to_string();
    let mut attributes = vec![attr("target", &Value::from(r.target.as_str()))];
    attributes.extend(r.fields.iter().map(|(k, v)| attr(k, v)));
    json!({
        "timeUnixNano": nanos,
        "observedTimeUnixNano": nanos,
        "severityNumber": number,
        "severityText": text,
        "body": {"stringValue": r.message},
        "attributes": attributes,
    })
}

fn attr(key: &str, v: &Value) -> Value {
    let value = match v {
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n.as_f64()}),
        Value::String(s) => json!({"stringValue": s}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

#[async_trait::async_trait]
impl Collector for Otlp {
    fn name(&self) -> &'static str {
        "otlp"
    }

    async fn deliver(&mut self, lines: &[Arc<LogRecord>]) -> Result<(), DeliveryError> {
        let body = self.body(lines).to_string();
        let resp = self
            .client
            .post(self.url.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::Retry(format!("sending: {e}")))?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            429 | 502 | 503 | 504 => Err(DeliveryError::Retry(format!("collector answered {status}"))),
            _ => Err(DeliveryError::Refused(format!("collector answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_or_loopback() {
        assert_eq!(logs_url("https://otel.example:4318").unwrap().as_str(), "https://otel.example:4318/v1/logs");
        assert_eq!(logs_url("https://otel.example/otlp/").unwrap().as_str(), "https://otel.example/otlp/v1/logs");
        assert_eq!(logs_url("https://o.example/v1/logs").unwrap().as_str(), "https://o.example/v1/logs");
        assert!(logs_url("http://127.0.0.1:4318").is_ok());
        assert!(logs_url("http://localhost:4318").is_ok());
        for bad in ["http://otel.example:4318", "grpc://otel.example", "not a url"] {
            assert!(logs_url(bad).unwrap_err().to_string().contains("otlp_endpoint"), "{bad}");
        }
    }

    #[test]
    fn records_follow_the_otlp_json_encoding() {
        let mut fields = serde_json::Map::new();
        fields.insert("request_id".into(), "r-1".into());
        fields.insert("bytes".into(), 42.into());
        let r = LogRecord {
            at: time::macros::datetime!(2026-11-25 10:00:00 UTC),
            level: Level::WARN,
            target: "portcullis".into(),
            message: "hello".into(),
            fields,
        };
        let v = record(&r);
        assert_eq!(v["timeUnixNano"], "1795600800000000000");
        assert_eq!(v["severityNumber"], 13);
        assert_eq!(v["body"]["stringValue"], "hello");
        let attrs = v["attributes"].as_array().unwrap();
        assert!(attrs.contains(&json!({"key": "request_id", "value": {"stringValue": "r-1"}})));
        assert!(attrs.contains(&json!({"key": "bytes", "value": {"intValue": "42"}})));
    }
}
