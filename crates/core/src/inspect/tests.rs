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
    let mut x = xml::Xml::default();
    s.feed(&x.feed(b"<w:p><w:r><w:t>41111111</w:t></w:r><w:r><w:t>11111111</w:t></w:r></w:p><w:p>x</w:p>").text);
    assert_eq!(s.finish().get(&Detector::PaymentCard), Some(&1));
}

#[test]
fn pdf_literal_strings_are_read() {
    let pdf = b"%PDF-1.4\n1 0 obj<</Length 44>>stream\nBT /F1 12 Tf (Card 4111 1111 1111 1111) Tj ET\nendstream\nendobj\n%%EOF";
    let i = inspect(pdf, 5);
    assert_eq!(i.detected, Detected::Kind(FileKind::Pdf));
    assert_eq!(i.findings.get(&Detector::PaymentCard), Some(&1));
}

/// A ZIP written record by record, so tests can hide things where a reader should look.
#[derive(Default)]
struct Z {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

/// Where and how a local entry was written: what its central record repeats.
#[derive(Clone, Copy)]
struct At {
    offset: u32,
    method: u16,
    crc: u32,
    compressed: u32,
    size: u32,
}

impl Z {
    fn local(&mut self, name: &str, data: &[u8], method: u16) -> At {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let body = if method == 8 {
            use std::io::Write;
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.to_vec()
        };
        let at = At {
            offset: self.out.len() as u32,
            method,
            crc: crc.sum(),
            compressed: body.len() as u32,
            size: data.len() as u32,
        };
        self.out.extend_from_slice(b"PK\x03\x04\x14\0\0\0");
        self.out.extend_from_slice(&method.to_le_bytes());
        self.out.extend_from_slice(&[0, 0, 0x21, 0]);
        for v in [at.crc, at.compressed, at.size] {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self.out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.out.extend_from_slice(&[0, 0]);
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(&body);
        at
    }

    fn list(&mut self, name: &str, at: At) {
        let c = &mut self.central;
        c.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0");
        c.extend_from_slice(&at.method.to_le_bytes());
        c.extend_from_slice(&[0, 0, 0x21, 0]);
        for v in [at.crc, at.compressed, at.size] {
            c.extend_from_slice(&v.to_le_bytes());
        }
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0; 12]);
        c.extend_from_slice(&at.offset.to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.count += 1;
    }

    fn add(mut self, name: &str, data: &[u8], method: u16) -> Self {
        let at = self.local(name, data, method);
        self.list(name, at);
        self
    }

    fn finish(mut self, comment: &[u8]) -> Vec<u8> {
        let at = self.out.len() as u32;
        self.out.extend_from_slice(&self.central);
        self.out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        self.out.extend_from_slice(&self.count.to_le_bytes());
        self.out.extend_from_slice(&self.count.to_le_bytes());
        self.out.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&at.to_le_bytes());
        self.out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        self.out.extend_from_slice(comment);
        self.out
    }
}

const TYPES: &[u8] = br#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const BODY: &[u8] = b"<w:document><w:p><w:t>Completion on Friday</w:t></w:p></w:document>";

fn word() -> Z {
    Z::default().add("[Content_Types].xml", TYPES, 8).add("word/document.xml", BODY, 8)
}

/// The result of inspecting `bytes` in pieces of 1, 7 and 4096 bytes (all must agree).
fn judged(bytes: &[u8]) -> Detected {
    let all: Vec<Detected> = [1, 7, 4096].iter().map(|&n| inspect(bytes, n).detected).collect();
    assert!(all.iter().all(|d| *d == all[0]), "{all:?}");
    all[0].clone()
}

fn refused_as(bytes: &[u8], what: &str) {
    match judged(bytes) {
        Detected::Refused(why) => assert!(why.contains(what), "{why:?} should name {what:?}"),
        other => panic!("{other:?} accepted; expected a refusal naming {what:?}"),
    }
}

