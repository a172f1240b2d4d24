//! Security alerts and the heartbeat, end to end: real servers tell a real HTTP receiver
//! (signed webhooks, verified here with the shared secret as a receiver would) and a real SMTP
//! receiver (aiosmtpd). Brute force, a damaged document, a tampered audit log and an expiring
//! certificate each raise an alert; a receiver that is down loses nothing; floods are folded;
//! a bad configuration stops the start. The servers' clocks are moved for backoff and
//! deduplication windows; their pollers tick in real time every second.

use crate::encryption::{blob, download, owner, upload};
use crate::mail::rows;
use crate::support::{portcullis, sql, sql_column};
use portcullis::config::Config;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::model::{AlertKind, Severity};
use portcullis_core::service::NewAlert;
use portcullis_testkit::{Db, PASSWORD, Received, SmtpSink, TestServer, WebhookSink};
use reqwest::StatusCode;
use std::path::Path;

/// The secret shared with the receiver.
const SECRET: &str = "test-webhook-secret-0123456789abcdef0123456789";

/// Define a test run once per database: `on_both!(name, |db| async move { ... })`.
macro_rules! on_both {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($db: portcullis_testkit::Db) {
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(portcullis_testkit::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(portcullis_testkit::Db::Postgres).await
            }
        }
    };
}

pub(crate) use on_both;

/// Write the shared secret where only its owner can read it.
fn write_secret(dir: &Path) -> std::path::PathBuf {
    portcullis_testkit::secret_file(dir, "webhook.secret", &format!("{SECRET}\n"))
}

/// A server whose alerts go to `hook` (and, with `smtp`, to `ops@platform.example` and the
/// firms' admins), polling every second, the node named `node-a`.
pub(crate) async fn server(
    db: Db,
    hook: &WebhookSink,
    smtp: Option<&SmtpSink>,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let (url, smtp_url) = (hook.url(), smtp.map(SmtpSink::url));
    TestServer::start_with(db, |c| {
        c.alert_webhook_url = Some(url.into());
        c.alert_webhook_secret_file = Some(write_secret(&c.data));
        c.alert_poll_secs = 1;
        c.node_id = Some("node-a".into());
        if let Some(u) = smtp_url {
            c.smtp_url = Some(u.into());
            c.mail_poll_secs = 1;
            c.alert_email_to = vec!["ops@platform.example".into()];
        }
        adjust(c);
    })
    .await
}

/// Check a request's signature as a receiver does: the HMAC-SHA256 of `<t>.<body>` under the
/// shared secret, in constant time, and `t` within five minutes of now.
fn signature_valid(r: &Received, secret: &[u8]) -> bool {
    use aws_lc_rs::hmac;
    let header = r.header("x-portcullis-signature").expect("a signature header");
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("t=<unix>"), v1.expect("v1=<hex>"));
    assert!((SystemClock.now().unix_timestamp() - t).abs() <= 300, "signed at {t}, too far from now");
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), &signed, &v1).is_ok()
}

pub(crate) fn kind(k: &'static str) -> impl Fn(&Received) -> bool {
    move |r| r.json()["type"] == "alert" && r.json()["kind"] == k
}

