//! Helpers shared by the tests that run processes: free ports, children that die with the test,
//! and the `portcullis` command pointed at a data directory.

use std::path::Path;
use std::process::{Child, Command};

/// A free loopback port (bound and released; good enough for a test's child process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `portcullis` binary with its data in `dir` and no outside configuration.
pub fn portcullis(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.env("PORTCULLIS_DATA", dir)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_LISTEN");
    c
}

/// Wait, bounded, until something accepts connections on the port.
pub async fn wait_for_port(port: u16) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Start `portcullis serve` from `cmd` on a port the server picks itself (no race with other
/// tests for a "free" port), and return it once the server says it is serving. The server's
/// standard output keeps being drained, so its later messages never hit a closed pipe.
pub async fn serve(mut cmd: Command) -> (KillOnDrop, u16) {
    use std::io::BufRead;
    cmd.arg("serve").env("PORTCULLIS_LISTEN", "127.0.0.1:0").stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = KillOnDrop(child);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line
                .strip_prefix("Portcullis is serving https://127.0.0.1:")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(p) = port
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(p);
            }
        }
    });
    let port = tokio::time::timeout(std::time::Duration::from_secs(30), rx)
        .await
        .expect("portcullis serve did not report its address in time")
        .expect("portcullis serve exited before serving");
    (guard, port)
}

/// Create tenant `acme` with owner `o@acme.example` and the test password, through the command
/// line (`cmd` is `portcullis` configured for the data directory `dir` and database).
pub fn create_acme(mut cmd: Command, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let pw = dir.join("owner-password");
    std::fs::write(&pw, portcullis_testkit::PASSWORD).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = cmd
        .args(["tenant", "create", "--name", "acme", "--owner-email", "o@acme.example", "--owner-password-file"])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(o.status.success(), "tenant create failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// Run one statement directly on a test database (SQLite or PostgreSQL), as an attacker with
/// write access to the database would.
pub async fn sql(url: &str, statement: &'static str, binds: &[&str]) {
    use sqlx::Connection;
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(url).await.unwrap();
            let mut q = sqlx::query(statement);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(&mut c).await.unwrap();
        }};
    }
    if url.starts_with("postgres") { on!(sqlx::PgConnection) } else { on!(sqlx::SqliteConnection) }
}

/// The first column of every row a query returns, as text, read directly from a test database.
pub async fn sql_column(url: &str, query: &'static str) -> Vec<String> {
    use sqlx::Connection;
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(url).await.unwrap();
            sqlx::query_scalar::<_, String>(query).fetch_all(&mut c).await.unwrap()
        }};
    }
    if url.starts_with("postgres") { on!(sqlx::PgConnection) } else { on!(sqlx::SqliteConnection) }
}

/// A raw TLS connection to a test server from the loopback address `from`, for requests a
/// normal client would tidy up (odd paths, bad headers) or send too slowly on purpose.
pub async fn raw_tls(
    srv: &portcullis_testkit::TestServer,
    from: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    try_raw_tls(srv, from).await.unwrap()
}

/// [`raw_tls`], failing with the connection or handshake error.
pub async fn try_raw_tls(
    srv: &portcullis_testkit::TestServer,
    from: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    // HTTP/1.1, so requests go on the wire exactly as written.
    try_raw_tls_speaking(srv, from, b"http/1.1").await
}

/// [`try_raw_tls`] offering the protocol `alpn` (`h2` for HTTP/2).
pub async fn try_raw_tls_speaking(
    srv: &portcullis_testkit::TestServer,
    from: &str,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&srv.cert_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let addr: std::net::SocketAddr = srv.base.trim_start_matches("https://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    let tcp = socket.connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// Send `request` (a whole HTTP/1.1 request, ending the connection after it) and read the
/// status line and the rest of the answer.
pub async fn raw_request(srv: &portcullis_testkit::TestServer, from: &str, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = raw_tls(srv, from).await;
    s.write_all(request).await.unwrap();
    s.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Wait (up to 60 s, checking every 100 ms) until `done` holds; fail naming `what` otherwise.
pub async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "waited a minute for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A client of a second privileged operator (vetted, with a fresh token), made for a four-eyes
/// approval; each call makes a new one.
pub async fn second_operator(srv: &portcullis_testkit::TestServer) -> portcullis_testkit::Client {
    use portcullis_core::clock::Clock;
    use secrecy::ExposeSecret;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let email = format!("second-{n}@platform.example");
    let (portal, now) = (srv.portal(), srv.clock.now());
    portal.add_operator(&email, "Second operator").await.unwrap();
    let (checked, until) = (now - time::Duration::days(1), now + time::Duration::days(9000));
    portal.record_vetting(&email, "Vetting Agency", checked, until).await.unwrap();
    portal.grant_operator_role(&email, "privileged").await.unwrap();
    let token = portal.operator_token(&email, 30).await.unwrap().expose_secret().to_string();
    srv.client().with_bearer(&token)
}

/// End `name`'s subscription through four eyes: `requester` (a privileged operator) asks, and a
/// second privileged operator approves, which ends it. Returns the approval as answered.
pub async fn end_subscription(
    srv: &portcullis_testkit::TestServer,
    requester: &portcullis_testkit::Client,
    name: &str,
) -> serde_json::Value {
    use reqwest::StatusCode;
    let r = requester.post(&format!("/api/v1/platform/tenants/{name}/end"), serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "a request to end {name}: {}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let second = second_operator(srv).await;
    let r = second.post(&format!("/api/v1/platform/approvals/{id}/approve"), serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "the second operator's approval: {}", r.text());
    assert_eq!(r.json()["state"], "approved", "{}", r.text());
    r.json()
}
