//! The subscription lifecycle end to end, on a real server with a real SMTP receiver: a firm's
//! subscription ends once a second operator approves one operator's request (nobody signs in,
//! live sessions and tokens stop at once), is reactivated
//! with nothing lost, ends again, its owners are mailed the notices before destruction once
//! each as the clock moves on, and when retention runs out the lifecycle job destroys it: no row
//! of it in any table, no stored object, no key; a ledger entry, a platform audit event and a
//! signed certificate that verifies offline and fails once altered. Every refusal on the way
//! is checked with its code.

use crate::support::{portcullis, sql_column};
use portcullis_core::clock::Clock;
use portcullis_testkit::{Client, Db, PASSWORD, SmtpSink, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use time::Duration;

/// A privileged operator's client (vetted, as the command line sets one up), and a support
/// operator's.
pub async fn operators(srv: &TestServer) -> (Client, Client) {
    let portal = srv.portal();
    let now = srv.clock.now();
    let mut clients = Vec::new();
    for (email, role) in [("root@platform.example", "privileged"), ("help@platform.example", "support")] {
        portal.add_operator(email, "Operator").await.unwrap();
        portal
            .record_vetting(email, "Vetting Agency", now - Duration::days(1), now + Duration::days(9000))
            .await
            .unwrap();
        portal.grant_operator_role(email, role).await.unwrap();
        clients.push(operator_client(srv, email).await);
    }
    let support = clients.pop().unwrap();
    (clients.pop().unwrap(), support)
}

/// A client with a fresh platform token of the operator (tokens live at most 30 days).
pub async fn operator_client(srv: &TestServer, email: &str) -> Client {
    use secrecy::ExposeSecret;
    let token = srv.portal().operator_token(email, 30).await.unwrap().expose_secret().to_string();
    srv.client().with_bearer(&token)
}

/// Rows of `tenant` left in any table that can hold a tenant's rows (by tenant id, audit chain,
/// or user id for failed sign-ins).
pub async fn leftover_rows(url: &str, tenant: &str) -> Vec<String> {
    use sqlx::Connection;
    let tables_query: &'static str = if url.starts_with("postgres") {
        "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name IN ('tenant_id', 'chain') \
         AND table_name <> 'tenant_erasures' ORDER BY 1"
    } else {
        "SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND p.name IN ('tenant_id', 'chain') AND m.name <> 'tenant_erasures' ORDER BY 1"
    };
    let mut columns = sql_column(url, tables_query).await;
    columns.push("tenants.id".into());
    assert!(columns.len() > 20, "{columns:?}");
    let mut left = Vec::new();
    for c in columns {
        let (table, column) = c.split_once('.').unwrap();
        let q = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        macro_rules! count {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(url).await.unwrap();
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(q)).bind(tenant).fetch_one(&mut conn).await.unwrap()
            }};
        }
        let n = if url.starts_with("postgres") { count!(sqlx::PgConnection) } else { count!(sqlx::SqliteConnection) };
        if n > 0 {
            left.push(format!("{c}: {n}"));
        }
    }
    left
}

