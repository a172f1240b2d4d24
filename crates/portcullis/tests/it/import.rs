//! Importing a firm's export archive into a new tenant with `portcullis tenant import`: the
//! matters, documents (byte for byte), messages, users and the audit chain come back under new
//! ids; each user gets a one-time set-password link; the imported history is part of the new
//! firm's chain, which verifies. Refused archives (another identity, cut short, altered, a
//! taken name, a loose identity file, a document that does not match its listing, an
//! executable inside) leave no tenant and no stored object behind.

use crate::backups::{AgeKey, age_key, documents, ok, refused};
use crate::erasure::{owner_admin_staff, server, signed_in, some_content};
use crate::export::exported;
use crate::subscriptions::cli;
use crate::support::sql_column;
use portcullis_core::archive::{self, ArchiveWriter};
use portcullis_core::service::EXPORT_LABEL;
use portcullis_testkit::{Client, Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

fn import(srv: &TestServer, archive: &Path, key: &AgeKey, name: &str) -> Output {
    let (archive, identity) = (archive.to_str().unwrap(), key.file.to_str().unwrap());
    cli(srv).args(["tenant", "import", archive, "--identity", identity, "--name", name]).output().unwrap()
}

/// Every file under the server's documents directory.
fn stored_objects(srv: &TestServer) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![srv.dir.path().join("documents")];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

async fn tenant_names(srv: &TestServer) -> Vec<String> {
    sql_column(&srv.db_url(), "SELECT name FROM tenants ORDER BY name").await
}

/// Use an imported user's set-password link from the import's output, then sign in.
async fn claim(srv: &TestServer, out: &str, email: &str) -> Client {
    let line = out.lines().find(|l| l.starts_with(&format!("{email}\t"))).unwrap_or_else(|| panic!("{email} in {out}"));
    let path = &line[line.find("/invite/").unwrap()..];
    let mut c = srv.client();
    let set = Client::send(c.http.post(format!("{}{path}", srv.base)).form(&[("password", PASSWORD)])).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let r = c.login("acme-copy", email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    c
}

/// The matters a user sees, as (reference, title, restricted), with their messages.
async fn matters(c: &Client) -> BTreeSet<(String, String, bool, Vec<String>)> {
    let mut out = BTreeSet::new();
    for m in c.get("/api/v1/matters").await.json()["items"].as_array().unwrap() {
        let id = m["id"].as_str().unwrap();
        let r = c.get(&format!("/api/v1/matters/{id}/messages")).await;
        let bodies =
            r.json()["items"].as_array().unwrap().iter().map(|x| x["body"].as_str().unwrap().to_string()).collect();
        out.insert((
            m["reference"].as_str().unwrap().to_string(),
            m["title"].as_str().unwrap().to_string(),
            m["restricted"].as_bool().unwrap_or(false),
            bodies,
        ));
    }
    out
}

/// A hand-made export archive of a one-owner firm with one matter and one document whose
/// bytes are `content`, listed in `documents.jsonl` with SHA-256 `listed_sha256`.
fn crafted(recipient: &str, content: &[u8], listed_sha256: &str) -> Vec<u8> {
    let recipient: age::x25519::Recipient = recipient.parse().unwrap();
    let mut w = ArchiveWriter::new(&recipient, EXPORT_LABEL, time::OffsetDateTime::UNIX_EPOCH).unwrap();
    let (t, u, m, d) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let at = "2026-01-02 03:04:05";
    let lines = [
        ("tenant.json", json!({"id": t.to_string(), "name": "made", "display_name": "Made", "created_at": at})),
        (
            "users.jsonl",
            json!({"id": u.to_string(), "email": "o@made.example", "display_name": "O", "role": "owner", "status": "active", "created_at": at}),
        ),
        (
            "matters.jsonl",
            json!({"id": m.to_string(), "reference": "M-1", "title": "T", "created_by": u.to_string(), "created_at": at, "restricted": false, "members": []}),
        ),
        (
            "documents.jsonl",
            json!({"id": d.to_string(), "matter_id": m.to_string(), "name": "a.pdf", "size": content.len(), "sha256": listed_sha256, "uploaded_by": u.to_string(), "created_at": at}),
        ),
    ];
    let mut out = w.take_output();
    for (name, line) in lines {
        w.add(name, format!("{line}\n").as_bytes()).unwrap();
    }
    w.add(&format!("documents/{d}"), content).unwrap();
    w.add("messages.jsonl", b"").unwrap();
    w.add("audit.jsonl", b"").unwrap();
    out.extend(w.take_output());
    let about = json!({"kind": EXPORT_LABEL, "tenant_id": t.to_string(), "export_id": "made"});
    let (_, tail, _) = w.finish(about, at.into()).unwrap();
    out.extend(tail);
    out
}

fn sha256(b: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref())
}

async fn import_an_export(db: Db) {
    let srv = server(db).await;
    let (tenant_id, owner) = srv.tenant("acme").await;
    srv.user(tenant_id, "admin@acme.example", "admin").await;
    srv.user(tenant_id, "staff@acme.example", "staff").await;
    let (o, _, a, _) = owner_admin_staff(&srv, &owner).await;
    some_content(&o).await;
    // A restricted matter of the admin's with a document of many pieces, a message and a client.
    let r = a.post("/api/v1/matters", json!({"reference": "W-1", "title": "Walled", "restricted": true})).await;
    let walled = r.json()["id"].as_str().unwrap().to_string();
    let big: Vec<u8> = (0..40_000u32).flat_map(|i| format!("line {i} of the walled notes\n").into_bytes()).collect();
    assert_eq!(a.upload(&walled, "notes.txt", big.clone()).await.status, StatusCode::CREATED);
    assert_eq!(
        a.post(&format!("/api/v1/matters/{walled}/messages"), json!({"body": "behind the wall"})).await.status,
        StatusCode::CREATED
    );
    let r = a
        .post(&format!("/api/v1/matters/{walled}/members"), json!({"email": "client@home.example", "role": "client"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let (owner_sees, admin_sees) = (matters(&o).await, matters(&a).await);
    let (owner_docs, admin_docs) = (documents(&o).await, documents(&a).await);
    assert_eq!((owner_sees.len(), admin_sees.len(), admin_docs.len()), (1, 2, 2), "{admin_sees:?}");

    let dir = srv.dir.path();
    let key = age_key(dir, "firm.key");
    let bytes = exported(&srv, &o, &a, &key.recipient).await;
    let file = dir.join("export.age");
    std::fs::write(&file, &bytes).unwrap();
    // What the archive holds of the audit chain, to compare with what is replayed.
    let identity: age::x25519::Identity =
        std::fs::read_to_string(&key.file).unwrap().lines().nth(1).unwrap().parse().unwrap();
    let mut exported_events = 0;
    archive::read(&bytes[..], &identity, EXPORT_LABEL, |name, r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        if name == "audit.jsonl" {
            exported_events = v.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        }
        Ok(())
    })
    .unwrap();
    assert!(exported_events > 10, "{exported_events}");

    // Refusals change nothing.
    let objects = stored_objects(&srv);
    let names = tenant_names(&srv).await;
    let check_nothing_left = |what: &str| {
        assert_eq!(stored_objects(&srv), objects, "{what}: no object left behind");
    };
    let other = age_key(dir, "other.key");
    refused(&import(&srv, &file, &other, "acme-copy"), "not encrypted to this identity");
    check_nothing_left("another identity");
    let cut = dir.join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    refused(&import(&srv, &cut, &key, "acme-copy"), "damaged or truncated");
    check_nothing_left("cut short");
    let mut flipped = bytes.clone();
    let at = flipped.len() * 2 / 3;
    flipped[at] ^= 0x20;
    let altered = dir.join("altered.age");
    std::fs::write(&altered, &flipped).unwrap();
    refused(&import(&srv, &altered, &key, "acme-copy"), "damaged");
    check_nothing_left("altered");
    refused(&import(&srv, &file, &key, "acme"), "already exists");
    refused(&import(&srv, &file, &key, "Not A Name"), "Invalid");
    let made = dir.join("made.age");
    std::fs::write(&made, crafted(&key.recipient, b"%PDF-1.4 made", &sha256(b"something else"))).unwrap();
    refused(&import(&srv, &made, &key, "acme-copy"), "does not match its size and SHA-256");
    check_nothing_left("a document unlike its listing");
    let exe = [b"MZ".as_slice(), &[0u8; 200]].concat();
    std::fs::write(&made, crafted(&key.recipient, &exe, &sha256(&exe))).unwrap();
    refused(&import(&srv, &made, &key, "acme-copy"), "is Windows executable (PE/MZ), which is not accepted");
    check_nothing_left("an executable");
    std::fs::set_permissions(&key.file, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(&import(&srv, &file, &key, "acme-copy"), "readable by other users");
    std::fs::set_permissions(&key.file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(tenant_names(&srv).await, names, "no tenant was made by a refused import");

    // The import.
    let out = ok(&import(&srv, &file, &key, "acme-copy"));
    assert!(out.contains("users: 4, matters: 2, documents: 2"), "{out}");
    assert!(out.contains(&format!("audit events replayed: {exported_events}")), "{out}");
    let new_id = out.split_whitespace().nth(3).unwrap().to_string();
    assert_ne!(new_id, tenant_id.to_string());
    for email in ["client@home.example", "staff@acme.example"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("{email}\t"))), "a link for {email}: {out}");
    }
    let (o2, a2) = (claim(&srv, &out, &owner).await, claim(&srv, &out, "admin@acme.example").await);
    assert_eq!(matters(&o2).await, owner_sees, "the owner sees what they saw");
    assert_eq!(matters(&a2).await, admin_sees, "the admin sees what they saw, the walled matter too");
    assert_eq!(documents(&o2).await, owner_docs);
    assert_eq!(documents(&a2).await, admin_docs, "every document byte for byte");
    // Imported ids are new: the original's document ids name nothing in the copy.
    for d in o.get("/api/v1/matters").await.json()["items"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        assert_eq!(o2.get(&format!("/api/v1/matters/{id}")).await.status, StatusCode::NOT_FOUND);
    }
    // The original firm is untouched, and the copy's audit history holds the old chain.
    assert_eq!(documents(&signed_in(&srv, "admin@acme.example").await).await, admin_docs);
    let replayed =
        sql_column(&srv.db_url(), "SELECT chain FROM audit_events WHERE action = 'import.audit_event'").await;
    assert_eq!(replayed.iter().filter(|c| **c == new_id).count(), exported_events);
    for action in ["tenant.import", "import.finished"] {
        let r = o2.get(&format!("/api/v1/audit?action={action}")).await;
        assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(1), "{action}: {}", r.text());
    }
    let r = o2.get("/api/v1/audit?action=import.audit_event&limit=500").await;
    let first = r.json()["items"].as_array().unwrap().iter().find(|e| e["target"] == "imported-event:1").cloned();
    assert_eq!(first.unwrap()["detail"]["original"]["action"], "tenant.create", "the original chain, whole");
    let verify = cli(&srv).args(["audit", "verify", "--tenant", "acme-copy"]).output().unwrap();
    ok(&verify);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_an_export_sqlite() {
    import_an_export(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_an_export_postgres() {
    import_an_export(Db::Postgres).await;
}
