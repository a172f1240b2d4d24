//! The caller's sessions and password; an admin ending all of a user's sessions.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::UserId;
use portcullis_core::policy::Via;
use secrecy::SecretString;

/// Where the caller is signed in, most recently used first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "session", responses((status = 200, body = Items<SessionView>)))]
pub async fn list(State(s): State<AppState>, ApiCaller(p): ApiCaller) -> Result<Json<Items<SessionView>>, ApiError> {
    let current = match &p.via {
        Via::Session { session_hash, .. } => Some(session_hash.clone()),
        _ => None,
    };
    let items = s
        .portal
        .list_sessions(&p)
        .await?
        .iter()
        .map(|r| SessionView {
            id: r.public_id().to_string(),
            created_at: ts(r.created_at),
            last_seen_at: ts(r.last_seen_at),
            ip: r.ip.clone(),
            user_agent: r.user_agent.clone(),
            current: current.as_deref() == Some(r.token_hash.as_str()),
        })
        .collect();
    Ok(Json(Items { items }))
}

/// End one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "session", responses((status = 204)))]
pub async fn end(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.portal.end_session(&p, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password; every other session of theirs ends.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "session", request_body = PasswordChange,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody, description = "wrong current password or a weak new one")))]
pub async fn change_password(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let (current, new) = (SecretString::from(req.current_password), SecretString::from(req.new_password));
    s.portal.change_password(&p, current, new, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of a user (owners and admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/revoke", tag = "users", responses((status = 204)))]
pub async fn end_all(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    s.portal.end_user_sessions(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
