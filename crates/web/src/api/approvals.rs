//! User administration that touches access: role changes and security settings that wait for a
//! second person (four eyes), the approvals themselves, and lifting sign-in locks.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::{ApprovalId, UserId};
use portcullis_core::service::{Change, Portal};

/// 204 when done at once; 202 with the request when it waits for approval.
pub(super) fn change_response(portal: &Portal, change: Change) -> Response {
    match change {
        Change::Applied => StatusCode::NO_CONTENT.into_response(),
        Change::Requested(req) => {
            (StatusCode::ACCEPTED, Json(ApprovalView::of(&req, portal.clock().now()))).into_response()
        }
    }
}

/// Direct the erasure of all of the firm's data (the owner, with a recent step-up). Answers 202
/// with a request a second owner or admin must approve; once approved, the firm is shut out at
/// once and destroyed by the lifecycle job, and its owners receive a signed erasure certificate.
#[utoipa::path(post, path = "/api/v1/tenant/erasure", tag = "approvals",
    responses((status = 202, body = ApprovalView),
        (status = 403, body = crate::error::ErrorBody, description = "not the owner, or step_up_required"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: a request is already waiting")))]
pub async fn request_erasure(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
) -> Result<Response, ApiError> {
    let req = s.portal.request_erasure(&p, &meta).await?;
    Ok(change_response(&s.portal, Change::Requested(req)))
}

/// Change a user's role. Making someone an owner or admin answers 202 with a request that a
/// second owner or admin must approve.
#[utoipa::path(post, path = "/api/v1/users/{id}/role", tag = "approvals", request_body = RoleChange,
    responses((status = 204), (status = 202, body = ApprovalView)))]
pub async fn change_role(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(req): ApiJson<RoleChange>,
) -> Result<Response, ApiError> {
    let change = s.portal.change_role(&p, id, &req.role, &meta).await?;
    Ok(change_response(&s.portal, change))
}

/// The firm's requests, newest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", responses((status = 200, body = Items<ApprovalView>)))]
pub async fn list(State(s): State<AppState>, ApiCaller(p): ApiCaller) -> Result<Json<Items<ApprovalView>>, ApiError> {
    let now = s.portal.clock().now();
    let items = s.portal.list_approvals(&p).await?.iter().map(|a| ApprovalView::of(a, now)).collect();
    Ok(Json(Items { items }))
}

/// Approve another person's request; its action takes effect now.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    responses((status = 200, body = ApprovalView), (status = 403, body = crate::error::ErrorBody, description = "your own request, or not allowed"), (status = 410, body = crate::error::ErrorBody, description = "request_expired")))]
pub async fn approve(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<ApprovalView>, ApiError> {
    let a = s.portal.approve(&p, id, &meta).await?;
    Ok(Json(ApprovalView::of(&a, s.portal.clock().now())))
}

/// Reject another person's request.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", responses((status = 200, body = ApprovalView)))]
pub async fn reject(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<ApprovalView>, ApiError> {
    let a = s.portal.reject(&p, id, &meta).await?;
    Ok(Json(ApprovalView::of(&a, s.portal.clock().now())))
}

/// Lift a user's sign-in lock (after 100 consecutive failures only an admin can).
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", responses((status = 204)))]
pub async fn unlock(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    s.portal.unlock_user(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
