//! Intrusion and anomaly detection for the people who answer it: a firm's owners and admins see
//! its protected accounts, paused downloads and detections, and lift or resume them; platform
//! operators see blocked addresses and the platform's detections, and lift blocks. Every lift
//! is audited by the core.

use super::dto::{Items, ts};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiPath, Meta, OperatorCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::{BlockId, UserId};
use portcullis_core::model::{Block, Detection};
use serde::Serialize;
use utoipa::ToSchema;

/// A block in force.
#[derive(Serialize, ToSchema, Debug)]
pub struct BlockView {
    pub id: String,
    /// `source` (an address is blocked), `account` (the account must step up) or `downloads`
    /// (the user's downloads are paused).
    pub scope: &'static str,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    /// The detection that caused it.
    pub reason: &'static str,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: String,
    /// `null`: until lifted.
    pub expires_at: Option<String>,
}

impl From<&Block> for BlockView {
    fn from(b: &Block) -> Self {
        Self {
            id: b.id.to_string(),
            scope: b.scope.as_str(),
            user_id: b.user_id.map(|u| u.to_string()),
            ip: b.ip.clone(),
            reason: b.reason.as_str(),
            detail: b.detail.clone(),
            created_at: ts(b.created_at),
            expires_at: b.expires_at.map(ts),
        }
    }
}

/// Something detection noticed.
#[derive(Serialize, ToSchema, Debug)]
pub struct DetectionView {
    pub id: String,
    pub kind: &'static str,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: String,
}

impl From<&Detection> for DetectionView {
    fn from(d: &Detection) -> Self {
        Self {
            id: d.id.to_string(),
            kind: d.kind.as_str(),
            user_id: d.user_id.map(|u| u.to_string()),
            ip: d.ip.clone(),
            detail: d.detail.clone(),
            created_at: ts(d.created_at),
        }
    }
}

/// The firm's blocks in force: protected accounts and paused downloads (owners and admins).
#[utoipa::path(get, path = "/api/v1/security/blocks", tag = "security", responses((status = 200, body = Items<BlockView>)))]
pub async fn blocks(State(s): State<AppState>, ApiCaller(p): ApiCaller) -> Result<Json<Items<BlockView>>, ApiError> {
    let o = s.portal.tenant_security(&p).await?;
    Ok(Json(Items { items: o.blocks.iter().map(BlockView::from).collect() }))
}

/// The firm's detections, newest first (owners and admins).
#[utoipa::path(get, path = "/api/v1/security/detections", tag = "security", responses((status = 200, body = Items<DetectionView>)))]
pub async fn detections(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<Items<DetectionView>>, ApiError> {
    let o = s.portal.tenant_security(&p).await?;
    Ok(Json(Items { items: o.detections.iter().map(DetectionView::from).collect() }))
}

/// Lift one of the firm's blocks: end an account's protection or resume a user's downloads.
#[utoipa::path(delete, path = "/api/v1/security/blocks/{id}", tag = "security", responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn lift(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<BlockId>,
) -> Result<StatusCode, ApiError> {
    s.portal.lift_tenant_block(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resume a user's paused downloads (owners and admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/downloads/resume", tag = "security", responses((status = 204), (status = 404, body = crate::error::ErrorBody, description = "the user's downloads are not paused")))]
pub async fn resume(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    s.portal.resume_downloads(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Blocked source addresses (operators).
#[utoipa::path(get, path = "/api/v1/platform/security/blocks", tag = "platform", responses((status = 200, body = Items<BlockView>)))]
pub async fn platform_blocks(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
) -> Result<Json<Items<BlockView>>, ApiError> {
    let o = s.portal.platform_security(&op).await?;
    Ok(Json(Items { items: o.blocks.iter().map(BlockView::from).collect() }))
}

/// The platform's detections (attacks from addresses, not tied to a firm), newest first.
#[utoipa::path(get, path = "/api/v1/platform/security/detections", tag = "platform", responses((status = 200, body = Items<DetectionView>)))]
pub async fn platform_detections(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
) -> Result<Json<Items<DetectionView>>, ApiError> {
    let o = s.portal.platform_security(&op).await?;
    Ok(Json(Items { items: o.detections.iter().map(DetectionView::from).collect() }))
}

/// Lift a block on a source address (privileged operators).
#[utoipa::path(delete, path = "/api/v1/platform/security/blocks/{id}", tag = "platform", responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn platform_lift(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<BlockId>,
) -> Result<StatusCode, ApiError> {
    s.portal.lift_source_block(&op, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
