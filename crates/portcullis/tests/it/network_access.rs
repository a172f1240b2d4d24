//! The firm's network access list: its owners and admins name the networks (CIDR ranges) its
//! users may sign in from; a sign-in from elsewhere is refused (before the password is judged)
//! and audited, while sign-ins inside go on. A list that would lock out its author, bad ranges
//! and the wrong role are refused; every change is audited with before and after.

use portcullis_testkit::{Client, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

fn from(c: &Client, ip: &str) -> Client {
    c.bound_to(ip.parse().unwrap())
}

crate::both!(sign_in_only_from_the_firms_networks, |srv| async move {
    let (tenant, owner) = srv.tenant("netfirm").await;
    srv.user(tenant, "staff@netfirm.example", "staff").await;
    let mut c = srv.client();
    c.login("netfirm", &owner, PASSWORD).await;
    assert_eq!(c.get("/api/v1/tenant/network-access").await.json(), json!({"networks": []}));

    // The author's own address must stay inside.
    let locked_out = c.put_json("/api/v1/tenant/network-access", json!({"networks": ["10.0.0.0/8"]})).await;
    assert_eq!(locked_out.status, StatusCode::BAD_REQUEST, "{}", locked_out.text());
    assert!(locked_out.text().contains("lock you out"), "{}", locked_out.text());
    for bad in [json!({"networks": ["10.0.0.0/33"]}), json!({"networks": ["example.com"]}), json!({"nets": []})] {
        let r = c.put_json("/api/v1/tenant/network-access", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
    }
    let set = c.put_json("/api/v1/tenant/network-access", json!({"networks": ["127.0.0.1/32", "127.0.0.3"]})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["networks"], json!(["127.0.0.1/32", "127.0.0.3/32"]));

    // Outside the list: refused, whatever the password, and audited.
    let mut outside = from(&c, "127.0.0.2");
    let r = outside.login("netfirm", "staff@netfirm.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("only from its own networks"), "{}", r.text());
    assert_eq!(outside.login("netfirm", "staff@netfirm.example", "wrong").await.status, StatusCode::FORBIDDEN);
    // Inside: signed in as usual.
    let mut inside = from(&c, "127.0.0.3");
    assert_eq!(inside.login("netfirm", "staff@netfirm.example", PASSWORD).await.status, StatusCode::OK);

    // Staff may not read or change the list.
    assert_eq!(inside.get("/api/v1/tenant/network-access").await.status, StatusCode::FORBIDDEN);
    let denied = inside.put_json("/api/v1/tenant/network-access", json!({"networks": []})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let audit = c.get("/api/v1/audit?action=auth.login_refused_network").await.json();
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    let changes = c.get("/api/v1/audit?action=tenant.network_access").await.json();
    let ev = &changes["items"][0];
    assert_eq!(ev["detail"]["before"]["sign_in_networks"], json!([]), "{ev}");
    assert_eq!(ev["detail"]["after"]["sign_in_networks"], json!(["127.0.0.1/32", "127.0.0.3/32"]), "{ev}");

    // Emptying the list opens sign-in again.
    assert_eq!(c.put_json("/api/v1/tenant/network-access", json!({"networks": []})).await.status, StatusCode::OK);
    assert_eq!(outside.login("netfirm", "staff@netfirm.example", PASSWORD).await.status, StatusCode::OK);
});
