//! `security.txt` (RFC 9116): served to anyone at the well-known path with the configured
//! contacts, policy, languages, an expiry and the canonical address; absent without a contact;
//! values that would break the file are refused by configuration.

use portcullis_testkit::{Db, TestServer};
use reqwest::StatusCode;

async fn served(db: Db) {
    let srv = TestServer::start_with(db, |c| {
        c.security_contact = vec!["mailto:security@example.net".into(), "https://example.net/report".into()];
        c.security_policy_url = Some("https://example.net/disclosure".into());
        c.security_languages = vec!["en".into(), "cy".into()];
        c.security_txt_expires = Some("2027-06-30T00:00:00Z".into());
    })
    .await;
    let c = srv.client();
    let r = c.get("/.well-known/security.txt").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    let txt = r.text();
    for line in [
        "Contact: mailto:security@example.net\n",
        "Contact: https://example.net/report\n",
        "Expires: 2027-06-30T00:00:00Z\n",
        "Policy: https://example.net/disclosure\n",
        "Preferred-Languages: en, cy\n",
        "/.well-known/security.txt\n",
    ] {
        assert!(txt.contains(line), "{line:?} in {txt}");
    }
    let r = c.get("/security.txt").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers["location"], "/.well-known/security.txt");
    srv.stop().await;

    // Without a contact (and no alert addresses to fall back on) there is no file.
    let srv = TestServer::start(db).await;
    assert_eq!(srv.client().get("/.well-known/security.txt").await.status, StatusCode::NOT_FOUND);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_txt_is_served_sqlite() {
    served(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_txt_is_served_postgres() {
    served(Db::Postgres).await;
}

#[test]
fn bad_disclosure_settings_are_refused_by_config_check() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, says) in [
        ("PORTCULLIS_SECURITY_CONTACT", "security@example.net", "security_contact"),
        ("PORTCULLIS_SECURITY_POLICY_URL", "http://example.net/p", "security_policy_url"),
        ("PORTCULLIS_SECURITY_LANGUAGES", "en GB", "security_languages"),
        ("PORTCULLIS_SECURITY_TXT_EXPIRES", "next year", "security_txt_expires"),
    ] {
        let o = crate::support::portcullis(dir.path()).env(key, value).args(["config", "check"]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(&format!("`{says}`")), "{key}: {err}");
    }
    let o = crate::support::portcullis(dir.path())
        .env("PORTCULLIS_SECURITY_CONTACT", "mailto:a@example.net, https://example.net/r")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
