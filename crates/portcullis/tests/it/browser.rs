//! The UI in a real browser: headless Chromium driven through ChromeDriver walks the main path —
//! first-start setup, sign in, open a matter, upload, invite a client; the client sets a password,
//! signs in and downloads the document; and two-factor enrolment and sign-in. Screenshots go to
//! `$PORTCULLIS_TEST_ARTIFACTS`.

use crate::support::{KillOnDrop, free_port, wait_for_port};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use portcullis_testkit::{PASSWORD, TestServer};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

async fn start_driver() -> (KillOnDrop, u16) {
    let bin = std::env::var("PORTCULLIS_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin} ({e}): run the suite with ./scripts/test, which installs it"));
    let driver = KillOnDrop(child);
    assert!(wait_for_port(port).await, "chromedriver did not start listening");
    (driver, port)
}

async fn browser(port: u16, profile: &Path, downloads: &Path) -> Browser {
    let chromium = std::env::var("PORTCULLIS_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,1000",
                // The test server's certificate is self-signed and made for this run.
                "--ignore-certificate-errors",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            }
        }
    });
    let serde_json::Value::Object(caps) = caps else { unreachable!() };
    ClientBuilder::rustls()
        .expect("rustls connector")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect to chromedriver")
}

fn artifacts() -> PathBuf {
    let dir = std::env::var("PORTCULLIS_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("portcullis-artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(b: &Browser, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(format!("browser-{name}.png")), png).unwrap();
}

async fn fill(b: &Browser, id: &str, text: &str) {
    b.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).send_keys(text).await.unwrap();
}

async fn click(b: &Browser, id: &str) {
    b.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).click().await.unwrap();
}

/// Wait (bounded) for an element the next page shows; on failure keep a screenshot and the page.
async fn expect(b: &Browser, css: &str) -> fantoccini::elements::Element {
    match b.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(err) => {
            shot(b, "failure").await;
            let url = b.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            panic!("{css} did not appear ({err}) at {url}: {}", b.source().await.unwrap_or_default());
        }
    }
}

async fn sign_in(b: &Browser, base: &str, tenant: &str, email: &str) {
    b.goto(&format!("{base}/login")).await.unwrap();
    fill(b, "tenant", tenant).await;
    fill(b, "email", email).await;
    fill(b, "password", PASSWORD).await;
    click(b, "sign-in").await;
    expect(b, "#logout").await;
}

