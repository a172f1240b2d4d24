//! The request filter against a running server: each rule group refuses a crafted request
//! (sent raw, since a normal client would tidy the path up), refusals are audited without
//! flooding the audit log, and the groups can be turned off.

use crate::support::{raw_request, sql_column};
use portcullis_testkit::{Db, TestServer};
use reqwest::StatusCode;

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

crate::both!(each_rule_group_refuses_a_crafted_request_and_is_audited, |srv| async move {
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (get("/api/v1/../../etc/passwd"), 400, "path.traversal"),
        (get("/api/v1/%2e%2e/%2E%2e/secret"), 400, "path.traversal"),
        (get("/api/v1/matters%2f..%2fsecret"), 400, "path.encoded_slash"),
        (get("/api/v1/matters%5c..%5csecret"), 400, "path.backslash"),
        (get("/api/v1/matters/%252e%252e"), 400, "path.double_encoding"),
        (get("/api/v1/matters/x%00.pdf"), 400, "path.nul"),
        (get("/api/v1/%c0%ae%c0%ae/x"), 400, "path.bad_encoding"),
        (get(&format!("/api/v1/{}", "a".repeat(3000))), 400, "path.length"),
        (get("/api/v1/audit?action=%ff%fe"), 400, "query.bad_encoding"),
        (get("/api/v1/audit?action=a%00b"), 400, "query.control"),
        (
            b"GET /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
                .to_vec(),
            400,
            "header.host",
        ),
        (
            format!(
                "GET /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
                (0..70).map(|i| format!("X-Pad-{i}: 1\r\n")).collect::<String>()
            )
            .into_bytes(),
            400,
            "header.count",
        ),
        (
            b"POST /api/v1/matters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
              Connection: close\r\n\r\nhi"
                .to_vec(),
            415,
            "content_type.not_allowed",
        ),
        (
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: 2\r\n\
              Connection: close\r\n\r\nhi"
                .to_vec(),
            415,
            "content_type.not_allowed",
        ),
        (
            b"TRACE /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_vec(),
            405,
            "method.not_allowed",
        ),
        (
            // A method the filter allows, but not on this route (its per-route allow-list).
            b"DELETE /api/v1/audit HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_vec(),
            405,
            "method.route",
        ),
    ];
    for (i, (request, status, rule)) in cases.iter().enumerate() {
        // One source each, so the per-source audit budget does not hide any of them.
        let from = format!("127.0.2.{}", i + 1);
        let (got, text) = raw_request(srv, &from, request).await;
        assert_eq!(got, *status, "{rule}: {text}");
        if text.contains("application/json") {
            assert!(text.contains("\"message\""), "{rule}: {text}");
        }
        let audited = sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'waf.block'").await;
        assert!(audited.iter().any(|d| d.contains(&format!("\"rule\":\"{rule}\""))), "{rule} not audited: {audited:?}");
        let ips =
            sql_column(&srv.db_url(), "SELECT COALESCE(ip, '') FROM audit_events WHERE action = 'waf.block'").await;
        assert!(ips.contains(&from), "{rule}: {ips:?}");
    }
    // Both Content-Length and Transfer-Encoding (request smuggling) are refused, whichever
    // layer sees it first (the HTTP parser or the filter).
    let (status, text) = raw_request(
        srv,
        "127.0.3.3",
        b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(status == 400 || status == 0, "{text}");
    // A NUL in a header value never reaches a handler either.
    let (status, text) = raw_request(
        srv,
        "127.0.3.4",
        b"GET /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x00b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status == 400 || status == 0, "{text}");
    // Pages get a page.
    let (status, text) = raw_request(srv, "127.0.3.1", &get("/matters/..%2f..%2fadmin")).await;
    assert_eq!(status, 400);
    assert!(text.contains("<html") || text.contains("<!DOCTYPE"), "{text}");
    // Ordinary requests pass.
    let (status, _) = raw_request(srv, "127.0.3.2", &get("/api/v1/audit?action=auth.login&q=caf%C3%A9")).await;
    assert_eq!(status, 401, "a clean request reaches the handler (and is asked to sign in)");
    assert_eq!(srv.client().get("/login").await.status, StatusCode::OK);
});

crate::both!(a_flood_of_garbage_is_audited_a_few_times_with_a_count, |srv| async move {
    for _ in 0..30 {
        let (status, _) = raw_request(srv, "127.0.4.1", &get("/api/v1/%2e%2e/x")).await;
        assert_eq!(status, 400);
    }
    let audited =
        sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'waf.block' AND ip = '127.0.4.1'")
            .await;
    assert!(!audited.is_empty() && audited.len() <= 10, "{} events for 30 blocks", audited.len());
    // Another source still gets its own events.
    raw_request(srv, "127.0.4.2", &get("/api/v1/%2e%2e/x")).await;
    let other =
        sql_column(&srv.db_url(), "SELECT detail FROM audit_events WHERE action = 'waf.block' AND ip = '127.0.4.2'")
            .await;
    assert_eq!(other.len(), 1);
    // The blocks left out are summed into the next audited one once the budget allows; the
    // count field says how many an event stands for.
    assert!(audited.iter().all(|d| d.contains("\"count\":")), "{audited:?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_groups_can_be_turned_off() {
    let srv = TestServer::start_with(Db::Sqlite, |c| {
        c.waf_query_rules = false;
        c.waf_content_type_rules = false;
    })
    .await;
    // The query now reaches the handler (and its own parsing).
    let (status, _) = raw_request(&srv, "127.0.5.1", &get("/api/v1/audit?action=%ff")).await;
    assert_eq!(status, 401);
    let (status, _) = raw_request(
        &srv,
        "127.0.5.2",
        b"POST /api/v1/matters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
          Connection: close\r\n\r\nhi",
    )
    .await;
    assert_eq!(status, 401, "the content type is no longer checked before authentication");
    // The path rules stay on.
    let (status, _) = raw_request(&srv, "127.0.5.3", &get("/api/v1/%2e%2e/x")).await;
    assert_eq!(status, 400);
    srv.stop().await;
}
