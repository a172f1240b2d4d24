//! Syslog over TLS (RFC 5425): RFC 5424 messages with octet-counting framing, each message
//! carrying the JSON line as its text so collectors get the same fields as local logs.
//!
//! Plain TCP or UDP syslog is not offered: log lines name users, tenants and addresses, which
//! the policy keeps encrypted in transit. Syslog has no acknowledgements, so a line written just
//! before the collector died can be lost in the socket; to narrow that window the connection is
//! checked for a close from the collector before every batch.

use super::record::{LogRecord, rfc3339};
use super::ship::{Collector, DeliveryError};
use anyhow::{Context, bail};
use rustls::pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::Level;

/// RFC 5425's port.
const DEFAULT_PORT: u16 = 6514;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Facilities a configuration may name, with their RFC 5424 codes.
const FACILITIES: &[(&str, u8)] = &[
    ("user", 1),
    ("daemon", 3),
    ("auth", 4),
    ("authpriv", 10),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The code of a facility name, or an error naming the choices.
pub fn facility(name: &str) -> anyhow::Result<u8> {
    FACILITIES.iter().find(|(n, _)| *n == name).map(|(_, code)| *code).with_context(|| {
        let names: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
        format!("key `syslog_facility`: {name:?} is not one of {}", names.join(", "))
    })
}

/// Where to connect, from `tls://HOST[:PORT]`.
pub fn parse_url(url: &str) -> anyhow::Result<(String, u16)> {
    let u = url::Url::parse(url).with_context(|| format!("key `syslog_url`: {url:?} is not a URL"))?;
    if u.scheme() != "tls" {
        bail!("key `syslog_url`: must be tls://HOST[:PORT] (syslog over TLS, RFC 5425); plain TCP and UDP are refused");
    }
    let host = u.host_str().filter(|h| !h.is_empty()).context("key `syslog_url`: no host")?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), u.port().unwrap_or(DEFAULT_PORT)))
}

/// A syslog collector reached over TLS.
pub struct Syslog {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: TlsConnector,
    facility: u8,
    hostname: String,
    conn: Option<TlsStream<TcpStream>>,
}

impl Syslog {
    /// Checks the URL and trust anchors now, so a mistake stops the start; connects later.
    pub fn new(url: &str, ca_file: Option<&Path>, facility_name: &str) -> anyhow::Result<Self> {
        let (host, port) = parse_url(url)?;
        let server_name = ServerName::try_from(host.clone())
            .with_context(|| format!("key `syslog_url`: {host:?} is not a host name or address"))?;
        Ok(Self {
            host,
            port,
            server_name,
            tls: TlsConnector::from(Arc::new(super::client_tls(ca_file, "syslog_ca_file")?)),
            facility: facility(facility_name)?,
            hostname: super::hostname(),
            conn: None,
        })
    }

    async fn connect(&self) -> Result<TlsStream<TcpStream>, String> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| "connecting timed out".to_string())?
            .map_err(|e| format!("connecting: {e}"))?;
        tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(self.server_name.clone(), tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake: {e}"))
    }

    /// One RFC 5424 message in octet-counting framing.
    fn frame(&self, r: &LogRecord, out: &mut Vec<u8>) {
        let msg = format!(
            "<{}>1 {} {} portcullis {} - - {}",
            u16::from(self.facility) * 8 + u16::from(severity(r.level)),
            rfc3339(r.at),
            self.hostname,
            std::process::id(),
            r.to_json()
        );
        out.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        out.extend_from_slice(msg.as_bytes());
    }
}

/// RFC 5424 severities.
fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Whether the collector has closed the connection (a syslog collector never sends data, so
/// anything readable means it is going away).
async fn closed(conn: &mut TlsStream<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    // A zero timeout polls the read once: ready only if the peer sent something or closed.
    tokio::time::timeout(Duration::ZERO, conn.read(&mut byte)).await.is_ok()
}

#[async_trait::async_trait]
impl Collector for Syslog {
    fn name(&self) -> &'static str {
        "syslog"
    }

    async fn deliver(&mut self, lines: &[Arc<LogRecord>]) -> Result<(), DeliveryError> {
        if let Some(conn) = self.conn.as_mut()
            && closed(conn).await
        {
            self.conn = None;
        }
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect().await.map_err(DeliveryError::Retry)?,
        };
        let mut bytes = Vec::with_capacity(lines.len() * 512);
        for r in lines {
            self.frame(r, &mut bytes);
        }
        let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
            conn.write_all(&bytes).await?;
            conn.flush().await
        })
        .await;
        match sent {
            Ok(Ok(())) => {
                self.conn = Some(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(DeliveryError::Retry(format!("sending: {e}"))),
            Err(_) => Err(DeliveryError::Retry("sending timed out".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_facilities_are_checked() {
        assert_eq!(parse_url("tls://logs.example.com").unwrap(), ("logs.example.com".into(), 6514));
        assert_eq!(parse_url("tls://127.0.0.1:7000").unwrap(), ("127.0.0.1".into(), 7000));
        assert_eq!(parse_url("tls://[::1]:7000").unwrap(), ("::1".into(), 7000));
        for bad in ["tcp://logs.example.com", "udp://x", "logs.example.com:514", "tls://"] {
            assert!(parse_url(bad).unwrap_err().to_string().contains("syslog_url"), "{bad}");
        }
        assert_eq!(facility("local0").unwrap(), 16);
        assert!(facility("kern").unwrap_err().to_string().contains("syslog_facility"));
    }

    #[test]
    fn frames_are_rfc5424_with_octet_counting() {
        let s = Syslog {
            host: "h".into(),
            port: 1,
            server_name: ServerName::try_from("h").unwrap(),
            tls: TlsConnector::from(Arc::new(super::super::client_tls(None, "k").unwrap())),
            facility: 16,
            hostname: "node-1".into(),
            conn: None,
        };
        let r = LogRecord {
            at: time::macros::datetime!(2026-11-25 10:00:00.5 UTC),
            level: Level::WARN,
            target: "t".into(),
            message: "héllo".into(),
            fields: Default::default(),
        };
        let mut out = Vec::new();
        s.frame(&r, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (len, msg) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        let pid = std::process::id();
        assert!(
            msg.starts_with(&format!("<132>1 2026-11-25T10:00:00.500000Z node-1 portcullis {pid} - - {{")),
            "{msg}"
        );
    }
}
