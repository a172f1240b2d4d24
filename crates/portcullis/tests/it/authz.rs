//! Set-up shared by the authorisation regression tests (`authz_wall`, `authz_revoke`,
//! `authz_four_eyes`, `authz_platform`): one firm per test, its people signed in, restricted
//! matters with content, DLP-held documents, and the small readers the assertions use.

use portcullis_core::ids::TenantId;
use portcullis_testkit::{Client, PASSWORD, Resp, TestServer, totp_code};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A card number the payment-card detector finds.
pub(crate) const CARD: &str = "4111 1111 1111 1111";

/// A signed-in user: their browser (session cookie and CSRF token), email and user id.
pub(crate) struct Person {
    pub(crate) c: Client,
    pub(crate) email: String,
    pub(crate) id: String,
}

/// One firm of a test: its name, tenant id, and its first owner signed in.
pub(crate) struct Firm {
    pub(crate) name: String,
    pub(crate) tenant: TenantId,
    pub(crate) owner: Person,
}

/// A new firm `name` with its owner signed in.
pub(crate) async fn firm(srv: &TestServer, name: &str) -> Firm {
    let (tenant, email) = srv.tenant(name).await;
    let owner = sign_in(srv, name, &email).await;
    Firm { name: name.to_string(), tenant, owner }
}

impl Firm {
    /// `local@<firm>.example`.
    pub(crate) fn email(&self, local: &str) -> String {
        format!("{local}@{}.example", self.name)
    }

    /// A new user `local@<firm>.example` with `role` (staff, client, auditor or admin), signed in.
    pub(crate) async fn person(&self, srv: &TestServer, local: &str, role: &str) -> Person {
        let email = self.email(local);
        srv.user(self.tenant, &email, role).await;
        sign_in(srv, &self.name, &email).await
    }

    /// A second owner, `local@<firm>.example`, signed in (see `TestServer::second_owner`).
    pub(crate) async fn second_owner(&self, srv: &TestServer, local: &str) -> Person {
        let email = self.email(local);
        srv.second_owner(self.tenant, &email).await;
        sign_in(srv, &self.name, &email).await
    }

    /// Sign `email` in again, in a new browser.
    pub(crate) async fn sign_in(&self, srv: &TestServer, email: &str) -> Person {
        sign_in(srv, &self.name, email).await
    }

    /// What signing `email` in answers now (the status and the body).
    pub(crate) async fn try_sign_in(&self, srv: &TestServer, email: &str) -> Resp {
        srv.client().login(&self.name, email, PASSWORD).await
    }
}

