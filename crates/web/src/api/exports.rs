//! Tenant exports: the owner asks (four eyes: a second owner or admin approves through
//! `/api/v1/approvals`), follows the progress, and downloads the age-encrypted archive.

use super::approvals::change_response;
use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::ApprovalId;
use portcullis_core::service::Change;

/// Ask for an export of all of the firm's data, encrypted to an age public key (the owner, with
/// a recent step-up). Answers 202 with a request a second owner or admin must approve; the
/// export's id is the request's id.
#[utoipa::path(post, path = "/api/v1/tenant/exports", tag = "exports", request_body = ExportRequest,
    responses((status = 202, body = ApprovalView),
        (status = 400, body = crate::error::ErrorBody, description = "not an age public key"),
        (status = 403, body = crate::error::ErrorBody, description = "not the owner, or step_up_required")))]
pub async fn request(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<ExportRequest>,
) -> Result<Response, ApiError> {
    let req = s.portal.request_export(&p, &req.recipient, &meta).await?;
    Ok(change_response(&s.portal, Change::Requested(req)))
}

/// An export's state and progress (owners).
#[utoipa::path(get, path = "/api/v1/tenant/exports/{id}", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, body = ExportView),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: not approved yet")))]
pub async fn status(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<ExportView>, ApiError> {
    Ok(Json(ExportView::from(&s.portal.tenant_export(&p, id).await?)))
}

/// Download a finished export's archive (owners, with a recent step-up; audited).
#[utoipa::path(get, path = "/api/v1/tenant/exports/{id}/content", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, description = "the age-encrypted archive", content_type = "application/octet-stream"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: not finished, or expired")))]
pub async fn content(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Response, ApiError> {
    let stream = s.portal.download_export(&p, id, &meta).await?;
    let name = format!("attachment; filename=\"export-{id}.age\"");
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_DISPOSITION, name)],
        Body::from_stream(stream),
    )
        .into_response())
}
