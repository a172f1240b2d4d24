//! The HTML UI over plain HTTP requests, on both databases: forms need the session's CSRF token,
//! pages need a session, errors are pages, one-time links work once.

use portcullis_testkit::{Client, PASSWORD};
use reqwest::StatusCode;

/// The sign-in form as a browser posts it, with optional extra headers.
fn login_form(c: &Client, email: &str, password: &str, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let mut rb = c.http.post(format!("{}/login", c.base));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.form(&[("tenant", "acme"), ("email", email), ("password", password)])
}

pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

crate::both!(forms_need_csrf_and_pages_need_a_session, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let c = srv.client();

    // A sign-in form posted from another site is refused (login CSRF).
    let forged = Client::send(login_form(&c, &owner, PASSWORD, &[("origin", "https://evil.example")])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = Client::send(login_form(&c, &owner, PASSWORD, &[("sec-fetch-site", "cross-site")])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // No session: pages send you to sign in.
    let r = c.get("/matters").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/login");

    // Wrong password: the sign-in page again, with a message, 401.
    let bad = Client::send(login_form(&c, &owner, "wrong password!!", &[])).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text().contains("not correct"));

    let ok = Client::send(login_form(&c, &owner, PASSWORD, &[])).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let page = c.get("/matters").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(!html.contains("<script"), "pages carry no script (only the passkey pages load one)");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    for h in ["content-security-policy", "strict-transport-security", "x-frame-options", "referrer-policy"] {
        assert!(page.headers.contains_key(h), "page lacks {h}");
    }
    let csrf = csrf_of(&html);

    // A form without or with a wrong token is refused and changes nothing.
    for token in ["", "forged"] {
        let r = Client::send(c.http.post(format!("{}/matters", srv.base)).form(&[
            ("csrf", token),
            ("reference", "X"),
            ("title", "Y"),
        ]))
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.text().contains("CSRF"));
    }
    assert!(!c.get("/matters").await.text().contains("<td>Y</td>"));

    let r = Client::send(c.http.post(format!("{}/matters", srv.base)).form(&[
        ("csrf", csrf.as_str()),
        ("reference", "X-1"),
        ("title", "Y"),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let matter_path = r.headers["location"].to_str().unwrap().to_string();

    // A multipart upload whose first field is not the CSRF token is refused.
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("a.txt"));
    let r = Client::send(c.http.post(format!("{}{matter_path}/documents", srv.base)).multipart(form)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part("file", reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.txt"));
    let r = Client::send(c.http.post(format!("{}{matter_path}/documents", srv.base)).multipart(form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(c.get(&matter_path).await.text().contains("a.txt"));

    // Bad form input is an error page, not a crash.
    let r = Client::send(c.http.post(format!("{}/matters", srv.base)).form(&[
        ("csrf", csrf.as_str()),
        ("reference", ""),
        ("title", "Y"),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("reference"));
    let r = c.get("/matters/not-an-id").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("<h1>Error 404</h1>"));
    assert!(r.headers.contains_key("content-security-policy"), "error pages carry the headers too");

    // Sign out ends the session.
    let r = Client::send(c.http.post(format!("{}/logout", srv.base)).form(&[("csrf", csrf.as_str())])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/matters").await.status, StatusCode::SEE_OTHER);
});

crate::both!(setup_link_works_once, |srv| async move {
    let link = srv.setup_link.clone().expect("a fresh server has a setup link");
    let path = link.trim_start_matches(&srv.base).to_string();
    let c = srv.client();
    assert_eq!(c.get(&path).await.status, StatusCode::OK);
    let weak = Client::send(c.http.post(format!("{}{path}", srv.base)).form(&[
        ("tenant", "firm"),
        ("display_name", "Firm"),
        ("email", "o@firm.example"),
        ("password", "short"),
    ]))
    .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.text().contains("at least 12"));
    let ok = Client::send(c.http.post(format!("{}{path}", srv.base)).form(&[
        ("tenant", "firm"),
        ("display_name", "Firm"),
        ("email", "o@firm.example"),
        ("password", PASSWORD),
    ]))
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(c.get(&path).await.status, StatusCode::GONE);
    let again = Client::send(c.http.post(format!("{}{path}", srv.base)).form(&[
        ("tenant", "evil"),
        ("display_name", "E"),
        ("email", "e@evil.example"),
        ("password", PASSWORD),
    ]))
    .await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(c.get("/setup/made-up-token").await.status, StatusCode::GONE);
    let mut api = srv.client();
    assert_eq!(api.login("firm", "o@firm.example", PASSWORD).await.status, StatusCode::OK);
    // The link expires after an hour even if unused.
    assert!(srv.portal().bootstrap_link().await.unwrap().is_none(), "no new link once a tenant exists");
});

crate::both!(token_and_user_pages_work, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let c = srv.client();
    let ok = Client::send(login_form(&c, &owner, PASSWORD, &[])).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let page = c.get("/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = csrf_of(&page.text());

    // Two ticked scopes arrive as two `scopes` pairs.
    let body = format!("csrf={csrf}&name=reporting&scopes=read&scopes=write&expires_in_days=30");
    let created = Client::send(
        c.http
            .post(format!("{}/tokens", srv.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let html = created.text();
    let at = html.find("id=\"token-secret\">").expect("the new secret is shown once") + 18;
    let secret = html[at..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("pct_"));
    assert!(html.contains("read write"));
    let api = c.with_bearer(&secret);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::OK);
    assert!(!c.get("/tokens").await.text().contains(&secret), "the secret is shown only once");

    // Revoking from the page ends the token.
    let listing = c.get("/tokens").await.text();
    let at = listing.find("action=\"/tokens/").unwrap() + 16;
    let id = listing[at..].split('/').next().unwrap().to_string();
    let r =
        Client::send(c.http.post(format!("{}/tokens/{id}/revoke", srv.base)).form(&[("csrf", csrf.as_str())])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);

    // The users page adds a staff member and shows their one-time link.
    let r = Client::send(c.http.post(format!("{}/users", srv.base)).form(&[
        ("csrf", csrf.as_str()),
        ("email", "clerk@acme.example"),
        ("display_name", "Clerk"),
        ("role", "staff"),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("id=\"invite-url\""));
    assert!(c.get("/users").await.text().contains("clerk@acme.example"));
    // A missing scope list is a clear error page, not a crash.
    let r = Client::send(
        c.http
            .post(format!("{}/tokens", srv.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&name=none")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("scope"));
});

/// Posts a form from the signed-in client.
pub(crate) async fn post_form(c: &Client, path: &str, pairs: &[(&str, &str)]) -> portcullis_testkit::Resp {
    Client::send(c.http.post(format!("{}{path}", c.base)).form(pairs)).await
}

crate::both!(security_pages_enrol_and_step_up, |srv| async move {
    use portcullis_core::clock::Clock;
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "staff@acme.example", "staff").await;
    let c = srv.client();
    assert_eq!(Client::send(login_form(&c, &owner, PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let page = c.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let csrf = csrf_of(&page.text());
    assert!(page.text().contains("id=\"save-policy\""), "owners see the firm's requirement");

    let enrol = post_form(&c, "/account/security/totp", &[("csrf", &csrf)]).await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.text());
    let html = enrol.text();
    assert!(html.contains("src=\"data:image/svg+xml;base64,"), "the QR code is inline");
    let at = html.find("id=\"totp-secret\">").unwrap() + 17;
    let secret = html[at..].split('<').next().unwrap().to_string();
    let wrong = post_form(&c, "/account/security/totp/confirm", &[("csrf", &csrf), ("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.text().contains(&secret), "a mistyped code shows the same key again");
    let code = portcullis_testkit::totp_code(&secret, srv.clock.now());
    let done = post_form(&c, "/account/security/totp/confirm", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(done.text().matches("<li><code>").count(), 10, "ten recovery codes, shown once");

    // Later, a sensitive action sends the user to the step-up page, which returns only locally.
    srv.clock.advance(time::Duration::minutes(11));
    let token = post_form(&c, "/tokens", &[("csrf", &csrf), ("name", "x"), ("scopes", "read")]).await;
    assert_eq!(token.status, StatusCode::SEE_OTHER);
    assert_eq!(token.headers["location"], "/account/step-up");
    let form = c.get("/account/step-up?next=https://evil.example/").await.text();
    assert!(form.contains("name=\"next\" value=\"/account/security\""), "{form}");
    let bad = post_form(&c, "/account/step-up", &[("csrf", &csrf), ("code", "111111"), ("next", "/tokens")]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let code = portcullis_testkit::totp_code(&secret, srv.clock.now());
    let ok = post_form(&c, "/account/step-up", &[("csrf", &csrf), ("code", &code), ("next", "/tokens")]).await;
    assert_eq!((ok.status, ok.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/tokens"));
    let token = post_form(&c, "/tokens", &[("csrf", &csrf), ("name", "x"), ("scopes", "read")]).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text());

    // Requiring two-factor for staff sends a staff member's next session to enrolment.
    let saved = post_form(&c, "/account/security/policy", &[("csrf", &csrf), ("staff", "on")]).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    let s = srv.client();
    assert_eq!(Client::send(login_form(&s, "staff@acme.example", PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let m = s.get("/matters").await;
    assert_eq!((m.status, m.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/account/security"));
    assert!(s.get("/account/security").await.text().contains("Your firm requires a second factor"));
});

crate::both!(approvals_pages_grant_a_role_with_four_eyes, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "admin@acme.example", "admin").await;
    srv.user(tenant, "clerk@acme.example", "staff").await;
    let o = srv.client();
    assert_eq!(Client::send(login_form(&o, &owner, PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let page = o.get("/users").await.text();
    let csrf = csrf_of(&page);
    let row = page.split("<tr>").find(|r| r.contains("clerk@acme.example")).unwrap();
    let at = row.find("action=\"/users/").unwrap() + 15;
    let clerk = row[at..].split('/').next().unwrap().to_string();
    let r = post_form(&o, &format!("/users/{clerk}/role"), &[("csrf", &csrf), ("role", "admin")]).await;
    assert!(r.text().contains("Requested"), "{}", r.text());
    // The requester sees it pending but cannot approve it.
    let mine = o.get("/approvals").await.text();
    let at = mine.find("action=\"/approvals/").unwrap() + 19;
    let id = mine[at..].split('/').next().unwrap().to_string();
    let r = post_form(&o, &format!("/approvals/{id}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let a = srv.client();
    assert_eq!(Client::send(login_form(&a, "admin@acme.example", PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let listing = a.get("/approvals").await.text();
    assert!(listing.contains("make clerk@acme.example admin"), "{listing}");
    let r = post_form(&a, &format!("/approvals/{id}/approve"), &[("csrf", &csrf_of(&listing))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("Approved"));
    let users = o.get("/users").await.text();
    let row = users.split("<tr>").find(|r| r.contains("clerk@acme.example")).unwrap();
    assert!(row.contains("<td>admin</td>"), "{row}");
});

crate::both!(security_page_lists_and_ends_sessions_and_changes_the_password, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let other = srv.client();
    assert_eq!(Client::send(login_form(&other, &owner, PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let c = srv.client();
    assert_eq!(Client::send(login_form(&c, &owner, PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let page = c.get("/account/security").await.text();
    let csrf = csrf_of(&page);
    assert!(page.contains("this session"), "{page}");
    let needle = "action=\"/account/sessions/";
    let at = page.find(needle).unwrap() + needle.len();
    let id = page[at..].split('/').next().unwrap().to_string();
    let r = post_form(&c, &format!("/account/sessions/{id}/end"), &[("csrf", &csrf)]).await;
    assert!(r.text().contains("The session was ended"), "{}", r.text());
    assert_eq!(other.get("/matters").await.headers["location"], "/login");

    let bad = post_form(
        &c,
        "/account/password",
        &[("csrf", &csrf), ("current_password", "nope nope nope"), ("new_password", "a brand new password 1")],
    )
    .await;
    assert!(bad.text().contains("current_password"), "{}", bad.text());
    let ok = post_form(
        &c,
        "/account/password",
        &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", "a brand new password 1")],
    )
    .await;
    assert!(ok.text().contains("Your password was changed"), "{}", ok.text());
    let fresh = srv.client();
    let r = Client::send(login_form(&fresh, &owner, "a brand new password 1", &[])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
});
