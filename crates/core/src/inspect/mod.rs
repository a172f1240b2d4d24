//! What an upload really is, and what text it carries, found as its bytes stream past.
//!
//! The type comes from the content, never from the name or the declared `Content-Type`: the
//! first [`PREFIX`] bytes go to `infer` (magic numbers); text has no magic and is recognised as
//! valid UTF-8 without NUL bytes, from its first byte to its last. ZIP files are read entry by
//! entry as the stream passes and checked against their central directory at the end
//! ([`zip`]); PDFs are read for text and for active content ([`pdf`]). Office documents are told
//! apart from plain archives by their entries (`[Content_Types].xml` with `word/`, `xl/`, `ppt/`;
//! an OpenDocument `mimetype` entry), and archives holding executables, macro projects or
//! embedded objects are named as such.
//!
//! The same pass feeds the text of plain text, CSV, the XML parts of office documents and the
//! strings of PDF content streams to the DLP [`Scanner`]. Memory stays bounded whatever the size
//! of the upload: a fixed prefix, one ZIP header at a time, the names of the ZIP's entries, a
//! fixed inflate buffer. Text that cannot be read is reported (`unscanned`), never skipped
//! silently.
//!
//! A file's name is checked too ([`refused_extension`], [`stored_name`]): the type comes from
//! the content, but the name is what the recipient's computer opens the download by.

mod kind;
mod pdf;
mod xml;
mod zip;

use crate::dlp::{Findings, Scanner};
pub use kind::{
    Detected, EXECUTABLE_EXTENSIONS, FileKind, MARKUP_EXTENSIONS, download_name, extension, refused_extension, sniff,
    stored_name,
};
use kind::{MARKUP, is_markup, is_script};

/// How many leading bytes decide the type.
pub const PREFIX: usize = 8192;
/// How many bytes of a text, from its first non-blank character, show whether it is a script.
const SCRIPT_HEAD: usize = 512;

/// The outcome of a pass over an upload.
#[derive(Debug)]
pub struct Inspection {
    pub detected: Detected,
    /// Identifiers found in the text, by detector (counts only).
    pub findings: Findings,
    /// Some of the text could not be read (an encrypted PDF, a stream in a filter the reader
    /// does not decode, glyph codes instead of characters): the scan did not see all of it.
    pub unscanned: bool,
}

/// Reads an upload as it streams past. Feed every chunk to [`Inspector::feed`], then call
/// [`Inspector::finish`].
#[derive(Debug, Default)]
pub struct Inspector {
    prefix: Vec<u8>,
    mode: Mode,
    scanner: Scanner,
}

#[derive(Debug, Default)]
enum Mode {
    /// Still collecting the prefix.
    #[default]
    Sniffing,
    Text(Box<Text>),
    Zip(Box<zip::Zip>),
    Pdf(Box<pdf::Pdf>),
    /// Nothing more to read (images, refused types).
    Done(Detected),
}

impl Inspector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if matches!(self.mode, Mode::Sniffing) {
            let take = (PREFIX - self.prefix.len()).min(chunk.len());
            let (head, rest) = chunk.split_at(take);
            self.prefix.extend_from_slice(head);
            if self.prefix.len() < PREFIX {
                return;
            }
            self.decide();
            let prefix = std::mem::take(&mut self.prefix);
            self.consume(&prefix);
            self.prefix = prefix;
            self.consume(rest);
        } else {
            self.consume(chunk);
        }
    }

    /// A type that is never accepted, as soon as the bytes read show it (the rest need not be
    /// read).
    pub fn refused_early(&self) -> Option<Detected> {
        match &self.mode {
            Mode::Done(d @ Detected::Refused(_)) => Some(d.clone()),
            Mode::Text(t) => t.refused().map(Detected::Refused),
            Mode::Zip(z) => z.refused().map(Detected::Refused),
            Mode::Pdf(p) => p.refusal.map(Detected::Refused),
            _ => None,
        }
    }

    /// Choose the reading mode from the prefix.
    fn decide(&mut self) {
        let p = &self.prefix;
        self.mode = if p.starts_with(b"PK\x03\x04") {
            Mode::Zip(Box::default())
        } else if p.starts_with(b"%PDF-") {
            Mode::Pdf(Box::default())
        } else {
            match sniff(p) {
                Detected::Kind(FileKind::Text) => Mode::Text(Box::default()),
                other => Mode::Done(other),
            }
        };
    }

    fn consume(&mut self, bytes: &[u8]) {
        match &mut self.mode {
            Mode::Text(t) => t.feed(bytes, &mut self.scanner),
            Mode::Zip(z) => z.feed(bytes, &mut self.scanner),
            Mode::Pdf(pdf) => pdf.feed(bytes, &mut self.scanner),
            Mode::Sniffing | Mode::Done(_) => {}
        }
    }

    pub fn finish(mut self) -> Inspection {
        if matches!(self.mode, Mode::Sniffing) {
            self.decide();
            let prefix = std::mem::take(&mut self.prefix);
            self.consume(&prefix);
        }
        let mut unscanned = false;
        let detected = match self.mode {
            Mode::Sniffing => Detected::Refused("unknown binary data"),
            Mode::Text(mut t) => t.finish(&mut self.scanner),
            Mode::Zip(z) => z.classify(),
            Mode::Pdf(mut pdf) => {
                pdf.finish();
                unscanned = pdf.encrypted || pdf.unread;
                match pdf.refusal {
                    Some(why) => Detected::Refused(why),
                    None => Detected::Kind(FileKind::Pdf),
                }
            }
            Mode::Done(d) => d,
        };
        let findings = self.scanner.finish();
        Inspection { detected, findings, unscanned }
    }
}

