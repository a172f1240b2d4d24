//! The intrusion gate: refuses requests from a blocked source address unless they carry a valid
//! session or token (or, signing in, a device cookie the sign-in will check is known for the
//! account), and tells the core of every answer so it can see enumeration scans and repeated
//! CSRF failures. The decision is the policy's (`policy::passes_source_block`); see
//! docs/security.md, "Intrusion and anomaly detection".

use crate::AppState;
use crate::error::{ApiError, ErrorCode, UiError};
use crate::extract::{Meta, session_cookie};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::policy::{self, SourceCredential};

/// Paths a blocked address may still reach: the probes.
const OPEN: &[&str] = &["/healthz", "/readyz"];

/// Is this a sign-in (JSON or form)?
fn is_sign_in(req: &Request) -> bool {
    req.method() == Method::POST && matches!(req.uri().path(), "/api/v1/session" | "/login")
}

/// What the request carries that may let it through a block.
async fn credential(s: &AppState, headers: axum::http::HeaderMap, sign_in: bool) -> SourceCredential {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers = headers;
    if let Some(token) =
        parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        let token = token.trim();
        let ok =
            s.portal.authenticate_token(token).await.is_ok() || s.portal.authenticate_operator(token).await.is_ok();
        return if ok { SourceCredential::Authenticated } else { SourceCredential::None };
    }
    if let Some(cookie) = session_cookie(&parts.headers)
        && s.portal.authenticate_session(&cookie).await.is_ok()
    {
        return SourceCredential::Authenticated;
    }
    // A sign-in with a device cookie goes on to the sign-in itself, which lets it through only
    // if the device is known for the account signing in.
    if sign_in && crate::extract::device_cookie(&parts.headers).is_some() {
        return SourceCredential::KnownDevice;
    }
    SourceCredential::None
}

/// Middleware: the gate, then the count.
pub async fn guard(State(s): State<AppState>, Meta(meta): Meta, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let refuse = |e: portcullis_core::Error| if api { ApiError(e).into_response() } else { UiError(e).into_response() };
    let (open, sign_in) = (OPEN.contains(&req.uri().path()), is_sign_in(&req));
    if !open {
        match s.portal.source_block(meta.ip.as_deref()).await {
            Ok(None) => {}
            Ok(Some(block)) => {
                if let Err(e) =
                    policy::passes_source_block(Some(&block), credential(&s, req.headers().clone(), sign_in).await)
                {
                    return refuse(e);
                }
            }
            // Fail closed: without knowing whether the address is blocked, nothing is served.
            Err(e) => return refuse(e),
        }
    }
    let had_session = session_cookie(req.headers()).is_some();
    let resp = next.run(req).await;
    let code = resp.extensions().get::<ErrorCode>().map(|c| c.0);
    // A page answers a session cookie that is not valid with a redirect to the sign-in form:
    // counted as the 401 it is, so made-up cookies cannot probe pages uncounted.
    let status = match code {
        Some("unauthenticated") if had_session => 401,
        _ => resp.status().as_u16(),
    };
    if let Err(e) = s.portal.note_answer(&meta, status, code).await {
        tracing::warn!(error = %e, "intrusion detection could not count an answer");
    }
    resp
}
