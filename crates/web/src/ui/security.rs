//! The account security pages: second-factor status, authenticator-app enrolment with its QR
//! code, recovery codes (shown once), passkeys (listed here; added in `passkeys`), step-up, and
//! the firm's two-factor requirement.

use super::pages::{CsrfOnly, Nav};
use super::passkeys::{FactorFields, PasskeyPrompt};
use crate::AppState;
use crate::error::UiError;
use crate::extract::{Meta, UiAction, UiCaller, UiPath, csrf_forms};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use portcullis_core::policy::{Permission, role_allows};
use portcullis_core::service::TotpEnrolment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

type Page = Result<Response, UiError>;

#[derive(Template, WebTemplate)]
#[template(path = "security.html")]
pub struct SecurityPage {
    nav: Nav,
    totp_enabled: bool,
    recovery_codes_left: u64,
    two_factor_required: bool,
    /// Owners and admins see the firm's requirement and may tighten it.
    can_set_policy: bool,
    policy_staff: bool,
    policy_clients: bool,
    notice: Option<String>,
    sessions: Vec<SessionRow>,
    passkeys: Vec<crate::api::dto::PasskeyView>,
    /// The firm's breach notices (owners and admins).
    breaches: Vec<crate::api::incidents::BreachNoticeView>,
    /// Owners and admins: the upload allow-list, DLP actions, download cap and held documents.
    protection: Option<super::protection::ProtectionRows>,
    /// Owners and admins: the firm's protected accounts and paused downloads, and detections.
    blocks: Vec<crate::api::security::BlockView>,
    detections: Vec<crate::api::security::DetectionView>,
    /// The owner: the firm's name, typed to confirm a request to erase the firm.
    erasure_name: Option<String>,
}

/// One of the user's sessions, as the security page lists it.
pub struct SessionRow {
    id: String,
    last_seen_at: String,
    ip: String,
    user_agent: String,
    current: bool,
}

pub async fn security(State(s): State<AppState>, c: UiCaller) -> Page {
    Ok(security_page(&s, &c, None).await?.into_response())
}

