//! The platform operators' API: system health, the tenant directory, opening subscriptions.
//! Operator tokens only; tenant sessions and tokens get 401 here, and operator tokens get 401
//! everywhere else.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Meta, OperatorCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

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
