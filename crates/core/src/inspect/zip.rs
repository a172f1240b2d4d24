//! ZIP-based uploads (office documents), read as they stream past.
//!
//! Every local entry is read from its local header: its content is inflated through a fixed
//! buffer, its first bytes are checked against executable and archive magic numbers, its text
//! goes to the DLP scan. What a ZIP tool or Office opens, though, is what the *central
//! directory* at the end lists. So the offset, name, method and sizes of each local entry are
//! remembered, and the central directory and end record are read as they arrive and must agree
//! with them exactly: every central entry is a local entry that was read, at that offset, with
//! that name, method and sizes; no local entry is left out; no name repeats; nothing follows the
//! end record but the comment it declares. Anything hidden from this reader (inside a stored
//! entry's data, after the directory, behind a duplicate name) therefore makes the file refused.

use super::xml::Xml;
use crate::dlp::Scanner;
use crate::inspect::{Detected, FileKind, extension};
use flate2::{Decompress, FlushDecompress, Status};
use std::collections::{BTreeMap, HashSet};

/// Most ZIP entries accepted.
const MAX_ENTRIES: usize = 20_000;
/// Most bytes of entry names remembered over the whole archive.
const MAX_NAME_BYTES: usize = 4 << 20;
/// Most bytes one ZIP entry may inflate to before the archive is refused (a zip bomb).
const MAX_INFLATED: u64 = 4 << 30;
/// How many first bytes of each entry are checked for a magic number.
const HEAD: usize = 512;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR: u32 = 0x0706_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;

/// Refusal reasons, as the person who sent the file reads them.
const EXECUTABLE: &str = "archive holding an executable or script";
const NESTED: &str = "archive holding another archive";
const MACROS: &str = "macro-enabled office document";
const ACTIVE: &str = "office document with embedded objects, ActiveX controls, macro sheets or scripts";
const EXTERNAL: &str = "office document that loads a template or object from elsewhere";
const DAMAGED: &str = "damaged ZIP data";
const HIDDEN: &str = "ZIP archive whose central directory does not match its entries (hidden content)";

/// One local entry as read: what the central directory must repeat.
#[derive(Debug)]
struct Local {
    name: Vec<u8>,
    method: u16,
    compressed: u64,
    size: u64,
}

/// Where the reader is.
#[derive(Debug)]
enum State {
    /// Collecting a signature and then a local header (or the first central record).
    Header,
    /// Inside an entry's data.
    Data(Box<Entry>),
    /// After an entry with a data descriptor: collecting it.
    Descriptor(Box<Entry>),
    /// Collecting central directory records.
    Central,
    /// Collecting the ZIP64 end record, its locator, or the end record and its comment.
    End,
    /// The end record and its comment were read: nothing may follow.
    Done,
    /// Refused.
    Broken(&'static str),
}

/// The entry being read.
#[derive(Debug)]
struct Entry {
    offset: u64,
    local: Local,
    /// Compressed bytes still to come, when the header says.
    left: Option<u64>,
    inflate: Option<Box<Decompress>>,
    extract: Extract,
    descriptor: bool,
    zip64: bool,
    /// Compressed bytes read, and bytes they inflated to.
    read: u64,
    inflated: u64,
    head: Vec<u8>,
    xml: Xml,
}

/// What to do with an entry's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extract {
    Skip,
    /// Text of an office XML part: to the DLP scan.
    Text,
    /// Tags whose attributes matter: `[Content_Types].xml` and relationships.
    Tags,
    /// The OpenDocument `mimetype`: kept (bounded).
    Mimetype,
}

