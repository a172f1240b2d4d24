//! User administration that touches access: role changes and security settings that wait for a
//! second person (four eyes), the approvals themselves, deactivating and reactivating users,
//! and lifting sign-in locks.

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

/// Change a user's role. Any rise in reach (client to staff or auditor, staff to auditor or
/// admin, anyone to owner) answers 202 with a request that a second owner or admin must approve;
/// a lowering is done at once (204) and ends the user's sessions and API tokens.
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

/// Deactivate a user (owners and admins, after a step-up; an admin or owner only by an owner,
/// never yourself): they cannot sign in, and their sessions and API tokens end at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView, description = "the user, `status` \"disabled\""),
        (status = 403, body = crate::error::ErrorBody, description = "not allowed, or step_up_required"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: already deactivated")))]
pub async fn deactivate(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserView>, ApiError> {
    let u = s.portal.deactivate_user(&p, id, &meta).await?;
    Ok(Json(UserView::from(&u)))
}

/// Let a deactivated user sign in again. A client comes back at once (200 with the user);
/// anyone else answers 202 with a request a second owner or admin must approve.
#[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView, description = "reactivated now"),
        (status = 202, body = ApprovalView, description = "waits for a second owner or admin"),
        (status = 403, body = crate::error::ErrorBody, description = "not allowed, or step_up_required"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: not deactivated")))]
pub async fn reactivate(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Response, ApiError> {
    match s.portal.reactivate_user(&p, id, &meta).await? {
        Change::Applied => {
            let users = s.portal.list_users(&p).await?;
            let u = users.iter().find(|u| u.id == id).ok_or(portcullis_core::Error::NotFound)?;
            Ok(Json(UserView::from(u)).into_response())
        }
        requested => Ok(change_response(&s.portal, requested)),
    }
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
