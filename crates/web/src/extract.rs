//! Extractors: who is calling (session cookie or bearer token, with CSRF on state changes), where
//! the request came from, and body/path/query parsers whose failures use the API's error shape.

use crate::AppState;
use crate::error::{ApiError, UiError};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::AppendHeaders;
use portcullis_core::Error;
use portcullis_core::audit::RequestMeta;
use portcullis_core::authn::device::DeviceSecret;
use portcullis_core::authn::secret;
use portcullis_core::policy::{Principal, Via};
use portcullis_core::service::LoginOutcome;
use std::net::SocketAddr;

/// The header a cookie-authenticated API call must echo the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// JSON body whose rejection is an API error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters; a malformed id is a 404.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters whose rejection is an API error.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters for pages; a malformed id is the 404 page.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(UiError))]
pub struct UiPath<T>(pub T);

/// Form body for pages.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(UiError))]
pub struct UiForm<T>(pub T);

/// Where the request came from, for the audit trail.
#[derive(Debug, Clone)]
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta(request_meta(&parts.headers, &parts.extensions)))
    }
}

/// The audit metadata of a request. The IP is the one [`crate::protect::client_ip`] worked out
/// (the TCP peer, or what a trusted proxy says); the bare peer only where that layer did not run.
pub fn request_meta(headers: &axum::http::HeaderMap, ext: &axum::http::Extensions) -> RequestMeta {
    let ip = match ext.get::<crate::protect::ClientIp>() {
        Some(c) => Some(c.0.to_string()),
        None => ext.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip().to_string()),
    };
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect());
    RequestMeta { ip, request_id, user_agent }
}

/// The value of the session cookie, if sent.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, crate::SESSION_COOKIE)
}

/// The value of the cookie `name`, if sent.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The browser's device cookie, if it sent one of the shape the portal makes (anything else
/// counts as none: the browser is new).
#[derive(Debug)]
pub struct DeviceCookie(pub Option<DeviceSecret>);

/// The device cookie of a request, if it has the shape the portal makes.
pub fn device_cookie(headers: &axum::http::HeaderMap) -> Option<DeviceSecret> {
    cookie(headers, crate::DEVICE_COOKIE).and_then(|v| DeviceSecret::from_cookie(&v))
}

impl<S: Send + Sync> FromRequestParts<S> for DeviceCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(device_cookie(&parts.headers)))
    }
}

/// How long a browser keeps the device cookie: 400 days, the most browsers allow. Each sign-in
/// sets it again, so a browser in use never forgets it.
const DEVICE_COOKIE_SECS: u64 = 400 * 24 * 60 * 60;

/// The `Set-Cookie` value that gives a browser its device cookie.
pub fn set_device_cookie(device: &DeviceSecret) -> String {
    format!(
        "{}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={DEVICE_COOKIE_SECS}",
        crate::DEVICE_COOKIE,
        device.expose()
    )
}

/// The headers a successful sign-in answers with: the new session's cookie and the device
/// cookie (new, or the known one again to renew its lifetime).
pub fn login_cookies(out: &LoginOutcome) -> AppendHeaders<[(header::HeaderName, String); 2]> {
    AppendHeaders([
        (header::SET_COOKIE, set_session_cookie(&out.session_secret)),
        (header::SET_COOKIE, set_device_cookie(&out.device.secret)),
    ])
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The caller of an API endpoint: a bearer token, or a browser session that echoes its CSRF
/// token in `X-CSRF-Token` on every state-changing call.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Principal);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(Error::Unauthenticated)?;
            let p = state.portal.authenticate_token(token.trim()).await?;
            crate::observe::identify(&p);
            state.guards.caller(p.user_id, p.tenant_id)?;
            return Ok(Self(p));
        }
        let cookie = session_cookie(&parts.headers).ok_or(Error::Unauthenticated)?;
        let p = state.portal.authenticate_session(&cookie).await?;
        crate::observe::identify(&p);
        state.guards.caller(p.user_id, p.tenant_id)?;
        if !is_safe(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            check_csrf(&p, sent)?;
        }
        Ok(Self(p))
    }
}

