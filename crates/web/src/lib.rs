//! The HTTP face of Portcullis: the JSON API under `/api/v1`, the server-rendered UI, and the
//! middleware every response passes through. Handlers only translate HTTP to use cases of the
//! core's `Portal` and back; statuses are chosen in `error` alone.
#![forbid(unsafe_code)]

pub(crate) mod api;
mod audit_export;
pub mod drain;
mod error;
mod extract;
mod guard;
mod middleware;
mod observe;
pub mod protect;
mod streams;
mod ui;
mod waf;

use axum::Router;
use portcullis_core::service::Portal;
use std::sync::Arc;
use std::time::Duration;

pub use api::openapi_json;

/// The name of the session cookie. The `__Host-` prefix makes browsers refuse it unless it is
/// Secure, has Path=/ and no Domain, so no sibling host can plant or read it.
pub const SESSION_COOKIE: &str = "__Host-portcullis";

/// The name of the device cookie: a long-lived random value that lets the portal recognise a
/// browser the user has signed in from before (and notify the user of any other). Not a
/// credential, and never the session cookie. `__Host-` for the same reasons.
pub const DEVICE_COOKIE: &str = "__Host-portcullis-device";

/// Limits the router enforces.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Largest JSON or form body.
    pub max_body_bytes: usize,
    /// Time limit for a whole request, except document uploads and downloads.
    pub request_timeout: Duration,
    /// An upload that sends nothing for this long is abandoned.
    pub upload_idle_timeout: Duration,
    /// Rate limits, load shedding, client IP and the request filter.
    pub protect: protect::ProtectSettings,
    /// Set when the node starts draining before a shutdown.
    pub drain: drain::Drain,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            upload_idle_timeout: Duration::from_secs(60),
            protect: protect::ProtectSettings::default(),
            drain: drain::Drain::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub portal: Portal,
    pub web: Arc<WebSettings>,
    /// This node's rate limiters and load-shedding gate.
    pub guards: Arc<protect::Guards>,
}

/// The whole application, with `extra` routes of the binary's (the metrics page) behind the
/// same protective layers: a route merged after the layers were applied would have none.
/// Returns the node's limiters too, for the server to spread over the live nodes.
pub fn router(portal: Portal, web: WebSettings, extra: Router) -> (Router, Arc<protect::Guards>) {
    let guards = Arc::new(protect::Guards::new(web.protect.clone()));
    let state = AppState { portal, web: Arc::new(web), guards: guards.clone() };
    let limits = state.web.clone();
    let app = Router::new()
        .merge(api::routes(&limits))
        .merge(ui::routes(&limits))
        .merge(middleware::probe_routes())
        .with_state(state.clone())
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(axum::middleware::from_fn_with_state(state, waf::filter));
    (middleware::wrap(app, &limits, guards.clone()), guards)
}
