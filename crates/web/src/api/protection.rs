//! Protective controls: the upload allow-list, the DLP policy and download cap, the review queue
//! of held documents, and lifting a user's download cap. Owners and admins only (the policy's
//! `ManageTenantSecurity`); changing a setting needs a recent step-up.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::{DocumentId, UserId};
use portcullis_core::service::Protection;

fn upload_view(s: &Protection) -> UploadPolicyView {
    UploadPolicyView { allowed: s.allowed_names().into_iter().map(str::to_owned).collect() }
}

fn dlp_view(s: &Protection) -> DlpPolicyView {
    let detectors = portcullis_core::dlp::Detector::ALL.iter().map(|d| (d.as_str().to_owned(), s.action(*d))).collect();
    DlpPolicyView { detectors, download_cap: s.download_cap }
}

/// The file types the firm accepts.
#[utoipa::path(get, path = "/api/v1/tenant/upload-policy", tag = "protection", responses((status = 200, body = UploadPolicyView)))]
pub async fn upload_policy(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<UploadPolicyView>, ApiError> {
    Ok(Json(upload_view(&s.portal.protection(&p).await?)))
}

/// Set the file types the firm accepts (step-up).
#[utoipa::path(put, path = "/api/v1/tenant/upload-policy", tag = "protection", request_body = UploadPolicyView,
    responses((status = 200, body = UploadPolicyView), (status = 403, body = crate::error::ErrorBody)))]
pub async fn set_upload_policy(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<UploadPolicyView>,
) -> Result<Json<UploadPolicyView>, ApiError> {
    Ok(Json(upload_view(&s.portal.set_upload_policy(&p, &req.allowed, &meta).await?)))
}

/// The networks the firm's users may sign in from.
#[utoipa::path(get, path = "/api/v1/tenant/network-access", tag = "protection",
    responses((status = 200, body = NetworkAccessView), (status = 403, body = crate::error::ErrorBody)))]
pub async fn network_access(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<NetworkAccessView>, ApiError> {
    Ok(Json(NetworkAccessView { networks: s.portal.protection(&p).await?.sign_in_networks }))
}

/// Set the networks the firm's users may sign in from (step-up; a list that leaves out the
/// caller's own address is refused).
#[utoipa::path(put, path = "/api/v1/tenant/network-access", tag = "protection", request_body = NetworkAccessView,
    responses((status = 200, body = NetworkAccessView), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn set_network_access(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<NetworkAccessView>,
) -> Result<Json<NetworkAccessView>, ApiError> {
    let after = s.portal.set_network_access(&p, &req.networks, &meta).await?;
    Ok(Json(NetworkAccessView { networks: after.sign_in_networks }))
}

/// The DLP actions per detector and the daily download cap.
#[utoipa::path(get, path = "/api/v1/tenant/dlp-policy", tag = "protection", responses((status = 200, body = DlpPolicyView)))]
pub async fn dlp_policy(State(s): State<AppState>, ApiCaller(p): ApiCaller) -> Result<Json<DlpPolicyView>, ApiError> {
    Ok(Json(dlp_view(&s.portal.protection(&p).await?)))
}

/// Set the DLP actions and the daily download cap (step-up).
#[utoipa::path(put, path = "/api/v1/tenant/dlp-policy", tag = "protection", request_body = DlpPolicyView,
    responses((status = 200, body = DlpPolicyView), (status = 403, body = crate::error::ErrorBody)))]
pub async fn set_dlp_policy(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<DlpPolicyView>,
) -> Result<Json<DlpPolicyView>, ApiError> {
    Ok(Json(dlp_view(&s.portal.set_dlp_policy(&p, req.detectors, req.download_cap, &meta).await?)))
}

/// The documents held for review.
#[utoipa::path(get, path = "/api/v1/tenant/held-documents", tag = "protection", responses((status = 200, body = Items<HeldDocumentView>)))]
pub async fn held(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<Items<HeldDocumentView>>, ApiError> {
    let items = s
        .portal
        .held_documents(&p)
        .await?
        .into_iter()
        .map(|f| HeldDocumentView {
            document_id: f.document_id.to_string(),
            matter_id: f.matter_id.to_string(),
            findings: serde_json::from_str(&f.findings).unwrap_or_default(),
            flagged_at: ts(f.created_at),
        })
        .collect();
    Ok(Json(Items { items }))
}

/// Release a held document.
#[utoipa::path(post, path = "/api/v1/documents/{id}/release", tag = "protection", params(("id" = String, Path)), responses((status = 204)))]
pub async fn release(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<DocumentId>,
) -> Result<StatusCode, ApiError> {
    s.portal.release_document(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a held document.
#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "protection", params(("id" = String, Path)), responses((status = 204)))]
pub async fn discard(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<DocumentId>,
) -> Result<StatusCode, ApiError> {
    s.portal.discard_document(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a user's download cap for the rest of the day.
#[utoipa::path(post, path = "/api/v1/users/{id}/download-cap/lift", tag = "protection", params(("id" = String, Path)), responses((status = 204)))]
pub async fn lift_cap(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    s.portal.lift_download_cap(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
