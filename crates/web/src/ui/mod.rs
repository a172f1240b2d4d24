//! The server-rendered UI. No script: plain forms, each carrying the session's CSRF token, and
//! pages rendered by askama with automatic escaping. Every action goes through the same `Portal`
//! use cases as the API.

mod approvals;
mod changes;
mod console_incidents;
mod pages;
mod passkeys;
mod platform;
mod protection;
mod reports;
mod security;
mod users;

use crate::{AppState, WebSettings};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

pub use pages::ErrorPage;

pub fn routes(limits: &WebSettings) -> Router<AppState> {
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let bounded = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/setup/{token}", get(pages::setup_form).post(pages::setup))
        .route("/invite/{token}", get(pages::invite_form).post(pages::invite))
        .route("/matters", get(pages::matters).post(pages::create_matter))
        .route("/matters/{id}", get(pages::matter))
        .route("/matters/{id}/members", post(pages::add_member))
        .route("/matters/{id}/members/{user_id}/remove", post(pages::remove_member))
        .route("/matters/{id}/messages", post(pages::post_message))
        .route("/audit", get(pages::audit))
        .route("/changes", get(changes::tenant))
        .route("/approvals", get(approvals::approvals))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/reject", post(approvals::reject))
        .route("/users/{id}/role", post(users::change_role))
        .route("/users/{id}/deactivate", post(users::deactivate))
        .route("/users/{id}/reactivate", post(users::reactivate))
        .route("/account/security", get(security::security))
        .route("/account/security/totp", post(security::start))
        .route("/account/security/totp/confirm", post(security::confirm))
        .route("/account/security/totp/remove", post(security::remove))
        .route("/account/security/policy", post(security::set_policy))
        .route("/account/security/blocks/{id}/lift", post(security::lift_block))
        .route("/account/security/uploads", post(protection::set_uploads))
        .route("/account/security/dlp", post(protection::set_dlp))
        .route("/account/security/networks", post(protection::set_networks))
        .route("/account/security/erasure", post(security::request_erasure))
        .route("/account/security/held/{id}/release", post(protection::release))
        .route("/account/security/held/{id}/discard", post(protection::discard))
        .route("/account/sessions/{id}/end", post(security::end_session))
        .route("/account/password", post(security::change_password))
        .route("/account/step-up", get(security::step_up_form).post(security::step_up))
        .route("/account/passkeys/new", post(passkeys::start))
        .route("/account/passkeys", post(passkeys::finish))
        .route("/account/passkeys/{id}/remove", post(passkeys::remove))
        .route("/static/passkey.js", get(passkeys::script))
        .route("/tokens", get(pages::tokens).post(pages::create_token))
        .route("/tokens/{id}/revoke", post(pages::revoke_token))
        .route("/users", get(users::users).post(users::create_user))
        .route("/static/app.css", get(pages::css))
        .route(
            "/report",
            get(reports::form)
                .post(reports::submit)
                .layer(DefaultBodyLimit::max(crate::api::incidents::REPORT_BODY_LIMIT)),
        )
        .route("/account/security/breach-report", post(security::report_breach))
        .route("/platform", get(platform::home))
        .route("/platform/changes", get(changes::platform))
        .route("/platform/incidents", get(console_incidents::list))
        .route("/platform/incidents/{id}", get(console_incidents::show).post(console_incidents::update))
        .route("/platform/incidents/{id}/scope", post(console_incidents::scope))
        .route("/platform/incidents/{id}/notify", post(console_incidents::notify))
        .route("/platform/login", get(platform::login_form).post(platform::login))
        .route("/platform/logout", post(platform::logout))
        .route("/platform/tenants/{name}", get(platform::tenant))
        .route("/platform/tenants/{name}/end", post(platform::end))
        .route("/platform/tenants/{name}/end/approve", post(platform::approve_end))
        .route("/platform/tenants/{name}/end/reject", post(platform::reject_end))
        .route("/platform/tenants/{name}/reactivate", post(platform::reactivate))
        .layer(timeout);
    let streaming = Router::new()
        .route("/matters/{id}/documents", post(pages::upload).layer(DefaultBodyLimit::disable()))
        .route("/documents/{id}/download", get(pages::download));
    bounded.merge(streaming).fallback(pages::not_found).layer(axum::middleware::from_fn(same_origin_posts))
}

/// Send the person to confirm it is them (a step-up), then back to `back`, a local path: the
/// answer to a sensitive action that needs a fresh second factor.
fn step_up_then(back: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
    axum::response::Redirect::to(&format!("/account/step-up?{query}")).into_response()
}

/// Refuse form posts that a browser says come from another site. Signed-in forms carry a CSRF
/// token too; this also covers the forms used before there is a session (sign-in, first-start
/// setup, invitations), where a cross-site post could sign a victim into an attacker's account.
async fn same_origin_posts(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req.method() == axum::http::Method::POST {
        let h = req.headers();
        // Browsers that send Sec-Fetch-Site are judged by it alone (with `Referrer-Policy:
        // no-referrer` they send `Origin: null` even for our own forms); older ones by Origin.
        // Requests with neither come from non-browser clients, which cannot be forged into
        // posting by another site.
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| h.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()));
        let allowed = match (h.get("sec-fetch-site").and_then(|v| v.to_str().ok()), h.get(axum::http::header::ORIGIN)) {
            (Some(site), _) => site == "same-origin" || site == "none",
            (None, Some(origin)) => {
                origin.to_str().ok().and_then(|o| o.strip_prefix("https://")).is_some_and(|o| Some(o) == host)
            }
            (None, None) => true,
        };
        if !allowed {
            tracing::warn!(
                origin = ?h.get(axum::http::header::ORIGIN),
                sec_fetch_site = ?h.get("sec-fetch-site"),
                host,
                "refused a form post from another site"
            );
            return crate::error::UiError(portcullis_core::Error::Csrf).into_response();
        }
    }
    next.run(req).await
}