#[test]
fn a_well_formed_office_file_is_accepted_with_its_comment() {
    assert_eq!(judged(&word().finish(b"")), Detected::Kind(FileKind::Docx));
    assert_eq!(judged(&word().finish(b"saved by a tool")), Detected::Kind(FileKind::Docx));
    let stored = Z::default().add("[Content_Types].xml", TYPES, 0).add("word/document.xml", BODY, 0);
    assert_eq!(judged(&stored.finish(b"")), Detected::Kind(FileKind::Docx));
}

#[test]
fn entries_the_central_directory_lists_but_the_reader_did_not_see_are_refused() {
    // A macro project hidden inside the data of a benign stored entry, listed centrally.
    let mut z = word();
    let mut inner = Z::default();
    let hidden = inner.local("word/vbaProject.bin", b"\xd0\xcf\x11\xe0macros", 0);
    let mut data = b"<cover/>".to_vec();
    data.extend_from_slice(&inner.out);
    let cover = z.local("word/media/cover.xml", &data, 0);
    z.list("word/media/cover.xml", cover);
    z.list("word/vbaProject.bin", At { offset: cover.offset + 30 + 20 + 8, ..hidden });
    refused_as(&z.finish(b""), "hidden content");
    // A local entry between the central directory and its end record.
    let mut bytes = word().finish(b"");
    let end = bytes.len() - 22;
    let mut extra = Z::default();
    extra.local("payload.exe", b"MZ\x90\0", 0);
    bytes.splice(end..end, extra.out.clone());
    refused_as(&bytes, "hidden content");
    // Data after the end record (beyond the comment it declares).
    let mut bytes = word().finish(b"c");
    bytes.extend_from_slice(&extra.out);
    refused_as(&bytes, "after its end");
    // A local entry the central directory leaves out (Office would never see it; the scan would).
    let mut z = word();
    z.local("word/decoy.xml", b"<w:t>decoy</w:t>", 8);
    refused_as(&z.finish(b""), "hidden content");
    // A central name that differs from the local one.
    let mut z = Z::default().add("[Content_Types].xml", TYPES, 8);
    let at = z.local("word/document.xml", BODY, 8);
    z.list("word/payload.exe", at);
    refused_as(&z.finish(b""), "hidden content");
    // Listed twice.
    let mut z = Z::default().add("[Content_Types].xml", TYPES, 8);
    let at = z.local("word/document.xml", BODY, 8);
    z.list("word/document.xml", at);
    z.list("word/document.xml", at);
    refused_as(&z.finish(b""), "hidden content");
    // Wrong sizes.
    let mut z = Z::default().add("[Content_Types].xml", TYPES, 8);
    let at = z.local("word/document.xml", BODY, 8);
    z.list("word/document.xml", At { size: at.size + 1, ..at });
    refused_as(&z.finish(b""), "hidden content");
}

#[test]
fn duplicate_names_and_disguised_extensions_are_refused() {
    refused_as(&word().add("word/document.xml", b"<w:t>other</w:t>", 8).finish(b""), "same name");
    refused_as(&word().add("WORD/Document.xml", b"<w:t>other</w:t>", 8).finish(b""), "same name");
    refused_as(&word().add("tools/x.exe.", b"hello", 0).finish(b""), "executable");
    refused_as(&word().add("tools/x.exe ", b"hello", 0).finish(b""), "executable");
    refused_as(&word().add("tools/run.VBS", b"hello", 0).finish(b""), "executable");
}

