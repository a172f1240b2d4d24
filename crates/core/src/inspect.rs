//! What an upload really is, and what text it carries, found as its bytes stream past.
//!
//! The type comes from the content, never from the name or the declared `Content-Type`: the
//! first [`PREFIX`] bytes go to `infer` (magic numbers); text has no magic and is recognised as
//! valid UTF-8 without NUL bytes in that prefix. ZIP files are read entry by entry from their
//! local file headers as the stream passes (no central directory, so nothing is held): office
//! documents are told apart from plain archives by their entries (`[Content_Types].xml` with
//! `word/`, `xl/`, `ppt/`; an OpenDocument `mimetype` entry), and archives holding executables or
//! macro projects are named as such.
//!
//! The same pass feeds the text of plain text, CSV, the XML parts of office documents and the
//! literal strings of PDF content streams to the DLP [`Scanner`]. Memory stays bounded whatever
//! the size of the upload: a fixed prefix, one ZIP header at a time, a fixed inflate buffer.

use crate::dlp::{Findings, Scanner};
use flate2::{Decompress, FlushDecompress, Status};
use serde::{Deserialize, Serialize};

/// How many leading bytes decide the type.
pub const PREFIX: usize = 8192;
/// Most ZIP entry names remembered (their names decide the type; more is refused).
const MAX_ENTRIES: usize = 20_000;
/// Most bytes one ZIP entry may inflate to before the archive is refused (a zip bomb).
const MAX_INFLATED: u64 = 4 << 30;
/// Largest ZIP local header (30 bytes + name + extra field) accepted.
const MAX_HEADER: usize = 30 + 2 * 65_535;

/// The types an allow-list can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    Tiff,
    Heic,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    /// Plain text, including CSV: valid UTF-8 without NUL bytes.
    Text,
}

impl FileKind {
    pub const ALL: [FileKind; 14] = [
        FileKind::Pdf,
        FileKind::Png,
        FileKind::Jpeg,
        FileKind::Gif,
        FileKind::Webp,
        FileKind::Tiff,
        FileKind::Heic,
        FileKind::Docx,
        FileKind::Xlsx,
        FileKind::Pptx,
        FileKind::Odt,
        FileKind::Ods,
        FileKind::Odp,
        FileKind::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Png => "png",
            FileKind::Jpeg => "jpeg",
            FileKind::Gif => "gif",
            FileKind::Webp => "webp",
            FileKind::Tiff => "tiff",
            FileKind::Heic => "heic",
            FileKind::Docx => "docx",
            FileKind::Xlsx => "xlsx",
            FileKind::Pptx => "pptx",
            FileKind::Odt => "odt",
            FileKind::Ods => "ods",
            FileKind::Odp => "odp",
            FileKind::Text => "text",
        }
    }

    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            crate::Error::invalid(
                "allowed",
                format!(
                    "unknown file type {s:?}; the types are {}",
                    Self::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The content type stored with a document of this kind (the declared one is not trusted).
    pub fn mime(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Gif => "image/gif",
            FileKind::Webp => "image/webp",
            FileKind::Tiff => "image/tiff",
            FileKind::Heic => "image/heic",
            FileKind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            FileKind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            FileKind::Pptx => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            FileKind::Odt => "application/vnd.oasis.opendocument.text",
            FileKind::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            FileKind::Odp => "application/vnd.oasis.opendocument.presentation",
            FileKind::Text => "text/plain; charset=utf-8",
        }
    }

    /// Whether the DLP scan reads this kind's text.
    pub fn scanned(self) -> bool {
        !matches!(
            self,
            FileKind::Png | FileKind::Jpeg | FileKind::Gif | FileKind::Webp | FileKind::Tiff | FileKind::Heic
        )
    }
}

/// What the content turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detected {
    /// A type an allow-list can name.
    Kind(FileKind),
    /// A type that is never accepted, described for the person who sent it.
    Refused(&'static str),
}

impl Detected {
    pub fn describe(&self) -> &'static str {
        match self {
            Detected::Kind(k) => k.as_str(),
            Detected::Refused(what) => what,
        }
    }
}

