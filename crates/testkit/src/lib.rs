//! Test support: a real Portcullis server on a free loopback port over HTTPS, on SQLite or on a
//! fresh PostgreSQL database, a clock tests can move, and a typed client that talks to it the way
//! a browser or an API client does.
#![forbid(unsafe_code)]
// Test support: a failed set-up step must stop the test at once with its reason, so panicking
// is this crate's error handling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod client;
mod collectors;
mod passkey;
mod s3;
mod smtp;
mod webhook;

pub use client::{Client, Resp, totp_code};
pub use collectors::{SyslogSink, secret_file};
pub use passkey::SoftPasskey;
pub use s3::{BUCKET, S3S_FS_VAR, S3Server};
pub use smtp::{Mail, PYTHON_VAR, SmtpSink};
pub use webhook::{Received, WebhookSink};

use portcullis::config::Config;
use portcullis::server::{self, Running};
use portcullis_core::clock::ManualClock;
use portcullis_core::ids::TenantId;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

/// Call `check` every 100 ms until it gives a value, for at most 30 s; then fail the test with
/// what `failure` says.
pub(crate) async fn poll_until<T>(mut check: impl FnMut() -> Option<T>, failure: impl Fn() -> String) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("after 30 s: {}", failure());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which database a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The environment variable holding an admin URL of the test PostgreSQL server.
pub const PG_URL_VAR: &str = "PORTCULLIS_TEST_PG_URL";

/// A password that satisfies the password rules.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server and what a test needs to reach it.
pub struct TestServer {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub cert_pem: Vec<u8>,
    pub db: Db,
    pub dir: tempfile::TempDir,
    pub setup_link: Option<String>,
    db_url: SecretString,
    running: Option<Running>,
    pg: Option<(String, String)>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("base", &self.base).field("db", &self.db).finish()
    }
}

/// An empty PostgreSQL database of its own, for a test that runs the server as a process.
#[derive(Debug)]
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let (admin, name, url) = fresh_pg_database().await;
        Self { url, admin, name }
    }

    pub async fn drop_database(self) {
        drop_pg_database(&self.admin, &self.name).await;
    }
}

async fn drop_pg_database(admin: &str, name: &str) {
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await;
    }
}

/// Make an empty PostgreSQL database for one test server; returns (admin URL, database name, URL).
async fn fresh_pg_database() -> (String, String, String) {
    let admin = std::env::var(PG_URL_VAR)
        .unwrap_or_else(|_| panic!("{PG_URL_VAR} is not set: run the suite with ./scripts/test"));
    let name = format!("pc_{}", uuid::Uuid::new_v4().simple());
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect("connect to the test PostgreSQL server");
    // The name is generated above from hex digits only.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&admin).expect("PostgreSQL URL");
    url.set_path(&name);
    (admin, name, url.to_string())
}

