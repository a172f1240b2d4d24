//! Signatures of outgoing webhooks (alerts and heartbeats): HMAC-SHA256 (aws-lc-rs) under a
//! secret shared with the receiver, over the time of sending and the exact body bytes, sent as
//!
//! ```text
//! X-Portcullis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." || body)>
//! ```
//!
//! A receiver recomputes the HMAC over the body bytes as received (before any JSON parsing),
//! compares it in constant time, and refuses a `t` too far from its own clock, so a captured
//! request cannot be replayed later. Each alert body also carries a delivery id, so a receiver
//! can drop the duplicates that at-least-once delivery may bring.

use aws_lc_rs::hmac;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Portcullis-Signature";

/// How far (seconds) the signing time may be from a receiver's clock in [`verify`].
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Signs webhook bodies with the shared secret. The key never shows in debug output.
pub struct WebhookSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSigner(<redacted>)")
    }
}

impl WebhookSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// The header value for `body` sent at `t` (Unix seconds).
    pub fn header(&self, t: i64, body: &[u8]) -> String {
        format!("t={t},v1={}", hex::encode(hmac::sign(&self.key, &signed_bytes(t, body)).as_ref()))
    }
}

/// What is signed: the decimal time, a dot, the body.
fn signed_bytes(t: i64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{t}.").into_bytes();
    m.extend_from_slice(body);
    m
}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The header is not `t=<digits>,v1=<hex>`.
    Malformed,
    /// Signed too long ago or too far ahead: a replay, or a clock far off.
    Stale,
    /// The HMAC does not match: another secret, or a changed body or time.
    Mismatch,
}

/// Check a signature header as a receiver does: well-formed, signed within `tolerance_secs` of
/// `now` (Unix seconds), and the HMAC over `t` and `body` matching in constant time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> Result<(), Refusal> {
    let mut t = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = v.parse::<i64>().ok(),
            Some(("v1", v)) if sig.is_none() => sig = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(sig)) = (t, sig) else { return Err(Refusal::Malformed) };
    if now.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return Err(Refusal::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_bytes(t, body), &sig).map_err(|_| Refusal::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_verifies_with_its_secret_and_body_only() {
        let body = br#"{"type":"alert"}"#;
        let h = WebhookSigner::new(SECRET).header(1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1=") && h.len() == "t=1700000000,v1=".len() + 64, "{h}");
        assert_eq!(verify(SECRET, &h, body, 1_700_000_010, 300), Ok(()));
        assert_eq!(verify(b"another secret entirely, 32 byte", &h, body, 1_700_000_010, 300), Err(Refusal::Mismatch));
        assert_eq!(verify(SECRET, &h, br#"{"type":"alerT"}"#, 1_700_000_010, 300), Err(Refusal::Mismatch));
        // The time is signed: moving it breaks the signature; an old one is a replay.
        let moved = h.replace("t=1700000000", "t=1700000005");
        assert_eq!(verify(SECRET, &moved, body, 1_700_000_010, 300), Err(Refusal::Mismatch));
        assert_eq!(verify(SECRET, &h, body, 1_700_000_301, 300), Err(Refusal::Stale));
        assert_eq!(verify(SECRET, &h, body, 1_699_999_699, 300), Err(Refusal::Stale));
        for bad in ["", "t=1,v1=zz", "v1=00", "t=x,v1=00"] {
            assert_eq!(verify(SECRET, bad, body, 1, 300), Err(Refusal::Malformed), "{bad}");
        }
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        assert_eq!(format!("{:?}", WebhookSigner::new(SECRET)), "WebhookSigner(<redacted>)");
    }
}