on_both!(brute_force_is_told_once_by_email_and_signed_webhook, |db| async move {
    let hook = WebhookSink::started().await;
    let smtp = SmtpSink::started().await;
    let srv = server(db, &hook, Some(&smtp), |_| {}).await;
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "bob@acme.example", "staff").await;
    let bob = sql_column(&srv.db_url(), "SELECT id FROM users WHERE role = 'staff'").await.remove(0);

    // Five wrong passwords trip the throttle; the tries after it are refused as locked.
    let wrong = "a wrong guess at the password";
    for _ in 0..7 {
        let r = srv.client().login("acme", "bob@acme.example", wrong).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let got = hook.wait_for(1, kind("brute_force")).await;
    let r = &got[0];
    assert!(signature_valid(r, SECRET.as_bytes()), "the signature does not verify: {:?}", r.headers);
    assert!(!signature_valid(r, b"another secret, not the shared one"), "a wrong secret verified");
    let mut tampered = r.clone();
    tampered.body = r.text().replace("brute_force", "brute_forcf").into_bytes();
    assert!(!signature_valid(&tampered, SECRET.as_bytes()), "a changed body verified");
    let body = r.json();
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["subject"], format!("user:{bob}"));
    assert_eq!(body["tenant"]["id"], tenant.to_string());
    assert_eq!(body["tenant"]["name"], "acme");
    assert_eq!(body["node"], "node-a");
    assert_eq!(body["notice"], "first");
    assert_eq!(body["detail"]["ip"], "127.0.0.1");
    for secret in ["bob@acme.example", wrong, PASSWORD, SECRET, owner.as_str()] {
        assert!(!r.text().contains(secret), "{secret:?} in the webhook body: {}", r.text());
    }

    // By mail: the operators, and the firm's owner (who is told which account).
    let mails = smtp.wait_for(2).await;
    let ops = mails.iter().find(|m| m.rcpt_to.contains("ops@platform.example")).expect("a mail to the operators");
    assert!(ops.header("Subject").unwrap().contains("[Portcullis warning]"), "{}", ops.raw);
    assert!(ops.body().contains("brute_force") && ops.body().contains("127.0.0.1"), "{}", ops.body());
    assert!(!ops.raw.contains("bob@acme.example") && !ops.raw.contains(wrong), "{}", ops.raw);
    let firm = mails.iter().find(|m| m.rcpt_to.contains(&owner)).expect("a mail to the firm's owner");
    assert!(firm.body().contains("Account:       bob@acme.example"), "{}", firm.body());
    assert!(!firm.raw.contains(wrong), "{}", firm.raw);

    // One alert, counting every occurrence; each channel got exactly one notice.
    rows(&srv, "SELECT id FROM alert_deliveries WHERE sent_at IS NOT NULL", 2).await;
    rows(&srv, "SELECT id FROM mail_outbox WHERE sent_at IS NOT NULL", 1).await;
    assert_eq!(sql_column(&srv.db_url(), "SELECT id FROM alerts").await.len(), 1);
    let n = sql_column(&srv.db_url(), "SELECT CAST(occurrences AS TEXT) FROM alerts").await;
    assert_eq!(n, ["3"], "the throttle tripping and two tries while locked");
    assert_eq!(hook.received().iter().filter(|r| kind("brute_force")(r)).count(), 1);
    assert_eq!(smtp.messages().len(), 2);
    let raised = sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'alert.raised'").await;
    assert_eq!(raised.len(), 1);
    assert!(raised[0].contains("brute_force"), "{raised:?}");

    // At the window's end, one follow-up with the final count.
    srv.clock.advance(time::Duration::minutes(15));
    let follow = hook.wait_for(1, |r| kind("brute_force")(r) && r.json()["notice"] == "follow_up").await;
    assert_eq!(follow[0].json()["occurrences"], 3);
    assert_eq!(follow[0].json()["alert"], body["alert"]);
    assert!(signature_valid(&follow[0], SECRET.as_bytes()));
    srv.stop().await;
});

on_both!(a_receiver_that_is_down_loses_nothing, |db| async move {
    // Not listening at first: connections are refused.
    let mut hook = WebhookSink::new();
    let srv = server(db, &hook, None, |_| {}).await;
    let alert = NewAlert::new(
        AlertKind::BackupFailure,
        Severity::Critical,
        None,
        "backup:nightly",
        "The nightly backup failed",
    );
    let raised = srv.portal().raise_alert(alert).await.unwrap();
    let errors = rows(&srv, "SELECT last_error FROM alert_deliveries WHERE attempts = 1 AND sent_at IS NULL", 1).await;
    assert!(errors[0].contains("alert_webhook_url") && !errors[0].contains(&hook.url()), "{errors:?}");

    // Listening, but answering 503: the retry fails too, and is kept.
    hook.set_status(503);
    hook.start().await;
    srv.clock.advance(time::Duration::hours(1));
    let errors = rows(&srv, "SELECT last_error FROM alert_deliveries WHERE attempts = 2 AND sent_at IS NULL", 1).await;
    assert!(errors[0].contains("503"), "{errors:?}");
    assert!(hook.received().iter().any(|r| r.status == 503));

    // Up: the next retry delivers it, once.
    hook.set_status(200);
    srv.clock.advance(time::Duration::hours(1));
    let got = hook.wait_for(1, kind("backup_failure")).await;
    assert_eq!(got[0].json()["alert"], raised.id.to_string());
    assert_eq!(got[0].json()["summary"], "The nightly backup failed");
    assert!(signature_valid(&got[0], SECRET.as_bytes()));
    rows(&srv, "SELECT id FROM alert_deliveries WHERE sent_at IS NOT NULL AND last_error IS NULL", 1).await;
    let audited = sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'alert.delivered'").await;
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("\"attempts\":3") && audited[0].contains("webhook"), "{audited:?}");
    assert_eq!(hook.received().iter().filter(|r| r.accepted()).count(), 1);
    srv.stop().await;
});

