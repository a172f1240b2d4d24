//! Caps on open connections: per server, and per peer address (the TCP peer: connections are
//! counted before any request, so forwarding headers play no part; trusted proxies are exempt
//! from the per-address cap, since every client behind them shares their address). A
//! connection past a cap is closed at once, before the TLS handshake, and counted in
//! `portcullis_connections_refused_total{cap}`.
//!
//! Each connection is also closed once it has moved no bytes either way for the idle timeout:
//! HTTP/2 has no header-read timeout, so without this an idle (or deliberately silent)
//! connection held its slot for ever. Counted in `portcullis_connections_idle_closed_total`.

use axum_server::accept::Accept;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The caps and the live counts.
#[derive(Debug)]
struct Counts {
    max_total: usize,
    max_per_ip: usize,
    trusted: Vec<ipnet::IpNet>,
    idle: Duration,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Counts {
    /// Take a slot for the peer `ip`, counted under its source (its /64 for IPv6), or name the
    /// cap that is full.
    fn take(&self, ip: IpAddr) -> Result<(), &'static str> {
        let mut open = self.open.lock().map_err(|_| "server")?;
        if open.0 >= self.max_total {
            return Err("server");
        }
        let exempt = self.trusted.iter().any(|n| n.contains(&ip));
        let ip = portcullis_core::net::source(ip);
        let mine = open.1.get(&ip).copied().unwrap_or(0);
        if !exempt && mine >= self.max_per_ip {
            return Err("ip");
        }
        open.0 += 1;
        open.1.insert(ip, mine + 1);
        Ok(())
    }

    fn give_back(&self, ip: IpAddr) {
        if let Ok(mut open) = self.open.lock() {
            open.0 = open.0.saturating_sub(1);
            match open.1.get(&ip).copied() {
                Some(n) if n > 1 => {
                    open.1.insert(ip, n - 1);
                }
                _ => {
                    open.1.remove(&ip);
                }
            }
        }
    }
}

/// An acceptor (under the TLS one) that enforces the caps.
#[derive(Clone, Debug)]
pub struct CapAcceptor(Arc<Counts>);

impl CapAcceptor {
    pub fn new(max_total: usize, max_per_ip: usize, trusted: Vec<ipnet::IpNet>, idle: Duration) -> Self {
        Self(Arc::new(Counts { max_total, max_per_ip, trusted, idle, open: Mutex::new((0, HashMap::new())) }))
    }
}

/// A connection that holds its slot until it is dropped, and ends after the idle timeout
/// without a byte either way.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    /// The source the slot is counted under.
    ip: IpAddr,
    counts: Arc<Counts>,
    /// When the connection counts as idle, pushed back by every byte read or written.
    idle_at: Pin<Box<Sleep>>,
}

impl Counted {
    /// Pass on what the stream did: progress pushes the deadline back; a wait past the deadline
    /// becomes a timeout error, which ends the connection.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        moved: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(Ok(v)) => {
                if moved(&v) {
                    let at = Instant::now() + self.counts.idle;
                    self.idle_at.as_mut().reset(at);
                }
                Poll::Ready(Ok(v))
            }
            Poll::Pending if self.idle_at.as_mut().poll(cx).is_ready() => {
                metrics::counter!("portcullis_connections_idle_closed_total").increment(1);
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle")))
            }
            other => other,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counts.give_back(self.ip);
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let grew = buf.filled().len() > before;
        self.watch(cx, polled, |_| grew)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled, |n| *n > 0)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled, |n| *n > 0)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl<S> Accept<TcpStream, S> for CapAcceptor {
    type Stream = Counted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let result = stream.peer_addr().and_then(|peer| {
            let ip = match peer.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
                v4 => v4,
            };
            match self.0.take(ip) {
                Ok(()) => {
                    let idle_at = Box::pin(tokio::time::sleep(self.0.idle));
                    let ip = portcullis_core::net::source(ip);
                    Ok((Counted { stream, ip, counts: self.0.clone(), idle_at }, service))
                }
                Err(cap) => {
                    metrics::counter!("portcullis_connections_refused_total", "cap" => cap).increment(1);
                    Err(io::Error::other("connection cap reached"))
                }
            }
        });
        std::future::ready(result)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let c = CapAcceptor::new(3, 2, vec!["10.0.0.0/8".parse().unwrap()], Duration::from_secs(60)).0;
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let p: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(c.take(a).is_ok() && c.take(a).is_ok());
        assert_eq!(c.take(a), Err("ip"));
        assert!(c.take(p).is_ok(), "a trusted proxy is exempt from the per-address cap");
        assert_eq!(c.take(p), Err("server"));
        c.give_back(a);
        assert!(c.take(a).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_cap() {
        let c = CapAcceptor::new(10, 2, vec![], Duration::from_secs(60)).0;
        let (x, y, z): (IpAddr, IpAddr, IpAddr) = (
            "2001:db8:1:2::1".parse().unwrap(),
            "2001:db8:1:2::beef".parse().unwrap(),
            "2001:db8:1:3::1".parse().unwrap(),
        );
        assert!(c.take(x).is_ok() && c.take(y).is_ok());
        assert_eq!(c.take("2001:db8:1:2:ffff::9".parse().unwrap()), Err("ip"), "a third address of the same /64");
        assert!(c.take(z).is_ok(), "another /64 has its own cap");
        c.give_back(portcullis_core::net::source(x));
        assert!(c.take(y).is_ok());
    }
}
