//! Input normalisation and validation shared by every entry point (API, UI, CLI), so the same
//! input is accepted or refused the same way everywhere.

use crate::error::{Error, Result};

/// Normalise an email address: trimmed and lowercased, one `@`, no spaces or control characters.
pub fn email(raw: &str) -> Result<String> {
    let e = raw.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split('@').count() == 2
        && e.split('@').all(|part| !part.is_empty())
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(e) } else { Err(Error::invalid("email", "must be an email address such as name@example.com")) }
}

/// A tenant's sign-in name: 2 to 63 lowercase letters, digits or dashes, starting with a letter or digit.
pub fn tenant_name(raw: &str) -> Result<String> {
    let n = raw.trim().to_lowercase();
    let ok = (2..=63).contains(&n.len())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-');
    if ok {
        Ok(n)
    } else {
        Err(Error::invalid("tenant", "must be 2 to 63 lowercase letters, digits or dashes, not starting with a dash"))
    }
}

/// A one-line text field (title, reference, name): trimmed, non-empty, at most `max` characters,
/// no control characters.
pub fn line(field: &'static str, raw: &str, max: usize) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(s.to_string())
}

/// A multi-line text (a message body): like [`line`] but newlines and tabs are allowed.
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(s.to_string())
}

/// A document's file name: the last path component only, 1 to 255 bytes, not `.` or `..`, no
/// control characters, and not ending in an executable, script, markup or macro-enabled
/// extension (the download would be run or rendered by that name, whatever the content; see
/// [`crate::inspect::refused_extension`]). Stored for display; never used as a path.
pub fn file_name(raw: &str) -> Result<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw).trim();
    if last.is_empty() || last == "." || last == ".." {
        return Err(Error::invalid("name", "must be a file name such as passport.pdf"));
    }
    if last.len() > 255 {
        return Err(Error::invalid("name", "must be at most 255 bytes"));
    }
    if last.chars().any(|c| c.is_control() || is_invisible_format(c)) {
        return Err(Error::invalid("name", "must not contain control or invisible formatting characters"));
    }
    if let Some(ext) = crate::inspect::refused_extension(last) {
        return Err(Error::invalid(
            "name",
            format!(
                "must not end in .{ext}: executable, script, web page and macro-enabled files are never accepted \
                 (send a PDF, an image, a DOCX/XLSX/PPTX or OpenDocument file, or plain text)"
            ),
        ));
    }
    Ok(last.to_string())
}

/// Bidirectional overrides and zero-width characters can make `invoice\u{202E}fdp.exe` look like
/// a PDF; they have no place in a file name.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Decode `<marker><two hex digits>` escapes (`%41` in a form body, `#41` in a PDF name); a
/// marker not followed by two hex digits stays as it is.
pub fn hex_escapes(bytes: &[u8], marker: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) if b == marker => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Content types a download may be labelled with; anything else is served as
/// `application/octet-stream`. (Downloads are attachments with `nosniff` and a sandbox CSP in any
/// case; this keeps an uploader from labelling a file as HTML or SVG at all.)
const SERVABLE_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/tiff",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
];

/// A content type as declared by the uploader, kept only if it is one of [`SERVABLE_TYPES`]
/// (parameters dropped); anything else becomes `application/octet-stream`.
pub fn content_type(raw: Option<&str>) -> String {
    let essence = raw.unwrap_or("").split(';').next().unwrap_or("").trim().to_lowercase();
    if SERVABLE_TYPES.contains(&essence.as_str()) { essence } else { "application/octet-stream".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "a", "a@", "@b", "a@b@c", "a b@c", "a\u{0}@b"] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tenant_names() {
        assert_eq!(tenant_name("Smith-Law").unwrap(), "smith-law");
        for bad in ["a", "-x", "a b", "ünï", &"x".repeat(64)] {
            assert!(tenant_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_lose_paths() {
        assert_eq!(file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(file_name("C:\\x\\id.pdf").unwrap(), "id.pdf");
        assert!(file_name("..").is_err());
        assert!(file_name("a\nb").is_err());
        assert!(file_name("invoice\u{202E}fdp.exe").is_err());
        for bad in ["x.exe", "x.EXE.", "x.exe ", "run.vbs", "a.js", "page.HTM", "m.docm", "s.ps1", "go.bat", "x.svg"] {
            let e = file_name(bad).unwrap_err().to_string();
            assert!(e.contains("must not end in ."), "{bad:?}: {e}");
        }
        assert_eq!(file_name("report.exe.pdf").unwrap(), "report.exe.pdf");
        assert_eq!(file_name("notes").unwrap(), "notes");
    }

    #[test]
    fn hex_escapes_decode_only_whole_escapes() {
        assert_eq!(hex_escapes(b"J#61va#4", b'#'), b"Java#4");
        assert_eq!(hex_escapes(b"a%20b%zz", b'%'), b"a b%zz");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Some("Application/PDF; charset=x")), "application/pdf");
        assert_eq!(content_type(Some("text/html<script>")), "application/octet-stream");
        assert_eq!(content_type(Some("text/html")), "application/octet-stream");
        assert_eq!(content_type(Some("image/svg+xml")), "application/octet-stream");
        assert_eq!(content_type(None), "application/octet-stream");
    }

    #[test]
    fn lines_and_texts() {
        assert!(line("title", "  ", 10).is_err());
        assert!(line("title", "abc\n", 10).is_ok());
        assert!(line("title", "a\nb", 10).is_err());
        assert!(text("body", "a\nb", 10).is_ok());
        assert!(line("title", &"x".repeat(11), 10).is_err());
    }
}
