//! A real HTTP receiver for webhook tests: a small axum server on a loopback port over plain
//! HTTP (which Portcullis accepts for loopback only), recording every request it gets with its
//! headers, body and the status it answered. It can answer 503 to play a receiver that is down,
//! or be made without listening and started later (connections refused until then).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The status the receiver answered.
    pub status: u16,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the webhook body is JSON")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the receiver accepted it (answered 2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
}

/// A webhook receiver on a loopback port; stopped when dropped.
pub struct WebhookSink {
    pub port: u16,
    shared: Arc<Shared>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("port", &self.port).field("running", &self.server.is_some()).finish()
    }
}

impl WebhookSink {
    /// A receiver on a free port, not yet listening.
    pub fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let shared = Arc::new(Shared { received: Mutex::new(Vec::new()), status: AtomicU16::new(200) });
        Self { port, shared, server: None }
    }

    /// A receiver that is listening and answers 200.
    pub async fn started() -> Self {
        let mut s = Self::new();
        s.start().await;
        s
    }

    /// The URL to post to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Start listening (bounded wait for the port).
    pub async fn start(&mut self) {
        assert!(self.server.is_none(), "the webhook sink is already running");
        let mut listener = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.unwrap_or_else(|| panic!("could not listen on 127.0.0.1:{}", self.port));
        let app = axum::Router::new().fallback(record).with_state(self.shared.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Answer every later request with this status (503 plays a receiver that is down).
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Wait (up to 30 s) until at least `n` accepted requests match `what`; return those.
    pub async fn wait_for(&self, n: usize, what: impl Fn(&Received) -> bool) -> Vec<Received> {
        let matching = || self.received().into_iter().filter(|r| r.accepted() && what(r)).collect::<Vec<_>>();
        crate::poll_until(
            || Some(matching()).filter(|got| got.len() >= n),
            || {
                let all: Vec<_> = self.received().iter().map(|r| (r.status, r.text())).collect();
                format!("expected {n} matching webhook request(s), got {}; all received: {all:#?}", matching().len())
            },
        )
        .await
    }
}

impl Default for WebhookSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = shared.status.load(Ordering::SeqCst);
    shared.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        status,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
