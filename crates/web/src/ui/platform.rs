//! The platform operators' console: system health, the tenant directory and the subscription
//! lifecycle (status, end, reactivate) in the browser, through the same use cases and policy as
//! `/api/v1/platform`. Operators never see tenant content here either: counts only. Ending a
//! subscription is four eyes here too: the End form asks, and the tenant page shows the pending
//! request, which a second privileged operator approves (or rejects) on the same page.
//!
//! Operators have no passwords and no sessions: they sign in by pasting a platform token made
//! on the server by `portcullis operator token` (holding the machine is the first factor; the
//! token's short life bounds a stolen copy). The token is kept in a `__Host-` cookie (Secure,
//! HttpOnly, SameSite=Strict, no `Max-Age`: gone with the browser) and checked on every request
//! exactly as the API checks its bearer, so a revoked or expired token stops working at once.
//! Signing out deletes that token on the server, so a copy left behind stops working as well.
//! Forms carry a CSRF value derived from the token (SHA-256 under a domain tag), which another
//! site cannot know; the same-origin check of every form post applies too.

use crate::AppState;
use crate::error::{ErrorCode, UiError};
use crate::extract::{CsrfForm, UiPath, csrf_forms};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_core::Error;
use portcullis_core::authn::secret;
use portcullis_core::policy::OperatorPrincipal;
use portcullis_core::service::SubscriptionStatus;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The cookie holding a signed-in operator's platform token.
pub const OPERATOR_COOKIE: &str = "__Host-portcullis-operator";

type Page = Result<Response, UiError>;

/// The CSRF value of the operator whose token is `token`.
fn csrf_of(token: &str) -> String {
    secret::hash_str(&format!("portcullis operator console csrf v1\0{token}"))
}

/// Where a page without a valid operator token goes. The answer still carries its code, so
/// made-up tokens count toward scan detection like the API's 401s.
fn to_login() -> Response {
    let mut resp = Redirect::to("/platform/login").into_response();
    resp.extensions_mut().insert(ErrorCode(Error::Unauthenticated.code()));
    resp
}

/// The signed-in operator of a console page.
pub struct OperatorUi {
    pub(super) op: OperatorPrincipal,
    csrf: String,
    /// The platform token from the cookie, for signing out (which revokes it).
    token: SecretString,
}

impl std::fmt::Debug for OperatorUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorUi").field("operator", &self.op.operator.id).finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for OperatorUi {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = crate::extract::cookie(&parts.headers, OPERATOR_COOKIE) else { return Err(to_login()) };
        let op = match state.portal.authenticate_operator(&token).await {
            Ok(op) => op,
            Err(Error::Unauthenticated) => return Err(to_login()),
            Err(e) => return Err(UiError(e).into_response()),
        };
        crate::observe::identify_operator(op.operator.id);
        state.guards.operator(op.operator.id).map_err(|e| UiError(e).into_response())?;
        Ok(Self { op, csrf: csrf_of(&token), token: SecretString::from(token) })
    }
}

/// An operator's form post whose CSRF value has been checked.
pub struct OperatorAction<T> {
    pub(super) caller: OperatorUi,
    pub(super) form: T,
}

impl<T: CsrfForm + Send> FromRequest<AppState> for OperatorAction<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = OperatorUi::from_request_parts(&mut parts, state).await?;
        let body =
            String::from_request(axum::extract::Request::from_parts(parts, body), state).await.map_err(|_| {
                UiError(Error::invalid("form", "the form could not be read or is too large")).into_response()
            })?;
        let form = T::parse(&body).map_err(|e| UiError(e).into_response())?;
        if !secret::equal(&caller.csrf, form.csrf()) {
            return Err(UiError(Error::Csrf).into_response());
        }
        Ok(Self { caller, form })
    }
}

/// The console's navigation: who is signed in, and the sign-out form.
pub struct OperatorNav {
    pub(super) email: String,
    pub(super) csrf: String,
}

impl OperatorNav {
    pub(super) fn of(c: &OperatorUi) -> Self {
        Self { email: c.op.operator.email.clone(), csrf: c.csrf.clone() }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "platform_login.html")]
