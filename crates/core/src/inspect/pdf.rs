//! PDFs, read as they stream past: the text of their content streams for the DLP scan, and the
//! names that make a PDF active (JavaScript, launch actions, embedded files), which refuse it.
//!
//! Bytes outside streams, uncompressed streams and Flate streams (inflated through a fixed
//! buffer) go through one small lexer: literal strings `( … )` (escapes decoded) and hex strings
//! `< … >` are text; names (`#xx` escapes decoded) are checked, wherever they are, object streams
//! included. Streams that hold no text (images, fonts, colour profiles, cross-reference data) are
//! skipped unread. Whatever text cannot be read is reported, never silently dropped: a stream in
//! a filter this reader does not decode (ASCIIHex, ASCII85, LZW, RunLength, Crypt), a damaged
//! Flate stream, text shown with glyph codes rather than characters (CID fonts, custom
//! encodings), encryption. The caller treats such a PDF as unscanned.

use crate::dlp::Scanner;
use flate2::{Decompress, FlushDecompress, Status};

/// Most bytes a PDF's streams may inflate to, all together, before it is refused (a bomb).
const MAX_INFLATED: u64 = 4 << 30;
/// Names that make a PDF run something or carry a file: refused.
const ACTIVE: &[&[u8]] = &[b"JavaScript", b"Launch", b"EmbeddedFile", b"EmbeddedFiles", b"RichMedia", b"GoToE", b"XFA"];
/// Names whose stream holds no text: its data is skipped.
const NO_TEXT: &[&[u8]] = &[
    b"Image",
    b"DCTDecode",
    b"JPXDecode",
    b"CCITTFaxDecode",
    b"JBIG2Decode",
    b"Length1",
    b"Length2",
    b"Length3",
    b"Type1C",
    b"CIDFontType0C",
    b"OpenType",
    b"XRef",
    b"Alternate",
];
/// Filters this reader cannot decode: text in such a stream is unread.
const UNREAD_FILTERS: &[&[u8]] = &[b"ASCIIHexDecode", b"ASCII85Decode", b"LZWDecode", b"RunLengthDecode", b"Crypt"];
/// Text-showing operators.
const SHOW: &[&[u8]] = &[b"Tj", b"TJ", b"'", b"\""];

pub(super) const REFUSED: &str =
    "PDF with active content (JavaScript, launch actions, embedded files, XFA forms or rich media)";

#[derive(Debug, Default)]
pub(super) struct Pdf {
    /// The last bytes seen outside a stream, to find `stream` and `endstream` across chunks.
    window: Vec<u8>,
    inflate: Option<Box<Decompress>>,
    /// Inside a stream: the first bytes, to see whether it is zlib data.
    stream_start: Option<Vec<u8>>,
    /// Inside a stream whose data is not read: until `endstream`.
    skipping: bool,
    lexer: Lexer,
    inflated: u64,
    pub(super) encrypted: bool,
    /// Some text could not be read.
    pub(super) unread: bool,
    pub(super) refusal: Option<&'static str>,
}

