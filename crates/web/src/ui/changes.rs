//! Change records in the UI: a firm's at `/changes` (for those who may read its audit log) and
//! the platform's at `/platform/changes` (for operators). Both are the same list over the same
//! use cases as `/api/v1/changes` and `/api/v1/platform/changes`, searched with the audit
//! page's filters (without the matter, which no setting belongs to); a refused filter shows the
//! form again with the reason.

use super::pages::{AUDIT_PAGE, AuditParams, Nav};
use super::platform::{OperatorNav, OperatorUi};
use crate::AppState;
use crate::api::dto::ts;
use crate::error::UiError;
use crate::extract::UiCaller;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::Error;
use portcullis_core::audit::search::Scope;
use portcullis_core::changes::{self, ChangeRecord};
use portcullis_core::service::ChangePage;

type Page = Result<Response, UiError>;

/// One change as a table row; settings are shown as compact JSON.
pub struct ChangeRow {
    reference: String,
    at: String,
    setting: &'static str,
    actor: String,
    subject: String,
    before: String,
    after: String,
    /// "asked by X, approved by Y", or empty where no second person was needed.
    approval: String,
}

impl From<&ChangeRecord> for ChangeRow {
    fn from(c: &ChangeRecord) -> Self {
        let json = |v: &serde_json::Value| if v.is_null() { String::new() } else { v.to_string() };
        Self {
            reference: c.reference.clone(),
            at: ts(c.at),
            setting: c.setting,
            actor: c.actor.clone(),
            subject: c.subject.clone(),
            before: json(&c.before),
            after: json(&c.after),
            approval: c
                .approval
                .as_ref()
                .map(|a| format!("asked by {}, approved by {} (request {})", a.requested_by, a.approved_by, a.id))
                .unwrap_or_default(),
        }
    }
}

/// What both pages show: the filter form, the rows, the link to the next page.
pub struct ChangeList {
    /// Where the form posts and the next link points.
    path: &'static str,
    /// (action, setting) of each kind of change in this chain, for the form's choice.
    kinds: Vec<(&'static str, &'static str)>,
    filters: AuditParams,
    error: Option<String>,
    rows: Vec<ChangeRow>,
    next: Option<String>,
}

/// The list for `result`, and the status to answer with (400 for a refused filter).
fn list(
    result: Result<ChangePage, Error>,
    filters: AuditParams,
    scope: Scope,
    path: &'static str,
) -> Result<(StatusCode, ChangeList), UiError> {
    let (status, page, error) = match result {
        Ok(page) => (StatusCode::OK, page, None),
        Err(e @ Error::Invalid { .. }) => {
            (StatusCode::BAD_REQUEST, ChangePage { changes: Vec::new(), next: None }, Some(e.public_message()))
        }
        Err(e) => return Err(e.into()),
    };
    let list = ChangeList {
        path,
        kinds: changes::kinds(scope).iter().map(|k| (k.action.as_str(), k.setting)).collect(),
        next: page.next.map(|n| filters.link(path, &format!("after={n}"))),
        rows: page.changes.iter().map(ChangeRow::from).collect(),
        filters,
        error,
    };
    Ok((status, list))
}

#[derive(Template, WebTemplate)]
#[template(path = "changes.html")]
pub struct TenantChanges {
    nav: Nav,
    list: ChangeList,
}

pub async fn tenant(State(s): State<AppState>, c: UiCaller, Query(q): Query<AuditParams>) -> Page {
    let result = s.portal.list_changes(&c.principal, &q.input(AUDIT_PAGE)).await;
    let (status, list) = list(result, q, Scope::Tenant, "/changes")?;
    Ok((status, TenantChanges { nav: Nav::of(&c), list }).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "platform_changes.html")]
pub struct PlatformChanges {
    nav: OperatorNav,
    list: ChangeList,
}

pub async fn platform(State(s): State<AppState>, c: OperatorUi, Query(q): Query<AuditParams>) -> Page {
    let result = s.portal.list_platform_changes(&c.op, &q.input(AUDIT_PAGE)).await;
    let (status, list) = list(result, q, Scope::Platform, "/platform/changes")?;
    Ok((status, PlatformChanges { nav: OperatorNav::of(&c), list }).into_response())
}