pub(super) async fn security_page(s: &AppState, c: &UiCaller, notice: Option<String>) -> Result<SecurityPage, UiError> {
    let st = s.portal.security_status(&c.principal).await?;
    let can_set_policy = role_allows(c.principal.role, Permission::ManageTenantSecurity);
    let tenant = if can_set_policy { Some(s.portal.tenant_settings(&c.principal).await?) } else { None };
    let overview = if can_set_policy { Some(s.portal.tenant_security(&c.principal).await?) } else { None };
    let may_erase = role_allows(c.principal.role, Permission::RequestErasure);
    let current = match &c.principal.via {
        portcullis_core::policy::Via::Session { session_hash, .. } => session_hash.clone(),
        _ => String::new(),
    };
    let sessions = s
        .portal
        .list_sessions(&c.principal)
        .await?
        .iter()
        .map(|r| SessionRow {
            id: r.public_id().to_string(),
            last_seen_at: crate::api::dto::ts(r.last_seen_at),
            ip: r.ip.clone().unwrap_or_default(),
            user_agent: r.user_agent.clone().unwrap_or_default(),
            current: r.token_hash == current,
        })
        .collect();
    Ok(SecurityPage {
        nav: Nav::of(c),
        totp_enabled: st.totp_enabled,
        recovery_codes_left: st.recovery_codes_left,
        two_factor_required: st.two_factor_required,
        can_set_policy,
        policy_staff: tenant.as_ref().is_some_and(|t| t.two_factor_staff),
        policy_clients: tenant.as_ref().is_some_and(|t| t.two_factor_clients),
        notice,
        sessions,
        passkeys: s.portal.list_passkeys(&c.principal).await?.iter().map(crate::api::dto::PasskeyView::from).collect(),
        protection: if can_set_policy { Some(super::protection::protection_rows(s, c).await?) } else { None },
        blocks: overview.as_ref().map(|o| o.blocks.iter().map(Into::into).collect()).unwrap_or_default(),
        detections: overview.as_ref().map(|o| o.detections.iter().map(Into::into).collect()).unwrap_or_default(),
        erasure_name: tenant.filter(|_| may_erase).map(|t| t.name),
        breaches: c
            .breach_notices
            .iter()
            .map(|n| crate::api::incidents::notice_view(c.principal.tenant_id.to_string(), n))
            .collect(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "enrol.html")]
pub struct EnrolPage {
    nav: Nav,
    secret: String,
    /// The QR code as a `data:` URL (the CSP allows `data:` images, never scripts).
    qr: String,
    error: Option<String>,
}

/// Start an enrolment and show its QR code and secret.
pub async fn start(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    let e = s.portal.start_totp_enrolment(&c.principal, &meta).await?;
    Ok(enrol_page(&c, &e, None).into_response())
}

fn enrol_page(c: &UiCaller, e: &TotpEnrolment, error: Option<String>) -> EnrolPage {
    let qr = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(e.qr_svg.expose_secret())
    );
    EnrolPage { nav: Nav::of(c), secret: e.secret.expose_secret().to_string(), qr, error }
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// A step-up: a typed code, or the page script's passkey answer.
#[derive(Deserialize)]
pub struct StepUpForm {
    csrf: String,
    #[serde(flatten)]
    factor: FactorFields,
    /// Where to go after a step-up (a local path).
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct PolicyForm {
    csrf: String,
    #[serde(default)]
    staff: Option<String>,
    #[serde(default)]
    clients: Option<String>,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
pub struct ErasureForm {
    csrf: String,
    /// The firm's name, typed by hand: an erasure is never one stray click.
    #[serde(default)]
    confirm: String,
}

/// A signed-in user's breach report.
#[derive(Deserialize)]
pub struct BreachForm {
    csrf: String,
    summary: String,
    details: String,
}

csrf_forms!(CodeForm, StepUpForm, PolicyForm, PasswordForm, ErasureForm, BreachForm);

/// Report, as a signed-in user, that client information may have become public.
pub async fn report_breach(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<BreachForm>,
) -> Page {
    let new = portcullis_core::service::NewReport {
        kind: portcullis_core::incidents::IncidentKind::Breach,
        summary: &f.summary,
        details: &f.details,
        contact: None,
    };
    match s.portal.report_incident(new, Some(&c.principal), &meta).await {
        Ok(v) => {
            let notice = format!(
                "Your breach report is recorded as {}; the security team has been alerted.",
                v.record.reference
            );
            Ok(security_page(&s, &c, Some(notice)).await?.into_response())
        }
        Err(e @ portcullis_core::Error::Invalid { .. }) => {
            let notice = format!("Nothing was reported: {}", e.public_message());
            Ok((axum::http::StatusCode::BAD_REQUEST, security_page(&s, &c, Some(notice)).await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Ask for the firm's erasure (the owner, after a step-up); it waits for a second owner or
/// admin on the Approvals page, then the firm's data is destroyed in every copy.
pub async fn request_erasure(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<ErasureForm>,
) -> Page {
    let name = s.portal.tenant_settings(&c.principal).await?.name;
    if f.confirm.trim() != name {
        let notice = format!("Nothing was requested: type the firm's name, {name}, to confirm.");
        return Ok((axum::http::StatusCode::BAD_REQUEST, security_page(&s, &c, Some(notice)).await?).into_response());
    }
    s.portal.request_erasure(&c.principal, &meta).await?;
    let notice = "The erasure was requested. It waits for a second owner or admin on the Approvals page; \
                  once approved, every user is signed out and the firm's data is destroyed.";
    Ok(security_page(&s, &c, Some(notice.into())).await?.into_response())
}

/// End one of the user's sessions.
pub async fn end_session(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<String>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.end_session(&c.principal, &id, &meta).await?;
    Ok(security_page(&s, &c, Some("The session was ended.".into())).await?.into_response())
}

/// Change the password; every other session ends.
pub async fn change_password(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<PasswordForm>,
) -> Page {
    let (current, new) = (SecretString::from(f.current_password), SecretString::from(f.new_password));
    let notice = match s.portal.change_password(&c.principal, current, new, &meta).await {
        Ok(ended) => format!("Your password was changed; {ended} other sessions were ended."),
        Err(e @ portcullis_core::Error::Invalid { .. }) => e.public_message(),
        Err(e) => return Err(e.into()),
    };
    Ok(security_page(&s, &c, Some(notice)).await?.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    nav: Nav,
    codes: Vec<String>,
}

/// Confirm the enrolment with a first code; show the recovery codes, once.
pub async fn confirm(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<CodeForm>,
) -> Page {
    let codes = match s.portal.confirm_totp_enrolment(&c.principal, &f.code, &meta).await {
        Ok(codes) => codes,
        // A mistyped code: the same enrolment again, with the reason.
        Err(e @ portcullis_core::Error::Invalid { .. }) => {
            let Ok(pending) = s.portal.pending_totp_enrolment(&c.principal).await else { return Err(e.into()) };
            let page = enrol_page(&c, &pending, Some(e.public_message()));
            return Ok((axum::http::StatusCode::BAD_REQUEST, page).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    // The session no longer has to enrol: show the navigation of a full session.
    let c = UiCaller { principal: s.portal.authenticate_session(&c.cookie).await?, ..c };
    let codes = codes.iter().map(|c| c.expose_secret().to_string()).collect();
    Ok(RecoveryCodesPage { nav: Nav::of(&c), codes }.into_response())
}

pub async fn remove(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.remove_totp(&c.principal, &meta).await?;
    Ok(security_page(&s, &c, Some("The authenticator app was removed.".into())).await?.into_response())
}

/// Lift one of the firm's blocks (owners and admins).
pub async fn lift_block(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<portcullis_core::ids::BlockId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.lift_tenant_block(&c.principal, id, &meta).await?;
    Ok(security_page(&s, &c, Some("The block was lifted.".into())).await?.into_response())
}

pub async fn set_policy(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<PolicyForm>,
) -> Page {
    let notice =
        match s.portal.set_two_factor_policy(&c.principal, f.staff.is_some(), f.clients.is_some(), &meta).await? {
            portcullis_core::service::Change::Applied => "The firm's two-factor requirement was saved.",
            portcullis_core::service::Change::Requested(_) => {
                "Lowering the requirement needs a second owner or admin: the request waits on the Approvals page."
            }
        };
    Ok(security_page(&s, &c, Some(notice.into())).await?.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "step_up.html")]
pub struct StepUpPage {
    nav: Nav,
    next: String,
    error: Option<String>,
    passkey: Option<PasskeyPrompt>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only local paths: a step-up must never become an open redirect.
fn local_path(next: &str) -> String {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.contains("://");
    if ok { next.to_string() } else { "/account/security".to_string() }
}

/// The step-up page, with a passkey challenge if the user has passkeys.
async fn step_up_page(s: &AppState, c: &UiCaller, next: &str, error: Option<String>) -> StepUpPage {
    // No passkey (or passkeys off on this server): the page offers codes only.
    let passkey = s.portal.start_passkey_step_up(&c.principal).await.ok().map(PasskeyPrompt::from);
    StepUpPage { nav: Nav::of(c), next: local_path(next), error, passkey }
}

pub async fn step_up_form(State(s): State<AppState>, c: UiCaller, Query(q): Query<NextQuery>) -> Page {
    Ok(step_up_page(&s, &c, &q.next, None).await.into_response())
}

pub async fn step_up(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<StepUpForm>,
) -> Page {
    let result = match f.factor.proof()? {
        Some(proof) => s.portal.step_up(&c.principal, &proof, &meta).await,
        None => Err(portcullis_core::Error::SecondFactorRequired(None)),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&local_path(&f.next)).into_response()),
        Err(e @ portcullis_core::Error::SecondFactorRequired(_)) => {
            let page = step_up_page(&s, &c, &f.next, Some(e.public_message())).await;
            Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn step_up_returns_only_to_local_paths() {
        assert_eq!(local_path("/tokens"), "/tokens");
        for bad in ["//evil.example/x", "https://evil.example", "/\\evil.example", "tokens", ""] {
            assert_eq!(local_path(bad), "/account/security", "{bad}");
        }
    }
}
