//! A real syslog collector for the shipping tests, on loopback: TLS with its own certificate,
//! RFC 5425 octet-counted frames. It can be taken down and brought back on the same port, to
//! show that nothing logged while it was away is lost. (OTLP goes to [`crate::WebhookSink`], a
//! plain HTTP receiver.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;

/// A listener on `port` (0: any) that can be bound again at once after being dropped.
fn listen(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(([127, 0, 0, 1], port).into()).unwrap();
    socket.listen(64).unwrap()
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

    /// The first message containing `needle`, waiting (up to 30 s) for it.
    pub async fn wait_for(&self, needle: &str) -> String {
        crate::poll_until(
            || self.messages().into_iter().find(|m| m.contains(needle)),
            || format!("no syslog message contains {needle:?}"),
        )
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

/// Write `text` to a file only its owner can read (secret files for the server's settings).
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
