//! Passkeys in the pages: adding one (a two-step form whose second step the page's script
//! fills with the authenticator's answer), removing one, and reading a passkey answer from the
//! sign-in and step-up forms.

use super::pages::{CsrfOnly, Nav};
use crate::AppState;
use crate::error::UiError;
use crate::extract::{Meta, UiAction, UiPath, csrf_forms};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use portcullis_core::Error;
use portcullis_core::authn::webauthn::PasskeyChallenge;
use portcullis_core::ids::PasskeyId;
use portcullis_core::service::FactorProof;
use serde::Deserialize;

type Page = Result<Response, UiError>;

/// A challenge as a page carries it: the options go into a `data-` attribute as JSON.
pub struct PasskeyPrompt {
    pub challenge_id: String,
    pub options: String,
}

impl From<PasskeyChallenge> for PasskeyPrompt {
    fn from(c: PasskeyChallenge) -> Self {
        Self { challenge_id: c.challenge_id, options: c.options.to_string() }
    }
}

/// The second-factor fields of the sign-in and step-up forms: a typed code, or the page
/// script's answer to the passkey challenge the page carried.
#[derive(Deserialize, Default)]
pub struct FactorFields {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    passkey_challenge: Option<String>,
    #[serde(default)]
    passkey_answer: Option<String>,
}

impl FactorFields {
    /// What the form offers: the passkey answer if there is one, else the code. `Err` for an
    /// answer that is not WebAuthn JSON.
    pub fn proof(self) -> Result<Option<FactorProof>, Error> {
        let answer = self.passkey_answer.filter(|a| !a.trim().is_empty());
        if let (Some(challenge_id), Some(answer)) = (self.passkey_challenge, answer) {
            let answer = serde_json::from_str(&answer)
                .map_err(|_| Error::invalid("passkey", "the browser's answer could not be read; try again"))?;
            return Ok(Some(FactorProof::Passkey { challenge_id, answer: Box::new(answer) }));
        }
        Ok(self.code.filter(|c| !c.trim().is_empty()).map(FactorProof::Code))
    }
}

/// The script that talks to the authenticator (the CSP allows scripts from our origin only).
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/passkey.js"),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "passkey_new.html")]
pub struct NewPasskeyPage {
    nav: Nav,
    name: String,
    passkey: PasskeyPrompt,
}

#[derive(Deserialize)]
pub struct NameForm {
    csrf: String,
    name: String,
}

#[derive(Deserialize)]
pub struct AnswerForm {
    csrf: String,
    passkey_challenge: String,
    passkey_answer: String,
}

csrf_forms!(NameForm, AnswerForm);

/// Step one: a registration challenge, on a page whose script asks the authenticator.
pub async fn start(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<NameForm>,
) -> Page {
    let ch = s.portal.start_passkey_registration(&c.principal, &f.name, &meta).await?;
    Ok(NewPasskeyPage { nav: Nav::of(&c), name: f.name.trim().to_string(), passkey: ch.into() }.into_response())
}

/// Step two: the authenticator's answer.
pub async fn finish(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<AnswerForm>,
) -> Page {
    let answer = serde_json::from_str(&f.passkey_answer)
        .map_err(|_| Error::invalid("passkey", "the browser's answer could not be read; start again"))?;
    let key = s.portal.finish_passkey_registration(&c.principal, &f.passkey_challenge, &answer, &meta).await?;
    // The session may have been held to enrolment: show the navigation of a full session.
    let c = crate::extract::UiCaller { principal: s.portal.authenticate_session(&c.cookie).await?, ..c };
    let notice = format!("The passkey \u{201c}{}\u{201d} was added.", key.name);
    Ok(super::security::security_page(&s, &c, Some(notice)).await?.into_response())
}

pub async fn remove(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<PasskeyId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.remove_passkey(&c.principal, id, &meta).await?;
    Ok(super::security::security_page(&s, &c, Some("The passkey was removed.".into())).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(code: Option<&str>, challenge: Option<&str>, answer: Option<&str>) -> FactorFields {
        let s = |v: Option<&str>| v.map(str::to_string);
        FactorFields { code: s(code), passkey_challenge: s(challenge), passkey_answer: s(answer) }
    }

    #[test]
    fn a_form_sends_a_code_or_a_passkey_answer() {
        assert!(fields(None, None, None).proof().unwrap().is_none());
        assert!(fields(Some(" "), Some("c"), Some("")).proof().unwrap().is_none());
        assert!(matches!(fields(Some("123456"), None, None).proof(), Ok(Some(FactorProof::Code(_)))));
        let bad = fields(Some("123456"), Some("c"), Some("{not json")).proof();
        assert!(matches!(bad, Err(Error::Invalid { field: "passkey", .. })));
        // The flattened fields arrive from a urlencoded form like any other.
        let f: FactorFields = serde_urlencoded::from_str("code=123456&passkey_answer=").unwrap();
        assert!(matches!(f.proof(), Ok(Some(FactorProof::Code(_)))));
    }
}
