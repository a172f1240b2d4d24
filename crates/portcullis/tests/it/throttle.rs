//! Throttling and resource protection against a running server: rate limits per client IP,
//! account, firm and sign-in name; load shedding; slow clients; the trusted-proxy model.

use crate::support::{raw_request, raw_tls, sql_column};
use portcullis_testkit::{Client, Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use std::net::IpAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Like `both!`, with limits turned on for the test (the test kit turns them off by default).
macro_rules! limited {
    ($name:ident, $adjust:expr, |$srv:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($srv: &TestServer) {
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let srv = TestServer::start_with(Db::Sqlite, $adjust).await;
                run(&srv).await;
                srv.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let srv = TestServer::start_with(Db::Postgres, $adjust).await;
                run(&srv).await;
                srv.stop().await;
            }
        }
    };
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Call `path` until the answer is 429 (bounded); the 429's response.
async fn flood(c: &Client, path: &str, tries: usize) -> portcullis_testkit::Resp {
    for _ in 0..tries {
        let r = c.get(path).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            return r;
        }
    }
    panic!("{tries} requests to {path} were never limited");
}

fn assert_limited(r: &portcullis_testkit::Resp) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1, "Retry-After: {wait}");
    assert_eq!(r.error_code(), "rate_limited");
}

/// Firm `acme` with its owner (returned) and a staff member `bob@acme.example`.
async fn acme_with_bob(srv: &TestServer) -> String {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "bob@acme.example", "staff").await;
    owner
}

async fn signed_in(c: Client, tenant: &str, email: &str) -> Client {
    let mut c = c;
    assert_eq!(c.login(tenant, email, PASSWORD).await.status, StatusCode::OK);
    c
}

limited!(
    a_flood_from_one_address_is_limited_and_others_are_served,
    |c: &mut portcullis::config::Config| {
        c.rate_limit_ip_per_minute = 60;
        c.rate_limit_ip_burst = 20;
    },
    |srv| async move {
        let (_, owner) = srv.tenant("acme").await;
        // A colleague in the same office (the same address) signed in before the flood.
        let colleague = signed_in(srv.client().bound_to(ip("127.0.0.2")), "acme", &owner).await;
        let attacker = srv.client().bound_to(ip("127.0.0.2"));
        let r = flood(&attacker, "/api/v1/session", 200).await;
        assert_limited(&r);
        // Pages get a page, with the same header.
        let page = attacker.get("/login").await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(page.headers.contains_key("retry-after"));
        assert!(page.text().contains("Too many requests"), "{}", page.text());
        // Signed-in requests are limited per account and firm, not per address: work goes on.
        for _ in 0..30 {
            assert_eq!(colleague.get("/api/v1/matters").await.status, StatusCode::OK);
        }
        // A user from another address signs in and works as usual.
        let user = signed_in(srv.client().bound_to(ip("127.0.0.3")), "acme", &owner).await;
        assert_eq!(user.get("/api/v1/matters").await.status, StatusCode::OK);
        // The health probes are not limited per address.
        assert_eq!(attacker.get("/healthz").await.status, StatusCode::OK);
    }
);

limited!(
    one_account_is_limited_and_its_colleagues_are_not,
    |c: &mut portcullis::config::Config| {
        c.rate_limit_account_per_minute = 60;
        c.rate_limit_account_burst = 20;
    },
    |srv| async move {
        let owner = acme_with_bob(srv).await;
        let busy = signed_in(srv.client(), "acme", &owner).await;
        let r = flood(&busy, "/api/v1/matters", 200).await;
        assert_limited(&r);
        let bob = signed_in(srv.client(), "acme", "bob@acme.example").await;
        assert_eq!(bob.get("/api/v1/matters").await.status, StatusCode::OK);
        // A platform operator's token is limited per operator the same way.
        let ops = crate::intrusion::operator(srv).await;
        assert_limited(&flood(&ops, "/api/v1/platform/security/blocks", 200).await);
    }
);

limited!(
    one_firm_is_limited_and_other_firms_are_not,
    |c: &mut portcullis::config::Config| {
        c.rate_limit_tenant_per_minute = 60;
        c.rate_limit_tenant_burst = 20;
    },
    |srv| async move {
        let owner = acme_with_bob(srv).await;
        let (_, other) = srv.tenant("beta").await;
        let a = signed_in(srv.client(), "acme", &owner).await;
        let b = signed_in(srv.client(), "acme", "bob@acme.example").await;
        // Two users of one firm share its budget.
        let mut limited = None;
        for _ in 0..100 {
            for c in [&a, &b] {
                let r = c.get("/api/v1/matters").await;
                if r.status == StatusCode::TOO_MANY_REQUESTS {
                    limited = Some(r);
                }
            }
            if limited.is_some() {
                break;
            }
        }
        assert_limited(&limited.expect("the firm was never limited"));
        let c = signed_in(srv.client(), "beta", &other).await;
        assert_eq!(c.get("/api/v1/matters").await.status, StatusCode::OK);
    }
);

