//! Operators: ending a firm's subscription waits for a second privileged operator (reactivating
//! does not), and signing out of the console revokes the token that signed in.

use crate::authz::*;
use crate::console::{console, token as operator_token};
use crate::ui::{csrf_of, post_form};
use reqwest::StatusCode;
use serde_json::json;

crate::both!(ending_a_subscription_needs_a_second_operator, |srv| async move {
    let f = firm(srv, "acme").await;
    let first = srv.client().with_bearer(&operator_token(srv, "first@platform.example", "privileged").await);
    let second = srv.client().with_bearer(&operator_token(srv, "second@platform.example", "privileged").await);
    let status = || async {
        let r = first.get("/api/v1/platform/tenants/acme/subscription").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["status"].as_str().unwrap().to_string()
    };
    let still_open = || async {
        assert_eq!(status().await, "active");
        assert_eq!(f.try_sign_in(srv, &f.owner.email).await.status, StatusCode::OK, "the owner signs in");
        assert_eq!(f.owner.c.get("/api/v1/matters").await.status, StatusCode::OK, "the owner's session works");
    };

    // One operator asks: a request, and the firm carries on.
    let r = first.post("/api/v1/platform/tenants/acme/end", json!({})).await;
    let req = pending_request(&r);
    still_open().await;
    // Not by the operator who asked.
    let r = first.post(&format!("/api/v1/platform/approvals/{req}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    still_open().await;

    // A second operator approves: now the firm is shut out.
    let r = second.post(&format!("/api/v1/platform/approvals/{req}/approve"), json!({})).await;
    assert_eq!((r.status, r.json()["state"].clone()), (StatusCode::OK, json!("approved")), "{}", r.text());
    assert_eq!(status().await, "ended");
    assert_ne!(f.try_sign_in(srv, &f.owner.email).await.status, StatusCode::OK, "no sign-in once ended");
    assert_eq!(f.owner.c.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "sessions ended with it");

    // Reactivating is one operator's decision.
    let r = first.post("/api/v1/platform/tenants/acme/reactivate", json!({})).await;
    assert_eq!((r.status, r.json()["status"].clone()), (StatusCode::OK, json!("active")), "{}", r.text());
    assert_eq!(f.try_sign_in(srv, &f.owner.email).await.status, StatusCode::OK);
});

crate::both!(signing_out_of_the_console_revokes_its_token, |srv| async move {
    srv.tenant("acme").await;
    let token = operator_token(srv, "ops@platform.example", "support").await;
    let api = srv.client().with_bearer(&token);
    assert_eq!(api.get("/api/v1/platform/health").await.status, StatusCode::OK);
    let browser = console(srv, &token).await;
    let home = browser.get("/platform").await;
    assert_eq!(home.status, StatusCode::OK);
    let r = post_form(&browser, "/platform/logout", &[("csrf", &csrf_of(&home.text()))]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(browser.get("/platform").await.status, StatusCode::SEE_OTHER, "signed out");
    let r = api.get("/api/v1/platform/health").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the token that signed in still works: {}", r.text());
    // Nor does it sign in to the console again.
    let r = post_form(&srv.client(), "/platform/login", &[("token", &token)]).await;
    assert_ne!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
});
