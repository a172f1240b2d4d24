//! Intrusion detection and prevention against a real server: brute force, password spraying,
//! credential stuffing, enumeration scans and repeated CSRF failures are detected, blocked and
//! alerted (signed webhook); admins and operators see the blocks and lift them (audited); and
//! colleagues behind the same address, with a session or a known device, work on. Clients
//! connect from different loopback addresses (Linux accepts all of 127.0.0.0/8).

use crate::alerts::{kind, on_both, server};
use crate::support::sql_column;
use portcullis_testkit::{Client, PASSWORD, TestServer, WebhookSink};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

/// A client of `srv` whose connections come from `127.0.0.<n>`.
pub(crate) fn client_from(srv: &TestServer, n: u8) -> Client {
    let mut c = srv.client();
    let cert = reqwest::Certificate::from_pem(&srv.cert_pem).unwrap();
    c.http = reqwest::Client::builder()
        .tls_certs_only([cert])
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap();
    c
}

/// A privileged, vetted operator's client.
pub(crate) async fn operator(srv: &TestServer) -> Client {
    let portal = srv.portal();
    let now = portcullis_core::clock::Clock::now(&*srv.clock);
    portal.add_operator("ops@platform.example", "Ops").await.unwrap();
    let (from, to) = (now - time::Duration::days(1), now + time::Duration::days(300));
    portal.record_vetting("ops@platform.example", "Vetting Agency Ltd", from, to).await.unwrap();
    portal.grant_operator_role("ops@platform.example", "privileged").await.unwrap();
    let token = portal.operator_token("ops@platform.example", 7).await.unwrap();
    srv.client().with_bearer(token.expose_secret())
}

async fn audited(srv: &TestServer, action: &str) -> bool {
    sql_column(&srv.db_url(), "SELECT action FROM audit_events").await.iter().any(|a| a == action)
}

fn blocks_of(r: &portcullis_testkit::Resp) -> Vec<serde_json::Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

on_both!(password_spraying_blocks_the_source_but_not_colleagues, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| c.ids_spray_accounts = 3).await;
    let (tenant, owner) = srv.tenant("acme").await;
    for u in ["a", "b", "c", "d", "e"] {
        srv.user(tenant, &format!("{u}@acme.example"), "staff").await;
    }
    // Colleagues in the same office (the same address): one signed in, one with a known device.
    let mut office = client_from(&srv, 1);
    assert_eq!(office.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let mut known = client_from(&srv, 1);
    assert_eq!(known.login("acme", "d@acme.example", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(known.delete("/api/v1/session").await.status, StatusCode::NO_CONTENT);

    // The attacker tries one password on many accounts.
    let mut attacker = client_from(&srv, 1);
    for u in ["a", "b", "c"] {
        let r = attacker.login("acme", &format!("{u}@acme.example"), "Summer2026!Summer").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = attacker.login("acme", "e@acme.example", "Summer2026!Summer").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "source_blocked".to_string()));
    assert!(r.json()["message"].as_str().unwrap().contains("blocked until"), "{}", r.text());
    let r = attacker.get("/api/v1/matters").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "source_blocked".to_string()));
    let page = Client::send(attacker.http.get(format!("{}/login", srv.base))).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "pages are blocked too");

    // The office works on: the session, and a sign-in from a known device.
    assert_eq!(office.get("/api/v1/matters").await.status, StatusCode::OK);
    assert_eq!(known.login("acme", "d@acme.example", PASSWORD).await.status, StatusCode::OK);
    // A colleague with the right password but no known device waits for the block to end.
    let r = client_from(&srv, 1).login("acme", "e@acme.example", PASSWORD).await;
    assert_eq!(r.error_code(), "source_blocked");
    // Other addresses are not affected.
    assert_eq!(client_from(&srv, 2).login("acme", "e@acme.example", PASSWORD).await.status, StatusCode::OK);

    let got = hook.wait_for(1, kind("password_spraying")).await;
    assert_eq!(got[0].json()["detail"]["ip"], "127.0.0.1");

    // Operators see the block and the detection, and lift it (audited). Admins of a firm do
    // not see source blocks.
    let ops = operator(&srv).await;
    let blocks = blocks_of(&ops.get("/api/v1/platform/security/blocks").await);
    let block = blocks.iter().find(|b| b["ip"] == "127.0.0.1").expect("the source block");
    assert_eq!((block["scope"].as_str(), block["reason"].as_str()), (Some("source"), Some("password_spraying")));
    let detections = blocks_of(&ops.get("/api/v1/platform/security/detections").await);
    assert!(detections.iter().any(|d| d["kind"] == "password_spraying"));
    assert!(blocks_of(&office.get("/api/v1/security/blocks").await).is_empty());
    assert_eq!(office.get("/api/v1/platform/security/blocks").await.status, StatusCode::UNAUTHORIZED);
    let id = block["id"].as_str().unwrap();
    assert_eq!(office.delete(&format!("/api/v1/platform/security/blocks/{id}")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ops.delete(&format!("/api/v1/platform/security/blocks/{id}")).await.status, StatusCode::NO_CONTENT);
    let r = ops.delete(&format!("/api/v1/platform/security/blocks/{id}")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "not_found".to_string()), "lifted once");
    assert_eq!(attacker.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "lifted");
    assert!(audited(&srv, "security.source_blocked").await && audited(&srv, "security.source_unblocked").await);
});