on_both!(a_delivery_failing_past_its_age_is_given_up_and_audited, |db| async move {
    let hook = WebhookSink::started().await;
    hook.set_status(503);
    let srv = server(db, &hook, None, |c| c.alert_give_up_hours = 1).await;
    let alert =
        NewAlert::new(AlertKind::BackupFailure, Severity::Warning, None, "backup:weekly", "The weekly backup failed");
    srv.portal().raise_alert(alert).await.unwrap();
    rows(&srv, "SELECT id FROM alert_deliveries WHERE attempts = 1", 1).await;
    srv.clock.advance(time::Duration::hours(2));
    rows(&srv, "SELECT id FROM alert_deliveries WHERE failed_at IS NOT NULL AND sent_at IS NULL", 1).await;
    let audited = rows(&srv, "SELECT detail FROM audit_events WHERE action = 'alert.delivery_failed'", 1).await;
    assert!(audited[0].contains("\"attempts\":2") && audited[0].contains("webhook"), "{audited:?}");
    // Given up means not tried again.
    hook.set_status(200);
    srv.clock.advance(time::Duration::days(3));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(hook.received().iter().all(|r| r.status == 503));
    srv.stop().await;
});

on_both!(a_damaged_document_raises_an_integrity_alert, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |_| {}).await;
    let (c, tenant, m) = owner(&srv, "acme").await;
    let doc = upload(&c, &m, b"%PDF-1.7 confidential settlement terms".to_vec()).await;
    let path = blob(&srv, &tenant, &doc);
    let mut stored = std::fs::read(&path).unwrap();
    let n = stored.len();
    stored[n - 1] ^= 1;
    std::fs::write(&path, &stored).unwrap();
    let (status, _, code) = download(&c, &doc, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    let got = hook.wait_for(1, kind("integrity_failure")).await;
    let body = got[0].json();
    assert!(signature_valid(&got[0], SECRET.as_bytes()));
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["subject"], format!("document:{doc}"));
    assert_eq!(body["tenant"]["id"], tenant);
    assert_eq!(body["detail"]["matter"], m);
    for content in ["confidential", "settlement", "doc.bin", "owner@acme.example"] {
        assert!(!got[0].text().contains(content), "{content:?} in the alert: {}", got[0].text());
    }
    // Raised with its cause: the audited failure.
    let cause =
        sql_column(&srv.db_url(), "SELECT target FROM audit_events WHERE action = 'document.integrity_failure'").await;
    assert_eq!(cause, [format!("document:{doc}")]);
    srv.stop().await;
});