#[derive(Debug)]
pub(super) struct Zip {
    state: State,
    buf: Vec<u8>,
    /// Bytes of the archive consumed so far, and where the record in `buf` began.
    pos: u64,
    record_at: u64,
    /// Every local entry read, by the offset of its header.
    locals: BTreeMap<u64, Local>,
    names: HashSet<Vec<u8>>,
    name_bytes: usize,
    /// Where the central directory began, and how many records it held.
    central_at: Option<u64>,
    central_count: u64,
    /// The ZIP64 end record: entries, directory size, directory offset.
    end64: Option<(u64, u64, u64)>,
    end64_at: Option<u64>,
    content_types: bool,
    word: bool,
    xl: bool,
    ppt: bool,
    types: Types,
    odf_mimetype: String,
    /// A refusal found in an entry (decided as soon as it is seen).
    refusal: Option<&'static str>,
}

/// What `[Content_Types].xml` declares.
#[derive(Debug, Default)]
struct Types {
    word: bool,
    xl: bool,
    ppt: bool,
}

impl Default for Zip {
    fn default() -> Self {
        Self {
            state: State::Header,
            buf: Vec::new(),
            pos: 0,
            record_at: 0,
            locals: BTreeMap::new(),
            names: HashSet::new(),
            name_bytes: 0,
            central_at: None,
            central_count: 0,
            end64: None,
            end64_at: None,
            content_types: false,
            word: false,
            xl: false,
            ppt: false,
            types: Types::default(),
            odf_mimetype: String::new(),
            refusal: None,
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
    b.get(at..at + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()).map_or(0, u64::from_le_bytes)
}

/// The ZIP64 values of an extra field (id 1): the 64-bit values of the fields whose 32-bit
/// value is saturated, in order. `None` when there is no such field.
fn zip64_values(extra: &[u8]) -> Option<Vec<u64>> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (le16(extra, at), usize::from(le16(extra, at + 2)));
        let body = extra.get(at + 4..at + 4 + len)?;
        if id == 1 {
            return Some(body.chunks_exact(8).map(|c| le64(c, 0)).collect());
        }
        at += 4 + len;
    }
    None
}

