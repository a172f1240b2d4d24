//! The platform operators' console in the browser (plain forms, no script): sign-in with a
//! platform token kept in a `__Host-` cookie, the tenant directory (counts only), and a firm's
//! subscription ended (asked by one operator, approved by a second) and reactivated, each
//! audited; CSRF, a mistyped confirmation, a support operator's lack of rights, a requester
//! approving their own request, made-up tokens and tenant sessions are all refused.

use crate::ui::{csrf_of, post_form};
use portcullis_core::clock::Clock;
use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::StatusCode;
use time::Duration;

/// A vetted operator with `role` and a fresh platform token.
pub(crate) async fn token(srv: &TestServer, email: &str, role: &str) -> String {
    use secrecy::ExposeSecret;
    let (portal, now) = (srv.portal(), srv.clock.now());
    portal.add_operator(email, "Operator").await.unwrap();
    portal.record_vetting(email, "Vetting Agency", now - Duration::days(1), now + Duration::days(900)).await.unwrap();
    portal.grant_operator_role(email, role).await.unwrap();
    portal.operator_token(email, 7).await.unwrap().expose_secret().to_string()
}

/// A browser signed in to the console with `token`.
pub(crate) async fn console(srv: &TestServer, token: &str) -> Client {
    let c = srv.client();
    let r = post_form(&c, "/platform/login", &[("token", token)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.headers["location"], "/platform");
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    for part in ["__Host-portcullis-operator=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Max-Age"), "gone with the browser: {cookie}");
    c
}

async fn owner_signs_in(srv: &TestServer, owner: &str) -> StatusCode {
    srv.client().login("acme", owner, PASSWORD).await.status
}

