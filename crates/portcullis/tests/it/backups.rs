//! Backups against a live server: a backup taken while a client keeps uploading restores into
//! an empty data directory and database (same engine and the other one) with the identical
//! document set and a passing `audit verify`; damaged, truncated and foreign backups are refused
//! by `verify` and `restore` with nothing changed; an erasure applied to the target keeps the
//! tenant out of every restore; the scheduler keeps exactly the configured GFS set.

use crate::both;
use crate::support::{portcullis, sql_column};
use portcullis_testkit::{Client, Db, PASSWORD, PgDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// An age key pair for a test: the identity file (0600) and the recipient.
pub(crate) struct AgeKey {
    pub(crate) file: PathBuf,
    pub(crate) recipient: String,
}

pub(crate) fn age_key(dir: &Path, name: &str) -> AgeKey {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let file = dir.join(name);
    std::fs::write(&file, format!("# test identity\n{}\n", id.to_string().expose_secret())).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    AgeKey { file, recipient: id.to_public().to_string() }
}

/// `portcullis` on a data directory and database, backing up to `target` for `recipient`.
fn cli(data: &Path, db: Option<&str>, target: &Path, recipient: &str, args: &[&str]) -> Output {
    let mut c = portcullis(data);
    if let Some(url) = db {
        c.env("PORTCULLIS_DATABASE_URL", url);
    }
    c.env("PORTCULLIS_BACKUP_TARGET", target).env("PORTCULLIS_BACKUP_RECIPIENT", recipient);
    c.args(args).output().unwrap()
}

pub(crate) fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn refused(o: &Output, says: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(says), "expected a refusal saying {says:?}; got: {err}");
}

/// The id of the backup `backup create` printed.
fn made_id(stdout: &str) -> String {
    stdout.split_whitespace().nth(1).unwrap().to_string()
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A matter of `owner`'s firm and its documents: name -> bytes.
pub(crate) async fn documents(c: &Client) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for m in c.get("/api/v1/matters").await.json()["items"].as_array().unwrap() {
        let id = m["id"].as_str().unwrap();
        for d in c.get(&format!("/api/v1/matters/{id}/documents")).await.json()["items"].as_array().unwrap() {
            let got = c.get(&format!("/api/v1/documents/{}/content", d["id"].as_str().unwrap())).await;
            assert_eq!(got.status, StatusCode::OK);
            out.insert(d["name"].as_str().unwrap().to_string(), got.body.to_vec());
        }
    }
    out
}