limited!(
    sign_in_attempts_per_account_are_limited,
    |c: &mut portcullis::config::Config| {
        c.rate_limit_sign_in_per_minute = 3;
        c.rate_limit_sign_in_burst = 3;
    },
    |srv| async move {
        let owner = acme_with_bob(srv).await;
        let guesser = srv.client().bound_to(ip("127.0.1.1"));
        let mut limited = None;
        for _ in 0..20 {
            let r = guesser.clone().login("acme", &owner, "not the password at all").await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(r);
                break;
            }
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        assert_limited(&limited.expect("sign-in attempts were never limited"));
        // The sign-in page from that address says so too.
        let page = Client::send(guesser.http.post(format!("{}/login", srv.base)).form(&[
            ("tenant", "acme"),
            ("email", owner.as_str()),
            ("password", "x"),
        ]))
        .await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        // The limit is on the account from that address: the owner, elsewhere, is not kept out
        // by someone guessing at their address, and another account signs in from the guesser's.
        let mut at_home = srv.client().bound_to(ip("127.0.1.2"));
        assert_eq!(at_home.login("acme", &owner, PASSWORD).await.status, StatusCode::OK);
        let mut bob = srv.client().bound_to(ip("127.0.1.1"));
        assert_eq!(bob.login("acme", "bob@acme.example", PASSWORD).await.status, StatusCode::OK);
    }
);

limited!(
    two_nodes_share_the_configured_budget,
    |c: &mut portcullis::config::Config| {
        c.rate_limit_sign_in_per_minute = 4;
        c.rate_limit_sign_in_burst = 4;
    },
    |srv| async move {
        let owner = acme_with_bob(srv).await;
        // A second node on the same database registers at start and finds two live nodes: the
        // configured limits are the deployment's, so it takes half of each.
        let b = srv
            .another_node(|c| {
                c.rate_limit_sign_in_per_minute = 4;
                c.rate_limit_sign_in_burst = 4;
            })
            .await;
        let guesser = b.client().bound_to(ip("127.0.1.1"));
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(guesser.clone().login("acme", &owner, "not the password at all").await.status.as_u16());
        }
        assert_eq!(statuses, [401, 401, 429, 429], "half of a budget of four on each of two nodes");
        b.stop().await;
    }
);

/// A form post that sends its headers and a little of its body, then waits: it holds a
/// request slot for as long as the connection lives.
async fn hold_a_slot(srv: &TestServer) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    hold_a_slot_from(srv, "127.0.0.4").await
}

