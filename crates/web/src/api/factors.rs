//! Second factors: the caller's security state, authenticator-app enrolment, passkeys, step-up,
//! and the firm's two-factor requirement. Browser sessions only: API tokens can never change how their
//! owner signs in.

use super::dto::*;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;

/// The caller's second-factor state.
#[utoipa::path(get, path = "/api/v1/me/security", tag = "two-factor", responses((status = 200, body = SecurityView)))]
pub async fn status(State(s): State<AppState>, ApiCaller(p): ApiCaller) -> Result<Json<SecurityView>, ApiError> {
    let st = s.portal.security_status(&p).await?;
    Ok(Json(SecurityView {
        totp_enabled: st.totp_enabled,
        passkeys: st.passkeys,
        enrolment_pending: st.enrolment_pending,
        recovery_codes_left: st.recovery_codes_left,
        two_factor_required: st.two_factor_required,
        second_factor_verified_at: st.verified_at.map(ts),
    }))
}

/// Start adding an authenticator app (replacing one needs a recent step-up). Confirm it with a
/// first code; until then the current factor, if any, stays in force.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "two-factor",
    responses((status = 201, body = TotpEnrolmentView), (status = 403, body = crate::error::ErrorBody, description = "step_up_required")))]
pub async fn start(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
) -> Result<(StatusCode, Json<TotpEnrolmentView>), ApiError> {
    let e = s.portal.start_totp_enrolment(&p, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolmentView {
            secret: e.secret.expose_secret().to_string(),
            otpauth_url: e.otpauth_url.expose_secret().to_string(),
            qr_svg: e.qr_svg.expose_secret().to_string(),
        }),
    ))
}

/// Confirm the enrolment with a current code. Answers the ten recovery codes, once.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "two-factor", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodesView), (status = 400, body = crate::error::ErrorBody, description = "wrong code or no enrolment waiting")))]
pub async fn confirm(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodesView>, ApiError> {
    let codes = s.portal.confirm_totp_enrolment(&p, &req.code, &meta).await?;
    Ok(Json(RecoveryCodesView { recovery_codes: codes.iter().map(|c| c.expose_secret().to_string()).collect() }))
}

/// Remove the authenticator app and recovery codes (needs a recent step-up; refused while the
/// firm requires a second factor).
#[utoipa::path(delete, path = "/api/v1/me/totp", tag = "two-factor", responses((status = 204)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
) -> Result<StatusCode, ApiError> {
    s.portal.remove_totp(&p, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a second factor again, so sensitive actions are allowed for the next 10 minutes: a
/// code, or a passkey's answer to a challenge from `POST /api/v1/session/step-up/passkey`.
#[utoipa::path(post, path = "/api/v1/session/step-up", tag = "two-factor", request_body = StepUpRequest,
    responses((status = 200, body = StepUpView), (status = 401, body = crate::error::ErrorBody, description = "second_factor_required: the code was wrong or used, or the passkey's answer was not valid")))]
pub async fn step_up(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<StepUpRequest>,
) -> Result<Json<StepUpView>, ApiError> {
    let proof = factor_proof(req.code, req.passkey)
        .ok_or_else(|| portcullis_core::Error::invalid("body", "send a code or a passkey answer"))?;
    let used = s.portal.step_up(&p, &proof, &meta).await?;
    Ok(Json(StepUpView { factor: used.as_str().to_string() }))
}

/// A challenge for a step-up with a passkey.
#[utoipa::path(post, path = "/api/v1/session/step-up/passkey", tag = "two-factor",
    responses((status = 200, body = PasskeyChallengeView), (status = 400, body = crate::error::ErrorBody, description = "no passkey registered, or passkeys are off on this server")))]
pub async fn step_up_challenge(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<PasskeyChallengeView>, ApiError> {
    Ok(Json(s.portal.start_passkey_step_up(&p).await?.into()))
}

/// The caller's passkeys and security keys.
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "two-factor", responses((status = 200, body = Items<PasskeyView>)))]
pub async fn list_passkeys(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<Items<PasskeyView>>, ApiError> {
    let keys = s.portal.list_passkeys(&p).await?;
    Ok(Json(Items { items: keys.iter().map(PasskeyView::from).collect() }))
}

/// Start registering a passkey or security key (needs a recent step-up if you have a second
/// factor already). Answer the challenge with `navigator.credentials.create` and send the
/// result to `POST /api/v1/me/passkeys`.
#[utoipa::path(post, path = "/api/v1/me/passkeys/challenge", tag = "two-factor", request_body = PasskeyStart,
    responses((status = 200, body = PasskeyChallengeView), (status = 403, body = crate::error::ErrorBody, description = "step_up_required")))]
pub async fn passkey_challenge(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasskeyStart>,
) -> Result<Json<PasskeyChallengeView>, ApiError> {
    Ok(Json(s.portal.start_passkey_registration(&p, &req.name, &meta).await?.into()))
}

/// Finish registering a passkey or security key with the browser's answer.
#[utoipa::path(post, path = "/api/v1/me/passkeys", tag = "two-factor", request_body = PasskeyFinish,
    responses((status = 201, body = PasskeyView), (status = 400, body = crate::error::ErrorBody, description = "the answer was not accepted, or the challenge is unknown or expired")))]
pub async fn add_passkey(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<PasskeyFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let key = s.portal.finish_passkey_registration(&p, &req.challenge_id, &req.credential, &meta).await?;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(&key))))
}

/// Remove a passkey (needs a recent step-up; refused for the last factor while the firm
/// requires one).
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "two-factor", responses((status = 204)))]
pub async fn remove_passkey(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<portcullis_core::ids::PasskeyId>,
) -> Result<StatusCode, ApiError> {
    s.portal.remove_passkey(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set the firm's two-factor requirement (owner or admin, with a recent step-up). Users it
/// newly covers must enrol at their next sign-in. Tightening it answers 204; lowering it
/// answers 202 with a request a second owner or admin must approve.
#[utoipa::path(put, path = "/api/v1/tenant/two-factor", tag = "two-factor", request_body = TwoFactorPolicy,
    responses((status = 204), (status = 202, body = ApprovalView), (status = 403, body = crate::error::ErrorBody, description = "forbidden or step_up_required")))]
pub async fn set_policy(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<TwoFactorPolicy>,
) -> Result<axum::response::Response, ApiError> {
    let change = s.portal.set_two_factor_policy(&p, req.staff, req.clients, &meta).await?;
    Ok(super::approvals::change_response(&s.portal, change))
}
