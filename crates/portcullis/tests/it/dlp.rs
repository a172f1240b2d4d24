//! Data loss prevention: identifiers in uploads and messages under each policy, the review
//! queue, and the daily download cap. Audit events carry counts, never the values.

use crate::uploads::{Entry, docx, pdf, pdf_content, setup};
use portcullis_testkit::{Client, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

const CARD: &str = "4111 1111 1111 1111";
const IBAN: &str = "GB82 WEST 1234 5698 7654 32";
const NINO: &str = "AB 12 34 56 C";

/// A signed-in user of `tenant` with `role`, on the matter.
async fn member(
    srv: &TestServer,
    owner: &Client,
    tenant: &str,
    tid: portcullis_core::ids::TenantId,
    m: &str,
    role: &str,
) -> Client {
    let email = format!("{role}@{tenant}.example");
    srv.user(tid, &email, role).await;
    let add = owner.post(&format!("/api/v1/matters/{m}/members"), json!({"email": email, "role": role})).await;
    assert!(add.status.is_success(), "{}", add.text());
    let mut c = srv.client();
    assert_eq!(c.login(tenant, &email, PASSWORD).await.status, StatusCode::OK);
    c
}

fn listed(c_list: &serde_json::Value, id: &str) -> Option<serde_json::Value> {
    c_list["items"].as_array().unwrap().iter().find(|d| d["id"] == id).cloned()
}

async fn list(c: &Client, m: &str) -> serde_json::Value {
    c.get(&format!("/api/v1/matters/{m}/documents")).await.json()
}

async fn fetch(c: &Client, id: &str) -> StatusCode {
    c.get(&format!("/api/v1/documents/{id}/content")).await.status
}

fn id(r: &portcullis_testkit::Resp) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

/// The whole audit log as text: no identifier may appear in it.
async fn audit_text(owner: &Client) -> String {
    owner.get("/api/v1/audit?limit=500").await.text()
}

pub(crate) fn clean_of_values(audit: &str) {
    for v in [CARD, IBAN, NINO, "4111111111111111", "GB82WEST12345698765432", "AB123456C"] {
        assert!(!audit.contains(v), "the audit log holds a matched value");
    }
}

crate::both!(each_policy_applies_to_uploads, |srv| async move {
    let (owner, m, tid) = setup(srv, "dlpco").await;
    let staff = member(srv, &owner, "dlpco", tid, &m, "staff").await;
    let client = member(srv, &owner, "dlpco", tid, &m, "client").await;
    let set = owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {"payment_card": "warn", "iban": "quarantine", "national_insurance": "block_clients",
                   "passport": "allow"}, "download_cap": {"downloads": null, "bytes": null}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["detectors"]["iban"], "quarantine");

    // Warn: accepted, flagged with counts for staff, visible to clients.
    let warned = id(&client.upload(&m, "card.txt", format!("card {CARD}\n").into_bytes()).await);
    let seen = listed(&list(&staff, &m).await, &warned).unwrap();
    assert_eq!(seen["dlp"], "warned", "{seen}");
    assert_eq!(seen["dlp_findings"]["payment_card"], 1, "{seen}");
    let by_client = listed(&list(&client, &m).await, &warned).unwrap();
    assert!(by_client.get("dlp_findings").is_none(), "{by_client}");
    assert_eq!(fetch(&client, &warned).await, StatusCode::OK);

    // Quarantine: held from staff and clients until released; owners and admins review it.
    let held = id(&staff.upload(&m, "bank.txt", format!("Pay into {IBAN} please").into_bytes()).await);
    assert_eq!(listed(&list(&staff, &m).await, &held).unwrap()["dlp"], "quarantined");
    assert!(listed(&list(&client, &m).await, &held).is_none());
    let refused = staff.get(&format!("/api/v1/documents/{held}/content")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert!(refused.json()["message"].as_str().unwrap().contains("releases"), "{}", refused.text());
    assert_eq!(fetch(&client, &held).await, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&owner, &held).await, StatusCode::OK);
    let queue = owner.get("/api/v1/tenant/held-documents").await;
    assert_eq!(queue.status, StatusCode::OK);
    let item = queue.json()["items"].as_array().unwrap().iter().find(|i| i["document_id"] == held).cloned().unwrap();
    assert_eq!(item["findings"]["iban"], 1);
    assert_eq!(staff.get("/api/v1/tenant/held-documents").await.status, StatusCode::FORBIDDEN);
    assert_eq!(staff.post(&format!("/api/v1/documents/{held}/release"), json!({})).await.status, StatusCode::FORBIDDEN);
    let rel = owner.post(&format!("/api/v1/documents/{held}/release"), json!({})).await;
    assert_eq!(rel.status, StatusCode::NO_CONTENT, "{}", rel.text());
    assert_eq!(fetch(&staff, &held).await, StatusCode::OK);
    assert_eq!(fetch(&client, &held).await, StatusCode::OK);
    assert_eq!(listed(&list(&client, &m).await, &held).unwrap()["dlp"], "released");
    // Releasing twice, or something never held, is refused.
    let again = owner.post(&format!("/api/v1/documents/{held}/release"), json!({})).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text());

    // Block clients: staff work with it; clients neither see nor fetch it.
    let blocked = id(&staff.upload(&m, "ni.csv", format!("name,ni\nA,{NINO}\n").into_bytes()).await);
    assert!(listed(&list(&client, &m).await, &blocked).is_none());
    assert_eq!(fetch(&client, &blocked).await, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&staff, &blocked).await, StatusCode::OK);
    assert_eq!(listed(&list(&staff, &m).await, &blocked).unwrap()["dlp"], "client_blocked");

    // Allow: a passport number passes unflagged; so does a legitimate document.
    let allowed = id(&staff.upload(&m, "p.txt", b"Passport No: 123456789".to_vec()).await);
    assert!(listed(&list(&client, &m).await, &allowed).unwrap().get("dlp").is_none());
    let plain = id(&client.upload(&m, "plain.txt", b"Completion is on Friday at noon.".to_vec()).await);
    let plain_seen = listed(&list(&client, &m).await, &plain).unwrap();
    assert!(plain_seen.get("dlp").is_none(), "{plain_seen}");
    assert_eq!(fetch(&client, &plain).await, StatusCode::OK);

    // Audited, with counts only.
    let audit = audit_text(&owner).await;
    for action in ["dlp.document_flagged", "dlp.document_released", "tenant.dlp_policy"] {
        assert!(audit.contains(action), "{action} missing");
    }
    clean_of_values(&audit);
});

