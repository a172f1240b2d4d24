//! Separation of duties: sensitive actions wait for a second, different owner or admin;
//! requesters cannot approve themselves; requests expire; every step is audited.

use crate::support::sql_column;
use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

async fn signed_in(srv: &TestServer, email: &str) -> Client {
    let mut c = srv.client();
    assert_eq!(c.login("acme", email, PASSWORD).await.status, StatusCode::OK, "{email}");
    c
}

async fn role_of(c: &Client, email: &str) -> String {
    let users = c.get("/api/v1/users").await.json();
    let u = users["items"].as_array().unwrap().iter().find(|u| u["email"] == email).unwrap().clone();
    u["role"].as_str().unwrap().to_string()
}

async fn id_of(c: &Client, email: &str) -> String {
    let users = c.get("/api/v1/users").await.json();
    let u = users["items"].as_array().unwrap().iter().find(|u| u["email"] == email).unwrap().clone();
    u["id"].as_str().unwrap().to_string()
}

/// A request's state as the list shows it.
async fn state_of(c: &Client, id: &str) -> String {
    let list = c.get("/api/v1/approvals").await.json();
    let a = list["items"].as_array().unwrap().iter().find(|a| a["id"] == id).unwrap().clone();
    a["state"].as_str().unwrap().to_string()
}

crate::both!(sensitive_actions_need_a_second_person, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "admin@acme.example", "admin").await;
    srv.user(tenant, "clerk@acme.example", "staff").await;
    let o = signed_in(srv, &owner).await;
    let a = signed_in(srv, "admin@acme.example").await;
    let clerk = signed_in(srv, "clerk@acme.example").await;
    let clerk_id = id_of(&o, "clerk@acme.example").await;

    // An unknown role, or the role the user already has, is a clear 400.
    let r = o.post(&format!("/api/v1/users/{clerk_id}/role"), json!({"role": "superuser"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".to_string()));
    let r = o.post(&format!("/api/v1/users/{clerk_id}/role"), json!({"role": "staff"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // Staff cannot ask for role changes at all.
    let r = clerk.post(&format!("/api/v1/users/{clerk_id}/role"), json!({"role": "admin"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Admins are not made directly through the API.
    let r = o.post("/api/v1/users", json!({"email": "new@acme.example", "role": "admin"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // The owner asks for the clerk to become an admin: nothing changes yet.
    let r = o.post(&format!("/api/v1/users/{clerk_id}/role"), json!({"role": "admin"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["state"], "pending");
    assert_eq!(r.json()["action"], json!({"action": "grant_role", "user_id": clerk_id, "role": "admin"}));
    let req = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(role_of(&o, "clerk@acme.example").await, "staff");
    // Not by the requester, not by staff.
    let r = o.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "self-approval: {}", r.text());
    assert_eq!(clerk.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(role_of(&o, "clerk@acme.example").await, "staff");
    // A second admin approves: it takes effect.
    let r = a.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await;
    assert_eq!((r.status, r.json()["state"].clone()), (StatusCode::OK, json!("approved")), "{}", r.text());
    assert_eq!(role_of(&o, "clerk@acme.example").await, "admin");
    // Decided once only.
    assert_eq!(a.post(&format!("/api/v1/approvals/{req}/reject"), json!({})).await.status, StatusCode::CONFLICT);
    assert_eq!(state_of(&o, &req).await, "approved");

    // A rejected request changes nothing.
    srv.user(tenant, "other@acme.example", "staff").await;
    let other = id_of(&o, "other@acme.example").await;
    let req = o.post(&format!("/api/v1/users/{other}/role"), json!({"role": "admin"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = a.post(&format!("/api/v1/approvals/{req}/reject"), json!({})).await;
    assert_eq!(r.json()["state"], "rejected");
    assert_eq!(role_of(&o, "other@acme.example").await, "staff");

    // Requests expire.
    let req = o.post(&format!("/api/v1/users/{other}/role"), json!({"role": "admin"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    srv.clock.advance(time::Duration::hours(25));
    let a = signed_in(srv, "admin@acme.example").await;
    let o = signed_in(srv, &owner).await;
    let r = a.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::GONE, "request_expired".to_string()));
    assert_eq!(state_of(&o, &req).await, "expired");
    assert_eq!(role_of(&o, "other@acme.example").await, "staff");

    // Only owners ask for, and approve, a new owner.
    let r = a.post(&format!("/api/v1/users/{other}/role"), json!({"role": "owner"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let req = o.post(&format!("/api/v1/users/{other}/role"), json!({"role": "owner"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await.status, StatusCode::FORBIDDEN);

    // Lowering the two-factor requirement waits for a second person; raising it does not. (The
    // clients' requirement: one on staff would confine these owners' and admins' own sessions,
    // which have no factor, to enrolling one.)
    let policy = |clients: bool| json!({"staff": false, "clients": clients});
    assert_eq!(o.put_json("/api/v1/tenant/two-factor", policy(true)).await.status, StatusCode::NO_CONTENT);
    let r = o.put_json("/api/v1/tenant/two-factor", policy(false)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let req = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(a.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await.json()["state"], "approved");

    // Bad ids are plain 404s.
    assert_eq!(a.post("/api/v1/approvals/not-an-id/approve", json!({})).await.status, StatusCode::NOT_FOUND);
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(a.post(&format!("/api/v1/approvals/{unknown}/approve"), json!({})).await.status, StatusCode::NOT_FOUND);

    let actions = sql_column(&srv.db_url(), "SELECT action FROM audit_events").await;
    for expected in [
        "approval.request",
        "approval.refused",
        "approval.approve",
        "approval.reject",
        "user.role_change",
        "user.role_change_refused",
    ] {
        assert!(actions.iter().any(|x| x == expected), "no {expected}: {actions:?}");
    }
    let refused = actions.iter().filter(|x| *x == "approval.refused").count();
    assert_eq!(refused, 5, "self-approval, staff, decided, expired and non-owner refusals: {actions:?}");
    let grants_refused = actions.iter().filter(|x| *x == "user.role_change_refused").count();
    assert_eq!(grants_refused, 2, "the clerk's and the admin's grants beyond their rights: {actions:?}");
});
