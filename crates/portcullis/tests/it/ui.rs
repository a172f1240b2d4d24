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
    // Asked first, then requested once confirmed.
    let r = post_form(&o, &format!("/users/{clerk}/role"), &[("csrf", &csrf), ("role", "admin")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("A second owner or admin must approve this before it takes effect."), "{}", r.text());
    let confirmed = [("csrf", csrf.as_str()), ("role", "admin"), ("confirm", "yes")];
    let r = post_form(&o, &format!("/users/{clerk}/role"), &confirmed).await;
    assert!(r.text().contains("Requested"), "{}", r.text());
    assert!(r.text().contains("approval"), "{}", r.text());
    // The requester sees it pending but cannot approve it.
    let mine = o.get("/approvals").await.text();
    let at = mine.find("action=\"/approvals/").unwrap() + 19;
    let id = mine[at..].split('/').next().unwrap().to_string();
    let r = post_form(&o, &format!("/approvals/{id}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let a = srv.client();
    assert_eq!(Client::send(login_form(&a, "admin@acme.example", PASSWORD, &[])).await.status, StatusCode::SEE_OTHER);
    let listing = a.get("/approvals").await.text();
    assert!(listing.contains("Make clerk (clerk@acme.example) an admin"), "{listing}");
    assert!(!listing.contains(&clerk), "people are named, never shown by id: {listing}");
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

/// The `<tr>` of the users page that shows `email`.
fn user_row<'a>(html: &'a str, email: &str) -> &'a str {
    html.split("<tr>").skip(1).find(|r| r.contains(email)).unwrap_or_else(|| panic!("no row for {email}: {html}"))
}

/// Follow a `303` to the page it names.
async fn followed(c: &Client, r: &portcullis_testkit::Resp) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    c.get(r.headers["location"].to_str().unwrap()).await.text()
}

