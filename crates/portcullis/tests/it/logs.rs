//! Secrets never reach the logs: a whole scenario runs against `portcullis serve` with debug
//! logging in JSON, then every log line is searched for the master key, passwords, session cookies,
//! CSRF tokens, API tokens and one-time links, including while the server re-encrypts under a new
//! tenant key.

use crate::support::portcullis;
use portcullis_testkit::{Client, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::support::create_acme(portcullis(d), d);

    let log_path = d.join("server.log");
    let mut cmd = portcullis(d);
    // JSON, the form shipped to collectors: every line carries its request's fields too.
    cmd.env("PORTCULLIS_LOG", "debug")
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .env("PORTCULLIS_KEY_ROTATION_POLL_SECS", "1")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let (server, port) = crate::support::serve(cmd).await;
    let base = format!("https://127.0.0.1:{port}");
    let mut c = Client::new(&base, &std::fs::read(d.join("tls/cert.pem")).unwrap());

    let mut secrets: Vec<String> =
        vec![PASSWORD.into(), std::fs::read_to_string(d.join("master.key")).unwrap().trim().into()];
    assert_eq!(c.login("acme", "o@acme.example", "a wrong password").await.status, StatusCode::UNAUTHORIZED);
    secrets.push("a wrong password".into());
    let r = c.login("acme", "o@acme.example", PASSWORD).await;
    let cookie =
        r.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().split('=').nth(1).unwrap().to_string();
    secrets.push(cookie);
    secrets.push(c.csrf.clone().unwrap());
    let t = c.post("/api/v1/tokens", json!({"name": "ci", "scopes": ["read", "write"]})).await;
    let token = t.json()["token"].as_str().unwrap().to_string();
    secrets.push(token.clone());
    let api = c.with_bearer(&token);
    let m = api.post("/api/v1/matters", json!({"reference": "S-1", "title": "Secret matter"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.upload(&m, "a.pdf", b"%PDF-1.7".to_vec()).await.status, StatusCode::CREATED);
    let inv =
        c.post(&format!("/api/v1/matters/{m}/members"), json!({"email": "c@client.example", "role": "client"})).await;
    let link = inv.json()["invite_url"].as_str().unwrap().to_string();
    secrets.push(link.rsplit('/').next().unwrap().to_string());
    let accepted = Client::send(c.http.post(&link).form(&[("password", "client password 12345")])).await;
    assert_eq!(accepted.status, StatusCode::OK);
    secrets.push("client password 12345".into());
    assert_eq!(c.with_bearer("pct_wrong-token").get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED);
    // The server re-encrypts everything under a new tenant key in the background, logging as it goes.
    let o = portcullis(d).args(["keys", "rotate-tenant", "--tenant", "acme", "--no-wait"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for _ in 0..150 {
        if std::fs::read_to_string(&log_path).unwrap().contains("tenant-key rotation worked") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(server);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 5, "debug logging produced almost nothing:\n{log}");
    for line in log.lines() {
        assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "not a JSON line: {line}");
    }
    assert!(log.contains("tenant-key rotation worked"), "the background rotation did not run:\n{log}");
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret ({} characters) appears in the log", s.len());
    }
}
