//! A real SMTP receiver for mail tests: Debian's aiosmtpd, run as a child process on a loopback
//! port, storing what it receives in a maildir the test reads. Python comes from
//! `PORTCULLIS_TEST_PYTHON` (`scripts/test` sets it; default `/usr/bin/python3`, the interpreter
//! Debian's `python3-aiosmtpd` is installed for).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable naming the Python interpreter that can import aiosmtpd.
pub const PYTHON_VAR: &str = "PORTCULLIS_TEST_PYTHON";

/// One received message.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The envelope recipients, as the receiver recorded them.
    pub rcpt_to: String,
    /// The whole message: headers and body.
    pub raw: String,
}

impl Mail {
    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\n\n").next().unwrap_or_default();
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }

    /// The body, after the blank line that ends the headers, decoded if it was sent
    /// quoted-printable (as mail with long lines is).
    pub fn body(&self) -> String {
        let body = self.raw.split_once("\n\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        match self.header("Content-Transfer-Encoding") {
            Some(e) if e.eq_ignore_ascii_case("quoted-printable") => decode_quoted_printable(&body),
            _ => body,
        }
    }
}

/// Undo quoted-printable (RFC 2045): `=` at a line end joins lines, `=XX` is a byte.
fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let mut bytes = joined.bytes();
    while let Some(b) = bytes.next() {
        if b != b'=' {
            out.push(b);
            continue;
        }
        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
        let byte = std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        out.push(byte.unwrap_or_else(|| panic!("bad quoted-printable escape ={}", String::from_utf8_lossy(&hex))));
    }
    String::from_utf8(out).expect("quoted-printable body is UTF-8")
}

/// An SMTP receiver on a loopback port. Made stopped, so a test can point a server at it and
/// start it later (mail then waits in the outbox); killed when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink").field("port", &self.port).field("running", &self.child.is_some()).finish()
    }
}

impl SmtpSink {
    /// A receiver on a free port, not yet listening.
    pub fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self { port, dir: tempfile::tempdir().expect("temp dir"), child: None }
    }

    /// A receiver that is listening.
    pub async fn started() -> Self {
        let mut s = Self::new();
        s.start().await;
        s
    }

    /// The URL a server sends to (plain SMTP, allowed because it is loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Start listening; returns once the port accepts connections (bounded).
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the SMTP sink is already running");
        let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| "/usr/bin/python3".into());
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting aiosmtpd with {python} failed ({e}); run the suite with ./scripts/test")
            });
        self.child = Some(child);
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("aiosmtpd ({python}) exited with {status}; is python3-aiosmtpd installed for it?");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not listen on port {} within 30 s", self.port);
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.maildir().join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        // Maildir names start with the delivery time in seconds, then a counter.
        files.sort();
        files
            .iter()
            .map(|p| {
                let raw = std::fs::read_to_string(p).unwrap().replace("\r\n", "\n");
                let rcpt_to = raw.lines().find_map(|l| l.strip_prefix("X-RcptTo: ")).unwrap_or_default().to_string();
                Mail { rcpt_to, raw }
            })
            .collect()
    }

    /// Wait (up to 30 s) until at least `n` messages have arrived, and return them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        crate::poll_until(
            || Some(self.messages()).filter(|got| got.len() >= n),
            || format!("expected {n} mail(s), the SMTP sink received: {:#?}", self.messages()),
        )
        .await
    }
}

impl Default for SmtpSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
