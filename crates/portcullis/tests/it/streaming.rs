//! Large documents stream through without being held in memory, and interrupted or oversized
//! uploads leave nothing behind.

use futures::StreamExt;
use portcullis_testkit::{Client, Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// Deterministic, incompressible-enough text: chunk `i` of a document.
fn chunk(i: usize) -> bytes::Bytes {
    let mut v = vec![0u8; MIB];
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in v.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Printable text: the upload allow-list takes text, not arbitrary binary data.
        *b = b'a' + (x % 26) as u8;
    }
    bytes::Bytes::from(v)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

async fn setup(srv: &TestServer) -> (Client, String) {
    let (_, owner) = srv.tenant("big").await;
    let mut c = srv.client();
    c.login("big", &owner, PASSWORD).await;
    let m = c.post("/api/v1/matters", json!({"reference": "B", "title": "Big"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (c, m)
}

/// One GiB up and back down; the peak memory of the whole process (client and server) stays far
/// below the document's size.
async fn one_gib_round_trip(srv: &TestServer) {
    let (c, m) = setup(srv).await;
    const N: usize = 1024;
    let body = reqwest::Body::wrap_stream(futures::stream::iter(0..N).map(|i| Ok::<_, std::io::Error>(chunk(i))));
    let r = Client::send(
        c.request(reqwest::Method::POST, &format!("/api/v1/matters/{m}/documents"))
            .query(&[("name", "big.bin")])
            .body(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["size"], (N * MIB) as u64);
    let id = r.json()["id"].as_str().unwrap().to_string();

    let resp = c.request(reqwest::Method::GET, &format!("/api/v1/documents/{id}/content")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let (mut pos, mut i) = (0usize, 0usize);
    let mut expected = chunk(0);
    while let Some(part) = stream.next().await {
        let part = part.unwrap();
        let mut off = 0;
        while off < part.len() {
            let take = (part.len() - off).min(MIB - pos);
            assert_eq!(&part[off..off + take], &expected[pos..pos + take], "byte {} differs", i * MIB + pos);
            off += take;
            pos += take;
            if pos == MIB {
                i += 1;
                pos = 0;
                expected = chunk(i);
            }
        }
    }
    assert_eq!((i, pos), (N, 0), "the whole document came back");
    let peak_mib = peak_rss_kib() / 1024;
    assert!(peak_mib < 400, "peak memory {peak_mib} MiB: the document was buffered");
}
crate::both!(one_gib_round_trip_stays_out_of_memory, |srv| one_gib_round_trip(srv));

/// Uploads over the limit are refused with 413 and leave no document or blob behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_upload_is_refused() {
    for db in [Db::Sqlite, Db::Postgres] {
        let srv = TestServer::start_with(db, |c| c.max_upload_bytes = 3 * MIB as u64).await;
        let (c, m) = setup(&srv).await;
        let body = reqwest::Body::wrap_stream(futures::stream::iter(0..5).map(|i| Ok::<_, std::io::Error>(chunk(i))));
        let r = Client::send(
            c.request(reqwest::Method::POST, &format!("/api/v1/matters/{m}/documents"))
                .query(&[("name", "x")])
                .body(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        assert_eq!(r.error_code(), "too_large");
        assert_eq!(c.get(&format!("/api/v1/matters/{m}/documents")).await.json()["items"].as_array().unwrap().len(), 0);
        assert_eq!(blob_count(&srv), 0);
        srv.stop().await;
    }
}

fn blob_count(srv: &TestServer) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            usize::from(!e.file_name().to_string_lossy().starts_with(".portcullis"))
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&srv.dir.path().join("documents"))
}

/// A client that drops the connection mid-upload leaves no document and no blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_upload_leaves_nothing() {
    for db in [Db::Sqlite, Db::Postgres] {
        let srv = TestServer::start(db).await;
        let (c, m) = setup(&srv).await;
        let body = reqwest::Body::wrap_stream(
            futures::stream::iter(0..4)
                .map(|i| if i < 3 { Ok(chunk(i)) } else { Err(std::io::Error::other("client gave up")) }),
        );
        let r = c
            .request(reqwest::Method::POST, &format!("/api/v1/matters/{m}/documents"))
            .query(&[("name", "x")])
            .body(body)
            .send()
            .await;
        // The client usually sees its own failure; if an answer does arrive, it is a 4xx.
        if let Ok(resp) = r {
            assert!(resp.status().is_client_error(), "{}", resp.status());
        }
        // Give the server a moment to notice the reset and clean up; poll, bounded.
        for _ in 0..50 {
            if blob_count(&srv) == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(c.get(&format!("/api/v1/matters/{m}/documents")).await.json()["items"].as_array().unwrap().len(), 0);
        assert_eq!(blob_count(&srv), 0);
        srv.stop().await;
    }
}
