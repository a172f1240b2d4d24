//! Security incidents in the operators' console: the list, one incident whole (its text, the
//! timeline, the breach scope and who was told), and the forms that work it. Every action goes
//! through the same use cases and policy as `/api/v1/platform/incidents`; a refused value
//! re-renders the page with the message and changes nothing.

use super::platform::{CsrfOnly, OperatorAction, OperatorNav, OperatorUi};
use crate::AppState;
use crate::api::incidents::{IncidentBodyView, IncidentUpdate, ScopeRequest, incident_view};
use crate::error::UiError;
use crate::extract::{Meta, UiPath, csrf_forms};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::Error;
use portcullis_core::ids::IncidentId;
use portcullis_core::incidents::{IncidentSeverity, IncidentState};
use serde::Deserialize;

type Page = Result<Response, UiError>;

#[derive(Template, WebTemplate)]
#[template(path = "platform_incidents.html")]
pub struct ListPage {
    nav: OperatorNav,
    incidents: Vec<IncidentBodyView>,
}

pub async fn list(State(s): State<AppState>, c: OperatorUi) -> Page {
    let incidents = s.portal.list_incidents(&c.op).await?.iter().map(incident_view).collect();
    Ok(ListPage { nav: OperatorNav::of(&c), incidents }.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "platform_incident.html")]
pub struct IncidentPage {
    nav: OperatorNav,
    i: IncidentBodyView,
    states: &'static [IncidentState],
    severities: &'static [IncidentSeverity],
    notice: Option<String>,
    error: Option<String>,
}

fn page(c: &OperatorUi, i: IncidentBodyView, notice: Option<String>, error: Option<String>) -> IncidentPage {
    IncidentPage {
        nav: OperatorNav::of(c),
        i,
        states: IncidentState::ALL,
        severities: IncidentSeverity::ALL,
        notice,
        error,
    }
}

pub async fn show(State(s): State<AppState>, c: OperatorUi, UiPath(id): UiPath<IncidentId>) -> Page {
    let i = incident_view(&s.portal.incident(&c.op, id).await?);
    Ok(page(&c, i, None, None).into_response())
}

/// Show the outcome of an action: the changed incident with `done`, or, for a refused value,
/// the incident as it was with the message (400).
async fn outcome(
    s: &AppState,
    c: &OperatorUi,
    id: IncidentId,
    result: Result<portcullis_core::service::IncidentView, Error>,
    done: &str,
) -> Page {
    match result {
        Ok(v) => Ok(page(c, incident_view(&v), Some(done.into()), None).into_response()),
        Err(e @ Error::Invalid { .. }) => {
            let i = incident_view(&s.portal.incident(&c.op, id).await?);
            Ok((StatusCode::BAD_REQUEST, page(c, i, None, Some(e.public_message()))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct UpdateForm {
    csrf: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    severity: String,
    /// Empty: unchanged.
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
pub struct ScopeForm {
    csrf: String,
    from: String,
    to: String,
    /// Ids and ranges, separated by spaces, commas or line breaks.
    #[serde(default)]
    accounts: String,
    #[serde(default)]
    tokens: String,
    #[serde(default)]
    ip_ranges: String,
    #[serde(default)]
    documents: String,
}

csrf_forms!(UpdateForm, ScopeForm);

fn list_of(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

pub async fn update(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<IncidentId>,
    OperatorAction { caller: c, form: f }: OperatorAction<UpdateForm>,
) -> Page {
    let some = |v: String| Some(v).filter(|v| !v.trim().is_empty());
    let req = IncidentUpdate {
        state: some(f.state),
        severity: some(f.severity),
        assignee: some(f.assignee),
        note: some(f.note),
    };
    let result = match req.into_change() {
        Ok(change) => s.portal.update_incident(&c.op, id, change, &meta).await,
        Err(e) => Err(e),
    };
    outcome(&s, &c, id, result, "The incident was updated.").await
}

pub async fn scope(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<IncidentId>,
    OperatorAction { caller: c, form: f }: OperatorAction<ScopeForm>,
) -> Page {
    let req = ScopeRequest {
        from: f.from,
        to: f.to,
        accounts: list_of(&f.accounts),
        tokens: list_of(&f.tokens),
        ip_ranges: list_of(&f.ip_ranges),
        documents: list_of(&f.documents),
    };
    let result = match req.into_scope() {
        Ok(scope) => s.portal.scope_breach(&c.op, id, scope, &meta).await,
        Err(e) => Err(e),
    };
    outcome(&s, &c, id, result, "The scope was computed from the audit log: check it before telling the firms.").await
}

pub async fn notify(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<IncidentId>,
    OperatorAction { caller: c, .. }: OperatorAction<CsrfOnly>,
) -> Page {
    let result = s.portal.notify_breach(&c.op, id, &meta).await;
    outcome(&s, &c, id, result, "Every firm in the scope was told: mail to its owners and admins, and a banner.").await
}
