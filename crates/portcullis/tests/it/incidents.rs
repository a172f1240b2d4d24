//! Security incidents end to end: a public report lands as an incident with a reference and an
//! alert; bad reports are refused and floods limited; operators work the incident (forward-only
//! states, assignee, notes, a missed triage target alerted); and a breach is scoped from the
//! audit log and told to exactly the firm it touched, by mail at a real SMTP server and on a
//! banner, with everything recorded.

use crate::support::sql_column;
use crate::ui::{csrf_of, post_form};
use portcullis_core::clock::Clock;
use portcullis_testkit::{Client, Db, PASSWORD, SmtpSink, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use time::format_description::well_known::Rfc3339;

/// A vetted operator with `role` and a platform API client.
async fn operator(srv: &TestServer, email: &str, role: &str) -> Client {
    use secrecy::ExposeSecret;
    let (portal, now) = (srv.portal(), srv.clock.now());
    portal.add_operator(email, "Operator").await.unwrap();
    portal.record_vetting(email, "Vetting Agency", now - Duration::days(1), now + Duration::days(900)).await.unwrap();
    portal.grant_operator_role(email, role).await.unwrap();
    srv.client().with_bearer(portal.operator_token(email, 7).await.unwrap().expose_secret())
}

async fn signed_in(srv: &TestServer, tenant: &str, email: &str) -> Client {
    let mut c = srv.client();
    assert_eq!(c.login(tenant, email, PASSWORD).await.status, StatusCode::OK);
    c
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn matter_with_document(c: &Client, reference: &str) -> (String, String) {
    let m = c.post("/api/v1/matters", json!({"reference": reference, "title": format!("Matter {reference}")})).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.text());
    let matter = id(&m.json());
    let d = c.upload(&matter, "contract.txt", b"The contract between the parties.".to_vec()).await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text());
    (matter, id(&d.json()))
}

async fn download(c: &Client, doc: &str) {
    assert_eq!(c.get(&format!("/api/v1/documents/{doc}/content")).await.status, StatusCode::OK);
}

fn breach_mails(sink: &SmtpSink) -> Vec<portcullis_testkit::Mail> {
    sink.messages().into_iter().filter(|m| m.header("Subject").is_some_and(|s| s.contains("breach notice"))).collect()
}

