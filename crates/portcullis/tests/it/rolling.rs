//! A rolling restart of two `portcullis serve` processes sharing one PostgreSQL database, under
//! a steady stream of writes sent the way a load balancer sends them: to a node whose `/readyz`
//! answered 200 at its last check. Each node in turn gets SIGTERM, drains, stops and starts
//! again; not one write fails, and every acknowledged write is in the database afterwards.
//! (With `drain_secs = 0` the same run loses the writes sent between a node's exit and the next
//! health check: the drain is what this shows.)

use crate::support::{KillOnDrop, create_acme, portcullis, serve};
use portcullis_testkit::{Client, PASSWORD, PgDatabase};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most this many writes, and at most this long, whatever happens.
const MAX_WRITES: usize = 2_000;
const MAX_RUN: Duration = Duration::from_secs(90);

/// The load balancer's view of one node: where it is, and whether its last check said ready.
#[derive(Clone)]
struct Backend {
    client: Client,
    ready: bool,
}

fn node(dir: &Path, shared: &Path, db: &str) -> Command {
    let mut cmd = portcullis(dir);
    cmd.env("PORTCULLIS_DATABASE_URL", db)
        .env("PORTCULLIS_MASTER_KEY_FILE", shared.join("master.key"))
        .env("PORTCULLIS_AUDIT_SIGNING_KEY_FILE", shared.join("audit-signing.key"))
        .env("PORTCULLIS_DRAIN_SECS", "3")
        // One client sends all the load: the per-source limits would refuse it by design.
        .env("PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE", "0")
        .env("PORTCULLIS_RATE_LIMIT_ACCOUNT_PER_MINUTE", "0")
        .env("PORTCULLIS_RATE_LIMIT_TENANT_PER_MINUTE", "0")
        .stderr(Stdio::null());
    cmd
}

/// Start a node and a client for it that uses `token`.
async fn start(dir: &Path, shared: &Path, db: &str, token: &str) -> (KillOnDrop, Client) {
    let (child, port) = serve(node(dir, shared, db)).await;
    let cert = std::fs::read(dir.join("tls/cert.pem")).unwrap();
    (child, Client::new(&format!("https://127.0.0.1:{port}"), &cert).with_bearer(token))
}

/// SIGTERM, then wait (bounded) for a clean exit.
async fn stop(mut child: KillOnDrop) {
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    for _ in 0..200 {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "the node exited with {status}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node did not exit within 20 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_two_nodes_loses_no_request() {
    let db = PgDatabase::create().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shared = a_dir.path();
    create_acme(node(shared, shared, &db.url), shared);

    // A token for the writes, made through node A's API.
    let (a, port) = serve(node(shared, shared, &db.url)).await;
    let mut owner =
        Client::new(&format!("https://127.0.0.1:{port}"), &std::fs::read(shared.join("tls/cert.pem")).unwrap());
    assert_eq!(owner.login("acme", "o@acme.example", PASSWORD).await.status, StatusCode::OK);
    let t = owner.post("/api/v1/tokens", json!({"name": "load", "scopes": ["read", "write"]})).await;
    let token = t.json()["token"].as_str().unwrap().to_string();
    let a_client = owner.with_bearer(&token);
    let (b, b_client) = start(b_dir.path(), shared, &db.url, &token).await;

    let pool = Arc::new(Mutex::new(vec![
        Backend { client: a_client, ready: true },
        Backend { client: b_client, ready: true },
    ]));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Health checks every 200 ms, as a load balancer makes them.
    let checker = {
        let (pool, done) = (pool.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let nodes: Vec<Client> = pool.lock().unwrap().iter().map(|b| b.client.clone()).collect();
                for (i, c) in nodes.iter().enumerate() {
                    // A node that is gone refuses the connection: not ready, like one answering 503.
                    let check = c.request(reqwest::Method::GET, "/readyz").timeout(Duration::from_secs(1)).send();
                    let ready = check.await.is_ok_and(|r| r.status() == StatusCode::OK);
                    pool.lock().unwrap()[i].ready = ready;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // The writes: round robin over the nodes the last checks found ready.
    let writer = {
        let (pool, done) = (pool.clone(), done.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut acknowledged = Vec::new();
            let mut failed = Vec::new();
            for i in 0..MAX_WRITES {
                if done.load(std::sync::atomic::Ordering::SeqCst) || started.elapsed() > MAX_RUN {
                    break;
                }
                let target = {
                    let nodes = pool.lock().unwrap();
                    let ready: Vec<&Backend> = nodes.iter().filter(|b| b.ready).collect();
                    ready.get(i % ready.len().max(1)).map(|b| b.client.clone())
                };
                let Some(c) = target else {
                    failed.push(format!("write {i}: no node was ready"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let reference = format!("ROLL-{i}");
                let sent = c
                    .request(reqwest::Method::POST, "/api/v1/matters")
                    .json(&json!({"reference": reference, "title": "Rolling"}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::CREATED => acknowledged.push(reference),
                    Ok(r) => failed.push(format!("write {i}: {}", r.status())),
                    Err(e) => failed.push(format!("write {i}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (acknowledged, failed)
        })
    };

    // Restart A, then B, each after some load.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop(a).await;
    let (a, a_client) = start(shared, shared, &db.url, &token).await;
    pool.lock().unwrap()[0] = Backend { client: a_client, ready: false };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop(b).await;
    let (b, b_client) = start(b_dir.path(), shared, &db.url, &token).await;
    pool.lock().unwrap()[1] = Backend { client: b_client, ready: false };
    tokio::time::sleep(Duration::from_secs(1)).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acknowledged, failed) = writer.await.unwrap();
    checker.await.unwrap();

    assert!(failed.is_empty(), "{} of {} writes failed: {failed:#?}", failed.len(), acknowledged.len() + failed.len());
    assert!(acknowledged.len() > 50, "too little load to show anything: {}", acknowledged.len());
    let stored = crate::support::sql_column(&db.url, "SELECT id FROM matters").await;
    assert_eq!(stored.len(), acknowledged.len(), "every acknowledged write is stored, and nothing else");
    drop((a, b));
    db.drop_database().await;
}
