//! Sending mail over SMTP with lettre (rustls, no OpenSSL): the server's implementation of the
//! core's `Mailer` port. Mail must not cross a network unencrypted, so a plain `smtp://` URL is
//! accepted only for a relay on this machine (loopback); anything else needs `smtps://` (TLS
//! from the start) or `smtp://...?tls=required` (STARTTLS, refused if the server lacks it).

use crate::config::redact_url;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_core::error::{Error, Result};
use portcullis_core::ports::Mailer;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// How long one SMTP conversation may take (well inside the outbox's lease).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Check an SMTP URL without connecting: a scheme lettre knows, and TLS unless the relay is on
/// loopback. The error never repeats the URL's credentials.
pub fn check_url(url: &str) -> anyhow::Result<()> {
    let shown = redact_url(url);
    let u = url::Url::parse(url).map_err(|_| anyhow::anyhow!("key `smtp_url`: {shown} is not a URL"))?;
    let tls = u.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
    match (u.scheme(), tls.as_deref()) {
        ("smtps", None) | ("smtp", Some("required")) => {}
        ("smtp", None | Some("opportunistic")) => {
            if !is_loopback(&u) {
                anyhow::bail!(
                    "key `smtp_url`: {shown} would send mail unencrypted (or downgradable) over the network; \
                     use smtps://, or smtp://...?tls=required, or a relay on loopback"
                );
            }
        }
        _ => anyhow::bail!("key `smtp_url`: {shown} must be smtps://HOST[:PORT] or smtp://HOST[:PORT][?tls=required]"),
    }
    if u.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("key `smtp_url`: {shown} names no host");
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("key `smtp_url`: {shown} is not usable: {e}"))?;
    Ok(())
}

/// Is the URL's host this machine? (`smtp` is not a scheme the URL standard knows, so an IPv4
/// address arrives as an opaque host name and is parsed here.)
pub(crate) fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        }
        None => false,
    }
}

/// Parse the configured sender.
pub fn parse_from(from: &str) -> anyhow::Result<Mailbox> {
    from.parse::<Mailbox>().map_err(|e| {
        anyhow::anyhow!("key `mail_from`: {from:?} is not a mailbox like \"Portcullis <portal@firm.example>\": {e}")
    })
}

/// The SMTP mailer.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `url` (checked by [`check_url`]) sending as `from`. Connects lazily.
    pub fn new(url: &SecretString, from: &str) -> anyhow::Result<Self> {
        check_url(url.expose_secret())?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| anyhow::anyhow!("key `smtp_url`: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self { transport, from: parse_from(from)? })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        let to: Mailbox = to.parse().map_err(|e| Error::internal(format!("recipient is not a mailbox: {e}")))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| Error::internal(format!("building the message: {e}")))?;
        self.transport.send(msg).await.map_err(|e| Error::internal(format!("smtp: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_only_on_loopback() {
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost",
            "smtp://[::1]:25",
            "smtps://mail.example.com",
            "smtps://user:pw@mail.example.com:465",
            "smtp://mail.example.com:587?tls=required",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}: {:?}", check_url(ok));
        }
        for bad in [
            "smtp://mail.example.com",
            "smtp://u:hunter2@10.0.0.5:25",
            "smtp://mail.example.com?tls=opportunistic",
            "http://mail.example.com",
            "not a url",
        ] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(e.contains("smtp_url") && !e.contains("hunter2"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_sender_must_be_a_mailbox() {
        assert!(parse_from("Portcullis <portal@firm.example>").is_ok());
        assert!(parse_from("portal@firm.example").is_ok());
        let e = parse_from("not a mailbox").unwrap_err().to_string();
        assert!(e.contains("mail_from"), "{e}");
    }
}
