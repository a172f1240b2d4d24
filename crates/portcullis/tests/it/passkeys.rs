//! Passkeys and security keys (WebAuthn) as a second factor, through the API with a software
//! authenticator: registration, sign-in, step-up, removal, and every way an answer can be
//! wrong — replayed, from another origin, without user verification, from a cloned key (the
//! counter goes back), for another user, or not WebAuthn at all.

use crate::support::sql_column;
use portcullis_testkit::{Client, PASSWORD, SoftPasskey, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

/// Register a new software passkey for the signed-in client's user.
async fn register(srv: &TestServer, c: &Client, name: &str) -> SoftPasskey {
    let r = c.post("/api/v1/me/passkeys/challenge", json!({"name": name})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ch = r.json();
    let pk = &ch["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    let mut key = SoftPasskey::new(&srv.passkey_origin());
    let answer = key.register(&ch["options"]);
    let r = c.post("/api/v1/me/passkeys", json!({"challenge_id": ch["challenge_id"], "credential": answer})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["name"], name);
    key
}

/// Try a sign-in with the password alone; returns the passkey challenge of the 401.
async fn challenge(c: &mut Client, email: &str) -> Value {
    let r = c.login("acme", email, PASSWORD).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "second_factor_required".to_string()));
    r.json()["passkey"].clone()
}

fn with_answer(email: &str, ch: &Value, answer: Value) -> Value {
    json!({"tenant": "acme", "email": email, "password": PASSWORD,
           "passkey": {"challenge_id": ch["challenge_id"], "credential": answer}})
}

async fn actions(srv: &TestServer) -> Vec<String> {
    sql_column(&srv.db_url(), "SELECT action FROM audit_events ORDER BY at, seq").await
}

crate::both!(passkey_sign_in_step_up_and_removal, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    c.login("acme", &owner, PASSWORD).await;
    let mut key = register(srv, &c, "laptop").await;
    let list = c.get("/api/v1/me/passkeys").await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(c.get("/api/v1/me/security").await.json()["passkeys"], 1);

    // The password alone is no longer enough; the 401 carries a challenge for the passkey.
    let mut b = srv.client();
    let ch = challenge(&mut b, &owner).await;
    assert_eq!(ch["options"]["publicKey"]["userVerification"], "required");
    let answer = key.answer(&ch["options"]);
    let r = b.login_json(with_answer(&owner, &ch, answer.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(b.get("/api/v1/me/security").await.json()["second_factor_verified_at"].is_string());
    // The same answer again: the challenge is spent.
    let r = srv.client().login_json(with_answer(&owner, &ch, answer)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "second_factor_required".to_string()));
    // A right answer with a wrong password is just wrong credentials.
    let mut d = srv.client();
    let ch = challenge(&mut d, &owner).await;
    let mut body = with_answer(&owner, &ch, key.answer(&ch["options"]));
    body["password"] = json!("not the password at all");
    assert_eq!(d.login_json(body).await.error_code(), "invalid_credentials");

    // Sensitive actions after ten minutes need a step-up, which a passkey gives.
    srv.clock.advance(Duration::minutes(11));
    let token = json!({"name": "ci", "scopes": ["read"]});
    assert_eq!(b.post("/api/v1/tokens", token.clone()).await.error_code(), "step_up_required");
    let ch = b.post("/api/v1/session/step-up/passkey", json!({})).await.json();
    let r = b
        .post(
            "/api/v1/session/step-up",
            json!({"passkey": {"challenge_id": ch["challenge_id"], "credential": key.answer(&ch["options"])}}),
        )
        .await;
    assert_eq!((r.status, r.json()["factor"].clone()), (StatusCode::OK, json!("passkey")), "{}", r.text());
    assert_eq!(b.post("/api/v1/tokens", token).await.status, StatusCode::CREATED);
    // A sign-in challenge does not answer a step-up.
    let mut e = srv.client();
    let sign_in = challenge(&mut e, &owner).await;
    let r = b
        .post(
            "/api/v1/session/step-up",
            json!({"passkey": {"challenge_id": sign_in["challenge_id"], "credential": key.answer(&sign_in["options"])}}),
        )
        .await;
    assert_eq!(r.error_code(), "second_factor_required");
    assert_eq!(b.post("/api/v1/session/step-up", json!({})).await.error_code(), "invalid_request");

    // Removing it: a change of factors, step-up first; with the firm requiring a second factor
    // the last one cannot go.
    let id = c.get("/api/v1/me/passkeys").await.json()["items"][0]["id"].as_str().unwrap().to_string();
    srv.clock.advance(Duration::minutes(11));
    assert_eq!(b.delete(&format!("/api/v1/me/passkeys/{id}")).await.error_code(), "step_up_required");
    let ch = b.post("/api/v1/session/step-up/passkey", json!({})).await.json();
    let step = json!({"passkey": {"challenge_id": ch["challenge_id"], "credential": key.answer(&ch["options"])}});
    assert_eq!(b.post("/api/v1/session/step-up", step).await.status, StatusCode::OK);
    let policy = json!({"staff": true, "clients": false});
    assert_eq!(b.put_json("/api/v1/tenant/two-factor", policy).await.status, StatusCode::NO_CONTENT);
    let r = b.delete(&format!("/api/v1/me/passkeys/{id}")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".to_string()), "{}", r.text());
    assert_eq!(b.delete(&format!("/api/v1/me/passkeys/{}", uuid::Uuid::new_v4())).await.status, StatusCode::NOT_FOUND);
    // Another user of the firm cannot see or remove it.
    srv.user(tenant, "admin@acme.example", "admin").await;
    let mut other = srv.client();
    other.login("acme", "admin@acme.example", PASSWORD).await;
    assert_eq!(other.get("/api/v1/me/passkeys").await.json()["items"], json!([]));
    assert_eq!(other.delete(&format!("/api/v1/me/passkeys/{id}")).await.status, StatusCode::NOT_FOUND);

    let a = actions(srv).await;
    for expected in
        ["auth.passkey_registration_started", "auth.passkey_added", "auth.step_up", "auth.second_factor_failed"]
    {
        assert!(a.iter().any(|x| x == expected), "no {expected} event: {a:?}");
    }
});

crate::both!(wrong_passkey_answers_are_refused, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "staff@acme.example", "staff").await;
    let mut c = srv.client();
    c.login("acme", &owner, PASSWORD).await;
    let mut key = register(srv, &c, "key").await;
    let mut s = srv.client();
    s.login("acme", "staff@acme.example", PASSWORD).await;
    let mut staff_key = register(srv, &s, "staff key").await;

    let refused = |r: portcullis_testkit::Resp| {
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::UNAUTHORIZED, "second_factor_required".into()),
            "{}",
            r.text()
        );
    };
    // Another origin (a phishing site relaying the challenge).
    let mut b = srv.client();
    let ch = challenge(&mut b, &owner).await;
    key.origin = "https://portcullis-login.example".into();
    refused(b.login_json(with_answer(&owner, &ch, key.answer(&ch["options"]))).await);
    key.origin = srv.passkey_origin();
    // No user verification (a touch without PIN or biometric).
    let ch = challenge(&mut b, &owner).await;
    key.verify_user = false;
    refused(b.login_json(with_answer(&owner, &ch, key.answer(&ch["options"]))).await);
    key.verify_user = true;
    // A cloned authenticator: its counter falls behind the one the server saw last.
    let ch = challenge(&mut b, &owner).await;
    assert_eq!(b.login_json(with_answer(&owner, &ch, key.answer(&ch["options"]))).await.status, StatusCode::OK);
    let mut clone_counter = key.counter - 2;
    std::mem::swap(&mut key.counter, &mut clone_counter);
    let ch = challenge(&mut b, &owner).await;
    refused(b.login_json(with_answer(&owner, &ch, key.answer(&ch["options"]))).await);
    // Someone else's passkey answering the owner's challenge.
    let ch = challenge(&mut b, &owner).await;
    refused(b.login_json(with_answer(&owner, &ch, staff_key.answer(&ch["options"]))).await);
    // The owner's challenge answered for the staff member's sign-in.
    let ch = challenge(&mut b, &owner).await;
    refused(b.login_json(with_answer("staff@acme.example", &ch, staff_key.answer(&ch["options"]))).await);
    // Not WebAuthn at all.
    let ch = challenge(&mut b, &owner).await;
    let r = b.login_json(with_answer(&owner, &ch, json!({"id": "x"}))).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".to_string()), "{}", r.text());

    // Registration: an unknown or spent challenge, a sign-in challenge, the same key twice.
    let reg = c.post("/api/v1/me/passkeys/challenge", json!({"name": "again"})).await.json();
    let dup = key.register(&reg["options"]);
    let r = c.post("/api/v1/me/passkeys", json!({"challenge_id": reg["challenge_id"], "credential": dup})).await;
    assert_eq!(r.error_code(), "invalid_request", "{}", r.text());
    let r = c.post("/api/v1/me/passkeys", json!({"challenge_id": reg["challenge_id"], "credential": dup})).await;
    assert!(r.text().contains("no registration is waiting"), "{}", r.text());
    let ch = challenge(&mut b, &owner).await;
    let fresh = SoftPasskey::new(&srv.passkey_origin()).register(&reg["options"]);
    let r = c.post("/api/v1/me/passkeys", json!({"challenge_id": ch["challenge_id"], "credential": fresh})).await;
    assert_eq!(r.error_code(), "invalid_request");
    for bad in [json!({"name": ""}), json!({"name": "x".repeat(61)}), json!({})] {
        assert_eq!(c.post("/api/v1/me/passkeys/challenge", bad).await.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(c.get("/api/v1/me/passkeys").await.json()["items"].as_array().unwrap().len(), 1);

    // API tokens can never add passkeys.
    let t = c.post("/api/v1/tokens", json!({"name": "t", "scopes": ["read"]})).await.json();
    let api = c.with_bearer(t["token"].as_str().unwrap());
    assert_eq!(api.post("/api/v1/me/passkeys/challenge", json!({"name": "x"})).await.status, StatusCode::FORBIDDEN);
    assert!(actions(srv).await.iter().any(|a| a == "auth.passkey_registration_failed"));
});

