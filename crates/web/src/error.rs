//! The one place where domain errors become HTTP statuses. API callers get
//! `{"error": code, "message": sentence}`; browsers get an HTML page. Internal detail is logged
//! with the request id and never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::Error;
use serde::Serialize;

/// The status for a domain error.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::InvalidCredentials | Error::Unauthenticated | Error::SecondFactorRequired(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_)
        | Error::Csrf
        | Error::StepUpRequired
        | Error::EnrolmentRequired
        | Error::SourceBlocked { .. }
        | Error::AccountProtected
        | Error::DownloadsPaused
        | Error::SubscriptionEnded => StatusCode::FORBIDDEN,
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Conflict(_) | Error::WrongState(_) => StatusCode::CONFLICT,
        Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        Error::LinkExpired | Error::RequestExpired => StatusCode::GONE,
        Error::UploadInterrupted(_) => StatusCode::BAD_REQUEST,
        Error::Timeout => StatusCode::REQUEST_TIMEOUT,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Refused(_) => StatusCode::BAD_REQUEST,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::UnsupportedFileType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::DlpRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::DownloadCapReached => StatusCode::TOO_MANY_REQUESTS,
        Error::Integrity(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn log(e: &Error) {
    match e {
        Error::Internal(detail) => tracing::error!(%detail, "request failed"),
        Error::Integrity(detail) => tracing::error!(%detail, "integrity check failed"),
        _ => {}
    }
}

/// The JSON error body of the API contract.
#[derive(Serialize, utoipa::ToSchema, Debug)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error: &'static str,
    /// A sentence for humans.
    pub message: String,
    /// With `second_factor_required`, for a user with passkeys: a challenge to answer with
    /// `navigator.credentials.get` and send back as `passkey` with the next try.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub passkey: Option<portcullis_core::authn::webauthn::PasskeyChallenge>,
    /// With `unsupported_file_type`: the type the content turned out to be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<&'static str>,
    /// With `unsupported_file_type`: the types the firm accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<&'static str>>,
}

/// The code of the domain error a response answers, for the intrusion gate to count.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        log(&self.0);
        let passkey = match &self.0 {
            Error::SecondFactorRequired(Some(ch)) => Some((**ch).clone()),
            _ => None,
        };
        let (detected, allowed) = match &self.0 {
            Error::UnsupportedFileType { detected, allowed } => (Some(*detected), Some(allowed.clone())),
            _ => (None, None),
        };
        let body = ErrorBody { error: self.0.code(), message: self.0.public_message(), passkey, detected, allowed };
        let mut resp = (status(&self.0), Json(body)).into_response();
        retry_after(&self.0, &mut resp);
        resp.extensions_mut().insert(ErrorCode(self.0.code()));
        if let Error::RangeNotSatisfiable { size } = self.0
            && let Ok(v) = format!("bytes */{size}").parse()
        {
            resp.headers_mut().insert(axum::http::header::CONTENT_RANGE, v);
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let e = match r {
            JsonRejection::MissingJsonContentType(_) => {
                Error::invalid("content-type", "send the body as application/json")
            }
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::TooLarge { limit: 0 }
            }
            JsonRejection::BytesRejection(_) => Error::invalid("body", "the body could not be read"),
            other => Error::invalid("body", other.body_text()),
        };
        Self(e)
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        // A malformed id names nothing.
        Self(Error::NotFound)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self(Error::invalid("query", r.body_text()))
    }
}

/// An error answered as an HTML page.
#[derive(Debug)]
pub struct UiError(pub Error);

impl From<Error> for UiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<PathRejection> for UiError {
    fn from(_: PathRejection) -> Self {
        Self(Error::NotFound)
    }
}

impl From<axum::extract::rejection::FormRejection> for UiError {
    fn from(r: axum::extract::rejection::FormRejection) -> Self {
        Self(Error::invalid("form", r.body_text()))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        log(&self.0);
        // Some refusals are a step the user can take: send them to it.
        match self.0 {
            // A page without a valid session goes to the sign-in form; the answer still carries
            // its code, so made-up session cookies count toward scan detection like API 401s.
            Error::Unauthenticated => {
                let mut resp = axum::response::Redirect::to("/login").into_response();
                resp.extensions_mut().insert(ErrorCode(Error::Unauthenticated.code()));
                return resp;
            }
            Error::EnrolmentRequired => return axum::response::Redirect::to("/account/security").into_response(),
            Error::StepUpRequired => return axum::response::Redirect::to("/account/step-up").into_response(),
            _ => {}
        }
        let page = crate::ui::ErrorPage { status: status(&self.0).as_u16(), message: self.0.public_message() };
        let mut resp = (status(&self.0), page).into_response();
        retry_after(&self.0, &mut resp);
        resp.extensions_mut().insert(ErrorCode(self.0.code()));
        resp
    }
}

/// `Retry-After` on refusals that pass with time.
fn retry_after(e: &Error, resp: &mut Response) {
    if let Error::RateLimited { retry_after_secs: s } | Error::Overloaded { retry_after_secs: s } = e {
        resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(*s));
    }
}
