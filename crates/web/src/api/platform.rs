//! The platform operators' API: system health, the tenant directory, opening, ending (four
//! eyes) and reactivating subscriptions, and four eyes on sensitive platform actions.
//! Operator tokens only; tenant sessions and tokens get 401 here, and operator tokens get 401
//! everywhere else.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Meta, OperatorCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::ApprovalId;

/// Whether the database and document store answer, and how many tenants and open key rotations
/// there are.
#[utoipa::path(get, path = "/api/v1/platform/health", tag = "platform", responses((status = 200, body = PlatformHealthView)))]
pub async fn health(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
) -> Result<Json<PlatformHealthView>, ApiError> {
    let h = s.portal.platform_health(&op).await?;
    Ok(Json(PlatformHealthView {
        database: h.database,
        blob_store: h.blob_store,
        tenants: h.tenants,
        open_key_rotations: h.open_key_rotations,
    }))
}

/// The tenant directory.
#[utoipa::path(get, path = "/api/v1/platform/tenants", tag = "platform", responses((status = 200, body = Items<TenantSummaryView>)))]
pub async fn tenants(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
) -> Result<Json<Items<TenantSummaryView>>, ApiError> {
    let items = s
        .portal
        .tenant_directory(&op)
        .await?
        .into_iter()
        .map(|t| TenantSummaryView {
            id: t.tenant.id.to_string(),
            name: t.tenant.name,
            created_at: ts(t.tenant.created_at),
            users: t.users,
            documents: t.documents,
            stored_bytes: t.stored_bytes,
            two_factor_staff: t.tenant.two_factor_staff,
            two_factor_clients: t.tenant.two_factor_clients,
            status: t.tenant.status.as_str().to_string(),
        })
        .collect();
    Ok(Json(Items { items }))
}

/// Open a subscription (privileged operators with current vetting).
#[utoipa::path(post, path = "/api/v1/platform/tenants", tag = "platform", request_body = SubscriptionCreate,
    responses((status = 201, body = SubscriptionCreated), (status = 403, body = crate::error::ErrorBody, description = "not privileged, or vetting lapsed")))]
pub async fn create(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<SubscriptionCreate>,
) -> Result<(StatusCode, Json<SubscriptionCreated>), ApiError> {
    let (id, link) = s.portal.create_subscription(&op, &req.name, &req.owner_email, &meta).await?;
    Ok((StatusCode::CREATED, Json(SubscriptionCreated { tenant_id: id.to_string(), owner_setup_url: link })))
}

/// Ask to end a firm's subscription (privileged operators). Ending signs all of the firm's
/// people out and refuses their sign-ins, so one operator may not do it alone: the answer is a
/// pending platform request (as `POST /api/v1/platform/approvals` makes), and the firm stays
/// active until a second privileged operator approves it
/// (`POST /api/v1/platform/approvals/{id}/approve`), which ends the subscription.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{name}/end", tag = "platform",
    responses((status = 202, body = PlatformApprovalView, description = "the request, waiting for a second operator"),
        (status = 403, body = crate::error::ErrorBody, description = "not privileged, or vetting lapsed"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: already ended, being erased, or destroyed; conflict: a request to end it is already pending")))]
pub async fn end(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<PlatformApprovalView>), ApiError> {
    let req = s.portal.request_end_subscription(&op, &name, &meta).await?;
    Ok((StatusCode::ACCEPTED, Json(PlatformApprovalView::from(&req))))
}

/// Reactivate an ended subscription (privileged operators): full access again with nothing
/// lost; sessions and API tokens from before stay revoked.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{name}/reactivate", tag = "platform",
    responses((status = 200, body = SubscriptionView),
        (status = 403, body = crate::error::ErrorBody, description = "not privileged, or vetting lapsed"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: active, being erased, or destroyed")))]
pub async fn reactivate(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    Ok(Json(SubscriptionView::from(&s.portal.reactivate_subscription(&op, &name, &meta).await?)))
}

/// Where a firm's subscription stands; destroyed firms are answered from the erasure ledger.
#[utoipa::path(get, path = "/api/v1/platform/tenants/{name}/subscription", tag = "platform",
    responses((status = 200, body = SubscriptionView), (status = 404, body = crate::error::ErrorBody, description = "no such tenant, now or erased")))]
pub async fn subscription(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    Ok(Json(SubscriptionView::from(&s.portal.subscription_status(&op, &name).await?)))
}

/// A destroyed firm's signed erasure certificate, as issued (verify it offline with
/// `portcullis tenant verify-certificate`).
#[utoipa::path(get, path = "/api/v1/platform/tenants/{name}/certificate", tag = "platform",
    responses((status = 200, description = "the certificate (JSON)", content_type = "application/json"),
        (status = 404, body = crate::error::ErrorBody, description = "no erased tenant of this name"),
        (status = 409, body = crate::error::ErrorBody, description = "wrong_state: the erasure has not finished")))]
