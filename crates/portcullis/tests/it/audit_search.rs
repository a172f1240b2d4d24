//! The audit of reads of client content, and searching and exporting the audit log: reads are
//! audited (and fail when their event cannot be written), every filter works alone and
//! combined, pages follow the cursor, exports parse back, bad input names its parameter, only
//! owners, admins and auditors get in, no tenant sees another's events, operators see the
//! platform's chain only, and the page shows filters and events without client content.

use crate::support::sql;
use portcullis_core::audit::{Action, Actor, NewEvent, RequestMeta, Target, verify_run};
use portcullis_core::clock::Clock;
use portcullis_core::ids::TenantId;
use portcullis_core::ports::{Store, TxMode};
use portcullis_testkit::{Client, PASSWORD, Resp, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The client content the fixtures store; none of it may appear in any audit answer.
const SECRETS: [&str; 5] = ["SECRET-REF", "Secret title", "Secret message", "secret-name", "secret bytes"];

async fn signed_in(srv: &TestServer, tenant: &str, email: &str) -> Client {
    let mut c = srv.client();
    let r = c.login(tenant, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{email}: {}", r.text());
    c
}

fn id_of(r: &Resp) -> String {
    assert!(r.status.is_success(), "{}: {}", r.status, r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

async fn my_id(c: &Client) -> String {
    id_of(&c.get("/api/v1/session").await)
}

/// A matter with a message and a document, made by `c`: (matter, document).
async fn matter_with_content(c: &Client, reference: &str) -> (String, String) {
    let m = id_of(&c.post("/api/v1/matters", json!({"reference": reference, "title": "Secret title"})).await);
    let r = c.post(&format!("/api/v1/matters/{m}/messages"), json!({"body": "Secret message"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let d = id_of(&c.upload(&m, "secret-name.pdf", b"secret bytes".to_vec()).await);
    (m, d)
}

/// One page of a search (asserted to succeed): its events and its `next`.
async fn page(c: &Client, query: &str) -> (Vec<Value>, Option<i64>) {
    let r = c.get(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
    let j = r.json();
    (j["items"].as_array().unwrap().clone(), j["next"].as_i64())
}

/// Every event a search matches, following the cursor.
async fn all(c: &Client, query: &str) -> Vec<Value> {
    let (mut out, mut after) = (Vec::new(), 0);
    loop {
        let (items, next) = page(c, &format!("{query}&limit=500&after={after}")).await;
        out.extend(items);
        match next {
            Some(n) => after = n,
            None => return out,
        }
    }
}

fn actions(items: &[Value]) -> Vec<&str> {
    items.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

fn action_set(items: &[Value]) -> BTreeSet<&str> {
    actions(items).into_iter().collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// A tenant's chain, read directly from the database.
async fn chain(srv: &TestServer, tenant: TenantId) -> Vec<portcullis_core::audit::StoredEvent> {
    let store = portcullis_store::SqlStore::open(&srv.db_url()).await.unwrap();
    let mut tx = store.begin(TxMode::Read).await.unwrap();
    let events = tx.audit().audit_chain(&tenant.to_string(), 0, 100_000).await.unwrap();
    drop(tx);
    store.close().await;
    events
}

/// Append events to a tenant's chain directly, as the server would.
async fn append(srv: &TestServer, events: &[NewEvent]) {
    let store = portcullis_store::SqlStore::open(&srv.db_url()).await.unwrap();
    let mut tx = store.begin(TxMode::Write).await.unwrap();
    for e in events {
        tx.audit().append_audit(e, srv.clock.now()).await.unwrap();
    }
    tx.commit().await.unwrap();
    store.close().await;
}

/// Make the database refuse (or accept again) every new audit event.
async fn block_audit_writes(url: &str, blocked: bool) {
    match (url.starts_with("postgres"), blocked) {
        (true, true) => {
            sql(
                url,
                "CREATE FUNCTION audit_events_blocked() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'audit writes blocked by the test'; END; $$",
                &[],
            )
            .await;
            sql(
                url,
                "CREATE TRIGGER audit_events_blocked BEFORE INSERT ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION audit_events_blocked()",
                &[],
            )
            .await;
        }
        (true, false) => sql(url, "DROP TRIGGER audit_events_blocked ON audit_events", &[]).await,
        (false, true) => {
            sql(
                url,
                "CREATE TRIGGER audit_events_blocked BEFORE INSERT ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit writes blocked by the test'); END",
                &[],
            )
            .await;
        }
        (false, false) => sql(url, "DROP TRIGGER audit_events_blocked", &[]).await,
    }
}

crate::both!(reads_of_client_content_are_audited_with_ids_only, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "client@acme.example", "client").await;
    let o = signed_in(srv, "acme", &owner).await;
    let (m, d) = matter_with_content(&o, "SECRET-REF").await;
    let r = o
        .post(&format!("/api/v1/matters/{m}/members"), json!({"email": "client@acme.example", "role": "client"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let c = signed_in(srv, "acme", "client@acme.example").await;
    let client = my_id(&c).await;
    for path in [
        "/api/v1/matters".to_string(),
        format!("/api/v1/matters/{m}"),
        format!("/api/v1/matters/{m}/messages"),
        format!("/api/v1/matters/{m}/documents"),
        format!("/api/v1/documents/{d}/content"),
        // The page reads the matter, its documents and its messages through the same use cases.
        format!("/matters/{m}"),
    ] {
        assert_eq!(c.get(&path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(o.get(&format!("/api/v1/matters/{m}/members")).await.status, StatusCode::OK);

    let reads = all(&o, &format!("actor={client}")).await;
    let mut counted: Vec<&str> = actions(&reads).into_iter().filter(|a| !a.starts_with("auth.")).collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        [
            "document.download",
            "document.list",
            "document.list",
            "matter.list",
            "matter.view",
            "matter.view",
            "message.read",
            "message.read"
        ]
    );
    for e in reads.iter().filter(|e| !e["action"].as_str().unwrap().starts_with("auth.")) {
        assert_eq!(e["actor"], format!("user:{client}"));
        match e["action"].as_str().unwrap() {
            "matter.list" => assert_eq!((e["matter"].clone(), e["detail"]["count"].clone()), (Value::Null, json!(1))),
            "document.download" => assert_eq!(e["matter"], m.as_str()),
            action => {
                assert_eq!((e["target"].clone(), e["matter"].clone()), (json!(format!("matter:{m}")), json!(m)), "{e}");
                if action != "matter.view" {
                    assert_eq!(e["detail"]["count"], 1, "{e}");
                }
            }
        }
    }
    let members = all(&o, "action=matter.member_list").await;
    assert_eq!((members.len(), members[0]["matter"].clone()), (1, json!(m)));
    let text = serde_json::to_string(&all(&o, "").await).unwrap();
    for secret in SECRETS {
        assert!(!text.contains(secret), "the audit log shows client content: {secret}");
    }
    // The chain with the new events (and their matter) still verifies.
    assert_eq!(verify_run("", 1, &chain(srv, tenant).await), Ok(()));
});

crate::both!(a_read_fails_when_its_audit_event_cannot_be_written, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    let o = signed_in(srv, "acme", &owner).await;
    let (m, d) = matter_with_content(&o, "SECRET-REF").await;
    let reads = [
        "/api/v1/matters".to_string(),
        format!("/api/v1/matters/{m}"),
        format!("/api/v1/matters/{m}/messages"),
        format!("/api/v1/matters/{m}/documents"),
        format!("/api/v1/matters/{m}/members"),
        format!("/api/v1/documents/{d}/content"),
        "/api/v1/audit/export".to_string(),
        "/matters".to_string(),
        format!("/matters/{m}"),
    ];
    let before = chain(srv, tenant).await.len();
    block_audit_writes(&srv.db_url(), true).await;
    for path in &reads {
        let r = o.get(path).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path} was served unaudited: {}", r.text());
        for secret in SECRETS {
            assert!(!r.text().contains(secret), "{path} showed {secret}");
        }
    }
    // Searching the log writes nothing, so it still works, and shows nothing new.
    assert_eq!(all(&o, "").await.len(), before);
    block_audit_writes(&srv.db_url(), false).await;
    for path in &reads {
        assert_eq!(o.get(path).await.status, StatusCode::OK, "{path}");
    }
    let events = chain(srv, tenant).await;
    // One event per read; the matter's page reads the matter, its documents, messages and members.
    assert_eq!(events.len(), before + reads.len() + 3);
    assert_eq!(verify_run("", 1, &events), Ok(()));
});

/// A firm with history at three times, ten minutes apart (sessions stay alive): at `t0` the
/// owner opens `m1` and the staff member `m2`; at `t1` the staff member works on `m1` (upload,
/// download, message, reading messages) and the owner views `m2`; at `t2` the staff member
/// views `m1`.
struct Firm {
    tenant: TenantId,
    owner: Client,
    owner_id: String,
    staff_id: String,
    m1: String,
    m2: String,
    t1: OffsetDateTime,
    t2: OffsetDateTime,
}

async fn firm(srv: &TestServer, name: &str) -> Firm {
    let (tenant, owner_email) = srv.tenant(name).await;
    let staff_email = format!("staff@{name}.example");
    srv.user(tenant, &staff_email, "staff").await;
    let owner = signed_in(srv, name, &owner_email).await;
    let staff = signed_in(srv, name, &staff_email).await;
    let (owner_id, staff_id) = (my_id(&owner).await, my_id(&staff).await);
    let m1 = id_of(&owner.post("/api/v1/matters", json!({"reference": "SECRET-REF", "title": "Secret title"})).await);
    let m2 = id_of(&staff.post("/api/v1/matters", json!({"reference": "OTHER", "title": "Secret title"})).await);
    srv.clock.advance(Duration::minutes(10));
    let t1 = srv.clock.now();
    let d = id_of(&staff.upload(&m1, "secret-name.pdf", b"secret bytes".to_vec()).await);
    assert_eq!(staff.get(&format!("/api/v1/documents/{d}/content")).await.status, StatusCode::OK);
    let r = staff.post(&format!("/api/v1/matters/{m1}/messages"), json!({"body": "Secret message"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(staff.get(&format!("/api/v1/matters/{m1}/messages")).await.status, StatusCode::OK);
    assert_eq!(owner.get(&format!("/api/v1/matters/{m2}")).await.status, StatusCode::OK);
    srv.clock.advance(Duration::minutes(10));
    let t2 = srv.clock.now();
    assert_eq!(staff.get(&format!("/api/v1/matters/{m1}")).await.status, StatusCode::OK);
    Firm { tenant, owner, owner_id, staff_id, m1, m2, t1, t2 }
}

crate::both!(every_filter_alone_and_combined, |srv| async move {
    let f = firm(srv, "acme").await;
    let o = &f.owner;
    let everything = all(o, "").await;

    // Actor: a bare user id, or the stored form.
    let by_staff = all(o, &format!("actor={}", f.staff_id)).await;
    assert!(by_staff.iter().all(|e| e["actor"] == format!("user:{}", f.staff_id)) && by_staff.len() >= 7);
    assert_eq!(by_staff, all(o, &format!("actor=user:{}", f.staff_id)).await);
    let by_cli = all(o, "actor=cli").await;
    assert!(by_cli.iter().all(|e| e["actor"] == "cli"));
    assert!(action_set(&by_cli).is_superset(&BTreeSet::from(["tenant.create", "user.create"])), "{by_cli:?}");

    // Action: exact, or a prefix ending in a dot.
    let views = all(o, "action=matter.view").await;
    assert_eq!(views.len(), 2);
    let auth = all(o, "action=auth.").await;
    assert!(auth.len() >= 4 && actions(&auth).iter().all(|a| a.starts_with("auth.")), "{auth:?}");
    assert_eq!(actions(&all(o, "action=document.download").await), ["document.download"]);
    assert!(all(o, "action=document.down").await.is_empty(), "an exact action is not a prefix");

    // Matter: the matter's own events and those of its documents and messages.
    let on_m1 = all(o, &format!("matter={}", f.m1)).await;
    assert_eq!(
        action_set(&on_m1),
        BTreeSet::from([
            "matter.create",
            "document.upload",
            "document.download",
            "message.post",
            "message.read",
            "matter.view"
        ])
    );
    assert!(on_m1.iter().all(|e| e["matter"] == f.m1.as_str()));
    let expected: Vec<&Value> = everything.iter().filter(|e| e["matter"] == f.m1.as_str()).collect();
    assert_eq!(on_m1.iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        action_set(&all(o, &format!("matter={}", f.m2)).await),
        BTreeSet::from(["matter.create", "matter.view"])
    );

    // Time: both ends included.
    let window = format!("from={}&to={}", rfc3339(f.t1 - Duration::minutes(1)), rfc3339(f.t1 + Duration::minutes(1)));
    let at_t1 = all(o, &window).await;
    assert_eq!(
        action_set(&at_t1),
        BTreeSet::from(["document.upload", "document.download", "message.post", "message.read", "matter.view"])
    );
    let exact = all(o, &format!("from={0}&to={0}", rfc3339(f.t2))).await;
    assert_eq!(actions(&exact), ["matter.view"]);
    assert_eq!(exact, all(o, &format!("from={}", rfc3339(f.t2))).await);
    let early = all(o, &format!("to={}", rfc3339(f.t1 - Duration::seconds(1)))).await;
    assert!(early.iter().all(|e| !e["action"].as_str().unwrap().starts_with("document.")));
    assert_eq!(early.len() + at_t1.len() + exact.len(), everything.len());

    // Combined: every filter must hold.
    let q = format!("actor={}&matter={}&action=document.", f.staff_id, f.m1);
    assert_eq!(actions(&all(o, &q).await), ["document.upload", "document.download"]);
    let q = format!("actor={}&matter={}&action=matter.view&{window}", f.owner_id, f.m2);
    let one = all(o, &q).await;
    assert_eq!((one.len(), one[0]["actor"].clone()), (1, json!(format!("user:{}", f.owner_id))));
    let q = format!("actor={}&matter={}", f.owner_id, f.m1);
    assert_eq!(actions(&all(o, &q).await), ["matter.create"]);
    assert!(all(o, &format!("actor={}&{window}&action=auth.", f.staff_id)).await.is_empty());
});

crate::both!(pages_follow_the_cursor, |srv| async move {
    let f = firm(srv, "acme").await;
    let o = &f.owner;
    for filter in ["", "action=matter.", &format!("matter={}", f.m1)] {
        let whole = all(o, filter).await;
        assert!(whole.len() >= 3, "{filter}");
        let (mut walked, mut after, mut pages) = (Vec::new(), 0, 0);
        loop {
            let (items, next) = page(o, &format!("{filter}&limit=2&after={after}")).await;
            pages += 1;
            assert!(items.len() <= 2);
            walked.extend(items.clone());
            match next {
                Some(n) => {
                    assert_eq!(items.len(), 2);
                    assert_eq!(Some(n), items.last().unwrap()["seq"].as_i64(), "the cursor is the page's last event");
                    after = n;
                }
                None => break,
            }
        }
        assert_eq!(walked, whole, "{filter}");
        assert_eq!(pages, whole.len().div_ceil(2), "{filter}: no empty last page");
        let seqs: Vec<i64> = walked.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
    }
    // The default page is 100 events; after the last event nothing follows.
    let (first, next) = page(o, "").await;
    assert_eq!(next, None);
    let last = first.last().unwrap()["seq"].as_i64().unwrap();
    assert_eq!(page(o, &format!("after={last}")).await, (vec![], None));
});

crate::both!(bad_input_is_refused_naming_the_parameter, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let o = signed_in(srv, "acme", &owner).await;
    let id = uuid::Uuid::new_v4();
    for (query, field) in [
        ("action=auth", "action"),
        ("action=Auth.", "action"),
        ("action=auth..", "action"),
        ("action=matter.view%25", "action"),
        ("actor=bob", "actor"),
        ("actor=admin:bob", "actor"),
        ("actor=user:42", "actor"),
        ("matter=42", "matter"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-24", "from"),
        ("from=2026-11-24T10:00:00Z&to=2026-11-24T09:00:00Z", "from"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=first", "after"),
        ("actr=x", "query"),
    ] {
        let r = o.get(&format!("/api/v1/audit?{query}")).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "invalid_request".into()), "{query}");
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(&format!("Invalid {field}:")), "{query}: {message}");
    }
    let r = o.get("/api/v1/audit?actr=x").await;
    assert!(r.text().contains("actr"), "the unknown parameter is named: {}", r.text());
    for (query, field) in
        [("format=xml", "format"), ("after=3", "query"), ("limit=3", "query"), ("matter=nope", "matter")]
    {
        let r = o.get(&format!("/api/v1/audit/export?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.json()["message"].as_str().unwrap().starts_with(&format!("Invalid {field}:")), "{}", r.text());
    }
    // The largest page and a well-formed but unknown matter are fine (and empty).
    assert_eq!(page(&o, &format!("limit=500&matter={id}")).await, (vec![], None));
    // A refused export wrote no audit event.
    assert!(all(&o, "action=audit.export").await.is_empty());
});

/// Read a download's text, asserting it is an attachment of this type.
fn attachment(r: &Resp, content_type: &str, name: &str) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], content_type);
    assert_eq!(r.headers["content-disposition"], format!("attachment; filename=\"{name}\""));
    r.text()
}

crate::both!(exports_stream_every_matching_event_in_jsonl_and_csv, |srv| async move {
    let f = firm(srv, "acme").await;
    let o = &f.owner;
    // More events than one page of the export holds, and one whose cells a spreadsheet would run.
    let filler: Vec<NewEvent> = (0..520)
        .map(|i| {
            let filler = Target::Other(format!("n:{i}"));
            NewEvent::new(Some(f.tenant), Actor::System, Action::SecurityDetection, filler, &RequestMeta::default())
        })
        .collect();
    let hostile = RequestMeta { ip: Some("-2+3".into()), request_id: Some("@SUM(A1:A9)".into()), user_agent: None };
    let mut injected = filler;
    // An action no other event of the test has, to find it by.
    let formula = Target::Other("=HYPERLINK(\"x\")".into());
    injected.push(NewEvent::new(Some(f.tenant), Actor::System, Action::WafBlock, formula, &hostile));
    append(srv, &injected).await;

    // JSON lines: exactly what the search returns, up to and including the export's own event.
    let r = o.get("/api/v1/audit/export").await;
    let lines: Vec<Value> = attachment(&r, "application/x-ndjson", "audit.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let everything = all(o, "").await;
    assert!(everything.len() > 520, "more than one page of the export");
    assert_eq!(lines, everything);
    let own = lines.last().unwrap();
    assert_eq!((own["action"].clone(), own["detail"]["format"].clone()), (json!("audit.export"), json!("jsonl")));
    assert_eq!(own["actor"], format!("user:{}", f.owner_id));
    let hostile_line = lines.iter().find(|e| e["action"] == "waf.block").unwrap();
    assert_eq!(hostile_line["target"], "=HYPERLINK(\"x\")", "JSON lines keep values as stored");

    // Filtered, as CSV: a header row, cells quoted where needed, formulas defused.
    let q = format!("format=csv&matter={}&action=document.", f.m1);
    let r = o.get(&format!("/api/v1/audit/export?{q}")).await;
    let text = attachment(&r, "text/csv; charset=utf-8", "audit.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        ["seq", "at", "actor", "action", "target", "matter", "ip", "request_id", "detail", "prev_hash", "hash"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let expected = all(o, &format!("matter={}&action=document.", f.m1)).await;
    assert_eq!(rows.len(), expected.len());
    assert_eq!(actions(&expected), ["document.upload", "document.download"]);
    for (row, e) in rows.iter().zip(&expected) {
        assert_eq!(row[0], e["seq"].to_string());
        assert_eq!(
            (&row[3], &row[5], &row[10]),
            (e["action"].as_str().unwrap(), f.m1.as_str(), e["hash"].as_str().unwrap())
        );
        assert_eq!(serde_json::from_str::<Value>(&row[8]).unwrap(), e["detail"], "the detail column is JSON");
    }
    // The export of a matter's events is recorded with that matter and its filters.
    let exports = all(o, "action=audit.export").await;
    let last = exports.last().unwrap();
    assert_eq!(last["detail"], json!({"format": "csv", "filter": {"matter": f.m1, "action": "document."}}));
    assert_eq!(last["matter"], f.m1.as_str());

    let r = o.get("/api/v1/audit/export?format=csv&action=waf.block").await;
    let text = attachment(&r, "text/csv; charset=utf-8", "audit.csv");
    let rows: Vec<csv::StringRecord> =
        csv::Reader::from_reader(text.as_bytes()).records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0][4], &rows[0][6], &rows[0][7]), ("'=HYPERLINK(\"x\")", "'-2+3", "'@SUM(A1:A9)"));
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "a cell a spreadsheet would run: {cell}");
        }
    }
    let text = o.get("/api/v1/audit/export?format=csv").await.text();
    for secret in SECRETS {
        assert!(!text.contains(secret), "the export shows client content: {secret}");
    }
});

crate::both!(only_owners_admins_and_auditors_search_or_export, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    for (email, role) in [
        ("admin@acme.example", "admin"),
        ("auditor@acme.example", "auditor"),
        ("staff@acme.example", "staff"),
        ("client@acme.example", "client"),
    ] {
        srv.user(tenant, email, role).await;
    }
    let paths = ["/api/v1/audit?action=auth.", "/api/v1/audit/export?format=csv", "/audit?action=auth."];
    for (email, allowed) in [
        (owner.as_str(), true),
        ("admin@acme.example", true),
        ("auditor@acme.example", true),
        ("staff@acme.example", false),
        ("client@acme.example", false),
    ] {
        let c = signed_in(srv, "acme", email).await;
        for path in paths {
            let r = c.get(path).await;
            let want = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(r.status, want, "{email} {path}: {}", r.text());
        }
        // Refused before the input is looked at.
        if !allowed {
            assert_eq!(c.get("/api/v1/audit?limit=0").await.status, StatusCode::FORBIDDEN);
        }
    }
    assert_eq!(srv.client().get("/api/v1/audit").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(srv.client().get("/api/v1/audit/export").await.status, StatusCode::UNAUTHORIZED);
    // Tokens need the read scope.
    let o = signed_in(srv, "acme", &owner).await;
    let token = |scopes: Value| {
        let o = o.clone();
        async move {
            let r = o.post("/api/v1/tokens", json!({"name": "t", "scopes": scopes})).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            r.json()["token"].as_str().unwrap().to_string()
        }
    };
    let write = srv.client().with_bearer(&token(json!(["write", "admin"])).await);
    assert_eq!(write.get("/api/v1/audit").await.status, StatusCode::FORBIDDEN);
    assert_eq!(write.get("/api/v1/audit/export").await.status, StatusCode::FORBIDDEN);
    let read = srv.client().with_bearer(&token(json!(["read"])).await);
    assert_eq!(read.get("/api/v1/audit?action=auth.").await.status, StatusCode::OK);
    let r = read.get("/api/v1/audit/export").await;
    assert_eq!(r.status, StatusCode::OK);
});

crate::both!(no_tenant_sees_another_tenants_events, |srv| async move {
    let acme = firm(srv, "acme").await;
    let (_, harbour_owner) = srv.tenant("harbour").await;
    let h = signed_in(srv, "harbour", &harbour_owner).await;
    assert!(page(&h, &format!("matter={}", acme.m1)).await.0.is_empty());
    assert!(page(&h, &format!("actor={}", acme.owner_id)).await.0.is_empty());
    assert!(page(&h, &format!("actor={}", acme.staff_id)).await.0.is_empty());
    assert!(page(&h, "action=document.").await.0.is_empty());
    let own = all(&h, "").await;
    assert!(!own.is_empty());
    let export = h.get("/api/v1/audit/export").await.text() + &h.get("/api/v1/audit/export?format=csv").await.text();
    let theirs =
        [acme.tenant.to_string(), acme.owner_id.clone(), acme.staff_id.clone(), acme.m1.clone(), acme.m2.clone()];
    for text in [serde_json::to_string(&own).unwrap(), export] {
        for id in &theirs {
            assert!(!text.contains(id.as_str()), "harbour sees acme's {id}");
        }
    }
    // And the other way round.
    let seen = serde_json::to_string(&all(&acme.owner, "").await).unwrap();
    assert!(!seen.contains(&my_id(&h).await));
});

crate::both!(operators_search_the_platform_chain_only, |srv| async move {
    use secrecy::ExposeSecret;
    let acme = firm(srv, "acme").await;
    let portal = srv.portal();
    portal.add_operator("ops@platform.example", "Ops").await.unwrap();
    portal.grant_operator_role("ops@platform.example", "support").await.unwrap();
    let token = portal.operator_token("ops@platform.example", 7).await.unwrap().expose_secret().to_string();
    let ops = srv.client().with_bearer(&token);
    let get = |query: String| {
        let ops = ops.clone();
        async move {
            let r = ops.get(&format!("/api/v1/platform/audit?{query}")).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
            let j = r.json();
            (j["items"].as_array().unwrap().clone(), j["next"].as_i64())
        }
    };
    let (items, next) = get(String::new()).await;
    assert_eq!(next, None);
    let platform =
        crate::support::sql_column(&srv.db_url(), "SELECT action FROM audit_events WHERE chain = '' ORDER BY seq")
            .await;
    assert_eq!(actions(&items), platform.iter().map(String::as_str).collect::<Vec<_>>(), "the whole platform chain");
    assert!(action_set(&items).is_superset(&BTreeSet::from(["operator.add", "operator.grant", "operator.token"])));
    let text = serde_json::to_string(&items).unwrap();
    for tenant_only in ["auth.", "matter.", "document.", "message.", "tenant.create"] {
        assert!(!text.contains(tenant_only), "an operator sees a tenant's {tenant_only} event");
    }
    for id in [acme.tenant.to_string(), acme.m1.clone(), acme.owner_id.clone(), acme.staff_id.clone()] {
        assert!(!text.contains(&id), "an operator sees {id}");
    }
    // Filters and paging work as for firms; a bare id names an operator here.
    assert_eq!(actions(&get("action=operator.grant".into()).await.0), ["operator.grant"]);
    let by_cli: Vec<&Value> = items
        .iter()
        .filter(|e| e["actor"] == "cli" && e["action"].as_str().unwrap().starts_with("operator."))
        .collect();
    assert_eq!(get("actor=cli&action=operator.".into()).await.0.iter().collect::<Vec<_>>(), by_cli);
    assert!(get(format!("actor={}", acme.owner_id)).await.0.is_empty());
    assert!(get(format!("actor=user:{}", acme.owner_id)).await.0.is_empty());
    let (one, next) = get("limit=1".into()).await;
    assert_eq!((one.len(), next), (1, one[0]["seq"].as_i64()));
    assert_eq!(get(format!("after={}&limit=500", next.unwrap())).await.0, items[1..]);
    let r = ops.get(&format!("/api/v1/platform/audit?matter={}", acme.m1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Invalid query") && r.text().contains("matter"), "{}", r.text());
    let r = ops.get("/api/v1/platform/audit?from=soon").await;
    assert!(r.json()["message"].as_str().unwrap().starts_with("Invalid from:"), "{}", r.text());
    // Operators never reach a firm's log, and firms never the platform's.
    assert_eq!(ops.get("/api/v1/audit").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ops.get("/api/v1/audit/export").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(acme.owner.get("/api/v1/platform/audit").await.status, StatusCode::UNAUTHORIZED);
    // An operator without a role is refused.
    portal.add_operator("new@platform.example", "New").await.unwrap();
    let t = portal.operator_token("new@platform.example", 1).await.unwrap().expose_secret().to_string();
    assert_eq!(srv.client().with_bearer(&t).get("/api/v1/platform/audit").await.status, StatusCode::FORBIDDEN);
});

crate::both!(the_audit_page_filters_pages_and_links_exports, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    srv.user(tenant, "auditor@acme.example", "auditor").await;
    let o = signed_in(srv, "acme", &owner).await;
    let (m, _) = matter_with_content(&o, "SECRET-REF").await;
    // One more matter view than a page holds.
    for _ in 0..201 {
        assert_eq!(o.get(&format!("/api/v1/matters/{m}")).await.status, StatusCode::OK);
    }
    let a = signed_in(srv, "acme", "auditor@acme.example").await;
    let r = a.get(&format!("/audit?action=matter.view&matter={m}&from=&to=")).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains("value=\"matter.view\"") && html.contains(&format!("value=\"{m}\"")),
        "the form keeps the filters"
    );
    assert_eq!(html.matches("<td class=\"action\">matter.view</td>").count(), 200);
    assert!(!html.contains("matter.create") && !html.contains("<script"), "{html}");
    for secret in SECRETS {
        assert!(!html.contains(secret), "the audit page shows client content: {secret}");
    }
    for format in ["jsonl", "csv"] {
        // (Askama writes `&` in attributes as `&#38;`.)
        let link = format!("/api/v1/audit/export?action=matter.view&#38;matter={m}&#38;format={format}");
        assert!(html.contains(&link), "no {format} export link: {html}");
        let r = a.get(&link.replace("&#38;", "&")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    }
    let next = html.split("href=\"").filter_map(|s| s.split('"').next()).find(|h| h.contains("after=")).unwrap();
    assert!(html.contains("id=\"audit-next\""));
    let later = a.get(&next.replace("&#38;", "&")).await.text();
    assert_eq!(later.matches("<td class=\"action\">matter.view</td>").count(), 1, "{next}");
    assert!(!later.contains("id=\"audit-next\""));
    // A refused filter shows the form again with the reason.
    let r = a.get("/audit?from=yesterday&action=auth.").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Invalid from:") && r.text().contains("value=\"auth.\""), "{}", r.text());
    assert!(!r.text().contains("export-csv"), "no export of a refused search");
    // The navigation leads here.
    assert!(a.get("/audit").await.text().contains("href=\"/audit\" id=\"nav-audit\""));
});

crate::both!(the_matter_column_is_covered_by_the_hash, |srv| async move {
    let (tenant, owner) = srv.tenant("acme").await;
    let o = signed_in(srv, "acme", &owner).await;
    let (m, _) = matter_with_content(&o, "R").await;
    let events = chain(srv, tenant).await;
    assert_eq!(verify_run("", 1, &events), Ok(()));
    let seq_of = |action: &str| events.iter().find(|e| e.action == action).unwrap().seq;
    let url = srv.db_url();
    if url.starts_with("postgres") {
        sql(&url, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change", &[]).await;
    } else {
        sql(&url, "DROP TRIGGER audit_events_no_update", &[]).await;
    }
    // Hiding an event from a search by matter breaks its hash...
    sql(&url, "UPDATE audit_events SET matter_id = NULL WHERE action = 'document.upload'", &[]).await;
    assert_eq!(verify_run("", 1, &chain(srv, tenant).await), Err(seq_of("document.upload")));
    sql(&url, "UPDATE audit_events SET matter_id = $1 WHERE action = 'document.upload'", &[m.as_str()]).await;
    assert_eq!(verify_run("", 1, &chain(srv, tenant).await), Ok(()));
    // ...and so does adding one to a search, even to an event that had no matter.
    sql(&url, "UPDATE audit_events SET matter_id = $1 WHERE action = 'auth.login'", &[m.as_str()]).await;
    assert_eq!(verify_run("", 1, &chain(srv, tenant).await), Err(seq_of("auth.login")));
});