impl Pdf {
    pub(super) fn feed(&mut self, mut input: &[u8], scanner: &mut Scanner) {
        while !input.is_empty() && self.refusal.is_none() {
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
                input = input.get(take..).unwrap_or_default();
                // A zlib header: CMF 0x78 and a header checksum that divides by 31.
                let zlib = matches!(head.as_slice(), [0x78, b] if (0x78u16 * 256 + u16::from(*b)).is_multiple_of(31));
                if zlib && !self.skipping {
                    let mut d = Box::new(Decompress::new(true));
                    if !self.inflate_into(&mut d, &head, scanner).1 {
                        self.inflate = Some(d);
                    }
                } else {
                    // Not compressed (or skipped): read by the raw scan below.
                    self.raw(&head, scanner);
                }
                continue;
            }
            if let Some(mut d) = self.inflate.take() {
                let (used, ended) = self.inflate_into(&mut d, input, scanner);
                input = input.get(used..).unwrap_or_default();
                if !ended {
                    self.inflate = Some(d);
                }
                continue;
            }
            let used = self.raw(input, scanner);
            input = input.get(used..).unwrap_or_default();
        }
    }

    /// Raw bytes, up to and including a `stream` keyword: lexed unless skipped. Returns the
    /// bytes used.
    fn raw(&mut self, input: &[u8], scanner: &mut Scanner) -> usize {
        let mut cut = input.len();
        let mut starts = false;
        let mut lex_from = if self.skipping { None } else { Some(0) };
        for (i, b) in input.iter().enumerate() {
            self.window.push(*b);
            if self.window.len() > 16 {
                self.window.remove(0);
            }
            if self.window.ends_with(b"endstream") {
                match lex_from {
                    // The stream's end ends whatever string it left open.
                    Some(from) => {
                        self.lexer.feed(input.get(from..=i).unwrap_or_default(), scanner);
                        self.lexer.end(scanner);
                    }
                    None => self.skipping = false,
                }
                lex_from = Some(i + 1);
            } else if self.window.ends_with(b"stream") && !self.skipping {
                cut = i + 1;
                starts = true;
                break;
            }
        }
        if let Some(from) = lex_from {
            self.lexer.feed(input.get(from..cut).unwrap_or_default(), scanner);
        }
        if starts {
            self.lexer.end_token();
            self.window.clear();
            self.stream_start = Some(Vec::new());
            let dict = std::mem::take(&mut self.lexer.dict);
            self.skipping = dict.no_text || dict.unread_filter;
            self.unread |= dict.unread_filter && !dict.no_text;
        }
        self.take_lexer_state();
        cut
    }

    /// The last byte was read: a name at the very end counts too.
    pub(super) fn finish(&mut self) {
        self.lexer.end_token();
        self.take_lexer_state();
        self.unread |= self.lexer.mostly_codes();
    }

    fn take_lexer_state(&mut self) {
        self.encrypted |= self.lexer.encrypted;
        self.unread |= self.lexer.unread;
        if self.lexer.active {
            self.refusal = Some(REFUSED);
        }
    }

    /// Inflate `input` into the lexer: the bytes used, and whether the stream ended (or was
    /// damaged, which ends it too and leaves its text unread).
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
            if self.inflated > MAX_INFLATED {
                self.refusal = Some("PDF that inflates too far");
                return (input.len(), true);
            }
            self.lexer.feed(out.get(..made).unwrap_or_default(), scanner);
            self.take_lexer_state();
            match status {
                Ok(Status::StreamEnd) => {
                    self.lexer.end(scanner);
                    return (pos, true);
                }
                Err(_) => {
                    self.lexer.end(scanner);
                    self.unread = true;
                    self.skipping = true;
                    return (pos, true);
                }
                Ok(_) if used == 0 && made < out.len() => return (pos, false),
                Ok(_) => {}
            }
        }
    }
}

/// What the dictionary before a stream said about it.
#[derive(Debug, Default)]
struct Dict {
    no_text: bool,
    unread_filter: bool,
}

#[derive(Debug, Default)]
enum Token {
    #[default]
    None,
    /// A literal string, `depth` parentheses deep; an escape or octal escape under way.
    Literal {
        depth: u32,
        escape: bool,
        octal: Option<(u8, u8)>,
    },
    /// After `<`: a dictionary (`<<`) or a hex string.
    Angle,
    Hex {
        high: Option<u8>,
    },
    Name(Vec<u8>),
    /// A comment, to the end of its line.
    Comment,
    /// A keyword or number.
    Word(Vec<u8>),
}

/// PDF tokens enough to find strings, names and text operators.
#[derive(Debug, Default)]
struct Lexer {
    token: Token,
    in_array: bool,
    text: Vec<u8>,
    /// String bytes since the last operator: all of them, and control bytes (glyph codes).
    pending: (u64, u64),
    /// String bytes shown by text operators: all of them, and control bytes.
    shown: (u64, u64),
    dict: Dict,
    encrypted: bool,
    active: bool,
    unread: bool,
}

fn delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0 || b"()<>[]{}/%".contains(&b)
}

impl Lexer {
    fn feed(&mut self, bytes: &[u8], scanner: &mut Scanner) {
        for &b in bytes {
            self.byte(b);
            if self.text.len() >= 4096 {
                self.flush(scanner);
            }
        }
        self.flush(scanner);
    }

