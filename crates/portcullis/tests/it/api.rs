//! The API end to end: the main path, tokens, sessions, audit, and bad input.

use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

/// Owner signs in, opens a matter, invites a client; the client sets a password through the
/// link, signs in, sees only that matter, and exchanges documents and messages.
pub async fn main_path(srv: &TestServer) {
    let (_, owner) = srv.tenant("smith-law").await;
    let mut staff = srv.client();
    assert_eq!(staff.login("smith-law", &owner, PASSWORD).await.status, StatusCode::OK);

    let m = staff.post("/api/v1/matters", json!({"reference": "SL-001", "title": "Purchase of 1 High St"})).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.text());
    let matter = m.json()["id"].as_str().unwrap().to_string();
    let other = staff.post("/api/v1/matters", json!({"reference": "SL-002", "title": "Other"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let inv = staff
        .post(&format!("/api/v1/matters/{matter}/members"), json!({"email": "Client@Example.com", "role": "client"}))
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.text());
    let link = inv.json()["invite_url"].as_str().unwrap().to_string();
    assert!(link.starts_with(&srv.base), "{link}");

    // The invited client cannot sign in before choosing a password.
    let mut client = srv.client();
    assert_eq!(client.login("smith-law", "client@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    let path = link.trim_start_matches(&srv.base).to_string();
    let page = client.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("client@example.com"));
    let set = Client::send(client.http.post(format!("{}{path}", srv.base)).form(&[("password", PASSWORD)])).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    // The link works once.
    let again = Client::send(client.http.post(format!("{}{path}", srv.base)).form(&[("password", PASSWORD)])).await;
    assert_eq!(again.status, StatusCode::GONE);

    let doc = staff.upload(&matter, "contract.pdf", b"%PDF-1.7 the contract".to_vec()).await;
    assert_eq!(doc.status, StatusCode::CREATED, "{}", doc.text());
    let doc_id = doc.json()["id"].as_str().unwrap().to_string();
    assert_eq!(doc.json()["size"], 21);

    assert_eq!(client.login("smith-law", "client@example.com", PASSWORD).await.status, StatusCode::OK);
    let list = client.get("/api/v1/matters").await.json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the client sees only their matter: {list}");
    assert_eq!(items[0]["id"], matter.as_str());
    assert_eq!(client.get(&format!("/api/v1/matters/{other}")).await.status, StatusCode::NOT_FOUND);

    let docs = client.get(&format!("/api/v1/matters/{matter}/documents")).await.json();
    assert_eq!(docs["items"][0]["name"], "contract.pdf");
    let got = client.get(&format!("/api/v1/documents/{doc_id}/content")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, b"%PDF-1.7 the contract");
    assert!(got.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));

    let part = Client::send(
        client
            .request(reqwest::Method::GET, &format!("/api/v1/documents/{doc_id}/content"))
            .header("range", "bytes=9-11"),
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, b"the");
    assert_eq!(part.headers["content-range"], "bytes 9-11/21");
    let bad_range = Client::send(
        client
            .request(reqwest::Method::GET, &format!("/api/v1/documents/{doc_id}/content"))
            .header("range", "bytes=100-"),
    )
    .await;
    assert_eq!(bad_range.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad_range.error_code(), "range_not_satisfiable");

    let up = client.upload(&matter, "passport.jpg", vec![0xFF, 0xD8, 0xFF, 1, 2, 3]).await;
    assert_eq!(up.status, StatusCode::CREATED);
    assert_eq!(
        client
            .post(&format!("/api/v1/matters/{matter}/messages"), json!({"body": "Here is my passport."}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        staff.post(&format!("/api/v1/matters/{matter}/messages"), json!({"body": "Thank you."})).await.status,
        StatusCode::CREATED
    );
    let msgs = staff.get(&format!("/api/v1/matters/{matter}/messages")).await.json();
    let bodies: Vec<_> =
        msgs["items"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_string()).collect();
    assert_eq!(bodies, ["Here is my passport.", "Thank you."]);

    // A client may not manage members or create matters.
    assert_eq!(
        client
            .post(&format!("/api/v1/matters/{matter}/members"), json!({"email": "x@example.com", "role": "client"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client.post("/api/v1/matters", json!({"reference": "C", "title": "C"})).await.status,
        StatusCode::FORBIDDEN
    );

    // Clients do not see who else is on the matter.
    assert_eq!(client.get(&format!("/api/v1/matters/{matter}/members")).await.status, StatusCode::FORBIDDEN);
    // A reversed range is ignored: the whole document.
    let reversed = Client::send(
        client
            .request(reqwest::Method::GET, &format!("/api/v1/documents/{doc_id}/content"))
            .header("range", "bytes=5-3"),
    )
    .await;
    assert_eq!(reversed.status, StatusCode::OK);
    for h in ["content-security-policy", "strict-transport-security", "x-content-type-options"] {
        assert!(got.headers.contains_key(h), "download lacks {h}");
    }
    assert!(got.headers["content-security-policy"].to_str().unwrap().contains("sandbox"));
    let members = staff.get(&format!("/api/v1/matters/{matter}/members")).await.json();
    assert_eq!(members["items"][0]["email"], "client@example.com");
}
crate::both!(main_path_works, |srv| main_path(srv));

crate::both!(links_expire_and_die_once_used, |srv| async move {
    // The first-start link lives one hour.
    let setup = srv.setup_link.clone().unwrap();
    let path = setup.trim_start_matches(&srv.base).to_string();
    let c = srv.client();
    srv.clock.advance(time::Duration::minutes(61));
    assert_eq!(c.get(&path).await.status, StatusCode::GONE);

    let (_, owner) = srv.tenant("links").await;
    let mut staff = srv.client();
    staff.login("links", &owner, PASSWORD).await;
    let m1 = staff.post("/api/v1/matters", json!({"reference": "L-1", "title": "One"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let m2 = staff.post("/api/v1/matters", json!({"reference": "L-2", "title": "Two"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invite = |m: String| {
        let staff = staff.clone();
        async move {
            let r = staff
                .post(&format!("/api/v1/matters/{m}/members"), json!({"email": "c@links.example", "role": "client"}))
                .await;
            r.json()["invite_url"].as_str().unwrap().trim_start_matches(&staff.base).to_string()
        }
    };
    let first = invite(m1).await;
    let second = invite(m2).await;
    let accept = |path: String| {
        let c = srv.client();
        async move { Client::send(c.http.post(format!("{}{path}", c.base)).form(&[("password", PASSWORD)])).await.status }
    };
    assert_eq!(accept(first).await, StatusCode::OK);
    // The second link was issued before the password was chosen; it must not reset it now.
    assert_eq!(accept(second).await, StatusCode::GONE);

    // Invitations expire after invite_link_hours (72 by default).
    let m3 = staff.post("/api/v1/matters", json!({"reference": "L-3", "title": "Three"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = staff
        .post(&format!("/api/v1/matters/{m3}/members"), json!({"email": "late@links.example", "role": "client"}))
        .await;
    let late = r.json()["invite_url"].as_str().unwrap().trim_start_matches(&srv.base).to_string();
    srv.clock.advance(time::Duration::hours(73));
    assert_eq!(accept(late).await, StatusCode::GONE);
});

crate::both!(tokens_are_scoped_and_revocable, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    c.login("acme", &owner, PASSWORD).await;
    let t = c.post("/api/v1/tokens", json!({"name": "reader", "scopes": ["read"], "expires_in_days": 7})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let secret = t.json()["token"].as_str().unwrap().to_string();
    let id = t.json()["id"].as_str().unwrap().to_string();
    let api = c.with_bearer(&secret);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::OK);
    let denied = api.post("/api/v1/matters", json!({"reference": "R", "title": "T"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_code(), "forbidden");
    // A token cannot mint tokens.
    assert_eq!(
        api.post("/api/v1/tokens", json!({"name": "x", "scopes": ["read"]})).await.status,
        StatusCode::FORBIDDEN
    );
    // Listing never shows secrets.
    let list = c.get("/api/v1/tokens").await;
    assert!(!list.text().contains(&secret));
    assert_eq!(c.delete(&format!("/api/v1/tokens/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.delete(&format!("/api/v1/tokens/{id}")).await.status, StatusCode::NOT_FOUND);
    // Bad token requests.
    assert_eq!(
        c.post("/api/v1/tokens", json!({"name": "x", "scopes": ["root"]})).await.error_code(),
        "invalid_request"
    );
    assert_eq!(c.post("/api/v1/tokens", json!({"name": "x", "scopes": []})).await.error_code(), "invalid_request");
    assert_eq!(
        c.post("/api/v1/tokens", json!({"name": "x", "scopes": ["read"], "expires_in_days": 9999})).await.error_code(),
        "invalid_request"
    );
    // Expired tokens stop working.
    let t2 = c.post("/api/v1/tokens", json!({"name": "short", "scopes": ["read"], "expires_in_days": 1})).await.json();
    let api2 = c.with_bearer(t2["token"].as_str().unwrap());
    assert_eq!(api2.get("/api/v1/matters").await.status, StatusCode::OK);
    srv.clock.advance(time::Duration::days(2));
    assert_eq!(api2.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.with_bearer("pct_not-a-token").get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);

    // The scopes are independent: a write token files things it cannot read back. (The clock
    // moved past the session's lifetime above: sign in again.)
    c.login("acme", &owner, PASSWORD).await;
    let mint = |name: &str, scopes: serde_json::Value| json!({"name": name, "scopes": scopes});
    let w = c.post("/api/v1/tokens", mint("drop", json!(["write"]))).await.json();
    let writer = c.with_bearer(w["token"].as_str().unwrap());
    assert_eq!(
        writer.post("/api/v1/matters", json!({"reference": "W", "title": "T"})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(writer.get("/api/v1/matters").await.status, StatusCode::FORBIDDEN);
    // An admin token manages users and reads nothing.
    let a = c.post("/api/v1/tokens", mint("hr", json!(["admin"]))).await.json();
    let admin = c.with_bearer(a["token"].as_str().unwrap());
    let made = admin.post("/api/v1/users", json!({"email": "new@acme.example", "role": "staff"})).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    assert_eq!(admin.get("/api/v1/users").await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/api/v1/matters").await.status, StatusCode::FORBIDDEN);
    // The old per-resource names are refused with a message that names the new ones.
    let old = c.post("/api/v1/tokens", mint("x", json!(["matters:read"]))).await;
    assert_eq!(old.error_code(), "invalid_request");
    assert!(old.text().contains("read, write and admin"), "{}", old.text());
    // A scope the role can never use is refused, not silently granted.
    srv.user(tenant, "staffer@acme.example", "staff").await;
    let mut s = srv.client();
    s.login("acme", "staffer@acme.example", PASSWORD).await;
    let r = s.post("/api/v1/tokens", mint("x", json!(["read", "admin"]))).await;
    assert_eq!(r.error_code(), "invalid_request");
    assert!(r.text().contains("staff role cannot use the admin scope"), "{}", r.text());
    assert_eq!(s.post("/api/v1/tokens", mint("x", json!(["read", "write"]))).await.status, StatusCode::CREATED);
});

crate::both!(sessions_time_out_and_log_out, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    let r = c.login("acme", &owner, PASSWORD).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    for attr in ["__Host-portcullis=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    // State changes need the CSRF header when authenticated by cookie.
    let mut no_csrf = c.clone();
    no_csrf.csrf = None;
    let r = no_csrf.post("/api/v1/matters", json!({"reference": "R", "title": "T"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "csrf_failed");
    let mut wrong = c.clone();
    wrong.csrf = Some("wrong".into());
    assert_eq!(
        wrong.post("/api/v1/matters", json!({"reference": "R", "title": "T"})).await.error_code(),
        "csrf_failed"
    );

    // Idle timeout: 29 minutes of quiet is fine, 31 is not.
    srv.clock.advance(time::Duration::minutes(29));
    assert_eq!(c.get("/api/v1/session").await.status, StatusCode::OK);
    srv.clock.advance(time::Duration::minutes(31));
    assert_eq!(c.get("/api/v1/session").await.status, StatusCode::UNAUTHORIZED);

    // Absolute timeout: active all along, still ends after 12 hours.
    c.login("acme", &owner, PASSWORD).await;
    for _ in 0..25 {
        srv.clock.advance(time::Duration::minutes(29));
        if c.get("/api/v1/session").await.status != StatusCode::OK {
            break;
        }
    }
    assert_eq!(c.get("/api/v1/session").await.status, StatusCode::UNAUTHORIZED);

    // Logout ends the session on the server.
    c.login("acme", &owner, PASSWORD).await;
    let stolen = c.clone();
    assert_eq!(c.delete("/api/v1/session").await.status, StatusCode::NO_CONTENT);
    assert_eq!(stolen.get("/api/v1/session").await.status, StatusCode::UNAUTHORIZED);
});

crate::both!(login_failures_are_indistinguishable, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    srv.user(srv.tenant("beta").await.0, "staff@beta.example", "staff").await;
    let c = srv.client();
    let mut answers = Vec::new();
    for (tenant, email, pw) in [
        ("nope", owner.as_str(), PASSWORD),
        ("acme", "nobody@acme.example", PASSWORD),
        ("acme", owner.as_str(), "wrong password here"),
        ("acme", "staff@beta.example", PASSWORD),
        ("!!", "not an email", ""),
    ] {
        let r = c.post("/api/v1/session", json!({"tenant": tenant, "email": email, "password": pw})).await;
        answers.push((r.status, r.text()));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert!(answers[0].1.contains("invalid_credentials"));
});

crate::both!(bad_input_gets_clear_errors, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    c.login("acme", &owner, PASSWORD).await;
    let send = |rb: reqwest::RequestBuilder| Client::send(rb);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            c.request(reqwest::Method::POST, "/api/v1/matters")
                .body("{not json")
                .header("content-type", "application/json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // A body without a JSON content type is refused by the request filter before the handler.
        (
            c.request(reqwest::Method::POST, "/api/v1/matters").body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/matters")
                .json(&json!({"reference": "R", "title": "T", "extra": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/matters").json(&json!({"reference": " ", "title": "T"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/matters")
                .json(&json!({"reference": "R", "title": "x".repeat(301)})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/matters").json(&json!({"reference": "R\u{7}", "title": "T"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (c.request(reqwest::Method::GET, "/api/v1/matters/not-a-uuid"), StatusCode::NOT_FOUND, "not_found"),
        (
            c.request(reqwest::Method::GET, &format!("/api/v1/matters/{}", uuid::Uuid::new_v4())),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (c.request(reqwest::Method::GET, "/api/v1/no-such-endpoint"), StatusCode::NOT_FOUND, "not_found"),
        (
            c.request(reqwest::Method::POST, "/api/v1/matters")
                .json(&json!({"reference": "R", "title": "y".repeat(2 * 1024 * 1024)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/users").json(&json!({"email": "bad", "role": "staff"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/users").json(&json!({"email": "a@b.example", "role": "emperor"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            c.request(reqwest::Method::POST, "/api/v1/users").json(&json!({"email": "a@b.example", "role": "owner"})),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (i, (rb, status, code)) in cases.into_iter().enumerate() {
        let r = send(rb).await;
        assert_eq!(r.status, status, "case {i}: {}", r.text());
        assert_eq!(r.error_code(), code, "case {i}");
    }
    let m = c.post("/api/v1/matters", json!({"reference": "R", "title": "T"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let no_name =
        Client::send(c.request(reqwest::Method::POST, &format!("/api/v1/matters/{m}/documents")).body("x")).await;
    assert_eq!(no_name.status, StatusCode::BAD_REQUEST);
    let dots = c.upload(&m, "..", b"x".to_vec()).await;
    assert_eq!(dots.error_code(), "invalid_request");
    assert_eq!(
        c.post(&format!("/api/v1/matters/{m}/messages"), json!({"body": ""})).await.error_code(),
        "invalid_request"
    );
    assert_eq!(
        c.post(&format!("/api/v1/matters/{m}/members"), json!({"email": "nobody@acme.example", "role": "staff"}))
            .await
            .error_code(),
        "invalid_request"
    );
    assert_eq!(
        c.post(&format!("/api/v1/matters/{m}/members"), json!({"email": owner, "role": "client"})).await.error_code(),
        "invalid_request"
    );
    let dup_user = c.post("/api/v1/users", json!({"email": "s@acme.example", "role": "staff"})).await;
    assert_eq!(dup_user.status, StatusCode::CREATED);
    assert_eq!(
        c.post("/api/v1/users", json!({"email": "S@acme.example", "role": "staff"})).await.error_code(),
        "conflict"
    );
    let wrong_method = c.delete("/api/v1/matters").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.error_code(), "invalid_request");
    let unauth = srv.client().get("/api/v1/matters").await;
    assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauth.error_code(), "unauthenticated");
});

crate::both!(every_change_is_audited_in_an_intact_chain, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    c.login("acme", &owner, PASSWORD).await;
    let m = c.post("/api/v1/matters", json!({"reference": "R", "title": "T"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.upload(&m, "a.txt", b"hello".to_vec()).await;
    c.post(&format!("/api/v1/matters/{m}/messages"), json!({"body": "hi"})).await;
    let store = portcullis_store::SqlStore::open(&srv.db_url()).await.unwrap();
    use portcullis_core::ports::{Store, TxMode};
    let mut tx = store.begin(TxMode::Read).await.unwrap();
    let events = tx.audit().audit_chain(&tenant.to_string(), 0, 1000).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["tenant.create", "auth.login", "auth.new_device", "matter.create", "document.upload", "message.post"]
    );
    assert_eq!(portcullis_core::audit::verify_run("", 1, &events), Ok(()));
    assert!(events[1].ip.as_deref() == Some("127.0.0.1"));
    assert!(events[1].request_id.is_some());
    drop(tx);
    store.close().await;
});

crate::both!(health_and_openapi, |srv| async move {
    let c = srv.client();
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(c.get("/readyz").await.status, StatusCode::OK);
    let r = c.get("/healthz").await;
    for h in [
        "strict-transport-security",
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "x-request-id",
    ] {
        assert!(r.headers.contains_key(h), "missing {h}");
    }
    assert!(r.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    // A client cannot choose the request id that ends up in the audit trail.
    let spoofed = Client::send(c.request(reqwest::Method::GET, "/healthz").header("x-request-id", "forged")).await;
    assert_ne!(spoofed.headers["x-request-id"], "forged");
    let doc = c.get("/api/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/session",
        "/api/v1/tokens",
        "/api/v1/matters",
        "/api/v1/matters/{id}",
        "/api/v1/matters/{id}/members",
        "/api/v1/matters/{id}/documents",
        "/api/v1/documents/{id}/content",
        "/api/v1/matters/{id}/messages",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
});

crate::both!(repeated_failures_lock_an_account, |srv| async move {
    use time::Duration;
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "clerk@acme.example", "staff").await;
    let login = |pw: &'static str| async move { srv.client().login("acme", "clerk@acme.example", pw).await.status };
    for _ in 0..5 {
        assert_eq!(login("wrong password!!").await, StatusCode::UNAUTHORIZED);
    }
    // The fifth failure starts a wait: even the right password is refused, with the same answer.
    assert_eq!(login(PASSWORD).await, StatusCode::UNAUTHORIZED);
    srv.clock.advance(Duration::seconds(31));
    assert_eq!(login(PASSWORD).await, StatusCode::OK, "the wait is over and a sign-in resets the count");
    assert_eq!(login("wrong password!!").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(PASSWORD).await, StatusCode::OK, "one failure after a reset does not lock");

    // A hundred consecutive failures lock the account until an admin unlocks it.
    for _ in 0..100 {
        srv.clock.advance(Duration::hours(1) + Duration::seconds(1));
        assert_eq!(login("wrong password!!").await, StatusCode::UNAUTHORIZED);
    }
    srv.clock.advance(Duration::days(30));
    assert_eq!(login(PASSWORD).await, StatusCode::UNAUTHORIZED, "hard-locked");
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let users = o.get("/api/v1/users").await.json();
    let clerk = users["items"].as_array().unwrap().iter().find(|u| u["email"] == "clerk@acme.example").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(o.post(&format!("/api/v1/users/{clerk}/unlock"), json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(login(PASSWORD).await, StatusCode::OK);
    let actions = crate::support::sql_column(&srv.db_url(), "SELECT action FROM audit_events").await;
    assert!(actions.iter().any(|a| a == "auth.login_locked") && actions.iter().any(|a| a == "user.unlock"));
});

crate::both!(sessions_and_password, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "clerk@acme.example", "staff").await;
    let mut laptop = srv.client();
    let r = Client::send(
        laptop
            .http
            .post(format!("{}/api/v1/session", srv.base))
            .header("user-agent", "Laptop Browser/1.0")
            .json(&json!({"tenant": "acme", "email": "clerk@acme.example", "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    laptop.csrf = r.json()["csrf_token"].as_str().map(str::to_string);
    let mut phone = srv.client();
    assert_eq!(phone.login("acme", "clerk@acme.example", PASSWORD).await.status, StatusCode::OK);
    let mut tablet = srv.client();
    assert_eq!(tablet.login("acme", "clerk@acme.example", PASSWORD).await.status, StatusCode::OK);

    let list = phone.get("/api/v1/me/sessions").await.json();
    let items = list["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let on_laptop = items.iter().find(|s| s["user_agent"] == "Laptop Browser/1.0").unwrap()["id"].as_str().unwrap();
    assert!(!list.to_string().contains("pcs_"), "no cookie is shown");
    // End the laptop's session from the phone.
    assert_eq!(phone.delete(&format!("/api/v1/me/sessions/{on_laptop}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(laptop.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(phone.delete(&format!("/api/v1/me/sessions/{on_laptop}")).await.status, StatusCode::NOT_FOUND);
    // Another user's session ids are unknown here.
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let theirs = o.get("/api/v1/me/sessions").await.json()["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(phone.delete(&format!("/api/v1/me/sessions/{theirs}")).await.status, StatusCode::NOT_FOUND);

    // A password change needs the current password and ends every other session.
    let body = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    let r = phone.post("/api/v1/me/password", body("not the password", "a brand new password 1")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".to_string()));
    let r = phone.post("/api/v1/me/password", body(PASSWORD, "short")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = phone.post("/api/v1/me/password", body(PASSWORD, "Qwertyuiopasdfghjkl")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("breaches"), "{}", r.text());
    let r = phone.post("/api/v1/me/password", body(PASSWORD, "a brand new password 1")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(phone.get("/api/v1/matters").await.status, StatusCode::OK, "the changing session stays");
    assert_eq!(tablet.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "others end");
    assert_eq!(srv.client().login("acme", "clerk@acme.example", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.client().login("acme", "clerk@acme.example", "a brand new password 1").await.status, StatusCode::OK);

    // An admin ends all of a user's sessions.
    let users = o.get("/api/v1/users").await.json();
    let clerk = users["items"].as_array().unwrap().iter().find(|u| u["email"] == "clerk@acme.example").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = o.post(&format!("/api/v1/users/{clerk}/sessions/revoke"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(phone.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    let actions = crate::support::sql_column(&srv.db_url(), "SELECT action FROM audit_events").await;
    for a in ["session.end", "user.password_change_failed", "user.password_change", "session.end_all"] {
        assert!(actions.iter().any(|x| x == a), "no {a}: {actions:?}");
    }
});
