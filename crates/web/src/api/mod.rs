//! The JSON API, `/api/v1`. The contract (paths, bodies, error shape) is in the architecture
//! document; the OpenAPI description is generated from these handlers.

mod approvals;
mod audit;
mod documents;
pub(crate) mod dto;
mod exports;
mod factors;
pub(crate) mod incidents;
mod matters;
mod platform;
mod protection;
pub(crate) mod security;
mod session;
mod sessions;

use crate::error::{ApiError, ErrorBody};
use crate::{AppState, WebSettings};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis API", version = "1", description = "The Portcullis client-data portal. Errors are `{\"error\", \"message\"}` with a 4xx status. Browser sessions send `X-CSRF-Token` on state-changing calls; API clients send `Authorization: Bearer <token>`."),
    paths(
        session::login, session::logout, session::me,
        session::create_token, session::list_tokens, session::revoke_token,
        session::list_users, session::create_user,
        matters::list, matters::create, matters::get_one, matters::add_member, matters::list_members,
        matters::remove_member,
        matters::list_messages, matters::post_message,
        documents::list, documents::upload, documents::content,
        audit::list, audit::export, audit::changes,
        platform::health, platform::audit, platform::changes, platform::tenants, platform::create,
        platform::request_action, platform::approvals, platform::approve, platform::reject,
        platform::end, platform::reactivate, platform::subscription, platform::certificate,
        sessions::list, sessions::end, sessions::change_password, sessions::end_all,
        exports::request, exports::status, exports::content,
        approvals::request_erasure, approvals::change_role, approvals::unlock, approvals::list, approvals::approve, approvals::reject,
        approvals::deactivate, approvals::reactivate,
        factors::status, factors::start, factors::confirm, factors::remove, factors::step_up, factors::set_policy,
        factors::step_up_challenge, factors::list_passkeys, factors::passkey_challenge, factors::add_passkey,
        factors::remove_passkey,
        protection::upload_policy, protection::set_upload_policy, protection::network_access,
        protection::set_network_access, protection::dlp_policy, protection::set_dlp_policy,
        protection::held, protection::release, protection::discard, protection::lift_cap,
        security::blocks, security::detections, security::lift, security::resume,
        security::platform_blocks, security::platform_detections, security::platform_lift,
        incidents::report, incidents::breach_report, incidents::notices,
        incidents::list, incidents::get_one, incidents::update, incidents::scope, incidents::notify,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub fn routes(limits: &WebSettings) -> Router<AppState> {
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let bounded = Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/session", post(session::login).delete(session::logout).get(session::me))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/changes", get(audit::changes))
        .route("/api/v1/platform/changes", get(platform::changes))
        .route("/api/v1/platform/health", get(platform::health))
        .route("/api/v1/platform/audit", get(platform::audit))
        .route("/api/v1/platform/tenants", get(platform::tenants).post(platform::create))
        .route("/api/v1/platform/tenants/{name}/end", post(platform::end))
        .route("/api/v1/platform/tenants/{name}/reactivate", post(platform::reactivate))
        .route("/api/v1/platform/tenants/{name}/subscription", get(platform::subscription))
        .route("/api/v1/platform/tenants/{name}/certificate", get(platform::certificate))
        .route("/api/v1/platform/approvals", get(platform::approvals).post(platform::request_action))
        .route("/api/v1/platform/approvals/{id}/approve", post(platform::approve))
        .route("/api/v1/platform/approvals/{id}/reject", post(platform::reject))
        .route("/api/v1/platform/security/blocks", get(security::platform_blocks))
        .route("/api/v1/platform/security/blocks/{id}", delete(security::platform_lift))
        .route("/api/v1/platform/security/detections", get(security::platform_detections))
        .route("/api/v1/platform/incidents", get(incidents::list))
        .route("/api/v1/platform/incidents/{id}", get(incidents::get_one).post(incidents::update))
        .route("/api/v1/platform/incidents/{id}/scope", post(incidents::scope))
        .route("/api/v1/platform/incidents/{id}/notify", post(incidents::notify))
        .route("/api/v1/reports", post(incidents::report).layer(DefaultBodyLimit::max(incidents::REPORT_BODY_LIMIT)))
        .route("/api/v1/breach-reports", post(incidents::breach_report))
        .route("/api/v1/breach-notices", get(incidents::notices))
        .route("/api/v1/security/blocks", get(security::blocks))
        .route("/api/v1/security/blocks/{id}", delete(security::lift))
        .route("/api/v1/security/detections", get(security::detections))
        .route("/api/v1/users/{id}/downloads/resume", post(security::resume))
        .route("/api/v1/users/{id}/role", post(approvals::change_role))
        .route("/api/v1/users/{id}/unlock", post(approvals::unlock))
        .route("/api/v1/users/{id}/deactivate", post(approvals::deactivate))
        .route("/api/v1/users/{id}/reactivate", post(approvals::reactivate))
        .route("/api/v1/users/{id}/sessions/revoke", post(sessions::end_all))
        .route("/api/v1/me/sessions", get(sessions::list))
        .route("/api/v1/me/sessions/{id}", delete(sessions::end))
        .route("/api/v1/me/password", post(sessions::change_password))
        .route("/api/v1/approvals", get(approvals::list))
        .route("/api/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/api/v1/approvals/{id}/reject", post(approvals::reject))
        .route("/api/v1/session/step-up", post(factors::step_up))
        .route("/api/v1/session/step-up/passkey", post(factors::step_up_challenge))
        .route("/api/v1/me/passkeys", get(factors::list_passkeys).post(factors::add_passkey))
        .route("/api/v1/me/passkeys/challenge", post(factors::passkey_challenge))
        .route("/api/v1/me/passkeys/{id}", delete(factors::remove_passkey))
        .route("/api/v1/me/security", get(factors::status))
        .route("/api/v1/me/totp", post(factors::start).delete(factors::remove))
        .route("/api/v1/me/totp/confirm", post(factors::confirm))
        .route("/api/v1/tenant/erasure", post(approvals::request_erasure))
        .route("/api/v1/tenant/exports", post(exports::request))
        .route("/api/v1/tenant/exports/{id}", get(exports::status))
        .route("/api/v1/tenant/two-factor", axum::routing::put(factors::set_policy))
        .route("/api/v1/tenant/upload-policy", get(protection::upload_policy).put(protection::set_upload_policy))
        .route("/api/v1/tenant/network-access", get(protection::network_access).put(protection::set_network_access))
        .route("/api/v1/tenant/dlp-policy", get(protection::dlp_policy).put(protection::set_dlp_policy))
        .route("/api/v1/tenant/held-documents", get(protection::held))
        .route("/api/v1/documents/{id}/release", post(protection::release))
        .route("/api/v1/documents/{id}", delete(protection::discard))
        .route("/api/v1/users/{id}/download-cap/lift", post(protection::lift_cap))
        .route("/api/v1/tokens", post(session::create_token).get(session::list_tokens))
        .route("/api/v1/tokens/{id}", delete(session::revoke_token))
        .route("/api/v1/users", get(session::list_users).post(session::create_user))
        .route("/api/v1/matters", get(matters::list).post(matters::create))
        .route("/api/v1/matters/{id}", get(matters::get_one))
        .route("/api/v1/matters/{id}/members", get(matters::list_members).post(matters::add_member))
        .route("/api/v1/matters/{id}/members/{user_id}", delete(matters::remove_member))
        .route("/api/v1/matters/{id}/messages", get(matters::list_messages).post(matters::post_message))
        .route("/api/v1/matters/{id}/documents", get(documents::list))
        .layer(timeout);
    // Streams: the whole-request timeout does not apply (a 1 GiB upload takes a while); the
    // upload's idle timeout and the service's size limit bound them instead.
    let streaming = Router::new()
        .route("/api/v1/matters/{id}/documents", post(documents::upload).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/documents/{id}/content", get(documents::content))
        .route("/api/v1/audit/export", get(audit::export))
        .route("/api/v1/tenant/exports/{id}/content", get(exports::content));
    bounded
        .merge(streaming)
        .route("/api/v1", get(not_found))
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::map_response(json_errors))
}

/// Some refusals are made by layers below the handlers (wrong method, timeout, body too large)
/// and come without a body; give them the API's error shape too.
async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let err = match resp.status() {
        _ if is_json => None,
        StatusCode::METHOD_NOT_ALLOWED => {
            Some(portcullis_core::Error::invalid("method", "this method is not allowed here"))
        }
        StatusCode::REQUEST_TIMEOUT => Some(portcullis_core::Error::Timeout),
        StatusCode::PAYLOAD_TOO_LARGE => Some(portcullis_core::Error::TooLarge { limit: 0 }),
        _ => None,
    };
    match err {
        Some(e) => {
            let status = resp.status();
            let mut out = ApiError(e).into_response();
            *out.status_mut() = status;
            out
        }
        None => resp,
    }
}

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi_json())
}

async fn not_found() -> ApiError {
    ApiError(portcullis_core::Error::NotFound)
}
