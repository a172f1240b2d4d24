//! Behaviour baselines against a real server, with the clock moved day by day: normal days
//! build a baseline and pause nobody; an exfiltration burst pauses the user's downloads (and
//! only those) with an alert; an admin sees and resumes them (audited). New addresses are
//! recorded as detections.

use crate::alerts::{kind, on_both, server};
use crate::encryption::{download, upload};
use crate::intrusion::client_from;
use crate::support::sql_column;
use portcullis_testkit::{Client, Db, PASSWORD, WebhookSink};
use reqwest::StatusCode;
use serde_json::json;

async fn downloads(c: &Client, doc: &str, n: usize) -> Vec<String> {
    let mut codes = Vec::new();
    for _ in 0..n {
        let (status, _, code) = download(c, doc, None).await.unwrap();
        codes.push(if status == StatusCode::OK { "ok".to_string() } else { code });
    }
    codes
}

on_both!(an_exfiltration_burst_pauses_downloads_until_an_admin_resumes_them, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| {
        c.anomaly_min_days = 3;
        c.anomaly_download_floor = 5;
        c.anomaly_download_factor = 3;
        c.anomaly_download_ceiling = 40;
    })
    .await;
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "clerk@acme.example", "staff").await;
    let mut admin = client_from(&srv, 1);
    admin.login("acme", &owner, PASSWORD).await;
    let m = admin.post("/api/v1/matters", json!({"reference": "A-1", "title": "Sale"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = upload(&admin, &m, b"contract text".to_vec()).await;
    let mut clerk = client_from(&srv, 1);

    // A new user with no history downloads more than the floor on day one: only the ceiling
    // applies before the baseline is trusted.
    clerk.login("acme", "clerk@acme.example", PASSWORD).await;
    assert!(downloads(&clerk, &doc, 8).await.iter().all(|c| c == "ok"));
    // Normal days: four downloads each.
    for _ in 0..3 {
        srv.clock.advance(time::Duration::days(1));
        clerk.login("acme", "clerk@acme.example", PASSWORD).await;
        assert!(downloads(&clerk, &doc, 4).await.iter().all(|c| c == "ok"), "a normal day pauses nobody");
    }
    // A burst: far above the baseline (about five a day, times three).
    srv.clock.advance(time::Duration::days(1));
    clerk.login("acme", "clerk@acme.example", PASSWORD).await;
    admin.login("acme", &owner, PASSWORD).await;
    let codes = downloads(&clerk, &doc, 20).await;
    let first_refused = codes.iter().position(|c| c != "ok").expect("the burst is stopped");
    assert!(first_refused > 5, "{codes:?}");
    assert!(codes[first_refused..].iter().all(|c| c == "downloads_paused"), "{codes:?}");
    let (_, body, _) = download(&clerk, &doc, None).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("administrator"), "a clear message");
    // Other work goes on.
    assert_eq!(clerk.get("/api/v1/matters").await.status, StatusCode::OK);
    let got = hook.wait_for(1, kind("exfiltration")).await;
    assert_eq!(got[0].json()["severity"], "critical");

    // The admin sees the paused user and the detection, and resumes the downloads.
    let clerk_id = sql_column(&srv.db_url(), "SELECT id FROM users WHERE role = 'staff'").await.remove(0);
    let blocks = admin.get("/api/v1/security/blocks").await.json();
    let paused = blocks["items"].as_array().unwrap().iter().find(|b| b["scope"] == "downloads").expect("paused");
    assert_eq!(paused["user_id"], clerk_id.as_str());
    assert!(paused["expires_at"].is_null());
    let detections = admin.get("/api/v1/security/detections").await.json();
    assert!(detections["items"].as_array().unwrap().iter().any(|d| d["kind"] == "exfiltration"));
    let page = admin.get("/account/security").await;
    assert!(page.text().contains("Resume downloads"), "the admin's security page lists it");
    let r = clerk.post(&format!("/api/v1/users/{clerk_id}/downloads/resume"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "staff cannot resume themselves");
    let resume = format!("/api/v1/users/{clerk_id}/downloads/resume");
    assert_eq!(admin.post(&resume, json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.post(&resume, json!({})).await.status, StatusCode::NOT_FOUND, "not paused any more");
    assert!(downloads(&clerk, &doc, 2).await.iter().all(|c| c == "ok"));
    let actions = sql_column(&srv.db_url(), "SELECT action FROM audit_events").await;
    for a in ["security.downloads_paused", "security.downloads_resumed", "security.detection"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited");
    }
});

on_both!(the_absolute_ceiling_pauses_whatever_the_history, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| c.anomaly_download_ceiling = 3).await;
    let (_, owner) = srv.tenant("acme").await;
    let mut c = client_from(&srv, 1);
    c.login("acme", &owner, PASSWORD).await;
    let m = c.post("/api/v1/matters", json!({"reference": "A-1", "title": "Sale"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = upload(&c, &m, b"x".to_vec()).await;
    assert_eq!(downloads(&c, &doc, 5).await, ["ok", "ok", "ok", "downloads_paused", "downloads_paused"]);
    hook.wait_for(1, kind("exfiltration")).await;
});

on_both!(a_new_address_is_a_detection_only, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |_| {}).await;
    let (_, owner) = srv.tenant("acme").await;
    let mut home = client_from(&srv, 1);
    assert_eq!(home.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    let mut away = client_from(&srv, 2);
    assert_eq!(away.login("acme", &owner, PASSWORD).await.status, StatusCode::OK, "not refused");
    let d = home.get("/api/v1/security/detections").await.json();
    let kinds: Vec<&str> = d["items"].as_array().unwrap().iter().filter_map(|d| d["kind"].as_str()).collect();
    assert!(kinds.contains(&"new_ip") && kinds.contains(&"new_device"), "{kinds:?}");
    assert!(home.get("/api/v1/security/blocks").await.json()["items"].as_array().unwrap().is_empty());
    let _: Option<Db> = None;
});
