//! A database outage: the node's connection to PostgreSQL goes through a loopback relay the
//! test cuts and restores. While it is cut, requests fail cleanly (no half-done change) and
//! readiness is off; once it is back, the node serves again by itself, with what was stored
//! before the outage intact.

use portcullis_testkit::{Db, PASSWORD, PgDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::TcpListener;

/// A TCP relay on a loopback port to `upstream`, which the test can cut (every connection
/// closed, the port no longer listening) and restore on the same port.
struct Relay {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut r = Self { port, upstream, task: None };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                pipes.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
            // Dropping the set aborts every pipe.
        }));
    }

    /// Close the port and every connection through it (aborting the task drops them all).
    async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("the relay's port is free again");
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rides_out_a_database_outage() {
    let db = PgDatabase::create().await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let mut relay = Relay::start(upstream).await;
    url.set_port(Some(relay.port)).unwrap();
    let srv = TestServer::start_with(Db::Postgres, |cfg| cfg.database_url = Some(url.to_string().into())).await;
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    assert_eq!(c.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let before = c.post("/api/v1/matters", json!({"reference": "B-1", "title": "Before"})).await;
    assert_eq!(before.status, StatusCode::CREATED);

    relay.cut().await;
    let during = c.post("/api/v1/matters", json!({"reference": "D-1", "title": "During"})).await;
    assert_eq!(during.status, StatusCode::SERVICE_UNAVAILABLE, "{}", during.text());
    assert_eq!(during.headers["retry-after"], "5");
    assert!(!during.text().contains("postgres"), "no database detail leaks: {}", during.text());
    assert_eq!(c.get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);

    relay.restore().await;
    assert_eq!(c.get("/readyz").await.status, StatusCode::OK, "the pool connects again by itself");
    let list = c.get("/api/v1/matters").await;
    assert_eq!(list.status, StatusCode::OK, "the session survived: it is in the database");
    let refs: Vec<String> =
        list.json()["items"].as_array().unwrap().iter().map(|m| m["reference"].as_str().unwrap().to_string()).collect();
    assert_eq!(refs, ["B-1"], "what was stored is there; the refused write left nothing");
    let after = c.post("/api/v1/matters", json!({"reference": "A-1", "title": "After"})).await;
    assert_eq!(after.status, StatusCode::CREATED);
    srv.stop().await;
    db.drop_database().await;
}

/// `database_url` naming two hosts (here two relays to the same server, standing in for a
/// primary and the standby a failover manager promotes): the node starts on the one that
/// answers as a primary, and when that one goes away and the other answers, it follows by
/// itself within seconds, with its sessions and data (one database behind both) intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follows_the_primary_among_several_hosts() {
    let db = PgDatabase::create().await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let (mut first, second) = (Relay::start(upstream.clone()).await, Relay::start(upstream).await);
    first.cut().await;
    url.set_port(Some(first.port)).unwrap();
    let listed = url.to_string().replacen(
        &format!(":{}/", first.port),
        &format!(":{},127.0.0.1:{}/", first.port, second.port),
        1,
    );
    assert!(listed.contains(','), "{listed}");
    let srv = TestServer::start_with(Db::Postgres, |cfg| cfg.database_url = Some(listed.into())).await;
    let (_, owner) = srv.tenant("acme").await;
    let mut c = srv.client();
    assert_eq!(c.login("acme", &owner, PASSWORD).await.status, StatusCode::OK, "started on the second host");

    // The "primary" goes, the other comes: the node moves over without a restart.
    first.restore().await;
    let mut second = second;
    second.cut().await;
    let mut served = None;
    for i in 0..30 {
        let r = c.post("/api/v1/matters", json!({"reference": format!("F-{i}"), "title": "Failover"})).await;
        if r.status == StatusCode::CREATED {
            served = Some(i);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(served.is_some(), "the node never followed the primary to the first host");
    assert_eq!(c.get("/readyz").await.status, StatusCode::OK);
    assert_eq!(c.get("/api/v1/matters").await.json()["items"].as_array().map(Vec::len), Some(1));
    srv.stop().await;
    db.drop_database().await;
}
