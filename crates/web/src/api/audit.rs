//! The firm's audit log (owners, admins, auditors; tokens with the `read` scope).

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiQuery};
use axum::Json;
use axum::extract::State;

/// The tenant's audit events, oldest first, paged by sequence number.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Items<AuditEventView>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Items<AuditEventView>>, ApiError> {
    let events = s.portal.audit_log(&p, q.after, q.limit).await?;
    Ok(Json(Items { items: events.iter().map(AuditEventView::from).collect() }))
}