    fn byte(&mut self, b: u8) {
        match &mut self.token {
            Token::Literal { depth, escape, octal } => {
                if let Some((value, n)) = octal {
                    if (b'0'..=b'7').contains(&b) && *n < 3 {
                        *value = value.wrapping_mul(8).wrapping_add(b - b'0');
                        *n += 1;
                        return;
                    }
                    let v = *value;
                    *octal = None;
                    self.string_byte(v);
                    return self.byte(b);
                }
                if *escape {
                    *escape = false;
                    match b {
                        b'n' | b'r' | b't' => self.text.push(b' '),
                        b'0'..=b'7' => *octal = Some((b - b'0', 1)),
                        b'\r' | b'\n' => {}
                        other => self.text.push(other),
                    }
                    return;
                }
                match b {
                    b'\\' => *escape = true,
                    b'(' => {
                        *depth += 1;
                        self.text.push(b);
                    }
                    b')' => {
                        *depth -= 1;
                        if *depth == 0 {
                            self.token = Token::None;
                            if !self.in_array {
                                self.text.push(b' ');
                            }
                        } else {
                            self.text.push(b);
                        }
                    }
                    other => self.string_byte(other),
                }
            }
            Token::Angle => {
                if b == b'<' {
                    self.token = Token::None;
                } else {
                    self.token = Token::Hex { high: None };
                    self.byte(b);
                }
            }
            Token::Hex { high } => match b {
                b'>' => {
                    if let Some(h) = high.take() {
                        self.string_byte(h << 4);
                    }
                    self.token = Token::None;
                    if !self.in_array {
                        self.text.push(b' ');
                    }
                }
                _ => {
                    let Some(v) = (b as char).to_digit(16).and_then(|v| u8::try_from(v).ok()) else { return };
                    match high.take() {
                        Some(h) => self.string_byte(h << 4 | v),
                        None => *high = Some(v),
                    }
                }
            },
            Token::Comment => {
                if b == b'\r' || b == b'\n' {
                    self.token = Token::None;
                }
            }
            Token::Name(n) | Token::Word(n) if !delimiter(b) => {
                if n.len() < 64 {
                    n.push(b);
                }
            }
            Token::Name(_) | Token::Word(_) | Token::None => {
                self.end_token();
                match b {
                    b'(' => self.token = Token::Literal { depth: 1, escape: false, octal: None },
                    b'<' => self.token = Token::Angle,
                    b'/' => self.token = Token::Name(Vec::new()),
                    b'%' => self.token = Token::Comment,
                    b'[' => self.in_array = true,
                    b']' => {
                        self.in_array = false;
                        self.text.push(b' ');
                    }
                    b'\n' | b'\r' if self.text.last().is_some_and(|c| *c != b' ') => self.text.push(b' '),
                    b if !delimiter(b) => self.token = Token::Word(vec![b]),
                    _ => {}
                }
            }
        }
    }

    /// A byte of a string's content: text; a control byte means glyph codes.
    fn string_byte(&mut self, b: u8) {
        self.pending.0 += 1;
        if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
            self.pending.1 += 1;
        } else {
            self.text.push(b);
        }
    }

    /// Whether the text shown is mostly glyph codes rather than characters: a CID font's
    /// two-byte codes are about half control bytes; a few ligatures or bullets drawn from a
    /// font's control positions (as TeX does) are not.
    fn mostly_codes(&self) -> bool {
        self.shown.1 * 5 > self.shown.0
    }

    fn end_token(&mut self) {
        match std::mem::take(&mut self.token) {
            Token::Name(raw) => self.name(&crate::validate::hex_escapes(&raw, b'#')),
            Token::Word(w) if w.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'\'' || *c == b'"') => {
                if SHOW.contains(&w.as_slice()) {
                    self.shown.0 += self.pending.0;
                    self.shown.1 += self.pending.1;
                }
                self.pending = (0, 0);
                if w == b"obj" {
                    self.dict = Dict::default();
                }
            }
            _ => {}
        }
    }

    fn name(&mut self, n: &[u8]) {
        if ACTIVE.contains(&n) {
            self.active = true;
        }
        if n == b"Encrypt" {
            self.encrypted = true;
        }
        self.dict.no_text |= NO_TEXT.contains(&n);
        self.dict.unread_filter |= UNREAD_FILTERS.contains(&n);
    }

    /// A stream ended: whatever token was open ends with it.
    fn end(&mut self, scanner: &mut Scanner) {
        self.end_token();
        self.token = Token::None;
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