/// The outcome of a pass over an upload.
#[derive(Debug)]
pub struct Inspection {
    pub detected: Detected,
    /// Identifiers found in the text, by detector (counts only).
    pub findings: Findings,
    /// The text could not be read (an encrypted PDF, say): the DLP scan saw nothing.
    pub unscanned: bool,
}

/// Reads an upload as it streams past. Feed every chunk to [`Inspector::feed`], then call
/// [`Inspector::finish`].
#[derive(Debug, Default)]
pub struct Inspector {
    prefix: Vec<u8>,
    mode: Mode,
    scanner: Scanner,
    utf8: Utf8Carry,
}

#[derive(Debug, Default)]
enum Mode {
    /// Still collecting the prefix.
    #[default]
    Sniffing,
    Text,
    Zip(Box<Zip>),
    Pdf(Box<Pdf>),
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

    /// A type that is never accepted, once the prefix shows it (the rest need not be read).
    pub fn refused_early(&self) -> Option<Detected> {
        match &self.mode {
            Mode::Done(d @ Detected::Refused(_)) => Some(d.clone()),
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
                Detected::Kind(FileKind::Text) => Mode::Text,
                other => Mode::Done(other),
            }
        };
    }

    fn consume(&mut self, bytes: &[u8]) {
        match &mut self.mode {
            Mode::Text => {
                let text = self.utf8.decode(bytes);
                self.scanner.feed(&text);
            }
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
            Mode::Text => {
                let rest = self.utf8.flush();
                self.scanner.feed(&rest);
                Detected::Kind(FileKind::Text)
            }
            Mode::Zip(z) => z.classify(),
            Mode::Pdf(pdf) => {
                unscanned = pdf.encrypted;
                Detected::Kind(FileKind::Pdf)
            }
            Mode::Done(d) => d,
        };
        let findings = self.scanner.finish();
        Inspection { detected, findings, unscanned }
    }
}

/// Decide a type from a file's first bytes (anything but ZIP and PDF, which are read further).
pub fn sniff(p: &[u8]) -> Detected {
    if let Some(t) = infer::get(p) {
        return match t.mime_type() {
            "application/pdf" => Detected::Kind(FileKind::Pdf),
            "image/png" => Detected::Kind(FileKind::Png),
            "image/jpeg" => Detected::Kind(FileKind::Jpeg),
            "image/gif" => Detected::Kind(FileKind::Gif),
            "image/webp" => Detected::Kind(FileKind::Webp),
            "image/tiff" => Detected::Kind(FileKind::Tiff),
            "image/heif" => Detected::Kind(FileKind::Heic),
            "application/vnd.microsoft.portable-executable" => Detected::Refused("Windows executable (PE/MZ)"),
            "application/x-executable" => Detected::Refused("executable (ELF)"),
            "application/x-mach-binary" => Detected::Refused("executable (Mach-O)"),
            "application/java" | "application/vnd.android.dex" | "application/vnd.android.dey" | "application/wasm" => {
                Detected::Refused("executable code")
            }
            "application/x-ole-storage"
            | "application/msword"
            | "application/vnd.ms-excel"
            | "application/vnd.ms-powerpoint" => Detected::Refused("legacy Office document (OLE)"),
            "application/zip" => Detected::Refused("ZIP archive"),
            "application/vnd.rar" => Detected::Refused("RAR archive"),
            "application/x-7z-compressed" => Detected::Refused("7z archive"),
            "application/gzip" => Detected::Refused("gzip archive"),
            "application/x-tar" => Detected::Refused("tar archive"),
            "application/x-bzip2" | "application/vnd.bzip3" => Detected::Refused("bzip2 archive"),
            "application/x-xz"
            | "application/x-lzip"
            | "application/zstd"
            | "application/x-lz4"
            | "application/x-compress" => Detected::Refused("compressed archive"),
            "application/vnd.ms-cab-compressed"
            | "application/x-cpio"
            | "application/x-unix-archive"
            | "application/vnd.debian.binary-package"
            | "application/x-rpm" => Detected::Refused("archive"),
            "text/x-shellscript" => Detected::Refused("script"),
            "text/html" | "image/svg+xml" | "text/xml" | "application/xml" => {
                Detected::Refused("HTML or SVG markup (it can run scripts in a browser)")
            }
            _ => Detected::Refused("unsupported file type"),
        };
    }
    if is_script(p) {
        return Detected::Refused("script");
    }
    if is_markup(p) {
        return Detected::Refused("HTML or SVG markup (it can run scripts in a browser)");
    }
    if looks_like_text(p) { Detected::Kind(FileKind::Text) } else { Detected::Refused("unknown binary data") }
}

