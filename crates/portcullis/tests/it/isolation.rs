//! Tenant and matter isolation: every endpoint that takes an id, tried as every role of another
//! tenant (and as a client not on the matter), answers 404 and changes nothing.

use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

struct Target {
    matter: String,
    document: String,
    token: String,
}

/// Every id-taking call, against the target's ids.
fn probes(t: &Target) -> Vec<(Method, String, Option<serde_json::Value>)> {
    let m = &t.matter;
    vec![
        (Method::GET, format!("/api/v1/matters/{m}"), None),
        (Method::GET, format!("/api/v1/matters/{m}/members"), None),
        (
            Method::POST,
            format!("/api/v1/matters/{m}/members"),
            Some(json!({"email": "spy@example.com", "role": "client"})),
        ),
        (Method::GET, format!("/api/v1/matters/{m}/documents"), None),
        (Method::POST, format!("/api/v1/matters/{m}/documents?name=x.txt"), Some(json!("payload"))),
        (Method::GET, format!("/api/v1/documents/{}/content", t.document), None),
        (Method::GET, format!("/api/v1/matters/{m}/messages"), None),
        (Method::POST, format!("/api/v1/matters/{m}/messages"), Some(json!({"body": "injected"}))),
        (Method::DELETE, format!("/api/v1/tokens/{}", t.token), None),
        // The UI's routes too.
        (Method::GET, format!("/matters/{m}"), None),
        (Method::GET, format!("/documents/{}/download", t.document), None),
        (Method::POST, format!("/matters/{m}/messages"), Some(json!({"form": "csrf=x&body=injected"}))),
        (
            Method::POST,
            format!("/matters/{m}/members"),
            Some(json!({"form": "csrf=x&email=spy%40example.com&role=client"})),
        ),
        (Method::POST, format!("/tokens/{}/revoke", t.token), Some(json!({"form": "csrf=x"}))),
    ]
}

async fn all_not_found(c: &Client, t: &Target, who: &str) {
    for (method, path, body) in probes(t) {
        if c.bearer.is_some() && path.starts_with("/api/v1/tokens/") {
            // Tokens may never manage tokens, whoever's: refused before any lookup.
            let r = c.delete(&path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {path}");
            continue;
        }
        if c.bearer.is_some() && !path.starts_with("/api/") {
            // Pages take only the session cookie; a token gets no further than the sign-in page.
            continue;
        }
        let mut rb = c.request(method.clone(), &path);
        match body {
            // UI form posts carry the caller's real CSRF token, so only the id decides.
            Some(b) if b.get("form").is_some() => {
                let form = b["form"]
                    .as_str()
                    .unwrap()
                    .replace("csrf=x", &format!("csrf={}", c.csrf.clone().unwrap_or_default()));
                rb = rb.header("content-type", "application/x-www-form-urlencoded").body(form);
            }
            Some(b) => rb = rb.json(&b),
            None => {}
        }
        let r = Client::send(rb).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}: {method} {path} answered {} {}", r.status, r.text());
    }
}

async fn signed_in(srv: &TestServer, tenant: &str, email: &str) -> Client {
    let mut c = srv.client();
    assert_eq!(c.login(tenant, email, PASSWORD).await.status, StatusCode::OK, "{email}");
    c
}

async fn isolation(srv: &TestServer) {
    // Tenant A with a matter, a document, a message, a client, and a token.
    let (a, a_owner) = srv.tenant("firm-a").await;
    let oa = signed_in(srv, "firm-a", &a_owner).await;
    let matter = oa.post("/api/v1/matters", json!({"reference": "A-1", "title": "Secret"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let walled =
        oa.post("/api/v1/matters", json!({"reference": "A-2", "title": "Not for the client"})).await.json()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let document = oa.upload(&matter, "id.pdf", b"identity".to_vec()).await.json()["id"].as_str().unwrap().to_string();
    let walled_doc = oa.upload(&walled, "x.pdf", b"walled".to_vec()).await.json()["id"].as_str().unwrap().to_string();
    oa.post(&format!("/api/v1/matters/{matter}/messages"), json!({"body": "private"})).await;
    let token = oa.post("/api/v1/tokens", json!({"name": "t", "scopes": ["read"]})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    srv.user(a, "client@firm-a.example", "client").await;
    oa.post(&format!("/api/v1/matters/{matter}/members"), json!({"email": "client@firm-a.example", "role": "client"}))
        .await;

    // Tenant B with every role, including a client on one of B's matters.
    let (b, b_owner) = srv.tenant("firm-b").await;
    for (email, role) in
        [("admin@firm-b.example", "admin"), ("staff@firm-b.example", "staff"), ("client@firm-b.example", "client")]
    {
        srv.user(b, email, role).await;
    }
    let ob = signed_in(srv, "firm-b", &b_owner).await;
    let bm = ob.post("/api/v1/matters", json!({"reference": "B-1", "title": "B"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ob.post(&format!("/api/v1/matters/{bm}/members"), json!({"email": "client@firm-b.example", "role": "client"}))
        .await;

    let target = Target { matter: matter.clone(), document: document.clone(), token: token.clone() };
    use portcullis_core::model::Role;
    let people = [
        (b_owner.as_str(), Role::Owner),
        ("admin@firm-b.example", Role::Admin),
        ("staff@firm-b.example", Role::Staff),
        ("client@firm-b.example", Role::Client),
    ];
    for (email, role) in people {
        let c = signed_in(srv, "firm-b", email).await;
        all_not_found(&c, &target, email).await;
        // Lists never show the other tenant's objects.
        assert!(!c.get("/api/v1/matters").await.text().contains(&matter));
        // The same through an API token with every scope the role can use.
        let scopes: Vec<_> = portcullis_core::policy::usable_scopes(role).iter().map(|s| s.as_str()).collect();
        let t = c.post("/api/v1/tokens", json!({"name": "probe", "scopes": scopes})).await.json();
        all_not_found(&c.with_bearer(t["token"].as_str().unwrap()), &target, &format!("{email} token")).await;
    }

    // Within tenant A, another user cannot revoke the owner's token.
    srv.user(a, "staff@firm-a.example", "staff").await;
    let sa = signed_in(srv, "firm-a", "staff@firm-a.example").await;
    assert_eq!(sa.delete(&format!("/api/v1/tokens/{token}")).await.status, StatusCode::NOT_FOUND);
    assert!(!sa.get("/api/v1/tokens").await.text().contains(&token));

    // Within tenant A, the client sees nothing of the matter they are not on.
    let ca = signed_in(srv, "firm-a", "client@firm-a.example").await;
    let walled_target = Target { matter: walled.clone(), document: walled_doc, token: token.clone() };
    all_not_found(&ca, &walled_target, "client of another matter").await;
    let mine = ca.get("/api/v1/matters").await.text();
    assert!(mine.contains(&matter) && !mine.contains(&walled));

    // Nothing was changed by the probes.
    let members = oa.get(&format!("/api/v1/matters/{matter}/members")).await.json();
    assert_eq!(members["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        oa.get(&format!("/api/v1/matters/{matter}/documents")).await.json()["items"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        oa.get(&format!("/api/v1/matters/{matter}/messages")).await.json()["items"].as_array().unwrap().len(),
        1
    );
    assert!(oa.get("/api/v1/tokens").await.json()["items"][0]["revoked_at"].is_null());
}
crate::both!(other_tenants_and_matters_are_invisible, |srv| isolation(srv));