pub struct LoginPage {
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login_form() -> LoginPage {
    LoginPage { error: None }
}

/// Check the pasted token as the API would, then keep it in the console's cookie.
pub async fn login(State(s): State<AppState>, crate::extract::UiForm(f): crate::extract::UiForm<LoginForm>) -> Page {
    let token = f.token.trim();
    match s.portal.authenticate_operator(token).await {
        Ok(op) => {
            s.guards.operator(op.operator.id)?;
            let cookie = format!("{OPERATOR_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict");
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/platform")).into_response())
        }
        Err(Error::Unauthenticated) => {
            let error = Some("That is not a current platform token (it may have expired or been revoked).".into());
            let mut resp = (StatusCode::UNAUTHORIZED, LoginPage { error }).into_response();
            resp.extensions_mut().insert(ErrorCode(Error::Unauthenticated.code()));
            Ok(resp)
        }
        Err(e) => Err(UiError(e)),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

#[derive(Deserialize)]
pub struct EndForm {
    csrf: String,
    /// The tenant's name, typed again: ending a firm signs all of its people out.
    confirm: String,
}

#[derive(Deserialize)]
pub struct DecideForm {
    csrf: String,
    /// The pending request the page showed: the decision is on that request, never on one
    /// made since.
    approval: String,
}

csrf_forms!(CsrfOnly, EndForm, DecideForm);

/// Sign out: the token that signed in is revoked on the server (audited), and the cookie is
/// cleared.
pub async fn logout(State(s): State<AppState>, OperatorAction { caller: c, .. }: OperatorAction<CsrfOnly>) -> Page {
    s.portal.sign_out_operator(&c.op, c.token.expose_secret()).await?;
    let clear = format!("{OPERATOR_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/platform/login")).into_response())
}

/// One row of the tenant directory.
pub struct TenantRow {
    name: String,
    status: &'static str,
    created_at: String,
    users: u64,
    documents: u64,
    stored_bytes: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "platform.html")]
pub struct HomePage {
    nav: OperatorNav,
    database: bool,
    blob_store: bool,
    open_key_rotations: u64,
    tenants: Vec<TenantRow>,
}

