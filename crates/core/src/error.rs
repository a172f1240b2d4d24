//! The one domain error. Each variant has a stable code that clients can rely on; the HTTP
//! status is chosen in the web crate's error mapping, nowhere else. `Internal` carries detail for
//! the log only: it never reaches a client.

use std::borrow::Cow;

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist *or the caller may not know it exists*. Another tenant's object
    /// is reported exactly like a missing one.
    #[error("not found")]
    NotFound,
    /// Unknown tenant, unknown user and wrong password all map here, indistinguishably.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right, but the account has a second factor and no valid code came
    /// with it (missing, wrong, or already used). When the user has passkeys, a fresh challenge
    /// for them comes with the answer.
    #[error("second factor required")]
    SecondFactorRequired(Option<Box<crate::authn::webauthn::PasskeyChallenge>>),
    /// A sensitive action needs a second-factor check within the last few minutes.
    #[error("step-up required")]
    StepUpRequired,
    /// The firm requires a second factor and this user has none yet.
    #[error("two-factor enrolment required")]
    EnrolmentRequired,
    /// An approval request past its expiry.
    #[error("request expired")]
    RequestExpired,
    /// No valid session or token.
    #[error("authentication required")]
    Unauthenticated,
    /// Known to the caller, but the caller's role or token scope does not allow the action.
    #[error("forbidden: {0}")]
    Forbidden(Cow<'static, str>),
    /// Input rejected; the message says what to fix.
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: Cow<'static, str> },
    /// The object already exists (duplicate email, reference, tenant name).
    #[error("conflict: {0}")]
    Conflict(Cow<'static, str>),
    /// A body or upload larger than allowed.
    #[error("too large: the limit is {limit} bytes")]
    TooLarge { limit: u64 },
    /// A byte range outside the document.
    #[error("range not satisfiable for size {size}")]
    RangeNotSatisfiable { size: u64 },
    /// The client stopped sending an upload part-way (connection closed or body malformed).
    #[error("upload interrupted: {0}")]
    UploadInterrupted(String),
    /// The client went quiet for too long.
    #[error("timed out")]
    Timeout,
    /// Too many requests from one source, account or firm; try again after this many seconds.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// The server is at its limit of requests in progress; try again after this many seconds.
    #[error("overloaded")]
    Overloaded { retry_after_secs: u64 },
    /// The request filter refused a malformed or hostile request (the rule's message).
    #[error("request refused: {0}")]
    Refused(&'static str),
    /// The method is not accepted for this address.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body's content type is not accepted for this address.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// A one-time link that is unknown, used or expired.
    #[error("link expired or already used")]
    LinkExpired,
    /// The CSRF token was missing or wrong.
    #[error("csrf token missing or invalid")]
    Csrf,
    /// An upload whose real type (from its content) is not on the firm's allow-list.
    #[error("unsupported file type: {detected}")]
    UnsupportedFileType { detected: &'static str, allowed: Vec<&'static str> },
    /// A message holding identifiers the firm's DLP policy does not let travel in messages.
    #[error("refused by the DLP policy: {0}")]
    DlpRefused(String),
    /// The caller reached the firm's daily download cap.
    #[error("daily download cap reached")]
    DownloadCapReached,
    /// Requests from this client address are blocked after an attack was detected from it,
    /// until the time given (signed-in sessions, API tokens and known devices still work).
    #[error("source blocked")]
    SourceBlocked { until: Option<time::OffsetDateTime> },
    /// The account is under attack and has no second factor: it can sign in only from a
    /// device it has used before until an admin lifts the protection.
    #[error("account protected")]
    AccountProtected,
    /// The user's downloads are paused pending an admin's review.
    #[error("downloads paused")]
    DownloadsPaused,
    /// The firm's subscription has ended (or its data is being erased): nobody of the firm
    /// signs in until an operator reactivates it.
    #[error("subscription ended")]
    SubscriptionEnded,
    /// The object is not in a state that allows this (ending an ended subscription, say); the
    /// text says what state it is in.
    #[error("wrong state: {0}")]
    WrongState(Cow<'static, str>),
    /// Stored data failed its integrity check (tampering or corruption). Never served.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// A dependency (database, blob store) failed. The detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound => "not_found",
            Error::InvalidCredentials => "invalid_credentials",
            Error::SecondFactorRequired(_) => "second_factor_required",
            Error::StepUpRequired => "step_up_required",
            Error::EnrolmentRequired => "two_factor_enrolment_required",
            Error::RequestExpired => "request_expired",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::Invalid { .. } => "invalid_request",
            Error::Conflict(_) => "conflict",
            Error::TooLarge { .. } => "too_large",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::UploadInterrupted(_) => "upload_interrupted",
            Error::Timeout => "timeout",
            Error::RateLimited { .. } => "rate_limited",
            Error::Overloaded { .. } => "overloaded",
            Error::Refused(_) => "request_refused",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::LinkExpired => "link_expired",
            Error::Csrf => "csrf_failed",
            Error::UnsupportedFileType { .. } => "unsupported_file_type",
            Error::DlpRefused(_) => "dlp_refused",
            Error::DownloadCapReached => "download_cap_reached",
            Error::SourceBlocked { .. } => "source_blocked",
            Error::AccountProtected => "account_protected",
            Error::DownloadsPaused => "downloads_paused",
            Error::SubscriptionEnded => "subscription_ended",
            Error::WrongState(_) => "wrong_state",
            Error::Integrity(_) => "integrity_error",
            Error::Internal(_) => "internal",
        }
    }

    /// The sentence a user may see. Internal detail is replaced by a generic sentence.
    pub fn public_message(&self) -> String {
        match self {
            Error::NotFound => "The requested object does not exist.".into(),
            Error::InvalidCredentials => "The tenant, email or password is not correct (after repeated failures an \
                                          account is locked for a while)."
                .into(),
            Error::SecondFactorRequired(None) => {
                "Enter a current code from your authenticator app (each code works once), or a recovery code.".into()
            }
            Error::SecondFactorRequired(Some(_)) => "Use your passkey or security key, or enter a current code from \
                                                     your authenticator app, or a recovery code."
                .into(),
            Error::StepUpRequired => "This action needs a fresh check of your second factor: confirm a code from your \
                                      authenticator app or use your passkey first."
                .into(),
            Error::EnrolmentRequired => "Your firm requires two-factor authentication: set up an authenticator app or \
                                         a passkey before anything else."
                .into(),
            Error::RequestExpired => {
                "This request expired before it was approved; make it again if it is still needed.".into()
            }
            Error::Unauthenticated => "Sign in or present a valid API token.".into(),
            Error::Forbidden(why) => format!("You are not allowed to {why}."),
            Error::Invalid { field, message } => format!("Invalid {field}: {message}."),
            Error::Conflict(what) => format!("{what} already exists."),
            Error::TooLarge { limit: 0 } => "The request body is too large.".into(),
            Error::TooLarge { limit } => format!("The request is larger than the limit of {limit} bytes."),
            Error::RangeNotSatisfiable { size } => {
                format!("The requested range is outside the document ({size} bytes).")
            }
            Error::UploadInterrupted(_) => "The upload was interrupted before it finished; nothing was stored.".into(),
            Error::RateLimited { retry_after_secs } => {
                format!("Too many requests; try again in {retry_after_secs} seconds.")
            }
            Error::Overloaded { retry_after_secs } => {
                format!("The server is busy; try again in {retry_after_secs} seconds.")
            }
            Error::Refused(why) => format!("The request was refused: {why}."),
            Error::MethodNotAllowed => "This method is not allowed here.".into(),
            Error::UnsupportedMediaType(expected) => format!("Send the body as {expected}."),
            Error::Timeout => {
                "The request took too long (the client sent nothing for too long); nothing was stored.".into()
            }
            Error::LinkExpired => "This link is unknown, expired or already used.".into(),
            Error::Csrf => "The form or request is missing a valid CSRF token; reload the page and try again.".into(),
            Error::UnsupportedFileType { detected, allowed } => format!(
                "This file is not accepted: its content is {detected}, whatever its name says. Your firm accepts {} \
                 (checked from the file's content); nothing was stored.",
                if allowed.is_empty() { "no uploads".to_owned() } else { allowed.join(", ") }
            ),
            Error::DlpRefused(what) => format!(
                "Not sent: the message holds {what}, which your firm's data loss prevention policy does not allow in \
                 messages. Upload it as a document instead, or remove it."
            ),
            Error::DownloadCapReached => "You have reached your firm's daily download limit; downloads open again at \
                                          midnight UTC, or sooner if an owner or admin lifts the limit."
                .into(),
            Error::SourceBlocked { until } => {
                let until = until
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .map(|t| format!(" until {t}"))
                    .unwrap_or_default();
                format!(
                    "Requests from your network address are blocked{until} because an attack was detected from it. \
                     Users who are already signed in, or who sign in from a device they have used before, are not \
                     affected; otherwise ask your firm's administrator or the service operator to lift the block."
                )
            }
            Error::AccountProtected => "This account is protected after an attack on it was detected: it can sign in \
                                        only from a device it has used before, and must then set up a second factor. \
                                        Ask your firm's administrator to lift the protection."
                .into(),
            Error::DownloadsPaused => "Your downloads are paused because far more was downloaded than usual; an \
                                       administrator of your firm must review and resume them. Other work goes on."
                .into(),
            Error::SubscriptionEnded => {
                "Your firm's subscription has ended, so nobody of the firm can sign in; its data \
                                         is kept. Ask the service operator to reactivate the subscription."
                    .into()
            }
            Error::WrongState(why) => format!("This cannot be done now: {why}."),
            Error::Integrity(_) => "The stored document failed its integrity check and was not served; \
                                     the incident is recorded."
                .into(),
            Error::Internal(_) => "Something went wrong on our side; the request was not carried out.".into(),
        }
    }

    /// Shorthand for an input error.
    pub fn invalid(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Error::Invalid { field, message: message.into() }
    }

    /// Shorthand for an internal error, keeping the detail for the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }
}

/// Result alias for the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;
