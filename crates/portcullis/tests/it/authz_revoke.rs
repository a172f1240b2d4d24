//! Taking access away reaches what was already handed out: a member taken off a matter, a user
//! deactivated or demoted across the staff/client line, and a firm's new two-factor
//! requirement all act at once on existing sessions and API tokens, not at the next sign-in.

use crate::authz::*;
use portcullis_testkit::totp_code;
use reqwest::StatusCode;
use serde_json::json;

const OK: [StatusCode; 4] = [StatusCode::OK; 4];
const GONE: [StatusCode; 4] = [StatusCode::NOT_FOUND; 4];

crate::both!(taking_a_member_off_a_matter_ends_their_access_at_once, |srv| async move {
    let f = firm(srv, "removal").await;
    let partner = f.person(srv, "partner", "staff").await;
    let leaver = f.person(srv, "leaver", "staff").await;
    let client = f.person(srv, "client", "client").await;
    // A walled matter with the partner, a colleague and the client on its list.
    let w = matter(&partner.c, "W-1", true).await;
    add_member(&partner.c, &w, &leaver.email, "staff").await;
    add_member(&partner.c, &w, &client.email, "client").await;
    let doc = upload(&partner.c, &w, "offer.pdf", b"offer").await;
    message(&partner.c, &w, "hello").await;
    let members = format!("/api/v1/matters/{w}/members");
    let leaver_token = leaver.c.with_bearer(&token(&leaver.c, &["read"]).await);
    let client_token = client.c.with_bearer(&token(&client.c, &["read", "write"]).await);
    assert_eq!(reach(&leaver.c, &w, &doc).await, OK);
    assert_eq!(reach(&leaver_token, &w, &doc).await, OK);
    let listed = ids_at(&partner.c, &members, "user_id").await;

    // A client cannot take anyone off, by session, token or page.
    let r = client.c.delete(&format!("{members}/{}", partner.id)).await;
    assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{} {}", r.status, r.text());
    let r = client_token.delete(&format!("{members}/{}", leaver.id)).await;
    assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{} {}", r.status, r.text());
    let r = post_csrf_form(&client.c, &format!("/matters/{w}/members/{}/remove", leaver.id), &[]).await;
    assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{} {}", r.status, r.text());
    assert_eq!(ids_at(&partner.c, &members, "user_id").await, listed, "nothing changed");
    assert_eq!(reach(&leaver.c, &w, &doc).await, OK);

    // The partner takes the colleague off: their session and token lose the matter at once.
    let r = partner.c.delete(&format!("{members}/{}", leaver.id)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "taking a member off: {}", r.text());
    assert_eq!(reach(&leaver.c, &w, &doc).await, GONE, "the removed member's session");
    assert_eq!(reach(&leaver_token, &w, &doc).await, GONE, "the removed member's token");
    let now_listed = ids_at(&partner.c, &members, "user_id").await;
    assert!(!now_listed.contains(&leaver.id), "{now_listed:?}");
    assert!(now_listed.contains(&partner.id) && now_listed.contains(&client.id), "{now_listed:?}");
    // Taking off someone who is not on the list finds nothing.
    let r = partner.c.delete(&format!("{members}/{}", leaver.id)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(reach(&client.c, &w, &doc).await, OK, "the others keep their access");

    // From the matter page: the owner takes the client off an open matter.
    let open = matter(&f.owner.c, "O-1", false).await;
    add_member(&f.owner.c, &open, &client.email, "client").await;
    let open_doc = upload(&f.owner.c, &open, "open.pdf", b"open").await;
    message(&f.owner.c, &open, "hello").await;
    assert_eq!(reach(&client.c, &open, &open_doc).await, OK);
    assert_eq!(reach(&client_token, &open, &open_doc).await, OK);
    let r = post_csrf_form(&f.owner.c, &format!("/matters/{open}/members/{}/remove", client.id), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(reach(&client.c, &open, &open_doc).await, GONE, "the removed client's session");
    assert_eq!(reach(&client_token, &open, &open_doc).await, GONE, "the removed client's token");
    let open_members = ids_at(&f.owner.c, &format!("/api/v1/matters/{open}/members"), "user_id").await;
    assert!(!open_members.contains(&client.id), "{open_members:?}");
    assert_eq!(reach(&client.c, &w, &doc).await, OK, "still on the walled matter");
});

crate::both!(deactivating_a_user_ends_their_sessions_tokens_and_sign_in, |srv| async move {
    let f = firm(srv, "deactivate").await;
    let admin = f.person(srv, "admin", "admin").await;
    let staff = f.person(srv, "staff", "staff").await;
    let client = f.person(srv, "client", "client").await;
    let m = matter(&f.owner.c, "M-1", false).await;
    add_member(&f.owner.c, &m, &client.email, "client").await;
    let client_token = client.c.with_bearer(&token(&client.c, &["read"]).await);
    let staff_token = staff.c.with_bearer(&token(&staff.c, &["read"]).await);
    let deactivate = |id: &str| format!("/api/v1/users/{id}/deactivate");
    let reactivate = |id: &str| format!("/api/v1/users/{id}/reactivate");

    // Staff and clients cannot deactivate anyone.
    for (who, c, target) in
        [("staff", &staff.c, &client.id), ("staff", &staff.c, &admin.id), ("client", &client.c, &staff.id)]
    {
        let r = c.post(&deactivate(target), json!({})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who} deactivates: {}", r.text());
    }
    for p in [&client, &staff, &admin] {
        assert_eq!(user_row(&f.owner.c, &p.id).await["status"], "active", "{}", p.email);
    }
    assert_eq!(client.c.get("/api/v1/matters").await.status, StatusCode::OK);

    // The owner deactivates the client: session, token and signing in stop at once.
    let r = f.owner.c.post(&deactivate(&client.id), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!((r.json()["id"].clone(), r.json()["status"].clone()), (json!(client.id), json!("disabled")));
    assert_eq!(client.c.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "the session");
    assert_eq!(client_token.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "the token");
    refused(&f.try_sign_in(srv, &client.email).await, StatusCode::UNAUTHORIZED, "invalid_credentials", "sign-in");
    assert_eq!(user_row(&f.owner.c, &client.id).await["status"], "disabled");
    let log = f.owner.c.get("/api/v1/audit?action=user.deactivate").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text());
    let events = log.json()["items"].as_array().unwrap().clone();
    assert!(events.iter().any(|e| e.to_string().contains(&client.id)), "not audited: {events:?}");

    // A client comes back at once.
    let r = f.owner.c.post(&reactivate(&client.id), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(user_row(&f.owner.c, &client.id).await["status"], "active");
    let back = f.sign_in(srv, &client.email).await;
    assert_eq!(back.c.get("/api/v1/matters").await.status, StatusCode::OK);

    // A staff member (deactivated by the admin) comes back only with a second person's approval.
    let r = admin.c.post(&deactivate(&staff.id), json!({})).await;
    assert_eq!((r.status, r.json()["status"].clone()), (StatusCode::OK, json!("disabled")), "{}", r.text());
    assert_eq!(staff.c.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "the session");
    assert_eq!(staff_token.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "the token");
    let req = pending_request(&f.owner.c.post(&reactivate(&staff.id), json!({})).await);
    assert_eq!(f.try_sign_in(srv, &staff.email).await.status, StatusCode::UNAUTHORIZED, "not before the approval");
    let r = f.owner.c.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the requester approves their own: {}", r.text());
    assert_eq!(f.try_sign_in(srv, &staff.email).await.status, StatusCode::UNAUTHORIZED);
    let r = admin.c.post(&format!("/api/v1/approvals/{req}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let back = f.sign_in(srv, &staff.email).await;
    assert_eq!(back.c.get("/api/v1/matters").await.status, StatusCode::OK);
});

crate::both!(a_demotion_to_client_ends_sessions_tokens_and_memberships, |srv| async move {
    let f = firm(srv, "demotion").await;
    let partner = f.person(srv, "partner", "staff").await;
    let s = f.person(srv, "associate", "staff").await;
    let w = matter(&partner.c, "W-1", true).await;
    add_member(&partner.c, &w, &s.email, "staff").await;
    let doc = upload(&partner.c, &w, "offer.pdf", b"offer").await;
    let s_token = s.c.with_bearer(&token(&s.c, &["read"]).await);
    assert_eq!(fetch(&s.c, &doc).await, StatusCode::OK);
    assert_eq!(fetch(&s_token, &doc).await, StatusCode::OK);

    let r = f.owner.c.post(&format!("/api/v1/users/{}/role", s.id), json!({"role": "client"})).await;
    direct(&r, "staff → client");
    assert_eq!(role_of(&f.owner.c, &s.id).await, "client");
    assert_eq!(s.c.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "the old session");
    assert_eq!(s_token.get("/api/v1/matters").await.status, StatusCode::UNAUTHORIZED, "the old token");

    // Signed in again, as a client, the walled matter is gone: the membership went with the role.
    let again = f.sign_in(srv, &s.email).await;
    assert_eq!(again.c.get(&format!("/api/v1/matters/{w}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&again.c, &doc).await, StatusCode::NOT_FOUND);
    assert!(!again.c.get("/api/v1/matters").await.text().contains(&w));
    let listed = ids_at(&partner.c, &format!("/api/v1/matters/{w}/members"), "user_id").await;
    assert!(!listed.contains(&s.id), "still on the list: {listed:?}");
});

crate::both!(a_two_factor_requirement_reaches_existing_sessions_and_tokens, |srv| async move {
    let f = firm(srv, "require2fa").await;
    let staff = f.person(srv, "staff", "staff").await;
    let staff_token = staff.c.with_bearer(&token(&staff.c, &["read"]).await);
    assert_eq!(staff.c.get("/api/v1/matters").await.status, StatusCode::OK);
    assert_eq!(staff_token.get("/api/v1/matters").await.status, StatusCode::OK);

    let r = f.owner.c.put_json("/api/v1/tenant/two-factor", json!({"staff": true, "clients": false})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    // The session opened before the requirement may now only enrol.
    let r = staff.c.get("/api/v1/matters").await;
    refused(&r, StatusCode::FORBIDDEN, "two_factor_enrolment_required", "the session opened before the requirement");
    let st = staff.c.get("/api/v1/me/security").await;
    assert_eq!((st.status, st.json()["two_factor_required"].clone()), (StatusCode::OK, json!(true)), "{}", st.text());
    // The token is suspended until then.
    let r = staff_token.get("/api/v1/matters").await;
    assert!(
        matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "the token: {} {}",
        r.status,
        r.text()
    );

    // Enrolling (from that session) lifts both.
    enrol_totp(srv, &staff.c).await;
    assert_eq!(staff.c.get("/api/v1/matters").await.status, StatusCode::OK);
    let r = staff_token.get("/api/v1/matters").await;
    assert_eq!(r.status, StatusCode::OK, "the token works again: {}", r.text());
});

crate::both!(a_session_that_never_checked_an_enrolled_factor_must_step_up, |srv| async move {
    let f = firm(srv, "stepup").await;
    let m = matter(&f.owner.c, "M-1", false).await;
    let doc = upload(&f.owner.c, &m, "a.pdf", b"content").await;
    // The same staff member in two browsers: the first signs in before having a factor...
    let first = f.person(srv, "staff", "staff").await;
    assert_eq!(fetch(&first.c, &doc).await, StatusCode::OK);
    // ...the second enrols TOTP; then the firm requires a second factor.
    let second = f.sign_in(srv, &first.email).await;
    let secret = enrol_totp(srv, &second.c).await;
    let r = f.owner.c.put_json("/api/v1/tenant/two-factor", json!({"staff": true, "clients": false})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    // The first session never checked the factor: content waits for a step-up.
    let r = first.c.get(&format!("/api/v1/documents/{doc}/content")).await;
    refused(&r, StatusCode::FORBIDDEN, "step_up_required", "content for a session that never checked the factor");
    srv.clock.advance(time::Duration::seconds(30));
    let r = first.c.post("/api/v1/session/step-up", json!({"code": totp_code(&secret, now(srv))})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(first.c.get(&format!("/api/v1/documents/{doc}/content")).await.body, b"content");
});
