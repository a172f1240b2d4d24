//! The request filter: refuses malformed and hostile requests before any handler sees them.
//! Rule groups (each can be turned off in configuration): the path, the query string, the
//! headers, and methods with content types per route. A refusal is 400 (405 for a method,
//! 415 for a content type) with a sentence saying what was wrong, is counted in
//! `portcullis_waf_blocks_total{rule}`, and is audited on the platform chain as `waf.block`.
//! Audit writes are limited per client IP (`waf_audit_per_minute`): past the limit, blocks are
//! only counted, and the next audited block from that address carries the count of those left
//! out, so a flood of garbage cannot flood the audit log yet leaves a trace.

use crate::AppState;
use crate::protect::{WafSettings, refuse};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use portcullis_core::Error;
use portcullis_core::audit::RequestMeta;
use portcullis_core::service::BlockedRequest;

/// Why a request was refused: the rule's name (audited, a metric label) and the error.
type Block = (&'static str, Error);

fn refused(rule: &'static str, why: &'static str) -> Block {
    (rule, Error::Refused(why))
}

/// Decode `%XX` sequences; `None` when a `%` is not followed by two hex digits.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// The path rules, on the path exactly as the client sent it.
pub fn check_path(path: &str, w: &WafSettings) -> Result<(), Block> {
    if path.len() > w.max_path_bytes {
        return Err(refused("path.length", "the path is too long"));
    }
    let lower = path.to_ascii_lowercase();
    if path.contains('\\') || lower.contains("%5c") {
        return Err(refused("path.backslash", "backslashes are not allowed in the path"));
    }
    if lower.contains("%00") {
        return Err(refused("path.nul", "NUL characters are not allowed in the path"));
    }
    if lower.contains("%25") {
        return Err(refused("path.double_encoding", "double percent-encoding is not allowed in the path"));
    }
    if lower.contains("%2f") {
        return Err(refused("path.encoded_slash", "encoded slashes are not allowed in the path"));
    }
    for segment in path.split('/') {
        let Some(decoded) = percent_decode(segment) else {
            return Err(refused("path.bad_encoding", "the path has an invalid percent-encoding"));
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return Err(refused("path.bad_encoding", "the path is not valid UTF-8"));
        };
        if text == "." || text == ".." {
            return Err(refused("path.traversal", "dot segments are not allowed in the path"));
        }
        if text.chars().any(char::is_control) {
            return Err(refused("path.control", "control characters are not allowed in the path"));
        }
    }
    Ok(())
}

/// The query rules: valid percent-encoding of UTF-8, no NUL or control characters.
pub fn check_query(query: &str, w: &WafSettings) -> Result<(), Block> {
    if query.len() > w.max_query_bytes {
        return Err(refused("query.length", "the query string is too long"));
    }
    for part in query.split(['&', '=']) {
        let decoded = percent_decode(part)
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| refused("query.bad_encoding", "the query string has an invalid encoding"))?;
        if decoded.chars().any(char::is_control) {
            return Err(refused("query.control", "control characters are not allowed in the query string"));
        }
    }
    Ok(())
}

/// The header rules.
pub fn check_headers(h: &HeaderMap, w: &WafSettings) -> Result<(), Block> {
    if h.len() > w.max_headers {
        return Err(refused("header.count", "the request has too many headers"));
    }
    let size: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if size > w.max_header_bytes {
        return Err(refused("header.size", "the request headers are too large"));
    }
    if h.values().any(|v| v.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n' | 0))) {
        return Err(refused("header.control", "header values must not hold CR, LF or NUL"));
    }
    if h.get_all(header::HOST).iter().count() > 1 {
        return Err(refused("header.host", "the request has more than one Host header"));
    }
    if h.contains_key(header::CONTENT_LENGTH) && h.contains_key(header::TRANSFER_ENCODING) {
        return Err(refused("header.smuggling", "send Content-Length or Transfer-Encoding, not both"));
    }
    Ok(())
}

/// The content types a route takes in a body. The document uploads take any (the file's own
/// type is recorded and judged by the upload allow-list); the API takes JSON; pages take forms
/// (multipart for their upload, JSON for the passkey helper).
fn accepted(route: &str) -> (&'static [&'static str], &'static str) {
    match route {
        "/api/v1/matters/{id}/documents" => (&[], "any type"),
        "/matters/{id}/documents" => (&["multipart/form-data"], "multipart/form-data"),
        r if r.starts_with("/api/") => (&["application/json"], "application/json"),
        _ => (
            &["application/x-www-form-urlencoded", "multipart/form-data", "application/json"],
            "a form (application/x-www-form-urlencoded)",
        ),
    }
}

/// The method and content-type rules.
fn check_content(method: &Method, route: &str, h: &HeaderMap, has_body: bool) -> Result<(), Block> {
    let known = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    if !known.contains(method) {
        return Err(("method.not_allowed", Error::MethodNotAllowed));
    }
    if !has_body {
        return Ok(());
    }
    let (types, expected) = accepted(route);
    if types.is_empty() {
        return Ok(());
    }
    let essence = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if types.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(("content_type.not_allowed", Error::UnsupportedMediaType(expected)))
    }
}