/// Valid UTF-8 (a character cut at the end of the prefix allowed) without NUL bytes. An empty
/// file is text.
fn looks_like_text(p: &[u8]) -> bool {
    if p.contains(&0) {
        return false;
    }
    match std::str::from_utf8(p) {
        Ok(_) => true,
        // Only an incomplete character at the very end (the prefix cut it) is forgiven.
        Err(e) => e.error_len().is_none() && p.len() - e.valid_up_to() < 4 && p.len() >= PREFIX,
    }
}

fn trimmed_lower(p: &[u8]) -> String {
    let head = p.get(..p.len().min(512)).unwrap_or_default();
    let s = String::from_utf8_lossy(head);
    s.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase()
}

/// A shebang, or the opening of a script with no magic of its own (Windows batch, PowerShell's
/// usual first lines, PHP).
fn is_script(p: &[u8]) -> bool {
    let s = trimmed_lower(p);
    p.starts_with(b"#!")
        || s.starts_with("#!")
        || s.starts_with("@echo off")
        || s.starts_with("<?php")
        || s.starts_with("#requires -")
        || s.starts_with("param(")
}

fn is_markup(p: &[u8]) -> bool {
    let s = trimmed_lower(p);
    s.starts_with("<!doctype html")
        || s.starts_with("<html")
        || s.starts_with("<script")
        || s.starts_with("<svg")
        || (s.starts_with("<?xml") && s.contains("<svg"))
        || s.starts_with("<hta:")
}

/// Decodes UTF-8 across chunk boundaries (invalid bytes become U+FFFD).
#[derive(Debug, Default)]
struct Utf8Carry {
    tail: Vec<u8>,
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
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn flush(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.tail)).into_owned()
    }
}

/// Turns XML into its text: tags are dropped (runs of one word join up again), and the ends of
/// paragraphs, cells and rows become spaces.
#[derive(Debug, Default)]
struct XmlText {
    in_tag: bool,
    tag: String,
    utf8: Utf8Carry,
}

impl XmlText {
    fn feed(&mut self, bytes: &[u8], scanner: &mut Scanner) {
        let text = self.utf8.decode(bytes);
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if self.in_tag {
                if c == '>' {
                    self.in_tag = false;
                    if breaks(&self.tag) {
                        out.push(' ');
                    }
                    self.tag.clear();
                } else if self.tag.len() < 64 {
                    self.tag.push(c);
                }
            } else if c == '<' {
                self.in_tag = true;
            } else {
                out.push(c);
            }
        }
        scanner.feed(&out);
    }
}

/// Whether a tag separates words: paragraph, line break, tab, table cell and row, spreadsheet
/// cell and value, shared string.
fn breaks(tag: &str) -> bool {
    let name = tag.trim_start_matches('/').split([' ', '/', '\t', '\n']).next().unwrap_or_default();
    let local = name.rsplit(':').next().unwrap_or_default();
    matches!(local, "p" | "br" | "tab" | "tc" | "tr" | "c" | "v" | "si" | "row" | "h" | "s" | "line-break" | "cr")
}

/// Where a ZIP reader is.
#[derive(Debug)]
enum ZipState {
    /// Collecting a signature and then a local header.
    Header,
    /// Inside an entry's data.
    Data { left: Option<u64>, inflate: Option<Box<Decompress>>, extract: Extract, descriptor: bool, inflated: u64 },
    /// After an entry with a data descriptor: collecting it.
    Descriptor,
    /// The central directory began: every entry has been seen.
    Done,
    /// Not a ZIP that can be read as it streams.
    Broken(&'static str),
}

/// What to do with an entry's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extract {
    Skip,
    /// Text of an office XML part: to the DLP scan.
    Text,
    /// `[Content_Types].xml` or an OpenDocument `mimetype`: kept (bounded) to classify.
    Keep,
}