crate::both!(a_quarantine_alerts_and_a_held_document_can_be_deleted, |srv| async move {
    let (owner, m, _) = setup(srv, "dlpdel").await;
    owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {"payment_card": "quarantine"}, "download_cap": {"downloads": 50, "bytes": null}}),
        )
        .await;
    let held = id(&owner.upload(&m, "c.txt", CARD.as_bytes().to_vec()).await);
    let audit = audit_text(&owner).await;
    assert!(audit.contains("dlp.document_flagged"));
    // The security settings page shows the policy and the held document.
    let page = owner.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("Uploads and data loss prevention") && html.contains(&held), "{html}");
    assert!(html.contains("id=\"cap-downloads\" value=\"50\""), "{html}");
    let plain = id(&owner.upload(&m, "plain.txt", b"nothing here".to_vec()).await);
    let not_held = Client::send(owner.request(reqwest::Method::DELETE, &format!("/api/v1/documents/{plain}"))).await;
    assert_eq!(not_held.status, StatusCode::BAD_REQUEST, "{}", not_held.text());
    let del = Client::send(owner.request(reqwest::Method::DELETE, &format!("/api/v1/documents/{held}"))).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text());
    assert_eq!(fetch(&owner, &held).await, StatusCode::NOT_FOUND);
    assert!(listed(&list(&owner, &m).await, &held).is_none());
    let bad = owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {"nope": "warn"}, "download_cap": {"downloads": 1, "bytes": null}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    let bad_action = owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {"iban": "shout"}, "download_cap": {"downloads": 1, "bytes": null}}),
        )
        .await;
    assert_eq!(bad_action.status, StatusCode::BAD_REQUEST, "{}", bad_action.text());
    let zero = owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {}, "download_cap": {"downloads": 0, "bytes": null}}),
        )
        .await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST, "{}", zero.text());
    clean_of_values(&audit_text(&owner).await);
});