/// Every enabled rule, in order.
fn check(req: &Request, route: &str, w: &WafSettings) -> Result<(), Block> {
    if w.header_rules {
        check_headers(req.headers(), w)?;
    }
    if w.path_rules {
        check_path(req.uri().path(), w)?;
    }
    if w.query_rules
        && let Some(q) = req.uri().query()
    {
        check_query(q, w)?;
    }
    if w.content_type_rules {
        let has_body = !axum::body::HttpBody::is_end_stream(req.body())
            || req.headers().get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
        check_content(req.method(), route, req.headers(), has_body)?;
    }
    Ok(())
}

/// Middleware: apply the rules; refuse, count and audit a request that breaks one. A method a
/// route does not take (axum's `405`) is the per-route method allow-list, and is counted and
/// audited the same way.
pub async fn filter(axum::extract::State(s): axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let Err((rule, error)) = check(&req, route.as_deref().unwrap_or(""), &s.guards.settings.waf) else {
        let (method, meta) = (req.method().clone(), crate::extract::request_meta(req.headers(), req.extensions()));
        let path = req.uri().path().to_owned();
        let resp = next.run(req).await;
        if resp.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
            record(&s, "method.route", &method, route.unwrap_or(path), meta).await;
        }
        return resp;
    };
    let path = req.uri().path().to_owned();
    let meta = crate::extract::request_meta(req.headers(), req.extensions());
    record(&s, rule, req.method(), route.unwrap_or_else(|| path.clone()), meta).await;
    refuse(&path, error)
}

/// Count, log and (within the per-address audit budget) audit one refused request; refusals
/// past the budget are folded into the next audited one's count.
async fn record(s: &AppState, rule: &'static str, method: &Method, target: String, meta: RequestMeta) {
    metrics::counter!("portcullis_waf_blocks_total", "rule" => rule).increment(1);
    let ip = meta.ip.as_deref().and_then(|i| i.parse::<std::net::IpAddr>().ok()).map(portcullis_core::net::source);
    tracing::warn!(rule, method = %method, ip = ?ip, "request refused by the filter");
    let Some(ip) = ip else { return };
    let g = &s.guards;
    let within = g.waf_audit.as_ref().is_some_and(|l| l.check_quiet(&ip))
        && g.waf_audit_total.as_ref().is_some_and(|l| l.check_quiet(&()));
    if !within {
        s.guards.waf_suppressed.add(ip);
        return;
    }
    let count = 1 + s.guards.waf_suppressed.take(ip);
    let target = target.chars().take(200).collect();
    let blocked = BlockedRequest { rule, method: method.as_str().chars().take(20).collect(), target, count };
    if let Err(e) = s.portal.audit_blocked_request(&blocked, &meta).await {
        tracing::error!(error = %e, "could not audit a refused request");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn path_rules() {
        let w = WafSettings::default();
        for ok in ["/", "/api/v1/matters/5f0c", "/matters/x%20y", "/static/app.css", "/a/%C3%A9"] {
            assert!(check_path(ok, &w).is_ok(), "{ok}");
        }
        for (bad, rule) in [
            ("/a/../b", "path.traversal"),
            ("/a/%2e%2e/b", "path.traversal"),
            ("/a/.%2E/b", "path.traversal"),
            ("/a/./b", "path.traversal"),
            ("/a%2fb", "path.encoded_slash"),
            ("/a%5Cb", "path.backslash"),
            ("/a\\b", "path.backslash"),
            ("/a%252e%252e", "path.double_encoding"),
            ("/a%00b", "path.nul"),
            ("/a/%c0%ae%c0%ae/b", "path.bad_encoding"),
            ("/a/%ff", "path.bad_encoding"),
            ("/a/%zz", "path.bad_encoding"),
            ("/a/%2", "path.bad_encoding"),
            ("/a/%0a", "path.control"),
        ] {
            assert_eq!(check_path(bad, &w).unwrap_err().0, rule, "{bad}");
        }
        let long = format!("/{}", "a".repeat(w.max_path_bytes));
        assert_eq!(check_path(&long, &w).unwrap_err().0, "path.length");
    }

    #[test]
    fn query_rules() {
        let w = WafSettings::default();
        for ok in ["name=a%20b.pdf", "q=caf%C3%A9&page=2", "a", "x=1+2"] {
            assert!(check_query(ok, &w).is_ok(), "{ok}");
        }
        for bad in ["name=%ff", "name=%zz", "a=%00", "a=%c0%af"] {
            assert!(check_query(bad, &w).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_rules() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(check_content(&Method::POST, "/api/v1/matters", &h, true).is_err());
        assert!(check_content(&Method::POST, "/api/v1/matters", &h, false).is_ok());
        assert!(check_content(&Method::POST, "/api/v1/matters/{id}/documents", &h, true).is_ok());
        assert!(check_content(&Method::POST, "/login", &h, true).is_err());
        assert!(check_content(&Method::TRACE, "/login", &h, false).is_err());
        h.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert!(check_content(&Method::PUT, "/api/v1/tenant/two-factor", &h, true).is_ok());
    }
}
