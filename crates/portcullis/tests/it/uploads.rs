//! The upload allow-list: a file's real type comes from its content, never its name or declared
//! type; executables, scripts, archives and macro-enabled office files are refused and leave
//! nothing behind; the firm narrows the list.

use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;

/// CRC-32 (IEEE), bit by bit: the ZIP files below are built by hand.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// How an entry is written.
#[derive(Clone, Copy)]
pub(crate) enum Entry {
    Stored,
    Deflated,
    /// Deflated, sizes in a data descriptor after the data (as streaming writers do).
    Streamed,
}

/// A ZIP file with these entries, and a real central directory.
pub(crate) fn zip(entries: &[(&str, &[u8], Entry)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, how) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let (method, body) = match how {
            Entry::Stored => (0u16, data.to_vec()),
            Entry::Deflated | Entry::Streamed => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                (8u16, e.finish().unwrap())
            }
        };
        let streamed = matches!(how, Entry::Streamed);
        let flags: u16 = if streamed { 0x08 } else { 0 };
        let header = |sig: &[u8], central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(sig);
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&flags.to_le_bytes());
            h.extend_from_slice(&method.to_le_bytes());
            h.extend_from_slice(&[0, 0, 0x21, 0]);
            let known = !streamed || central;
            for v in [crc, body.len() as u32, data.len() as u32] {
                h.extend_from_slice(&(if known { v } else { 0 }).to_le_bytes());
            }
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                // Comment length, disk, internal and external attributes.
                h.extend_from_slice(&[0; 10]);
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend(&body);
        if streamed {
            out.extend_from_slice(b"PK\x07\x08");
            for v in [crc, body.len() as u32, data.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        central.extend(header(b"PK\x01\x02", true));
    }
    let at = out.len() as u32;
    out.extend(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

const WORD_TYPES: &[u8] = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

/// A minimal DOCX whose body says `text` (split over two runs, as Word does).
pub(crate) fn docx(text: &str, how: Entry) -> Vec<u8> {
    let (a, b) = text.split_at(text.len() / 2);
    let doc = format!(
        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{a}</w:t></w:r><w:r><w:t>{b}</w:t></w:r></w:p></w:body></w:document>"#
    );
    zip(&[
        ("[Content_Types].xml", WORD_TYPES, Entry::Deflated),
        ("_rels/.rels", b"<Relationships/>", how),
        ("word/document.xml", doc.as_bytes(), how),
    ])
}

pub(crate) fn xlsx(text: &str) -> Vec<u8> {
    let types = br#"<Types><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
    let strings = format!("<sst><si><t>{text}</t></si></sst>");
    zip(&[
        ("[Content_Types].xml", types, Entry::Stored),
        ("xl/workbook.xml", b"<workbook/>", Entry::Deflated),
        ("xl/sharedStrings.xml", strings.as_bytes(), Entry::Deflated),
    ])
}

/// A minimal PDF whose one page draws `text` from a Flate-compressed content stream.
pub(crate) fn pdf(text: &str) -> Vec<u8> {
    pdf_content(&format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET"))
}

/// A minimal PDF whose one page has this (Flate-compressed) content stream.
pub(crate) fn pdf_content(content: &str) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(content.as_bytes()).unwrap();
    let z = e.finish().unwrap();
    let mut out = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/Contents 4 0 R>>endobj\n".to_vec();
    out.extend_from_slice(format!("4 0 obj<</Length {}/Filter/FlateDecode>>stream\n", z.len()).as_bytes());
    out.extend(z);
    out.extend_from_slice(b"\nendstream\nendobj\ntrailer<</Root 1 0 R>>\n%%EOF\n");
    out
}

pub(crate) fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    v.extend_from_slice(&[0x90, 0x77, 0x53, 0xde]);
    v
}

pub(crate) async fn setup(srv: &TestServer, name: &str) -> (Client, String, portcullis_core::ids::TenantId) {
    let (tenant, owner) = srv.tenant(name).await;
    let mut c = srv.client();
    c.login(name, &owner, PASSWORD).await;
    let m = c.post("/api/v1/matters", json!({"reference": "U-1", "title": "Uploads"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (c, m, tenant)
}

/// Upload with a declared content type.
async fn upload_as(c: &Client, m: &str, name: &str, content_type: &str, bytes: Vec<u8>) -> portcullis_testkit::Resp {
    let path = format!("/api/v1/matters/{m}/documents");
    Client::send(
        c.request(reqwest::Method::POST, &path)
            .query(&[("name", name)])
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes),
    )
    .await
}

/// Files stored for a tenant's documents (none after refusals).
fn stored_files(srv: &TestServer, tenant: &str) -> usize {
    let dir = srv.dir.path().join("documents/tenants").join(tenant).join("documents");
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn refused(r: &portcullis_testkit::Resp, detected: &str) {
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    assert_eq!(r.error_code(), "unsupported_file_type");
    let body = r.json();
    assert!(body["detected"].as_str().unwrap().contains(detected), "{body}");
    assert!(body["allowed"].as_array().unwrap().iter().any(|v| v == "pdf"), "{body}");
    assert!(body["message"].as_str().unwrap().contains(detected), "{body}");
}

crate::both!(renamed_executables_are_refused_and_leave_nothing, |srv| async move {
    let (c, m, tenant) = setup(srv, "exe").await;
    let mut mz = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
    mz.resize(4096, 0);
    refused(&upload_as(&c, &m, "report.pdf", "application/pdf", mz).await, "Windows executable");
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.resize(4096, 0);
    refused(&upload_as(&c, &m, "report.pdf", "application/pdf", elf).await, "ELF");
    // A large executable is refused as soon as its first bytes are read.
    let mut big = b"MZ".to_vec();
    big.resize(3 << 20, 7);
    refused(&upload_as(&c, &m, "big.pdf", "application/pdf", big).await, "Windows executable");
    let docs = c.get(&format!("/api/v1/matters/{m}/documents")).await.json();
    assert_eq!(docs["items"].as_array().unwrap().len(), 0, "{docs}");
    assert_eq!(stored_files(srv, &tenant.to_string()), 0);
    let audit = c.get("/api/v1/audit?action=document.upload_refused").await.text();
    assert!(audit.contains("document.upload_refused"), "{audit}");
    assert!(!audit.contains("report.pdf"), "file names stay out of the audit detail");
});

crate::both!(scripts_archives_and_macros_are_refused, |srv| async move {
    let (c, m, tenant) = setup(srv, "scripts").await;
    refused(&upload_as(&c, &m, "notes.txt", "text/plain", b"#!/bin/sh\ncurl x | sh\n".to_vec()).await, "script");
    refused(&c.upload(&m, "run.txt", b"@echo off\r\ndel *.*\r\n".to_vec()).await, "script");
    refused(&c.upload(&m, "page.txt", b"<html><script>alert(1)</script></html>".to_vec()).await, "HTML");
    let mut exe = b"MZ".to_vec();
    exe.resize(512, 0);
    let archive = zip(&[("readme.txt", b"hello", Entry::Stored), ("setup.exe", &exe, Entry::Deflated)]);
    refused(&upload_as(&c, &m, "photos.zip", "application/zip", archive).await, "executable");
    let plain = zip(&[("a.txt", b"hello", Entry::Deflated)]);
    refused(&c.upload(&m, "a.docx", plain).await, "ZIP archive");
    let mut macro_doc = zip(&[
        ("[Content_Types].xml", WORD_TYPES, Entry::Deflated),
        ("word/document.xml", b"<w:document/>", Entry::Deflated),
        ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 macros", Entry::Stored),
    ]);
    refused(&upload_as(&c, &m, "letter.docx", "application/pdf", macro_doc.clone()).await, "macro-enabled");
    let typed = br#"<Types><Default ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>"#;
    macro_doc = zip(&[("[Content_Types].xml", typed, Entry::Stored), ("word/document.xml", b"<x/>", Entry::Stored)]);
    // Named .docx (a .docm name is refused before any byte is read; see below).
    refused(&c.upload(&m, "letter.docx", macro_doc).await, "macro-enabled");
    refused(&c.upload(&m, "a.pdf", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".to_vec()).await, "gzip");
    refused(&c.upload(&m, "a.pdf", b"Rar!\x1a\x07\x01\x00stuff".to_vec()).await, "RAR");
    refused(&c.upload(&m, "a.pdf", b"7z\xbc\xaf\x27\x1c\x00\x04".to_vec()).await, "7z");
    refused(&c.upload(&m, "a.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0".to_vec()).await, "OLE");
    refused(&c.upload(&m, "a.bin", vec![0, 1, 2, 3, 0xfe]).await, "unknown binary");
    assert_eq!(stored_files(srv, &tenant.to_string()), 0);
    let docs = c.get(&format!("/api/v1/matters/{m}/documents")).await.json();
    assert_eq!(docs["items"].as_array().unwrap().len(), 0, "{docs}");
});

crate::both!(real_documents_are_accepted_with_their_real_type, |srv| async move {
    let (c, m, _) = setup(srv, "real").await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("letter.docx", docx("Dear client, completion is on Friday.", Entry::Deflated), "wordprocessingml"),
        ("streamed.docx", docx("Written by a streaming writer.", Entry::Streamed), "wordprocessingml"),
        ("sheet.xlsx", xlsx("Totals"), "spreadsheetml"),
        ("deed.pdf", pdf("Deed of transfer"), "application/pdf"),
        ("scan.png", png(), "image/png"),
        ("notes.txt", "Meeting notes: café at ten.\n".as_bytes().to_vec(), "text/plain"),
        ("ledger.csv", b"date,amount\n2026-01-01,450000\n".to_vec(), "text/plain"),
        // The name does not decide the type: a real PDF named .jpg is a PDF.
        ("weird.jpg", pdf("Still a PDF"), "application/pdf"),
    ];
    for (name, bytes, ty) in cases {
        let r = upload_as(&c, &m, name, "application/octet-stream", bytes.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.text());
        assert!(r.json()["content_type"].as_str().unwrap().contains(ty), "{name}: {}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let back = c.request(reqwest::Method::GET, &format!("/api/v1/documents/{id}/content")).send().await.unwrap();
        assert_eq!(back.bytes().await.unwrap().to_vec(), bytes, "{name}");
    }
});

crate::both!(a_narrowed_allow_list_refuses_an_image, |srv| async move {
    let (c, m, tenant) = setup(srv, "narrow").await;
    let before = c.get("/api/v1/tenant/upload-policy").await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.json()["allowed"].as_array().unwrap().iter().any(|v| v == "png"));
    let set = c.put_json("/api/v1/tenant/upload-policy", json!({"allowed": ["pdf"]})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["allowed"], json!(["pdf"]));
    let r = c.upload(&m, "scan.png", png()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    assert_eq!(r.json()["detected"], "png");
    assert_eq!(r.json()["allowed"], json!(["pdf"]));
    assert_eq!(c.upload(&m, "notes.txt", b"plain".to_vec()).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(c.upload(&m, "deed.pdf", pdf("Deed")).await.status, StatusCode::CREATED);
    // Bad input and the wrong role are refused.
    let bad = c.put_json("/api/v1/tenant/upload-policy", json!({"allowed": ["exe"]})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    let unknown = c.put_json("/api/v1/tenant/upload-policy", json!({"allowed": ["pdf"], "x": 1})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text());
    srv.user(tenant, "staff@narrow.example", "staff").await;
    let mut staff = srv.client();
    staff.login("narrow", "staff@narrow.example", PASSWORD).await;
    assert_eq!(staff.get("/api/v1/tenant/upload-policy").await.status, StatusCode::FORBIDDEN);
    let denied = staff.put_json("/api/v1/tenant/upload-policy", json!({"allowed": ["png"]})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // The change is audited with the list before and after.
    let audit = c.get("/api/v1/audit?action=tenant.upload_policy").await.json();
    let ev = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "tenant.upload_policy").unwrap().clone();
    assert_eq!(ev["detail"]["after"]["allowed"], json!(["pdf"]), "{ev}");
    assert!(ev["detail"]["before"]["allowed"].as_array().unwrap().len() > 5, "{ev}");
});

/// The name a download is offered under.
async fn served_name(c: &Client, id: &str) -> String {
    let r = c.request(reqwest::Method::GET, &format!("/api/v1/documents/{id}/content")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cd = r.headers()[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap().to_string();
    cd.rsplit("''").next().unwrap().to_string()
}

crate::both!(office_files_that_hide_content_from_the_reader_are_refused, |srv| async move {
    let (c, m, tenant) = setup(srv, "hidden").await;
    let good = docx("Completion is on Friday.", Entry::Deflated);
    let mut exe = b"MZ\x90\x00".to_vec();
    exe.resize(512, 0);
    let payload = zip(&[("payload.exe", &exe, Entry::Stored)]);
    // The payload's local header and data after the end record (Office and 7-Zip read the
    // central directory; a reader of local headers alone would stop before it).
    let mut trailing = good.clone();
    trailing.extend_from_slice(&payload[..30 + "payload.exe".len() + exe.len()]);
    refused(&c.upload(&m, "letter.docx", trailing).await, "after its end");
    // The same between the central directory and the end record.
    let mut inside = good.clone();
    let end = inside.len() - 22;
    inside.splice(end..end, payload[..30 + "payload.exe".len() + exe.len()].iter().copied());
    refused(&c.upload(&m, "letter.docx", inside).await, "hidden content");
    // Two entries of one name: tools disagree on which one is the document.
    let doubled = zip(&[
        ("[Content_Types].xml", WORD_TYPES, Entry::Deflated),
        ("word/document.xml", b"<w:t>decoy</w:t>", Entry::Deflated),
        ("word/document.xml", b"<w:t>real</w:t>", Entry::Deflated),
    ]);
    refused(&c.upload(&m, "letter.docx", doubled).await, "same name");
    // An embedded object, and a template fetched from elsewhere when the file opens.
    let embedded = zip(&[
        ("[Content_Types].xml", WORD_TYPES, Entry::Deflated),
        ("word/document.xml", b"<w:t>see attached</w:t>", Entry::Deflated),
        ("word/embeddings/oleObject1.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 package", Entry::Stored),
    ]);
    refused(&c.upload(&m, "letter.docx", embedded).await, "embedded objects");
    let template = br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://example.invalid/t.dotm" TargetMode="External"/></Relationships>"#;
    let remote = zip(&[
        ("[Content_Types].xml", WORD_TYPES, Entry::Deflated),
        ("word/document.xml", b"<w:t>hello</w:t>", Entry::Deflated),
        ("word/_rels/settings.xml.rels", template, Entry::Deflated),
    ]);
    refused(&c.upload(&m, "letter.docx", remote).await, "from elsewhere");
    // A macro-enabled declaration pushed far down [Content_Types].xml.
    let mut types = WORD_TYPES.strip_suffix(b"</Types>").unwrap().to_vec();
    types.extend(std::iter::repeat_n(b'\n', 100_000));
    types
        .extend_from_slice(br#"<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>"#);
    let padded =
        zip(&[("[Content_Types].xml", &types, Entry::Deflated), ("word/document.xml", b"<x/>", Entry::Deflated)]);
    refused(&c.upload(&m, "letter.docx", padded).await, "macro-enabled");
    // An entry whose content is an executable, whatever its name.
    let disguised = zip(&[
        ("[Content_Types].xml", WORD_TYPES, Entry::Deflated),
        ("word/document.xml", b"<x/>", Entry::Deflated),
        ("word/media/image1.png", &exe, Entry::Deflated),
    ]);
    refused(&c.upload(&m, "letter.docx", disguised).await, "executable");
    assert_eq!(stored_files(srv, &tenant.to_string()), 0);
    // The well-formed original is still accepted.
    assert_eq!(c.upload(&m, "letter.docx", good).await.status, StatusCode::CREATED);
});

crate::both!(runnable_names_are_refused_and_stored_names_carry_the_real_type, |srv| async move {
    let (c, m, tenant) = setup(srv, "names").await;
    for name in ["run.vbs", "x.exe.", "page.html", "notes.js", "letter.docm", "drawing.svg", "go.BAT "] {
        let r = c.upload(&m, name, b"plain words".to_vec()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.text());
        assert!(r.json()["message"].as_str().unwrap().contains("must not end in ."), "{name}: {}", r.text());
    }
    assert_eq!(stored_files(srv, &tenant.to_string()), 0);
    // A name that disagrees with the content, or has no extension, gets the real type's.
    let text = c.upload(&m, "report.pdf", b"Completion is on Friday.".to_vec()).await;
    assert_eq!(text.status, StatusCode::CREATED, "{}", text.text());
    assert_eq!(text.json()["name"], "report.pdf.txt");
    assert_eq!(served_name(&c, text.json()["id"].as_str().unwrap()).await, "report.pdf.txt");
    let bare = c.upload(&m, "deed", pdf("Deed of transfer")).await;
    assert_eq!(bare.json()["name"], "deed.pdf", "{}", bare.text());
    let same = c.upload(&m, "ledger.CSV", b"date,amount\n".to_vec()).await;
    assert_eq!(same.json()["name"], "ledger.CSV", "{}", same.text());
});

crate::both!(scripts_hidden_after_blank_lines_and_late_binary_are_refused, |srv| async move {
    let (c, m, tenant) = setup(srv, "late").await;
    let mut batch = "\r\n".repeat(600).into_bytes();
    batch.extend_from_slice(b"@echo off\r\ndel *.*\r\n");
    refused(&c.upload(&m, "notes.txt", batch).await, "script");
    let mut page = "\n".repeat(9000).into_bytes();
    page.extend_from_slice(b"<html><script>alert(1)</script></html>");
    refused(&c.upload(&m, "notes.txt", page).await, "HTML");
    let mut binary = "plain words\n".repeat(2000).into_bytes();
    binary.extend_from_slice(&[0xff, 0xfe, 0, 1, 2]);
    refused(&c.upload(&m, "notes.txt", binary).await, "unknown binary");
    assert_eq!(stored_files(srv, &tenant.to_string()), 0);
});
