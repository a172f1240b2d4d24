//! New-device notices by mail, end to end: a sign-in from a browser without a known device
//! cookie mails the user through a real SMTP receiver (aiosmtpd); a known browser does not; mail
//! waits in the outbox while SMTP is down and is retried with backoff, then given up and
//! audited; several senders never send one mail twice. The server's clock is moved for backoff
//! and leases; the sender's own ticks are real time, every `mail_poll_secs = 1`.

use crate::support::sql_column;
use portcullis_core::error::{Error, Result};
use portcullis_core::ports::Mailer;
use portcullis_core::service::{DeliveryReport, LEASE, MAX_ATTEMPTS, backoff};
use portcullis_testkit::{Client, Db, PASSWORD, Resp, SmtpSink, TestServer};
use reqwest::StatusCode;
use std::sync::Mutex;
use std::time::Duration;

/// Define a test run once per database against a server whose mail goes to an SMTP sink:
/// `with_mail!(name, |srv, sink| async move { ... })`. The sink is not yet listening: a test
/// calls `sink.start().await` when the receiver should be up.
#[macro_export]
macro_rules! with_mail {
    ($name:ident, |$srv:ident, $sink:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($srv: &TestServer, #[allow(unused_mut)] mut $sink: SmtpSink) {
                $body.await
            }
            async fn on(db: Db) {
                let sink = SmtpSink::new();
                let url = sink.url();
                let srv = TestServer::start_with(db, |c| {
                    c.smtp_url = Some(url.into());
                    c.mail_poll_secs = 1;
                })
                .await;
                run(&srv, sink).await;
                srv.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                on(Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                on(Db::Postgres).await
            }
        }
    };
}

/// Sign in through the API as a browser with this user agent would.
async fn sign_in(c: &Client, email: &str, user_agent: &str) -> Resp {
    let body = serde_json::json!({"tenant": "acme", "email": email, "password": PASSWORD});
    let r =
        Client::send(c.request(reqwest::Method::POST, "/api/v1/session").header("user-agent", user_agent).json(&body))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r
}

