//! Four eyes in the UI: role changes from the users page, and the approvals page where a second
//! owner or admin approves or rejects what others asked for.

use super::pages::{CsrfOnly, Nav, users_page};
use crate::AppState;
use crate::error::UiError;
use crate::extract::{Meta, UiAction, UiCaller, UiPath, csrf_forms};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::{ApprovalId, UserId};
use portcullis_core::model::{ApprovalRequest, ApprovalState, SensitiveAction};
use portcullis_core::service::Change;
use serde::Deserialize;

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
}

fn describe(a: &SensitiveAction, emails: &std::collections::HashMap<UserId, String>) -> String {
    let who = |u: &UserId| emails.get(u).cloned().unwrap_or_else(|| u.to_string());
    match a {
        SensitiveAction::GrantRole { user_id, role } => format!("make {} {}", who(user_id), role.as_str()),
        SensitiveAction::TwoFactorPolicy { staff, clients } => {
            format!("set the two-factor requirement to staff: {staff}, clients: {clients}")
        }
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
    let emails: std::collections::HashMap<UserId, String> =
        s.portal.list_users(&c.principal).await?.into_iter().map(|u| (u.id, u.email)).collect();
    let now = s.portal.clock().now();
    let row = |a: &ApprovalRequest| ApprovalRow {
        id: a.id.to_string(),
        requested_at: crate::api::dto::ts(a.requested_at),
        requested_by: emails.get(&a.requested_by).cloned().unwrap_or_else(|| a.requested_by.to_string()),
        action: describe(&a.action, &emails),
        state: match a.state {
            ApprovalState::Pending if now > a.expires_at => "expired",
            st => st.as_str(),
        },
    };
    Ok(ApprovalsPage { nav: Nav::of(c), requests: requests.iter().map(row).collect(), notice })
}

pub async fn approvals(State(s): State<AppState>, c: UiCaller) -> Page {
    Ok(approvals_page(&s, &c, None).await?.into_response())
}

pub async fn approve(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<ApprovalId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.approve(&c.principal, id, &meta).await?;
    Ok(approvals_page(&s, &c, Some("Approved: the change is in effect.".into())).await?.into_response())
}

pub async fn reject(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<ApprovalId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.reject(&c.principal, id, &meta).await?;
    Ok(approvals_page(&s, &c, Some("Rejected: nothing changed.".into())).await?.into_response())
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: String,
}

csrf_forms!(RoleForm);

pub async fn change_role(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<UserId>,
    UiAction { caller: c, form: f }: UiAction<RoleForm>,
) -> Page {
    let notice = match s.portal.change_role(&c.principal, id, &f.role, &meta).await? {
        Change::Applied => "The role was changed.",
        Change::Requested(_) => "Requested: a second owner or admin must approve it on the Approvals page.",
    };
    Ok(users_page(&s, &c, None, Some(notice.into())).await?.into_response())
}