pub async fn home(State(s): State<AppState>, c: OperatorUi) -> Page {
    let health = s.portal.platform_health(&c.op).await?;
    let tenants = s
        .portal
        .tenant_directory(&c.op)
        .await?
        .into_iter()
        .map(|t| TenantRow {
            name: t.tenant.name,
            status: t.tenant.status.as_str(),
            created_at: crate::api::dto::ts(t.tenant.created_at),
            users: t.users,
            documents: t.documents,
            stored_bytes: t.stored_bytes,
        })
        .collect();
    Ok(HomePage {
        nav: OperatorNav::of(&c),
        database: health.database,
        blob_store: health.blob_store,
        open_key_rotations: health.open_key_rotations,
        tenants,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "platform_tenant.html")]
pub struct TenantPage {
    nav: OperatorNav,
    name: String,
    tenant_id: String,
    status: &'static str,
    ended_at: Option<String>,
    destroy_after: Option<String>,
    erasure: Option<String>,
    pending_end: Option<PendingEnd>,
    notice: Option<String>,
    error: Option<String>,
}

/// A request to end the subscription, waiting for a second operator.
pub struct PendingEnd {
    id: String,
    requested_by: String,
    requested_at: String,
    expires_at: String,
    /// Whether the signed-in operator asked (and so may not decide).
    mine: bool,
}

fn tenant_page(c: &OperatorUi, st: &SubscriptionStatus, notice: Option<String>, error: Option<String>) -> TenantPage {
    let when = |t: Option<time::OffsetDateTime>| t.map(crate::api::dto::ts);
    TenantPage {
        nav: OperatorNav::of(c),
        name: st.name.clone(),
        tenant_id: st.tenant_id.to_string(),
        status: st.status,
        ended_at: when(st.ended_at),
        destroy_after: when(st.destroy_after),
        erasure: st.erasure.as_ref().map(|e| {
            let done = e.finished_at.map(|t| format!(", destroyed {}", crate::api::dto::ts(t))).unwrap_or_default();
            format!("{} requested {}{done}", e.reason.as_str(), crate::api::dto::ts(e.requested_at))
        }),
        pending_end: st.pending_end.as_ref().map(|p| PendingEnd {
            id: p.id.to_string(),
            requested_by: format!("operator:{}", p.requested_by),
            requested_at: crate::api::dto::ts(p.requested_at),
            expires_at: crate::api::dto::ts(p.expires_at),
            mine: p.requested_by == c.op.operator.id,
        }),
        notice,
        error,
    }
}

pub async fn tenant(State(s): State<AppState>, c: OperatorUi, UiPath(name): UiPath<String>) -> Page {
    let st = s.portal.subscription_status(&c.op, &name).await?;
    Ok(tenant_page(&c, &st, None, None).into_response())
}

pub async fn end(
    State(s): State<AppState>,
    crate::extract::Meta(meta): crate::extract::Meta,
    UiPath(name): UiPath<String>,
    OperatorAction { caller: c, form }: OperatorAction<EndForm>,
) -> Page {
    if form.confirm.trim() != name {
        let st = s.portal.subscription_status(&c.op, &name).await?;
        let error = Some(format!("Type the firm's name, {name}, to end its subscription."));
        return Ok((StatusCode::BAD_REQUEST, tenant_page(&c, &st, None, error)).into_response());
    }
    s.portal.request_end_subscription(&c.op, &name, &meta).await?;
    let st = s.portal.subscription_status(&c.op, &name).await?;
    let notice = Some(
        "The request to end the subscription waits for a second privileged operator to approve it; \
         until then the firm carries on."
            .into(),
    );
    Ok(tenant_page(&c, &st, notice, None).into_response())
}

/// Approve the pending request to end the subscription (a second privileged operator): the
/// subscription ends now.
pub async fn approve_end(
    State(s): State<AppState>,
    meta: crate::extract::Meta,
    UiPath(name): UiPath<String>,
    action: OperatorAction<DecideForm>,
) -> Page {
    let notice = "Approved: the subscription has ended; the firm's people are signed out and cannot sign in.";
    decide_end(s, meta, name, action, true, notice).await
}

/// Reject the pending request to end the subscription: the firm carries on.
pub async fn reject_end(
    State(s): State<AppState>,
    meta: crate::extract::Meta,
    UiPath(name): UiPath<String>,
    action: OperatorAction<DecideForm>,
) -> Page {
    decide_end(s, meta, name, action, false, "Rejected: the subscription stays active.").await
}

async fn decide_end(
    s: AppState,
    crate::extract::Meta(meta): crate::extract::Meta,
    name: String,
    OperatorAction { caller: c, form }: OperatorAction<DecideForm>,
    approve: bool,
    notice: &str,
) -> Page {
    let st = s.portal.subscription_status(&c.op, &name).await?;
    let id = match st.pending_end.as_ref() {
        Some(p) if p.id.to_string() == form.approval => p.id,
        _ => {
            let error = Some("That request is no longer pending; here is where the subscription stands.".into());
            return Ok((StatusCode::CONFLICT, tenant_page(&c, &st, None, error)).into_response());
        }
    };
    s.portal.decide_platform_action(&c.op, id, approve, &meta).await?;
    let st = s.portal.subscription_status(&c.op, &name).await?;
    Ok(tenant_page(&c, &st, Some(notice.into()), None).into_response())
}

pub async fn reactivate(
    State(s): State<AppState>,
    crate::extract::Meta(meta): crate::extract::Meta,
    UiPath(name): UiPath<String>,
    OperatorAction { caller: c, .. }: OperatorAction<CsrfOnly>,
) -> Page {
    let st = s.portal.reactivate_subscription(&c.op, &name, &meta).await?;
    let notice = Some("The subscription is active again, with nothing lost.".into());
    Ok(tenant_page(&c, &st, notice, None).into_response())
}