/// Let the test change audit events (as an attacker with the database's owner rights could).
async fn lift_append_only(url: &str) {
    if url.starts_with("postgres") {
        sql(url, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change", &[]).await;
    } else {
        sql(url, "DROP TRIGGER audit_events_no_update", &[]).await;
    }
}

on_both!(the_checkpoint_job_alerts_on_a_chain_that_does_not_verify, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |c| c.audit_checkpoint_secs = 1).await;
    let (tenant, owner) = srv.tenant("acme").await;
    let chain = tenant.to_string();
    assert_eq!(srv.client().login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    // Wait until the job has signed the chain's head.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let q = "SELECT CAST(c.seq AS TEXT) FROM audit_checkpoints c JOIN audit_heads h ON h.chain = c.chain \
             JOIN tenants t ON t.id = c.chain WHERE c.seq = h.seq";
    while sql_column(&srv.db_url(), q).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the tenant chain was not checkpointed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The checkpointed event is edited, and the chain grows after it.
    lift_append_only(&srv.db_url()).await;
    sql(
        &srv.db_url(),
        "UPDATE audit_events SET detail = '{}' WHERE chain = $1 \
         AND seq = (SELECT MAX(seq) FROM audit_checkpoints WHERE chain = $1)",
        &[&chain],
    )
    .await;
    assert_eq!(srv.client().login("acme", &owner, PASSWORD).await.status, StatusCode::OK);

    let got = hook.wait_for(1, kind("audit_verification_failure")).await;
    let body = got[0].json();
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["subject"], format!("chain:{chain}"));
    assert_eq!(body["detail"]["found_by"], "checkpoint");
    assert!(body["summary"].as_str().unwrap().contains("does not verify"), "{body}");
    assert!(signature_valid(&got[0], SECRET.as_bytes()));
    // Recorded on the platform chain; the broken chain is not signed past the tampering.
    let failed =
        sql_column(&srv.db_url(), "SELECT chain FROM audit_events WHERE action = 'audit.verification_failed'").await;
    assert!(!failed.is_empty() && failed.iter().all(String::is_empty), "{failed:?}");
    let url = srv.db_url();
    let tenant_seq = |q: &'static str| {
        let url = url.clone();
        async move { sql_column(&url, q).await[0].parse::<i64>().unwrap() }
    };
    let head = tenant_seq("SELECT CAST(h.seq AS TEXT) FROM audit_heads h JOIN tenants t ON t.id = h.chain").await;
    let signed =
        tenant_seq("SELECT CAST(MAX(c.seq) AS TEXT) FROM audit_checkpoints c JOIN tenants t ON t.id = c.chain").await;
    assert!(signed < head, "signed up to {signed} of {head}");
    srv.stop().await;
});