pub async fn certificate(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    ApiPath(name): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let cert = s.portal.erasure_certificate(&op, &name).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], cert).into_response())
}

/// Ask for a sensitive platform action (privileged operators): `rotate_master_key`. A second
/// privileged operator approves it; then `portcullis keys rotate-master --approval ID` runs it,
/// once, within 24 hours of the request.
#[utoipa::path(post, path = "/api/v1/platform/approvals", tag = "platform", request_body = PlatformActionRequest,
    responses((status = 201, body = PlatformApprovalView), (status = 403, body = crate::error::ErrorBody, description = "not privileged, or vetting lapsed")))]
pub async fn request_action(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PlatformActionRequest>,
) -> Result<(StatusCode, Json<PlatformApprovalView>), ApiError> {
    let a = s.portal.request_platform_action(&op, &req.action, &meta).await?;
    Ok((StatusCode::CREATED, Json(PlatformApprovalView::from(&a))))
}

/// The platform's requests, newest first (privileged operators).
#[utoipa::path(get, path = "/api/v1/platform/approvals", tag = "platform", responses((status = 200, body = Items<PlatformApprovalView>)))]
pub async fn approvals(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
) -> Result<Json<Items<PlatformApprovalView>>, ApiError> {
    let items = s.portal.list_platform_approvals(&op).await?.iter().map(PlatformApprovalView::from).collect();
    Ok(Json(Items { items }))
}

/// Approve another operator's request (never your own). Approving `end_subscription` ends the
/// firm's subscription at once (the answer is then `approved` and used); if the firm is no
/// longer active by then, nothing changes and the answer is 409 `wrong_state`.
#[utoipa::path(post, path = "/api/v1/platform/approvals/{id}/approve", tag = "platform",
    responses((status = 200, body = PlatformApprovalView), (status = 403, body = crate::error::ErrorBody, description = "your own request, or not privileged"),
        (status = 409, body = crate::error::ErrorBody, description = "already decided; wrong_state: the firm to end is no longer active"),
        (status = 410, body = crate::error::ErrorBody, description = "request_expired")))]
pub async fn approve(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<PlatformApprovalView>, ApiError> {
    Ok(Json(PlatformApprovalView::from(&s.portal.decide_platform_action(&op, id, true, &meta).await?)))
}

/// Reject another operator's request.
#[utoipa::path(post, path = "/api/v1/platform/approvals/{id}/reject", tag = "platform",
    responses((status = 200, body = PlatformApprovalView)))]
pub async fn reject(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<ApprovalId>,
) -> Result<Json<PlatformApprovalView>, ApiError> {
    Ok(Json(PlatformApprovalView::from(&s.portal.decide_platform_action(&op, id, false, &meta).await?)))
}

/// The platform's own audit events (operators, vetting, platform approvals) matching every
/// filter given, oldest first, paged like the firms' audit log. Tenants' events are never here.
#[utoipa::path(get, path = "/api/v1/platform/audit", tag = "platform", params(PagedAuditQuery),
    responses((status = 200, body = AuditPageView),
        (status = 400, body = crate::error::ErrorBody, description = "a bad filter, cursor or limit; the message names it")))]
pub async fn audit(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    ApiQuery(q): ApiQuery<PagedAuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    Ok(Json(AuditPageView::from(&s.portal.search_platform_audit(&op, &q.input()).await?)))
}

/// The platform's change records: master-key rotations (with their approval), firms' keys
/// destroyed, operators added, granted and suspended, the configured security limits. Filters
/// as for the platform audit log; `action` must be a change action.
#[utoipa::path(get, path = "/api/v1/platform/changes", tag = "platform", params(PagedAuditQuery),
    responses((status = 200, body = ChangePageView),
        (status = 400, body = crate::error::ErrorBody, description = "a bad filter, cursor or limit; the message names it")))]
pub async fn changes(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    ApiQuery(q): ApiQuery<PagedAuditQuery>,
) -> Result<Json<ChangePageView>, ApiError> {
    Ok(Json(ChangePageView::from(&s.portal.list_platform_changes(&op, &q.input()).await?)))
}