/// A platform operator, by bearer token (`pco_…`). Operators have no sessions and no tenant:
/// this extractor is the only way into the platform API, and never yields a tenant principal.
#[derive(Debug)]
pub struct OperatorCaller(pub portcullis_core::policy::OperatorPrincipal);

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let auth = parts.headers.get(header::AUTHORIZATION).ok_or(Error::Unauthenticated)?;
        let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(Error::Unauthenticated)?;
        let op = state.portal.authenticate_operator(token.trim()).await?;
        crate::observe::identify_operator(op.operator.id);
        state.guards.operator(op.operator.id)?;
        Ok(Self(op))
    }
}

/// Compare a submitted CSRF token with the session's, in constant time.
pub fn check_csrf(p: &Principal, sent: &str) -> Result<(), Error> {
    match &p.via {
        Via::Session { csrf_token, .. } if !sent.is_empty() && secret::equal(csrf_token, sent) => Ok(()),
        Via::Session { .. } => Err(Error::Csrf),
        _ => Ok(()),
    }
}

/// The signed-in user of a page. Without a valid session, pages redirect to the sign-in form.
/// Forms check CSRF themselves (the token travels in the body).
#[derive(Clone)]
pub struct UiCaller {
    pub principal: Principal,
    pub cookie: String,
    /// Breach notices to show on every page (owners and admins; empty for everyone else).
    pub breach_notices: Vec<portcullis_core::incidents::BreachNotice>,
}

impl std::fmt::Debug for UiCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiCaller")
            .field("principal", &self.principal)
            .field("cookie", &"REDACTED")
            .field("breach_notices", &self.breach_notices.len())
            .finish()
    }
}

impl UiCaller {
    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> &str {
        match &self.principal.via {
            Via::Session { csrf_token, .. } => csrf_token,
            _ => "",
        }
    }
}

impl FromRequestParts<AppState> for UiCaller {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let cookie = session_cookie(&parts.headers).ok_or(Error::Unauthenticated)?;
        let principal = state.portal.authenticate_session(&cookie).await?;
        crate::observe::identify(&principal);
        state.guards.caller(principal.user_id, principal.tenant_id)?;
        let breach_notices = match state.portal.breach_notices(&principal).await {
            Ok(n) => n,
            // Not theirs to see, or not yet (a second factor to enrol first): no banner.
            Err(Error::Forbidden(_) | Error::EnrolmentRequired | Error::StepUpRequired) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self { principal, cookie, breach_notices })
    }
}

/// The `Set-Cookie` value that starts a session. No `Max-Age`: the cookie dies with the browser,
/// and the server enforces idle and absolute timeouts whatever the browser keeps.
pub fn set_session_cookie(secret: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    format!("{}={}; Path=/; Secure; HttpOnly; SameSite=Strict", crate::SESSION_COOKIE, secret.expose_secret())
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_session_cookie() -> String {
    format!("{}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", crate::SESSION_COOKIE)
}

/// A form a signed-in user posts: it names its CSRF field and how it is decoded.
pub trait CsrfForm: Sized {
    fn csrf(&self) -> &str;
    fn parse(body: &str) -> Result<Self, Error>;
}

/// Implement [`CsrfForm`] for plain serde forms with a `csrf` field.
macro_rules! csrf_forms {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::extract::CsrfForm for $t {
            fn csrf(&self) -> &str {
                &self.csrf
            }
            fn parse(body: &str) -> Result<Self, portcullis_core::Error> {
                serde_urlencoded::from_str(body)
                    .map_err(|e| portcullis_core::Error::invalid("form", e.to_string()))
            }
        }
    )*};
}
pub(crate) use csrf_forms;

/// A signed-in user's form post whose CSRF token has already been checked: a handler that takes
/// this cannot forget the check.
#[derive(Debug)]
pub struct UiAction<T> {
    pub caller: UiCaller,
    pub form: T,
}

impl<T: CsrfForm + Send> FromRequest<AppState> for UiAction<T> {
    type Rejection = UiError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = UiCaller::from_request_parts(&mut parts, state).await?;
        let body = String::from_request(axum::extract::Request::from_parts(parts, body), state)
            .await
            .map_err(|_| Error::invalid("form", "the form could not be read or is too large"))?;
        let form = T::parse(&body)?;
        check_csrf(&caller.principal, form.csrf())?;
        Ok(Self { caller, form })
    }
}
