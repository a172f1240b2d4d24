//! The firm's audit log (owners, admins, auditors; tokens with the `read` scope): searched a page
//! at a time, or exported whole.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiQuery, Meta};
use axum::Json;
use axum::extract::State;
use axum::response::Response;

/// The tenant's audit events matching every filter given, oldest first, paged by sequence
/// number: pass the answer's `next` as `after` for the next page.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPageView),
        (status = 400, body = crate::error::ErrorBody, description = "a bad filter, cursor or limit; the message names it"),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    Ok(Json(AuditPageView::from(&s.portal.search_audit(&p, &q.input()).await?)))
}

/// The firm's change records: every change to a security setting (allow-list, network access
/// list, DLP policy and cap, two-factor requirement, roles, API tokens, data keys) with who,
/// when, before, after and approval, oldest first. Filters and paging as for the audit log, without
/// `matter`; `action` must be a change action.
#[utoipa::path(get, path = "/api/v1/changes", tag = "audit", params(PagedAuditQuery),
    responses((status = 200, body = ChangePageView),
        (status = 400, body = crate::error::ErrorBody, description = "a bad filter, cursor or limit; the message names it"),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn changes(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    ApiQuery(q): ApiQuery<PagedAuditQuery>,
) -> Result<Json<ChangePageView>, ApiError> {
    Ok(Json(ChangePageView::from(&s.portal.list_changes(&p, &q.input()).await?)))
}

/// Every event matching the filters, streamed as a download (`jsonl`: one event per line as the
/// search returns it; `csv`: a header row, cells starting with `=`, `+`, `-` or `@` prefixed with
/// `'`). The export is audited (`audit.export`) before it starts, and ends at that event.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditExportQuery),
    responses((status = 200, description = "the events, as an attachment (application/x-ndjson or text/csv)"),
        (status = 400, body = crate::error::ErrorBody, description = "a bad filter or format; the message names it"),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiQuery(q): ApiQuery<AuditExportQuery>,
) -> Result<Response, ApiError> {
    let export = s.portal.export_audit(&p, &q.input(), q.format.as_deref(), &meta).await?;
    Ok(crate::audit_export::response(export))
}
