//! Master-key rotation, interrupted with SIGKILL at every step and resumed: every document and
//! field still decrypts after each crash, and re-running finishes the rotation.

use crate::support::{KillOnDrop, portcullis};
use portcullis_testkit::{Client, PASSWORD, PgDatabase};
use reqwest::StatusCode;
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

/// The command line of a one-person installation: master-key rotations need no second
/// operator's approval here (the four-eyes rule is tested in `platform`).
fn cmd(dir: &Path, db: Option<&str>) -> Command {
    let mut c = portcullis(dir);
    c.env("PORTCULLIS_MASTER_KEY_ROTATION_NEEDS_APPROVAL", "false");
    if let Some(url) = db {
        c.env("PORTCULLIS_DATABASE_URL", url);
    }
    c
}

fn run(dir: &Path, db: Option<&str>, args: &[&str], failpoint: Option<&str>) -> Output {
    let mut c = cmd(dir, db);
    if let Some(f) = failpoint {
        c.env("PORTCULLIS_FAILPOINT", f);
    }
    c.args(args).output().unwrap()
}

/// A server that leaves rotations to the command line (it would resume them after a day).
async fn serve(dir: &Path, db: Option<&str>) -> (KillOnDrop, Client) {
    let mut c = cmd(dir, db);
    c.env("PORTCULLIS_KEY_ROTATION_POLL_SECS", "86400");
    let (guard, port) = crate::support::serve(c).await;
    let cert = std::fs::read(dir.join("tls/cert.pem")).unwrap();
    let mut c = Client::new(&format!("https://127.0.0.1:{port}"), &cert);
    assert_eq!(c.login("acme", "o@acme.example", PASSWORD).await.status, StatusCode::OK);
    (guard, c)
}

/// Everything stored before the rotation still reads back.
async fn all_readable(dir: &Path, db: Option<&str>, doc: &str, body: &[u8], when: &str) {
    let (_server, c) = serve(dir, db).await;
    let got = c.get(&format!("/api/v1/documents/{doc}/content")).await;
    assert_eq!(got.status, StatusCode::OK, "{when}: {}", got.text());
    assert_eq!(got.body, body, "{when}");
    let matters = c.get("/api/v1/matters").await.text();
    assert!(matters.contains("Quay Street"), "{when}: {matters}");
}

