//! Watching requests: a span per request that every log line written while answering it
//! inherits (request id, method, route, and, once the caller is known, tenant and user), one
//! summary line per request, and the HTTP metrics (rate, latency, status, bytes, in flight).
//! Labels are the route pattern (`/api/v1/matters/{id}`), never the path itself, so ids and
//! names stay out of the metrics and their number stays bounded.

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use portcullis_core::policy::Principal;
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

/// The span's name; log lines of a request carry its fields.
const SPAN: &str = "request";

/// Decrements the in-flight gauge however the request ends (answered, failed or dropped).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!("portcullis_http_requests_in_flight").increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("portcullis_http_requests_in_flight").decrement(1.0);
    }
}

/// The method as a label: the usual ones by name, anything else lumped together so a client
/// cannot mint label values.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Count the data frames of a body into `counter` as they pass.
fn counted(body: Body, counter: metrics::Counter) -> Body {
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.increment(data.len() as u64);
        }
        frame
    }))
}

/// Middleware: span, metrics and the summary line of one request.
pub async fn observe(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let span = tracing::info_span!(
        SPAN,
        request_id = %request_id,
        method,
        route = %route,
        tenant_id = Empty,
        user_id = Empty,
        operator_id = Empty
    );
    let _in_flight = InFlight::start();
    let started = Instant::now();
    let up = metrics::counter!("portcullis_http_body_bytes_total", "direction" => "in", "route" => route.clone());
    let response = next.run(req.map(|b| counted(b, up))).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    metrics::histogram!("portcullis_http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!(
        "portcullis_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "request answered");
    });
    let down = metrics::counter!("portcullis_http_body_bytes_total", "direction" => "out", "route" => route);
    response.map(|b| counted(b, down))
}

/// Name the signed-in caller on the current request's span, so the request's later log lines
/// (and its summary line) carry the tenant and user. Ids only, never the email address.
pub fn identify(p: &Principal) {
    let span = tracing::Span::current();
    span.record("tenant_id", tracing::field::display(p.tenant_id));
    span.record("user_id", tracing::field::display(p.user_id));
}

/// Name the platform operator on the current request's span.
pub fn identify_operator(id: impl std::fmt::Display) {
    tracing::Span::current().record("operator_id", tracing::field::display(id));
}