/// Every file under `dir` whose path names `tenant`.
pub fn files_of(dir: &Path, tenant: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.to_string_lossy().contains(tenant) {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Wait (up to 60 s) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Wait (up to 60 s) until `n` mails whose text holds `needle` have arrived; those mails.
pub async fn mails_with(sink: &SmtpSink, needle: &str, n: usize) -> Vec<portcullis_testkit::Mail> {
    let found = || sink.messages().into_iter().filter(|m| m.raw.contains(needle)).collect::<Vec<_>>();
    eventually(&format!("{n} mail(s) with {needle:?} arrive"), || async { found().len() >= n }).await;
    found()
}

/// `portcullis` pointed at the test server's data directory and database.
pub fn cli(srv: &TestServer) -> std::process::Command {
    let mut c = portcullis(srv.dir.path());
    if srv.db == Db::Postgres {
        c.env("PORTCULLIS_DATABASE_URL", srv.db_url());
    }
    c
}

/// Run `portcullis ARGS` against the server's database: (success, stdout, stderr).
pub fn run_cli(srv: &TestServer, args: &[&str]) -> (bool, String, String) {
    let o = cli(srv).args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn full_lifecycle(db: Db) {
    let mut sink = SmtpSink::new();
    sink.start().await;
    let url = sink.url();
    let srv = TestServer::start_with(db, |c| {
        c.smtp_url = Some(url.into());
        c.mail_poll_secs = 1;
        c.lifecycle_poll_secs = 1;
    })
    .await;
    let (tenant_id, owner) = srv.tenant("acme").await;
    let tenant = tenant_id.to_string();
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let m = o.post("/api/v1/matters", json!({"reference": "A-1", "title": "Estate"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut content = b"%PDF-1.4\n".to_vec();
    for i in 0..20_000u32 {
        content.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    let r = o.upload(&m, "deed.pdf", content.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let doc = r.json()["id"].as_str().unwrap().to_string();
    let r = o.post(&format!("/api/v1/matters/{m}/messages"), json!({"body": "Signed today"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let token = o
        .post("/api/v1/tokens", json!({"name": "sync", "scopes": ["read"], "expires_in_days": 7}))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let api = srv.client().with_bearer(&token);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::OK);
    let (ops, support) = operators(&srv).await;

    // Who may: support operators see, only privileged ones change.
    let r = support.post("/api/v1/platform/tenants/acme/end", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = ops.post("/api/v1/platform/tenants/nobody/end", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "not_found".into()));
    let r = ops.post("/api/v1/platform/tenants/acme/reactivate", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()), "active: {}", r.text());
    let r = support.get("/api/v1/platform/tenants/acme/certificate").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no certificate for a live firm: {}", r.text());

    // End: one operator asks, and the firm carries on until a second one approves.
    let r = ops.post("/api/v1/platform/tenants/acme/end", json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let req = r.json();
    assert_eq!((req["action"].clone(), req["state"].clone()), (json!("end_subscription"), json!("pending")), "{req}");
    assert_eq!(req["tenant_id"], tenant.as_str(), "the request names the firm: {req}");
    let id = req["id"].as_str().unwrap().to_string();
    let r = ops.post("/api/v1/platform/tenants/acme/end", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "conflict".into()), "one request at a time");
    let s = support.get("/api/v1/platform/tenants/acme/subscription").await.json();
    assert_eq!((s["status"].clone(), s["pending_end"]["id"].clone()), (json!("active"), json!(id)), "{s}");
    assert_eq!(o.get("/api/v1/matters").await.status, StatusCode::OK, "still open while it waits");
    let r = ops.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()), "not by the requester");
    let r = support.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()), "not by support");
    assert_eq!(o.get("/api/v1/matters").await.status, StatusCode::OK, "still open");

    // A second privileged operator approves: sign-in refused with a clear code, the live
    // session and token stop at once.
    let second = crate::support::second_operator(&srv).await;
    let r = second.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["state"], "approved");
    assert!(r.json()["used_at"].is_string(), "carried out with the approval: {}", r.text());
    let r = second.post(&format!("/api/v1/platform/approvals/{id}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "decided once: {}", r.text());
    let s = support.get("/api/v1/platform/tenants/acme/subscription").await.json();
    assert_eq!((s["status"].clone(), s["pending_end"].clone()), (json!("ended"), json!(null)), "{s}");
    let r = ops.post("/api/v1/platform/tenants/acme/end", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()));
    assert!(r.json()["message"].as_str().unwrap().contains("already ended"), "{}", r.text());
    assert_eq!(o.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    let r = srv.client().login("acme", &owner, PASSWORD).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "subscription_ended".into()), "{}", r.text());
    let r = srv.client().login("acme", &owner, "wrong password").await;
    assert_eq!(r.error_code(), "invalid_credentials", "a wrong password learns nothing of the subscription");
    let mails = mails_with(&sink, "has ended", 1).await;
    assert!(mails[0].rcpt_to.contains(&owner), "{}", mails[0].raw);
    let s = support.get("/api/v1/platform/tenants/acme/subscription").await.json();
    assert_eq!(s["status"], "ended");
    let dir = support.get("/api/v1/platform/tenants").await.json();
    assert_eq!(dir["items"][0]["status"], "ended");

    // Reactivate: everything is there, byte for byte; old session and token stay revoked.
    let r = ops.post("/api/v1/platform/tenants/acme/reactivate", json!({})).await;
    assert_eq!((r.status, r.json()["status"].clone()), (StatusCode::OK, json!("active")), "{}", r.text());
    let r = ops.post("/api/v1/platform/tenants/acme/reactivate", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()));
    assert_eq!(o.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    let mut o = srv.client();
    assert_eq!(o.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(o.get("/api/v1/matters").await.json()["items"][0]["title"], "Estate");
    let got = o.get(&format!("/api/v1/documents/{doc}/content")).await;
    assert_eq!((got.status, got.body == content), (StatusCode::OK, true), "the document came back changed");
    assert_eq!(o.get(&format!("/api/v1/matters/{m}/messages")).await.json()["items"][0]["body"], "Signed today");

    // End again, from the command line this time.
    let (ok, out, err) = run_cli(&srv, &["tenant", "end", "acme"]);
    assert!(ok, "{err}");
    assert!(out.contains("ended") && out.contains("data destroyed after"), "{out}");
    let (ok, _, err) = run_cli(&srv, &["tenant", "end", "nobody"]);
    assert!(!ok && err.contains("no tenant is named \"nobody\""), "{err}");
    let (ok, _, err) = run_cli(&srv, &["tenant", "end", "acme"]);
    assert!(!ok && err.contains("already ended"), "{err}");
    let (ok, out, _) = run_cli(&srv, &["tenant", "status", "acme"]);
    assert!(ok && out.contains(": ended"), "{out}");
    // The command line ran on the real clock; bring the server's up to it.
    srv.clock.advance(Duration::minutes(1));
    mails_with(&sink, "has ended", 2).await;
    let destroy_after = time::OffsetDateTime::parse(
        support.get("/api/v1/platform/tenants/acme/subscription").await.json()["destroy_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(destroy_after - srv.clock.now() > Duration::days(2556), "seven years by default");

    // The notices before destruction: 90 days, then 30 days before, each once.
    srv.clock.advance(destroy_after - srv.clock.now() - Duration::days(90) + Duration::minutes(1));
    mails_with(&sink, "will be destroyed", 1).await;
    srv.clock.advance(Duration::days(60));
    let mails = mails_with(&sink, "will be destroyed", 2).await;
    assert!(mails.iter().all(|m| m.rcpt_to.contains(&owner)), "{mails:?}");
    let queued = sql_column(&srv.db_url(), "SELECT kind FROM mail_outbox WHERE kind = 'retention_notice'").await;
    assert_eq!(queued.len(), 2, "each notice is queued once");

    // Past retention: destroyed.
    srv.clock.advance(Duration::days(31));
    let ops = operator_client(&srv, "root@platform.example").await;
    let support = operator_client(&srv, "help@platform.example").await;
    eventually("the firm is destroyed", || async {
        support.get("/api/v1/platform/tenants/acme/subscription").await.json()["status"] == "destroyed"
    })
    .await;
    let s = support.get("/api/v1/platform/tenants/acme/subscription").await.json();
    let e = &s["erasure"];
    assert_eq!((e["reason"].clone(), e["requested_by"].clone()), (json!("retention"), json!("system")));
    assert_eq!((e["destroyed"]["documents"].clone(), e["destroyed"]["messages"].clone()), (json!(1), json!(1)));
    assert!(e["destroyed"]["tenant_keys"].as_u64().unwrap() >= 2, "{e}");
    assert!(e["synced_to_backups_at"].is_null(), "not applied to backups yet");
    let left = leftover_rows(&srv.db_url(), &tenant).await;
    assert!(left.is_empty(), "rows of the destroyed firm remain: {left:?}");
    let files = files_of(&srv.dir.path().join("documents"), &tenant);
    assert!(files.is_empty(), "stored objects of the destroyed firm remain: {files:?}");
    let events = sql_column(&srv.db_url(), "SELECT action FROM audit_events WHERE chain = '' ORDER BY seq").await;
    for action in [
        "subscription.end_requested",
        "platform.approval_approved",
        "subscription.end",
        "subscription.reactivate",
        "tenant.erasure_start",
        "keys.shred",
        "tenant.erased",
    ] {
        assert!(events.iter().any(|a| a == action), "{action} missing from the platform chain: {events:?}");
    }
    let public_key = portcullis_core::crypto::signing::AuditPublicKey::from_hex(
        &std::fs::read_to_string(srv.dir.path().join("audit-signing.pub")).unwrap(),
    )
    .unwrap();
    let reports = srv.portal().verify_audit(None, &[public_key]).await.unwrap();
    assert!(reports.iter().all(|r| r.fault.is_none()), "the remaining audit chains verify: {reports:?}");
    assert!(reports.iter().all(|r| r.chain != tenant), "the firm's chain is gone: {reports:?}");

    // The certificate: mailed to the owner, fetched by operators, verified offline.
    let mails = mails_with(&sink, "Erasure certificate for acme", 1).await;
    assert!(mails[0].rcpt_to.contains(&owner), "{}", mails[0].raw);
    let r = support.get("/api/v1/platform/tenants/acme/certificate").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cert = r.text();
    assert_eq!(r.json()["certificate"]["tenant_id"], tenant.as_str());
    let path = srv.dir.path().join("acme-erasure.json");
    std::fs::write(&path, &cert).unwrap();
    let public = srv.dir.path().join("audit-signing.pub");
    let (ok, out, err) = run_cli(
        &srv,
        &["tenant", "verify-certificate", path.to_str().unwrap(), "--public-key", public.to_str().unwrap()],
    );
    assert!(ok && out.contains("certificate verified: tenant acme"), "{out}{err}");
    let altered = cert.replace("\"retention\"", "\"customer\"");
    assert_ne!(altered, cert);
    std::fs::write(&path, altered).unwrap();
    let (ok, _, err) = run_cli(
        &srv,
        &["tenant", "verify-certificate", path.to_str().unwrap(), "--public-key", public.to_str().unwrap()],
    );
    assert!(!ok && err.contains("signature does not verify"), "{err}");
    let (ok, out, _) = run_cli(&srv, &["tenant", "certificate", "acme"]);
    assert!(ok && out.contains("portcullis-erasure-certificate"), "{out}");

    // A destroyed firm: no reactivation, no second ending, its name stays reserved.
    let r = ops.post("/api/v1/platform/tenants/acme/reactivate", json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()));
    assert!(r.json()["message"].as_str().unwrap().contains("destroyed"), "{}", r.text());
    let (ok, _, err) = run_cli(&srv, &["tenant", "reactivate", "acme"]);
    assert!(!ok && err.contains("destroyed"), "{err}");
    let r = ops.post("/api/v1/platform/tenants", json!({"name": "acme", "owner_email": "new@acme.example"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "conflict".into()), "{}", r.text());
    let r = srv.client().login("acme", &owner, PASSWORD).await;
    assert_eq!(r.error_code(), "invalid_credentials");
    // The backup side marks the entry applied, once.
    assert_eq!(srv.portal().unsynced_erasures().await.unwrap().len(), 1);
    assert!(srv.portal().mark_erasure_synced(tenant_id).await.unwrap());
    assert!(!srv.portal().mark_erasure_synced(tenant_id).await.unwrap());
    assert!(srv.portal().unsynced_erasures().await.unwrap().is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_sqlite() {
    full_lifecycle(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_postgres() {
    full_lifecycle(Db::Postgres).await;
}