fn status(dir: &Path, db: Option<&str>) -> String {
    let o = run(dir, db, &["keys", "status"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn rotation_survives_kill_9(db: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::support::create_acme(cmd(d, db), d);

    // Text: the upload allow-list takes plain text, not arbitrary binary data.
    let body: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let doc = {
        let (_server, c) = serve(d, db).await;
        let m = c.post("/api/v1/matters", json!({"reference": "Q-1", "title": "4 Quay Street"})).await.json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        c.upload(&m, "deed.pdf", body.clone()).await.json()["id"].as_str().unwrap().to_string()
    };
    let before = status(d, db);
    let old_id = before.lines().next().unwrap().trim_start_matches("master key in use: ").to_string();

    for point in ["after-new-key", "mid-rewrap", "before-commit", "after-commit", "between-renames"] {
        let o = run(d, db, &["keys", "rotate-master"], Some(point));
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{point}: the process was not killed there: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        all_readable(d, db, &doc, &body, &format!("after a kill at {point}")).await;
    }
    let o = run(d, db, &["keys", "rotate-master"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    all_readable(d, db, &doc, &body, "after the resumed rotation").await;

    let after = status(d, db);
    let new_id = after.lines().next().unwrap().trim_start_matches("master key in use: ").to_string();
    assert_ne!(new_id, old_id);
    let rows: Vec<&str> = after.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{after}");
    assert!(rows.iter().all(|r| r.ends_with(&new_id)), "a key is still wrapped by the old master key: {after}");
    assert!(!d.join("master.key.next").exists());
    assert!(d.join("master.key.previous").exists());

    // With only the new key (the previous one moved offline) everything still reads.
    std::fs::remove_file(d.join("master.key.previous")).unwrap();
    all_readable(d, db, &doc, &body, "with the previous key gone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_rotation_survives_kill_9_on_sqlite() {
    rotation_survives_kill_9(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_rotation_survives_kill_9_on_postgres() {
    let db = PgDatabase::create().await;
    rotation_survives_kill_9(Some(&db.url)).await;
    db.drop_database().await;
}

/// What the tenant-rotation tests store before rotating: documents of several shapes (empty,
/// one chunk and a bit, several chunks), a matter and a message, all under key version 1.
struct Stored {
    matter: String,
    docs: Vec<(String, Vec<u8>)>,
}

async fn store_content(c: &Client) -> Stored {
    let matter = c.post("/api/v1/matters", json!({"reference": "Q-1", "title": "4 Quay Street"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut docs = Vec::new();
    for (i, len) in [0usize, 70_000, 200_000].into_iter().enumerate() {
        let body: Vec<u8> = (0..len).map(|b| b'a' + ((b * 7 + i) % 26) as u8).collect();
        let r = c.upload(&matter, &format!("deed-{i}.pdf"), body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        docs.push((r.json()["id"].as_str().unwrap().to_string(), body));
    }
    let r = c.post(&format!("/api/v1/matters/{matter}/messages"), json!({"body": "Completion moved to Friday"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    Stored { matter, docs }
}

/// Every document, name, title and message stored reads back exactly.
async fn stored_readable(c: &Client, s: &Stored, when: &str) {
    for (id, body) in &s.docs {
        let got = c.get(&format!("/api/v1/documents/{id}/content")).await;
        assert_eq!(got.status, StatusCode::OK, "{when}: {}", got.text());
        assert_eq!(&got.body, body, "{when}: document {id} changed");
    }
    let names = c.get(&format!("/api/v1/matters/{}/documents", s.matter)).await.text();
    assert!(names.contains("deed-2.pdf"), "{when}: {names}");
    let matters = c.get("/api/v1/matters").await.text();
    assert!(matters.contains("4 Quay Street") && matters.contains("Q-1"), "{when}: {matters}");
    let messages = c.get(&format!("/api/v1/matters/{}/messages", s.matter)).await.text();
    assert!(messages.contains("Completion moved to Friday"), "{when}: {messages}");
}

/// The key version in the header of every stored document copy, and how many copies exist.
fn stored_versions(dir: &Path) -> Vec<u32> {
    let tenants = dir.join("documents/tenants");
    let mut versions = Vec::new();
    for tenant in std::fs::read_dir(&tenants).unwrap() {
        for f in std::fs::read_dir(tenant.unwrap().path().join("documents")).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            versions.push(u32::from_be_bytes(bytes[5..9].try_into().unwrap()));
        }
    }
    versions
}

fn db_url(dir: &Path, db: Option<&str>) -> String {
    db.map_or_else(|| format!("sqlite://{}", dir.join("portcullis.db").display()), str::to_string)
}

/// The newest rotation's row of `keys status`, split into its columns.
fn rotation_row(status: &str) -> Vec<String> {
    let row = status.lines().skip_while(|l| !l.starts_with("tenant\tto_version")).nth(1);
    row.unwrap_or_else(|| panic!("no rotation in: {status}")).split('\t').map(str::to_string).collect()
}

async fn tenant_rotation_survives_kill_9(db: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::support::create_acme(cmd(d, db), d);
    let stored = {
        let (_server, c) = serve(d, db).await;
        store_content(&c).await
    };
    assert_eq!(stored_versions(d), vec![1, 1, 1]);

    // Each point is reached in this order as the runs make progress: the first run stops right
    // after making the new key, the next ones inside the first remaining document, after its
    // switch, inside the fields, and just before the rotation is marked finished.
    let rotate = ["keys", "rotate-tenant", "--tenant", "acme"];
    for point in ["after-start", "after-pending", "after-copy", "after-switch", "after-field-batch", "before-finish"] {
        let o = run(d, db, &rotate, Some(point));
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{point}: the process was not killed there: {} {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let (_server, c) = serve(d, db).await;
        stored_readable(&c, &stored, &format!("after a kill at {point}")).await;
        let row = rotation_row(&status(d, db));
        assert_eq!((row[1].as_str(), row[2].as_str()), ("2", "open"), "{point}: {row:?}");
    }

    // A write while the rotation is open already uses the new version.
    let late = {
        let (_server, c) = serve(d, db).await;
        let r = c.upload(&stored.matter, "late.pdf", b"written mid-rotation".to_vec()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };

    let o = run(d, db, &rotate, None);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("resuming the open rotation to version 2"), "{out}");
    assert!(out.contains("rotation to version 2 finished"), "{out}");

    let (_server, c) = serve(d, db).await;
    stored_readable(&c, &stored, "after the resumed rotation").await;
    assert_eq!(c.get(&format!("/api/v1/documents/{late}/content")).await.body, b"written mid-rotation");
    let st = status(d, db);
    let row = rotation_row(&st);
    assert_eq!(&row[1..3], ["2", "finished"], "{st}");
    assert_eq!(&row[6..8], ["0", "0"], "nothing may be left under version 1: {st}");
    assert!(st.contains("acme\tdata\t1\t") && st.contains("acme\tdata\t2\t"), "{st}");
    // Exactly one copy per document, every one under version 2: no copy left behind by a crash.
    assert_eq!(stored_versions(d), vec![2; 4], "{st}");

    // Every step is in the tenant's audit chain: the start, each run, the finish.
    let actions = crate::support::sql_column(&db_url(d, db), "SELECT action FROM audit_events ORDER BY at, seq").await;
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(count("keys.rotate_tenant.start"), 1, "{actions:?}");
    assert_eq!(count("keys.rotate_tenant.work"), 6, "one per run that got past the start: {actions:?}");
    assert_eq!(count("keys.rotate_tenant.finish"), 1, "{actions:?}");

    // Starting again makes version 3 and finishes at once.
    let o = run(d, db, &rotate, None);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("version 3 made") && out.contains("re-encrypted 4 documents"), "{out}");
    stored_readable(&c, &stored, "after a second rotation").await;
    assert_eq!(stored_versions(d), vec![3; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_rotation_survives_kill_9_on_sqlite() {
    tenant_rotation_survives_kill_9(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_rotation_survives_kill_9_on_postgres() {
    let db = PgDatabase::create().await;
    tenant_rotation_survives_kill_9(Some(&db.url)).await;
    db.drop_database().await;
}

/// `--no-wait` only starts the rotation; a running server does the re-encryption in the
/// background, while it keeps serving.
async fn server_rotates_in_background(db: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::support::create_acme(cmd(d, db), d);
    let mut server_cmd = cmd(d, db);
    server_cmd.env("PORTCULLIS_KEY_ROTATION_POLL_SECS", "1");
    let (_server, port) = crate::support::serve(server_cmd).await;
    let cert = std::fs::read(d.join("tls/cert.pem")).unwrap();
    let mut c = Client::new(&format!("https://127.0.0.1:{port}"), &cert);
    assert_eq!(c.login("acme", "o@acme.example", PASSWORD).await.status, StatusCode::OK);
    let stored = store_content(&c).await;

    let o = run(d, db, &["keys", "rotate-tenant", "--tenant", "acme", "--no-wait"], None);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success() && out.contains("in the background"), "{out}");
    let mut finished = false;
    for _ in 0..150 {
        stored_readable(&c, &stored, "while the server rotates").await;
        if rotation_row(&status(d, db))[2] == "finished" {
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(finished, "the server did not finish the rotation: {}", status(d, db));
    stored_readable(&c, &stored, "after the background rotation").await;
    assert_eq!(stored_versions(d), vec![2; 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rotates_in_background_on_sqlite() {
    server_rotates_in_background(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rotates_in_background_on_postgres() {
    let db = PgDatabase::create().await;
    server_rotates_in_background(Some(&db.url)).await;
    db.drop_database().await;
}

/// A damaged document cannot be re-encrypted: the rotation says which, re-encrypts the rest,
/// stays open, and the damaged one still fails its integrity check rather than serving garbage.
async fn damaged_document_keeps_rotation_open(db: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::support::create_acme(cmd(d, db), d);
    let (_server, c) = serve(d, db).await;
    let stored = store_content(&c).await;
    let (damaged, _) = &stored.docs[2];
    let tenants = d.join("documents/tenants");
    let tenant = std::fs::read_dir(&tenants).unwrap().next().unwrap().unwrap().path();
    let path = tenant.join("documents").join(damaged);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1_000] ^= 1;
    std::fs::write(&path, bytes).unwrap();

    let o = run(d, db, &["keys", "rotate-tenant", "--tenant", "acme"], None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "a rotation with a damaged document reported success: {err}");
    assert!(err.contains(&format!("could not re-encrypt document {damaged}")), "{err}");
    assert!(err.contains("the rotation stays open"), "{err}");
    let row = rotation_row(&status(d, db));
    assert_eq!((row[2].as_str(), row[6].as_str(), row[7].as_str()), ("open", "1", "0"), "{row:?}");
    let mut versions = stored_versions(d);
    versions.sort();
    assert_eq!(versions, vec![1, 2, 2], "the undamaged documents are re-encrypted, the damaged one left alone");

    for (id, body) in &stored.docs {
        let got = c.get(&format!("/api/v1/documents/{id}/content")).await;
        if id == damaged {
            assert_eq!(got.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", got.text());
            assert_eq!(got.error_code(), "integrity_error");
        } else {
            assert_eq!(&got.body, body);
        }
    }
    let actions = crate::support::sql_column(&db_url(d, db), "SELECT action FROM audit_events").await;
    assert!(actions.iter().any(|a| a == "keys.rotate_tenant.document_failed"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_document_keeps_rotation_open_on_sqlite() {
    damaged_document_keeps_rotation_open(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_document_keeps_rotation_open_on_postgres() {
    let db = PgDatabase::create().await;
    damaged_document_keeps_rotation_open(Some(&db.url)).await;
    db.drop_database().await;
}