crate::both!(a_passkey_meets_the_firm_requirement, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "staff@acme.example", "staff").await;
    let mut o = srv.client();
    o.login("acme", &owner, PASSWORD).await;
    let policy = json!({"staff": true, "clients": false});
    assert_eq!(o.put_json("/api/v1/tenant/two-factor", policy).await.status, StatusCode::NO_CONTENT);

    // Held to enrolment until a factor is added; a passkey will do.
    let mut s = srv.client();
    assert_eq!(s.login("acme", "staff@acme.example", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(s.get("/api/v1/matters").await.error_code(), "two_factor_enrolment_required");
    let mut key = register(srv, &s, "phone").await;
    assert_eq!(s.get("/api/v1/matters").await.status, StatusCode::OK);
    let mut again = srv.client();
    let ch = challenge(&mut again, "staff@acme.example").await;
    let r = again.login_json(with_answer("staff@acme.example", &ch, key.answer(&ch["options"]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(again.get("/api/v1/matters").await.status, StatusCode::OK);
});

/// The challenge a page carries in its passkey button, as the page script reads it.
fn page_challenge(html: &str) -> (String, Value) {
    let attr = |name: &str| {
        let at = html.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in {html}")) + name.len() + 2;
        let raw = html[at..].split('"').next().unwrap();
        raw.replace("&#34;", "\"").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
    };
    let id = html
        .find("name=\"passkey_challenge\" value=\"")
        .map(|at| html[at + 32..].split('"').next().unwrap().to_string());
    (id.expect("a challenge id"), serde_json::from_str(&attr("data-options")).unwrap())
}

crate::both!(passkey_pages_add_sign_in_and_remove, |srv| async move {
    use crate::ui::{csrf_of, post_form};
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    c.login("acme", &owner, PASSWORD).await;
    let csrf = csrf_of(&c.get("/account/security").await.text());

    // Step one gives a page with a challenge; a garbled answer is a clear 400, nothing added.
    let r = post_form(&c, "/account/passkeys/new", &[("csrf", &csrf), ("name", "laptop")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (challenge, options) = page_challenge(&r.text());
    let bad = post_form(
        &c,
        "/account/passkeys",
        &[("csrf", &csrf), ("passkey_challenge", &challenge), ("passkey_answer", "{not json")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("could not be read"), "{}", bad.text());
    assert_eq!(c.get("/api/v1/me/passkeys").await.json()["items"], json!([]));
    // The authenticator's answer adds it.
    let mut key = SoftPasskey::new(&srv.passkey_origin());
    let answer = key.register(&options).to_string();
    let r = post_form(
        &c,
        "/account/passkeys",
        &[("csrf", &csrf), ("passkey_challenge", &challenge), ("passkey_answer", &answer)],
    )
    .await;
    assert!(r.text().contains("was added"), "{}", r.text());

    // Signing in through the page: the password, then the passkey answer in the form.
    let page = srv.client();
    let form = [("tenant", "acme"), ("email", owner.as_str()), ("password", PASSWORD)];
    let r = Client::send(page.http.post(format!("{}/login", page.base)).form(&form)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("id=\"use-passkey\""), "{}", r.text());
    let (challenge, options) = page_challenge(&r.text());
    let answer = key.answer(&options).to_string();
    let mut with_key = form.to_vec();
    with_key.extend([("passkey_challenge", challenge.as_str()), ("passkey_answer", answer.as_str())]);
    let r = Client::send(page.http.post(format!("{}/login", page.base)).form(&with_key)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());

    // Removing it from the security page.
    let id = c.get("/api/v1/me/passkeys").await.json()["items"][0]["id"].as_str().unwrap().to_string();
    let r = post_form(&c, &format!("/account/passkeys/{id}/remove"), &[("csrf", &csrf)]).await;
    assert!(r.text().contains("was removed"), "{}", r.text());
    assert_eq!(c.get("/api/v1/me/passkeys").await.json()["items"], json!([]));
    let r = post_form(&c, &format!("/account/passkeys/{id}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
});
