//! The text and the tags of an XML part, as its bytes stream past.
//!
//! Character references (`&#52;`, `&#x34;`) and the five predefined entities are decoded in text
//! and in tags alike, so neither an identifier nor a content type can hide behind them. A tag
//! that must be read whole (relationships, content types) is kept up to [`MAX_TAG`] bytes; a
//! longer one is reported, so padding cannot push a declaration out of sight.

use super::Utf8Carry;

/// Longest tag kept whole. Real relationship and content-type tags are far shorter.
pub(super) const MAX_TAG: usize = 64 * 1024;
/// Longest entity reference (`&#x10FFFF;` and the named ones fit).
const MAX_ENTITY: usize = 12;

/// What a chunk of XML held.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    /// The text between tags, with a space where a tag separates words.
    pub text: String,
    /// Whole tags (decoded, without `<` and `>`), only when tags are kept.
    pub tags: Vec<String>,
}

#[derive(Debug, Default)]
pub(super) struct Xml {
    in_tag: bool,
    /// Inside `<![CDATA[ … ]]>`: text, read as written (no references).
    cdata: bool,
    brackets: usize,
    tag: String,
    entity: Option<String>,
    utf8: Utf8Carry,
    /// Keep whole tags (up to [`MAX_TAG`]) rather than only their names.
    keep_tags: bool,
    /// A kept tag was longer than [`MAX_TAG`].
    pub overlong: bool,
}

impl Xml {
    /// A reader that keeps whole tags, for parts whose attributes matter.
    pub(super) fn with_tags() -> Self {
        Self { keep_tags: true, ..Self::default() }
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> Parsed {
        let decoded = self.utf8.decode(bytes);
        let mut out = Parsed { text: String::with_capacity(decoded.len()), tags: Vec::new() };
        for c in decoded.chars() {
            if self.cdata {
                // `]` are held back until it is clear whether they close the section.
                match c {
                    ']' => self.brackets += 1,
                    '>' if self.brackets >= 2 => {
                        out.text.extend(std::iter::repeat_n(']', self.brackets - 2));
                        self.brackets = 0;
                        self.cdata = false;
                    }
                    other => {
                        out.text.extend(std::iter::repeat_n(']', self.brackets));
                        self.brackets = 0;
                        out.text.push(other);
                    }
                }
                continue;
            }
            if let Some(e) = &mut self.entity {
                if c == ';' {
                    let raw = std::mem::take(e);
                    self.entity = None;
                    match decode_entity(&raw) {
                        Some(d) => self.push(d, &mut out),
                        None => {
                            // Not an entity: keep what was written.
                            self.push('&', &mut out);
                            raw.chars().chain([';']).for_each(|c| self.push(c, &mut out));
                        }
                    }
                    continue;
                }
                if e.len() < MAX_ENTITY && (c.is_ascii_alphanumeric() || c == '#') {
                    e.push(c);
                    continue;
                }
                let raw = std::mem::take(e);
                self.entity = None;
                self.push('&', &mut out);
                raw.chars().for_each(|c| self.push(c, &mut out));
            }
            match c {
                '&' => self.entity = Some(String::new()),
                '<' if !self.in_tag => self.in_tag = true,
                '>' if self.in_tag => {
                    self.in_tag = false;
                    let tag = std::mem::take(&mut self.tag);
                    if breaks(&tag) {
                        out.text.push(' ');
                    }
                    if self.keep_tags {
                        out.tags.push(tag);
                    }
                }
                other => self.push(other, &mut out),
            }
        }
        out
    }

    fn push(&mut self, c: char, out: &mut Parsed) {
        if !self.in_tag {
            out.text.push(c);
        } else if self.tag.len() < if self.keep_tags { MAX_TAG } else { 64 } {
            self.tag.push(c);
            if self.tag == "![CDATA[" {
                self.tag.clear();
                self.in_tag = false;
                self.cdata = true;
            }
        } else if self.keep_tags {
            self.overlong = true;
        }
    }
}

/// `amp`, `#52`, `#x34` … to the character they stand for.
fn decode_entity(raw: &str) -> Option<char> {
    let code = if let Some(hex) = raw.strip_prefix("#x").or_else(|| raw.strip_prefix("#X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(dec) = raw.strip_prefix('#') {
        dec.parse().ok()?
    } else {
        return match raw {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => None,
        };
    };
    char::from_u32(code)
}

/// Whether a tag separates words: paragraph, line break, tab, table cell and row, spreadsheet
/// cell and value, shared string.
fn breaks(tag: &str) -> bool {
    let name = tag.trim_start_matches('/').split([' ', '/', '\t', '\n']).next().unwrap_or_default();
    let local = name.rsplit(':').next().unwrap_or_default();
    matches!(local, "p" | "br" | "tab" | "tc" | "tr" | "c" | "v" | "si" | "row" | "h" | "s" | "line-break" | "cr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_decoded_across_chunks() {
        let mut x = Xml::default();
        let mut text = String::new();
        for piece in [&b"<w:t>4&#4"[..], b"9;&#x3", b"1; &amp; &bogus; &lt"] {
            text.push_str(&x.feed(piece).text);
        }
        text.push_str(&x.feed(b";</w:t>").text);
        assert_eq!(text, "411 & &bogus; <");
        let mut x = Xml::default();
        let mut text = x.feed(b"<w:t><![CDATA[4111 <b>1111</b> &#49;]").text;
        text.push_str(&x.feed(b"]>x</w:t>").text);
        assert_eq!(text, "4111 <b>1111</b> &#49;x");
    }

    #[test]
    fn kept_tags_are_whole_and_bounded() {
        let mut x = Xml::with_tags();
        let p = x.feed(b"<Relationship Type=\"a&#x2F;attachedTemplate\" TargetMode='External'/>");
        assert_eq!(p.tags, ["Relationship Type=\"a/attachedTemplate\" TargetMode='External'/"]);
        assert!(!x.overlong);
        let mut x = Xml::with_tags();
        x.feed(b"<Default ");
        x.feed(&vec![b' '; MAX_TAG + 1]);
        assert!(x.overlong);
    }
}