crate::with_mail!(a_compromised_account_is_scoped_and_only_its_firm_is_told, |srv, sink| async move {
    sink.start().await;
    let (acme, acme_owner) = srv.tenant("acme").await;
    let (bravo, bravo_owner) = srv.tenant("bravo").await;
    srv.user(acme, "admin@acme.example", "admin").await;
    srv.user(acme, "staff@acme.example", "staff").await;
    srv.user(bravo, "admin@bravo.example", "admin").await;
    let start = srv.clock.now();

    // Before the breach: the owner works a matter of their own, and the other firm works too.
    let owner = signed_in(srv, "acme", &acme_owner).await;
    let (_, own_doc) = matter_with_document(&owner, "A-OWN").await;
    let other_firm = signed_in(srv, "bravo", &bravo_owner).await;
    let (_, bravo_doc) = matter_with_document(&other_firm, "B-1").await;

    // The staff account is compromised: its documents of two matters are taken.
    let staff = signed_in(srv, "acme", "staff@acme.example").await;
    let staff_id = id(&staff.get("/api/v1/session").await.json());
    let (m1, d1) = matter_with_document(&staff, "A-1").await;
    let (m2, d2) = matter_with_document(&staff, "A-2").await;
    download(&staff, &d1).await;
    download(&staff, &d2).await;
    // Meanwhile legitimate work goes on, in both firms.
    download(&owner, &own_doc).await;
    download(&other_firm, &bravo_doc).await;

    // Someone who saw the documents online reports it, without signing in.
    let r = srv
        .client()
        .post(
            "/api/v1/reports",
            json!({"kind": "breach", "summary": "Client contracts posted on a forum",
            "details": "Two contracts of acme's clients are on a public paste site.", "contact": "finder@example.net"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let reference = r.json()["reference"].as_str().unwrap().to_string();
    assert!(r.json()["message"].as_str().unwrap().contains(&reference));

    // The operator finds it, triages it to themselves, and scopes it to the account and window.
    let op = operator(srv, "root@platform.example", "privileged").await;
    let list = op.get("/api/v1/platform/incidents").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let incident = list.json()["items"][0].clone();
    assert_eq!((incident["reference"].as_str(), incident["kind"].as_str()), (Some(reference.as_str()), Some("breach")));
    assert_eq!((incident["severity"].as_str(), incident["state"].as_str()), (Some("high"), Some("reported")));
    let iid = id(&incident);
    let path = format!("/api/v1/platform/incidents/{iid}");
    let t = op
        .post(
            &path,
            json!({"state": "triaged", "severity": "critical", "assignee": "root@platform.example",
            "note": "Confirmed: the documents are out."}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    let window = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap();
    let scope =
        json!({"from": window(start), "to": window(srv.clock.now() + Duration::minutes(1)), "accounts": [staff_id]});
    let s = op.post(&format!("{path}/scope"), scope).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text());
    let affected = s.json()["affected"].clone();
    assert_eq!(affected.as_array().unwrap().len(), 1, "one firm: {affected}");
    assert_eq!(affected[0]["tenant_id"].as_str(), Some(acme.to_string().as_str()));
    let mut docs: Vec<&str> =
        affected[0]["documents"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    let mut want = vec![d1.as_str(), d2.as_str()];
    docs.sort_unstable();
    want.sort_unstable();
    assert_eq!(docs, want, "exactly the staff account's documents");
    let mut matters: Vec<&str> =
        affected[0]["matters"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    let mut want = vec![m1.as_str(), m2.as_str()];
    matters.sort_unstable();
    want.sort_unstable();
    assert_eq!(matters, want);
    assert_eq!(affected[0]["users"], json!([staff_id]));
    assert_eq!(affected[0]["downloads"], json!(2));
    assert!(breach_mails(&sink).is_empty(), "nobody is told before the operator confirms");

    // Confirmed: the firm's owner and admin are told at once; nobody else.
    let n = op.post(&format!("{path}/notify"), json!({})).await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.text());
    let notified = n.json()["notified"].clone();
    assert_eq!(notified.as_array().unwrap().len(), 1, "{notified}");
    assert_eq!(notified[0]["users"].as_array().unwrap().len(), 2, "owner and admin: {notified}");
    crate::support::wait_until("two breach notices", || async { breach_mails(&sink).len() >= 2 }).await;
    let mut to: Vec<String> = breach_mails(&sink).iter().map(|m| m.rcpt_to.to_lowercase()).collect();
    to.sort();
    let mut want = vec![acme_owner.to_lowercase(), "admin@acme.example".to_string()];
    want.sort();
    assert_eq!(to, want, "exactly the firm's owner and admin");
    let mail = &breach_mails(&sink)[0];
    assert!(mail.header("Subject").unwrap().contains(&reference));
    let body = mail.body();
    for part in [reference.as_str(), "Matters:    2", "Documents:  2 (2 download(s))", "Article 33"] {
        assert!(body.contains(part), "{part:?} in {body}");
    }
    assert!(!body.contains("Matter A-1") && !body.contains("contract"), "no client content leaves: {body}");
    // Telling twice is refused.
    assert_eq!(op.post(&format!("{path}/notify"), json!({})).await.status, StatusCode::BAD_REQUEST);

    // The banner: the firm's owner sees the notice on its pages and through the API; the other
    // firm and the firm's staff see nothing.
    let notices = owner.get("/api/v1/breach-notices").await;
    assert_eq!(notices.status, StatusCode::OK, "{}", notices.text());
    assert_eq!(notices.json()["items"][0]["reference"].as_str(), Some(reference.as_str()));
    let page = owner.get("/matters").await.text();
    assert!(page.contains("id=\"breach-notice\"") && page.contains(&reference), "{page}");
    assert_eq!(other_firm.get("/api/v1/breach-notices").await.json()["items"], json!([]));
    assert!(!other_firm.get("/matters").await.text().contains("breach-notice"));
    assert_eq!(staff.get("/api/v1/breach-notices").await.status, StatusCode::FORBIDDEN);

    // The incident records it all, with the regulator's clock.
    let whole = op.get(&path).await.json();
    let reported = time::OffsetDateTime::parse(whole["reported_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let deadline = time::OffsetDateTime::parse(whole["regulator_deadline"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(deadline - reported, Duration::hours(72));
    let steps: Vec<&str> = whole["timeline"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(steps, ["reported", "state", "severity", "assigned", "note", "scoped", "notified"]);
    let actions = sql_column(
        &srv.db_url(),
        "SELECT action FROM audit_events WHERE action LIKE 'incident.%' OR action = 'breach.notified' ORDER BY at, seq",
    )
    .await;
    for a in ["incident.report", "incident.update", "incident.scope", "incident.notify", "breach.notified"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let bodies = sql_column(&srv.db_url(), "SELECT body FROM incidents").await;
    assert!(bodies.iter().all(|b| !b.contains("paste site") && !b.contains("finder@")), "sealed at rest");
});

crate::both!(reports_are_checked_limited_and_worked_forward_only, |srv| async move {
    let public = srv.client().bound_to("127.0.0.9".parse().unwrap());
    // Bad reports: clear errors naming the field, nothing stored.
    for (body, field) in [
        (json!({"kind": "rumour", "summary": "s", "details": "d"}), "kind"),
        (json!({"kind": "vulnerability", "summary": "", "details": "d"}), "summary"),
        (json!({"kind": "vulnerability", "summary": "s", "details": " "}), "details"),
    ] {
        let r = public.post("/api/v1/reports", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.text().contains(field), "{field}: {}", r.text());
    }
    let big = public
        .post("/api/v1/reports", json!({"kind": "vulnerability", "summary": "s", "details": "x".repeat(70_000)}))
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.text());
    assert!(sql_column(&srv.db_url(), "SELECT id FROM incidents").await.is_empty());

    // A flood from one source meets 429 (the refusals above used some of its burst); a report
    // from elsewhere still lands.
    let mut codes = Vec::new();
    for i in 0..8 {
        let r = public
            .post(
                "/api/v1/reports",
                json!({"kind": "vulnerability", "summary": format!("XSS {i}"), "details": "In the search box."}),
            )
            .await;
        codes.push(r.status);
    }
    assert!(codes.contains(&StatusCode::CREATED) && codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
    let elsewhere = srv.client().bound_to("127.0.0.10".parse().unwrap());
    let r = elsewhere
        .post("/api/v1/reports", json!({"kind": "vulnerability", "summary": "Open redirect", "details": "On /login."}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // A signed-in user's breach report names them and their firm.
    let (tenant, owner) = srv.tenant("acme").await;
    let user = signed_in(srv, "acme", &owner).await;
    let r = user
        .post(
            "/api/v1/breach-reports",
            json!({"summary": "Sent to the wrong client", "details": "A letter went astray."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    let op = operator(srv, "root@platform.example", "privileged").await;
    let help = operator(srv, "help@platform.example", "support").await;
    let items = op.get("/api/v1/platform/incidents").await.json()["items"].clone();
    let breach = items.as_array().unwrap().iter().find(|i| i["kind"] == "breach").unwrap().clone();
    assert_eq!(breach["reporter_tenant"].as_str(), Some(tenant.to_string().as_str()));
    let vuln = items.as_array().unwrap().iter().find(|i| i["kind"] == "vulnerability").unwrap().clone();
    let path = format!("/api/v1/platform/incidents/{}", id(&vuln));

    // The HTML forms: a refused field keeps what was typed; a taken report shows its reference.
    let browser = srv.client().bound_to("127.0.0.11".parse().unwrap());
    assert!(browser.get("/report?kind=breach").await.text().contains("value=\"breach\" checked"));
    let kept = [("kind", "vulnerability"), ("summary", ""), ("details", "Kept text"), ("contact", "")];
    let r = post_form(&browser, "/report", &kept).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("Kept text") && r.text().contains("id=\"error\""), "{}", r.text());
    let good = [("kind", "breach"), ("summary", "Seen online"), ("details", "A list of clients."), ("contact", "")];
    let r = post_form(&browser, "/report", &good).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("id=\"reference\"") && r.text().contains("INC-"), "{}", r.text());
    let csrf = csrf_of(&user.get("/account/security").await.text());
    let form = [("csrf", csrf.as_str()), ("summary", "Wrong recipient"), ("details", "An email went astray.")];
    let r = post_form(&user, "/account/security/breach-report", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("recorded as INC-"), "{}", r.text());
    let forged = [("csrf", "forged"), ("summary", "x"), ("details", "y")];
    assert_eq!(post_form(&user, "/account/security/breach-report", &forged).await.status, StatusCode::FORBIDDEN);

    // Support operators read but do not work incidents; tenants and strangers get nothing.
    assert_eq!(help.get(&path).await.status, StatusCode::OK);
    assert_eq!(help.post(&path, json!({"note": "mine"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(user.get("/api/v1/platform/incidents").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(public.get(&path).await.status, StatusCode::UNAUTHORIZED);

    // Forward only; nothing to change; unknown states, operators and incidents.
    assert_eq!(op.post(&path, json!({"state": "contained"})).await.status, StatusCode::OK);
    let back = op.post(&path, json!({"state": "triaged"})).await;
    assert_eq!(back.status, StatusCode::BAD_REQUEST);
    assert!(back.text().contains("forward"), "{}", back.text());
    assert_eq!(op.post(&path, json!({})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(op.post(&path, json!({"state": "done"})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(op.post(&path, json!({"assignee": "nobody@platform.example"})).await.status, StatusCode::BAD_REQUEST);
    let unknown = format!("/api/v1/platform/incidents/{}", uuid::Uuid::new_v4());
    assert_eq!(op.get(&unknown).await.status, StatusCode::NOT_FOUND);
    // A vulnerability is not scoped; a breach is not notified before it is scoped; a scope
    // without subject or with a backwards window is refused.
    let now = srv.clock.now();
    let w = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap();
    let scope = json!({"from": w(now - Duration::hours(1)), "to": w(now), "ip_ranges": ["127.0.0.0/8"]});
    assert_eq!(op.post(&format!("{path}/scope"), scope.clone()).await.status, StatusCode::BAD_REQUEST);
    let bpath = format!("/api/v1/platform/incidents/{}", id(&breach));
    assert_eq!(op.post(&format!("{bpath}/notify"), json!({})).await.status, StatusCode::BAD_REQUEST);
    let empty = json!({"from": w(now - Duration::hours(1)), "to": w(now)});
    assert_eq!(op.post(&format!("{bpath}/scope"), empty).await.status, StatusCode::BAD_REQUEST);
    let backwards = json!({"from": w(now), "to": w(now - Duration::hours(1)), "ip_ranges": ["127.0.0.0/8"]});
    assert_eq!(op.post(&format!("{bpath}/scope"), backwards).await.status, StatusCode::BAD_REQUEST);

    // The console: the list, an incident whole, and its forms (CSRF-checked; a refused value
    // shows the message and changes nothing).
    let desk =
        crate::console::console(srv, &crate::console::token(srv, "desk@platform.example", "privileged").await).await;
    let list = desk.get("/platform/incidents").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert!(list.text().contains(&format!("href=\"/platform/incidents/{}\"", id(&breach))), "{}", list.text());
    let cpath = format!("/platform/incidents/{}", id(&vuln));
    let page = desk.get(&format!("/platform/incidents/{}", id(&breach))).await.text();
    assert!(page.contains("id=\"regulator-deadline\"") && page.contains("id=\"scope\""), "{page}");
    let csrf = csrf_of(&page);
    assert_eq!(post_form(&desk, &cpath, &[("csrf", "forged"), ("note", "x")]).await.status, StatusCode::FORBIDDEN);
    let r = post_form(&desk, &cpath, &[("csrf", &csrf), ("state", "reported")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("id=\"error\"") && r.text().contains("forward"), "{}", r.text());
    let r = post_form(&desk, &cpath, &[("csrf", &csrf), ("note", "Reproduced on staging.")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("Reproduced on staging."), "the note is on the timeline: {}", r.text());
    let bad = [("csrf", csrf.as_str()), ("from", "yesterday"), ("to", "today"), ("accounts", "")];
    let r = post_form(&desk, &format!("/platform/incidents/{}/scope", id(&breach)), &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("RFC 3339"), "{}", r.text());

    // The triage target: an hour by default. Past it, each untriaged incident is alerted once.
    srv.clock.advance(Duration::minutes(61));
    let alerted = srv.portal().check_incident_targets().await.unwrap();
    assert!(alerted >= 2, "the untriaged ones: {alerted}");
    assert_eq!(srv.portal().check_incident_targets().await.unwrap(), 0, "once each");
    let b = op.get(&bpath).await.json();
    assert!(b["triage_alerted_at"].is_string(), "{b}");
    assert!(op.get(&path).await.json()["triage_alerted_at"].is_null(), "a triaged one is not alerted");
    let kinds = sql_column(&srv.db_url(), "SELECT kind FROM alerts").await;
    assert!(
        kinds.iter().any(|k| k == "incident_reported") && kinds.iter().any(|k| k == "incident_triage_overdue"),
        "{kinds:?}"
    );
});

crate::both!(a_breach_is_scoped_to_a_leaked_api_token, |srv| async move {
    let (_, owner) = srv.tenant("acme").await;
    let start = srv.clock.now();
    // The owner works in the browser and also through an API token, which leaks.
    let browser = signed_in(srv, "acme", &owner).await;
    let (_, in_browser) = matter_with_document(&browser, "A-1").await;
    let t = browser.post("/api/v1/tokens", json!({"name": "sync", "scopes": ["read", "write"]})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let token_id = id(&t.json());
    let api = srv.client().with_bearer(t.json()["token"].as_str().unwrap());
    let (through_matter, through_token) = matter_with_document(&api, "A-2").await;
    download(&api, &through_token).await;
    download(&browser, &in_browser).await;

    let r = srv
        .client()
        .post(
            "/api/v1/reports",
            json!({"kind": "breach", "summary": "A sync token was pasted in a public chat",
            "details": "The token of acme's sync job was seen in a public channel."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let op = operator(srv, "root@platform.example", "privileged").await;
    let iid = id(&op.get("/api/v1/platform/incidents").await.json()["items"][0]);
    let window = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap();
    let (from, to) = (window(start), window(srv.clock.now() + Duration::minutes(1)));
    let path = format!("/api/v1/platform/incidents/{iid}/scope");
    // A token id that is no id is refused, naming the field.
    let bad = op.post(&path, json!({"from": from, "to": to, "tokens": ["sync"]})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    assert!(bad.text().contains("tokens"), "{}", bad.text());
    let s = op.post(&path, json!({"from": from, "to": to, "tokens": [token_id]})).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text());
    // Exactly what went through the token: not the same owner's work in the browser.
    let affected = s.json()["affected"].clone();
    assert_eq!(affected.as_array().map(Vec::len), Some(1), "{affected}");
    assert_eq!(affected[0]["documents"], json!([through_token]), "{affected}");
    assert_eq!(affected[0]["matters"], json!([through_matter]), "{affected}");
    assert_eq!(affected[0]["downloads"], json!(1), "{affected}");
});