impl Zip {
    /// A refusal already certain (the rest of the upload need not be read).
    pub(super) fn refused(&self) -> Option<&'static str> {
        match self.state {
            State::Broken(why) => Some(why),
            _ => self.refusal,
        }
    }

    pub(super) fn feed(&mut self, mut input: &[u8], scanner: &mut Scanner) {
        while !input.is_empty() {
            if self.refused().is_some() {
                return;
            }
            let before = input.len();
            let state = std::mem::replace(&mut self.state, State::Broken(DAMAGED));
            self.state = match state {
                State::Data(e) => self.data(e, &mut input, scanner),
                State::Descriptor(e) => self.descriptor(e, &mut input),
                State::Done => State::Broken("ZIP archive with data after its end"),
                record => self.record(record, &mut input),
            };
            self.pos += (before - input.len()) as u64;
        }
    }

    /// Move bytes from `input` until `buf` holds `need`; whether it does.
    fn fill(&mut self, input: &mut &[u8], need: usize) -> bool {
        let take = need.saturating_sub(self.buf.len()).min(input.len());
        let (head, rest) = input.split_at(take);
        self.buf.extend_from_slice(head);
        *input = rest;
        self.buf.len() >= need
    }

    /// Collect one header-like record (local header, central record, end records).
    fn record(&mut self, state: State, input: &mut &[u8]) -> State {
        if self.buf.is_empty() {
            self.record_at = self.pos;
        }
        if !self.fill(input, 4) {
            return state;
        }
        let sig = le32(&self.buf, 0);
        let allowed = match state {
            State::Header => matches!(sig, LOCAL | CENTRAL | END64 | END),
            State::Central => matches!(sig, CENTRAL | END64 | END),
            _ => matches!(sig, LOCATOR | END),
        };
        if !allowed {
            return State::Broken(if sig == LOCAL { HIDDEN } else { DAMAGED });
        }
        let (fixed, lengths): (usize, &[usize]) = match sig {
            LOCAL => (30, &[26, 28]),
            CENTRAL => (46, &[28, 30, 32]),
            END64 => (12, &[]),
            LOCATOR => (20, &[]),
            _ => (22, &[20]),
        };
        if !self.fill(input, fixed) {
            return state;
        }
        let need = if sig == END64 {
            usize::try_from(le64(&self.buf, 4)).unwrap_or(usize::MAX).saturating_add(12).min(1 << 20)
        } else {
            fixed + lengths.iter().map(|&at| usize::from(le16(&self.buf, at))).sum::<usize>()
        };
        if !self.fill(input, need) {
            return state;
        }
        let record = std::mem::take(&mut self.buf);
        match sig {
            LOCAL => self.local(&record),
            CENTRAL => self.central(&record),
            END64 => {
                if !self.locals.is_empty() {
                    return State::Broken(HIDDEN);
                }
                self.end64 = Some((le64(&record, 32), le64(&record, 40), le64(&record, 48)));
                self.end64_at = Some(self.record_at);
                State::End
            }
            LOCATOR => {
                if self.end64_at != Some(le64(&record, 8)) {
                    return State::Broken(DAMAGED);
                }
                State::End
            }
            _ => self.end(&record),
        }
    }

    /// A local header: start reading its entry.
    fn local(&mut self, h: &[u8]) -> State {
        let flags = le16(h, 6);
        let method = le16(h, 8);
        let name_len = usize::from(le16(h, 26));
        let name = h.get(30..30 + name_len).unwrap_or_default().to_vec();
        let extra = h.get(30 + name_len..).unwrap_or_default();
        let zip64 = zip64_values(extra);
        let (mut size, mut compressed) = (u64::from(le32(h, 22)), u64::from(le32(h, 18)));
        if let Some(v) = &zip64 {
            // A local ZIP64 field holds both sizes, uncompressed first.
            size = v.first().copied().unwrap_or(size);
            compressed = v.get(1).copied().unwrap_or(compressed);
        }
        if self.locals.len() >= MAX_ENTRIES {
            return State::Broken("ZIP archive with too many entries");
        }
        self.name_bytes += name.len();
        if self.name_bytes > MAX_NAME_BYTES {
            return State::Broken("ZIP archive with too many entries");
        }
        // Names differing only in case or slash direction open as one part in some tools.
        let key: Vec<u8> = name.iter().map(|b| if *b == b'\\' { b'/' } else { b.to_ascii_lowercase() }).collect();
        if !self.names.insert(key) {
            return State::Broken("ZIP archive with two entries of the same name");
        }
        if flags & 0x01 != 0 {
            return State::Broken("encrypted ZIP archive");
        }
        let descriptor = flags & 0x08 != 0;
        let inflate = match method {
            0 if descriptor => return State::Broken("ZIP archive that cannot be read as it streams"),
            0 => None,
            8 => Some(Box::new(Decompress::new(false))),
            // Office files use only stored and deflated entries; anything else could not be read.
            _ => return State::Broken("ZIP archive with an unsupported compression"),
        };
        let extract = self.note(&String::from_utf8_lossy(&name));
        if let Some(why) = self.refusal {
            return State::Broken(why);
        }
        let left = if descriptor { None } else { Some(compressed) };
        let xml = if extract == Extract::Tags { Xml::with_tags() } else { Xml::default() };
        let entry = Entry {
            offset: self.record_at,
            local: Local { name, method, compressed, size },
            left,
            inflate,
            extract,
            descriptor,
            zip64: zip64.is_some(),
            read: 0,
            inflated: 0,
            head: Vec::new(),
            xml,
        };
        if left == Some(0) {
            return self.end_entry(Box::new(entry));
        }
        State::Data(Box::new(entry))
    }

    /// Record what an entry's name says; decide what to do with its content.
    fn note(&mut self, name: &str) -> Extract {
        let lower = name.to_ascii_lowercase().replace('\\', "/");
        let file = lower.rsplit('/').next().unwrap_or_default();
        if lower == "[content_types].xml" {
            self.content_types = true;
            return Extract::Tags;
        }
        if lower == "mimetype" {
            return Extract::Mimetype;
        }
        self.word |= lower.starts_with("word/");
        self.xl |= lower.starts_with("xl/");
        self.ppt |= lower.starts_with("ppt/");
        let in_dir = |dir: &str| lower.starts_with(dir) || lower.contains(&format!("/{dir}"));
        if file == "vbaproject.bin" || file == "vbadata.xml" || in_dir("basic/") {
            self.refusal = Some(MACROS);
        } else if in_dir("embeddings/") || in_dir("activex/") || in_dir("macrosheets/") || in_dir("scripts/") {
            self.refusal = Some(ACTIVE);
        }
        let ext = extension(file);
        if super::EXECUTABLE_EXTENSIONS.contains(&ext.as_str()) {
            self.refusal = Some(EXECUTABLE);
        }
        const ARCHIVE: &[&str] = &["zip", "rar", "7z", "gz", "tgz", "tar", "bz2", "xz", "cab", "iso", "img", "zst"];
        if ARCHIVE.contains(&ext.as_str()) {
            self.refusal = self.refusal.or(Some(NESTED));
        }
        if lower.ends_with(".rels") {
            return Extract::Tags;
        }
        let text = (lower.starts_with("word/") && lower.ends_with(".xml"))
            || lower == "xl/sharedstrings.xml"
            || (lower.starts_with("xl/worksheets/") && lower.ends_with(".xml"))
            || (lower.starts_with("ppt/slides/") && lower.ends_with(".xml"))
            || (lower.starts_with("ppt/notesslides/") && lower.ends_with(".xml"))
            || lower == "content.xml";
        if text { Extract::Text } else { Extract::Skip }
    }

    /// Consume entry data from `input`.
    fn data(&mut self, mut e: Box<Entry>, input: &mut &[u8], scanner: &mut Scanner) -> State {
        let take = e.left.map_or(input.len(), |l| usize::try_from(l).unwrap_or(usize::MAX).min(input.len()));
        let mut ended = false;
        if let Some(mut d) = e.inflate.take() {
            let mut out = [0u8; 16 * 1024];
            let mut pos = 0;
            loop {
                let slice = input.get(pos..take).unwrap_or_default();
                let (before_in, before_out) = (d.total_in(), d.total_out());
                let status = d.decompress(slice, &mut out, FlushDecompress::None);
                let used = usize::try_from(d.total_in() - before_in).unwrap_or(0);
                let made = usize::try_from(d.total_out() - before_out).unwrap_or(0);
                pos += used;
                e.inflated += made as u64;
                if e.inflated > MAX_INFLATED {
                    return State::Broken("ZIP archive that inflates too far");
                }
                self.content(&mut e, out.get(..made).unwrap_or_default(), scanner);
                match status {
                    Ok(Status::StreamEnd) => {
                        ended = true;
                        break;
                    }
                    Ok(_) if used == 0 && made == 0 => break,
                    Ok(_) => {}
                    Err(_) => return State::Broken(DAMAGED),
                }
                if pos >= take && made < out.len() {
                    break;
                }
            }
            e.inflate = Some(d);
            if e.left.is_none() && !ended && pos < input.len() {
                // No progress on data that is there: not a deflate stream.
                return State::Broken(DAMAGED);
            }
            // With a known size, the rest of the entry's data is consumed (and must be listed by
            // nothing); streamed, the entry ends where the deflate stream does.
            let used = if e.left.is_none() { pos } else { take };
            e.read += used as u64;
            *input = input.get(used..).unwrap_or_default();
            if e.left.is_none() && !ended {
                return State::Data(e);
            }
        } else {
            let piece = input.get(..take).unwrap_or_default();
            self.content(&mut e, piece, scanner);
            e.inflated += take as u64;
            e.read += take as u64;
            *input = input.get(take..).unwrap_or_default();
        }
        if let Some(l) = &mut e.left {
            *l -= take as u64;
            if *l > 0 {
                return State::Data(e);
            }
        }
        if e.descriptor { State::Descriptor(e) } else { self.end_entry(e) }
    }

    /// An entry's (inflated) content.
    fn content(&mut self, e: &mut Entry, piece: &[u8], scanner: &mut Scanner) {
        if e.head.len() < HEAD {
            let take = (HEAD - e.head.len()).min(piece.len());
            e.head.extend_from_slice(piece.get(..take).unwrap_or_default());
            if e.head.len() >= HEAD {
                self.check_head(&e.head);
            }
        }
        match e.extract {
            Extract::Skip => {}
            Extract::Text => scanner.feed(&e.xml.feed(piece).text),
            Extract::Tags => {
                let tags = e.xml.feed(piece).tags;
                for tag in tags {
                    self.check_tag(&tag);
                }
                if e.xml.overlong {
                    self.refusal = self.refusal.or(Some("office document with an oversized XML tag"));
                }
            }
            Extract::Mimetype => {
                if self.odf_mimetype.len() < 256 {
                    self.odf_mimetype.push_str(&String::from_utf8_lossy(piece));
                }
            }
        }
    }

    /// The first bytes of an entry: an executable, an archive or an OLE file (a macro project
    /// or an embedded object, whatever its name) is refused.
    fn check_head(&mut self, head: &[u8]) {
        const MAGIC: &[&[u8]] = &[
            b"MZ",
            b"#!",
            b"\x7fELF",
            b"\xfe\xed\xfa\xce",
            b"\xfe\xed\xfa\xcf",
            b"\xce\xfa\xed\xfe",
            b"\xcf\xfa\xed\xfe",
            b"\xca\xfe\xba\xbe",
        ];
        let found = if MAGIC.iter().any(|m| head.starts_with(m)) {
            Some(EXECUTABLE)
        } else {
            infer::get(head).and_then(|t| match (t.matcher_type(), t.mime_type()) {
                (infer::MatcherType::App, _) => Some(EXECUTABLE),
                (_, "application/x-ole-storage" | "application/msword" | "application/vnd.ms-excel") => Some(ACTIVE),
                (_, "application/vnd.ms-powerpoint") => Some(ACTIVE),
                (infer::MatcherType::Archive | infer::MatcherType::Doc, _) => Some(NESTED),
                _ => None,
            })
        };
        self.refusal = self.refusal.or(found);
    }

    /// A tag of `[Content_Types].xml` or of a relationships part.
    fn check_tag(&mut self, tag: &str) {
        let norm: String = tag
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| if c == '\'' { '"' } else { c.to_ascii_lowercase() })
            .collect();
        if norm.contains("macroenabled") || norm.contains("vbaproject") {
            self.refusal = self.refusal.or(Some(MACROS));
        }
        if norm.contains("activex") || norm.contains("macrosheet") {
            self.refusal = self.refusal.or(Some(ACTIVE));
        }
        let loads = ["/attachedtemplate\"", "/oleobject\"", "/subdocument\"", "/frame\""];
        if norm.contains("targetmode=\"external\"") && loads.iter().any(|t| norm.contains(t)) {
            self.refusal = self.refusal.or(Some(EXTERNAL));
        }
        if norm.starts_with("override") || norm.starts_with("default") {
            self.types.word |= norm.contains("wordprocessingml");
            self.types.xl |= norm.contains("spreadsheetml");
            self.types.ppt |= norm.contains("presentationml");
        }
    }

    /// A data descriptor: an optional signature, the CRC, then the sizes (64-bit when the local
    /// header had a ZIP64 field). The sizes must be those just read.
    fn descriptor(&mut self, e: Box<Entry>, input: &mut &[u8]) -> State {
        if !self.fill(input, 4) {
            return State::Descriptor(e);
        }
        let signed = le32(&self.buf, 0) == DESCRIPTOR;
        let at = if signed { 8 } else { 4 };
        let len = at + if e.zip64 { 16 } else { 8 };
        if !self.fill(input, len) {
            return State::Descriptor(e);
        }
        let d = std::mem::take(&mut self.buf);
        let (compressed, size) = if e.zip64 {
            (le64(&d, at), le64(&d, at + 8))
        } else {
            (u64::from(le32(&d, at)), u64::from(le32(&d, at + 4)))
        };
        let mut e = e;
        e.local.compressed = compressed;
        e.local.size = size;
        self.end_entry(e)
    }

    /// The entry is read: check its sizes and remember it for the central directory.
    fn end_entry(&mut self, mut e: Box<Entry>) -> State {
        if !e.head.is_empty() && e.head.len() < HEAD {
            let head = std::mem::take(&mut e.head);
            self.check_head(&head);
        }
        if e.read != e.local.compressed || (e.local.method == 8 && e.inflated != e.local.size) {
            return State::Broken(DAMAGED);
        }
        if e.local.method == 0 && e.local.size != e.local.compressed {
            return State::Broken(DAMAGED);
        }
        if let Some(why) = self.refusal {
            return State::Broken(why);
        }
        self.locals.insert(e.offset, e.local);
        State::Header
    }

    /// A central directory record: it must repeat a local entry that was read.
    fn central(&mut self, h: &[u8]) -> State {
        self.central_at.get_or_insert(self.record_at);
        self.central_count += 1;
        if le16(h, 8) & 0x01 != 0 {
            return State::Broken("encrypted ZIP archive");
        }
        let method = le16(h, 10);
        let (mut compressed, mut size, mut offset) =
            (u64::from(le32(h, 20)), u64::from(le32(h, 24)), u64::from(le32(h, 42)));
        let name_len = usize::from(le16(h, 28));
        let extra_len = usize::from(le16(h, 30));
        let name = h.get(46..46 + name_len).unwrap_or_default();
        let extra = h.get(46 + name_len..46 + name_len + extra_len).unwrap_or_default();
        if let Some(v) = zip64_values(extra) {
            let mut v = v.into_iter();
            for field in [&mut size, &mut compressed, &mut offset] {
                if *field == 0xFFFF_FFFF {
                    *field = v.next().unwrap_or(*field);
                }
            }
        }
        let matches = self
            .locals
            .remove(&offset)
            .is_some_and(|l| l.name == name && l.method == method && l.compressed == compressed && l.size == size);
        if matches { State::Central } else { State::Broken(HIDDEN) }
    }

    /// The end record: its counts must match what was read; only its comment may follow.
    fn end(&mut self, r: &[u8]) -> State {
        // Every local entry must have been listed.
        if !self.locals.is_empty() {
            return State::Broken(HIDDEN);
        }
        let directory_end = self.end64_at.unwrap_or(self.record_at);
        let central_at = self.central_at.unwrap_or(directory_end);
        let (mut count, mut size, mut offset) =
            (u64::from(le16(r, 10)), u64::from(le32(r, 12)), u64::from(le32(r, 16)));
        if let Some((c, s, o)) = self.end64 {
            if count == 0xFFFF {
                count = c;
            }
            if size == 0xFFFF_FFFF {
                size = s;
            }
            if offset == 0xFFFF_FFFF {
                offset = o;
            }
        }
        if count != self.central_count || offset != central_at || size != directory_end - central_at {
            return State::Broken(HIDDEN);
        }
        State::Done
    }

    /// What the archive is, once every byte was read.
    pub(super) fn classify(self) -> Detected {
        if let Some(why) = self.refused() {
            return Detected::Refused(why);
        }
        if !matches!(self.state, State::Done) {
            return Detected::Refused(DAMAGED);
        }
        if self.content_types {
            if self.word && self.types.word {
                return Detected::Kind(FileKind::Docx);
            }
            if self.xl && self.types.xl {
                return Detected::Kind(FileKind::Xlsx);
            }
            if self.ppt && self.types.ppt {
                return Detected::Kind(FileKind::Pptx);
            }
        }
        match self.odf_mimetype.trim() {
            "application/vnd.oasis.opendocument.text" => Detected::Kind(FileKind::Odt),
            "application/vnd.oasis.opendocument.spreadsheet" => Detected::Kind(FileKind::Ods),
            "application/vnd.oasis.opendocument.presentation" => Detected::Kind(FileKind::Odp),
            _ => Detected::Refused("ZIP archive"),
        }
    }
}