/// The `Set-Cookie` header setting `name`.
fn set_cookie(r: &Resp, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", r.headers))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

/// Rows of a query, once there are at least `n` (waits up to 30 s, then fails).
pub(crate) async fn rows(srv: &TestServer, query: &'static str, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = sql_column(&srv.db_url(), query).await;
        if got.len() >= n {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{query}: {} row(s) after 30 s, expected {n}", got.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(srv: &TestServer, query: &'static str) -> usize {
    sql_column(&srv.db_url(), query).await.len()
}

with_mail!(new_devices_are_mailed_and_known_ones_are_not, |srv, sink| async move {
    sink.start().await;
    let (_, owner) = srv.tenant("acme").await;

    // First sign-in ever, from a browser without a device cookie: a new device.
    let laptop = srv.client();
    let r = sign_in(&laptop, &owner, "LaptopBrowser/1.0").await;
    let device = set_cookie(&r, "__Host-portcullis-device");
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=34560000"] {
        assert!(device.split("; ").any(|a| a == attr), "{attr} missing: {device}");
    }
    assert!(!device.to_ascii_lowercase().contains("domain="), "{device}");
    let secret = cookie_value(&device);
    assert_ne!(secret, cookie_value(&set_cookie(&r, "__Host-portcullis")), "the device cookie is the session cookie");
    let stored = sql_column(&srv.db_url(), "SELECT device_hash FROM known_devices").await;
    assert_eq!(stored.len(), 1);
    assert!(stored.iter().all(|h| !h.contains(&secret)), "the device secret is stored in the clear");

    let mails = sink.wait_for(1).await;
    let m = &mails[0];
    assert_eq!(m.rcpt_to, owner);
    assert!(m.header("To").unwrap().contains(&owner), "{}", m.raw);
    assert!(m.header("Subject").unwrap().contains("New sign-in"), "{}", m.raw);
    let body = m.body();
    for part in
        ["IP address: 127.0.0.1", "Browser:    LaptopBrowser/1.0", "Firm:       acme", "tell your firm's administrator"]
    {
        assert!(body.contains(part), "{part:?} missing:\n{body}");
    }
    assert!(body.contains(&format!("{}/account/security", srv.base)), "{body}");
    let audited = sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'auth.new_device'").await;
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("LaptopBrowser/1.0") && audited[0].contains("127.0.0.1"), "{}", audited[0]);

    // The same browser again (it kept the cookie): known, so nothing new is queued; the cookie
    // is renewed with the same value.
    let r = sign_in(&laptop, &owner, "LaptopBrowser/1.1").await;
    assert_eq!(cookie_value(&set_cookie(&r, "__Host-portcullis-device")), secret);
    assert_eq!(count(srv, "SELECT id FROM mail_outbox").await, 1);
    assert_eq!(count(srv, "SELECT action FROM audit_events WHERE action = 'auth.new_device'").await, 1);
    let seen = sql_column(&srv.db_url(), "SELECT user_agent FROM known_devices").await;
    assert_eq!(seen, ["LaptopBrowser/1.1"]);

    // Another browser: a second mail.
    sign_in(&srv.client(), &owner, "PhoneBrowser/2.0").await;
    let mails = sink.wait_for(2).await;
    assert!(mails[1].body().contains("PhoneBrowser/2.0"), "{}", mails[1].raw);

    // A forged or foreign cookie counts as no cookie: a new device.
    let forged = srv.client();
    let body = serde_json::json!({"tenant": "acme", "email": owner, "password": PASSWORD});
    for cookie in [format!("pcd_{}", "A".repeat(43)), "something-else".to_string()] {
        let rb = forged
            .request(reqwest::Method::POST, "/api/v1/session")
            .header("cookie", format!("__Host-portcullis-device={cookie}"));
        let r = Client::send(rb.json(&body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_ne!(cookie_value(&set_cookie(&r, "__Host-portcullis-device")), cookie);
    }

    // The sign-in form of the UI recognises devices the same way.
    let browser = srv.client();
    let form = [("tenant", "acme"), ("email", owner.as_str()), ("password", PASSWORD)];
    let r = Client::send(browser.http.post(format!("{}/login", browser.base)).form(&form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    set_cookie(&r, "__Host-portcullis-device");
    let r = Client::send(browser.http.post(format!("{}/login", browser.base)).form(&form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());

    // Five new devices in all; once every row is marked sent, exactly five mails arrived.
    rows(srv, "SELECT id FROM mail_outbox WHERE sent_at IS NOT NULL", 5).await;
    assert_eq!(count(srv, "SELECT id FROM mail_outbox").await, 5);
    assert_eq!(sink.messages().len(), 5);
    assert!(sink.messages().iter().all(|m| m.rcpt_to == owner));
    assert_eq!(count(srv, "SELECT action FROM audit_events WHERE action = 'mail.sent'").await, 5);
});

with_mail!(mail_waits_while_smtp_is_down_and_goes_out_once_it_is_up, |srv, sink| async move {
    let (_, owner) = srv.tenant("acme").await;
    sign_in(&srv.client(), &owner, "B/1").await;
    // The sender tries, cannot connect, and schedules a retry.
    let errors =
        rows(srv, "SELECT last_error FROM mail_outbox WHERE attempts = 1 AND sent_at IS NULL AND failed_at IS NULL", 1)
            .await;
    assert!(errors[0].contains("smtp"), "{errors:?}");

    sink.start().await;
    srv.clock.advance(time::Duration::hours(1));
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].rcpt_to, owner);
    rows(srv, "SELECT id FROM mail_outbox WHERE sent_at IS NOT NULL AND last_error IS NULL", 1).await;
});

crate::both!(without_smtp_mail_is_queued, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    sign_in(&srv.client(), &owner, "B/1").await;
    let detail =
        sql_column(&srv.db_url(), "SELECT detail FROM mail_outbox WHERE sent_at IS NULL AND attempts = 0").await;
    assert_eq!(detail.len(), 1);
    assert!(detail[0].contains("\"user_agent\":\"B/1\"") && detail[0].contains("\"ip\":\"127.0.0.1\""), "{detail:?}");
    assert_eq!(count(srv, "SELECT action FROM audit_events WHERE action = 'auth.new_device'").await, 1);
});

/// A mail server that refuses everything.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl Mailer for Down {
    async fn send(&self, _: &str, _: &str, _: &str) -> Result<()> {
        Err(Error::internal("smtp: connection refused"))
    }
}

/// A mail server that takes a while and records what it was given.
#[derive(Debug, Default)]
struct Slow(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Mailer for Slow {
    async fn send(&self, to: &str, _: &str, _: &str) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.0.lock().unwrap().push(to.to_string());
        Ok(())
    }
}

/// A mail server that never answers: the sending node "crashes" mid-send.
#[derive(Debug, Default)]
struct Hang(tokio::sync::Notify);

#[async_trait::async_trait]
impl Mailer for Hang {
    async fn send(&self, _: &str, _: &str, _: &str) -> Result<()> {
        self.0.notify_one();
        std::future::pending().await
    }
}

crate::both!(undeliverable_mail_backs_off_then_is_given_up_and_audited, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    sign_in(&srv.client(), &owner, "B/1").await;
    let p = srv.portal();
    for attempt in 1..=MAX_ATTEMPTS {
        let r = p.deliver_mail(&Down).await.unwrap();
        let expected = if attempt < MAX_ATTEMPTS { (1, 0) } else { (0, 1) };
        assert_eq!((r.retrying, r.given_up), expected, "attempt {attempt}");
        // Not due again before its backoff has passed.
        assert_eq!(p.deliver_mail(&Down).await.unwrap(), DeliveryReport::default());
        srv.clock.advance(backoff(attempt));
    }
    srv.clock.advance(time::Duration::days(30));
    assert_eq!(p.deliver_mail(&Down).await.unwrap(), DeliveryReport::default(), "a given-up mail was tried again");
    let failed =
        sql_column(&srv.db_url(), "SELECT last_error FROM mail_outbox WHERE failed_at IS NOT NULL AND sent_at IS NULL")
            .await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("connection refused"), "{failed:?}");
    let audited = sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'mail.failed'").await;
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("\"attempts\":10") && !audited[0].contains(&owner), "{audited:?}");
});

