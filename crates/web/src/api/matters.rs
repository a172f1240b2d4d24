//! Matters, their members and messages.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::{MatterId, UserId};

/// The matters the caller may see.
#[utoipa::path(get, path = "/api/v1/matters", tag = "matters", responses((status = 200, body = Items<MatterView>)))]
pub async fn list(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
) -> Result<Json<Items<MatterView>>, ApiError> {
    let items = s.portal.list_matters(&p, &meta).await?.iter().map(MatterView::from).collect();
    Ok(Json(Items { items }))
}

/// Open a matter.
#[utoipa::path(post, path = "/api/v1/matters", tag = "matters", request_body = MatterCreate, responses((status = 201, body = MatterView)))]
pub async fn create(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<MatterCreate>,
) -> Result<(StatusCode, Json<MatterView>), ApiError> {
    let m = s.portal.create_matter(&p, &req.reference, &req.title, req.restricted, &meta).await?;
    Ok((StatusCode::CREATED, Json(MatterView::from(&m))))
}

/// One matter.
#[utoipa::path(get, path = "/api/v1/matters/{id}", tag = "matters", params(("id" = String, Path)), responses((status = 200, body = MatterView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_one(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
) -> Result<Json<MatterView>, ApiError> {
    Ok(Json(MatterView::from(&s.portal.matter(&p, id, &meta).await?)))
}

/// Add a member; role `client` invites a client user by email.
#[utoipa::path(post, path = "/api/v1/matters/{id}/members", tag = "matters", params(("id" = String, Path)), request_body = MemberAdd, responses((status = 201, body = MemberAdded)))]
pub async fn add_member(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
    ApiJson(req): ApiJson<MemberAdd>,
) -> Result<(StatusCode, Json<MemberAdded>), ApiError> {
    let out = s.portal.add_member(&p, id, &req.email, &req.role, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(MemberAdded { user_id: out.user_id.to_string(), created: out.created, invite_url: out.invite_url }),
    ))
}

/// The matter's access list.
#[utoipa::path(get, path = "/api/v1/matters/{id}/members", tag = "matters", params(("id" = String, Path)), responses((status = 200, body = Items<MemberView>)))]
pub async fn list_members(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
) -> Result<Json<Items<MemberView>>, ApiError> {
    let items = s.portal.list_members(&p, id, &meta).await?.iter().map(MemberView::from).collect();
    Ok(Json(Items { items }))
}

/// Take a user off the matter's list: their sessions and API tokens lose the matter at once.
/// 404 when the user is not on it.
#[utoipa::path(delete, path = "/api/v1/matters/{id}/members/{user_id}", tag = "matters",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody, description = "no such matter, or the user is not on its list")))]
pub async fn remove_member(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath((id, user)): ApiPath<(MatterId, UserId)>,
) -> Result<StatusCode, ApiError> {
    s.portal.remove_member(&p, id, user, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The matter's messages, oldest first.
#[utoipa::path(get, path = "/api/v1/matters/{id}/messages", tag = "messages", params(("id" = String, Path)), responses((status = 200, body = Items<MessageView>)))]
pub async fn list_messages(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
) -> Result<Json<Items<MessageView>>, ApiError> {
    let items = s.portal.list_messages(&p, id, &meta).await?.iter().map(MessageView::from).collect();
    Ok(Json(Items { items }))
}

/// Post a message.
#[utoipa::path(post, path = "/api/v1/matters/{id}/messages", tag = "messages", params(("id" = String, Path)), request_body = MessageCreate, responses((status = 201, body = MessageView)))]
pub async fn post_message(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
    ApiJson(req): ApiJson<MessageCreate>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let m = s.portal.post_message(&p, id, &req.body, &meta).await?;
    Ok((StatusCode::CREATED, Json(MessageView::from(&m))))
}