crate::both!(users_page_confirms_lowering_deactivating_and_reactivating, |srv| async move {
    use crate::authz::{enrol_totp, firm, now, post_csrf_form, role_of};
    let f = firm(srv, "people").await;
    let staff = f.person(srv, "staff", "staff").await;
    let client = f.person(srv, "client", "client").await;
    let page = f.owner.c.get("/users").await.text();
    // People are shown by name and email; ids appear only in the forms' addresses.
    let shown: String = page.split('<').filter_map(|t| t.split_once('>').map(|(_, text)| text)).collect();
    assert!(shown.contains("staff@people.example") && !shown.contains(&staff.id), "{shown}");
    let row = user_row(&page, &staff.email);
    assert!(row.contains(&format!("action=\"/users/{}/deactivate\"", staff.id)), "{row}");
    assert!(row.contains("aria-label=\"Deactivate staff (staff@people.example)\""), "{row}");
    assert!(!row.contains("/reactivate\""), "an active user has no Reactivate button: {row}");
    let mine = user_row(&page, &f.owner.email);
    assert!(!mine.contains("/deactivate\""), "nobody deactivates themselves: {mine}");

    // A lowering asks too, saying it takes effect at once; the role is unchanged until confirmed.
    let role = format!("/users/{}/role", staff.id);
    let r = post_csrf_form(&f.owner.c, &role, &[("role", "client")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(text.contains("at once") && text.contains("ends their sessions"), "{text}");
    assert!(text.contains("name=\"confirm\" value=\"yes\"") && text.contains("href=\"/users\""), "{text}");
    assert!(!text.contains("must approve"), "{text}");
    assert_eq!(role_of(&f.owner.c, &staff.id).await, "staff", "nothing changed yet");
    let text =
        followed(&f.owner.c, &post_csrf_form(&f.owner.c, &role, &[("role", "client"), ("confirm", "yes")]).await).await;
    assert!(text.contains("staff (staff@people.example) is now a client"), "{text}");
    assert_eq!(role_of(&f.owner.c, &staff.id).await, "client");
    // The same role again is refused on the page, which keeps the row.
    let r = post_csrf_form(&f.owner.c, &role, &[("role", "client"), ("confirm", "yes")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("id=\"error\"") && r.text().contains("<h1>Users</h1>"), "{}", r.text());

    // Deactivating: asked, then done, with a plain notice; the row offers Reactivate instead.
    let deactivate = format!("/users/{}/deactivate", client.id);
    let r = post_csrf_form(&f.owner.c, &deactivate, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("will no longer be able to sign in"), "{}", r.text());
    assert_eq!(client.c.get("/api/v1/matters").await.status, StatusCode::OK, "nothing changed yet");
    let text = followed(&f.owner.c, &post_csrf_form(&f.owner.c, &deactivate, &[("confirm", "yes")]).await).await;
    assert!(
        text.contains(
            "client (client@people.example) can no longer sign in; their sessions and API tokens were ended."
        ),
        "{text}"
    );
    assert_eq!(client.c.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    let row = user_row(&text, &client.email);
    assert!(row.contains("deactivated") && row.contains("/reactivate\"") && !row.contains("/deactivate\""), "{row}");

    // Reactivating a client: asked, then at once.
    let reactivate = format!("/users/{}/reactivate", client.id);
    let r = post_csrf_form(&f.owner.c, &reactivate, &[]).await;
    assert!(r.text().contains("takes effect at once"), "{}", r.text());
    let text = followed(&f.owner.c, &post_csrf_form(&f.owner.c, &reactivate, &[("confirm", "yes")]).await).await;
    assert!(text.contains("client (client@people.example) can sign in again."), "{text}");

    // Reactivating staff waits for a second owner or admin.
    let colleague = f.person(srv, "colleague", "staff").await;
    let r = f.owner.c.post(&format!("/api/v1/users/{}/deactivate", colleague.id), serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let reactivate = format!("/users/{}/reactivate", colleague.id);
    let r = post_csrf_form(&f.owner.c, &reactivate, &[]).await;
    assert!(r.text().contains("A second owner or admin must approve this before it takes effect."), "{}", r.text());
    let r = post_csrf_form(&f.owner.c, &reactivate, &[("confirm", "yes")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text().replace("&#39;", "'");
    let waits = "Reactivating colleague (colleague@people.example) waits for a second owner or admin's approval";
    assert!(text.contains(waits), "{text}");
    assert_eq!(crate::authz::user_row(&f.owner.c, &colleague.id).await["status"], "disabled", "not before approval");
    let listing = f.owner.c.get("/approvals").await.text();
    assert!(listing.contains("Reactivate colleague (colleague@people.example)"), "{listing}");

    // A sensitive change that needs a fresh second factor goes to the step-up page and back.
    let secret = enrol_totp(srv, &f.owner.c).await;
    srv.clock.advance(time::Duration::minutes(11));
    let staff_deactivate = format!("/users/{}/deactivate", staff.id);
    let r = post_csrf_form(&f.owner.c, &staff_deactivate, &[("confirm", "yes")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.headers["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/account/step-up?"), "{to}");
    let form = f.owner.c.get(&to).await.text();
    assert!(form.contains("name=\"next\" value=\"/users\""), "{form}");
    let code = portcullis_testkit::totp_code(&secret, now(srv));
    let r = post_csrf_form(&f.owner.c, "/account/step-up", &[("code", &code), ("next", "/users")]).await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/users"));
    let text = followed(&f.owner.c, &post_csrf_form(&f.owner.c, &staff_deactivate, &[("confirm", "yes")]).await).await;
    assert!(text.contains("can no longer sign in"), "{text}");
});

crate::both!(matter_page_removes_a_member, |srv| async move {
    use crate::authz::{add_member, firm, ids_at, matter};
    let f = firm(srv, "removals").await;
    let client = f.person(srv, "client", "client").await;
    let m = matter(&f.owner.c, "R-1", false).await;
    add_member(&f.owner.c, &m, &client.email, "client").await;
    let page = f.owner.c.get(&format!("/matters/{m}")).await.text();
    let button = format!("action=\"/matters/{m}/members/{}/remove\"", client.id);
    assert!(page.contains(&button), "{page}");
    assert!(page.contains("aria-label=\"Remove client from this matter\""), "{page}");
    // The client sees the list but no Remove buttons.
    let theirs = client.c.get(&format!("/matters/{m}")).await.text();
    assert!(!theirs.contains("/remove\""), "{theirs}");

    let r = crate::authz::post_csrf_form(&f.owner.c, &format!("/matters/{m}/members/{}/remove", client.id), &[]).await;
    let text = followed(&f.owner.c, &r).await;
    assert!(text.contains("taken off this matter"), "{text}");
    assert!(!text.contains(&button), "{text}");
    assert!(!ids_at(&f.owner.c, &format!("/api/v1/matters/{m}/members"), "user_id").await.contains(&client.id));
    // Again: they are not on it, which is the error page (404).
    let r = crate::authz::post_csrf_form(&f.owner.c, &format!("/matters/{m}/members/{}/remove", client.id), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // An add refused keeps what was typed.
    let r = crate::authz::post_csrf_form(
        &f.owner.c,
        &format!("/matters/{m}/members"),
        &[("email", "not-an-email"), ("role", "staff")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let text = r.text();
    assert!(text.contains("id=\"error\"") && text.contains("value=\"not-an-email\""), "{text}");
    assert!(text.contains("<option value=\"staff\" selected>"), "the role chosen is kept: {text}");
});