crate::both!(senders_share_the_outbox_without_sending_twice, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    for ua in ["A/1", "B/1", "C/1"] {
        sign_in(&srv.client(), &owner, ua).await;
    }
    let p = srv.portal();

    // Two senders at once (as two nodes would): each mail goes out once.
    let slow = Slow::default();
    let (a, b) = tokio::join!(p.deliver_mail(&slow), p.deliver_mail(&slow));
    assert_eq!(a.unwrap().sent + b.unwrap().sent, 3);
    assert_eq!(*slow.0.lock().unwrap(), [owner.clone(), owner.clone(), owner.clone()]);

    // A sender that dies mid-send keeps its lease: nobody sends the mail until the lease runs
    // out, then it is sent again (at least once).
    sign_in(&srv.client(), &owner, "D/1").await;
    let hang = Hang::default();
    tokio::select! {
        _ = p.deliver_mail(&hang) => panic!("a send that never answers finished"),
        _ = hang.0.notified() => {}
    }
    let again = Slow::default();
    assert_eq!(p.deliver_mail(&again).await.unwrap().sent, 0);
    srv.clock.advance(LEASE);
    assert_eq!(p.deliver_mail(&again).await.unwrap().sent, 1);
    assert_eq!(count(srv, "SELECT id FROM mail_outbox WHERE sent_at IS NULL").await, 0);
});
