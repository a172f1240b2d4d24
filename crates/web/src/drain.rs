//! Draining: how a node leaves a pool without losing a request. On a shutdown signal the node
//! first *drains*: `/readyz` answers 503 so the load balancer stops sending it new requests, and
//! every HTTP/1.1 answer carries `Connection: close` so clients holding a kept-alive connection
//! open their next request elsewhere; requests that still arrive are served as usual. Only after
//! the drain period does the listener close and in-flight requests get their grace period.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this node is draining; shared by the server (which starts it) and the web layer.
#[derive(Clone, Debug, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    /// Start draining (it is never undone: a draining node is on its way out).
    pub fn start(&self) {
        if !self.0.swap(true, Ordering::SeqCst) {
            metrics::gauge!("portcullis_draining").set(1.0);
            tracing::info!("draining: readiness is off, connections close after their answer");
        }
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Mark answers `Connection: close` while draining. HTTP/2 has no such header (a client moves
/// when the server's GOAWAY arrives at shutdown), so only HTTP/1 answers get it.
pub async fn close_while_draining(State(d): State<Drain>, req: Request, next: Next) -> Response {
    let h1 = matches!(req.version(), Version::HTTP_10 | Version::HTTP_11);
    let mut res = next.run(req).await;
    if h1 && d.is_draining() {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}
