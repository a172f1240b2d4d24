//! Real log collectors for the shipping tests, on loopback: a syslog receiver over TLS (RFC 5425
//! octet-counted frames) and an HTTP receiver (OTLP and webhooks) that records every request.
//! Both can be taken down and brought back on the same port, to show that nothing logged while
//! they were away is lost.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;

/// How long the `wait_for` helpers wait before failing the test.
const WAIT: Duration = Duration::from_secs(30);

/// A listener on `port` (0: any) that can be bound again at once after being dropped.
fn listen(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(([127, 0, 0, 1], port).into()).unwrap();
    socket.listen(64).unwrap()
}

/// Poll `found` until it yields something, for at most [`WAIT`].
async fn wait_until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A syslog-over-TLS collector with its own certificate (trusted through [`SyslogSink::ca_file`]).
pub struct SyslogSink {
    port: u16,
    dir: tempfile::TempDir,
    tls: tokio_rustls::TlsAcceptor,
    messages: Arc<Mutex<Vec<String>>>,
    /// The accept loop and every connection; dropping them closes the sockets.
    tasks: Option<JoinSet<()>>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink").field("port", &self.port).finish_non_exhaustive()
    }
}

impl SyslogSink {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = portcullis::tls::ensure(dir.path(), None, None).unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(portcullis::tls::server_config(&files).unwrap());
        let mut sink = Self { port: 0, dir, tls, messages: Arc::default(), tasks: None };
        sink.up().await;
        sink
    }

    /// `tls://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// The collector's certificate, for `syslog_ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/cert.pem")
    }

    /// Accept connections again (on the same port after [`Self::down`]).
    pub async fn up(&mut self) {
        let listener = listen(self.port);
        self.port = listener.local_addr().unwrap().port();
        let (tls, messages) = (self.tls.clone(), self.messages.clone());
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, messages) = (tls.clone(), messages.clone());
                conns.spawn(async move {
                    if let Ok(stream) = tls.accept(tcp).await {
                        read_frames(stream, &messages).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Stop listening and drop every connection, as a collector that crashed.
    pub async fn down(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Every message received so far (the RFC 5424 text, without the length prefix).
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// The first message containing `needle`, waiting for it.
    pub async fn wait_for(&self, needle: &str) -> String {
        wait_until(&format!("a syslog message containing {needle:?}"), || {
            self.messages().into_iter().find(|m| m.contains(needle))
        })
        .await
    }
}

/// Read octet-counted frames (`LEN SP MSG`) until the peer goes away.
async fn read_frames(mut stream: impl tokio::io::AsyncRead + Unpin, messages: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(space) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..space]).unwrap().parse().expect("octet count");
            if buf.len() < space + 1 + len {
                break;
            }
            let msg = String::from_utf8(buf[space + 1..space + 1 + len].to_vec()).unwrap();
            messages.lock().unwrap().push(msg);
            buf.drain(..space + 1 + len);
        }
    }
}

/// One request an [`HttpSink`] received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A plain-HTTP receiver on loopback that records every request and answers with the status
/// set by [`HttpSink::answer`] (200 at first; a 503 plays a collector that is down). Requests
/// answered with an error are not recorded: they were refused.
#[derive(Debug)]
pub struct HttpSink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<Mutex<u16>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpSink {
    pub async fn start() -> Self {
        use axum::extract::State;
        type Shared = (Arc<Mutex<Vec<Received>>>, Arc<Mutex<u16>>);
        async fn record(
            State((received, status)): State<Shared>,
            req: axum::extract::Request,
        ) -> axum::http::StatusCode {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap().to_vec();
            let code = *status.lock().unwrap();
            if code < 300 {
                received.lock().unwrap().push(Received {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                        .collect(),
                    body,
                });
            }
            axum::http::StatusCode::from_u16(code).unwrap()
        }
        let (received, status): Shared = (Arc::default(), Arc::new(Mutex::new(200)));
        let app = axum::Router::new().fallback(record).with_state((received.clone(), status.clone()));
        let listener = listen(0);
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { port, received, status, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answer every later request with `status`.
    pub fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The first request for which `matches` holds, waiting for it.
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Received) -> bool) -> Received {
        wait_until(what, || self.received().into_iter().find(|r| matches(r))).await
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Write `text` to a file only its owner can read (secret files for the server's settings).
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
