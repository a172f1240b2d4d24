//! Encryption at rest, seen from outside: stored documents reveal nothing, and damaged or moved
//! ciphertext is refused with an integrity error (and an audit event), never served as garbage.

use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;

const CHUNK: usize = 64 * 1024;

pub(crate) fn blob(srv: &TestServer, tenant: &str, doc: &str) -> PathBuf {
    srv.dir.path().join("documents/tenants").join(tenant).join("documents").join(doc)
}

/// Every file under the data directory, read whole.
fn all_files(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

pub(crate) async fn owner(srv: &TestServer, name: &str) -> (Client, String, String) {
    let (tenant, email) = srv.tenant(name).await;
    let mut c = srv.client();
    c.login(name, &email, PASSWORD).await;
    let m = c.post("/api/v1/matters", json!({"reference": "E-1", "title": "Enc"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (c, tenant.to_string(), m)
}

pub(crate) async fn upload(c: &Client, m: &str, bytes: Vec<u8>) -> String {
    let r = c.upload(m, "doc.bin", bytes).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

pub(crate) async fn download(
    c: &Client,
    doc: &str,
    range: Option<&str>,
) -> Result<(StatusCode, Vec<u8>, String), reqwest::Error> {
    let mut rb = c.request(reqwest::Method::GET, &format!("/api/v1/documents/{doc}/content"));
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let resp = rb.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?.to_vec();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|j| j["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    Ok((status, body, code))
}

crate::both!(stored_documents_reveal_nothing, |srv| async move {
    let (c, _, m) = owner(srv, "secret").await;
    let marker = format!("MARKER-{}", uuid::Uuid::new_v4());
    let body = format!("{marker} passport number 123456789 {marker}").repeat(5000).into_bytes();
    let id = upload(&c, &m, body.clone()).await;
    assert_eq!(download(&c, &id, None).await.unwrap().1, body);
    for (path, bytes) in all_files(srv.dir.path()) {
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds the document in the clear",
            path.display()
        );
    }
});

crate::both!(damaged_or_moved_ciphertext_is_refused, |srv| async move {
    let (c, tenant, m) = owner(srv, "tamper").await;
    let plain: Vec<u8> = (0..3 * CHUNK + 500).map(|i| b'a' + (i % 26) as u8).collect();
    let a = upload(&c, &m, plain.clone()).await;
    let b = upload(&c, &m, plain.clone()).await;
    let original = std::fs::read(blob(srv, &tenant, &a)).unwrap();
    let restore = || std::fs::write(blob(srv, &tenant, &a), &original).unwrap();
    let header = 41;

    // A flipped bit in the first chunk: a clean 500 with the integrity code.
    let mut flipped = original.clone();
    flipped[header + 100] ^= 0x01;
    std::fs::write(blob(srv, &tenant, &a), &flipped).unwrap();
    let (status, _, code) = download(&c, &a, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    // A flipped bit further on: the response breaks off; the damaged bytes are never sent.
    let mut late = original.clone();
    late[header + CHUNK + 16 + 10] ^= 0x80;
    std::fs::write(blob(srv, &tenant, &a), &late).unwrap();
    match download(&c, &a, None).await {
        Err(_) => {}
        Ok((status, body, _)) => {
            assert!(status != StatusCode::OK || body.len() < plain.len(), "a damaged document was served whole");
            assert!(plain.starts_with(&body[..body.len().min(CHUNK)]));
        }
    }
    // ... and a range inside the damaged chunk is a clean integrity error.
    let (status, _, code) = download(&c, &a, Some(&format!("bytes={}-{}", CHUNK + 5, CHUNK + 50))).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    // Truncated: the tail of the document is requested and missing.
    std::fs::write(blob(srv, &tenant, &a), &original[..header + CHUNK + 16]).unwrap();
    let (status, _, code) = download(&c, &a, Some(&format!("bytes={}-", 2 * CHUNK))).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    // Another document's ciphertext put in this one's place.
    std::fs::copy(blob(srv, &tenant, &b), blob(srv, &tenant, &a)).unwrap();
    let (status, _, code) = download(&c, &a, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    // Another tenant's document copied under this tenant, under this document's id.
    let (c2, tenant2, m2) = owner(srv, "other").await;
    let foreign = upload(&c2, &m2, plain.clone()).await;
    std::fs::copy(blob(srv, &tenant2, &foreign), blob(srv, &tenant, &a)).unwrap();
    let (status, _, code) = download(&c, &a, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    // An empty document is still authenticated: junk of the right length is refused.
    let empty = upload(&c, &m, Vec::new()).await;
    assert_eq!(download(&c, &empty, None).await.unwrap().1, Vec::<u8>::new());
    let stored = std::fs::read(blob(srv, &tenant, &empty)).unwrap();
    std::fs::write(blob(srv, &tenant, &empty), vec![0u8; stored.len()]).unwrap();
    let (status, _, code) = download(&c, &empty, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));
    let mut forged_tag = stored.clone();
    let n = forged_tag.len();
    forged_tag[n - 1] ^= 1;
    std::fs::write(blob(srv, &tenant, &empty), &forged_tag).unwrap();
    let (status, _, code) = download(&c, &empty, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));

    // Restored, it reads again; every failure above was audited.
    restore();
    assert_eq!(download(&c, &a, None).await.unwrap().1, plain);
    let store = portcullis_store::SqlStore::open(&srv.db_url()).await.unwrap();
    use portcullis_core::ports::{Store, TxMode};
    let mut tx = store.begin(TxMode::Read).await.unwrap();
    let failures = tx
        .audit()
        .audit_chain(&tenant, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "document.integrity_failure")
        .count();
    assert!(failures >= 5, "{failures} integrity failures audited");
    drop(tx);
    store.close().await;
});

crate::both!(shredding_a_tenants_keys_makes_its_data_unreadable, |srv| async move {
    let (c, tenant, m) = owner(srv, "shred").await;
    let (other, _, other_m) = owner(srv, "keeper").await;
    let doc = upload(&c, &m, b"%PDF-1.7 deed".to_vec()).await;
    let kept = upload(&other, &other_m, b"%PDF-1.7 other".to_vec()).await;
    let tenant_id: portcullis_core::ids::TenantId = tenant.parse().unwrap();
    let destroyed = srv.portal().shred_tenant_keys(tenant_id, &Default::default()).await.unwrap();
    assert_eq!(destroyed, 2, "the data key and the index key");

    // Nothing of the tenant can be read any more: not its documents, not its fields.
    let (status, _, code) = download(&c, &doc, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));
    let r = c.get("/api/v1/matters").await;
    assert_eq!(r.error_code(), "integrity_error");
    // The ciphertext is still there, and useless.
    assert!(blob(srv, &tenant, &doc).exists());
    // Other tenants are untouched.
    assert_eq!(download(&other, &kept, None).await.unwrap().1, b"%PDF-1.7 other");
});

crate::both!(rows_moved_to_another_matter_do_not_decrypt, |srv| async move {
    let (c, _, m) = owner(srv, "mover").await;
    let other = c.post("/api/v1/matters", json!({"reference": "E-2", "title": "Other"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = upload(&c, &m, b"%PDF-1.7 moved".to_vec()).await;
    // Someone with write access to the database moves the document to another matter.
    crate::support::sql(&srv.db_url(), "UPDATE documents SET matter_id = $1 WHERE id = $2", &[&other, &doc]).await;
    let listed = c.get(&format!("/api/v1/matters/{other}/documents")).await;
    assert_eq!(listed.error_code(), "integrity_error", "{}", listed.text());
    let (status, _, code) = download(&c, &doc, None).await.unwrap();
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error"));
});