#[derive(Debug)]
struct Zip {
    state: ZipState,
    buf: Vec<u8>,
    entries: u64,
    content_types: bool,
    word: bool,
    xl: bool,
    ppt: bool,
    odf_mimetype: String,
    content_types_xml: String,
    keep: Vec<u8>,
    keep_name: String,
    macros: bool,
    executable: bool,
    nested_archive: bool,
    xml: XmlText,
}

impl Default for Zip {
    fn default() -> Self {
        Self {
            state: ZipState::Header,
            buf: Vec::new(),
            entries: 0,
            content_types: false,
            word: false,
            xl: false,
            ppt: false,
            odf_mimetype: String::new(),
            content_types_xml: String::new(),
            keep: Vec::new(),
            keep_name: String::new(),
            macros: false,
            executable: false,
            nested_archive: false,
            xml: XmlText::default(),
        }
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).and_then(|s| <[u8; 2]>::try_from(s).ok()).map_or(0, u16::from_le_bytes)
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map_or(0, u32::from_le_bytes)
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;

impl Zip {
    fn feed(&mut self, mut input: &[u8], scanner: &mut Scanner) {
        while !input.is_empty() {
            match &mut self.state {
                ZipState::Done | ZipState::Broken(_) => return,
                ZipState::Header => {
                    let need = if self.buf.len() < 30 {
                        30
                    } else {
                        30 + usize::from(le16(&self.buf, 26)) + usize::from(le16(&self.buf, 28))
                    };
                    let take = need.saturating_sub(self.buf.len()).min(input.len());
                    let (head, rest) = input.split_at(take);
                    self.buf.extend_from_slice(head);
                    input = rest;
                    if self.buf.len() >= 4 && le32(&self.buf, 0) != LOCAL {
                        self.state = match le32(&self.buf, 0) {
                            CENTRAL | END | END64 => ZipState::Done,
                            _ => ZipState::Broken("damaged ZIP data"),
                        };
                        continue;
                    }
                    if self.buf.len() == need && need > 30 || (self.buf.len() == 30 && need == 30 && self.full_header())
                    {
                        self.start_entry();
                    }
                }
                ZipState::Data { .. } => {
                    input = self.data(input, scanner);
                }
                ZipState::Descriptor => {
                    let take = (28usize.saturating_sub(self.buf.len())).min(input.len());
                    let (head, rest) = input.split_at(take);
                    self.buf.extend_from_slice(head);
                    input = rest;
                    if self.buf.len() >= 28 {
                        self.end_descriptor();
                    }
                }
            }
        }
    }

    /// A header with neither name nor extra field is complete at 30 bytes.
    fn full_header(&self) -> bool {
        le16(&self.buf, 26) == 0 && le16(&self.buf, 28) == 0
    }