async fn main_path(srv: &TestServer) {
    let base = srv.base.clone();
    let (_driver, port) = start_driver().await;
    let work = tempfile::tempdir().unwrap();
    let downloads = work.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = browser(port, &work.path().join("profile"), &downloads).await;

    // First start: the one-time setup link creates the firm and its owner.
    let setup = srv.setup_link.as_deref().expect("a fresh server prints a setup link");
    b.goto(setup).await.unwrap();
    fill(&b, "tenant", "harbour-law").await;
    fill(&b, "display_name", "Harbour Law LLP").await;
    fill(&b, "email", "owner@harbour.example").await;
    fill(&b, "password", PASSWORD).await;
    shot(&b, "01-setup").await;
    click(&b, "create").await;
    let notice = expect(&b, "#notice").await.text().await.unwrap();
    assert!(notice.contains("harbour-law"), "{notice}");

    sign_in(&b, &base, "harbour-law", "owner@harbour.example").await;
    shot(&b, "02-matters").await;
    fill(&b, "reference", "HL-2026-001").await;
    fill(&b, "title", "Sale of 4 Quay Street").await;
    click(&b, "create-matter").await;
    expect(&b, "#upload").await;

    let file = work.path().join("contract.txt");
    std::fs::write(&file, "Contract for the sale of 4 Quay Street.\n").unwrap();
    let input = b.find(Locator::Id("file")).await.unwrap();
    input.send_keys(&file.display().to_string()).await.unwrap();
    click(&b, "upload").await;
    let docs = expect(&b, "#documents").await.text().await.unwrap();
    assert!(docs.contains("contract.txt"), "{docs}");

    fill(&b, "message", "Please upload your passport.").await;
    click(&b, "send").await;
    expect(&b, ".message").await;
    fill(&b, "member-email", "client@example.com").await;
    click(&b, "invite-member").await;
    let invite = expect(&b, "#invite-url").await.text().await.unwrap();
    shot(&b, "03-matter-with-invite").await;
    click(&b, "logout").await;
    expect(&b, "#sign-in").await;

    // The client chooses a password through the link, signs in, sees the matter and downloads.
    b.goto(&invite).await.unwrap();
    fill(&b, "password", PASSWORD).await;
    click(&b, "set-password").await;
    let notice = expect(&b, "#notice").await.text().await.unwrap();
    assert!(notice.contains("client@example.com"), "{notice}");
    sign_in(&b, &base, "harbour-law", "client@example.com").await;
    let list = expect(&b, "#matters").await.text().await.unwrap();
    assert!(list.contains("HL-2026-001"), "{list}");
    assert!(b.find(Locator::Id("create-matter")).await.is_err(), "clients cannot open matters");
    b.find(Locator::LinkText("HL-2026-001")).await.unwrap().click().await.unwrap();
    let message = expect(&b, ".message").await.text().await.unwrap();
    assert!(message.contains("Please upload your passport."), "{message}");
    shot(&b, "04-client-view").await;
    b.find(Locator::Css("a.download")).await.unwrap().click().await.unwrap();
    let saved = downloads.join("contract.txt");
    for _ in 0..100 {
        if std::fs::read_to_string(&saved).is_ok_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = std::fs::read_to_string(&saved).expect("the download arrived");
    assert_eq!(got, "Contract for the sale of 4 Quay Street.\n");

    b.close().await.unwrap();
}
crate::both!(main_path_in_a_real_browser, |srv| main_path(srv));

/// Two-factor in the browser: enrol an authenticator app from its QR page, keep the recovery
/// codes, tighten the firm's requirement, and sign in again with a code.
async fn two_factor(srv: &TestServer) {
    use portcullis_core::clock::Clock;
    let base = srv.base.clone();
    let (_driver, port) = start_driver().await;
    let work = tempfile::tempdir().unwrap();
    let b = browser(port, &work.path().join("profile"), work.path()).await;
    let (_, owner) = srv.tenant("acme").await;

    sign_in(&b, &base, "acme", &owner).await;
    click(&b, "nav-security").await;
    let status = expect(&b, "#totp-status").await.text().await.unwrap();
    assert!(status.contains("off"), "{status}");
    click(&b, "start-totp").await;
    let secret = expect(&b, "#totp-secret").await.text().await.unwrap();
    // The QR code is a real image the browser decoded (served as a data: URL the CSP allows).
    let width = b.execute("return document.getElementById('totp-qr').naturalWidth", vec![]).await.unwrap();
    assert!(width.as_u64().unwrap_or(0) > 0, "the QR code did not render: {width}");
    shot(&b, "2fa-01-enrol").await;
    fill(&b, "code", "000000").await;
    click(&b, "confirm-totp").await;
    // A mistyped code shows the same key again, with the reason.
    let err = expect(&b, "p.error").await.text().await.unwrap();
    assert!(err.contains("code"), "{err}");
    assert_eq!(expect(&b, "#totp-secret").await.text().await.unwrap(), secret);
    fill(&b, "code", &portcullis_testkit::totp_code(&secret, srv.clock.now())).await;
    click(&b, "confirm-totp").await;
    let codes = expect(&b, "#recovery-codes").await.find_all(Locator::Css("li")).await.unwrap();
    assert_eq!(codes.len(), 10);
    shot(&b, "2fa-02-recovery-codes").await;

    // The owner makes two-factor compulsory for clients too.
    click(&b, "nav-security").await;
    click(&b, "policy-clients").await;
    click(&b, "save-policy").await;
    let notice = expect(&b, "#notice").await.text().await.unwrap();
    assert!(notice.contains("saved"), "{notice}");
    click(&b, "logout").await;

    // Signing in now asks for a code.
    srv.clock.advance(time::Duration::seconds(30));
    b.goto(&format!("{base}/login")).await.unwrap();
    fill(&b, "tenant", "acme").await;
    fill(&b, "email", &owner).await;
    fill(&b, "password", PASSWORD).await;
    click(&b, "sign-in").await;
    expect(&b, "#code").await;
    shot(&b, "2fa-03-code-asked").await;
    fill(&b, "password", PASSWORD).await;
    fill(&b, "code", &portcullis_testkit::totp_code(&secret, srv.clock.now())).await;
    click(&b, "sign-in").await;
    expect(&b, "#logout").await;
    b.close().await.unwrap();
}
crate::both!(two_factor_in_a_real_browser, |srv| two_factor(srv));

/// Give the browser a virtual authenticator (WebDriver's WebAuthn extension): a platform
/// passkey that verifies its user, as a phone or laptop with a fingerprint reader does.
async fn virtual_authenticator(b: &Browser, driver_port: u16) -> String {
    let session = b.session_id().await.unwrap().expect("a WebDriver session");
    let url = format!("http://127.0.0.1:{driver_port}/session/{session}/webauthn/authenticator");
    let body = serde_json::json!({
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
        "hasUserVerification": true, "isUserConsenting": true, "isUserVerified": true,
    });
    let r = reqwest::Client::new().post(&url).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "add a virtual authenticator: {}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    v["value"].as_str().unwrap().to_string()
}

/// Passkeys in the pages: add one on the security page, sign in with it, step up with it. The
/// pages are opened as `localhost` (WebAuthn needs a host name), and the page script runs under
/// the CSP, which allows scripts from our origin only.
async fn passkeys(srv: &TestServer) {
    let base = srv.passkey_origin();
    let (_driver, port) = start_driver().await;
    let work = tempfile::tempdir().unwrap();
    let b = browser(port, &work.path().join("profile"), work.path()).await;
    virtual_authenticator(&b, port).await;
    let (_, owner) = srv.tenant("acme").await;

    sign_in(&b, &base, "acme", &owner).await;
    click(&b, "nav-security").await;
    expect(&b, "#passkeys-none").await;
    fill(&b, "passkey-name", "laptop").await;
    click(&b, "add-passkey").await;
    expect(&b, "#create-passkey").await;
    shot(&b, "passkey-01-create").await;
    click(&b, "create-passkey").await;
    let notice = expect(&b, "#notice").await.text().await.unwrap();
    assert!(notice.contains("laptop") && notice.contains("added"), "{notice}");
    assert_eq!(expect(&b, "#passkeys .passkey-name").await.text().await.unwrap(), "laptop");
    shot(&b, "passkey-02-listed").await;
    click(&b, "logout").await;

    // Signing in: the password, then the passkey instead of a code.
    b.goto(&format!("{base}/login")).await.unwrap();
    fill(&b, "tenant", "acme").await;
    fill(&b, "email", &owner).await;
    fill(&b, "password", PASSWORD).await;
    click(&b, "sign-in").await;
    expect(&b, "#use-passkey").await;
    shot(&b, "passkey-03-asked").await;
    fill(&b, "password", PASSWORD).await;
    click(&b, "use-passkey").await;
    expect(&b, "#logout").await;

    // A step-up with the passkey, ten minutes on.
    srv.clock.advance(time::Duration::minutes(11));
    b.goto(&format!("{base}/account/step-up?next=/tokens")).await.unwrap();
    click(&b, "use-passkey").await;
    expect(&b, "#tokens").await;
    let events = crate::support::sql_column(&srv.db_url(), "SELECT action FROM audit_events").await;
    for expected in ["auth.passkey_added", "auth.step_up"] {
        assert!(events.iter().any(|e| e == expected), "no {expected}: {events:?}");
    }
    b.close().await.unwrap();
}
crate::both!(passkeys_in_a_real_browser, |srv| passkeys(srv));
