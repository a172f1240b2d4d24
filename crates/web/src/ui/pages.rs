//! The pages and the forms they post.

use crate::AppState;
use crate::api::dto::ts;
use crate::error::UiError;
use crate::extract::{
    CsrfForm, DeviceCookie, Meta, UiAction, UiCaller, UiForm, UiPath, check_csrf, clear_session_cookie, csrf_forms,
    login_cookies,
};
use crate::streams;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use portcullis_core::Error;
use portcullis_core::audit::RequestMeta;
use portcullis_core::audit::search::SearchInput;
use portcullis_core::ids::{DocumentId, MatterId, TokenId, UserId};
use portcullis_core::model::{Document, Matter, MatterMember, Message};
use portcullis_core::policy::{Permission, role_allows, usable_scopes};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

type Page = Result<Response, UiError>;

/// What the navigation bar shows.
pub struct Nav {
    pub(super) email: String,
    pub(super) role: &'static str,
    pub(super) csrf: String,
    pub(super) can_manage_users: bool,
    pub(super) can_list_matters: bool,
    pub(super) can_read_audit: bool,
    pub(super) can_decide: bool,
    /// (reference, when told, documents, matters) of each breach notice to show.
    pub(super) breaches: Vec<(String, String, usize, usize)>,
}

impl Nav {
    pub(super) fn of(c: &UiCaller) -> Self {
        Self {
            email: c.principal.email.clone(),
            role: c.principal.role.as_str(),
            csrf: c.csrf().to_string(),
            can_manage_users: role_allows(c.principal.role, Permission::ListUsers),
            can_list_matters: role_allows(c.principal.role, Permission::ListMatters),
            can_read_audit: role_allows(c.principal.role, Permission::ReadAudit),
            can_decide: role_allows(c.principal.role, Permission::DecideApprovals),
            breaches: c
                .breach_notices
                .iter()
                .map(|n| (n.reference.clone(), ts(n.notified_at), n.affected.documents.len(), n.affected.matters.len()))
                .collect(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
}

pub async fn not_found() -> UiError {
    UiError(Error::NotFound)
}

pub async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.css"),
    )
}

/// Each role's start page: auditors see no matters, only the audit log.
pub async fn home(c: UiCaller) -> Redirect {
    if role_allows(c.principal.role, Permission::ListMatters) {
        Redirect::to("/matters")
    } else {
        Redirect::to("/audit")
    }
}

/// A CSRF-carrying form body.
#[derive(Deserialize)]
pub struct CsrfOnly {
    pub(super) csrf: String,
}

csrf_forms!(CsrfOnly, MatterForm, MemberForm, MessageForm);

#[derive(Template, WebTemplate, Default)]
#[template(path = "login.html")]
pub struct LoginPage {
    error: Option<String>,
    tenant: String,
    email: String,
    /// The password was right and the account has a second factor: ask for its code.
    ask_code: bool,
    /// ... or for an answer from one of the user's passkeys.
    passkey: Option<super::passkeys::PasskeyPrompt>,
}

pub async fn login_form() -> LoginPage {
    LoginPage::default()
}

#[derive(Deserialize)]
pub struct LoginForm {
    tenant: String,
    email: String,
    password: String,
    /// Sent once the page has asked for a second factor.
    #[serde(flatten)]
    factor: super::passkeys::FactorFields,
}

pub async fn login(
    State(s): State<AppState>,
    Meta(meta): Meta,
    DeviceCookie(device): DeviceCookie,
    UiForm(f): UiForm<LoginForm>,
) -> Page {
    s.guards.sign_in(&f.tenant, &f.email, meta.ip.as_deref())?;
    let proof = f.factor.proof()?;
    let pw = SecretString::from(f.password);
    match s.portal.login(&f.tenant, &f.email, pw, proof.as_ref(), device.as_ref(), &meta).await {
        Ok(out) => Ok((login_cookies(&out), Redirect::to("/")).into_response()),
        Err(e @ (Error::InvalidCredentials | Error::SecondFactorRequired(_))) => {
            let message = Some(e.public_message());
            let (ask_code, passkey) = match e {
                Error::SecondFactorRequired(ch) => (true, ch.map(|c| (*c).into())),
                _ => (false, None),
            };
            let page = LoginPage { error: message, tenant: f.tenant, email: f.email, ask_code, passkey };
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.logout(&c.principal, &c.cookie, &meta).await?;
    Ok(([(header::SET_COOKIE, clear_session_cookie())], Redirect::to("/login")).into_response())
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "setup.html")]
pub struct SetupPage {
    error: Option<String>,
    tenant: String,
    display_name: String,
    email: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "done.html")]
pub struct DonePage {
    heading: &'static str,
    message: String,
}

pub async fn setup_form(State(s): State<AppState>, UiPath(token): UiPath<String>) -> Page {
    let info = s.portal.link_info(&token).await?;
    if info.purpose != portcullis_core::model::LinkPurpose::Bootstrap {
        return Err(Error::LinkExpired.into());
    }
    Ok(SetupPage::default().into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    tenant: String,
    display_name: String,
    email: String,
    password: String,
}

pub async fn setup(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(token): UiPath<String>,
    UiForm(f): UiForm<SetupForm>,
) -> Page {
    let r =
        s.portal.bootstrap(&token, &f.tenant, &f.display_name, &f.email, SecretString::from(f.password), &meta).await;
    match r {
        Ok(_) => Ok(DonePage {
            heading: "Portcullis is set up",
            message: format!("The firm {} and its owner {} were created. Sign in to start.", f.tenant, f.email),
        }
        .into_response()),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => Ok((
            crate::error::status(&e),
            SetupPage {
                error: Some(e.public_message()),
                tenant: f.tenant,
                display_name: f.display_name,
                email: f.email,
            },
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "invite.html")]
pub struct InvitePage {
    error: Option<String>,
    email: String,
    tenant: String,
}

pub async fn invite_form(State(s): State<AppState>, UiPath(token): UiPath<String>) -> Page {
    let info = s.portal.link_info(&token).await?;
    if info.purpose != portcullis_core::model::LinkPurpose::SetPassword {
        return Err(Error::LinkExpired.into());
    }
    Ok(InvitePage { error: None, email: info.email.unwrap_or_default(), tenant: info.tenant_name.unwrap_or_default() }
        .into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn invite(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(token): UiPath<String>,
    UiForm(f): UiForm<PasswordForm>,
) -> Page {
    let info = s.portal.link_info(&token).await?;
    match s.portal.accept_invite(&token, SecretString::from(f.password), &meta).await {
        Ok(()) => Ok(DonePage {
            heading: "Password set",
            message: format!(
                "Sign in with firm {} and email {}.",
                info.tenant_name.unwrap_or_default(),
                info.email.unwrap_or_default()
            ),
        }
        .into_response()),
        Err(e @ Error::Invalid { .. }) => Ok((
            StatusCode::BAD_REQUEST,
            InvitePage {
                error: Some(e.public_message()),
                email: info.email.unwrap_or_default(),
                tenant: info.tenant_name.unwrap_or_default(),
            },
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// A matter row for templates.
pub struct MatterRow {
    id: String,
    reference: String,
    title: String,
    created_at: String,
}

impl From<&Matter> for MatterRow {
    fn from(m: &Matter) -> Self {
        Self {
            id: m.id.to_string(),
            reference: m.reference.clone(),
            title: m.title.clone(),
            created_at: ts(m.created_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "matters.html")]
pub struct MattersPage {
    nav: Nav,
    matters: Vec<MatterRow>,
    can_create: bool,
}

pub async fn matters(State(s): State<AppState>, c: UiCaller, Meta(meta): Meta) -> Page {
    let matters = s.portal.list_matters(&c.principal, &meta).await?.iter().map(MatterRow::from).collect();
    Ok(MattersPage { can_create: role_allows(c.principal.role, Permission::CreateMatter), nav: Nav::of(&c), matters }
        .into_response())
}

#[derive(Deserialize)]
pub struct MatterForm {
    csrf: String,
    reference: String,
    title: String,
    /// A ticked checkbox sends `restricted=on`; an unticked one sends nothing.
    #[serde(default)]
    restricted: Option<String>,
}

pub async fn create_matter(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<MatterForm>,
) -> Page {
    let m = s.portal.create_matter(&c.principal, &f.reference, &f.title, f.restricted.is_some(), &meta).await?;
    Ok(Redirect::to(&format!("/matters/{}", m.id)).into_response())
}

pub struct DocRow {
    id: String,
    name: String,
    size: u64,
    created_at: String,
}

impl From<&Document> for DocRow {
    fn from(d: &Document) -> Self {
        Self { id: d.id.to_string(), name: d.name.clone(), size: d.size, created_at: ts(d.created_at) }
    }
}

pub struct MessageRow {
    author_name: String,
    body: String,
    created_at: String,
}

impl From<&Message> for MessageRow {
    fn from(m: &Message) -> Self {
        Self { author_name: m.author_name.clone(), body: m.body.clone(), created_at: ts(m.created_at) }
    }
}

pub struct MemberRow {
    user_id: String,
    display_name: String,
    email: String,
    role: &'static str,
}

impl From<&MatterMember> for MemberRow {
    fn from(m: &MatterMember) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            display_name: m.display_name.clone(),
            email: m.email.clone(),
            role: m.role.as_str(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "matter.html")]
pub struct MatterPage {
    nav: Nav,
    matter: MatterRow,
    documents: Vec<DocRow>,
    messages: Vec<MessageRow>,
    /// `None` for callers who may not see the list.
    members: Option<Vec<MemberRow>>,
    can_manage_members: bool,
    invite_url: Option<String>,
    notice: Option<String>,
    /// Why the last change on this page was refused.
    error: Option<String>,
    /// The add-member form as typed (kept when it was refused).
    member_email: String,
    member_role: String,
}

/// What the matter page shows besides the matter itself.
#[derive(Default)]
struct MatterShown {
    invite_url: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    member_email: String,
    member_role: String,
}

/// The matter's page. Each part is read through its use case, which audits the read
/// (`matter.view`, `document.list`, `message.read`, `matter.member_list`).
async fn matter_page(
    s: &AppState,
    c: &UiCaller,
    id: MatterId,
    shown: MatterShown,
    meta: &RequestMeta,
) -> Result<MatterPage, UiError> {
    let p = &c.principal;
    let matter = s.portal.matter(p, id, meta).await?;
    Ok(MatterPage {
        nav: Nav::of(c),
        matter: MatterRow::from(&matter),
        documents: s.portal.list_documents(p, id, meta).await?.iter().map(DocRow::from).collect(),
        messages: s.portal.list_messages(p, id, meta).await?.iter().map(MessageRow::from).collect(),
        members: if role_allows(p.role, Permission::ListMembers) {
            Some(s.portal.list_members(p, id, meta).await?.iter().map(MemberRow::from).collect())
        } else {
            None
        },
        can_manage_members: role_allows(p.role, Permission::ManageMembers),
        invite_url: shown.invite_url,
        notice: shown.notice,
        error: shown.error,
        member_email: shown.member_email,
        member_role: if shown.member_role.is_empty() { "client".into() } else { shown.member_role },
    })
}

/// A refused change on the matter page: a refusal the person can read is shown on the page
/// (with what they typed kept); a matter they cannot see, or anything else, is the error page.
async fn matter_refused(
    s: &AppState,
    c: &UiCaller,
    id: MatterId,
    e: Error,
    shown: MatterShown,
    meta: &RequestMeta,
) -> Page {
    match e {
        e @ (Error::Invalid { .. } | Error::Forbidden(_) | Error::WrongState(_) | Error::Conflict(_)) => {
            let status = crate::error::status(&e);
            let shown = MatterShown { error: Some(e.public_message()), ..shown };
            match matter_page(s, c, id, shown, meta).await {
                Ok(page) => Ok((status, page).into_response()),
                Err(_) => Err(e.into()),
            }
        }
        e => Err(e.into()),
    }
}

/// The notice a redirect back to the matter page asks for (`?done=…`).
#[derive(Deserialize, Default)]
pub struct MatterQuery {
    #[serde(default)]
    done: String,
}

pub async fn matter(
    State(s): State<AppState>,
    c: UiCaller,
    Meta(meta): Meta,
    UiPath(id): UiPath<MatterId>,
    axum::extract::Query(q): axum::extract::Query<MatterQuery>,
) -> Page {
    let notice = match q.done.as_str() {
        "member_removed" => Some("The person was taken off this matter; they can no longer reach it.".to_string()),
        _ => None,
    };
    Ok(matter_page(&s, &c, id, MatterShown { notice, ..MatterShown::default() }, &meta).await?.into_response())
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf: String,
    email: String,
    role: String,
}

pub async fn add_member(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<MatterId>,
    UiAction { caller: c, form: f }: UiAction<MemberForm>,
) -> Page {
    match s.portal.add_member(&c.principal, id, &f.email, &f.role, &meta).await {
        Ok(out) => {
            let notice = Some(format!("{} was added to this matter.", f.email.trim()));
            let shown = MatterShown { invite_url: out.invite_url, notice, ..MatterShown::default() };
            Ok(matter_page(&s, &c, id, shown, &meta).await?.into_response())
        }
        Err(e) => {
            let shown = MatterShown { member_email: f.email, member_role: f.role, ..MatterShown::default() };
            matter_refused(&s, &c, id, e, shown, &meta).await
        }
    }
}

/// Take someone off the matter's list; back to the matter with a confirmation.
pub async fn remove_member(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath((id, user)): UiPath<(MatterId, UserId)>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    match s.portal.remove_member(&c.principal, id, user, &meta).await {
        Ok(()) => Ok(Redirect::to(&format!("/matters/{id}?done=member_removed")).into_response()),
        Err(e) => matter_refused(&s, &c, id, e, MatterShown::default(), &meta).await,
    }
}

#[derive(Deserialize)]
pub struct MessageForm {
    csrf: String,
    body: String,
}

pub async fn post_message(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<MatterId>,
    UiAction { caller: c, form: f }: UiAction<MessageForm>,
) -> Page {
    s.portal.post_message(&c.principal, id, &f.body, &meta).await?;
    Ok(Redirect::to(&format!("/matters/{id}")).into_response())
}

/// A browser upload: a multipart form whose first field is the CSRF token and second the file.
/// The file part is piped into the upload use case as it arrives, never buffered whole.
pub async fn upload(
    State(s): State<AppState>,
    c: UiCaller,
    Meta(meta): Meta,
    UiPath(id): UiPath<MatterId>,
    mut form: Multipart,
) -> Page {
    let bad = |m: &'static str| UiError(Error::invalid("form", m));
    let mut csrf_field =
        form.next_field().await.map_err(|_| bad("the upload could not be read"))?.ok_or(Error::Csrf)?;
    if csrf_field.name() != Some("csrf") {
        return Err(Error::Csrf.into());
    }
    // Read the token field in pieces and refuse anything longer than a token: the body limit
    // is off for this route, so a huge "csrf" field must not be buffered.
    let mut sent = Vec::new();
    while let Some(piece) = csrf_field.chunk().await.map_err(|_| bad("the upload could not be read"))? {
        sent.extend_from_slice(&piece);
        if sent.len() > 256 {
            return Err(Error::Csrf.into());
        }
    }
    // The field holds the multipart stream until dropped; the next one cannot be read before.
    drop(csrf_field);
    let sent = String::from_utf8(sent).map_err(|_| Error::Csrf)?;
    check_csrf(&c.principal, &sent)?;
    let mut file = form
        .next_field()
        .await
        .map_err(|_| bad("the upload could not be read"))?
        .ok_or_else(|| bad("choose a file to upload"))?;
    let name = file.file_name().unwrap_or_default().to_string();
    let content_type = file.content_type().map(str::to_string);
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(4);
    let pump = async move {
        while let Some(chunk) = file.next().await {
            let item = chunk.map_err(std::io::Error::other);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let stream = streams::idle_limited(rx, s.web.upload_idle_timeout);
    let (_, stored) =
        tokio::join!(pump, s.portal.upload_document(&c.principal, id, &name, content_type.as_deref(), stream, &meta));
    stored?;
    Ok(Redirect::to(&format!("/matters/{id}")).into_response())
}

pub async fn download(
    State(s): State<AppState>,
    c: UiCaller,
    Meta(meta): Meta,
    UiPath(id): UiPath<DocumentId>,
    headers: HeaderMap,
) -> Page {
    let d = s.portal.download_document(&c.principal, id, streams::parse_range(&headers), &meta).await?;
    Ok(streams::download_response(d))
}

pub struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    expires_at: String,
    status: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    nav: Nav,
    tokens: Vec<TokenRow>,
    all_scopes: Vec<&'static str>,
    new_secret: Option<String>,
}

async fn tokens_page(s: &AppState, c: &UiCaller, new_secret: Option<String>) -> Result<TokensPage, UiError> {
    let now = s.portal.clock().now();
    let tokens = s
        .portal
        .list_tokens(&c.principal)
        .await?
        .iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            scopes: t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            expires_at: t.expires_at.map(ts).unwrap_or_default(),
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "active"
            },
        })
        .collect();
    Ok(TokensPage {
        nav: Nav::of(c),
        tokens,
        all_scopes: usable_scopes(c.principal.role).iter().map(|s| s.as_str()).collect(),
        new_secret,
    })
}

pub async fn tokens(State(s): State<AppState>, c: UiCaller) -> Page {
    Ok(tokens_page(&s, &c, None).await?.into_response())
}

/// The new-token form. Browsers send one `scopes=` pair per ticked box, which serde's flat form
/// decoding cannot collect, so it is decoded by hand.
pub struct TokenForm {
    csrf: String,
    name: String,
    days: Option<i64>,
    scopes: Vec<String>,
}

impl CsrfForm for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
    fn parse(body: &str) -> Result<Self, Error> {
        let mut f = TokenForm { csrf: String::new(), name: String::new(), days: None, scopes: Vec::new() };
        for (k, v) in form_pairs(body) {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "name" => f.name = v,
                "expires_in_days" => f.days = v.parse().ok(),
                "scopes" => f.scopes.push(v),
                _ => {}
            }
        }
        Ok(f)
    }
}

pub async fn create_token(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<TokenForm>,
) -> Page {
    let (_, secret) = s.portal.create_token(&c.principal, &f.name, &f.scopes, f.days, &meta).await?;
    Ok(tokens_page(&s, &c, Some(secret.expose_secret().to_string())).await?.into_response())
}

/// Decode an `application/x-www-form-urlencoded` body into pairs, keeping repeated keys.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        String::from_utf8_lossy(&portcullis_core::validate::hex_escapes(s.replace('+', " ").as_bytes(), b'%'))
            .into_owned()
    }
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub async fn revoke_token(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<TokenId>,
    UiAction { caller: c, .. }: UiAction<CsrfOnly>,
) -> Page {
    s.portal.revoke_token(&c.principal, id, &meta).await?;
    Ok(Redirect::to("/tokens").into_response())
}

#[cfg(test)]
mod tests {
    use super::form_pairs;

    #[test]
    fn form_pairs_keep_repeats_and_decode() {
        let p = form_pairs("scopes=matters%3Aread&scopes=documents%3Aread&name=a+b&x");
        assert_eq!(p[0], ("scopes".into(), "matters:read".into()));
        assert_eq!(p[1].1, "documents:read");
        assert_eq!(p[2].1, "a b");
        assert_eq!(p[3], ("x".into(), "".into()));
    }
}

/// One row of the audit page.
pub struct AuditRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    matter: String,
    ip: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    nav: Nav,
    /// The filters as typed, shown again in the form.
    filters: AuditParams,
    /// Why the filters were refused, if they were.
    error: Option<String>,
    events: Vec<AuditRow>,
    /// The link to the next page, when there is one.
    next: Option<String>,
    /// The export links, with the same filters.
    export_jsonl: String,
    export_csv: String,
}

/// The audit page's filter form (sent by GET: it changes nothing, so it needs no CSRF token).
#[derive(Deserialize, Default)]
pub struct AuditParams {
    #[serde(default)]
    pub(super) actor: String,
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) matter: String,
    #[serde(default)]
    pub(super) from: String,
    #[serde(default)]
    pub(super) to: String,
    #[serde(default)]
    after: String,
}

impl AuditParams {
    pub(super) fn input(&self, limit: i64) -> SearchInput {
        let given = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        SearchInput {
            actor: given(&self.actor),
            action: given(&self.action),
            matter: given(&self.matter),
            from: given(&self.from),
            to: given(&self.to),
            after: given(&self.after),
            limit: Some(limit.to_string()),
        }
    }

    /// The filters given, as a query string (without the cursor).
    pub(super) fn query(&self) -> String {
        let given: Vec<(&str, &str)> = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("matter", &self.matter),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(given).unwrap_or_default()
    }

    /// `path` with the filters given and `extra` (a cursor or a format) as its query.
    pub(super) fn link(&self, path: &str, extra: &str) -> String {
        let query = self.query();
        if query.is_empty() { format!("{path}?{extra}") } else { format!("{path}?{query}&{extra}") }
    }
}

/// Rows per audit page (and per page of change records).
pub(super) const AUDIT_PAGE: i64 = 200;

/// The audit log, searched with the form's filters. Refused filters show the form again with
/// the reason (to those who may read the log at all).
pub async fn audit(
    State(s): State<AppState>,
    c: UiCaller,
    axum::extract::Query(q): axum::extract::Query<AuditParams>,
) -> Page {
    let (status, events, next, error) = match s.portal.search_audit(&c.principal, &q.input(AUDIT_PAGE)).await {
        Ok(page) => (StatusCode::OK, page.events, page.next, None),
        Err(e @ Error::Invalid { .. }) => (StatusCode::BAD_REQUEST, Vec::new(), None, Some(e.public_message())),
        Err(e) => return Err(e.into()),
    };
    let events = events
        .into_iter()
        .map(|e| AuditRow {
            seq: e.seq,
            at: ts(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            matter: e.matter.unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
        })
        .collect();
    let page = AuditPage {
        nav: Nav::of(&c),
        next: next.map(|n| q.link("/audit", &format!("after={n}"))),
        export_jsonl: q.link("/api/v1/audit/export", "format=jsonl"),
        export_csv: q.link("/api/v1/audit/export", "format=csv"),
        filters: q,
        error,
        events,
    };
    Ok((status, page).into_response())
}