/// A restore destination: an empty data directory holding only the master key, and an empty
/// database on `db`.
struct Destination {
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

impl Destination {
    async fn new(db: Db, master_key_from: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(master_key_from.join("master.key"), dir.path().join("master.key")).unwrap();
        std::fs::set_permissions(dir.path().join("master.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let pg = if db == Db::Postgres { Some(PgDatabase::create().await) } else { None };
        Self { dir, pg }
    }
    fn url(&self) -> Option<&str> {
        self.pg.as_ref().map(|p| p.url.as_str())
    }
    fn db_url(&self) -> String {
        self.url()
            .map(String::from)
            .unwrap_or_else(|| format!("sqlite://{}", self.dir.path().join("portcullis.db").display()))
    }
    async fn drop_db(self) {
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

fn other(db: Db) -> Db {
    if db == Db::Sqlite { Db::Postgres } else { Db::Sqlite }
}

/// Restore `id` into `dest`; check that the restore is audited, that `audit verify` passes,
/// and that restoring again over it is refused; then serve it and return what acme's owner
/// downloads.
async fn restore_and_serve(
    srv: &TestServer,
    dest: &Destination,
    target: &Path,
    key: &AgeKey,
    id: &str,
) -> BTreeMap<String, Vec<u8>> {
    let public = srv.dir.path().join("audit-signing.pub");
    let pk = public.to_str().unwrap();
    let (d, url) = (dest.dir.path(), dest.url());
    let args = ["backup", "restore", id, "--identity", key.file.to_str().unwrap(), "--public-key", pk];
    let out = ok(&cli(d, url, target, &key.recipient, &args));
    assert!(out.contains("restored"), "{out}");
    let actions = sql_column(&dest.db_url(), "SELECT action FROM audit_events WHERE chain = ''").await;
    assert!(actions.iter().any(|a| a == "backup.restore"), "{actions:?}");
    let verified = ok(&cli(d, url, target, &key.recipient, &["audit", "verify", "--public-key", pk]));
    assert!(verified.contains("audit log verified"), "{verified}");
    refused(&cli(d, url, target, &key.recipient, &args), "not empty");
    // --force drops the tables and moves the documents aside, then restores the same state.
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = ok(&cli(d, url, target, &key.recipient, &forced));
    assert!(out.contains("moved to"), "{out}");
    let aside = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("documents.before-restore-"));
    assert_eq!(aside.count(), 1);
    ok(&cli(d, url, target, &key.recipient, &["audit", "verify", "--public-key", pk]));
    let mut cmd = portcullis(d);
    if let Some(u) = url {
        cmd.env("PORTCULLIS_DATABASE_URL", u);
    }
    cmd.env("PORTCULLIS_BACKUP_ENABLED", "false");
    let (_server, port) = crate::support::serve(cmd).await;
    let cert = std::fs::read(d.join("tls/cert.pem")).unwrap();
    let mut c = Client::new(&format!("https://127.0.0.1:{port}"), &cert);
    assert_eq!(c.login("acme", "owner@acme.example", PASSWORD).await.status, StatusCode::OK);
    documents(&c).await
}

/// `firm`'s owner, signed in, and a new matter of theirs.
async fn owner_with_matter(srv: &TestServer, firm: &str, reference: &str) -> (Client, String) {
    let mut c = srv.client();
    assert_eq!(c.login(firm, &format!("owner@{firm}.example"), PASSWORD).await.status, StatusCode::OK);
    let m = c.post("/api/v1/matters", json!({"reference": reference, "title": "Backups"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (c, m)
}

both!(a_backup_taken_while_uploading_restores_identically, |srv| async move {
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "backup.key");
    let target = keys.path().join("target");
    srv.tenant("acme").await;
    let (c, m) = owner_with_matter(srv, "acme", "B-1").await;
    let body = |i: usize| format!("document {i} ").repeat(3000 + i).into_bytes();
    for i in 0..3 {
        assert_eq!(c.upload(&m, &format!("before-{i}.txt"), body(i)).await.status, StatusCode::CREATED);
    }
    // A client keeps uploading while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let uploader = {
        let (c, m, stop) = (c.clone(), m.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 200 {
                assert_eq!(c.upload(&m, &format!("during-{n}.txt"), body(100 + n)).await.status, StatusCode::CREATED);
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let url = srv.db_url();
    let data = srv.dir.path().to_path_buf();
    let (t, r) = (target.clone(), key.recipient.clone());
    let out = tokio::task::spawn_blocking(move || cli(&data, Some(&url), &t, &r, &["backup", "create"])).await.unwrap();
    let id = made_id(&ok(&out));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let uploaded = uploader.await.unwrap();
    assert!(uploaded > 0, "uploads went on while the backup ran");
    let all = documents(&c).await;

    // The backup holds a consistent subset: everything uploaded before it started, and each
    // document it holds byte for byte.
    let listed = ok(&cli(srv.dir.path(), Some(&srv.db_url()), &target, &key.recipient, &["backup", "list"]));
    assert!(listed.contains(&id) && listed.contains("manual"), "{listed}");
    let public = srv.dir.path().join("audit-signing.pub");
    let pk = public.to_str().unwrap();
    let v = ok(&cli(srv.dir.path(), None, &target, &key.recipient, &["backup", "verify", &id, "--public-key", pk]));
    assert!(v.contains("signature valid"), "{v}");
    let args = ["backup", "verify", &id, "--public-key", pk, "--identity", key.file.to_str().unwrap()];
    let v = ok(&cli(srv.dir.path(), None, &target, &key.recipient, &args));
    assert!(v.contains("all") && v.contains("entries match"), "{v}");

    let dest = Destination::new(srv.db, srv.dir.path()).await;
    let restored = restore_and_serve(srv, &dest, &target, &key, &id).await;
    dest.drop_db().await;
    for i in 0..3 {
        assert!(restored.contains_key(&format!("before-{i}.txt")), "{:?}", restored.keys());
    }
    for (name, bytes) in &restored {
        assert_eq!(all.get(name), Some(bytes), "{name} restored byte for byte");
    }
    // The same backup restores into the other engine, with the same documents.
    let cross = Destination::new(other(srv.db), srv.dir.path()).await;
    assert_eq!(restore_and_serve(srv, &cross, &target, &key, &id).await, restored);
    cross.drop_db().await;
    // Both actions are on the platform chain.
    let actions = sql_column(&srv.db_url(), "SELECT action FROM audit_events WHERE chain = ''").await;
    assert!(actions.iter().any(|a| a == "backup.create"), "{actions:?}");
});

both!(damaged_truncated_and_foreign_backups_are_refused, |srv| async move {
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "backup.key");
    let stranger = age_key(keys.path(), "other.key");
    let target = keys.path().join("target");
    srv.tenant("acme").await;
    let (c, m) = owner_with_matter(srv, "acme", "B-2").await;
    assert_eq!(c.upload(&m, "a.txt", b"some text to keep".repeat(5000)).await.status, StatusCode::CREATED);
    let (data, url) = (srv.dir.path(), srv.db_url());
    let id = made_id(&ok(&cli(data, Some(&url), &target, &key.recipient, &["backup", "create"])));
    let public = data.join("audit-signing.pub");
    let pk = public.to_str().unwrap();
    let ident = key.file.to_str().unwrap();
    let verify = |args: &[&str]| {
        let mut all = vec!["backup", "verify", id.as_str(), "--public-key", pk];
        all.extend_from_slice(args);
        cli(data, None, &target, &key.recipient, &all)
    };
    ok(&verify(&["--identity", ident]));

    // A destination that must stay untouched by every refused restore.
    let dest = Destination::new(srv.db, data).await;
    let before = files(dest.dir.path());
    let restore = |id: &str, identity: &str, public: &str| {
        let args = ["backup", "restore", id, "--identity", identity, "--public-key", public];
        cli(dest.dir.path(), dest.url(), &target, &key.recipient, &args)
    };
    let unchanged = |what: &str| assert_eq!(files(dest.dir.path()), before, "{what}: the destination changed");

    // Another installation's signing key.
    let other_pub = keys.path().join("other.pub");
    std::fs::write(&other_pub, format!("{}\n", "ab".repeat(32))).unwrap();
    refused(&verify_with(data, &target, &key, &id, other_pub.to_str().unwrap(), None), "signature does not verify");
    refused(&restore(&id, ident, other_pub.to_str().unwrap()), "signature does not verify");
    unchanged("foreign signing key");

    // Another recipient's identity.
    refused(&verify(&["--identity", stranger.file.to_str().unwrap()]), "not encrypted to this identity");
    refused(&restore(&id, stranger.file.to_str().unwrap(), pk), "not encrypted to this identity");
    unchanged("foreign identity");

    // An altered manifest.
    let manifest = target.join(format!("backups/{id}.manifest.json"));
    let original = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, String::from_utf8(original.clone()).unwrap().replace("\"manual\"", "\"monthly\""))
        .unwrap();
    refused(&verify(&[]), "signature does not verify");
    refused(&restore(&id, ident, pk), "signature does not verify");
    unchanged("altered manifest");
    std::fs::write(&manifest, &original).unwrap();

    // A corrupted archive (one bit flipped) and a truncated one.
    let archive = target.join(format!("backups/{id}.age"));
    let good = std::fs::read(&archive).unwrap();
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x10;
    std::fs::write(&archive, &flipped).unwrap();
    refused(&verify(&[]), "corrupted or truncated");
    refused(&verify(&["--identity", ident]), "corrupted or truncated");
    refused(&restore(&id, ident, pk), "corrupted or truncated");
    unchanged("corrupted archive");
    std::fs::write(&archive, &good[..good.len() - 700]).unwrap();
    refused(&verify(&[]), "corrupted or truncated");
    refused(&restore(&id, ident, pk), "corrupted or truncated");
    unchanged("truncated archive");
    std::fs::write(&archive, &good).unwrap();

    // No recipient configured; an identity file others can read; a destination without the
    // master key; an erasure for something that is not a tenant id.
    let mut no_recipient = portcullis(data);
    no_recipient.env("PORTCULLIS_DATABASE_URL", &url).env("PORTCULLIS_BACKUP_TARGET", &target);
    refused(&no_recipient.args(["backup", "create"]).output().unwrap(), "no backup recipient");
    let loose = keys.path().join("loose.key");
    std::fs::copy(&key.file, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(&verify(&["--identity", loose.to_str().unwrap()]), "readable by other users");
    let bare = tempfile::tempdir().unwrap();
    let args = ["backup", "restore", &id, "--identity", ident, "--public-key", pk];
    refused(&cli(bare.path(), dest.url(), &target, &key.recipient, &args), "master key");
    assert!(files(bare.path()).is_empty(), "nothing written without the master key");
    let args = ["backup", "apply-erasure", "--tenant", "acme", "--certificate", pk];
    refused(&cli(data, None, &target, &key.recipient, &args), "not a tenant id");

    // A backup that does not exist, and restoring over the live, non-empty installation.
    refused(&restore("20000101T000000Z-manual-00000000", ident, pk), "no backup");
    let live = cli(
        data,
        Some(&url),
        &target,
        &key.recipient,
        &["backup", "restore", &id, "--identity", ident, "--public-key", pk],
    );
    refused(&live, "not empty");
    dest.drop_db().await;
});

fn verify_with(data: &Path, target: &Path, key: &AgeKey, id: &str, public: &str, identity: Option<&str>) -> Output {
    let mut args = vec!["backup", "verify", id, "--public-key", public];
    if let Some(i) = identity {
        args.extend(["--identity", i]);
    }
    cli(data, None, target, &key.recipient, &args)
}

both!(an_erased_tenant_stays_out_of_every_restore, |srv| async move {
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "backup.key");
    let target = keys.path().join("target");
    srv.tenant("acme").await;
    let (beta, _) = srv.tenant("beta").await;
    let mut expected = BTreeMap::new();
    for (firm, name) in [("acme", "acme.txt"), ("beta", "beta.txt")] {
        let (c, m) = owner_with_matter(srv, firm, "E-1").await;
        let bytes = format!("{firm} content ").repeat(1000).into_bytes();
        assert_eq!(c.upload(&m, name, bytes.clone()).await.status, StatusCode::CREATED);
        if firm == "acme" {
            expected.insert(name.to_string(), bytes);
        }
    }
    let (data, url) = (srv.dir.path(), srv.db_url());
    let id = made_id(&ok(&cli(data, Some(&url), &target, &key.recipient, &["backup", "create"])));
    assert!(target.join(format!("keyring/{beta}.age")).exists());

    // A hand-written erasure record (the signed certificate comes from the erasure work).
    let cert = keys.path().join("certificate.json");
    std::fs::write(&cert, json!({"tenant": beta.to_string(), "erased_at": "2026-11-25T00:00:00Z"}).to_string())
        .unwrap();
    let args = ["backup", "apply-erasure", "--tenant", &beta.to_string(), "--certificate", cert.to_str().unwrap()];
    ok(&cli(data, None, &target, &key.recipient, &args));
    assert!(!target.join(format!("keyring/{beta}.age")).exists(), "the erased tenant's keyring is gone");
    assert!(target.join(format!("erasures/{beta}.json")).exists());
    // Applying it again is harmless; a later backup writes no keyring for it.
    ok(&cli(data, None, &target, &key.recipient, &args));
    ok(&cli(data, Some(&url), &target, &key.recipient, &["backup", "create"]));
    assert!(!target.join(format!("keyring/{beta}.age")).exists(), "no new keyring for an erased tenant");

    // Restoring the older backup shows nothing of the erased tenant.
    let pk = data.join("audit-signing.pub");
    let v = ok(&verify_with(data, &target, &key, &id, pk.to_str().unwrap(), Some(key.file.to_str().unwrap())));
    assert!(v.contains(&beta.to_string()), "verify names the erased tenant it leaves out: {v}");
    let dest = Destination::new(srv.db, data).await;
    assert_eq!(restore_and_serve(srv, &dest, &target, &key, &id).await, expected);
    let tenants = sql_column(&dest.db_url(), "SELECT name FROM tenants").await;
    assert_eq!(tenants, ["acme"]);
    for q in [
        "SELECT id FROM users WHERE tenant_id NOT IN (SELECT id FROM tenants)",
        "SELECT tenant_id FROM tenant_keys WHERE tenant_id NOT IN (SELECT id FROM tenants)",
        "SELECT chain FROM audit_events WHERE chain <> '' AND chain NOT IN (SELECT id FROM tenants)",
    ] {
        assert!(sql_column(&dest.db_url(), q).await.is_empty(), "{q}");
    }
    let stored = files(&dest.dir.path().join("documents"));
    assert!(stored.keys().all(|p| !p.to_string_lossy().contains(&beta.to_string())), "no blob of the erased tenant");
    assert!(!stored.is_empty());
    dest.drop_db().await;
});

/// A server whose scheduler backs up to a fresh target for a fresh age key, looking every second
/// and due from midnight (so its first backup is made at once); `adjust` changes the rest.
async fn scheduled(
    db: Db,
    adjust: impl FnOnce(&mut portcullis::config::Config) + Send + 'static,
) -> (tempfile::TempDir, AgeKey, PathBuf, TestServer) {
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "backup.key");
    let target = keys.path().join("target");
    let (t, r) = (target.display().to_string(), key.recipient.clone());
    let srv = TestServer::start_with(db, move |cfg| {
        cfg.backup_target = Some(t);
        cfg.backup_recipient = Some(r);
        cfg.backup_poll_secs = 1;
        cfg.backup_at = "00:00".into();
        adjust(cfg);
    })
    .await;
    (keys, key, target, srv)
}

/// The whole path of an erasure into the backups: a backup holds two firms; one firm's owner
/// asks for erasure and a second admin approves; the lifecycle job destroys the firm; the
/// server's backup loop carries the signed certificate to the target and deletes the firm's
/// keyring, and marks the ledger; restoring the older backup then shows nothing of that firm,
/// while the other firm comes back whole.
async fn erasure_reaches_every_backup(db: Db) {
    let (_keys, key, target, srv) = scheduled(db, |cfg| cfg.lifecycle_poll_secs = 3600).await;
    // The scheduler makes today's backup at once; wait for it so it is out of the way.
    crate::support::wait_until("the first scheduled backup", || async { target.join("backups").exists() }).await;
    srv.tenant("acme").await;
    let (beta, _) = srv.tenant("beta").await;
    srv.user(beta, "admin@beta.example", "admin").await;
    let mut expected = BTreeMap::new();
    for (firm, name) in [("acme", "acme.txt"), ("beta", "beta.txt")] {
        let (c, m) = owner_with_matter(&srv, firm, "E-2").await;
        let bytes = format!("{firm} content ").repeat(1000).into_bytes();
        assert_eq!(c.upload(&m, name, bytes.clone()).await.status, StatusCode::CREATED);
        if firm == "acme" {
            expected.insert(name.to_string(), bytes);
        }
    }
    let (data, url) = (srv.dir.path(), srv.db_url());
    let made = "SELECT action FROM audit_events WHERE action = 'backup.create'";
    crate::support::wait_until("the scheduled backup to finish", || async { !sql_column(&url, made).await.is_empty() })
        .await;
    let older = made_id(&ok(&cli(data, Some(&url), &target, &key.recipient, &["backup", "create"])));
    assert!(target.join(format!("keyring/{beta}.age")).exists());

    // Beta's owner asks, a second admin approves, the lifecycle job destroys the firm.
    let (owner, _) = owner_with_matter(&srv, "beta", "E-3").await;
    let r = owner.post("/api/v1/tenant/erasure", json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let approval = r.json()["id"].as_str().unwrap().to_string();
    let mut admin = srv.client();
    assert_eq!(admin.login("beta", "admin@beta.example", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(admin.post(&format!("/api/v1/approvals/{approval}/approve"), json!({})).await.status, StatusCode::OK);
    let signer = portcullis::audit_key::load(&portcullis::config::Config {
        data: data.to_path_buf(),
        ..portcullis::config::Config::default()
    })
    .unwrap();
    let report = srv.portal().run_lifecycle(&signer, None).await.unwrap();
    assert_eq!(report.destroyed, 1, "{report:?}");

    // The server's backup loop carries it to the target within a poll.
    let keyring = target.join(format!("keyring/{beta}.age"));
    crate::support::wait_until("the erasure to reach the backup target", || async { !keyring.exists() }).await;
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join(format!("erasures/{beta}.json"))).unwrap()).unwrap();
    assert!(record.to_string().contains(&beta.to_string()), "{record}");
    let synced = sql_column(&url, "SELECT COALESCE(CAST(synced_to_backups_at AS TEXT), '') FROM tenant_erasures").await;
    assert!(synced.len() == 1 && !synced[0].is_empty(), "the ledger records the sync: {synced:?}");

    // Restoring the backup made before the erasure: only acme, whole.
    let dest = Destination::new(srv.db, data).await;
    assert_eq!(restore_and_serve(&srv, &dest, &target, &key, &older).await, expected);
    assert_eq!(sql_column(&dest.db_url(), "SELECT name FROM tenants").await, ["acme"]);
    let stored = files(&dest.dir.path().join("documents"));
    assert!(stored.keys().all(|p| !p.to_string_lossy().contains(&beta.to_string())), "no blob of the erased firm");
    let ledger = sql_column(&dest.db_url(), "SELECT notify_to FROM tenant_erasures").await;
    assert!(ledger.iter().all(|n| !n.contains('@')), "no address of the erased firm's owners: {ledger:?}");
    dest.drop_db().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_reaches_every_backup_sqlite() {
    erasure_reaches_every_backup(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_reaches_every_backup_postgres() {
    erasure_reaches_every_backup(Db::Postgres).await;
}

/// The scheduler, driven by the server's manual clock over 40 simulated days, keeps exactly the
/// configured daily, weekly and monthly backups, audits each run and prune, and raises the
/// `backup_failure` alert when a run fails.
async fn scheduler_keeps_the_configured_set(db: Db) {
    let (_keys, _key, target, srv) = scheduled(db, |cfg| {
        (cfg.backup_keep_daily, cfg.backup_keep_weekly, cfg.backup_keep_monthly) = (3, 2, 2);
    })
    .await;
    srv.tenant("acme").await;
    let manifests = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(target.join("backups"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.retain(|n| n.ends_with(".manifest.json"));
        v.sort();
        v
    };
    let newest = || manifests().into_iter().max();
    let mut last = None;
    for day in 0..40 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while newest() == last {
            assert!(std::time::Instant::now() < deadline, "no backup on simulated day {day}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        last = newest();
        srv.clock.advance(time::Duration::days(1));
    }
    // Let the last run's prune finish.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let kinds: Vec<String> = manifests().iter().map(|n| n.split('-').nth(1).unwrap().to_string()).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!((count("daily"), count("weekly"), count("monthly")), (3, 2, 2), "{kinds:?}");
    let actions = sql_column(&srv.db_url(), "SELECT action FROM audit_events WHERE chain = ''").await;
    assert!(actions.iter().filter(|a| *a == "backup.create").count() >= 40, "{actions:?}");
    assert!(actions.iter().any(|a| a == "backup.prune"));

    // A run that cannot write its target fails loudly: audited and alerted.
    std::fs::remove_dir_all(target.join("keyring")).unwrap();
    std::fs::write(target.join("keyring"), b"in the way").unwrap();
    srv.clock.advance(time::Duration::days(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let kinds = sql_column(&srv.db_url(), "SELECT kind FROM alerts").await;
        if kinds.iter().any(|k| k == "backup_failure") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no backup_failure alert: {kinds:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let failed = sql_column(&srv.db_url(), "SELECT action FROM audit_events WHERE action = 'backup.failed'").await;
    assert!(!failed.is_empty());
    let archives = std::fs::read_dir(target.join("backups"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".age"));
    assert_eq!(archives.count(), 7, "the failed run left no archive behind");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_keeps_the_configured_set_sqlite() {
    scheduler_keeps_the_configured_set(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_keeps_the_configured_set_postgres() {
    scheduler_keeps_the_configured_set(Db::Postgres).await;
}

// While a backup holds its lease, a tenant-key rotation keeps the copies it replaces (the
// backup's snapshot may name them); when the backup ends they are deleted.
both!(replaced_copies_outlive_a_running_backup, |srv| async move {
    use portcullis_core::service::BACKUP_LEASE;
    let (acme, _) = srv.tenant("acme").await;
    let (c, m) = owner_with_matter(srv, "acme", "H-1").await;
    let doc = c.upload(&m, "held.txt", b"held back ".repeat(2000)).await.json()["id"].as_str().unwrap().to_string();
    let dir = srv.dir.path().join("documents/tenants").join(acme.to_string()).join("documents");
    let copies = || -> Vec<String> {
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(copies(), std::slice::from_ref(&doc));
    let portal = srv.portal();
    assert!(portal.take_lease(BACKUP_LEASE, "test-backup", time::Duration::minutes(10)).await.unwrap());
    assert!(!portal.take_lease(BACKUP_LEASE, "another", time::Duration::minutes(10)).await.unwrap(), "one holder");
    let meta = Default::default();
    portal.start_tenant_rotation(acme, &meta).await.unwrap();
    let report = portal.run_tenant_rotation(acme, portcullis_core::audit::Actor::Cli, &meta, &|_| {}).await.unwrap();
    assert_eq!(report.documents, 1);
    assert_eq!(copies().len(), 2, "the replaced copy stays while the backup runs: {:?}", copies());
    assert_eq!(portal.purge_replaced_blobs().await.unwrap(), 0, "nothing is purged under the lease");
    portal.release_lease(BACKUP_LEASE, "test-backup").await.unwrap();
    assert_eq!(portal.purge_replaced_blobs().await.unwrap(), 1);
    assert_eq!(copies().len(), 1);
    assert_ne!(copies(), std::slice::from_ref(&doc), "the new copy is the one kept");
    let got = c.get(&format!("/api/v1/documents/{doc}/content")).await;
    assert_eq!(got.body, b"held back ".repeat(2000));
    // An expired lease is free for the next holder.
    assert!(portal.take_lease(BACKUP_LEASE, "a", time::Duration::seconds(1)).await.unwrap());
    srv.clock.advance(time::Duration::seconds(2));
    assert!(portal.take_lease(BACKUP_LEASE, "b", time::Duration::minutes(1)).await.unwrap());
});
