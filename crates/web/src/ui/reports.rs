//! The public report page: a vulnerability or a breach, without signing in (plain form, no
//! script). There is no session to protect, so no CSRF value: a forged submission could only
//! file a report, which the per-source limit bounds as it bounds the API. What was typed is
//! kept in the form when a field is refused, so nothing is lost.

use crate::AppState;
use crate::error::UiError;
use crate::extract::{Meta, UiForm};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::error::Error;
use portcullis_core::incidents::{IncidentKind, choose};
use portcullis_core::service::NewReport;
use serde::Deserialize;

#[derive(Template, WebTemplate, Default)]
#[template(path = "report.html")]
pub struct ReportPage {
    error: Option<String>,
    /// The reference of the report just taken.
    reference: Option<String>,
    breach: bool,
    summary: String,
    details: String,
    contact: String,
}

/// The empty form; `?kind=breach` preselects a breach.
pub async fn form(axum::extract::Query(q): axum::extract::Query<KindQuery>) -> ReportPage {
    ReportPage { breach: q.kind.as_deref() == Some("breach"), ..ReportPage::default() }
}

#[derive(Deserialize)]
pub struct KindQuery {
    kind: Option<String>,
}

#[derive(Deserialize)]
pub struct ReportForm {
    kind: String,
    summary: String,
    details: String,
    #[serde(default)]
    contact: String,
}

pub async fn submit(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiForm(f): UiForm<ReportForm>,
) -> Result<Response, UiError> {
    crate::api::incidents::check_report_rate(&s, &meta)?;
    let kind = choose("kind", &f.kind, IncidentKind::ALL, IncidentKind::as_str);
    let taken = match kind {
        Ok(kind) => {
            let new = NewReport { kind, summary: &f.summary, details: &f.details, contact: Some(&f.contact) };
            s.portal.report_incident(new, None, &meta).await
        }
        Err(e) => Err(e),
    };
    match taken {
        Ok(v) => Ok(ReportPage { reference: Some(v.record.reference), ..ReportPage::default() }.into_response()),
        Err(e @ Error::Invalid { .. }) => {
            let page = ReportPage {
                error: Some(e.public_message()),
                reference: None,
                breach: f.kind == "breach",
                summary: f.summary,
                details: f.details,
                contact: f.contact,
            };
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
