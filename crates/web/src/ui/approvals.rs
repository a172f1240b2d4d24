//! Four eyes in the UI: the approvals page where a second owner or admin approves or rejects
//! what others asked for (role changes and reactivations are asked for on the users page).

use super::pages::{CsrfOnly, Nav};
use super::users::{a_role, person};
use crate::AppState;
use crate::error::UiError;
use crate::extract::{Meta, UiAction, UiCaller, UiPath};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use portcullis_core::Error;
use portcullis_core::ids::{ApprovalId, UserId};
use portcullis_core::model::{ApprovalRequest, ApprovalState, SensitiveAction};
use std::collections::HashMap;

type Page = Result<Response, UiError>;

/// One row of the approvals page.
pub struct ApprovalRow {
    id: String,
    requested_at: String,
    requested_by: String,
    action: String,
    state: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    nav: Nav,
    requests: Vec<ApprovalRow>,
    notice: Option<String>,
    /// Why the last decision was refused.
    error: Option<String>,
}

/// A request's action in plain words, naming people by name and email.
fn describe(a: &SensitiveAction, people: &HashMap<UserId, String>) -> String {
    let who = |u: &UserId| people.get(u).cloned().unwrap_or_else(|| "a person no longer in the firm".into());
    let required = |on: bool| if on { "required" } else { "not required" };
    match a {
        SensitiveAction::GrantRole { user_id, role } => format!("Make {} {}", who(user_id), a_role(*role)),
        SensitiveAction::ReactivateUser { user_id } => {
            format!("Reactivate {}: let them sign in again", who(user_id))
        }
        SensitiveAction::TwoFactorPolicy { staff, clients } => format!(
            "Lower the two-factor requirement: {} for staff, {} for clients",
            required(*staff),
            required(*clients)
        ),
        SensitiveAction::EraseTenant => {
            "ERASE ALL OF THE FIRM'S DATA for good (matters, documents, messages, users, audit log)".into()
        }
        SensitiveAction::ExportTenant { recipient } => format!(
            "EXPORT ALL OF THE FIRM'S DATA (matters, documents, messages, users, audit log), encrypted to {recipient}"
        ),
    }
}

async fn approvals_page(s: &AppState, c: &UiCaller, notice: Option<String>) -> Result<ApprovalsPage, UiError> {
    let requests = s.portal.list_approvals(&c.principal).await?;
    let people: HashMap<UserId, String> =
        s.portal.list_users(&c.principal).await?.iter().map(|u| (u.id, person(u))).collect();
    let now = s.portal.clock().now();
    let row = |a: &ApprovalRequest| ApprovalRow {
        id: a.id.to_string(),
        requested_at: crate::api::dto::ts(a.requested_at),
        requested_by: people.get(&a.requested_by).cloned().unwrap_or_else(|| "a person no longer in the firm".into()),
        action: describe(&a.action, &people),
        state: match a.state {
            ApprovalState::Pending if now > a.expires_at => "expired",
            st => st.as_str(),
        },
    };
    Ok(ApprovalsPage { nav: Nav::of(c), requests: requests.iter().map(row).collect(), notice, error: None })
}

pub async fn approvals(State(s): State<AppState>, c: UiCaller) -> Page {
    Ok(approvals_page(&s, &c, None).await?.into_response())
}

/// The approvals page after a decision: its notice, or the reason it was refused (shown on the
/// page); a decision that needs a fresh second factor goes to the step-up page and back.
async fn after_decision(s: &AppState, c: &UiCaller, result: Result<ApprovalRequest, Error>, done: &str) -> Page {
    match result {
        Ok(_) => Ok(approvals_page(s, c, Some(done.into())).await?.into_response()),
        Err(Error::StepUpRequired) => Ok(super::step_up_then("/approvals")),
        Err(
            e @ (Error::Forbidden(_)
            | Error::WrongState(_)
            | Error::Conflict(_)
            | Error::RequestExpired
            | Error::Invalid { .. }),
        ) => {
            let status = crate::error::status(&e);
            match approvals_page(s, c, None).await {
                Ok(page) => Ok((status, ApprovalsPage { error: Some(e.public_message()), ..page }).into_response()),
                Err(_) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn approve(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<ApprovalId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    let result = s.portal.approve(&c.principal, id, &meta).await;
    after_decision(&s, &c, result, "Approved: the change is in effect.").await
}

pub async fn reject(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<ApprovalId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    let result = s.portal.reject(&c.principal, id, &meta).await;
    after_decision(&s, &c, result, "Rejected: nothing changed.").await
}
