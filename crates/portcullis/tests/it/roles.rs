//! Every role against every endpoint, compared with the permission table in
//! `docs/permissions.md` (which a unit test keeps equal to the policy module). The list of
//! endpoints tried is checked against the OpenAPI document, so a new endpoint cannot be left
//! out. Also: restricted matters (ethical walls) and the auditor role.

use portcullis_testkit::{Client, PASSWORD, Resp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// The permission table: (permission description, role) → cell text.
fn permission_table() -> HashMap<(String, String), String> {
    let doc = include_str!("../../../../docs/permissions.md");
    let table = doc.split("<!-- generated:begin -->").nth(1).unwrap().split("<!-- generated:end -->").next().unwrap();
    let rows: Vec<Vec<String>> = table
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    let header = &rows[0];
    let mut out = HashMap::new();
    for row in &rows[1..] {
        for (i, role) in header.iter().enumerate().skip(2) {
            out.insert((row[0].clone(), role.clone()), row[i].clone());
        }
    }
    out
}

/// One endpoint the matrix tries: how to call it and which permission (by its description in
/// the table) decides it.
struct Endpoint {
    method: Method,
    /// `{M}` is the matter, `{D}` a document on it, `{U}` a staff user of the caller's own (on
    /// the matter's list), `{A}` and `{R}` pending requests someone else made.
    path: &'static str,
    body: Option<Value>,
    permission: &'static str,
    /// Concerns the one matter (so a caller who cannot see it gets 404, not 403).
    on_matter: bool,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method: Method, path, body, permission, on_matter| Endpoint { method, path, body, permission, on_matter };
    vec![
        e(Method::GET, "/api/v1/matters", None, "list matters", false),
        e(Method::POST, "/api/v1/matters", Some(json!({"reference": "R", "title": "T"})), "create matters", false),
        e(Method::GET, "/api/v1/matters/{M}", None, "view this matter", true),
        e(Method::GET, "/api/v1/matters/{M}/members", None, "see who is on this matter", true),
        e(
            Method::POST,
            "/api/v1/matters/{M}/members",
            Some(json!({"email": "{EMAIL}", "role": "client"})),
            "manage this matter's members",
            true,
        ),
        e(Method::DELETE, "/api/v1/matters/{M}/members/{U}", None, "manage this matter's members", true),
        e(Method::GET, "/api/v1/matters/{M}/documents", None, "list documents", true),
        e(Method::POST, "/api/v1/matters/{M}/documents", None, "upload documents", true),
        e(Method::GET, "/api/v1/documents/{D}/content", None, "download documents", true),
        e(Method::GET, "/api/v1/matters/{M}/messages", None, "read messages", true),
        e(Method::POST, "/api/v1/matters/{M}/messages", Some(json!({"body": "hello"})), "post messages", true),
        e(Method::GET, "/api/v1/users", None, "list users", false),
        e(Method::POST, "/api/v1/users", Some(json!({"email": "{EMAIL}", "role": "staff"})), "manage users", false),
        e(Method::GET, "/api/v1/tokens", None, "manage API tokens", false),
        e(Method::POST, "/api/v1/tokens", Some(json!({"name": "t", "scopes": ["read"]})), "manage API tokens", false),
        e(Method::GET, "/api/v1/me/security", None, "manage your sign-in factors", false),
        e(Method::POST, "/api/v1/me/totp", None, "manage your sign-in factors", false),
        e(Method::GET, "/api/v1/me/passkeys", None, "manage your sign-in factors", false),
        e(
            Method::POST,
            "/api/v1/me/passkeys/challenge",
            Some(json!({"name": "k"})),
            "manage your sign-in factors",
            false,
        ),
        e(
            Method::PUT,
            "/api/v1/tenant/two-factor",
            Some(json!({"staff": false, "clients": false})),
            "change the firm's security settings",
            false,
        ),
        e(Method::GET, "/api/v1/tenant/upload-policy", None, "change the firm's security settings", false),
        e(Method::GET, "/api/v1/tenant/network-access", None, "change the firm's security settings", false),
        e(
            Method::PUT,
            "/api/v1/tenant/network-access",
            Some(json!({"networks": []})),
            "change the firm's security settings",
            false,
        ),
        e(
            Method::PUT,
            "/api/v1/tenant/upload-policy",
            Some(json!({"allowed": ["pdf", "png", "jpeg", "docx", "text"]})),
            "change the firm's security settings",
            false,
        ),
        e(Method::GET, "/api/v1/tenant/dlp-policy", None, "change the firm's security settings", false),
        e(
            Method::PUT,
            "/api/v1/tenant/dlp-policy",
            Some(json!({"detectors": {}, "download_cap": {"downloads": null, "bytes": null}})),
            "change the firm's security settings",
            false,
        ),
        e(Method::GET, "/api/v1/tenant/held-documents", None, "change the firm's security settings", false),
        e(Method::POST, "/api/v1/users/{U}/download-cap/lift", None, "change the firm's security settings", false),
        e(Method::GET, "/api/v1/security/blocks", None, "change the firm's security settings", false),
        e(Method::GET, "/api/v1/security/detections", None, "change the firm's security settings", false),
        e(Method::GET, "/api/v1/breach-notices", None, "change the firm's security settings", false),
        e(Method::GET, "/api/v1/audit", None, "read the audit log", false),
        e(Method::GET, "/api/v1/audit/export", None, "read the audit log", false),
        e(Method::GET, "/api/v1/changes", None, "read the audit log", false),
        e(Method::POST, "/api/v1/users/{U}/role", Some(json!({"role": "client"})), "manage users", false),
        e(Method::POST, "/api/v1/users/{U}/unlock", None, "manage users", false),
        e(Method::POST, "/api/v1/users/{U}/sessions/revoke", None, "manage users", false),
        e(Method::GET, "/api/v1/me/sessions", None, "see and end your sessions, change your password", false),
        e(Method::GET, "/api/v1/approvals", None, "approve or reject others' sensitive requests", false),
        e(Method::POST, "/api/v1/approvals/{A}/approve", None, "approve or reject others' sensitive requests", false),
        e(Method::POST, "/api/v1/approvals/{R}/reject", None, "approve or reject others' sensitive requests", false),
        // Last of the calls on {U}: deactivated, then let back in (a client by now, so at once).
        e(Method::POST, "/api/v1/users/{U}/deactivate", Some(json!({})), "manage users", false),
        e(Method::POST, "/api/v1/users/{U}/reactivate", None, "manage users", false),
        // The pages ask the same policy.
        e(Method::GET, "/matters", None, "list matters", false),
        e(Method::GET, "/matters/{M}", None, "view this matter", true),
        e(Method::GET, "/users", None, "list users", false),
        e(Method::GET, "/tokens", None, "manage API tokens", false),
        e(Method::GET, "/account/security", None, "manage your sign-in factors", false),
        e(Method::GET, "/audit", None, "read the audit log", false),
        e(Method::GET, "/changes", None, "read the audit log", false),
        e(Method::GET, "/approvals", None, "approve or reject others' sensitive requests", false),
    ]
}

/// API operations every signed-in user (or anyone) may call, so no permission row decides them;
/// the ones that act on one object are covered by the isolation test.
const NOT_ROLE_GATED: &[&str] = &[
    "post /api/v1/session",
    "delete /api/v1/session",
    "get /api/v1/session",
    "post /api/v1/session/step-up",
    "post /api/v1/session/step-up/passkey",
    // Need an authenticator's answer, or name the caller's own passkeys: tested in `passkeys`.
    "post /api/v1/me/passkeys",
    "delete /api/v1/me/passkeys/{id}",
    "post /api/v1/me/totp/confirm",
    "delete /api/v1/me/totp",
    "delete /api/v1/tokens/{id}",
    // Named by the caller's own session ids and password: tested in `api::sessions_and_password`.
    "delete /api/v1/me/sessions/{id}",
    "post /api/v1/me/password",
    // Name a document held for review (owners and admins only): tested in `dlp`.
    "post /api/v1/documents/{id}/release",
    "delete /api/v1/documents/{id}",
    // The platform operators' API takes operator tokens only: tested in `platform`.
    "get /api/v1/platform/health",
    "get /api/v1/platform/audit",
    "get /api/v1/platform/changes",
    "get /api/v1/platform/tenants",
    "post /api/v1/platform/tenants",
    "get /api/v1/platform/approvals",
    "post /api/v1/platform/approvals",
    "post /api/v1/platform/approvals/{id}/approve",
    "post /api/v1/platform/approvals/{id}/reject",
    "post /api/v1/platform/tenants/{name}/end",
    "post /api/v1/platform/tenants/{name}/reactivate",
    "get /api/v1/platform/tenants/{name}/subscription",
    "get /api/v1/platform/tenants/{name}/certificate",
    // Destroys the firm once approved (the owner alone may ask): tested with every refusal in
    // `erasure`.
    "post /api/v1/tenant/erasure",
    // Exports all of the firm's data once approved (the owner alone may ask, follow and
    // download): tested with every refusal in `export`.
    "post /api/v1/tenant/exports",
    "get /api/v1/tenant/exports/{id}",
    "get /api/v1/tenant/exports/{id}/content",
    // Named by blocks that exist only after an attack, and operators' blocks: tested in
    // `intrusion` and `anomaly` (including refusals of other roles and other firms).
    "delete /api/v1/security/blocks/{id}",
    "post /api/v1/users/{id}/downloads/resume",
    "get /api/v1/platform/security/blocks",
    "delete /api/v1/platform/security/blocks/{id}",
    "get /api/v1/platform/security/detections",
    // Security incidents: the public report (no sign-in), a breach report any signed-in user
    // may make, and the operators' incident work: tested in `incidents`, with refusals.
    "post /api/v1/reports",
    "post /api/v1/breach-reports",
    "get /api/v1/platform/incidents",
    "get /api/v1/platform/incidents/{id}",
    "post /api/v1/platform/incidents/{id}",
    "post /api/v1/platform/incidents/{id}/scope",
    "post /api/v1/platform/incidents/{id}/notify",
];

/// The objects one caller's calls name.
struct Objects {
    matter: String,
    doc: String,
    user: String,
    approve: String,
    reject: String,
}

async fn call(c: &Client, ep: &Endpoint, o: &Objects, n: usize) -> Resp {
    let (matter, doc) = (&o.matter, &o.doc);
    let path = ep
        .path
        .replace("{M}", matter)
        .replace("{D}", doc)
        .replace("{U}", &o.user)
        .replace("{A}", &o.approve)
        .replace("{R}", &o.reject);
    if ep.method == Method::POST && ep.path.ends_with("/documents") {
        return c.upload(matter, "matrix.txt", b"matrix".to_vec()).await;
    }
    let mut rb = c.request(ep.method.clone(), &path);
    if let Some(body) = &ep.body {
        let text = body.to_string().replace("{EMAIL}", &format!("new{n}@acme.example"));
        rb = rb.header("content-type", "application/json").body(text);
    }
    Client::send(rb).await
}

/// A user's id, looked up by email through the API.
pub(crate) async fn user_id(c: &Client, email: &str) -> String {
    let users = c.get("/api/v1/users").await.json();
    let u =
        users["items"].as_array().unwrap().iter().find(|u| u["email"] == email).unwrap_or_else(|| panic!("{email}"));
    u["id"].as_str().unwrap().to_string()
}

crate::both!(every_role_against_every_endpoint_matches_the_table, |srv| async move {
    let table = permission_table();
    let (tenant, owner) = srv.tenant("acme").await;
    for (email, role) in
        [("admin@acme.example", "admin"), ("staff@acme.example", "staff"), ("auditor@acme.example", "auditor")]
    {
        srv.user(tenant, email, role).await;
    }
    srv.user(tenant, "client@acme.example", "client").await;
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let matter = o.post("/api/v1/matters", json!({"reference": "M-1", "title": "Matrix"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = o
        .post(&format!("/api/v1/matters/{matter}/members"), json!({"email": "client@acme.example", "role": "client"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let doc = o.upload(&matter, "d.txt", b"d".to_vec()).await.json()["id"].as_str().unwrap().to_string();
    let mut admin = srv.client();
    assert_eq!(admin.login("acme", "admin@acme.example", PASSWORD).await.status, StatusCode::OK);

    // Every role-gated API operation in the OpenAPI document is in the matrix.
    let spec = o.get("/api/v1/openapi.json").await.json();
    let mut documented = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert(format!("{method} {path}"));
        }
    }
    let tried: BTreeSet<String> = endpoints()
        .iter()
        .filter(|e| e.path.starts_with("/api/"))
        .map(|e| {
            let path = e.path.replace("/members/{U}", "/members/{user_id}");
            let path = ["{M}", "{D}", "{U}", "{A}", "{R}"].iter().fold(path, |p, x| p.replace(x, "{id}"));
            format!("{} {path}", e.method.as_str().to_lowercase())
        })
        .collect();
    for op in &documented {
        assert!(tried.contains(op) || NOT_ROLE_GATED.contains(&op.as_str()), "{op} is not in the role matrix");
    }

    let mut n = 0;
    let mut checked = 0;
    for (role, email) in [
        ("owner", owner.as_str()),
        ("admin", "admin@acme.example"),
        ("staff", "staff@acme.example"),
        ("client", "client@acme.example"),
        ("auditor", "auditor@acme.example"),
    ] {
        let mut c = srv.client();
        assert_eq!(c.login("acme", email, PASSWORD).await.status, StatusCode::OK, "{role}");
        // Fresh objects for this caller: a staff user to change, and two requests made by
        // someone else (the admin for the owner, the owner for everyone else).
        let user = format!("target-{role}@acme.example");
        srv.user(tenant, &user, "staff").await;
        let user_id = user_id(&o, &user).await;
        let r = o.post(&format!("/api/v1/matters/{matter}/members"), json!({"email": user, "role": "staff"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let requester = if role == "owner" { &admin } else { &o };
        let mut requests = Vec::new();
        for k in 0..2 {
            let grantee = format!("grantee-{role}-{k}@acme.example");
            srv.user(tenant, &grantee, "staff").await;
            let id = self::user_id(&o, &grantee).await;
            let r = requester.post(&format!("/api/v1/users/{id}/role"), json!({"role": "admin"})).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
            requests.push(r.json()["id"].as_str().unwrap().to_string());
        }
        let objects = Objects {
            matter: matter.clone(),
            doc: doc.clone(),
            user: user_id,
            approve: requests[0].clone(),
            reject: requests[1].clone(),
        };
        // Whether this caller can see the matter at all (clients: they are on its list).
        let sees_matter = role != "auditor";
        for ep in endpoints() {
            n += 1;
            let cell = table.get(&(ep.permission.to_string(), role.to_string())).unwrap_or_else(|| {
                panic!("no table cell for {} / {role}", ep.permission);
            });
            let allowed = cell == "yes" || (cell == "if on the matter's list" && sees_matter);
            let r = call(&c, &ep, &objects, n).await;
            let what = format!("{role} {} {}: table says {cell:?}, got {}: {}", ep.method, ep.path, r.status, r.text());
            if allowed {
                assert!(r.status.is_success(), "{what}");
            } else if ep.on_matter && !sees_matter {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}");
            } else {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * endpoints().len());
});

crate::both!(restricted_matters_are_seen_by_their_list_alone, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "partner@acme.example", "staff").await;
    srv.user(tenant, "walled@acme.example", "staff").await;
    let mut partner = srv.client();
    assert_eq!(partner.login("acme", "partner@acme.example", PASSWORD).await.status, StatusCode::OK);
    let r = partner.post("/api/v1/matters", json!({"reference": "W-1", "title": "Takeover", "restricted": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["restricted"], true);
    let m = r.json()["id"].as_str().unwrap().to_string();
    let open = partner.post("/api/v1/matters", json!({"reference": "O-1", "title": "Open"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = partner.upload(&m, "offer.pdf", b"offer".to_vec()).await.json()["id"].as_str().unwrap().to_string();

    // The owner and another staff member are outside the wall: the matter does not exist for them.
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let mut walled = srv.client();
    assert_eq!(walled.login("acme", "walled@acme.example", PASSWORD).await.status, StatusCode::OK);
    for c in [&o, &walled] {
        let list = c.get("/api/v1/matters").await.text();
        assert!(list.contains(&open) && !list.contains(&m), "{list}");
        for path in [
            format!("/api/v1/matters/{m}"),
            format!("/api/v1/matters/{m}/documents"),
            format!("/api/v1/documents/{doc}/content"),
            format!("/matters/{m}"),
        ] {
            assert_eq!(c.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = c
            .post(&format!("/api/v1/matters/{m}/members"), json!({"email": "walled@acme.example", "role": "staff"}))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "nobody outside the wall can put themselves on the list");
    }

    // The partner lets a colleague in; the colleague now sees it.
    let r = partner
        .post(&format!("/api/v1/matters/{m}/members"), json!({"email": "walled@acme.example", "role": "staff"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(walled.get(&format!("/api/v1/documents/{doc}/content")).await.body, b"offer");
    assert!(walled.get("/api/v1/matters").await.text().contains(&m));
    // Auditors are never on a matter.
    srv.user(tenant, "auditor@acme.example", "auditor").await;
    let r = partner
        .post(&format!("/api/v1/matters/{m}/members"), json!({"email": "auditor@acme.example", "role": "staff"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
});

crate::both!(auditors_read_the_audit_log_without_client_content, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "auditor@acme.example", "auditor").await;
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let m = o.post("/api/v1/matters", json!({"reference": "SECRET-REF", "title": "Secret title"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    o.post(&format!("/api/v1/matters/{m}/messages"), json!({"body": "Secret message"})).await;
    o.upload(&m, "secret-name.pdf", b"secret bytes".to_vec()).await;

    let mut a = srv.client();
    assert_eq!(a.login("acme", "auditor@acme.example", PASSWORD).await.status, StatusCode::OK);
    let log = a.get("/api/v1/audit?limit=500").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text());
    let items = log.json()["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["tenant.create", "matter.create", "message.post", "document.upload"] {
        assert!(actions.contains(&expected), "{expected} missing: {actions:?}");
    }
    let text = log.text();
    for secret in ["SECRET-REF", "Secret title", "Secret message", "secret-name", "secret bytes"] {
        assert!(!text.contains(secret), "the audit log shows client content: {secret}");
    }
    // Paging: after the last sequence number there is nothing more.
    let last = items.last().unwrap()["seq"].as_i64().unwrap();
    assert_eq!(a.get(&format!("/api/v1/audit?after={last}")).await.json()["items"], json!([]));
    assert_eq!(a.get("/api/v1/audit?limit=0").await.status, StatusCode::BAD_REQUEST);
    // The page works too, and the start page for an auditor is the audit log.
    let page = a.get("/audit").await;
    assert!(page.text().contains("matter.create"), "{}", page.text());
    assert_eq!(a.get("/").await.headers["location"], "/audit");
});