/// Sign `email` of firm `tenant` in, asserting it works.
pub(crate) async fn sign_in(srv: &TestServer, tenant: &str, email: &str) -> Person {
    let mut c = srv.client();
    let r = c.login(tenant, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{email} signs in: {}", r.text());
    let id = r.json()["user"]["id"].as_str().map(str::to_string);
    let id = match id {
        Some(id) => id,
        None => id_of(&c.get("/api/v1/session").await),
    };
    Person { c, email: email.to_string(), id }
}

/// The `id` of a successful answer.
#[track_caller]
pub(crate) fn id_of(r: &Resp) -> String {
    assert!(r.status.is_success(), "{}: {}", r.status, r.text());
    r.json()["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.text())).to_string()
}

/// Open a matter (restricted: behind an ethical wall, with its creator alone on its list).
pub(crate) async fn matter(c: &Client, reference: &str, restricted: bool) -> String {
    let r =
        c.post("/api/v1/matters", json!({"reference": reference, "title": "Title", "restricted": restricted})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["restricted"], restricted);
    id_of(&r)
}

/// Put an existing user on a matter's list.
pub(crate) async fn add_member(c: &Client, matter: &str, email: &str, role: &str) {
    let r = c.post(&format!("/api/v1/matters/{matter}/members"), json!({"email": email, "role": role})).await;
    assert_eq!(r.status, StatusCode::CREATED, "add {email}: {}", r.text());
}

/// Upload a document; its id.
pub(crate) async fn upload(c: &Client, matter: &str, name: &str, bytes: &[u8]) -> String {
    let r = c.upload(matter, name, bytes.to_vec()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    id_of(&r)
}

/// Post a message; its id.
pub(crate) async fn message(c: &Client, matter: &str, body: &str) -> String {
    let r = c.post(&format!("/api/v1/matters/{matter}/messages"), json!({"body": body})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    id_of(&r)
}

/// A new API token of the signed-in user with `scopes`; its secret.
pub(crate) async fn token(c: &Client, scopes: &[&str]) -> String {
    let r = c.post("/api/v1/tokens", json!({"name": "authz", "scopes": scopes})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

/// The read and write scopes `role` can use, for a token that reaches everything it may.
pub(crate) fn read_write_scopes(role: &str) -> Vec<&'static str> {
    let role = portcullis_core::model::Role::parse(role).unwrap();
    portcullis_core::policy::usable_scopes(role)
        .iter()
        .map(|s| s.as_str())
        .filter(|s| *s == "read" || *s == "write")
        .collect()
}

/// Have the firm's DLP policy hold every upload with a card number for review.
pub(crate) async fn quarantine_cards(owner: &Client) {
    let policy =
        json!({"detectors": {"payment_card": "quarantine"}, "download_cap": {"downloads": null, "bytes": null}});
    let r = owner.put_json("/api/v1/tenant/dlp-policy", policy).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// Upload a document the DLP policy (after [`quarantine_cards`]) holds for review; its id.
pub(crate) async fn upload_held(c: &Client, matter: &str) -> String {
    let id = upload(c, matter, "card.txt", format!("Card number {CARD}").as_bytes()).await;
    let listed = documents(c, matter).await;
    if let Some(d) = listed.iter().find(|d| d["id"] == id.as_str()) {
        assert_eq!(d["dlp"], "quarantined", "{d}");
    }
    id
}

/// A matter's documents as `c` lists them (asserting the list is answered).
pub(crate) async fn documents(c: &Client, matter: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/v1/matters/{matter}/documents")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

/// The ids in an `items` list answered at `path` (asserting it is answered).
pub(crate) async fn ids_at(c: &Client, path: &str, key: &str) -> Vec<String> {
    let r = c.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()["items"].as_array().unwrap().iter().map(|i| i[key].as_str().unwrap().to_string()).collect()
}

/// The documents held for review that `c` (an owner or admin) is shown: (document, matter).
pub(crate) async fn held_list(c: &Client) -> Vec<(String, String)> {
    let r = c.get("/api/v1/tenant/held-documents").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["document_id"].as_str().unwrap().to_string(), i["matter_id"].as_str().unwrap().to_string()))
        .collect()
}

/// The status of fetching a document's content.
pub(crate) async fn fetch(c: &Client, doc: &str) -> StatusCode {
    c.get(&format!("/api/v1/documents/{doc}/content")).await.status
}

/// What `c` gets on the matter, its documents, one document's content and its messages.
pub(crate) async fn reach(c: &Client, matter: &str, doc: &str) -> [StatusCode; 4] {
    [
        c.get(&format!("/api/v1/matters/{matter}")).await.status,
        c.get(&format!("/api/v1/matters/{matter}/documents")).await.status,
        fetch(c, doc).await,
        c.get(&format!("/api/v1/matters/{matter}/messages")).await.status,
    ]
}

/// A user's row in `GET /api/v1/users`, as `c` (an owner or admin) sees it.
pub(crate) async fn user_row(c: &Client, id: &str) -> Value {
    let r = c.get("/api/v1/users").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().iter().find(|u| u["id"] == id).cloned().unwrap_or_else(|| panic!("{id}"))
}

/// A user's role, as `c` sees it.
pub(crate) async fn role_of(c: &Client, id: &str) -> String {
    user_row(c, id).await["role"].as_str().unwrap().to_string()
}

/// The id of the pending request a `202` answers with: the request itself (as a role request
/// answers today) or the request under `approval`.
#[track_caller]
pub(crate) fn pending_request(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::ACCEPTED, "a pending request: {}", r.text());
    let j = r.json();
    let req = if j["approval"].is_object() { j["approval"].clone() } else { j };
    assert_eq!(req["state"], "pending", "{req}");
    req["id"].as_str().unwrap().to_string()
}

/// A refusal with `status` and the API error `code`.
#[track_caller]
pub(crate) fn refused(r: &Resp, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_eq!(r.error_code(), code, "{what}");
}

/// A change made at once: any success but `202 Accepted` (which would be a request).
#[track_caller]
pub(crate) fn direct(r: &Resp, what: &str) {
    assert!(r.status.is_success() && r.status != StatusCode::ACCEPTED, "{what} is direct: {} {}", r.status, r.text());
}

/// A form post with the caller's own CSRF token first, then `pairs`.
pub(crate) async fn post_csrf_form(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Resp {
    let csrf = c.csrf.clone().expect("a signed-in browser has a CSRF token");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(pairs);
    crate::ui::post_form(c, path, &form).await
}

/// Enrol TOTP for the signed-in user through `c`; the secret.
pub(crate) async fn enrol_totp(srv: &TestServer, c: &Client) -> String {
    let r = c.post("/api/v1/me/totp", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let r = c.post("/api/v1/me/totp/confirm", json!({"code": totp_code(&secret, now(srv))})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    secret
}

/// The server's time.
pub(crate) fn now(srv: &TestServer) -> time::OffsetDateTime {
    use portcullis_core::clock::Clock;
    srv.clock.now()
}
