//! Master-key rotation, interrupted with SIGKILL at every step and resumed: every document and
//! field still decrypts after each crash, and re-running finishes the rotation.

use crate::support::{KillOnDrop, portcullis};
use portcullis_testkit::{Client, PASSWORD, PgDatabase};
use reqwest::StatusCode;
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

fn cmd(dir: &Path, db: Option<&str>) -> Command {
    let mut c = portcullis(dir);
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

async fn serve(dir: &Path, db: Option<&str>) -> (KillOnDrop, Client) {
    let c = cmd(dir, db);
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

    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
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