    fn start_entry(&mut self) {
        let h = std::mem::take(&mut self.buf);
        let flags = le16(&h, 6);
        let method = le16(&h, 8);
        let name_len = usize::from(le16(&h, 26));
        let extra_len = usize::from(le16(&h, 28));
        if h.len() > MAX_HEADER {
            self.state = ZipState::Broken("damaged ZIP data");
            return;
        }
        let name = String::from_utf8_lossy(h.get(30..30 + name_len).unwrap_or_default()).into_owned();
        let extra = h.get(30 + name_len..30 + name_len + extra_len).unwrap_or_default();
        let mut compressed = u64::from(le32(&h, 18));
        if compressed == 0xFFFF_FFFF {
            // ZIP64: the sizes are in the extra field (uncompressed first, then compressed).
            let mut at = 0;
            while at + 4 <= extra.len() {
                let (id, len) = (le16(extra, at), usize::from(le16(extra, at + 2)));
                if id == 1 && len >= 16 {
                    compressed = le64(extra, at + 12);
                }
                at += 4 + len;
            }
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES as u64 {
            self.state = ZipState::Broken("ZIP archive with too many entries");
            return;
        }
        let extract = self.note(&name);
        let descriptor = flags & 0x08 != 0;
        if flags & 0x01 != 0 {
            self.state = ZipState::Broken("encrypted ZIP archive");
            return;
        }
        let inflate = match method {
            0 if descriptor => {
                self.state = ZipState::Broken("ZIP archive that cannot be read as it streams");
                return;
            }
            0 => None,
            8 => Some(Box::new(Decompress::new(false))),
            _ if descriptor => {
                self.state = ZipState::Broken("ZIP archive with an unsupported compression");
                return;
            }
            // Unknown compression with a known size: skipped, and its text is not read.
            _ => None,
        };
        let left = if descriptor && inflate.is_some() { None } else { Some(compressed) };
        let extract = if method == 0 || method == 8 { extract } else { Extract::Skip };
        self.keep.clear();
        self.keep_name = name;
        self.xml = XmlText::default();
        self.state = ZipState::Data { left, inflate, extract, descriptor, inflated: 0 };
    }

    /// Record what an entry's name says; decide what to do with its content.
    fn note(&mut self, name: &str) -> Extract {
        let lower = name.to_ascii_lowercase();
        let file = lower.rsplit('/').next().unwrap_or_default();
        if lower == "[content_types].xml" {
            self.content_types = true;
            return Extract::Keep;
        }
        if lower == "mimetype" {
            return Extract::Keep;
        }
        self.word |= lower.starts_with("word/");
        self.xl |= lower.starts_with("xl/");
        self.ppt |= lower.starts_with("ppt/");
        if file == "vbaproject.bin" || file == "vbadata.xml" || lower.starts_with("basic/") {
            self.macros = true;
        }
        let ext = file.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        const EXECUTABLE: &[&str] = &[
            "exe", "dll", "scr", "com", "bat", "cmd", "msi", "msp", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf",
            "wsh", "hta", "jar", "sh", "bash", "app", "elf", "so", "dylib", "lnk", "cpl", "pif", "reg", "apk", "py",
            "pl", "rb", "docm", "xlsm", "pptm", "dotm", "xltm", "potm", "ppsm", "xlam", "ppam",
        ];
        const ARCHIVE: &[&str] = &["zip", "rar", "7z", "gz", "tgz", "tar", "bz2", "xz", "cab", "iso", "img", "zst"];
        if EXECUTABLE.contains(&ext) {
            self.executable = true;
        }
        if ARCHIVE.contains(&ext) {
            self.nested_archive = true;
        }
        let text = (lower.starts_with("word/") && lower.ends_with(".xml") && !lower.contains("/_rels/"))
            || lower == "xl/sharedstrings.xml"
            || (lower.starts_with("xl/worksheets/") && lower.ends_with(".xml"))
            || (lower.starts_with("ppt/slides/") && lower.ends_with(".xml"))
            || (lower.starts_with("ppt/notesslides/") && lower.ends_with(".xml"))
            || lower == "content.xml";
        if text { Extract::Text } else { Extract::Skip }
    }

    /// Consume entry data from `input`; return what is left after the entry ends.
    fn data<'a>(&mut self, input: &'a [u8], scanner: &mut Scanner) -> &'a [u8] {
        let ZipState::Data { left, inflate, extract, descriptor, inflated } = &mut self.state else {
            return input;
        };
        let mut take = left.map_or(input.len(), |l| usize::try_from(l).unwrap_or(usize::MAX).min(input.len()));
        let mut ended = left.is_some_and(|l| l as usize <= input.len() && l <= take as u64);
        if let Some(d) = inflate {
            let mut out = [0u8; 16 * 1024];
            let mut pos = 0;
            loop {
                let slice = input.get(pos..take).unwrap_or_default();
                let before_in = d.total_in();
                let before_out = d.total_out();
                let status = d.decompress(slice, &mut out, FlushDecompress::None);
                let used = usize::try_from(d.total_in() - before_in).unwrap_or(0);
                let made = usize::try_from(d.total_out() - before_out).unwrap_or(0);
                pos += used;
                *inflated += made as u64;
                let piece = out.get(..made).unwrap_or_default();
                match extract {
                    Extract::Text => self.xml.feed(piece, scanner),
                    Extract::Keep if self.keep.len() < 65_536 => self.keep.extend_from_slice(piece),
                    _ => {}
                }
                if *inflated > MAX_INFLATED {
                    self.state = ZipState::Broken("ZIP archive that inflates too far");
                    return &[];
                }
                match status {
                    Ok(Status::StreamEnd) => {
                        // With a known size, skip anything left of the entry's data.
                        if left.is_none() {
                            take = pos;
                        }
                        ended = true;
                        break;
                    }
                    Ok(_) if used == 0 && made == 0 => break,
                    Ok(_) => {}
                    Err(_) => {
                        self.state = ZipState::Broken("damaged ZIP data");
                        return &[];
                    }
                }
                if pos >= take && made < out.len() {
                    break;
                }
            }
        } else {
            let piece = input.get(..take).unwrap_or_default();
            match extract {
                Extract::Text => self.xml.feed(piece, scanner),
                Extract::Keep if self.keep.len() < 65_536 => self.keep.extend_from_slice(piece),
                _ => {}
            }
        }
        if let Some(l) = left {
            *l -= take as u64;
            ended = *l == 0;
        }
        if ended {
            let desc = *descriptor;
            self.end_entry();
            self.state = if desc { ZipState::Descriptor } else { ZipState::Header };
        }
        input.get(take..).unwrap_or_default()
    }