/// Plain text: valid UTF-8 without NUL bytes throughout, and not a script or markup however
/// many blank lines come first.
#[derive(Debug, Default)]
struct Text {
    utf8: Utf8Carry,
    /// The first [`SCRIPT_HEAD`] bytes from the first non-blank character.
    head: String,
    binary: bool,
    refusal: Option<&'static str>,
}

impl Text {
    fn feed(&mut self, bytes: &[u8], scanner: &mut Scanner) {
        if self.refused().is_some() {
            return;
        }
        self.binary |= bytes.contains(&0);
        let text = self.utf8.decode(bytes);
        self.look(&text);
        scanner.feed(&text);
    }

    fn look(&mut self, text: &str) {
        if self.head.len() >= SCRIPT_HEAD {
            return;
        }
        let text = if self.head.is_empty() {
            text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        } else {
            text
        };
        for c in text.chars() {
            if self.head.len() >= SCRIPT_HEAD {
                break;
            }
            self.head.push(c);
        }
        if self.head.len() >= SCRIPT_HEAD {
            self.judge();
        }
    }

    fn judge(&mut self) {
        let head = self.head.as_bytes();
        if is_script(head) {
            self.refusal = Some("script");
        } else if is_markup(head) {
            self.refusal = Some(MARKUP);
        }
    }

    fn refused(&self) -> Option<&'static str> {
        if self.binary || self.utf8.invalid {
            return Some("unknown binary data");
        }
        self.refusal
    }

    fn finish(&mut self, scanner: &mut Scanner) -> Detected {
        let rest = self.utf8.flush();
        self.look(&rest);
        scanner.feed(&rest);
        if self.refusal.is_none() {
            self.judge();
        }
        match self.refused() {
            Some(why) => Detected::Refused(why),
            None => Detected::Kind(FileKind::Text),
        }
    }
}

/// Decodes UTF-8 across chunk boundaries (invalid bytes become U+FFFD, and are remembered).
#[derive(Debug, Default)]
struct Utf8Carry {
    tail: Vec<u8>,
    /// Some bytes were not UTF-8.
    invalid: bool,
}

impl Utf8Carry {
    fn decode(&mut self, bytes: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(bytes);
        // Keep an incomplete character at the end for the next chunk.
        let keep = match std::str::from_utf8(&buf) {
            Ok(_) => 0,
            Err(e) if e.error_len().is_none() => buf.len() - e.valid_up_to(),
            Err(_) => {
                // Invalid somewhere: find a trailing incomplete sequence by hand.
                let start = buf.len().saturating_sub(3);
                (start..buf.len())
                    .find(|&i| {
                        buf.get(i).is_some_and(|b| b & 0xC0 == 0xC0)
                            && std::str::from_utf8(buf.get(i..).unwrap_or_default())
                                .err()
                                .is_some_and(|e| e.error_len().is_none())
                    })
                    .map_or(0, |i| buf.len() - i)
            }
        };
        self.tail = buf.split_off(buf.len() - keep);
        self.lossy(&buf)
    }

    fn flush(&mut self) -> String {
        let tail = std::mem::take(&mut self.tail);
        self.lossy(&tail)
    }

    fn lossy(&mut self, bytes: &[u8]) -> String {
        let s = String::from_utf8_lossy(bytes);
        self.invalid |= matches!(s, std::borrow::Cow::Owned(_));
        s.into_owned()
    }
}

#[cfg(test)]
mod tests;