on_both!(brute_force_and_stuffing_protect_the_account, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| {
        c.ids_brute_force_failures = 3;
        c.ids_stuffing_sources = 2;
    })
    .await;
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "bob@acme.example", "staff").await;
    srv.user(tenant, "carol@acme.example", "staff").await;
    let mut admin = client_from(&srv, 1);
    assert_eq!(admin.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    // Bob's own browser knows its device.
    let mut bobs = client_from(&srv, 2);
    assert_eq!(bobs.login("acme", "bob@acme.example", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(bobs.delete("/api/v1/session").await.status, StatusCode::NO_CONTENT);

    // Brute force on bob from one address: the address is blocked and the account protected.
    let attacker = client_from(&srv, 3);
    for _ in 0..3 {
        let r = attacker.clone().login("acme", "bob@acme.example", "a wrong guess at it").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attacker.clone().login("acme", "bob@acme.example", PASSWORD).await.error_code(), "source_blocked");
    let got = hook.wait_for(1, |r| kind("brute_force")(r) && r.json()["detail"]["detection"] == "brute_force").await;
    assert_eq!(got[0].json()["detail"]["responses"], json!(["source_blocked", "account_protected"]));
    // Bob has no second factor: from a new device, even with the password, he is refused...
    let r = client_from(&srv, 4).login("acme", "bob@acme.example", PASSWORD).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "account_protected".to_string()));
    // ...from his known device he signs in, and must set up a second factor before anything else.
    assert_eq!(bobs.login("acme", "bob@acme.example", PASSWORD).await.status, StatusCode::OK);
    let r = bobs.get("/api/v1/matters").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "two_factor_enrolment_required".to_string()));

    // Credential stuffing on carol: one failure from each of two addresses.
    for n in [5, 6] {
        assert_eq!(
            client_from(&srv, n).login("acme", "carol@acme.example", "leaked elsewhere 1").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    hook.wait_for(1, kind("credential_stuffing")).await;
    assert_eq!(
        client_from(&srv, 5).get("/api/v1/matters").await.status,
        StatusCode::UNAUTHORIZED,
        "no address blocked"
    );

    // The firm's admin sees both protections and the detections, and lifts bob's (audited).
    let blocks = blocks_of(&admin.get("/api/v1/security/blocks").await);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert!(blocks.iter().all(|b| b["scope"] == "account"));
    let detections = blocks_of(&admin.get("/api/v1/security/detections").await);
    for k in ["brute_force", "credential_stuffing"] {
        assert!(detections.iter().any(|d| d["kind"] == k), "{k} in {detections:?}");
    }
    let bobs_block = blocks.iter().find(|b| b["reason"] == "brute_force").unwrap()["id"].as_str().unwrap().to_string();
    srv.user(tenant, "dave@acme.example", "staff").await;
    let mut staff = client_from(&srv, 1);
    assert_eq!(staff.login("acme", "dave@acme.example", PASSWORD).await.status, StatusCode::OK);
    let r = staff.delete(&format!("/api/v1/security/blocks/{bobs_block}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "staff may not lift blocks");
    assert_eq!(admin.delete(&format!("/api/v1/security/blocks/{bobs_block}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&format!("/api/v1/security/blocks/{bobs_block}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.delete("/api/v1/security/blocks/not-an-id").await.status, StatusCode::NOT_FOUND);
    assert_eq!(client_from(&srv, 7).login("acme", "bob@acme.example", PASSWORD).await.status, StatusCode::OK);
    assert!(audited(&srv, "security.account_protection_lifted").await && audited(&srv, "auth.login_protected").await);
    // Another firm's admin sees none of it and cannot lift it.
    let (_, other) = srv.tenant("beta").await;
    let mut beta = client_from(&srv, 1);
    beta.login("beta", &other, PASSWORD).await;
    assert!(blocks_of(&beta.get("/api/v1/security/blocks").await).is_empty());
    let carols =
        blocks.iter().find(|b| b["reason"] == "credential_stuffing").unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(beta.delete(&format!("/api/v1/security/blocks/{carols}")).await.status, StatusCode::NOT_FOUND);
});

on_both!(scans_and_csrf_failures_block_the_source, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| {
        c.ids_scan_errors = 10;
        c.ids_csrf_failures = 3;
    })
    .await;
    let (_, owner) = srv.tenant("acme").await;
    // An enumeration scan: a burst of 404s and 401s.
    let scanner = client_from(&srv, 8);
    for i in 0..10 {
        let r = scanner.get(&format!("/api/v1/no-such-thing-{i}")).await;
        assert!(matches!(r.status, StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED), "{}", r.status);
    }
    let r = scanner.get("/api/v1/matters").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "source_blocked".to_string()));
    hook.wait_for(1, kind("enumeration_scan")).await;

    // Repeated CSRF failures by a signed-in browser: its address is blocked for anonymous
    // requests; its own (valid) session goes on.
    let mut c = client_from(&srv, 9);
    assert_eq!(c.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    c.csrf = Some("forged".into());
    for _ in 0..3 {
        let r = c.post("/api/v1/matters", json!({"reference": "X-1", "title": "x"})).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "csrf_failed".to_string()));
    }
    hook.wait_for(1, kind("csrf_failures")).await;
    assert_eq!(client_from(&srv, 9).get("/api/v1/matters").await.error_code(), "source_blocked");
    assert_eq!(c.get("/api/v1/matters").await.status, StatusCode::OK);
    let ops = operator(&srv).await;
    let blocks = blocks_of(&ops.get("/api/v1/platform/security/blocks").await);
    for (ip, reason) in [("127.0.0.8", "enumeration_scan"), ("127.0.0.9", "csrf_failures")] {
        assert!(blocks.iter().any(|b| b["ip"] == ip && b["reason"] == reason), "{ip} {reason}: {blocks:?}");
    }
    // Blocks end by themselves.
    srv.clock.advance(time::Duration::minutes(61));
    assert_eq!(scanner.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
});