crate::both!(operators_end_and_reactivate_from_the_console, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    let root = token(srv, "root@platform.example", "privileged").await;
    let help = token(srv, "help@platform.example", "support").await;

    // Without a token, with a made-up one, or with a firm's session: back to the sign-in form.
    let anon = srv.client();
    let r = anon.get("/platform").await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/platform/login"));
    let r = post_form(&anon, "/platform/login", &[("token", "pco_made_up")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("id=\"error\"") && !r.headers.contains_key("set-cookie"), "{}", r.text());
    let mut firm = srv.client();
    assert_eq!(firm.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(firm.get("/platform").await.status, StatusCode::SEE_OTHER, "a firm's session is not an operator");

    // The directory: the firm and its counts, nothing of its content.
    let c = console(srv, &root).await;
    let home = c.get("/platform").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    assert!(
        home.text().contains("href=\"/platform/tenants/acme\"") && home.text().contains(">active<"),
        "{}",
        home.text()
    );
    let page = c.get("/platform/tenants/acme").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(&tenant.to_string()) && page.text().contains("id=\"end\""), "{}", page.text());
    let csrf = csrf_of(&page.text());
    assert_eq!(c.get("/platform/tenants/nobody").await.status, StatusCode::NOT_FOUND);

    // Ending needs the CSRF value and the firm's name typed again.
    let r = post_form(&c, "/platform/tenants/acme/end", &[("csrf", "forged"), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_form(&c, "/platform/tenants/acme/end", &[("csrf", &csrf), ("confirm", "acne")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text().contains("Type the firm&#x27;s name") || r.text().contains("Type the firm's name"),
        "{}",
        r.text()
    );
    assert_eq!(owner_signs_in(srv, &owner).await, StatusCode::OK, "nothing ended yet");
    // A support operator sees the firm but may not end it.
    let h = console(srv, &help).await;
    let hpage = h.get("/platform/tenants/acme").await;
    assert_eq!(hpage.status, StatusCode::OK);
    let r =
        post_form(&h, "/platform/tenants/acme/end", &[("csrf", &csrf_of(&hpage.text())), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // Ending asks: the firm carries on, and the page says it waits for a second operator.
    let r = post_form(&c, "/platform/tenants/acme/end", &[("csrf", &csrf), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.text();
    assert!(t.contains("id=\"status\">active<") && t.contains("id=\"pending-end\""), "{t}");
    assert!(
        t.contains("second privileged operator") && !t.contains("id=\"approve-end\""),
        "not for the requester: {t}"
    );
    assert!(!t.contains("id=\"end\""), "no second request while one waits: {t}");
    assert_eq!(owner_signs_in(srv, &owner).await, StatusCode::OK, "nothing ended yet");
    assert_eq!(firm.get("/matters").await.status, StatusCode::OK, "the firm's sessions carry on");
    let r = post_form(&c, "/platform/tenants/acme/end", &[("csrf", &csrf), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "one request at a time: {}", r.text());
    let pending = |page: &str| {
        let at = page.find("name=\"approval\" value=\"").unwrap() + "name=\"approval\" value=\"".len();
        page[at..at + 36].to_string()
    };
    // The requester cannot decide their own request, even by posting the form.
    let other = token(srv, "second@platform.example", "privileged").await;
    let o = console(srv, &other).await;
    let opage = o.get("/platform/tenants/acme").await.text();
    assert!(opage.contains("id=\"approve-end\"") && opage.contains("id=\"reject-end\""), "{opage}");
    let id = pending(&opage);
    let r = post_form(&c, "/platform/tenants/acme/end/approve", &[("csrf", &csrf), ("approval", &id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let ocsrf = csrf_of(&opage);
    let r = post_form(&o, "/platform/tenants/acme/end/approve", &[("csrf", &ocsrf), ("approval", "made-up")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "only the request shown: {}", r.text());
    assert_eq!(owner_signs_in(srv, &owner).await, StatusCode::OK, "still nothing ended");

    // A second operator approves: now it ends.
    let r = post_form(&o, "/platform/tenants/acme/end/approve", &[("csrf", &ocsrf), ("approval", &id)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("id=\"status\">ended<") && r.text().contains("id=\"destroy-after\""), "{}", r.text());
    assert!(r.text().contains("id=\"reactivate\"") && !r.text().contains("id=\"pending-end\""));
    assert_eq!(owner_signs_in(srv, &owner).await, StatusCode::FORBIDDEN, "ended: no sign-in");
    assert_eq!(firm.get("/matters").await.status, StatusCode::SEE_OTHER, "the firm's sessions ended with it");

    let r = post_form(&c, "/platform/tenants/acme/reactivate", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("id=\"status\">active<"), "{}", r.text());
    assert_eq!(owner_signs_in(srv, &owner).await, StatusCode::OK, "active again");
    let r = post_form(&c, "/platform/tenants/acme/reactivate", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "already active");

    // A rejected request ends nothing, and a new one may be made.
    let r = post_form(&c, "/platform/tenants/acme/end", &[("csrf", &csrf), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = pending(&o.get("/platform/tenants/acme").await.text());
    let r = post_form(&o, "/platform/tenants/acme/end/reject", &[("csrf", &ocsrf), ("approval", &id)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("id=\"status\">active<") && r.text().contains("id=\"end\""), "{}", r.text());
    assert!(!r.text().contains("id=\"pending-end\""), "{}", r.text());
    assert_eq!(owner_signs_in(srv, &owner).await, StatusCode::OK, "rejected: still active");

    // Every step is on the platform's audit chain: the requests by this operator, the end by
    // the one who approved it, the reactivation by this one.
    let api = srv.client().with_bearer(&root);
    let events = |action: &'static str| {
        let api = &api;
        async move {
            let r = api.get(&format!("/api/v1/platform/audit?action={action}")).await;
            r.json()["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let asked = events("subscription.end_requested").await;
    assert_eq!(asked.len(), 2, "{asked:?}");
    let ended = events("subscription.end").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    let reactivated = events("subscription.reactivate").await;
    assert_eq!(reactivated.len(), 1, "{reactivated:?}");
    assert_eq!(asked[0]["actor"], reactivated[0]["actor"]);
    assert!(ended[0]["actor"].as_str().unwrap().starts_with("operator:"), "{:?}", ended[0]);
    assert_ne!(ended[0]["actor"], asked[0]["actor"], "ended by the second operator");
    assert_eq!(events("platform.approval_rejected").await.len(), 1);

    // Signing out forgets the token in this browser.
    let r = post_form(&c, "/platform/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(c.get("/platform").await.status, StatusCode::SEE_OTHER);
});
