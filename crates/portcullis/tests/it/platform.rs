//! Platform operators: the service's own staff see health and the tenant directory and open
//! subscriptions, never tenant content; the privileged role needs current vetting, stops
//! working the moment vetting lapses, and is suspended (audited) by the background check.

use crate::support::sql_column;
use portcullis_core::clock::Clock;
use portcullis_testkit::PASSWORD;
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

crate::both!(operators_manage_subscriptions_but_never_read_content, |srv| async move {
    let portal = srv.portal();
    let (_, owner) = srv.tenant("acme").await;
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let m = o.post("/api/v1/matters", json!({"reference": "A-1", "title": "Private title"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = o.upload(&m, "passport.pdf", b"passport scan".to_vec()).await.json()["id"].as_str().unwrap().to_string();

    // A support operator (set up as the command line does).
    portal.add_operator("ops@platform.example", "Ops").await.unwrap();
    portal.grant_operator_role("ops@platform.example", "support").await.unwrap();
    use secrecy::ExposeSecret;
    let token = portal.operator_token("ops@platform.example", 7).await.unwrap().expose_secret().to_string();
    let ops = srv.client().with_bearer(&token);
    let h = ops.get("/api/v1/platform/health").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text());
    assert_eq!((h.json()["database"].clone(), h.json()["tenants"].clone()), (json!(true), json!(1)));
    let dir = ops.get("/api/v1/platform/tenants").await;
    let acme = dir.json()["items"][0].clone();
    assert_eq!((acme["name"].clone(), acme["documents"].clone()), (json!("acme"), json!(1)));
    assert!(!dir.text().contains("Private title") && !dir.text().contains("passport"), "{}", dir.text());
    let create = json!({"name": "harbour", "owner_email": "owner@harbour.example"});
    assert_eq!(ops.post("/api/v1/platform/tenants", create.clone()).await.status, StatusCode::FORBIDDEN);

    // No tenant content, by any route: operator tokens are unknown to the tenant API...
    for path in
        ["/api/v1/matters".to_string(), format!("/api/v1/matters/{m}"), format!("/api/v1/documents/{doc}/content")]
    {
        assert_eq!(ops.get(&path).await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // ...and tenant sessions and tokens are unknown to the platform API.
    assert_eq!(o.get("/api/v1/platform/health").await.status, StatusCode::UNAUTHORIZED);
    let wrong = srv.client().with_bearer("pco_wrong");
    assert_eq!(wrong.get("/api/v1/platform/health").await.status, StatusCode::UNAUTHORIZED);

    // The privileged role needs current vetting.
    let err = portal.grant_operator_role("ops@platform.example", "privileged").await.unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let now = srv.clock.now();
    let bad = portal.record_vetting("ops@platform.example", "Agency", now, now - Duration::days(1)).await;
    assert_eq!(bad.unwrap_err().code(), "invalid_request");
    let bad =
        portal.record_vetting("ops@platform.example", "Agency", now + Duration::days(1), now + Duration::days(9)).await;
    assert_eq!(bad.unwrap_err().code(), "invalid_request");
    portal
        .record_vetting("ops@platform.example", "Vetting Agency Ltd", now - Duration::days(10), now + Duration::days(5))
        .await
        .unwrap();
    portal.grant_operator_role("ops@platform.example", "privileged").await.unwrap();
    let bad = json!({"name": "Not A Name!", "owner_email": "owner@harbour.example"});
    let r = ops.post("/api/v1/platform/tenants", bad).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".to_string()));
    let r = ops.post("/api/v1/platform/tenants", create.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.json()["owner_setup_url"].as_str().unwrap().contains("/invite/"));
    let r = ops.post("/api/v1/platform/tenants", create).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a second subscription of the same name: {}", r.text());

    // Vetting lapses: the role stops working at once, and the background check suspends it.
    srv.clock.advance(Duration::days(6));
    let again = json!({"name": "third", "owner_email": "owner@third.example"});
    assert_eq!(ops.post("/api/v1/platform/tenants", again).await.status, StatusCode::FORBIDDEN);
    assert_eq!(ops.get("/api/v1/platform/health").await.status, StatusCode::OK, "support still works");
    assert_eq!(portal.suspend_lapsed_operators().await.unwrap(), 1);
    assert_eq!(portal.suspend_lapsed_operators().await.unwrap(), 0, "suspended once");
    let listed = portal.list_operators().await.unwrap();
    assert!(listed[0].grants.iter().any(|g| g.suspended_at.is_some()));
    // Re-vetting and re-granting restores it.
    let now = srv.clock.now();
    portal.record_vetting("ops@platform.example", "Vetting Agency Ltd", now, now + Duration::days(365)).await.unwrap();
    portal.grant_operator_role("ops@platform.example", "privileged").await.unwrap();
    let fourth = json!({"name": "fourth", "owner_email": "owner@fourth.example"});
    assert_eq!(ops.post("/api/v1/platform/tenants", fourth).await.status, StatusCode::CREATED);

    assert!(portal.operator_token("ops@platform.example", 0).await.is_err());
    // Revoking ends the token at once.
    assert_eq!(portal.revoke_operator_tokens("ops@platform.example").await.unwrap(), 1);
    assert_eq!(ops.get("/api/v1/platform/health").await.status, StatusCode::UNAUTHORIZED);
    let actions = sql_column(&srv.db_url(), "SELECT action FROM audit_events WHERE chain = ''").await;
    for a in [
        "operator.add",
        "operator.vetting",
        "operator.grant",
        "operator.grant_refused",
        "operator.refused",
        "operator.role_suspended",
        "operator.tokens_revoked",
    ] {
        assert!(actions.iter().any(|x| x == a), "no {a}: {actions:?}");
    }
});

/// Set up a vetted, privileged operator (as the command line does); returns their token.
async fn privileged_operator(srv: &portcullis_testkit::TestServer, email: &str) -> String {
    use secrecy::ExposeSecret;
    let portal = srv.portal();
    let now = srv.clock.now();
    portal.add_operator(email, "Operator").await.unwrap();
    portal
        .record_vetting(email, "Vetting Agency Ltd", now - Duration::days(1), now + Duration::days(90))
        .await
        .unwrap();
    portal.grant_operator_role(email, "privileged").await.unwrap();
    portal.operator_token(email, 7).await.unwrap().expose_secret().to_string()
}

crate::both!(master_key_rotation_needs_a_second_operator, |srv| async move {
    use crate::support::portcullis;
    use portcullis_core::model::PlatformAction;
    let portal = srv.portal();
    srv.tenant("acme").await;
    let a = srv.client().with_bearer(&privileged_operator(srv, "a@platform.example").await);
    let b = srv.client().with_bearer(&privileged_operator(srv, "b@platform.example").await);
    portal.add_operator("s@platform.example", "Support").await.unwrap();
    portal.grant_operator_role("s@platform.example", "support").await.unwrap();
    use secrecy::ExposeSecret;
    let s = srv.client().with_bearer(portal.operator_token("s@platform.example", 7).await.unwrap().expose_secret());
    let rotate = json!({"action": "rotate_master_key"});
    let cli = |args: &[&str]| {
        let mut c = portcullis(srv.dir.path());
        c.env("PORTCULLIS_DATABASE_URL", srv.db_url()).args(["keys", "rotate-master"]).args(args);
        c.output().unwrap()
    };
    let next_key = srv.dir.path().join("master.key.next");

    // Only privileged operators ask, and only for actions that exist.
    assert_eq!(s.post("/api/v1/platform/approvals", rotate.clone()).await.status, StatusCode::FORBIDDEN);
    let r = a.post("/api/v1/platform/approvals", json!({"action": "format_disks"})).await;
    assert_eq!(r.error_code(), "invalid_request");
    let r = a.post("/api/v1/platform/approvals", rotate.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["state"], "pending");

    // Without an approval, or with one still pending, the command refuses and makes no key.
    let o = cli(&[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("second operator's approval"), "{o:?}");
    let o = cli(&["--approval", &id]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not approved yet"), "{o:?}");
    assert!(!next_key.exists());

    // The requester cannot approve; a second privileged operator can, once.
    let r = a.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".to_string()));
    assert_eq!(
        s.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    let r = b.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!((r.status, r.json()["state"].clone()), (StatusCode::OK, json!("approved")), "{}", r.text());
    assert_eq!(
        b.post(&format!("/api/v1/platform/approvals/{id}/reject"), json!({})).await.status,
        StatusCode::CONFLICT
    );

    // Now the rotation runs, and the approval is spent.
    let o = cli(&["--approval", &id]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("master key rotated"), "{o:?}");
    assert!(srv.dir.path().join("master.key.previous").exists());
    let o = cli(&["--approval", &id]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("A use of this approval already exists"), "{o:?}");
    let listed = a.get("/api/v1/platform/approvals").await.json();
    assert!(listed["items"][0]["used_at"].is_string(), "{listed}");
    // The rotation's change record names the key before and after and both operators.
    let changes = a.get("/api/v1/platform/changes?action=keys.rotate_master").await;
    assert_eq!(changes.status, StatusCode::OK, "{}", changes.text());
    let records = changes.json()["items"].as_array().unwrap().clone();
    assert!(!records.is_empty(), "{records:?}");
    let approved = &listed["items"][0];
    for r in &records {
        assert!(r["reference"].as_str().unwrap().starts_with("CHG-P-"), "{r}");
        assert_eq!(r["approval"]["id"], json!(id), "{r}");
        assert_eq!(
            r["approval"]["requested_by"],
            json!(format!("operator:{}", approved["requested_by"].as_str().unwrap()))
        );
        assert_eq!(
            r["approval"]["approved_by"],
            json!(format!("operator:{}", approved["decided_by"].as_str().unwrap()))
        );
    }
    let first = &records[0];
    assert!(first["before"]["key_ids"].as_array().is_some_and(|k| !k.is_empty()), "{first}");
    assert!(
        first["after"]["key_id"].is_string() && first["after"]["key_id"] != first["before"]["key_ids"][0],
        "{first}"
    );
    let o = cli(&["--approval", "not-an-id"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a request id"), "{o:?}");

    // Rejected and expired requests allow nothing.
    let r = a.post("/api/v1/platform/approvals", rotate.clone()).await.json();
    let rejected: portcullis_core::ids::ApprovalId = r["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        b.post(&format!("/api/v1/platform/approvals/{rejected}/reject"), json!({})).await.json()["state"],
        "rejected"
    );
    let e = portal.use_platform_approval(rejected, PlatformAction::RotateMasterKey).await.unwrap_err();
    assert_eq!(e.code(), "forbidden");
    let late = a.post("/api/v1/platform/approvals", rotate).await.json()["id"].as_str().unwrap().to_string();
    srv.clock.advance(Duration::hours(25));
    let r = b.post(&format!("/api/v1/platform/approvals/{late}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::GONE, "request_expired".to_string()));

    let events = sql_column(&srv.db_url(), "SELECT action FROM audit_events").await;
    for expected in [
        "platform.approval_requested",
        "platform.approval_approved",
        "platform.approval_rejected",
        "platform.approval_used",
        "operator.refused",
        "keys.rotate_master",
    ] {
        assert!(events.iter().any(|e| e == expected), "no {expected}: {events:?}");
    }
});

crate::both!(an_end_approved_after_the_firm_changed_changes_nothing, |srv| async move {
    use portcullis_core::model::PlatformAction;
    srv.tenant("acme").await;
    let a = srv.client().with_bearer(&privileged_operator(srv, "a@platform.example").await);
    let b = srv.client().with_bearer(&privileged_operator(srv, "b@platform.example").await);
    let status = || async { a.get("/api/v1/platform/tenants/acme/subscription").await.json() };

    // Asked for by one operator; meanwhile the command line ends the firm itself.
    let r = a.post("/api/v1/platform/tenants/acme/end", json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = a.post("/api/v1/platform/approvals", json!({"action": "end_subscription"})).await;
    assert_eq!(r.error_code(), "invalid_request", "a firm's end is asked for on the firm: {}", r.text());
    srv.portal().end_subscription_cli("acme").await.unwrap();
    let ended_at = status().await["ended_at"].clone();
    assert!(ended_at.is_string());

    // The approval comes too late: refused, and nothing changes.
    let r = b.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()), "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("already ended"), "{}", r.text());
    let s = status().await;
    assert_eq!((s["status"].clone(), s["ended_at"].clone()), (json!("ended"), ended_at), "{s}");
    let listed = a.get("/api/v1/platform/approvals").await.json();
    let req = listed["items"].as_array().unwrap().iter().find(|r| r["id"] == json!(id)).unwrap().clone();
    assert_eq!((req["state"].clone(), req["used_at"].clone()), (json!("pending"), json!(null)), "{req}");
    let refused = sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'operator.refused'").await;
    assert!(refused.iter().any(|d| d.contains("approve_end_subscription")), "audited: {refused:?}");

    // It can still be rejected; and an end's approval is never a master-key rotation's.
    let r = b.post(&format!("/api/v1/platform/approvals/{id}/reject"), json!({})).await;
    assert_eq!(r.json()["state"], "rejected", "{}", r.text());
    let e = srv.portal().use_platform_approval(id.parse().unwrap(), PlatformAction::RotateMasterKey).await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    srv.portal().reactivate_subscription_cli("acme").await.unwrap();
    let approved = crate::support::end_subscription(srv, &a, "acme").await;
    let id = approved["id"].as_str().unwrap();
    let e = srv.portal().use_platform_approval(id.parse().unwrap(), PlatformAction::RotateMasterKey).await.unwrap_err();
    assert_eq!(e.code(), "not_found", "an approved end cannot be spent on a rotation");
    assert_eq!(status().await["status"], "ended");
});
