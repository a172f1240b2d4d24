//! Change records: every change to a security setting is listed with who, when, before, after
//! and (where separation of duties applies) who asked and who approved; the list takes the
//! audit log's filters, refuses others by name and is for owners, admins and auditors only.

use crate::erasure::signed_in;
use crate::roles::user_id;
use portcullis_testkit::Client;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The firm's change records with `action`.
async fn changes(c: &Client, action: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/v1/changes?action={action}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

crate::both!(security_changes_are_recorded_with_before_after_and_approval, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "admin@acme.example", "admin").await;
    srv.user(tenant, "clerk@acme.example", "staff").await;
    srv.user(tenant, "paralegal@acme.example", "staff").await;
    srv.user(tenant, "auditor@acme.example", "auditor").await;
    let o = signed_in(srv, &owner).await;
    let a = signed_in(srv, "admin@acme.example").await;
    let (owner_id, admin_id) = (user_id(&o, &owner).await, user_id(&o, "admin@acme.example").await);
    let clerk_id = user_id(&o, "clerk@acme.example").await;

    // A role change that needs a second person: asked by the owner, approved by the admin.
    let r = o.post(&format!("/api/v1/users/{clerk_id}/role"), json!({"role": "admin"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let req = r.json()["id"].as_str().unwrap().to_string();
    assert!(changes(&o, "user.role_change").await.is_empty(), "a request is not yet a change");
    assert_eq!(a.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await.status, StatusCode::OK);
    let role = changes(&o, "user.role_change").await;
    assert_eq!(role.len(), 1, "{role:?}");
    let c = &role[0];
    assert!(c["reference"].as_str().unwrap().starts_with("CHG-"), "{c}");
    assert_eq!((c["setting"].as_str(), c["subject"].clone()), (Some("user role"), json!(format!("user:{clerk_id}"))));
    assert_eq!((c["before"].clone(), c["after"].clone()), (json!({"role": "staff"}), json!({"role": "admin"})));
    assert_eq!(c["actor"], json!(format!("user:{admin_id}")), "the approver carries it out");
    assert_eq!(
        c["approval"],
        json!({"id": req, "requested_by": format!("user:{owner_id}"), "approved_by": format!("user:{admin_id}")})
    );

    // A protection setting: the whole list before and after, no approval needed.
    let set = o.put_json("/api/v1/tenant/network-access", json!({"networks": ["127.0.0.0/8"]})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let net = changes(&o, "tenant.network_access").await;
    assert_eq!(net.len(), 1, "{net:?}");
    assert_eq!(net[0]["actor"], json!(format!("user:{owner_id}")));
    assert_eq!(net[0]["before"]["sign_in_networks"], json!([]), "{}", net[0]);
    assert_eq!(net[0]["after"]["sign_in_networks"], json!(["127.0.0.0/8"]), "{}", net[0]);
    assert!(net[0]["approval"].is_null());

    // Lowering the two-factor requirement waits for the admin; the record says so. (The
    // requirement is the clients': one on staff would confine these owners' and admins' own
    // sessions, which have no factor, to enrolling one.)
    assert_eq!(
        o.put_json("/api/v1/tenant/two-factor", json!({"staff": false, "clients": true})).await.status,
        StatusCode::NO_CONTENT
    );
    let req = o.put_json("/api/v1/tenant/two-factor", json!({"staff": false, "clients": false})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await.status, StatusCode::OK);
    let tf = changes(&o, "tenant.two_factor_policy").await;
    assert_eq!(tf.len(), 2, "{tf:?}");
    assert_eq!((tf[0]["before"]["clients"].clone(), tf[0]["after"]["clients"].clone()), (json!(false), json!(true)));
    assert!(tf[0]["approval"].is_null(), "raising needs nobody else");
    assert_eq!((tf[1]["before"]["clients"].clone(), tf[1]["after"]["clients"].clone()), (json!(true), json!(false)));
    assert_eq!(tf[1]["approval"]["approved_by"], json!(format!("user:{admin_id}")));

    // An API token issued and revoked.
    let t = o.post("/api/v1/tokens", json!({"name": "sync", "scopes": ["read"]})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let token = t.json()["id"].as_str().unwrap().to_string();
    assert_eq!(o.delete(&format!("/api/v1/tokens/{token}")).await.status, StatusCode::NO_CONTENT);
    let issued = changes(&o, "token.create").await;
    assert_eq!((issued.len(), issued[0]["subject"].clone()), (1, json!(format!("token:{token}"))));
    assert_eq!(issued[0]["after"]["scopes"], json!(["read"]));
    assert_eq!(changes(&o, "token.revoke").await[0]["after"], json!({"state": "revoked"}));

    // A new data key version.
    srv.portal().start_tenant_rotation(tenant, &Default::default()).await.unwrap();
    let key = changes(&o, "keys.rotate_tenant.start").await;
    assert_eq!((key[0]["before"].clone(), key[0]["after"].clone()), (json!({"version": 1}), json!({"version": 2})));

    // The whole list is in order and holds only changes; paging works as for the audit log.
    let all = o.get("/api/v1/changes").await.json();
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 7, "role, network list, two-factor twice, token twice, data key: {all}");
    let seqs: Vec<i64> = items.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let first = o.get("/api/v1/changes?limit=1").await.json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    let next = first["next"].as_i64().unwrap();
    assert_eq!(o.get(&format!("/api/v1/changes?after={next}&limit=1")).await.json()["items"][0], items[1]);

    // Bad filters name themselves; staff may not read the list (the clerk is an admin now),
    // auditors may.
    for (q, field) in [
        ("action=matter.view", "action"),
        ("action=tenant.", "action"),
        ("matter=x", "matter"),
        ("limit=0", "limit"),
        ("color=red", "color"),
    ] {
        let r = o.get(&format!("/api/v1/changes?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
        assert!(r.text().contains(field), "{q}: {}", r.text());
    }
    assert_eq!(
        signed_in(srv, "paralegal@acme.example").await.get("/api/v1/changes").await.status,
        StatusCode::FORBIDDEN
    );
    let auditor = signed_in(srv, "auditor@acme.example").await;
    assert_eq!(auditor.get("/api/v1/changes").await.json()["items"].as_array().map(Vec::len), Some(items.len()));

    // The page shows the same records, one choice per kind of change, and names a refused filter.
    let page = auditor.get("/changes?action=user.role_change").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("id=\"nav-changes\"") && html.contains(c["reference"].as_str().unwrap()), "{html}");
    assert!(html.contains(&format!("approved by user:{admin_id}")), "{html}");
    assert!(!html.contains("<td>network access list</td>"), "filtered to role changes: {html}");
    assert!(html.contains("<option value=\"tenant.dlp_policy\""), "{html}");
    let refused = auditor.get("/changes?from=yesterday").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text().contains("id=\"changes-error\"") && refused.text().contains("from"), "{}", refused.text());
});

crate::both!(the_platform_records_its_own_changes_and_the_configured_limits, |srv| async move {
    use secrecy::ExposeSecret;
    let portal = srv.portal();
    portal.add_operator("ops@platform.example", "Ops").await.unwrap();
    portal.grant_operator_role("ops@platform.example", "support").await.unwrap();
    let ops = srv.client().with_bearer(portal.operator_token("ops@platform.example", 7).await.unwrap().expose_secret());
    let list = |action: &'static str| {
        let ops = &ops;
        async move {
            let r = ops.get(&format!("/api/v1/platform/changes?action={action}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            r.json()["items"].as_array().unwrap().clone()
        }
    };
    let grants = list("operator.grant").await;
    assert_eq!((grants.len(), grants[0]["after"].clone()), (1, json!({"role": "support"})));
    assert!(grants[0]["reference"].as_str().unwrap().starts_with("CHG-P-"));

    // The server recorded its limits when it started.
    let limits = list("config.security_limits").await;
    assert_eq!(limits.len(), 1, "{limits:?}");
    let now = limits[0]["after"].clone();
    assert!(now["max_in_flight_requests"].is_number() && now["rate_limit_ip_per_minute"].is_number(), "{now}");
    assert!(now.get("database_url").is_none() && now.get("smtp_url").is_none(), "{now}");
    // The same limits again (another start): nothing new. A changed one: only it is shown.
    assert!(!portal.record_security_limits(now.clone()).await.unwrap());
    let mut changed = now.clone();
    changed["ids_block_minutes"] = json!(now["ids_block_minutes"].as_u64().unwrap() + 5);
    assert!(portal.record_security_limits(changed.clone()).await.unwrap());
    let limits = list("config.security_limits").await;
    assert_eq!(limits.len(), 2, "{limits:?}");
    assert_eq!(limits[1]["before"], json!({"ids_block_minutes": now["ids_block_minutes"]}));
    assert_eq!(limits[1]["after"], json!({"ids_block_minutes": changed["ids_block_minutes"]}));
    assert_eq!(limits[1]["actor"], json!("system"));

    // Tenant changes are not here, and firms' users cannot read the platform's.
    let (_, owner) = srv.tenant("acme").await;
    let o = signed_in(srv, &owner).await;
    assert_eq!(o.get("/api/v1/platform/changes").await.status, StatusCode::UNAUTHORIZED);
    let r = ops.get("/api/v1/platform/changes?action=user.role_change").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // The console lists them too, and a firm's session does not open it.
    let desk =
        crate::console::console(srv, &crate::console::token(srv, "desk@platform.example", "support").await).await;
    let html = desk.get("/platform/changes?action=config.security_limits").await.text();
    assert!(html.contains("CHG-P-") && html.contains("ids_block_minutes"), "{html}");
    assert!(!html.contains("<td>operator role granted</td>"), "filtered: {html}");
    assert_ne!(o.get("/platform/changes").await.status, StatusCode::OK);
});