    fn end_entry(&mut self) {
        let kept = String::from_utf8_lossy(&self.keep).into_owned();
        match self.keep_name.to_ascii_lowercase().as_str() {
            "mimetype" => self.odf_mimetype = kept.trim().to_owned(),
            "[content_types].xml" => self.content_types_xml = kept,
            _ => {}
        }
        self.keep.clear();
    }

    /// A data descriptor: an optional signature, the CRC, then 32- or 64-bit sizes. Its length is
    /// found by where the next header's signature sits.
    fn end_descriptor(&mut self) {
        let b = std::mem::take(&mut self.buf);
        let signed = le32(&b, 0) == DESCRIPTOR;
        let candidates: &[usize] = if signed { &[16, 24] } else { &[12, 20] };
        let next = candidates.iter().copied().find(|&at| matches!(le32(&b, at), LOCAL | CENTRAL | END | END64));
        match next {
            Some(at) => {
                self.buf = b.get(at..).unwrap_or_default().to_vec();
                self.state = ZipState::Header;
                if le32(&self.buf, 0) != LOCAL {
                    self.state = ZipState::Done;
                }
            }
            None => self.state = ZipState::Broken("damaged ZIP data"),
        }
    }

    fn classify(self) -> Detected {
        if self.executable {
            return Detected::Refused("archive holding an executable or script");
        }
        let ct = self.content_types_xml.to_ascii_lowercase();
        if self.macros || ct.contains("macroenabled") || ct.contains("vbaproject") {
            return Detected::Refused("macro-enabled office document");
        }
        if let ZipState::Broken(why) = self.state {
            return Detected::Refused(why);
        }
        if !matches!(self.state, ZipState::Done) {
            return Detected::Refused("damaged ZIP data");
        }
        if self.nested_archive {
            return Detected::Refused("archive holding another archive");
        }
        if self.content_types {
            if self.word && ct.contains("wordprocessingml") {
                return Detected::Kind(FileKind::Docx);
            }
            if self.xl && ct.contains("spreadsheetml") {
                return Detected::Kind(FileKind::Xlsx);
            }
            if self.ppt && ct.contains("presentationml") {
                return Detected::Kind(FileKind::Pptx);
            }
        }
        match self.odf_mimetype.as_str() {
            "application/vnd.oasis.opendocument.text" => Detected::Kind(FileKind::Odt),
            "application/vnd.oasis.opendocument.spreadsheet" => Detected::Kind(FileKind::Ods),
            "application/vnd.oasis.opendocument.presentation" => Detected::Kind(FileKind::Odp),
            _ => Detected::Refused("ZIP archive"),
        }
    }
}

/// Reads a PDF as it streams: the literal strings of its content streams (inflated when they are
/// Flate-compressed) are text for the scan. Text drawn with hex strings or custom encodings is not
/// read; an encrypted PDF is reported unscanned.
#[derive(Debug, Default)]
struct Pdf {
    /// The last bytes seen outside a stream, to find the `stream` keyword across chunks.
    window: Vec<u8>,
    inflate: Option<Box<Decompress>>,
    /// Inside a stream: the first bytes, to see whether it is zlib data.
    stream_start: Option<Vec<u8>>,
    strings: PdfStrings,
    encrypted: bool,
    inflated: u64,
}