on_both!(audit_verify_alerts_through_the_running_servers, |db| async move {
    let hook = WebhookSink::started().await;
    let srv = server(db, &hook, None, |_| {}).await;
    let (tenant, owner) = srv.tenant("acme").await;
    assert_eq!(srv.client().login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
    lift_append_only(&srv.db_url()).await;
    sql(&srv.db_url(), "UPDATE audit_events SET detail = '{}' WHERE chain = $1 AND seq = 1", &[&tenant.to_string()])
        .await;
    // The command line has no alert channel of its own: it stores the alert, a server tells it.
    let o = portcullis(srv.dir.path())
        .env("PORTCULLIS_DATABASE_URL", srv.db_url())
        .args(["audit", "verify", "--tenant", "acme"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let got = hook.wait_for(1, kind("audit_verification_failure")).await;
    let body = got[0].json();
    assert_eq!(body["detail"]["found_by"], "verify");
    assert_eq!(body["detail"]["seq"], 1);
    assert_eq!(body["node"], "node-a", "told by the server");
    srv.stop().await;
});

/// A self-signed certificate for 127.0.0.1 that expires in `days` days; its PEM files.
fn short_lived_certificate(dir: &Path, days: i64) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let now = SystemClock.now();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("short-cert.pem"), dir.join("short-key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    portcullis::tls::write_private(&k, key.serialize_pem().as_bytes()).unwrap();
    (c, k)
}

on_both!(an_expiring_certificate_raises_an_alert_at_start, |db| async move {
    let hook = WebhookSink::started().await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = short_lived_certificate(certs.path(), 5);
    let srv = server(db, &hook, None, |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    // The server serves it (the client trusts exactly this certificate).
    assert_eq!(srv.client().get("/healthz").await.status, StatusCode::OK);
    let got = hook.wait_for(1, kind("tls_certificate_expiring")).await;
    let body = got[0].json();
    assert_eq!(body["severity"], "warning");
    assert!(body["tenant"].is_null());
    let summary = body["summary"].as_str().unwrap();
    assert!(summary.contains("node node-a") && summary.contains("day(s)"), "{summary}");
    assert!((4..=5).contains(&body["detail"]["days_left"].as_i64().unwrap()), "{body}");
    assert!(signature_valid(&got[0], SECRET.as_bytes()));
    // One alert: the check runs at start and then daily.
    assert_eq!(sql_column(&srv.db_url(), "SELECT id FROM alerts").await.len(), 1);
    srv.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_arrive_signed_and_in_order() {
    let hook = WebhookSink::started().await;
    let url = format!("http://127.0.0.1:{}/heartbeat", hook.port);
    let srv = TestServer::start_with(Db::Sqlite, |c| {
        c.heartbeat_url = Some(url.into());
        c.heartbeat_secret_file = Some(write_secret(&c.data));
        c.heartbeat_secs = 1;
        c.node_id = Some("node-b".into());
    })
    .await;
    let beats = hook.wait_for(3, |r| r.path == "/heartbeat" && r.json()["type"] == "heartbeat").await;
    for (i, b) in beats.iter().enumerate() {
        assert!(signature_valid(b, SECRET.as_bytes()), "heartbeat {i} is not signed with the secret");
        let j = b.json();
        assert_eq!(j["node"], "node-b");
        assert_eq!(j["seq"], i as u64 + 1);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_alert_configuration_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(portcullis_core::clock::ManualClock::new());
    let base = Config { data: dir.path().to_path_buf(), listen: "127.0.0.1:0".into(), ..Config::default() };
    let secret = write_secret(dir.path());
    let start = |cfg: Config| {
        let clock = clock.clone();
        async move { portcullis::server::start(&cfg, clock).await.map(|_| ()).unwrap_err().to_string() }
    };
    // Plain HTTP to a host on the network.
    let e = start(Config {
        alert_webhook_url: Some("http://alerts.example.com/hooks/T0KEN".into()),
        alert_webhook_secret_file: Some(secret.clone()),
        ..base.clone()
    })
    .await;
    assert!(e.contains("alert_webhook_url") && e.contains("https://") && !e.contains("T0KEN"), "{e}");
    // A secret file that is not there.
    let e = start(Config {
        alert_webhook_url: Some("https://alerts.example.com/hook".into()),
        alert_webhook_secret_file: Some(dir.path().join("missing.secret")),
        ..base.clone()
    })
    .await;
    assert!(e.contains("alert_webhook_secret_file"), "{e}");

    // The command refuses them as well, naming the key; `config check` hides the URL's path and
    // never prints the secret.
    let out = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = portcullis(dir.path());
        c.envs(env.iter().copied()).args(args);
        let o = c.output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let secret_path = secret.to_str().unwrap();
    let (ok, text) = out(
        &["serve"],
        &[
            ("PORTCULLIS_ALERT_WEBHOOK_URL", "http://alerts.example.com/hooks/T0KEN"),
            ("PORTCULLIS_ALERT_WEBHOOK_SECRET_FILE", secret_path),
            ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert!(!ok && text.contains("alert_webhook_url") && !text.contains("T0KEN"), "{text}");
    let (ok, text) = out(&["serve"], &[("PORTCULLIS_ALERT_WEBHOOK_URL", "https://alerts.example.com/h")]);
    assert!(!ok && text.contains("alert_webhook_secret_file"), "{text}");
    let (ok, text) = out(
        &["config", "check"],
        &[
            ("PORTCULLIS_ALERT_WEBHOOK_URL", "https://alerts.example.com:8443/hooks/T0KEN"),
            ("PORTCULLIS_ALERT_WEBHOOK_SECRET_FILE", secret_path),
            ("PORTCULLIS_ALERT_EMAIL_TO", "ops@platform.example, oncall@platform.example"),
            ("PORTCULLIS_SMTP_URL", "smtp://127.0.0.1:2525"),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("https://alerts.example.com:8443/... (path hidden)"), "{text}");
    assert!(text.contains("oncall@platform.example"), "{text}");
    assert!(!text.contains("T0KEN") && !text.contains(SECRET), "{text}");
    let missing = dir.path().join("missing.secret");
    let (ok, text) = out(
        &["config", "check"],
        &[
            ("PORTCULLIS_ALERT_WEBHOOK_URL", "https://alerts.example.com/h"),
            ("PORTCULLIS_ALERT_WEBHOOK_SECRET_FILE", missing.to_str().unwrap()),
        ],
    );
    assert!(!ok && text.contains("alert_webhook_secret_file") && text.contains("missing.secret"), "{text}");
}
