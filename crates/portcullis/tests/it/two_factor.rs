//! Two-factor authentication end to end: TOTP enrolment with recovery codes, sign-in that needs
//! the code, replayed and wrong codes, step-up for sensitive actions, and the firm's requirement
//! forcing enrolment. The server's clock is moved instead of waiting for time steps.

use crate::support::sql_column;
use portcullis_testkit::{Client, PASSWORD, TestServer, totp_code};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

/// Enrol the signed-in client's user; returns (secret, recovery codes).
async fn enrol(srv: &TestServer, c: &Client) -> (String, Vec<String>) {
    let r = c.post("/api/v1/me/totp", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let e = r.json();
    let secret = e["secret"].as_str().unwrap().to_string();
    assert!(e["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    let r = c.post("/api/v1/me/totp/confirm", json!({"code": totp_code(&secret, now(srv))})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let codes: Vec<String> =
        r.json()["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (secret, codes)
}

fn now(srv: &TestServer) -> time::OffsetDateTime {
    use portcullis_core::clock::Clock;
    srv.clock.now()
}

async fn actions(srv: &TestServer) -> Vec<String> {
    sql_column(&srv.db_url(), "SELECT action FROM audit_events ORDER BY at, seq").await
}

crate::both!(totp_sign_in_step_up_and_replay, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    assert_eq!(c.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(c.get("/api/v1/me/security").await.json()["totp_enabled"], false);

    // A wrong first code does not enrol anything.
    let r = c.post("/api/v1/me/totp", json!({})).await;
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let wrong = c.post("/api/v1/me/totp/confirm", json!({"code": "000000"})).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
    assert_eq!(c.get("/api/v1/me/security").await.json()["totp_enabled"], false);
    let first = totp_code(&secret, now(srv));
    let r = c.post("/api/v1/me/totp/confirm", json!({"code": first})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let recovery: Vec<String> =
        r.json()["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10);
    let st = c.get("/api/v1/me/security").await.json();
    assert_eq!((st["totp_enabled"].clone(), st["recovery_codes_left"].clone()), (json!(true), json!(10)));

    // Sign-in now needs the code: missing, wrong and replayed codes are refused alike.
    let mut fresh = srv.client();
    let r = fresh.login("acme", &owner, PASSWORD).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "second_factor_required".to_string()));
    let r = fresh.login_with_code("acme", &owner, PASSWORD, Some("123456")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "second_factor_required".to_string()));
    let r = fresh.login_with_code("acme", &owner, PASSWORD, Some(&first)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the code used to enrol was accepted again");
    // A wrong password with a right code is still just wrong credentials.
    srv.clock.advance(Duration::seconds(30));
    let code = totp_code(&secret, now(srv));
    let r = fresh.login_with_code("acme", &owner, "not the password at all", Some(&code)).await;
    assert_eq!(r.error_code(), "invalid_credentials");
    let r = fresh.login_with_code("acme", &owner, PASSWORD, Some(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The same code cannot open a second session.
    let r = srv.client().login_with_code("acme", &owner, PASSWORD, Some(&code)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Sensitive actions need a recent check: right after sign-in a token can be made...
    let token = json!({"name": "ci", "scopes": ["read"]});
    assert_eq!(fresh.post("/api/v1/tokens", token.clone()).await.status, StatusCode::CREATED);
    // ...eleven minutes later it needs a step-up.
    srv.clock.advance(Duration::minutes(11));
    let r = fresh.post("/api/v1/tokens", token.clone()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "step_up_required".to_string()));
    let r = fresh.post("/api/v1/session/step-up", json!({"code": "999999"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "second_factor_required".to_string()));
    let code = totp_code(&secret, now(srv));
    let r = fresh.post("/api/v1/session/step-up", json!({"code": code})).await;
    assert_eq!((r.status, r.json()["factor"].clone()), (StatusCode::OK, json!("totp")), "{}", r.text());
    assert_eq!(fresh.post("/api/v1/tokens", token.clone()).await.status, StatusCode::CREATED);
    let r = fresh.post("/api/v1/session/step-up", json!({"code": code})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a step-up code was accepted twice");

    // A recovery code signs in once, typed any way.
    let rc = recovery[3].to_uppercase().replace('-', " ");
    assert_eq!(srv.client().login_with_code("acme", &owner, PASSWORD, Some(&rc)).await.status, StatusCode::OK);
    assert_eq!(
        srv.client().login_with_code("acme", &owner, PASSWORD, Some(&rc)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fresh.get("/api/v1/me/security").await.json()["recovery_codes_left"], 9);

    // An API token can never change its owner's factors.
    let t = fresh.post("/api/v1/tokens", token).await.json()["token"].as_str().unwrap().to_string();
    let api = fresh.with_bearer(&t);
    assert_eq!(api.post("/api/v1/me/totp", json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api.delete("/api/v1/me/totp").await.status, StatusCode::FORBIDDEN);

    // Removing the factor is a change of factors: step-up first.
    srv.clock.advance(Duration::minutes(11));
    assert_eq!(fresh.delete("/api/v1/me/totp").await.error_code(), "step_up_required");
    let code = totp_code(&secret, now(srv));
    assert_eq!(fresh.post("/api/v1/session/step-up", json!({"code": code})).await.status, StatusCode::OK);
    assert_eq!(fresh.delete("/api/v1/me/totp").await.status, StatusCode::NO_CONTENT);
    assert_eq!(srv.client().login("acme", &owner, PASSWORD).await.status, StatusCode::OK);

    let a = actions(srv).await;
    for expected in [
        "auth.totp_enrolment_failed",
        "auth.totp_enrolled",
        "auth.second_factor_required",
        "auth.second_factor_failed",
        "auth.step_up_failed",
        "auth.step_up",
        "auth.totp_removed",
    ] {
        assert!(a.iter().any(|x| x == expected), "no {expected} event: {a:?}");
    }
});

crate::both!(firm_requirement_forces_enrolment, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "staff@acme.example", "staff").await;
    srv.user(tenant, "client@acme.example", "client").await;
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);

    // Only owners and admins set the requirement.
    let mut staff = srv.client();
    assert_eq!(staff.login("acme", "staff@acme.example", PASSWORD).await.status, StatusCode::OK);
    let policy = json!({"staff": true, "clients": false});
    assert_eq!(staff.put_json("/api/v1/tenant/two-factor", policy.clone()).await.status, StatusCode::FORBIDDEN);
    // The owner who sets it has a factor (the requirement binds them too).
    enrol(srv, &o).await;
    assert_eq!(o.put_json("/api/v1/tenant/two-factor", policy).await.status, StatusCode::NO_CONTENT);

    // The session opened before the requirement may at once do nothing but enrol, and so may
    // the next one.
    let r = staff.get("/api/v1/matters").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "two_factor_enrolment_required".to_string()));
    let mut staff = srv.client();
    assert_eq!(staff.login("acme", "staff@acme.example", PASSWORD).await.status, StatusCode::OK);
    let r = staff.get("/api/v1/matters").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "two_factor_enrolment_required".to_string()));
    let r = staff.post("/api/v1/matters", json!({"reference": "X", "title": "X"})).await;
    assert_eq!(r.error_code(), "two_factor_enrolment_required");
    assert_eq!(staff.get("/api/v1/me/security").await.json()["two_factor_required"], true);
    let (secret, _) = enrol(srv, &staff).await;
    assert_eq!(staff.get("/api/v1/matters").await.status, StatusCode::OK);
    // The factor cannot be removed while the firm requires it.
    let r = staff.delete("/api/v1/me/totp").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Next sign-in needs the code.
    srv.clock.advance(Duration::seconds(30));
    let mut again = srv.client();
    assert_eq!(again.login("acme", "staff@acme.example", PASSWORD).await.error_code(), "second_factor_required");
    let code = totp_code(&secret, now(srv));
    assert_eq!(again.login_with_code("acme", "staff@acme.example", PASSWORD, Some(&code)).await.status, StatusCode::OK);

    // Clients are not covered by a staff-only requirement.
    let mut client = srv.client();
    assert_eq!(client.login("acme", "client@acme.example", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(client.get("/api/v1/matters").await.status, StatusCode::OK);

    // Turning the requirement off is not one person's decision: it becomes a request.
    let r = o.put_json("/api/v1/tenant/two-factor", json!({"staff": false, "clients": false})).await;
    assert_eq!((r.status, r.json()["state"].clone()), (StatusCode::ACCEPTED, json!("pending")), "{}", r.text());
    assert_eq!(staff.get("/api/v1/me/security").await.json()["two_factor_required"], true);
    let a = actions(srv).await;
    assert_eq!(a.iter().filter(|x| *x == "tenant.two_factor_policy").count(), 1, "{a:?}");
});

crate::both!(wrong_codes_are_throttled_like_wrong_passwords, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    assert_eq!(c.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let (secret, _) = enrol(srv, &c).await;
    for _ in 0..5 {
        let r = srv.client().login_with_code("acme", &owner, PASSWORD, Some("000000")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    srv.clock.advance(Duration::seconds(10));
    let code = totp_code(&secret, now(srv));
    let r = srv.client().login_with_code("acme", &owner, PASSWORD, Some(&code)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a right code during the wait is refused");
    srv.clock.advance(Duration::seconds(30));
    let code = totp_code(&secret, now(srv));
    let r = srv.client().login_with_code("acme", &owner, PASSWORD, Some(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
});