// An attacked account that already has a second factor: the attacker's guesses protect it, a
// session the owner opened and stepped up before the attack loses its step-up (its next
// sensitive action asks for the code again), while ordinary work in it goes on; a new sign-in
// still needs the code, from any device.
on_both!(a_protected_account_with_a_second_factor_steps_up_again, |db| async move {
    use portcullis_core::clock::Clock;
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| c.ids_brute_force_failures = 3).await;
    let (_, owner) = srv.tenant("acme").await;
    let mut mine = client_from(&srv, 1);
    assert_eq!(mine.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let secret = mine.post("/api/v1/me/totp", json!({})).await.json()["secret"].as_str().unwrap().to_string();
    let code = portcullis_testkit::totp_code(&secret, srv.clock.now());
    assert_eq!(mine.post("/api/v1/me/totp/confirm", json!({"code": code})).await.status, StatusCode::OK);
    srv.clock.advance(time::Duration::seconds(30));
    let code = portcullis_testkit::totp_code(&secret, srv.clock.now());
    assert_eq!(mine.post("/api/v1/session/step-up", json!({"code": code})).await.status, StatusCode::OK);
    let token = json!({"name": "ci", "scopes": ["read"]});
    assert_eq!(mine.post("/api/v1/tokens", token.clone()).await.status, StatusCode::CREATED);

    // The attack: wrong passwords from another address protect the account.
    let attacker = client_from(&srv, 3);
    for _ in 0..3 {
        assert_eq!(
            attacker.clone().login("acme", &owner, "a wrong guess at it").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    hook.wait_for(1, kind("brute_force")).await;
    assert!(audited(&srv, "security.account_protected").await);

    // The owner's session works on, but its earlier step-up no longer counts.
    assert_eq!(mine.get("/api/v1/matters").await.status, StatusCode::OK);
    let r = mine.post("/api/v1/tokens", token.clone()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "step_up_required".to_string()));
    srv.clock.advance(time::Duration::seconds(30));
    let code = portcullis_testkit::totp_code(&secret, srv.clock.now());
    assert_eq!(mine.post("/api/v1/session/step-up", json!({"code": code})).await.status, StatusCode::OK);
    assert_eq!(mine.post("/api/v1/tokens", token).await.status, StatusCode::CREATED);

    // A new sign-in needs the code as always, and with it succeeds from a device never seen.
    let mut elsewhere = client_from(&srv, 4);
    let r = elsewhere.login("acme", &owner, PASSWORD).await;
    assert_eq!(r.error_code(), "second_factor_required");
    srv.clock.advance(time::Duration::seconds(30));
    let code = portcullis_testkit::totp_code(&secret, srv.clock.now());
    let r = elsewhere.login_with_code("acme", &owner, PASSWORD, Some(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
});

// Failed sign-ins sent all at once from one address still cross the spraying threshold exactly
// once: one detection, one block (on PostgreSQL, counting without serialising skipped it).
on_both!(parallel_failures_cross_a_threshold_once, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| c.ids_spray_accounts = 6).await;
    let (tenant, _) = srv.tenant("acme").await;
    for n in 0..12 {
        srv.user(tenant, &format!("u{n}@acme.example"), "staff").await;
    }
    let attacker = client_from(&srv, 9);
    let tries = (0..12).map(|n| {
        let mut c = attacker.clone();
        async move { c.login("acme", &format!("u{n}@acme.example"), "Winter2026!Winter").await.status }
    });
    let answers = futures::future::join_all(tries).await;
    assert!(answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::FORBIDDEN), "{answers:?}");
    hook.wait_for(1, kind("password_spraying")).await;
    let detections = sql_column(&srv.db_url(), "SELECT kind FROM security_detections").await;
    assert_eq!(detections.iter().filter(|k| *k == "password_spraying").count(), 1, "{detections:?}");
    let blocks = sql_column(&srv.db_url(), "SELECT reason FROM security_blocks WHERE scope = 'source'").await;
    assert_eq!(blocks, vec!["password_spraying".to_string()]);
});

// Pages answer a made-up session cookie with a redirect to the sign-in form; those count toward
// scan detection like API 401s (such requests are not limited per address), while first visits
// without any cookie do not.
on_both!(made_up_session_cookies_on_pages_count_as_a_scan, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| c.ids_scan_errors = 5).await;
    let visitor = client_from(&srv, 30);
    for _ in 0..10 {
        assert_eq!(visitor.get("/matters").await.status, StatusCode::SEE_OTHER, "a first visit goes to sign-in");
    }
    let prober = client_from(&srv, 31);
    for n in 0..5 {
        let r = Client::send(
            prober
                .request(reqwest::Method::GET, "/matters")
                .header("cookie", format!("__Host-portcullis=pcs_made-up-{n}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    hook.wait_for(1, kind("enumeration_scan")).await;
    let blocked = client_from(&srv, 31).get("/api/v1/session").await;
    assert_eq!(blocked.error_code(), "source_blocked");
    assert_ne!(visitor.get("/api/v1/session").await.error_code(), "source_blocked", "the first visitor is not blocked");
});
