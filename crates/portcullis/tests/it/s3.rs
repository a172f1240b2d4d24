//! Documents on S3 (a real S3-compatible server checking request signatures, on loopback):
//! stored encrypted, read whole and by range, damage refused; and two nodes sharing one
//! PostgreSQL database and one bucket serve the same firm, either one reading what the other
//! wrote.

use crate::backups::{age_key, ok, refused};
use crate::encryption::{download, owner, upload};
use crate::support::portcullis;
use portcullis_testkit::{BUCKET, Client, Db, PASSWORD, PgDatabase, S3Server, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Every file under `dir`, read whole, in no particular order (compare after sorting).
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

async fn documents_in_s3(db: Db) {
    let s3 = S3Server::start().await;
    let srv = TestServer::start_with(db, |cfg| s3.configure(cfg, "node-a")).await;
    let (c, tenant, m) = owner(&srv, "bucket").await;
    let marker = format!("MARKER-{}", uuid::Uuid::new_v4());
    let body = format!("{marker} sort code 12-34-56 {marker}").repeat(4000).into_bytes();
    let id = upload(&c, &m, body.clone()).await;

    assert_eq!(download(&c, &id, None).await.unwrap().1, body);
    let (status, part, _) = download(&c, &id, Some("bytes=70000-70099")).await.unwrap();
    assert_eq!((status, part.as_slice()), (StatusCode::PARTIAL_CONTENT, &body[70000..70100]));

    // The object is in the bucket, under the configured prefix, and reveals nothing; the data
    // directory holds no documents.
    let object = s3.objects("node-a").join("tenants").join(&tenant).join("documents").join(&id);
    let stored = std::fs::read(&object).unwrap_or_else(|e| panic!("{}: {e}", object.display()));
    assert!(stored.len() > body.len(), "sealed chunks are longer than the plaintext");
    for (path, bytes) in files(&s3.objects("")) {
        assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()), "{} is in the clear", path.display());
    }
    assert!(!srv.dir.path().join("documents").exists(), "documents went to S3 only");

    // Damage in the bucket is refused as on a disk.
    let mut flipped = stored.clone();
    flipped[141] ^= 0x01;
    std::fs::write(&object, &flipped).unwrap();
    let (status, _, code) = download(&c, &id, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));
    std::fs::write(&object, &stored).unwrap();
    assert_eq!(download(&c, &id, None).await.unwrap().1, body);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_live_encrypted_in_s3_on_sqlite() {
    documents_in_s3(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_live_encrypted_in_s3_on_postgres() {
    documents_in_s3(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database_and_one_bucket() {
    let s3 = S3Server::start().await;
    let a = TestServer::start_with(Db::Postgres, |cfg| s3.configure(cfg, "shared")).await;
    // Node B: the same database, bucket, master key and audit signing key; its own TLS
    // certificate, clock and background jobs.
    let b = a.another_node(|cfg| s3.configure(cfg, "shared")).await;
    let (ca, _, m) = owner(&a, "shared").await;
    let t = ca.post("/api/v1/tokens", json!({"name": "sync", "scopes": ["read", "write"]})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let token = t.json()["token"].as_str().unwrap().to_string();
    let on_b = Client::new(&b.base, &b.cert_pem).with_bearer(&token);

    // What A stored, B serves; what B stores, A serves.
    let first = b"written through node A".repeat(5000);
    let id = upload(&ca, &m, first.clone()).await;
    assert_eq!(download(&on_b, &id, None).await.unwrap().1, first);
    let second = b"written through node B".repeat(5000);
    let id_b = upload(&on_b, &m, second.clone()).await;
    assert_eq!(download(&ca, &id_b, None).await.unwrap().1, second);

    // One firm, one audit chain: both nodes' events are in it, in one order, and it verifies.
    let mut owner_b = b.client();
    assert_eq!(owner_b.login("shared", "owner@shared.example", PASSWORD).await.status, StatusCode::OK);
    let events = owner_b.get("/api/v1/audit?action=document.").await.json();
    let uploads = events["items"].as_array().unwrap().iter().filter(|e| e["action"] == "document.upload").count();
    assert_eq!(uploads, 2, "{events}");
    let key = portcullis_core::crypto::signing::AuditPublicKey::from_hex(
        &std::fs::read_to_string(a.dir.path().join("audit-signing.pub")).unwrap(),
    )
    .unwrap();
    let verified = b.portal().verify_audit(None, &[key]).await.unwrap();
    assert!(verified.iter().all(|r| r.fault.is_none()), "{verified:?}");

    b.stop().await;
    a.stop().await;
}

/// A backup of a server whose documents are in S3, written to another prefix of the bucket by
/// `portcullis backup create`, is listed and verified there (signature, hashes, every document
/// decrypted), and restores into a new database and an empty prefix, from which a new server
/// serves the same document; a restore over documents in a bucket is refused, even with
/// `--force` (a bucket cannot be set aside), changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_of_s3_documents_go_to_s3_verify_and_restore() {
    let s3 = S3Server::start().await;
    let srv = TestServer::start_with(Db::Postgres, |cfg| s3.configure(cfg, "docs")).await;
    let (c, _, m) = owner(&srv, "backed").await;
    let body = b"kept in the bucket".repeat(10_000);
    let doc = upload(&c, &m, body.clone()).await;
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "backup.key");
    let public = srv.dir.path().join("audit-signing.pub");
    let run = |data: &Path, db: &str, prefix: &str, args: &[&str]| {
        let mut cmd = portcullis(data);
        s3.env(&mut cmd, prefix);
        cmd.env("PORTCULLIS_DATABASE_URL", db)
            .env("PORTCULLIS_MASTER_KEY_FILE", srv.dir.path().join("master.key"))
            .env("PORTCULLIS_AUDIT_SIGNING_KEY_FILE", srv.dir.path().join("audit-signing.key"))
            .env("PORTCULLIS_BACKUP_TARGET", format!("s3://{BUCKET}/backups"))
            .env("PORTCULLIS_BACKUP_RECIPIENT", &key.recipient);
        cmd.args(args).output().unwrap()
    };
    let here = |args: &[&str]| run(srv.dir.path(), &srv.db_url(), "docs", args);
    let made = ok(&here(&["backup", "create"]));
    let id = made.split_whitespace().nth(1).unwrap().to_string();
    let stored: Vec<String> = std::fs::read_dir(s3.objects("backups").join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for suffix in [".age", ".manifest.json", ".manifest.sig"] {
        assert!(stored.contains(&format!("{id}{suffix}")), "{suffix} in {stored:?}");
    }
    assert!(ok(&here(&["backup", "list"])).contains(&id));
    let (pk, identity) = (public.to_str().unwrap(), key.file.to_str().unwrap());
    ok(&here(&["backup", "verify", &id, "--public-key", pk, "--identity", identity]));

    // Over the live deployment: refused, with and without --force; nothing changes.
    let sorted = |mut v: Vec<(PathBuf, Vec<u8>)>| {
        v.sort();
        v
    };
    let before = sorted(files(&s3.objects("docs")));
    refused(&here(&["backup", "restore", &id, "--identity", identity]), "not empty");
    refused(&here(&["backup", "restore", &id, "--identity", identity, "--force"]), "cannot set documents");
    assert_eq!(sorted(files(&s3.objects("docs"))), before);

    // Into a new database and an empty prefix, then served from there.
    let fresh = PgDatabase::create().await;
    let data = tempfile::tempdir().unwrap();
    let report = ok(&run(data.path(), &fresh.url, "restored", &["backup", "restore", &id, "--identity", identity]));
    assert!(report.contains(&id), "{report}");
    let restored = TestServer::start_with(Db::Postgres, |cfg| {
        s3.configure(cfg, "restored");
        cfg.database_url = Some(fresh.url.clone().into());
        cfg.master_key_file = Some(srv.dir.path().join("master.key"));
        cfg.audit_signing_key_file = Some(srv.dir.path().join("audit-signing.key"));
    })
    .await;
    let mut back = restored.client();
    assert_eq!(back.login("backed", "owner@backed.example", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(download(&back, &doc, None).await.unwrap().1, body);
    restored.stop().await;
    fresh.drop_database().await;
    srv.stop().await;
}
