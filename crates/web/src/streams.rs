//! Document bytes in and out of HTTP, shared by the API and the UI: request bodies become the
//! core's byte streams (with an idle timeout), downloads become responses (with ranges).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use portcullis_core::ports::ByteStream;
use portcullis_core::service::{ByteRange, Download};
use std::time::Duration;

/// What an upload must deliver in each `upload_idle_timeout`: a sender trickling a byte now and
/// then would otherwise hold a request slot (and its connection) for as long as it liked. 16 KiB
/// a minute is about 270 bytes a second, far below any working connection.
pub const MIN_UPLOAD_BYTES_PER_WINDOW: usize = 16 * 1024;

/// Turn a body stream into a core byte stream that fails if the sender delivers less than
/// [`MIN_UPLOAD_BYTES_PER_WINDOW`] in any `window` (going quiet altogether included).
pub fn idle_limited<S, E>(s: S, window: Duration) -> ByteStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let start = (s, tokio::time::Instant::now() + window, 0usize);
    Box::pin(futures::stream::unfold(Some(start), move |state| async move {
        let (mut s, deadline, got) = state?;
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(Ok(b))) => {
                let got = got + b.len();
                // Enough for this window: the next one starts now.
                let next = if got >= MIN_UPLOAD_BYTES_PER_WINDOW {
                    (tokio::time::Instant::now() + window, 0)
                } else {
                    (deadline, got)
                };
                Some((Ok(b), Some((s, next.0, next.1))))
            }
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(format!("reading the upload: {e}"))), None)),
            Ok(None) => None,
            Err(_) => {
                Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "upload stalled or too slow")), None))
            }
        }
    }))
}

/// Parse a `Range` header. Only one `bytes=` range is honoured; anything else (several ranges,
/// other units, garbage) is ignored and the whole document is sent, as RFC 9110 allows.
pub fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let v = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = v.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => b.parse().ok().map(ByteRange::Suffix),
        (false, true) => a.parse().ok().map(ByteRange::From),
        // A reversed range is invalid and, per RFC 9110, ignored: the whole document is sent.
        (false, false) => {
            Some((a.parse().ok()?, b.parse().ok()?)).filter(|(a, b)| a <= b).map(|(a, b)| ByteRange::FromTo(a, b))
        }
        (true, true) => None,
    }
}

/// RFC 5987/6266 `filename*` value: percent-encode everything but unreserved characters.
fn disposition(name: &str) -> String {
    let mut enc = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename*=UTF-8''{enc}")
}

/// A download as an HTTP response: always an attachment, never rendered by the browser.
pub fn download_response(d: Download) -> Response {
    let size = d.document.size;
    let (status, len) = match &d.range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, size),
    };
    let mut resp = (status, Body::from_stream(d.body)).into_response();
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, d.document.content_type.clone());
    set(header::CONTENT_LENGTH, len.to_string());
    // The name agrees with the stored type and is never executable, whatever was stored earlier.
    let name = portcullis_core::inspect::download_name(&d.document.name, &d.document.content_type);
    set(header::CONTENT_DISPOSITION, disposition(&name));
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'".into());
    set(header::ETAG, format!("\"{}\"", d.document.sha256));
    if let Some(r) = &d.range {
        set(header::CONTENT_RANGE, format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), size));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(&h("bytes=0-99")), Some(ByteRange::FromTo(0, 99)));
        assert_eq!(parse_range(&h("bytes=100-")), Some(ByteRange::From(100)));
        assert_eq!(parse_range(&h("bytes=-5")), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range(&h("bytes=0-1,5-6")), None);
        assert_eq!(parse_range(&h("items=0-1")), None);
        assert_eq!(parse_range(&h("bytes=x-1")), None);
        assert_eq!(parse_range(&h("bytes=5-3")), None);
        assert_eq!(parse_range(&HeaderMap::new()), None);
    }

    #[test]
    fn dispositions_are_encoded() {
        assert_eq!(disposition("a b\".pdf"), "attachment; filename*=UTF-8''a%20b%22.pdf");
    }
}