impl Pdf {
    fn feed(&mut self, mut input: &[u8], scanner: &mut Scanner) {
        while !input.is_empty() {
            if let Some(start) = &mut self.stream_start {
                // Skip the end of line after `stream`, then look at the first two bytes.
                while start.is_empty() && input.first().is_some_and(|b| *b == b'\r' || *b == b'\n') {
                    input = input.get(1..).unwrap_or_default();
                }
                let take = (2 - start.len().min(2)).min(input.len());
                start.extend_from_slice(input.get(..take).unwrap_or_default());
                if start.len() < 2 {
                    return;
                }
                let head = std::mem::take(start);
                self.stream_start = None;
                // A zlib header: CMF 0x78 and a header checksum that divides by 31.
                let zlib = matches!(head.as_slice(), [0x78, b] if (0x78u16 * 256 + u16::from(*b)).is_multiple_of(31));
                if zlib {
                    let mut d = Box::new(Decompress::new(true));
                    let (_, ended) = self.inflate_into(&mut d, &head, scanner);
                    if !ended {
                        self.inflate = Some(d);
                    }
                    input = input.get(take..).unwrap_or_default();
                    continue;
                }
                // Not compressed: the raw bytes are read by the window scan below.
                input = input.get(take..).unwrap_or_default();
                self.strings.feed(&head, scanner);
                continue;
            }
            if let Some(mut d) = self.inflate.take() {
                let (used, ended) = self.inflate_into(&mut d, input, scanner);
                input = input.get(used..).unwrap_or_default();
                // At the stream's end (or damage), back to reading raw bytes.
                if !ended {
                    self.inflate = Some(d);
                }
                continue;
            }
            // Raw bytes: literal strings (uncompressed content), and the `stream` keyword.
            let mut cut = input.len();
            for (i, b) in input.iter().enumerate() {
                self.window.push(*b);
                if self.window.len() > 16 {
                    self.window.remove(0);
                }
                if self.window.ends_with(b"/Encrypt") {
                    self.encrypted = true;
                }
                if self.window.ends_with(b"stream") && !self.window.ends_with(b"endstream") {
                    cut = i + 1;
                    break;
                }
            }
            self.strings.feed(input.get(..cut).unwrap_or_default(), scanner);
            if cut < input.len() || self.window.ends_with(b"stream") && !self.window.ends_with(b"endstream") {
                self.window.clear();
                self.stream_start = Some(Vec::new());
            }
            input = input.get(cut..).unwrap_or_default();
        }
    }

    /// Inflate `input` into the string reader: the bytes used, and whether the stream ended
    /// (or was damaged, which ends it too).
    fn inflate_into(&mut self, d: &mut Decompress, input: &[u8], scanner: &mut Scanner) -> (usize, bool) {
        let mut out = [0u8; 16 * 1024];
        let mut pos = 0;
        loop {
            let before = (d.total_in(), d.total_out());
            let status = d.decompress(input.get(pos..).unwrap_or_default(), &mut out, FlushDecompress::None);
            let used = usize::try_from(d.total_in() - before.0).unwrap_or(0);
            let made = usize::try_from(d.total_out() - before.1).unwrap_or(0);
            pos += used;
            self.inflated = self.inflated.saturating_add(made as u64);
            if self.inflated <= MAX_INFLATED {
                self.strings.feed(out.get(..made).unwrap_or_default(), scanner);
            }
            match status {
                Ok(Status::StreamEnd) => {
                    self.strings.end(scanner);
                    return (pos, true);
                }
                // Damaged: skip this chunk's rest of the stream and read raw bytes again.
                Err(_) => {
                    self.strings.end(scanner);
                    return (input.len(), true);
                }
                Ok(_) if used == 0 && made < out.len() => return (pos, false),
                Ok(_) => {}
            }
        }
    }
}

/// Reads PDF literal strings `( … )` with their escapes. Strings inside a `[ … ]` array (kerned
/// text) join up; others are separated by a space.
#[derive(Debug, Default)]
struct PdfStrings {
    depth: u32,
    escape: bool,
    in_array: bool,
    text: Vec<u8>,
}

