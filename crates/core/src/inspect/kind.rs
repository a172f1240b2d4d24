//! The types an upload can be, how its first bytes name one, and the names it may be stored
//! and served under.

use super::{PREFIX, SCRIPT_HEAD};
use serde::{Deserialize, Serialize};

/// Extensions of files that run: executables, scripts, shortcuts, macro-enabled office files,
/// disk images. An upload so named is refused, and so is an office file holding such an entry.
pub const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe",
    "dll",
    "scr",
    "com",
    "bat",
    "cmd",
    "msi",
    "msp",
    "mst",
    "ps1",
    "psm1",
    "psd1",
    "ps1xml",
    "vbs",
    "vbe",
    "js",
    "jse",
    "mjs",
    "wsf",
    "wsh",
    "wsc",
    "sct",
    "hta",
    "jar",
    "class",
    "sh",
    "bash",
    "zsh",
    "csh",
    "ksh",
    "command",
    "app",
    "elf",
    "so",
    "dylib",
    "lnk",
    "url",
    "scf",
    "cpl",
    "pif",
    "reg",
    "inf",
    "apk",
    "py",
    "pyw",
    "pl",
    "rb",
    "php",
    "docm",
    "xlsm",
    "pptm",
    "dotm",
    "xltm",
    "potm",
    "ppsm",
    "sldm",
    "xlam",
    "ppam",
    "xlsb",
    "appref-ms",
    "application",
    "gadget",
    "msc",
    "chm",
    "iso",
    "img",
    "vhd",
    "vhdx",
    "library-ms",
    "settingcontent-ms",
];

/// Extensions of markup a browser renders and runs scripts in. An upload so named is refused
/// (office files hold XML and SVG parts, so this list does not apply to their entries).
pub const MARKUP_EXTENSIONS: &[&str] =
    &["html", "htm", "xhtml", "shtml", "mht", "mhtml", "svg", "svgz", "xml", "xsl", "xslt"];

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

    /// The extensions a file of this kind may carry; the first is the one added to a name that
    /// has none of them.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            FileKind::Pdf => &["pdf"],
            FileKind::Png => &["png"],
            FileKind::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            FileKind::Gif => &["gif"],
            FileKind::Webp => &["webp"],
            FileKind::Tiff => &["tif", "tiff"],
            FileKind::Heic => &["heic", "heif"],
            FileKind::Docx => &["docx", "dotx"],
            FileKind::Xlsx => &["xlsx", "xltx"],
            FileKind::Pptx => &["pptx", "potx", "ppsx"],
            FileKind::Odt => &["odt", "ott"],
            FileKind::Ods => &["ods", "ots"],
            FileKind::Odp => &["odp", "otp"],
            FileKind::Text => &["txt", "text", "csv", "tsv", "md", "log", "json"],
        }
    }

    /// The kind a stored content type stands for.
    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.mime() == mime || k.mime().split(';').next() == Some(mime))
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

pub(super) const MARKUP: &str = "HTML or SVG markup (it can run scripts in a browser)";

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
            "text/html" | "image/svg+xml" | "text/xml" | "application/xml" => Detected::Refused(MARKUP),
            _ => Detected::Refused("unsupported file type"),
        };
    }
    if is_script(p) {
        return Detected::Refused("script");
    }
    if is_markup(p) {
        return Detected::Refused(MARKUP);
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

/// The first [`SCRIPT_HEAD`] bytes after any blank lines and byte-order mark, lowercased.
fn trimmed_lower(p: &[u8]) -> String {
    let s = String::from_utf8_lossy(p);
    let s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let mut end = s.len().min(SCRIPT_HEAD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_ascii_lowercase()
}

/// A shebang, or the opening of a script with no magic of its own (Windows batch, PowerShell's
/// usual first lines, PHP).
pub(super) fn is_script(p: &[u8]) -> bool {
    let s = trimmed_lower(p);
    p.starts_with(b"#!")
        || s.starts_with("#!")
        || s.starts_with("@echo off")
        || s.starts_with("<?php")
        || s.starts_with("#requires -")
        || s.starts_with("param(")
}

pub(super) fn is_markup(p: &[u8]) -> bool {
    let s = trimmed_lower(p);
    s.starts_with("<!doctype html")
        || s.starts_with("<html")
        || s.starts_with("<script")
        || s.starts_with("<svg")
        || (s.starts_with("<?xml") && s.contains("<svg"))
        || s.starts_with("<hta:")
}

/// The extension of a file name as a computer opening it reads it: lowercased, after the last
/// dot, with trailing dots and spaces dropped (Windows ignores them: `x.exe.` runs as `x.exe`).
/// Empty when there is none.
pub fn extension(name: &str) -> String {
    let name = name.trim_end_matches(['.', ' ']);
    let file = name.rsplit(['/', '\\']).next().unwrap_or_default();
    file.rsplit_once('.').map(|(_, e)| e.trim().to_ascii_lowercase()).unwrap_or_default()
}

/// Whether a name ends in an extension that is never accepted or served
/// ([`EXECUTABLE_EXTENSIONS`], [`MARKUP_EXTENSIONS`]).
pub fn refused_extension(name: &str) -> Option<String> {
    let ext = extension(name);
    (EXECUTABLE_EXTENSIONS.contains(&ext.as_str()) || MARKUP_EXTENSIONS.contains(&ext.as_str())).then_some(ext)
}

/// The name a document of `kind` is stored and served under: the given one when its extension
/// is one of the kind's, otherwise the given one with the kind's extension added
/// (`report.pdf` holding text becomes `report.pdf.txt`, `notes` becomes `notes.txt`), so the
/// recipient's computer opens it with the viewer for what it really is. Trailing dots and
/// spaces are dropped; the result stays within 255 bytes.
pub fn stored_name(name: &str, kind: FileKind) -> String {
    let name = name.trim_end_matches(['.', ' ']);
    if kind.extensions().contains(&extension(name).as_str()) {
        return name.to_owned();
    }
    let ext = kind.extensions().first().copied().unwrap_or("bin");
    let mut stem = name.to_owned();
    while stem.len() + ext.len() + 1 > 255 {
        stem.pop();
    }
    if stem.is_empty() { format!("document.{ext}") } else { format!("{stem}.{ext}") }
}

/// The name a stored document is downloaded under: [`stored_name`] for its stored type, so a
/// document stored before names were checked is not served as `.exe`, `.html` or `.docm`
/// either. A type this module does not know gets `.bin` when its name is refused.
pub fn download_name(name: &str, content_type: &str) -> String {
    match FileKind::from_mime(content_type) {
        Some(kind) => stored_name(name, kind),
        None if refused_extension(name).is_some() => format!("{}.bin", name.trim_end_matches(['.', ' '])),
        None => name.to_owned(),
    }
}