crate::both!(identifiers_in_docx_and_pdf_are_found, |srv| async move {
    let (owner, m, _) = setup(srv, "dlpdoc").await;
    owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {"iban": "warn", "payment_card": "block_clients"}, "download_cap": {"downloads": null, "bytes": null}}),
        )
        .await;
    let d = id(&owner.upload(&m, "bank.docx", docx(&format!("Our account: {IBAN}."), Entry::Streamed)).await);
    let p = id(&owner.upload(&m, "card.pdf", pdf(&format!("Card {CARD}"))).await);
    let clean = id(&owner.upload(&m, "clean.pdf", pdf("Nothing to see")).await);
    let docs = list(&owner, &m).await;
    let dd = listed(&docs, &d).unwrap();
    assert_eq!(dd["dlp"], "warned", "{dd}");
    assert_eq!(dd["dlp_findings"]["iban"], 1, "{dd}");
    let pp = listed(&docs, &p).unwrap();
    assert_eq!(pp["dlp"], "client_blocked", "{pp}");
    assert_eq!(pp["dlp_findings"]["payment_card"], 1, "{pp}");
    assert!(listed(&docs, &clean).unwrap().get("dlp").is_none());
    clean_of_values(&audit_text(&owner).await);
});

crate::both!(messages_with_identifiers_are_warned_or_refused, |srv| async move {
    let (owner, m, tid) = setup(srv, "dlpmsg").await;
    let client = member(srv, &owner, "dlpmsg", tid, &m, "client").await;
    owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {"payment_card": "warn", "iban": "quarantine", "national_insurance": "block_clients"},
                   "download_cap": {"downloads": null, "bytes": null}}),
        )
        .await;
    let path = format!("/api/v1/matters/{m}/messages");
    let ok = client.post(&path, json!({"body": "See you on Friday."})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text());
    let warned = client.post(&path, json!({"body": format!("My card is {CARD}")})).await;
    assert_eq!(warned.status, StatusCode::CREATED, "{}", warned.text());
    for body in [format!("Pay {IBAN}"), format!("NI {NINO}")] {
        let r = client.post(&path, json!({"body": body})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.error_code(), "dlp_refused");
    }
    let msgs = owner.get(&path).await.json();
    assert_eq!(msgs["items"].as_array().unwrap().len(), 2, "{msgs}");
    let audit = audit_text(&owner).await;
    assert!(audit.contains("dlp.message_flagged") && audit.contains("dlp.message_refused"));
    clean_of_values(&audit);
});

