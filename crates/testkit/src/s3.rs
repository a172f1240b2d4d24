//! A real S3-compatible server for document-store tests: `s3s-fs` (it checks SigV4 signatures
//! and keeps each object as a file under its root), run as a child process on a loopback port.
//! The binary comes from `PORTCULLIS_TEST_S3S_FS` (`scripts/test` installs it and sets it).

use portcullis::config::Config;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable naming the `s3s-fs` binary.
pub const S3S_FS_VAR: &str = "PORTCULLIS_TEST_S3S_FS";

/// The bucket every test server's documents go to (under a prefix of the test's own).
pub const BUCKET: &str = "portcullis-test";

const ACCESS_KEY: &str = "portcullis-test-access";

/// An S3 server on a loopback port with one bucket; killed when dropped.
pub struct S3Server {
    pub port: u16,
    dir: tempfile::TempDir,
    secret_file: PathBuf,
    child: Child,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server").field("port", &self.port).finish()
    }
}

impl S3Server {
    /// Start a server; returns once it accepts connections (bounded).
    pub async fn start() -> Self {
        let bin = std::env::var(S3S_FS_VAR)
            .unwrap_or_else(|_| panic!("{S3S_FS_VAR} is not set: run the suite with ./scripts/test"));
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        // s3s-fs keeps a bucket as a directory of its root.
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let secret_file = crate::secret_file(dir.path(), "s3-secret", &secret);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", &secret])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin} failed ({e}); run the suite with ./scripts/test"));
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { port, dir, secret_file, child };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{bin} exited with {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("s3s-fs did not listen on port {port} within 30 s");
    }

    /// Point `cfg`'s documents at this server, under `prefix`.
    pub fn configure(&self, cfg: &mut Config, prefix: &str) {
        cfg.document_store = Some(format!("s3://{BUCKET}/{prefix}"));
        cfg.s3_endpoint = Some(format!("http://127.0.0.1:{}", self.port));
        cfg.s3_access_key_id = Some(ACCESS_KEY.into());
        cfg.s3_secret_access_key_file = Some(self.secret_file.clone());
    }

    /// The same settings as environment variables, for a `portcullis` command.
    pub fn env(&self, cmd: &mut Command, prefix: &str) {
        cmd.env("PORTCULLIS_DOCUMENT_STORE", format!("s3://{BUCKET}/{prefix}"))
            .env("PORTCULLIS_S3_ENDPOINT", format!("http://127.0.0.1:{}", self.port))
            .env("PORTCULLIS_S3_ACCESS_KEY_ID", ACCESS_KEY)
            .env("PORTCULLIS_S3_SECRET_ACCESS_KEY_FILE", &self.secret_file);
    }

    /// Where the server keeps the objects under `prefix` of the bucket, as files.
    pub fn objects(&self, prefix: &str) -> PathBuf {
        self.dir.path().join("root").join(BUCKET).join(prefix)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