async fn hold_a_slot_from(srv: &TestServer, from: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut s = raw_tls(srv, from).await;
    let req = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 100000\r\n\r\ntenant=a";
    s.write_all(req).await.unwrap();
    s.flush().await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_cap_requests_are_shed_with_503() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.max_in_flight_requests = 2).await;
    let mut held = [hold_a_slot(&srv).await, hold_a_slot(&srv).await];
    let c = srv.client();
    let mut shed = None;
    // What the server said on a held connection, if it answered one: a held request that was
    // answered gave its slot back, so it is held again (and the answer kept for the failure
    // message). Up to 30 s, as the test kit's other waits: on a loaded machine the held requests
    // may take a while to reach their handler and take their slots.
    let mut answered = Vec::new();
    for _ in 0..600 {
        let r = c.get("/api/v1/session").await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(r);
            break;
        }
        for h in &mut held {
            let mut buf = [0u8; 512];
            if let Ok(n) = tokio::time::timeout(std::time::Duration::from_millis(25), h.read(&mut buf)).await {
                let got = n.map(|n| String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("closed").to_string());
                answered.push(got.unwrap_or_else(|e| e.to_string()));
                *h = hold_a_slot(&srv).await;
            }
        }
    }
    let r =
        shed.unwrap_or_else(|| panic!("requests past the cap were never shed; held requests answered: {answered:?}"));
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.error_code(), "overloaded");
    drop(held);
    let mut served = false;
    for _ in 0..600 {
        if c.get("/api/v1/session").await.status == StatusCode::UNAUTHORIZED {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(served, "slots were not given back when the slow clients left");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off_and_others_are_served() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.header_read_timeout_secs = 1).await;
    let mut s = raw_tls(&srv, "127.0.0.5").await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let mut cut = false;
    // One byte at a time, never finishing the headers; the server must hang up.
    for _ in 0..200 {
        if s.write_all(b"a").await.is_err() || s.flush().await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(std::time::Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(_)) => {
                // An answer (408) and then the close.
                cut = true;
                break;
            }
            Err(_) => {}
        }
        assert_eq!(srv.client().bound_to(ip("127.0.0.6")).get("/healthz").await.status, StatusCode::OK);
    }
    assert!(cut, "the slow client was never disconnected");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_on_an_ordinary_route_is_cut_by_the_request_timeout() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.request_timeout_secs = 1).await;
    let mut s = raw_tls(&srv, "127.0.0.7").await;
    s.write_all(
        b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"tenant\":",
    )
    .await
    .unwrap();
    s.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let srv = TestServer::start_with(Db::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.8/32".into()];
        c.rate_limit_ip_per_minute = 60;
        c.rate_limit_ip_burst = 10;
    })
    .await;
    let (_, owner) = srv.tenant("acme").await;
    let from = |peer: &str, forwarded: &str| {
        let c = srv.client().bound_to(ip(peer));
        let h = forwarded.to_string();
        (c, h)
    };
    // Through the trusted proxy, each forwarded client has its own budget.
    let (proxy, _) = from("127.0.0.8", "");
    let mut limited = false;
    for _ in 0..100 {
        let r = Client::send(
            proxy.request(reqwest::Method::GET, "/api/v1/session").header("x-forwarded-for", "198.51.100.1"),
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the forwarded client was never limited");
    let r =
        Client::send(proxy.request(reqwest::Method::GET, "/api/v1/session").header("x-forwarded-for", "198.51.100.2"))
            .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "another client behind the proxy is served");
    // A hop the proxy vouches for that names nobody is refused with a reason; junk a client put
    // in front of the proxy's entry is never read.
    let r =
        Client::send(proxy.request(reqwest::Method::GET, "/api/v1/session").header("x-forwarded-for", "unknown")).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".to_string()), "{}", r.text());
    assert!(r.text().contains("forwarding header"), "{}", r.text());
    let r = Client::send(
        proxy.request(reqwest::Method::GET, "/api/v1/session").header("x-forwarded-for", "junk, 198.51.100.3"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // The forwarded address is what the audit trail records.
    let mut c = srv.client().bound_to(ip("127.0.0.8"));
    let r = c.login_json(serde_json::json!({"tenant": "acme", "email": owner, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::OK);
    // From anyone else, the header is ignored: a forged one per request does not escape.
    let (direct, _) = from("127.0.0.9", "");
    let mut limited = false;
    for i in 0..100 {
        let r = Client::send(
            direct.request(reqwest::Method::GET, "/api/v1/session").header("x-forwarded-for", format!("203.0.113.{i}")),
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "forged X-Forwarded-For escaped the per-address limit");
    let login = Client::send(
        srv.client()
            .bound_to(ip("127.0.0.10"))
            .request(reqwest::Method::POST, "/api/v1/session")
            .header("x-forwarded-for", "203.0.113.77")
            .json(&serde_json::json!({"tenant": "acme", "email": owner, "password": PASSWORD})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    let ips = sql_column(&srv.db_url(), "SELECT COALESCE(ip, '') FROM audit_events WHERE action = 'auth.login'").await;
    assert!(ips.iter().any(|i| i == "127.0.0.10"), "{ips:?}");
    assert!(!ips.iter().any(|i| i == "203.0.113.77"), "a forged address was audited: {ips:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_forwarded_address_is_audited() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.trusted_proxies = vec!["127.0.0.11".into()]).await;
    let (_, owner) = srv.tenant("acme").await;
    let r = Client::send(
        srv.client()
            .bound_to(ip("127.0.0.11"))
            .request(reqwest::Method::POST, "/api/v1/session")
            .header("x-forwarded-for", "203.0.113.5, 198.51.100.9")
            .json(&serde_json::json!({"tenant": "acme", "email": owner, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let ips = sql_column(&srv.db_url(), "SELECT COALESCE(ip, '') FROM audit_events WHERE action = 'auth.login'").await;
    assert_eq!(ips, ["198.51.100.9"], "the right-most untrusted hop is the client");
    let (status, _) =
        raw_request(&srv, "127.0.0.12", b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_are_closed_and_others_are_served() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.max_connections_per_ip = 3).await;
    // Three idle TLS connections from one address fill its share.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw_tls(&srv, "127.0.0.13").await);
    }
    // The fourth is closed before the handshake completes.
    let refused = crate::support::try_raw_tls(&srv, "127.0.0.13").await;
    assert!(refused.is_err(), "a connection past the cap was accepted");
    // Another address is served.
    assert_eq!(srv.client().bound_to(ip("127.0.0.14")).get("/healthz").await.status, StatusCode::OK);
    // A slot comes back when a connection closes.
    held.pop();
    let mut served = false;
    for _ in 0..600 {
        if let Ok(mut s) = crate::support::try_raw_tls(&srv, "127.0.0.13").await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut out)).await;
            assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(served, "the slot of a closed connection never came back");
    srv.stop().await;
}

/// An HTTP/2 connection that says nothing after its preface is closed after the idle timeout
/// (HTTP/2 has no header-read timeout), and the server serves others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start_with(Db::Sqlite, |c| {
        (c.request_timeout_secs, c.upload_idle_timeout_secs, c.connection_idle_timeout_secs) = (1, 1, 2);
    })
    .await;
    let mut s = crate::support::try_raw_tls_speaking(&srv, "127.0.0.21", b"h2").await.unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server speaks HTTP/2");
    // The connection preface and an empty SETTINGS frame; then silence.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
    s.flush().await.unwrap();
    let mut sink = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), s.read_to_end(&mut sink)).await;
    assert!(ended.is_ok(), "the idle connection was still open after a minute");
    assert!(sink.len() >= 9, "the server answered the preface before closing: {sink:?}");
    assert_eq!(srv.client().get("/healthz").await.status, StatusCode::OK);
    srv.stop().await;
}

/// An upload trickled a byte at a time (the connection never idle) is cut off once a window
/// passes without the minimum delivered; nothing is stored, and others upload meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_upload_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start_with(Db::Sqlite, |c| {
        (c.request_timeout_secs, c.upload_idle_timeout_secs, c.connection_idle_timeout_secs) = (2, 2, 30);
    })
    .await;
    let (_, owner) = srv.tenant("acme").await;
    let c = signed_in(srv.client(), "acme", &owner).await;
    let m = c.post("/api/v1/matters", serde_json::json!({"reference": "T-1", "title": "Trickle"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = c.post("/api/v1/tokens", serde_json::json!({"name": "t", "scopes": ["write"]})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut s = raw_tls(&srv, "127.0.0.22").await;
    let head = format!(
        "POST /api/v1/matters/{m}/documents?name=slow.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // A byte every 200 ms: the connection moves, the upload never reaches its minimum.
    let mut answer = Vec::new();
    for _ in 0..100 {
        if s.write_all(b"a").await.is_err() || s.flush().await.is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut buf)).await {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "the trickle was not cut off with an error: {text:?}");
    let docs = c.get(&format!("/api/v1/matters/{m}/documents")).await.json();
    assert_eq!(docs["items"].as_array().unwrap().len(), 0, "{docs}");
    assert_eq!(c.upload(&m, "fast.txt", b"quick".to_vec()).await.status, StatusCode::CREATED);
    srv.stop().await;
}

/// One source holding its share of slow requests gets 429 for more; other sources are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_hold_every_slot() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.max_in_flight_per_ip = 2).await;
    let held = [hold_a_slot_from(&srv, "127.0.0.23").await, hold_a_slot_from(&srv, "127.0.0.23").await];
    let same = srv.client().bound_to(ip("127.0.0.23"));
    let mut refused = None;
    for _ in 0..600 {
        let r = same.get("/api/v1/session").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_limited(&refused.expect("the source's third request in progress was never refused"));
    assert_eq!(srv.client().bound_to(ip("127.0.0.24")).get("/api/v1/session").await.status, StatusCode::UNAUTHORIZED);
    drop(held);
    srv.stop().await;
}

/// A request head past `max_header_bytes` is refused before any handler (HTTP/1 answers 431),
/// and the next client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_head_is_refused() {
    let srv = TestServer::start_with(Db::Sqlite, |c| c.max_header_bytes = 8192).await;
    let big = format!(
        "GET /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let (status, text) = raw_request(&srv, "127.0.0.25", big.as_bytes()).await;
    assert!(status == 431 || status == 400, "an oversized head got {status}: {text}");
    assert_eq!(srv.client().get("/api/v1/session").await.status, StatusCode::UNAUTHORIZED);
    srv.stop().await;
}
