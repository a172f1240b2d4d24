//! Documents: listed, streamed up, streamed down.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiPath, ApiQuery, Meta};
use crate::streams;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use portcullis_core::ids::{DocumentId, MatterId};

/// The matter's documents, newest first.
#[utoipa::path(get, path = "/api/v1/matters/{id}/documents", tag = "documents", params(("id" = String, Path)), responses((status = 200, body = Items<DocumentView>)))]
pub async fn list(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
) -> Result<Json<Items<DocumentView>>, ApiError> {
    let staff = p.role.is_staff_side();
    let items =
        s.portal.list_flagged_documents(&p, id, &meta).await?.iter().map(|f| DocumentView::flagged(f, staff)).collect();
    Ok(Json(Items { items }))
}

/// Upload a document: the request body is the file's bytes, streamed. Nothing is visible until
/// the last byte is stored.
#[utoipa::path(post, path = "/api/v1/matters/{id}/documents", tag = "documents",
    params(("id" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = DocumentView), (status = 400, description = "a refused file name", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody),
        (status = 415, description = "a type the firm does not accept, or never accepted", body = crate::error::ErrorBody)))]
pub async fn upload(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<MatterId>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DocumentView>), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let stream = streams::idle_limited(body.into_data_stream(), s.web.upload_idle_timeout);
    let d = s.portal.upload_document(&p, id, &q.name, content_type, stream, &meta).await?;
    Ok((StatusCode::CREATED, Json(DocumentView::from(&d))))
}

/// Download a document, whole or one byte range.
#[utoipa::path(get, path = "/api/v1/documents/{id}/content", tag = "documents", params(("id" = String, Path)),
    responses((status = 200, description = "the whole document"), (status = 206, description = "the requested range"), (status = 416, body = crate::error::ErrorBody)))]
pub async fn content(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<DocumentId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let d = s.portal.download_document(&p, id, streams::parse_range(&headers), &meta).await?;
    Ok(streams::download_response(d))
}
