//! Sign-in, API tokens and users.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{
    ApiCaller, ApiJson, ApiPath, DeviceCookie, Meta, clear_session_cookie, login_cookies, session_cookie,
};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::TokenId;
use secrecy::{ExposeSecret, SecretString};

/// Sign in. Sets the session cookie and the device cookie (`__Host-portcullis-device`, kept
/// 400 days), and returns the CSRF token to echo. A sign-in from a browser that sent no device
/// cookie known for this user mails the user a new-device notice.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse, description = "signed in; sets the session and device cookies"),
        (status = 401, body = crate::error::ErrorBody, description = "invalid_credentials or second_factor_required")))]
pub async fn login(
    State(s): State<AppState>,
    Meta(meta): Meta,
    DeviceCookie(device): DeviceCookie,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    s.guards.sign_in(&req.tenant, &req.email, meta.ip.as_deref())?;
    let proof = factor_proof(req.totp, req.passkey);
    let pw = SecretString::from(req.password);
    let out = s.portal.login(&req.tenant, &req.email, pw, proof.as_ref(), device.as_ref(), &meta).await?;
    let cookies = login_cookies(&out);
    let body = LoginResponse { user: UserView::from(&out.principal), csrf_token: out.csrf_token };
    Ok((cookies, Json(body)).into_response())
}

/// Sign out: the session ends on the server and the cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204)))]
pub async fn logout(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    req: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    if let Some(cookie) = session_cookie(&req.headers) {
        s.portal.logout(&p, &cookie, &meta).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_session_cookie())]).into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/session", tag = "session", responses((status = 200, body = UserView)))]
pub async fn me(ApiCaller(p): ApiCaller) -> Json<UserView> {
    Json(UserView::from(&p))
}

/// Create an API token (browser session only). The secret is in the answer, once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreate, responses((status = 201, body = TokenCreated)))]
pub async fn create_token(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<TokenCreate>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let (t, secret) = s.portal.create_token(&p, &req.name, &req.scopes, req.expires_in_days, &meta).await?;
    let view = TokenView::from(&t);
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: view.id,
            token: secret.expose_secret().to_string(),
            name: view.name,
            scopes: view.scopes,
            expires_at: view.expires_at,
        }),
    ))
}

/// The caller's tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Items<TokenView>)))]
pub async fn list_tokens(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<Items<TokenView>>, ApiError> {
    let items = s.portal.list_tokens(&p).await?.iter().map(TokenView::from).collect();
    Ok(Json(Items { items }))
}

/// Revoke one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<TokenId>,
) -> Result<StatusCode, ApiError> {
    s.portal.revoke_token(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's users (staff side only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Items<UserView>)))]
pub async fn list_users(State(s): State<AppState>, ApiCaller(p): ApiCaller) -> Result<Json<Items<UserView>>, ApiError> {
    let items = s.portal.list_users(&p).await?.iter().map(UserView::from).collect();
    Ok(Json(Items { items }))
}

/// Create a user; they receive a one-time link to choose a password.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserCreate, responses((status = 201, body = UserCreated)))]
pub async fn create_user(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<UserCreate>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    let (u, link) = s.portal.create_user(&p, &req.email, &req.display_name, &req.role, None, &meta).await?;
    Ok((StatusCode::CREATED, Json(UserCreated { user: UserView::from(&u), invite_url: link })))
}
