//! Ethical walls everywhere a matter can be named: the DLP review queue, the audit log, and
//! every API and UI route that takes a matter, member, document (or its DLP flag) or message.
//! Someone outside a restricted matter's list gets 404, exactly as for an id that does not
//! exist, sees nothing of it in any list, and changes nothing.

use crate::authz::*;
use portcullis_testkit::{Client, Resp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// 1. The DLP review queue
// ---------------------------------------------------------------------------------------------

/// The held document is still held: the owner (on the list) sees it queued and flagged and
/// can fetch it; the client on the list cannot.
async fn still_held(owner: &Client, client: &Client, matter: &str, held: &str) {
    assert!(held_list(owner).await.iter().any(|(d, _)| d == held), "still in the owner's review queue");
    let listed = documents(owner, matter).await;
    let d = listed.iter().find(|d| d["id"] == held).unwrap_or_else(|| panic!("still listed: {listed:?}"));
    assert_eq!(d["dlp"], "quarantined", "{d}");
    assert_eq!(fetch(owner, held).await, StatusCode::OK, "the owner still downloads it");
    assert_eq!(fetch(client, held).await, StatusCode::NOT_FOUND, "the client still cannot");
}

crate::both!(held_documents_behind_a_wall_are_invisible_to_reviewers_outside_it, |srv| async move {
    let f = firm(srv, "heldwall").await;
    let outside = f.person(srv, "admin", "admin").await;
    let client = f.person(srv, "client", "client").await;
    quarantine_cards(&f.owner.c).await;
    let m = matter(&f.owner.c, "W-1", true).await;
    add_member(&f.owner.c, &m, &client.email, "client").await;
    // The client uploads (so the owner's release later is not a review of their own upload).
    let held = upload_held(&client.c, &m).await;
    still_held(&f.owner.c, &client.c, &m, &held).await;

    // The admin outside the wall: the queue shows nothing of the matter.
    let queue = outside.c.get("/api/v1/tenant/held-documents").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text());
    assert!(!queue.text().contains(&held) && !queue.text().contains(&m), "the queue shows the walled document");

    // Releasing or deleting it is answered as for a document that does not exist.
    let r = outside.c.post(&format!("/api/v1/documents/{held}/release"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "release from outside the wall: {}", r.text());
    still_held(&f.owner.c, &client.c, &m, &held).await;
    let r = outside.c.delete(&format!("/api/v1/documents/{held}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "delete from outside the wall: {}", r.text());
    still_held(&f.owner.c, &client.c, &m, &held).await;

    // The security page's forms, with the admin's real CSRF token.
    for action in ["release", "discard"] {
        let r = post_csrf_form(&outside.c, &format!("/account/security/held/{held}/{action}"), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action} from the page: {}", r.text());
        still_held(&f.owner.c, &client.c, &m, &held).await;
    }
    let page = outside.c.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text().contains(&held) && !page.text().contains(&m), "the security page shows the walled document");

    // The owner, on the list, reviews it as before.
    let page = f.owner.c.get("/account/security").await.text();
    assert!(page.contains(&format!("/account/security/held/{held}/release")), "the owner's page offers it");
    let r = f.owner.c.post(&format!("/api/v1/documents/{held}/release"), json!({})).await;
    assert!(matches!(r.status, StatusCode::OK | StatusCode::NO_CONTENT), "{}", r.text());
    assert_eq!(fetch(&client.c, &held).await, StatusCode::OK, "released to the client");
});

// ---------------------------------------------------------------------------------------------
// 6. The audit log
// ---------------------------------------------------------------------------------------------

/// Every event `c` finds for `query`, following `next`.
async fn all_events(c: &Client, query: &str) -> Vec<Value> {
    let (mut out, mut after) = (Vec::new(), 0);
    loop {
        let r = c.get(&format!("/api/v1/audit?{query}limit=100&after={after}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
        let j = r.json();
        out.extend(j["items"].as_array().unwrap().iter().cloned());
        match j["next"].as_i64() {
            Some(n) => after = n,
            None => return out,
        }
    }
}

crate::both!(the_audit_log_keeps_walled_matters_from_those_outside_the_wall, |srv| async move {
    let f = firm(srv, "auditwall").await;
    let owner_b = f.second_owner(srv, "owner-b").await;
    let admin = f.person(srv, "admin", "admin").await;
    let auditor = f.person(srv, "auditor", "auditor").await;
    let client = f.person(srv, "client", "client").await;
    // Owner A's walled matter, with a client, a message and a document; and an open matter.
    let walled = matter(&f.owner.c, "W-1", true).await;
    add_member(&f.owner.c, &walled, &client.email, "client").await;
    let msg = message(&f.owner.c, &walled, "Walled message").await;
    let doc = upload(&f.owner.c, &walled, "walled.pdf", b"walled").await;
    let open = matter(&f.owner.c, "O-1", false).await;
    upload(&f.owner.c, &open, "open.pdf", b"open").await;
    let secrets = [walled.as_str(), doc.as_str(), msg.as_str()];

    for (who, c) in [("owner B", &owner_b.c), ("admin", &admin.c), ("auditor", &auditor.c)] {
        let events = all_events(c, "").await;
        let text = serde_json::to_string(&events).unwrap();
        assert!(text.contains(&open), "{who} sees the open matter's events (the log is not just empty)");
        for s in secrets {
            let naming: Vec<&Value> =
                events.iter().filter(|e| e.to_string().contains(s)).map(|e| &e["action"]).collect();
            assert!(naming.is_empty(), "{who} sees events naming the walled matter ({s}): {naming:?}");
        }
        let export = c.get("/api/v1/audit/export?format=jsonl").await;
        assert_eq!(export.status, StatusCode::OK, "{who}: {}", export.text());
        assert!(export.text().contains(&open), "{who}'s export has the open matter");
        for s in secrets {
            assert!(!export.text().contains(s), "{who}'s export names the walled matter ({s})");
        }
        let page = c.get("/audit").await;
        assert_eq!(page.status, StatusCode::OK, "{who}");
        for s in secrets {
            assert!(!page.text().contains(s), "{who}'s audit page names the walled matter ({s})");
        }
        let by_matter = c.get(&format!("/api/v1/audit?matter={walled}")).await;
        let reveals_nothing = by_matter.status == StatusCode::NOT_FOUND
            || (by_matter.status == StatusCode::OK && by_matter.json()["items"] == json!([]));
        assert!(reveals_nothing, "{who}: ?matter=<walled> answered {} {}", by_matter.status, by_matter.text());
    }

    // Owner A, on the list, sees the matter's events.
    let own = all_events(&f.owner.c, &format!("matter={walled}&")).await;
    let actions: Vec<&str> = own.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["matter.create", "message.post", "document.upload"] {
        assert!(actions.contains(&expected), "owner A misses {expected}: {actions:?}");
    }
    let everything = serde_json::to_string(&all_events(&f.owner.c, "").await).unwrap();
    assert!(everything.contains(&walled) && everything.contains(&doc), "owner A's whole log has the matter");
});

// ---------------------------------------------------------------------------------------------
// 8. The wall matrix
// ---------------------------------------------------------------------------------------------

/// The walled objects a probe names.
struct Walled {
    matter: String,
    /// A plain document.
    doc: String,
    /// A document held for review (its DLP flag is what release and discard act on).
    held: String,
    /// A user on the list (the client).
    member: String,
}

enum Body {
    None,
    Json(Value),
    /// Raw bytes, as an API upload.
    Bytes,
    /// A form with the caller's real CSRF token first.
    Form(&'static [(&'static str, &'static str)]),
    /// A multipart upload with the CSRF token first, as the matter page sends it.
    Multipart,
}

struct Probe {
    method: Method,
    /// `{M}` matter, `{D}` plain document, `{H}` held document, `{U}` a member, `{SELF}` the
    /// caller's email, `{ROLE}` the role the caller would be listed with.
    path: &'static str,
    body: Body,
    /// Decided by a permission no token has ("session only"): a token may be refused before
    /// anything is looked up (403), provided the answer is the same for an id that does not exist.
    session_only: bool,
}

/// Every route that names a matter, member, document, DLP flag or message.
fn probes() -> Vec<Probe> {
    let p = |method, path, body, session_only| Probe { method, path, body, session_only };
    let me = || Body::Json(json!({"email": "{SELF}", "role": "{ROLE}"}));
    vec![
        p(Method::GET, "/api/v1/matters/{M}", Body::None, false),
        p(Method::GET, "/api/v1/matters/{M}/members", Body::None, false),
        p(Method::POST, "/api/v1/matters/{M}/members", me(), false),
        p(Method::DELETE, "/api/v1/matters/{M}/members/{U}", Body::None, false),
        p(Method::GET, "/api/v1/matters/{M}/documents", Body::None, false),
        p(Method::POST, "/api/v1/matters/{M}/documents?name=x.txt", Body::Bytes, false),
        p(Method::GET, "/api/v1/documents/{D}/content", Body::None, false),
        p(Method::GET, "/api/v1/documents/{H}/content", Body::None, false),
        p(Method::GET, "/api/v1/matters/{M}/messages", Body::None, false),
        p(Method::POST, "/api/v1/matters/{M}/messages", Body::Json(json!({"body": "injected"})), false),
        p(Method::POST, "/api/v1/documents/{H}/release", Body::Json(json!({})), true),
        p(Method::DELETE, "/api/v1/documents/{H}", Body::None, true),
        p(Method::DELETE, "/api/v1/documents/{D}", Body::None, true),
        // The pages and forms.
        p(Method::GET, "/matters/{M}", Body::None, false),
        p(Method::GET, "/documents/{D}/download", Body::None, false),
        p(Method::GET, "/documents/{H}/download", Body::None, false),
        p(Method::POST, "/matters/{M}/members", Body::Form(&[("email", "{SELF}"), ("role", "{ROLE}")]), false),
        p(Method::POST, "/matters/{M}/members/{U}/remove", Body::Form(&[]), false),
        p(Method::POST, "/matters/{M}/messages", Body::Form(&[("body", "injected")]), false),
        p(Method::POST, "/matters/{M}/documents", Body::Multipart, false),
        p(Method::POST, "/account/security/held/{H}/release", Body::Form(&[]), false),
        p(Method::POST, "/account/security/held/{H}/discard", Body::Form(&[]), false),
    ]
}

/// Call one probe as `c` (whose email is `email`, listed as `role` if it ever got in).
async fn call(c: &Client, probe: &Probe, w: &Walled, email: &str, role: &str) -> Resp {
    let fill = |s: &str| {
        s.replace("{M}", &w.matter)
            .replace("{D}", &w.doc)
            .replace("{H}", &w.held)
            .replace("{U}", &w.member)
            .replace("{SELF}", email)
            .replace("{ROLE}", role)
    };
    let path = fill(probe.path);
    let rb = c.request(probe.method.clone(), &path);
    let csrf = c.csrf.clone().unwrap_or_default();
    let rb = match &probe.body {
        Body::None => rb,
        Body::Json(v) => rb.header("content-type", "application/json").body(fill(&v.to_string())),
        Body::Bytes => rb.body(b"payload".to_vec()),
        Body::Form(pairs) => {
            let mut form = vec![("csrf".to_string(), csrf)];
            form.extend(pairs.iter().map(|(k, v)| (k.to_string(), fill(v))));
            rb.form(&form)
        }
        Body::Multipart => rb.multipart(
            reqwest::multipart::Form::new()
                .text("csrf", csrf)
                .part("file", reqwest::multipart::Part::bytes(b"payload".to_vec()).file_name("x.txt")),
        ),
    };
    Client::send(rb).await
}

/// Every probe as `c`: 404, and the same answer as for ids that do not exist. What differs is
/// added to `leaks`, so one run names every route that gives the wall away.
async fn all_walled(c: &Client, who: &str, w: &Walled, email: &str, role: &str, leaks: &mut Vec<String>) {
    let unknown = || uuid::Uuid::new_v4().to_string();
    let nothing = Walled { matter: unknown(), doc: unknown(), held: unknown(), member: unknown() };
    let by_token = c.bearer.is_some();
    for probe in probes() {
        let page = !probe.path.starts_with("/api/");
        if by_token && page {
            continue; // Pages take only the session cookie.
        }
        let r = call(c, &probe, w, email, role).await;
        let same = call(c, &probe, &nothing, email, role).await;
        let what = format!("{who}: {} {}", probe.method, probe.path);
        // A token may be refused a session-only action before any lookup, like a made-up id.
        let refused_first = by_token && probe.session_only && r.status == StatusCode::FORBIDDEN;
        if r.status != StatusCode::NOT_FOUND && !refused_first {
            leaks.push(format!("{what} answered {} {}", r.status, brief(&r)));
        } else if r.status != same.status || (!page && r.error_code() != same.error_code()) {
            let (status, body) = (same.status, brief(&same));
            leaks.push(format!("{what} answered {} {}, but {status} {body} for made-up ids", r.status, brief(&r)));
        }
    }
}

/// An answer's body, short: a page by its title.
fn brief(r: &Resp) -> String {
    let text = r.text();
    match text.split_once("<title>") {
        Some((_, rest)) => rest.split('<').next().unwrap_or_default().to_string(),
        None => text.chars().take(160).collect(),
    }
}

/// The lists `c` is shown do not name the walled matter or its documents.
async fn lists_hide(c: &Client, who: &str, w: &Walled, leaks: &mut Vec<String>) {
    for path in ["/api/v1/matters", "/matters", "/api/v1/tenant/held-documents", "/account/security", "/"] {
        let r = c.get(path).await;
        if r.status.is_success() {
            for (what, id) in [("matter", &w.matter), ("document", &w.doc), ("held document", &w.held)] {
                if r.text().contains(id.as_str()) {
                    leaks.push(format!("{who}: {path} names the walled {what}"));
                }
            }
        }
    }
}

/// What a member of the walled matter sees of it, to compare before and after the probes.
async fn seen_by_member(c: &Client, w: &Walled) -> (Vec<Value>, Vec<String>, Vec<String>) {
    let docs = documents(c, &w.matter)
        .await
        .iter()
        .map(|d| json!({"id": d["id"], "name": d["name"], "dlp": d["dlp"]}))
        .collect::<Vec<_>>();
    let messages = ids_at(c, &format!("/api/v1/matters/{}/messages", w.matter), "id").await;
    let members = ids_at(c, &format!("/api/v1/matters/{}/members", w.matter), "user_id").await;
    (docs, messages, members)
}

crate::both!(every_matter_route_is_walled_for_every_role_outside_the_list, |srv| async move {
    let f = firm(srv, "wallmatrix").await;
    quarantine_cards(&f.owner.c).await;
    // Inside the wall: the partner who opened the matter, and a client.
    let partner = f.person(srv, "partner", "staff").await;
    let inside = f.person(srv, "inside", "client").await;
    let m = matter(&partner.c, "W-1", true).await;
    add_member(&partner.c, &m, &inside.email, "client").await;
    let doc = upload(&partner.c, &m, "offer.pdf", b"offer").await;
    let held = upload_held(&inside.c, &m).await;
    message(&partner.c, &m, "walled").await;
    message(&inside.c, &m, "from the client").await;
    let w = Walled { matter: m.clone(), doc: doc.clone(), held: held.clone(), member: inside.id.clone() };

    // Outside it: one of every role; the client has a matter of their own.
    let admin = f.person(srv, "admin", "admin").await;
    let staff = f.person(srv, "staff", "staff").await;
    let auditor = f.person(srv, "auditor", "auditor").await;
    let client = f.person(srv, "client", "client").await;
    let own = matter(&f.owner.c, "O-1", false).await;
    add_member(&f.owner.c, &own, &client.email, "client").await;

    // Every matter- and document-naming API operation the server documents is probed.
    let spec = f.owner.c.get("/api/v1/openapi.json").await.json();
    let probed: Vec<String> = probes()
        .iter()
        .filter(|p| p.path.starts_with("/api/"))
        .map(|p| format!("{} {}", p.method.as_str().to_lowercase(), normalise(p.path)))
        .collect();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if !(path.starts_with("/api/v1/matters/{") || path.starts_with("/api/v1/documents/{")) {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let op = format!("{method} {}", normalise(path));
            assert!(probed.contains(&op), "{op} is not probed");
        }
    }

    let before = seen_by_member(&partner.c, &w).await;
    assert_eq!(before.0.len(), 2, "{before:?}");
    let mut leaks = Vec::new();
    for (role, who) in
        [("owner", &f.owner), ("admin", &admin), ("staff", &staff), ("auditor", &auditor), ("client", &client)]
    {
        let listed_as = if role == "client" { "client" } else { "staff" };
        all_walled(&who.c, role, &w, &who.email, listed_as, &mut leaks).await;
        lists_hide(&who.c, role, &w, &mut leaks).await;
        let scopes = read_write_scopes(role);
        let t = who.c.with_bearer(&token(&who.c, &scopes).await);
        let by_token = format!("{role} token");
        all_walled(&t, &by_token, &w, &who.email, listed_as, &mut leaks).await;
        lists_hide(&t, &by_token, &w, &mut leaks).await;
    }
    assert!(leaks.is_empty(), "the wall leaks ({}):\n{}", leaks.len(), leaks.join("\n"));

    // Nothing changed: the member sees the same documents (the held one still held), messages
    // and list; the client on it still downloads the plain document and not the held one.
    assert_eq!(seen_by_member(&partner.c, &w).await, before);
    let held_now = documents(&partner.c, &m).await.into_iter().find(|d| d["id"] == held.as_str()).unwrap();
    assert_eq!(held_now["dlp"], "quarantined");
    assert_eq!(fetch(&inside.c, &doc).await, StatusCode::OK);
    assert_eq!(fetch(&inside.c, &held).await, StatusCode::NOT_FOUND);
    assert_eq!(partner.c.get(&format!("/documents/{doc}/download")).await.body, b"offer");
});

/// A path with every `{parameter}` written `{}`, to compare with the OpenAPI document's.
fn normalise(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    let mut out = String::new();
    let mut in_param = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(ch),
        }
    }
    out
}
