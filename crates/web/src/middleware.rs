//! What wraps every response: security headers, request ids, body limits and timeouts; and the
//! health probes.

use crate::{AppState, WebSettings};
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// Scripts and styles only from our own origin (one script: the passkey helper; no inline
/// script, no eval), no framing, forms only to ourselves, no other connections.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Add headers, request ids and limits around the application.
pub fn wrap(app: Router, limits: &WebSettings, guards: std::sync::Arc<crate::protect::Guards>) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let headers: [(HeaderName, &'static str); 7] = [
        (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"),
    ];
    let mut app = app
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn(crate::observe::observe))
        .layer(axum::middleware::from_fn_with_state(guards.clone(), crate::protect::throttle))
        .layer(axum::middleware::from_fn_with_state(guards, crate::protect::client_ip))
        .layer(axum::middleware::from_fn_with_state(limits.drain.clone(), crate::drain::close_while_draining));
    for (name, value) in headers {
        // `if_not_present`: a handler may set a stricter value (downloads add a sandbox CSP).
        app = app.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    app.layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_client_request_id))
}

/// Request ids go into the audit trail, so they are always ours: one sent by the client is
/// discarded before a fresh one is assigned.
async fn drop_client_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    req.headers_mut().remove("x-request-id");
    req
}

/// `/.well-known/security.txt` (RFC 9116): where to report a vulnerability. Open to anyone, like
/// the probes; absent (404) until a contact is configured.
async fn security_txt(axum::extract::State(s): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match s.portal.security_txt() {
        Some(txt) => ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], txt).into_response(),
        None => (StatusCode::NOT_FOUND, "no security contact is configured").into_response(),
    }
}

/// `/healthz`: the process answers. `/readyz`: the database and blob store answer too, and the
/// node is not draining.
pub fn probe_routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/security.txt", get(security_txt))
        .route("/security.txt", get(|| async { axum::response::Redirect::permanent("/.well-known/security.txt") }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|axum::extract::State(s): axum::extract::State<AppState>| async move {
                if s.web.drain.is_draining() {
                    return (StatusCode::SERVICE_UNAVAILABLE, "draining");
                }
                match s.portal.ready().await {
                    Ok(()) => (StatusCode::OK, "ready"),
                    Err(e) => {
                        tracing::warn!(error = %e, "not ready");
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        )
}
