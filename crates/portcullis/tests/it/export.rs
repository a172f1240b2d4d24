//! Tenant export: only the owner may ask, after a fresh second-factor check, naming an age
//! public key; a second owner or admin approves (the requester cannot); the export job writes
//! the archive with its progress recorded; the owner downloads it, it decrypts with the
//! identity, every manifest hash holds, and it holds the firm's documents byte for byte, its
//! matters, messages, users (without secrets) and audit chain. Past its time it is deleted.
//! The export job is run directly, so each run is one step the test can look at.

use crate::erasure::{owner_admin_staff, server, some_content};
use crate::support::sql_column;
use portcullis_core::archive;
use portcullis_core::clock::Clock;
use portcullis_core::service::EXPORT_LABEL;
use portcullis_testkit::{Client, Db, totp_code};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::Duration;

async fn export_and_download(db: Db) {
    let srv = server(db).await;
    let (tenant_id, owner) = srv.tenant("acme").await;
    srv.user(tenant_id, "admin@acme.example", "admin").await;
    srv.user(tenant_id, "staff@acme.example", "staff").await;
    let (o, secret, a, s) = owner_admin_staff(&srv, &owner).await;
    let doc = some_content(&o).await;
    // A restricted matter the owner is not on is the firm's data too.
    let r = a.post("/api/v1/matters", json!({"reference": "W-1", "title": "Walled", "restricted": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let walled = r.json()["id"].as_str().unwrap().to_string();
    let big: Vec<u8> = (0..20_000u32).flat_map(|i| format!("line {i} of the walled notes\n").into_bytes()).collect();
    let r = a.upload(&walled, "notes.txt", big.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let big_doc = r.json()["id"].as_str().unwrap().to_string();

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    // Staff and admins may not ask; the refusal is audited.
    for c in [&s, &a] {
        let r = c.post("/api/v1/tenant/exports", json!({"recipient": &recipient})).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()), "{}", r.text());
    }
    // Something that is not an age public key is refused.
    let r = o.post("/api/v1/tenant/exports", json!({"recipient": "ssh-ed25519 AAAA"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".into()), "{}", r.text());
    // A fresh second-factor check first.
    srv.clock.advance(Duration::minutes(11));
    let r = o.post("/api/v1/tenant/exports", json!({"recipient": &recipient})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "step_up_required".into()));
    srv.clock.advance(Duration::seconds(30));
    let r = o.post("/api/v1/session/step-up", json!({"code": totp_code(&secret, srv.clock.now())})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = o.post("/api/v1/tenant/exports", json!({"recipient": &recipient})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["action"], json!({"action": "export_tenant", "recipient": &recipient}));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = o.get(&format!("/api/v1/tenant/exports/{id}")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()), "not approved yet");

    // The requester cannot approve; a second person does.
    let r = o.post(&format!("/api/v1/approvals/{id}/approve"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "forbidden".into()), "{}", r.text());
    let r = a.post(&format!("/api/v1/approvals/{id}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = o.get(&format!("/api/v1/tenant/exports/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!((r.json()["state"].clone(), r.json()["percent"].clone()), (json!("pending"), json!(0)));
    let r = o.get(&format!("/api/v1/tenant/exports/{id}/content")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "wrong_state".into()), "not written yet");
    // Only owners follow exports.
    assert_eq!(a.get(&format!("/api/v1/tenant/exports/{id}")).await.status, StatusCode::FORBIDDEN);

    // While another node holds the export's lease, this one leaves it alone.
    let lease = format!("export:{id}");
    assert!(srv.portal().take_lease(&lease, "another-node", Duration::hours(1)).await.unwrap());
    let report = srv.portal().run_exports().await.unwrap();
    assert_eq!((report.finished, report.failed), (0, 0), "{report:?}");
    srv.portal().release_lease(&lease, "another-node").await.unwrap();
    let report = srv.portal().run_exports().await.unwrap();
    assert_eq!((report.finished, report.failed), (1, 0), "{report:?}");
    let r = o.get(&format!("/api/v1/tenant/exports/{id}")).await;
    let view = r.json();
    assert_eq!((view["state"].clone(), view["percent"].clone()), (json!("done"), json!(100)), "{view}");
    assert_eq!(view["entries_done"], view["entries_total"]);
    assert_eq!(view["bytes_done"], json!(big.len() + b"%PDF-1.4 deed".len()));
    let r = o.get(&format!("/api/v1/tenant/exports/{id}/content")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let bytes = r.body.clone();
    assert_eq!(json!(bytes.len()), view["archive_size"]);
    assert_ne!(bytes.windows(13).position(|w| w == b"%PDF-1.4 deed"), Some(0), "encrypted");

    // Decrypt with the identity: every manifest hash is checked by the reader.
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let manifest = archive::read(&bytes[..], &identity, EXPORT_LABEL, |name, r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        entries.insert(name.to_string(), v);
        Ok(())
    })
    .unwrap();
    let manifest_text = serde_json::to_vec_pretty(&manifest).unwrap();
    let manifest_hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &manifest_text).as_ref());
    assert_eq!(json!(manifest_hash), view["manifest_sha256"]);
    assert_eq!(entries[&format!("documents/{doc}")], b"%PDF-1.4 deed");
    assert_eq!(entries[&format!("documents/{big_doc}")], big);
    let lines = |name: &str| -> Vec<Value> {
        String::from_utf8(entries[name].clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let matters = lines("matters.jsonl");
    assert_eq!(matters.len(), 2, "the walled matter too: {matters:?}");
    assert!(matters.iter().any(|m| m["restricted"] == json!(true) && m["members"].as_array().unwrap().len() == 1));
    let messages = lines("messages.jsonl");
    assert_eq!(messages.iter().map(|m| m["body"].clone()).collect::<Vec<_>>(), vec![json!("hello")]);
    let users = lines("users.jsonl");
    assert_eq!(users.len(), 3);
    let users_text = String::from_utf8(entries["users.jsonl"].clone()).unwrap();
    assert!(!users_text.contains("argon2") && !users_text.contains(&secret), "no secrets: {users_text}");
    let audit = lines("audit.jsonl");
    assert!(audit.iter().any(|e| e["action"] == "export.approved"), "the approval is in the exported chain");
    for pair in audit.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "the chain links");
    }
    assert_eq!(lines("documents.jsonl").len(), 2);

    let actions = sql_column(
        &srv.db_url(),
        "SELECT action FROM audit_events WHERE action LIKE 'export.%' OR action = 'approval.approve' ORDER BY seq",
    )
    .await;
    for want in ["export.refused", "export.requested", "export.approved", "export.finished", "export.downloaded"] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }

    // Past its time the archive is deleted and the row says so.
    srv.clock.advance(Duration::days(8));
    let report = srv.portal().run_exports().await.unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    let state = sql_column(&srv.db_url(), "SELECT state FROM tenant_exports").await;
    assert_eq!(state, vec!["expired".to_string()]);
    let left: Vec<_> = walk(&srv.dir.path().join("documents")).into_iter().filter(|p| p.contains("exports")).collect();
    assert_eq!(left, Vec::<String>::new(), "the archive is gone");
    srv.stop().await;
}

/// Every file under `dir`, as paths.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_download_sqlite() {
    export_and_download(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_download_postgres() {
    export_and_download(Db::Postgres).await;
}

/// The archive of an export of the owner `o`'s firm to `recipient`, approved by `a` and
/// written by one run of the export job (the owner's step-up must still be fresh).
pub(crate) async fn exported(srv: &portcullis_testkit::TestServer, o: &Client, a: &Client, recipient: &str) -> Vec<u8> {
    let r = o.post("/api/v1/tenant/exports", json!({"recipient": recipient})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = a.post(&format!("/api/v1/approvals/{id}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let report = srv.portal().run_exports().await.unwrap();
    assert_eq!((report.finished, report.failed), (1, 0), "{report:?}");
    let r = o.get(&format!("/api/v1/tenant/exports/{id}/content")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.body.to_vec()
}