impl TestServer {
    /// Start a server with default settings.
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, |_| {}).await
    }

    /// Start a server, adjusting its configuration first.
    pub async fn start_with(db: Db, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Rate limits count real time while tests move a manual clock and replay many requests
        // from one address: they are off unless a test turns them on (the throttling tests do).
        let mut cfg = Config {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            rate_limit_ip_per_minute: 0,
            rate_limit_account_per_minute: 0,
            rate_limit_tenant_per_minute: 0,
            rate_limit_sign_in_per_minute: 0,
            ..Config::default()
        };
        let mut pg = None;
        if db == Db::Postgres {
            let (admin, name, url) = fresh_pg_database().await;
            cfg.database_url = Some(SecretString::from(url));
            pg = Some((admin, name));
        }
        adjust(&mut cfg);
        let clock = Arc::new(ManualClock::new());
        let db_url = cfg.database_url();
        let running = server::start(&cfg, clock.clone()).await.expect("server starts");
        let cert_pem = std::fs::read(&running.tls.cert).expect("read the server certificate");
        Self {
            base: format!("https://{}", running.addr),
            clock,
            cert_pem,
            db,
            dir,
            setup_link: running.setup_link.clone(),
            db_url,
            running: Some(running),
            pg,
        }
    }

    /// Another node of this server's deployment: the same database, master key and audit
    /// signing key; its own port, TLS certificate, clock and background jobs. `adjust` sees the
    /// configuration after those are set (documents, for one, are the test's to share).
    pub async fn another_node(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        let (db_url, dir) = (self.db_url.clone(), self.dir.path().to_path_buf());
        Self::start_with(self.db, move |cfg| {
            cfg.database_url = Some(db_url);
            cfg.master_key_file = Some(dir.join("master.key"));
            cfg.audit_signing_key_file = Some(dir.join("audit-signing.key"));
            adjust(cfg);
        })
        .await
    }

    /// The database URL the server uses (for tests that inspect or tamper with storage).
    pub fn db_url(&self) -> String {
        use secrecy::ExposeSecret;
        self.db_url.expose_secret().to_string()
    }

    /// The running server's portal, for arranging fixtures the way the CLI does.
    pub fn portal(&self) -> &portcullis_core::service::Portal {
        &self.running.as_ref().expect("server is running").portal
    }

    /// The origin browsers use for passkeys on this server: WebAuthn needs a host name, and
    /// the server (on a loopback address) is its own relying party as `localhost`.
    pub fn passkey_origin(&self) -> String {
        self.base.replace("127.0.0.1", "localhost")
    }

    /// A client that trusts only this server's certificate and keeps cookies.
    pub fn client(&self) -> Client {
        Client::new(&self.base, &self.cert_pem)
    }

    /// Create a tenant with an owner whose password is [`PASSWORD`].
    pub async fn tenant(&self, name: &str) -> (TenantId, String) {
        let email = format!("owner@{name}.example");
        let (id, _) =
            self.portal().create_tenant(name, &email, Some(SecretString::from(PASSWORD))).await.expect("create tenant");
        (id, email)
    }

    /// Create a user with a password in a tenant, as its owner would.
    pub async fn user(&self, tenant: TenantId, email: &str, role: &str) {
        let p = portcullis_core::service::cli_principal(tenant);
        self.portal()
            .create_user(&p, email, "", role, Some(SecretString::from(PASSWORD)), &Default::default())
            .await
            .expect("create user");
    }

    /// Create a second owner of `tenant` with a password. Owners are made only with their
    /// tenant or by another owner's approved request (which a firm with one owner cannot get), so
    /// the user is created as an admin and the role is then written straight into the database.
    pub async fn second_owner(&self, tenant: TenantId, email: &str) {
        use sqlx::Connection;
        self.user(tenant, email, "admin").await;
        let p = portcullis_core::service::cli_principal(tenant);
        let users = self.portal().list_users(&p).await.expect("list users");
        let user = users.iter().find(|u| u.email == email).unwrap_or_else(|| panic!("no user {email}"));
        let (tenant, id) = (tenant.to_string(), user.id.to_string());
        const Q: &str = "UPDATE users SET role = 'owner' WHERE tenant_id = $1 AND id = $2";
        let url = self.db_url();
        let n = if self.db == Db::Postgres {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect to the test database");
            sqlx::query(Q).bind(&tenant).bind(&id).execute(&mut c).await.expect("set the role").rows_affected()
        } else {
            let mut c = sqlx::SqliteConnection::connect(&url).await.expect("connect to the test database");
            sqlx::query(Q).bind(&tenant).bind(&id).execute(&mut c).await.expect("set the role").rows_affected()
        };
        assert_eq!(n, 1, "{email} made an owner");
    }

    /// Stop the server gracefully and drop its PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(Duration::from_secs(5)).await.expect("clean shutdown");
        }
        if let Some((admin, name)) = self.pg.take() {
            drop_pg_database(&admin, &name).await;
        }
    }
}