crate::both!(the_daily_download_cap_refuses_one_user_only, |srv| async move {
    let (owner, m, tid) = setup(srv, "dlpcap").await;
    let staff = member(srv, &owner, "dlpcap", tid, &m, "staff").await;
    let set = owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {}, "download_cap": {"downloads": 2, "bytes": null}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let doc = id(&owner.upload(&m, "a.txt", b"hello".to_vec()).await);
    assert_eq!(fetch(&staff, &doc).await, StatusCode::OK);
    assert_eq!(fetch(&staff, &doc).await, StatusCode::OK);
    let capped = staff.get(&format!("/api/v1/documents/{doc}/content")).await;
    assert_eq!(capped.status, StatusCode::TOO_MANY_REQUESTS, "{}", capped.text());
    assert_eq!(capped.error_code(), "download_cap_reached");
    // Another user is unaffected.
    assert_eq!(fetch(&owner, &doc).await, StatusCode::OK);
    // Only owners and admins lift it; then the user downloads again.
    let staff_id = staff.get("/api/v1/session").await.json()["id"].as_str().unwrap().to_string();
    let lift = format!("/api/v1/users/{staff_id}/download-cap/lift");
    assert_eq!(staff.post(&lift, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(owner.post(&lift, json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(fetch(&staff, &doc).await, StatusCode::OK);
    let audit = audit_text(&owner).await;
    assert!(audit.contains("dlp.download_capped") && audit.contains("dlp.download_cap_lifted"));
    // Lifting one's own cap is for another owner or admin, once the firm has one.
    let owner_id = owner.get("/api/v1/session").await.json()["id"].as_str().unwrap().to_string();
    let own = format!("/api/v1/users/{owner_id}/download-cap/lift");
    assert_eq!(owner.post(&own, json!({})).await.status, StatusCode::NO_CONTENT, "a sole owner may");
    let admin = member(srv, &owner, "dlpcap", tid, &m, "admin").await;
    let r = owner.post(&own, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("another owner or admin"), "{}", r.text());
    assert_eq!(admin.post(&own, json!({})).await.status, StatusCode::NO_CONTENT);
    // A byte cap counts bytes.
    owner
        .put_json(
            "/api/v1/tenant/dlp-policy",
            json!({"detectors": {}, "download_cap": {"downloads": null, "bytes": 6}}),
        )
        .await;
    owner.post(&lift, json!({})).await;
    assert_eq!(fetch(&staff, &doc).await, StatusCode::OK);
    assert_eq!(fetch(&staff, &doc).await, StatusCode::OK);
    assert_eq!(fetch(&staff, &doc).await, StatusCode::TOO_MANY_REQUESTS);
});

// The security page's forms, as an owner uses them: each setting saved through the same
// service as the API (so the API reads it back), a refused value shown with its reason and
// nothing saved, held documents released from the page, and no form for a staff member.
crate::both!(protection_settings_are_set_from_the_security_page, |srv| async move {
    use crate::ui::{csrf_of, post_form};
    let (owner, m, tid) = setup(srv, "uiprot").await;
    let html = owner.get("/account/security").await.text();
    let defaults = owner.get("/api/v1/tenant/upload-policy").await.json()["allowed"].as_array().unwrap().len();
    assert_eq!(html.matches("\" checked> ").count(), defaults, "the default types are ticked");
    let csrf = csrf_of(&html);
    let upload_policy = || async { owner.get("/api/v1/tenant/upload-policy").await.json()["allowed"].clone() };
    let dlp_policy = || async { owner.get("/api/v1/tenant/dlp-policy").await.json() };

    // File types: the ticked ones, exactly.
    let r = post_form(&owner, "/account/security/uploads", &[("csrf", &csrf), ("allowed", "pdf"), ("allowed", "text")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("The accepted file types were saved."));
    assert_eq!(upload_policy().await, json!(["pdf", "text"]));
    let png = owner.upload(&m, "a.png", crate::uploads::png()).await;
    assert_eq!(png.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", png.text());
    let bad = post_form(&owner, "/account/security/uploads", &[("csrf", &csrf), ("allowed", "exe")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("unknown file type"), "{}", bad.text());
    assert_eq!(upload_policy().await, json!(["pdf", "text"]), "a refused list changes nothing");

    // DLP actions and the cap (in MiB on the form, bytes in the API).
    let dlp = [("csrf", csrf.as_str()), ("dlp.payment_card", "quarantine"), ("cap_downloads", "5"), ("cap_mib", "2")];
    let r = post_form(&owner, "/account/security/dlp", &dlp).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let saved = dlp_policy().await;
    assert_eq!(saved["detectors"]["payment_card"], "quarantine");
    assert_eq!(saved["download_cap"], json!({"downloads": 5, "bytes": 2 << 20}));
    assert!(r.text().contains("id=\"cap-mib\" value=\"2\""), "the page shows what was saved");
    for (field, value, reason) in [
        ("cap_downloads", "lots", "is not a whole number"),
        ("cap_downloads", "0", "at least 1"),
        ("dlp.iban", "shout", "unknown action"),
        ("dlp.shoe_size", "warn", "unknown detector"),
    ] {
        let r = post_form(&owner, "/account/security/dlp", &[("csrf", &csrf), (field, value)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}={value}: {}", r.text());
        assert!(r.text().contains(reason), "{field}={value}: {}", r.text());
        assert_eq!(dlp_policy().await, saved, "{field}={value} changed the policy");
    }
    // Empty cap fields: no cap.
    let r =
        post_form(&owner, "/account/security/dlp", &[("csrf", &csrf), ("cap_downloads", ""), ("cap_mib", "")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(dlp_policy().await["download_cap"], json!({"downloads": null, "bytes": null}));

    // Sign-in networks: one a line; a list leaving out this address, or a non-network, refused.
    let r =
        post_form(&owner, "/account/security/networks", &[("csrf", &csrf), ("networks", "127.0.0.0/8\r\n10.0.0.0/8")])
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let networks = || async { owner.get("/api/v1/tenant/network-access").await.json()["networks"].clone() };
    assert_eq!(networks().await, json!(["10.0.0.0/8", "127.0.0.0/8"]));
    for (list, reason) in [("10.0.0.0/8", "lock you out"), ("not-a-network", "networks")] {
        let r = post_form(&owner, "/account/security/networks", &[("csrf", &csrf), ("networks", list)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{list}: {}", r.text());
        assert!(r.text().contains(reason), "{list}: {}", r.text());
    }
    assert_eq!(networks().await, json!(["10.0.0.0/8", "127.0.0.0/8"]));
    let r = post_form(&owner, "/account/security/networks", &[("csrf", &csrf), ("networks", "")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(networks().await, json!([]));

    // A held document is released from the page and can then be fetched.
    let held = id(&owner.upload(&m, "card.txt", CARD.as_bytes().to_vec()).await);
    let html = owner.get("/account/security").await.text();
    assert!(html.contains(&format!("/account/security/held/{held}/release")), "{html}");
    let r = post_form(&owner, &format!("/account/security/held/{held}/release"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("id=\"held-none\""), "{}", r.text());
    assert_eq!(fetch(&owner, &held).await, StatusCode::OK);
    let again = post_form(&owner, &format!("/account/security/held/{held}/discard"), &[("csrf", &csrf)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "only a held document can be deleted here");
    assert_eq!(fetch(&owner, &held).await, StatusCode::OK);

    // Every change is audited; a staff member sees no form and is refused.
    let audit = audit_text(&owner).await;
    for action in ["tenant.upload_policy", "tenant.dlp_policy", "tenant.network_access", "dlp.document_released"] {
        assert!(audit.contains(action), "{action} not audited");
    }
    let staff = member(srv, &owner, "uiprot", tid, &m, "staff").await;
    let page = staff.get("/account/security").await.text();
    assert!(!page.contains("save-uploads"), "{page}");
    let r = post_form(&staff, "/account/security/uploads", &[("csrf", &csrf_of(&page)), ("allowed", "pdf")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(upload_policy().await, json!(["pdf", "text"]));
});

// A quarantine reaches the operators' alert receiver as a signed webhook naming the document
// and the counts found, never the identifiers themselves.
crate::alerts::on_both!(a_quarantine_is_told_to_the_alert_receiver, |db| async move {
    let hook = portcullis_testkit::WebhookSink::started().await;
    let srv = crate::alerts::server(db, &hook, None, |_| {}).await;
    let (owner, m, tid) = setup(&srv, "dlpalert").await;
    let policy =
        json!({"detectors": {"payment_card": "quarantine"}, "download_cap": {"downloads": null, "bytes": null}});
    assert_eq!(owner.put_json("/api/v1/tenant/dlp-policy", policy).await.status, StatusCode::OK);
    let held = id(&owner.upload(&m, "card.txt", format!("Card: {CARD}").into_bytes()).await);
    let got = hook.wait_for(1, crate::alerts::kind("document_quarantined")).await;
    let body = got[0].json();
    assert_eq!(body["subject"], format!("document:{held}"));
    assert_eq!(body["tenant"]["id"], tid.to_string());
    assert_eq!(body["detail"]["findings"]["payment_card"], 1);
    clean_of_values(&got[0].text());
    srv.stop().await;
});

// Downloads sent all at once are counted one after another: exactly the cap gets through.
crate::both!(parallel_downloads_do_not_overshoot_the_cap, |srv| async move {
    let (owner, m, tid) = setup(srv, "dlppar").await;
    let staff = member(srv, &owner, "dlppar", tid, &m, "staff").await;
    let cap = json!({"detectors": {}, "download_cap": {"downloads": 5, "bytes": null}});
    assert_eq!(owner.put_json("/api/v1/tenant/dlp-policy", cap).await.status, StatusCode::OK);
    let doc = id(&owner.upload(&m, "a.txt", b"hello".to_vec()).await);
    let all = futures::future::join_all((0..16).map(|_| fetch(&staff, &doc))).await;
    let ok = all.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 5, "{all:?}");
    assert!(all.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS), "{all:?}");
});

crate::both!(documents_the_scan_cannot_read_fail_closed, |srv| async move {
    let (owner, m, tid) = setup(srv, "dlpunread").await;
    let client = member(srv, &owner, "dlpunread", tid, &m, "client").await;
    // Text drawn with glyph codes (a CID font) cannot be read by the scan.
    let unreadable = pdf_content("BT /F1 12 Tf [<0041004200430044>] TJ ET");
    // Under the default policy (every detector warns) it is accepted and visibly flagged.
    let seen = id(&owner.upload(&m, "scan.pdf", unreadable.clone()).await);
    let flagged = listed(&list(&owner, &m).await, &seen).unwrap();
    assert_eq!(flagged["dlp"], "unscanned", "{flagged}");
    assert_eq!(fetch(&client, &seen).await, StatusCode::OK);
    // When the firm quarantines anything a detector finds, what could not be read is held too.
    let all = json!({"detectors": {"payment_card": "quarantine", "iban": "quarantine", "national_insurance": "quarantine",
                     "passport": "quarantine", "sort_code_account": "quarantine"},
                     "download_cap": {"downloads": null, "bytes": null}});
    assert_eq!(owner.put_json("/api/v1/tenant/dlp-policy", all).await.status, StatusCode::OK);
    let held = id(&owner.upload(&m, "scan2.pdf", unreadable).await);
    let flagged = listed(&list(&owner, &m).await, &held).unwrap();
    assert_eq!(flagged["dlp"], "quarantined", "{flagged}");
    assert!(listed(&list(&client, &m).await, &held).is_none());
    assert_eq!(fetch(&client, &held).await, StatusCode::NOT_FOUND);
    // Character references in an office document are decoded before the scan.
    let encoded = id(&owner.upload(&m, "card.docx", docx("Card &#52;111 1111 &#x31;111 1111", Entry::Deflated)).await);
    let flagged = listed(&list(&owner, &m).await, &encoded).unwrap();
    assert_eq!(
        (flagged["dlp"].clone(), flagged["dlp_findings"]["payment_card"].clone()),
        (json!("quarantined"), json!(1))
    );
    clean_of_values(&audit_text(&owner).await);
});

crate::both!(pdfs_that_run_code_or_carry_files_are_refused, |srv| async move {
    let (owner, m, _) = setup(srv, "dlpactive").await;
    for body in [
        &b"%PDF-1.7\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert\\(1\\))>>>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"[..],
        b"%PDF-1.7\n1 0 obj<</Type/Catalog/OpenAction<</S/L#61unch/F(cmd.exe)>>>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
        b"%PDF-1.7\n1 0 obj<</Type/Catalog/Names<</EmbeddedFiles 2 0 R>>>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    ] {
        let r = owner.upload(&m, "form.pdf", body.to_vec()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
        assert!(r.json()["detected"].as_str().unwrap().contains("active content"), "{}", r.text());
    }
    assert_eq!(list(&owner, &m).await["items"].as_array().unwrap().len(), 0);
});