#[test]
fn entry_contents_are_judged_by_their_magic_numbers() {
    let mut mz = b"MZ\x90\0\x03\0\0\0".to_vec();
    mz.resize(600, 0);
    refused_as(&word().add("word/media/image1.png", &mz, 8).finish(b""), "executable");
    refused_as(&word().add("word/media/tiny.bin", b"MZ\x90\0", 0).finish(b""), "executable");
    refused_as(&word().add("customXml/item.dat", b"#!/bin/sh\nid\n", 0).finish(b""), "executable");
    refused_as(&word().add("word/a.dat", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0", 0).finish(b""), "executable");
    let nested = Z::default().add("a.txt", b"x", 0).finish(b"");
    refused_as(&word().add("word/media/image2.png", &nested, 0).finish(b""), "another archive");
    let ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0\0\0\0\0";
    refused_as(&word().add("word/custom.dat", ole, 8).finish(b""), "embedded objects");
}

#[test]
fn macro_projects_embedded_objects_and_scripts_are_refused_wherever_declared() {
    for (name, why) in [
        ("word/vbaProject.bin", "macro"),
        ("word/embeddings/oleObject1.bin", "embedded objects"),
        ("word/embeddings/Microsoft_Excel_Worksheet.xlsx", "embedded objects"),
        ("word/activeX/activeX1.bin", "embedded objects"),
        ("xl/macrosheets/sheet1.xml", "embedded objects"),
        ("Scripts/beanshell/Lib/run.bsh", "embedded objects"),
        ("Basic/Standard/Module1.xml", "macro"),
    ] {
        refused_as(&word().add(name, b"<x/>", 8).finish(b""), why);
    }
    // Padding before the declaration, and a character reference inside it, do not hide it.
    let mut types = br#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>"#.to_vec();
    types.extend(std::iter::repeat_n(b' ', 200_000));
    types.extend_from_slice(
        br#"<Default Extension="bin" ContentType="application/vnd.ms-office.vba&#80;roject"/></Types>"#,
    );
    let z = Z::default().add("[Content_Types].xml", &types, 8).add("word/document.xml", BODY, 8);
    refused_as(&z.finish(b""), "macro");
    let mut types = b"<Types><Default ".to_vec();
    types.extend(std::iter::repeat_n(b' ', xml::MAX_TAG + 10));
    types.extend_from_slice(br#"ContentType="x"/></Types>"#);
    let z = Z::default().add("[Content_Types].xml", &types, 8).add("word/document.xml", BODY, 8);
    refused_as(&z.finish(b""), "oversized");
    // A template fetched from elsewhere when the document opens.
    let rels = br#"<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://example.invalid/t.dotm" TargetMode = 'External'/></Relationships>"#;
    refused_as(&word().add("word/_rels/settings.xml.rels", rels, 8).finish(b""), "from elsewhere");
    // An ordinary external hyperlink is fine.
    let links = br#"<Relationships><Relationship Id="r2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://example.com/" TargetMode="External"/></Relationships>"#;
    assert_eq!(
        judged(&word().add("word/_rels/document.xml.rels", links, 8).finish(b"")),
        Detected::Kind(FileKind::Docx)
    );
}

#[test]
fn unsupported_compression_is_refused_and_references_are_decoded_for_the_scan() {
    let mut z = word();
    let at = z.local("word/footer1.xml", b"<w:t>x</w:t>", 0);
    z.list("word/footer1.xml", at);
    let mut bytes = z.finish(b"");
    // Method 12 (bzip2) on that entry, in both headers.
    let pos: Vec<usize> =
        bytes.windows(16).enumerate().filter(|(_, w)| w.ends_with(b"word/footer1.xml")).map(|(i, _)| i).collect();
    let local = pos[0] - 30 + 8;
    let central = pos[1] - 46 + 10;
    bytes[local] = 12;
    bytes[central] = 12;
    refused_as(&bytes, "unsupported compression");
    let body = b"<w:document><w:p><w:t>&#52;111 1111 &#x31;111 1111</w:t></w:p></w:document>";
    let z = Z::default().add("[Content_Types].xml", TYPES, 8).add("word/document.xml", body, 8).finish(b"");
    for piece in [1, 9, 4096] {
        let i = inspect(&z, piece);
        assert_eq!(i.detected, Detected::Kind(FileKind::Docx));
        assert_eq!(i.findings.get(&Detector::PaymentCard), Some(&1), "piece {piece}");
    }
}

fn pdf_with(objects: &[u8]) -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend_from_slice(objects);
    pdf.extend_from_slice(b"\ntrailer<</Root 1 0 R/ID[<8a1f00><00ff01>]>>\nstartxref\n0\n%%EOF\n");
    pdf
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn active_pdfs_are_refused_however_the_name_is_written() {
    for obj in [
        &b"1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj"[..],
        b"1 0 obj<</Type/Catalog/OpenAction<</S/J#61vaScript/JS(x)>>>>endobj",
        b"1 0 obj<</OpenAction<</S/Launch/F(cmd.exe)>>>>endobj",
        b"1 0 obj<</Names<</EmbeddedFiles 2 0 R>>>>endobj",
        b"1 0 obj<</AcroForm<</XFA 3 0 R>>>>endobj",
    ] {
        refused_as(&pdf_with(obj), "active content");
    }
    // Inside a compressed object stream.
    let mut obj = b"5 0 obj<</Type/ObjStm/N 1/First 4/Length 99/Filter/FlateDecode>>stream\n".to_vec();
    obj.extend(zlib(b"1 0 <</S/Launch/F(x.exe)>>"));
    obj.extend_from_slice(b"\nendstream\nendobj");
    refused_as(&pdf_with(&obj), "active content");
    // A parenthesis in a comment, or left open in a stream, does not hide what follows.
    refused_as(&pdf_with(b"% (c\n1 0 obj<</OpenAction<</S/JavaScript/JS 2 0 R>>>>endobj"), "active content");
    let open = b"4 0 obj<</Length 9>>stream\nBT (open\nendstream\nendobj\n5 0 obj<</S/Launch/F(x)>>endobj";
    refused_as(&pdf_with(open), "active content");
    // A name ending the file is read too.
    assert!(matches!(inspect(b"%PDF-1.7\n/Launch", 4).detected, Detected::Refused(_)));
    // The word in text is not a name.
    let clean = pdf_with(b"4 0 obj<</Length 30>>stream\nBT (/JavaScript /Launch) Tj ET\nendstream\nendobj");
    assert_eq!(judged(&clean), Detected::Kind(FileKind::Pdf));
}

#[test]
fn pdf_text_that_cannot_be_read_is_reported_and_other_encodings_are_read() {
    let card = "4111 1111 1111 1111";
    // Hex strings and octal escapes are decoded.
    let hex: String = card.bytes().map(|b| format!("{b:02X}")).collect();
    let text = format!("4 0 obj<</Length 99>>stream\nBT <{hex}> Tj (\\064111 1111 1111 1111) Tj ET\nendstream\nendobj");
    let i = inspect(&pdf_with(text.as_bytes()), 3);
    assert_eq!(i.findings.get(&Detector::PaymentCard), Some(&2));
    assert!(!i.unscanned, "the trailer's binary /ID is not text");
    // Glyph codes (a CID font) cannot be read.
    let cid = pdf_with(b"4 0 obj<</Length 30>>stream\nBT [<00410042> -20 <0043>] TJ ET\nendstream\nendobj");
    assert!(inspect(&cid, 5).unscanned);
    // Streams in filters the reader does not decode.
    let a85 = pdf_with(b"4 0 obj<</Length 30/Filter/ASCII85Decode>>stream\n87cURD]i,\"Ebo80~>\nendstream\nendobj");
    assert!(inspect(&a85, 5).unscanned);
    // A damaged Flate stream.
    let mut broken = b"4 0 obj<</Length 30/Filter/FlateDecode>>stream\n".to_vec();
    let mut z = zlib(b"BT (some text here) Tj ET");
    z.truncate(6);
    z.extend_from_slice(&[0xff; 12]);
    broken.extend(z);
    broken.extend_from_slice(b"\nendstream\nendobj");
    assert!(inspect(&pdf_with(&broken), 5).unscanned);
    // An image is no text, and its bytes are not read as text.
    let mut image = b"6 0 obj<</Type/XObject/Subtype/Image/Width 8/Filter/DCTDecode/Length 64>>stream\n".to_vec();
    image.extend_from_slice(b"\xff\xd8\xff(\x01\x02) Tj /JavaScript\xff\xd9");
    image.extend_from_slice(b"\nendstream\nendobj\n");
    let i = inspect(&pdf_with(&image), 4);
    assert_eq!(i.detected, Detected::Kind(FileKind::Pdf));
    assert!(!i.unscanned);
}

#[test]
fn text_must_be_text_to_the_end_and_scripts_hide_behind_no_blank_lines() {
    let mut late = "plain words\n".repeat(2000).into_bytes();
    late.extend_from_slice(b"\xff\xfe more");
    assert_eq!(judged(&late), Detected::Refused("unknown binary data"));
    let mut nul = "plain words\n".repeat(2000).into_bytes();
    nul.push(0);
    assert_eq!(judged(&nul), Detected::Refused("unknown binary data"));
    let mut batch = "\r\n".repeat(600).into_bytes();
    batch.extend_from_slice(b"@echo off\r\ndel *.*\r\n");
    assert_eq!(judged(&batch), Detected::Refused("script"));
    let mut page = " \n".repeat(5000).into_bytes();
    page.extend_from_slice(b"<html><script>alert(1)</script></html>");
    assert_eq!(judged(&page), Detected::Refused(MARKUP));
}

#[test]
fn names_agree_with_the_content() {
    assert_eq!(extension("A.PDF. . "), "pdf");
    assert_eq!(extension("noext"), "");
    assert_eq!(refused_extension("x.exe."), Some("exe".into()));
    assert_eq!(refused_extension("x.pdf"), None);
    assert_eq!(stored_name("deed.pdf", FileKind::Pdf), "deed.pdf");
    assert_eq!(stored_name("deed.pdf", FileKind::Text), "deed.pdf.txt");
    assert_eq!(stored_name("notes", FileKind::Text), "notes.txt");
    assert_eq!(stored_name("photo.JPG", FileKind::Jpeg), "photo.JPG");
    assert_eq!(stored_name("scan.", FileKind::Png), "scan.png");
    assert_eq!(stored_name(&"x".repeat(255), FileKind::Docx).len(), 255);
    assert_eq!(download_name("run.vbs", "text/plain"), "run.vbs.txt");
    assert_eq!(download_name("old.exe", "application/octet-stream"), "old.exe.bin");
    assert_eq!(download_name("old.dat", "application/octet-stream"), "old.dat");
}

/// A ZIP64 archive as streaming writers make it: deflated entries with 64-bit data
/// descriptors, ZIP64 fields in the local and central headers, a ZIP64 end record and locator.
fn zip64(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let offset = out.len() as u64;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let body = {
            use std::io::Write;
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        out.extend_from_slice(b"PK\x03\x04\x2d\0\x08\0\x08\0\0\0\x21\0\0\0\0\0");
        out.extend_from_slice(&[0xff; 8]);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&[1, 0, 16, 0]);
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&body);
        out.extend_from_slice(b"PK\x07\x08");
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        central.extend_from_slice(b"PK\x01\x02\x2d\0\x2d\0\x08\0\x08\0\0\0\x21\0");
        central.extend_from_slice(&crc.sum().to_le_bytes());
        central.extend_from_slice(&[0xff; 8]);
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&28u16.to_le_bytes());
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&[0xff; 4]);
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&[1, 0, 24, 0]);
        for v in [data.len() as u64, body.len() as u64, offset] {
            central.extend_from_slice(&v.to_le_bytes());
        }
    }
    let (at, n) = (out.len() as u64, entries.len() as u64);
    out.extend_from_slice(&central);
    let end64 = out.len() as u64;
    out.extend_from_slice(b"PK\x06\x06");
    out.extend_from_slice(&44u64.to_le_bytes());
    out.extend_from_slice(&[0x2d, 0, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for v in [n, n, central.len() as u64, at] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"PK\x06\x07\0\0\0\0");
    out.extend_from_slice(&end64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\0\0");
    out
}

#[test]
fn zip64_archives_from_streaming_writers_are_read_and_checked() {
    let body = b"<w:document><w:p><w:t>4111 1111 1111 1111</w:t></w:p></w:document>";
    let good = zip64(&[("[Content_Types].xml", TYPES), ("word/document.xml", body)]);
    for piece in [1, 7, 4096] {
        let i = inspect(&good, piece);
        assert_eq!(i.detected, Detected::Kind(FileKind::Docx), "piece {piece}");
        assert_eq!(i.findings.get(&Detector::PaymentCard), Some(&1));
    }
    // A ZIP64 end record that miscounts the entries.
    let mut bad = good.clone();
    let end64 = bad.windows(4).rposition(|w| w == b"PK\x06\x06").unwrap();
    bad[end64 + 32] = 3;
    refused_as(&bad, "hidden content");
}
