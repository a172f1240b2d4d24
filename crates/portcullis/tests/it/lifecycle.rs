//! The server process as users run it: `portcullis serve`, the HTTPS-only listener with an
//! optional redirect, and graceful shutdown on SIGTERM: the node drains (readiness off, answers
//! close their connections, requests still served), then lets in-flight requests finish.

use crate::support::{free_port, portcullis};
use portcullis_testkit::{Client, PASSWORD};
use reqwest::StatusCode;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite() {
    serve_redirects_plain_http_and_finishes_in_flight_requests_on_sigterm(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres() {
    let db = portcullis_testkit::PgDatabase::create().await;
    serve_redirects_plain_http_and_finishes_in_flight_requests_on_sigterm(Some(&db.url)).await;
    db.drop_database().await;
}

async fn serve_redirects_plain_http_and_finishes_in_flight_requests_on_sigterm(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let plain = free_port();
    let command = || {
        let mut cmd = portcullis(dir.path());
        if let Some(url) = database_url {
            cmd.env("PORTCULLIS_DATABASE_URL", url);
        }
        cmd.env("PORTCULLIS_REDIRECT_HTTP_LISTEN", format!("127.0.0.1:{plain}")).stderr(Stdio::null());
        cmd.env("PORTCULLIS_DRAIN_SECS", "2");
        cmd
    };
    crate::support::create_acme(command(), dir.path());

    let (server, port) = crate::support::serve(command()).await;
    let cert = dir.path().join("tls/cert.pem");
    let base = format!("https://127.0.0.1:{port}");
    let mut c = Client::new(&base, &std::fs::read(&cert).unwrap());
    assert_eq!(c.login("acme", "o@acme.example", PASSWORD).await.status, StatusCode::OK);

    // Plain HTTP only redirects to the HTTPS base.
    let plain_client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = plain_client.get(format!("http://127.0.0.1:{plain}/matters?x=1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()["location"], format!("{base}/matters?x=1").as_str());
    // The HTTPS port does not speak plain HTTP.
    let over_plain = plain_client.get(format!("http://127.0.0.1:{port}/healthz")).send().await;
    assert!(!over_plain.is_ok_and(|r| r.status().is_success()));

    // An HTTP/1.1 client, to see the drain's `Connection: close`.
    let h1 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    let ready = h1.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.headers().get("connection").is_none_or(|v| v != "close"));

    // An upload is in flight when SIGTERM arrives; it still completes. Meanwhile the node
    // drains: readiness is off, and requests are still served, each answer closing its
    // connection so the client's next one goes to another node.
    let m = c.post("/api/v1/matters", serde_json::json!({"reference": "R", "title": "T"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (tx, rx) = futures::channel::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let upload = {
        let c = c.clone();
        tokio::spawn(async move {
            Client::send(
                c.request(reqwest::Method::POST, &format!("/api/v1/matters/{m}/documents"))
                    .query(&[("name", "late.txt")])
                    .body(reqwest::Body::wrap_stream(rx)),
            )
            .await
        })
    };
    let mut tx = tx;
    use futures::SinkExt;
    tx.send(Ok(bytes::Bytes::from_static(b"first half, "))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = h1.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text().await.unwrap(), "draining");
    let served = h1.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!((served.status(), served.headers()["connection"].to_str().unwrap()), (StatusCode::OK, "close"));
    tx.send(Ok(bytes::Bytes::from_static(b"second half"))).await.unwrap();
    drop(tx);
    let r = upload.await.unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["size"], 23);

    let mut server = server;
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = server.0.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exited.expect("the server exits after SIGTERM").success());
}
