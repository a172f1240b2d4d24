//! Four eyes for any rise in a user's reach (client → staff, client → auditor, staff → auditor,
//! as well as admin and owner), in the API and on the users page; lowering stays direct; and an
//! approval checks the policy again when it is carried out.

use crate::authz::*;
use crate::ui::{csrf_of, post_form};
use portcullis_testkit::Client;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn role_path(user: &str) -> String {
    format!("/api/v1/users/{user}/role")
}

fn approve_path(request: &str) -> String {
    format!("/api/v1/approvals/{request}/approve")
}

/// The firm's requests concerning `user`, as the approvals list shows them.
async fn requests_for(c: &Client, user: &str) -> Vec<Value> {
    let r = c.get("/api/v1/approvals").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().iter().filter(|a| a["action"]["user_id"] == user).cloned().collect()
}

crate::both!(any_rise_in_reach_needs_a_second_person, |srv| async move {
    let f = firm(srv, "rise").await;
    let admin = f.person(srv, "admin", "admin").await;
    let client = f.person(srv, "client", "client").await;
    let client2 = f.person(srv, "client2", "client").await;
    let staff = f.person(srv, "staff", "staff").await;
    let junior = f.person(srv, "junior", "staff").await;
    let admin2 = f.person(srv, "admin2", "admin").await;
    let theirs = matter(&f.owner.c, "C-1", false).await;
    add_member(&f.owner.c, &theirs, &client.email, "client").await;
    let other = matter(&f.owner.c, "X-1", false).await;

    // Client → staff: a request; until approved the user is a client who sees their matter only.
    let r = f.owner.c.post(&role_path(&client.id), json!({"role": "staff"})).await;
    let req = pending_request(&r);
    assert_eq!(role_of(&f.owner.c, &client.id).await, "client");
    let seen = client.c.get("/api/v1/matters").await.text();
    assert!(seen.contains(&theirs) && !seen.contains(&other), "{seen}");
    let r = f.owner.c.post(&approve_path(&req), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the requester approves their own: {}", r.text());
    assert_eq!(role_of(&f.owner.c, &client.id).await, "client");
    let r = admin.c.post(&approve_path(&req), json!({})).await;
    assert_eq!((r.status, r.json()["state"].clone()), (StatusCode::OK, json!("approved")), "{}", r.text());
    assert_eq!(role_of(&f.owner.c, &client.id).await, "staff");

    // Client → auditor and staff → auditor: the same.
    for (who, from) in [(&client2, "client"), (&staff, "staff")] {
        let req = pending_request(&f.owner.c.post(&role_path(&who.id), json!({"role": "auditor"})).await);
        assert_eq!(role_of(&f.owner.c, &who.id).await, from, "{from} → auditor waits");
        assert_eq!(f.owner.c.post(&approve_path(&req), json!({})).await.status, StatusCode::FORBIDDEN);
        assert_eq!(role_of(&f.owner.c, &who.id).await, from);
        let r = admin.c.post(&approve_path(&req), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(role_of(&f.owner.c, &who.id).await, "auditor");
    }

    // Lowering stays direct.
    direct(&f.owner.c.post(&role_path(&junior.id), json!({"role": "client"})).await, "staff → client");
    assert_eq!(role_of(&f.owner.c, &junior.id).await, "client");
    direct(&f.owner.c.post(&role_path(&admin2.id), json!({"role": "staff"})).await, "admin → staff by an owner");
    assert_eq!(role_of(&f.owner.c, &admin2.id).await, "staff");
});

/// The role selected in the role form of `user`'s row on the users page.
fn selected_role(html: &str, user: &str) -> Option<String> {
    let form = html.split(&format!("action=\"/users/{user}/role\"")).nth(1)?.split("</form>").next()?;
    form.split("<option").skip(1).find_map(|opt| {
        let (attrs, rest) = opt.split_once('>')?;
        if !attrs.split(|c: char| c.is_whitespace() || c == '=').any(|a| a == "selected") {
            return None;
        }
        let value = attrs.split("value=\"").nth(1).and_then(|v| v.split('"').next());
        Some(value.unwrap_or_else(|| rest.split('<').next().unwrap_or_default()).trim().to_string())
    })
}

crate::both!(the_users_page_shows_current_roles_and_confirms_a_rise, |srv| async move {
    let f = firm(srv, "rolepage").await;
    let client = f.person(srv, "client", "client").await;
    let staff = f.person(srv, "staff", "staff").await;
    let auditor = f.person(srv, "auditor", "auditor").await;
    let admin = f.person(srv, "admin", "admin").await;
    let page = f.owner.c.get("/users").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    for (p, role) in [(&client, "client"), (&staff, "staff"), (&auditor, "auditor"), (&admin, "admin")] {
        assert_eq!(selected_role(&html, &p.id).as_deref(), Some(role), "the role selected in {}'s row", p.email);
    }

    // A higher role without confirming: a page that says what would happen, and nothing changes.
    let csrf = csrf_of(&html);
    let path = format!("/users/{}/role", client.id);
    let r = post_form(&f.owner.c, &path, &[("csrf", &csrf), ("role", "staff")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let text = r.text();
    assert!(text.contains("client") && text.contains("staff"), "names both roles: {text}");
    assert!(text.to_lowercase().contains("second owner or admin must approve"), "{text}");
    assert!(text.contains("name=\"confirm\"") && text.contains("value=\"yes\""), "asks to confirm: {text}");
    assert_eq!(role_of(&f.owner.c, &client.id).await, "client", "nothing changed");
    assert!(requests_for(&f.owner.c, &client.id).await.is_empty(), "no request yet");

    // Confirmed: a request waiting for approval, the role unchanged.
    let r = post_form(&f.owner.c, &path, &[("csrf", &csrf), ("role", "staff"), ("confirm", "yes")]).await;
    let text = if r.status == StatusCode::SEE_OTHER {
        f.owner.c.get(r.headers["location"].to_str().unwrap()).await.text()
    } else {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.text()
    };
    assert!(text.to_lowercase().contains("approv"), "says it waits for approval: {text}");
    assert_eq!(role_of(&f.owner.c, &client.id).await, "client");
    let requests = requests_for(&f.owner.c, &client.id).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0]["state"].clone(), requests[0]["action"]["role"].clone()),
        (json!("pending"), json!("staff"))
    );
});

crate::both!(an_approval_is_refused_once_its_requester_lost_the_right, |srv| async move {
    let f = firm(srv, "recheck").await;
    let owner2 = f.second_owner(srv, "owner2").await;
    let x = f.person(srv, "x", "admin").await;
    let s = f.person(srv, "s", "staff").await;
    // Admin X asks for S to become an admin; then an owner demotes X.
    let req = pending_request(&x.c.post(&role_path(&s.id), json!({"role": "admin"})).await);
    direct(&f.owner.c.post(&role_path(&x.id), json!({"role": "staff"})).await, "admin → staff by an owner");
    assert_eq!(role_of(&f.owner.c, &x.id).await, "staff");

    // X's old request is no longer X's to make: approving it is refused and changes nothing.
    let r = owner2.c.post(&approve_path(&req), json!({})).await;
    let refused = matches!(r.status, StatusCode::FORBIDDEN | StatusCode::CONFLICT);
    assert!(refused, "approving a request its requester may no longer make: {} {}", r.status, r.text());
    assert_eq!(role_of(&f.owner.c, &s.id).await, "staff");
    let state = requests_for(&f.owner.c, &s.id).await[0]["state"].clone();
    assert_ne!(state, "approved");
});