impl PdfStrings {
    fn feed(&mut self, bytes: &[u8], scanner: &mut Scanner) {
        for &b in bytes {
            if self.depth > 0 {
                if self.escape {
                    self.escape = false;
                    match b {
                        b'n' | b'r' | b't' => self.text.push(b' '),
                        b'0'..=b'7' => {}
                        other => self.text.push(other),
                    }
                    continue;
                }
                match b {
                    b'\\' => self.escape = true,
                    b'(' => {
                        self.depth += 1;
                        self.text.push(b);
                    }
                    b')' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            if !self.in_array {
                                self.text.push(b' ');
                            }
                        } else {
                            self.text.push(b);
                        }
                    }
                    other => self.text.push(other),
                }
                if self.text.len() >= 4096 {
                    self.flush(scanner);
                }
            } else {
                match b {
                    b'(' => self.depth = 1,
                    b'[' => self.in_array = true,
                    b']' => {
                        self.in_array = false;
                        self.text.push(b' ');
                    }
                    b'\n' | b'\r' if self.text.last().is_some_and(|c| *c != b' ') => self.text.push(b' '),
                    _ => {}
                }
            }
        }
        self.flush(scanner);
    }

    fn end(&mut self, scanner: &mut Scanner) {
        self.depth = 0;
        self.in_array = false;
        self.text.push(b' ');
        self.flush(scanner);
    }

    fn flush(&mut self, scanner: &mut Scanner) {
        if !self.text.is_empty() {
            scanner.feed(&String::from_utf8_lossy(&self.text));
            self.text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlp::Detector;

    fn inspect(bytes: &[u8], piece: usize) -> Inspection {
        let mut i = Inspector::new();
        for c in bytes.chunks(piece.max(1)) {
            i.feed(c);
        }
        i.finish()
    }

    #[test]
    fn executables_scripts_and_archives_are_named() {
        let mut mz = b"MZ\x90\x00".to_vec();
        mz.resize(300, 0);
        assert_eq!(inspect(&mz, 7).detected, Detected::Refused("Windows executable (PE/MZ)"));
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(300, 0);
        assert_eq!(inspect(&elf, 300).detected, Detected::Refused("executable (ELF)"));
        assert_eq!(inspect(b"#!/bin/sh\nrm -rf /\n", 3).detected, Detected::Refused("script"));
        assert_eq!(inspect(b"\x1f\x8b\x08\x00\x00\x00", 3).detected, Detected::Refused("gzip archive"));
        assert!(matches!(inspect(b"<html><script>", 3).detected, Detected::Refused(_)));
    }

    #[test]
    fn text_is_utf8_without_nul_and_is_scanned() {
        let text = "name,card\nA,4111 1111 1111 1111\nB,AB 12 34 56 C\n".repeat(500);
        for piece in [1, 13, 5000, 100_000] {
            let i = inspect(text.as_bytes(), piece);
            assert_eq!(i.detected, Detected::Kind(FileKind::Text));
            assert_eq!(i.findings.get(&Detector::PaymentCard), Some(&500));
            assert_eq!(i.findings.get(&Detector::NationalInsurance), Some(&500));
        }
        assert_eq!(inspect(b"a\0b", 1).detected, Detected::Refused("unknown binary data"));
        assert_eq!(inspect(b"", 1).detected, Detected::Kind(FileKind::Text));
        assert_eq!(inspect("café ".repeat(3000).as_bytes(), 8191).detected, Detected::Kind(FileKind::Text));
    }

    #[test]
    fn xml_tags_join_runs_and_split_paragraphs() {
        let mut s = Scanner::new();
        let mut x = XmlText::default();
        x.feed(b"<w:p><w:r><w:t>41111111</w:t></w:r><w:r><w:t>11111111</w:t></w:r></w:p><w:p>x</w:p>", &mut s);
        assert_eq!(s.finish().get(&Detector::PaymentCard), Some(&1));
    }

    #[test]
    fn pdf_literal_strings_are_read() {
        let pdf = b"%PDF-1.4\n1 0 obj<</Length 44>>stream\nBT /F1 12 Tf (Card 4111 1111 1111 1111) Tj ET\nendstream\nendobj\n%%EOF";
        let i = inspect(pdf, 5);
        assert_eq!(i.detected, Detected::Kind(FileKind::Pdf));
        assert_eq!(i.findings.get(&Detector::PaymentCard), Some(&1));
    }
}
