//! Customer-directed erasure and the destroy routine: only the owner may ask, after a fresh
//! second-factor check; a second owner or admin approves through the approvals (the requester
//! cannot); a rejected request changes nothing; once approved the firm is shut out at once and
//! the lifecycle job destroys it. A destruction cut off part-way (here: a database trigger that
//! makes one table's delete fail) is finished by the next run once the obstacle is gone.
//! The lifecycle job is run directly, so each run is one step the test can look at.

use crate::subscriptions::{files_of, leftover_rows, run_cli};
use crate::support::{sql, sql_column};
use portcullis::config::Config;
use portcullis_core::clock::Clock;
use portcullis_core::crypto::signing::AuditSigner;
use portcullis_testkit::{Client, Db, PASSWORD, TestServer, totp_code};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

/// A server whose own lifecycle job stays out of the way (the test runs it).
pub(crate) async fn server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| c.lifecycle_poll_secs = 3600).await
}

/// The node's signing key, as the server loaded it.
fn signer(srv: &TestServer) -> AuditSigner {
    portcullis::audit_key::load(&Config { data: srv.dir.path().to_path_buf(), ..Config::default() }).unwrap()
}

pub(crate) async fn signed_in(srv: &TestServer, email: &str) -> Client {
    let mut c = srv.client();
    let r = c.login("acme", email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    c
}

/// A matter with a document and a message; the document's id.
pub(crate) async fn some_content(c: &Client) -> String {
    let m = c.post("/api/v1/matters", json!({"reference": "A-1", "title": "Estate"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.post(&format!("/api/v1/matters/{m}/messages"), json!({"body": "hello"})).await.status,
        StatusCode::CREATED
    );
    c.upload(&m, "deed.pdf", b"%PDF-1.4 deed".to_vec()).await.json()["id"].as_str().unwrap().to_string()
}

/// The owner (signed in, with a second factor whose secret is returned), and the admin and
/// staff member already created, signed in.
pub(crate) async fn owner_admin_staff(srv: &TestServer, owner: &str) -> (Client, String, Client, Client) {
    let o = signed_in(srv, owner).await;
    let r = o.post("/api/v1/me/totp", json!({})).await;
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let r = o.post("/api/v1/me/totp/confirm", json!({"code": totp_code(&secret, srv.clock.now())})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a = signed_in(srv, "admin@acme.example").await;
    let s = signed_in(srv, "staff@acme.example").await;
    (o, secret, a, s)
}

async fn status(srv: &TestServer) -> portcullis_core::service::SubscriptionStatus {
    srv.portal().subscription_status_cli("acme").await.unwrap()
}

async fn customer_erasure(db: Db) {
    let srv = server(db).await;
    let (tenant_id, owner) = srv.tenant("acme").await;
    let tenant = tenant_id.to_string();
    srv.user(tenant_id, "admin@acme.example", "admin").await;
    srv.user(tenant_id, "staff@acme.example", "staff").await;
    let (o, secret, a, s) = owner_admin_staff(&srv, &owner).await;
    let doc = some_content(&o).await;

    // Only the owner may ask; staff and admins are refused (and the refusal audited).
    for c in [&s, &a] {
        let r = c.post("/api/v1/tenant/erasure", json!({})).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()), "{}", r.text());
    }
    // A fresh second-factor check first.
    srv.clock.advance(Duration::minutes(11));
    let r = o.post("/api/v1/tenant/erasure", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "step_up_required".into()));
    srv.clock.advance(Duration::seconds(30));
    let r = o.post("/api/v1/session/step-up", json!({"code": totp_code(&secret, srv.clock.now())})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = o.post("/api/v1/tenant/erasure", json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["action"]["action"], "erase_tenant");
    let first = r.json()["id"].as_str().unwrap().to_string();
    let r = o.post("/api/v1/tenant/erasure", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()), "one request at a time");

    // The requester cannot approve; a rejection does nothing.
    let r = o.post(&format!("/api/v1/approvals/{first}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()), "{}", r.text());
    let r = a.post(&format!("/api/v1/approvals/{first}/reject"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let report = srv.portal().run_lifecycle(&signer(&srv), None).await.unwrap();
    assert_eq!((report.started, report.destroyed), (0, 0));
    assert_eq!(status(&srv).await.status, "active");
    assert_eq!(o.get(&format!("/api/v1/documents/{doc}/content")).await.body, b"%PDF-1.4 deed");

    // Asked again and approved by a second person: everyone is out at once.
    let r = o.post("/api/v1/tenant/erasure", json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = a.post(&format!("/api/v1/approvals/{id}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for c in [&o, &a, &s] {
        assert_eq!(c.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    }
    // While it is erased its accounts are unknown (their keys may already be gone).
    let r = srv.client().login("acme", "staff@acme.example", PASSWORD).await;
    assert_eq!(r.error_code(), "invalid_credentials");
    assert_eq!(status(&srv).await.status, "erasing");
    let (ok, _, err) = run_cli(&srv, &["tenant", "certificate", "acme"]);
    assert!(!ok && err.contains("has not finished"), "{err}");
    let (ok, _, err) = run_cli(&srv, &["tenant", "reactivate", "acme"]);
    assert!(!ok && err.contains("being erased"), "{err}");

    // The job destroys it.
    let report = srv.portal().run_lifecycle(&signer(&srv), None).await.unwrap();
    assert_eq!((report.destroyed, report.failed.len()), (1, 0), "{report:?}");
    let st = status(&srv).await;
    assert_eq!(st.status, "destroyed");
    let e = st.erasure.unwrap();
    let approvals =
        sql_column(&srv.db_url(), "SELECT target FROM audit_events WHERE action = 'approval.approve'").await;
    assert!(approvals.is_empty(), "the firm's chain is gone, approvals included: {approvals:?}");
    assert_eq!(e.reason.as_str(), "customer");
    assert!(e.requested_by.starts_with("user:") && e.approved_by.as_deref().is_some_and(|a| a.starts_with("user:")));
    assert_ne!(Some(e.requested_by.as_str()), e.approved_by.as_deref());
    assert!(e.audit_head.is_some() && e.keys_destroyed_at.is_some());
    let body =
        portcullis_core::crypto::certificate::verify(e.certificate.as_deref().unwrap(), &[signer(&srv).public_key()])
            .unwrap();
    assert_eq!((body["reason"].clone(), body["tenant_name"].clone()), (json!("customer"), json!("acme")));
    assert_eq!(body["audit_chain"]["final_head"], json!(e.audit_head));
    assert_eq!(leftover_rows(&srv.db_url(), &tenant).await, Vec::<String>::new());
    assert_eq!(files_of(&srv.dir.path().join("documents"), &tenant), Vec::<String>::new());
    let report = srv.portal().run_lifecycle(&signer(&srv), None).await.unwrap();
    assert_eq!((report.destroyed, report.failed.len()), (0, 0), "nothing left to do");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_erasure_sqlite() {
    customer_erasure(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_erasure_postgres() {
    customer_erasure(Db::Postgres).await;
}

async fn interrupted_destroy(db: Db) {
    let srv = server(db).await;
    let (tenant_id, owner) = srv.tenant("acme").await;
    let tenant = tenant_id.to_string();
    let o = signed_in(&srv, &owner).await;
    some_content(&o).await;
    srv.portal().end_subscription_cli("acme").await.unwrap();
    // One table refuses its delete, as a crash or a lock would stop the routine part-way.
    let url = srv.db_url();
    if db == Db::Postgres {
        sql(
            &url,
            "CREATE FUNCTION hold_messages() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'held for the test'; END; $$",
            &[],
        )
        .await;
        sql(
            &url,
            "CREATE TRIGGER hold_messages BEFORE DELETE ON messages FOR EACH ROW EXECUTE FUNCTION hold_messages()",
            &[],
        )
        .await;
    } else {
        sql(&url, "CREATE TRIGGER hold_messages BEFORE DELETE ON messages BEGIN SELECT RAISE(ABORT, 'held'); END", &[])
            .await;
    }
    srv.clock.advance(Duration::days(2557) + Duration::minutes(1));
    let report = srv.portal().run_lifecycle(&signer(&srv), None).await.unwrap();
    assert_eq!((report.started, report.destroyed, report.failed.len()), (1, 0, 1), "{report:?}");
    assert!(report.failed[0].1.contains("messages"), "{report:?}");
    // Half-way: keys shredded, objects deleted, rows still there, the firm shut out.
    let st = status(&srv).await;
    assert_eq!(st.status, "erasing");
    let e = st.erasure.unwrap();
    assert!(e.keys_destroyed_at.is_some() && e.finished_at.is_none(), "{e:?}");
    let keys = sql_column(&url, "SELECT tenant_id FROM tenant_keys").await;
    assert!(!keys.contains(&tenant), "the keys go first");
    assert_eq!(files_of(&srv.dir.path().join("documents"), &tenant), Vec::<String>::new());
    assert!(!leftover_rows(&url, &tenant).await.is_empty());
    assert_eq!(srv.client().login("acme", &owner, PASSWORD).await.error_code(), "invalid_credentials");
    let report = srv.portal().run_lifecycle(&signer(&srv), None).await.unwrap();
    assert_eq!((report.destroyed, report.failed.len()), (0, 1), "still held: {report:?}");

    // The obstacle goes; the next run finishes the job.
    if db == Db::Postgres {
        sql(&url, "DROP TRIGGER hold_messages ON messages", &[]).await;
    } else {
        sql(&url, "DROP TRIGGER hold_messages", &[]).await;
    }
    let report = srv.portal().run_lifecycle(&signer(&srv), None).await.unwrap();
    assert_eq!((report.destroyed, report.failed.len()), (1, 0), "{report:?}");
    assert_eq!(status(&srv).await.status, "destroyed");
    assert_eq!(leftover_rows(&url, &tenant).await, Vec::<String>::new());
    let e = status(&srv).await.erasure.unwrap();
    assert_eq!((e.reason.as_str(), e.counts["messages"].clone()), ("retention", json!(1)));
    // The audit log stays append-only for every live chain.
    let (other, _) = srv.tenant("other").await;
    let other = other.to_string();
    let live = try_sql(&url, "DELETE FROM audit_events WHERE chain = $1", &other).await;
    assert!(live.is_err(), "a live chain's events were deleted");
    let ledger = try_sql(&url, "DELETE FROM tenant_erasures WHERE tenant_id = $1", &tenant).await;
    assert!(ledger.is_err(), "the erasure ledger lost a row");
    let erased = try_sql(&url, "UPDATE audit_events SET detail = '{}' WHERE chain = ''", "").await;
    assert!(erased.is_err(), "audit events were changed");
    srv.stop().await;
}

/// Run a statement with one text bind (unused if the statement has none) directly in the
/// database, as someone with write access would; the database's answer.
async fn try_sql(url: &str, q: &'static str, bind: &str) -> Result<u64, sqlx::Error> {
    use sqlx::Connection;
    let bind = Some(bind).filter(|_| q.contains("$1"));
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let q = sqlx::query(q);
        let q = match bind {
            Some(b) => q.bind(b),
            None => q,
        };
        Ok(q.execute(&mut c).await?.rows_affected())
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        let q = sqlx::query(q);
        let q = match bind {
            Some(b) => q.bind(b),
            None => q,
        };
        Ok(q.execute(&mut c).await?.rows_affected())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_destroy_sqlite() {
    interrupted_destroy(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_destroy_postgres() {
    interrupted_destroy(Db::Postgres).await;
}

// The security page: only the owner sees the erasure form; a request without the firm's name
// typed asks nothing; with it, the request waits for a second owner or admin.
crate::both!(the_owner_requests_erasure_from_the_security_page, |srv| async move {
    use crate::ui::{csrf_of, post_form};
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "admin@acme.example", "admin").await;
    let o = signed_in(srv, &owner).await;
    let a = signed_in(srv, "admin@acme.example").await;
    assert!(!a.get("/account/security").await.text().contains("request-erasure"), "admins may not ask");
    let page = o.get("/account/security").await.text();
    assert!(page.contains("id=\"request-erasure\""), "{page}");
    let csrf = csrf_of(&page);
    let pending = || async { a.get("/api/v1/approvals").await.json()["items"].as_array().unwrap().len() };
    let r = post_form(&o, "/account/security/erasure", &[("csrf", &csrf), ("confirm", "not-acme")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("type the firm"), "{}", r.text());
    assert_eq!(pending().await, 0, "nothing was requested");
    let r = post_form(&o, "/account/security/erasure", &[("csrf", &csrf), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("waits for a second owner or admin"), "{}", r.text());
    let items = a.get("/api/v1/approvals").await.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["action"]["action"], "erase_tenant", "{items}");
    assert_eq!(status(srv).await.status, "active", "nothing happens before the approval");
});
