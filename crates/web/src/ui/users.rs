//! The users page: the firm's people with their roles and status, adding a user, changing a
//! role, deactivating and reactivating. A change that touches someone's access is first shown
//! on a confirmation page that says in plain words what will happen; nothing changes until it
//! is confirmed. A rise in reach then waits for a second owner or admin (four eyes).

use super::pages::Nav;
use crate::AppState;
use crate::error::UiError;
use crate::extract::{Meta, UiAction, UiCaller, UiPath, csrf_forms};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_core::Error;
use portcullis_core::ids::UserId;
use portcullis_core::model::{Role, User, UserStatus};
use portcullis_core::policy::{self, Permission, RoleChangeRule, role_allows};
use portcullis_core::service::Change;
use serde::Deserialize;

type Page = Result<Response, UiError>;

/// The roles a row's select offers, from the least reach up.
const ROLE_CHOICES: [Role; 5] = [Role::Client, Role::Auditor, Role::Staff, Role::Admin, Role::Owner];

/// One row of the users table.
pub struct UserRow {
    id: String,
    email: String,
    display_name: String,
    role: &'static str,
    /// The status in plain words.
    status: &'static str,
    /// The role select's choices, the one to start on selected.
    roles: Vec<(&'static str, bool)>,
    /// Owners' roles are not changed from here.
    can_change_role: bool,
    can_deactivate: bool,
    can_reactivate: bool,
    /// The person named for buttons' labels.
    label: String,
}

/// The add-user form as typed (kept when it was refused).
#[derive(Default)]
pub struct NewUser {
    email: String,
    display_name: String,
    role: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    can_manage: bool,
    invite_url: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    new_user: NewUser,
    /// The roles the add-user form offers.
    new_roles: Vec<(&'static str, bool)>,
}

/// What the users page shows besides the list.
#[derive(Default)]
struct Shown {
    invite_url: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    new_user: NewUser,
    /// A role chosen in a row that was refused: that row's select starts on it.
    chosen: Option<(UserId, Role)>,
    /// What a redirect back to the page reports (see [`UsersQuery`]).
    done: Option<UsersQuery>,
}

/// "Jane Smith (jane@firm.example)", or the email alone when it is the name too.
pub(super) fn person(u: &User) -> String {
    if u.display_name.trim().is_empty() || u.display_name == u.email {
        u.email.clone()
    } else {
        format!("{} ({})", u.display_name, u.email)
    }
}

/// A role in plain words, as in "make Jane {an admin}".
pub(super) fn a_role(r: Role) -> &'static str {
    match r {
        Role::Owner => "an owner",
        Role::Admin => "an admin",
        Role::Staff => "staff",
        Role::Client => "a client",
        Role::Auditor => "an auditor",
    }
}

fn status_words(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Invited => "invited",
        UserStatus::Active => "active",
        UserStatus::Disabled => "deactivated",
    }
}

async fn users_page(s: &AppState, c: &UiCaller, shown: Shown) -> Result<UsersPage, UiError> {
    let me = c.principal.user_id;
    let users = s.portal.list_users(&c.principal).await?;
    let notice = shown.notice.or_else(|| shown.done.as_ref().and_then(|q| done_notice(q, &users)));
    let rows = users
        .iter()
        .map(|u| {
            let start = match shown.chosen {
                Some((id, r)) if id == u.id => r,
                _ => u.role,
            };
            UserRow {
                id: u.id.to_string(),
                email: u.email.clone(),
                display_name: u.display_name.clone(),
                role: u.role.as_str(),
                status: status_words(u.status),
                roles: ROLE_CHOICES.iter().map(|r| (r.as_str(), *r == start)).collect(),
                can_change_role: u.role != Role::Owner,
                can_deactivate: u.status != UserStatus::Disabled && u.id != me,
                can_reactivate: u.status == UserStatus::Disabled,
                label: person(u),
            }
        })
        .collect();
    let typed_role = if shown.new_user.role.is_empty() { "staff" } else { shown.new_user.role.as_str() };
    Ok(UsersPage {
        nav: Nav::of(c),
        users: rows,
        can_manage: role_allows(c.principal.role, Permission::ManageUsers),
        invite_url: shown.invite_url,
        notice,
        error: shown.error,
        new_roles: [Role::Staff, Role::Client, Role::Auditor]
            .iter()
            .map(|r| (r.as_str(), r.as_str() == typed_role))
            .collect(),
        new_user: shown.new_user,
    })
}

/// The notice a redirect back to the users page asks for (`?done=…&user=…`), said only when it
/// is true of the user as they are now.
#[derive(Deserialize, Default)]
pub struct UsersQuery {
    #[serde(default)]
    done: String,
    #[serde(default)]
    user: String,
}

fn done_notice(q: &UsersQuery, users: &[User]) -> Option<String> {
    let u = users.iter().find(|u| u.id.to_string() == q.user)?;
    let who = person(u);
    match (q.done.as_str(), u.status) {
        ("role", _) => Some(format!(
            "{who} is now {}; their sessions and API tokens were ended, so they sign in again.",
            a_role(u.role)
        )),
        ("deactivated", UserStatus::Disabled) => {
            Some(format!("{who} can no longer sign in; their sessions and API tokens were ended."))
        }
        ("reactivated", UserStatus::Active | UserStatus::Invited) => Some(format!("{who} can sign in again.")),
        _ => None,
    }
}

pub async fn users(State(s): State<AppState>, c: UiCaller, Query(q): Query<UsersQuery>) -> Page {
    Ok(users_page(&s, &c, Shown { done: Some(q), ..Shown::default() }).await?.into_response())
}

/// Back to the users page with a notice about `user`.
fn done(what: &str, user: UserId) -> Response {
    Redirect::to(&format!("/users?done={what}&user={user}")).into_response()
}

/// A refused change: a step-up sends the person to confirm it is them and back to the users
/// page; a refusal they can read (not allowed, not possible now, mistyped) is shown on the
/// users page, with what they chose kept; anything else is the error page.
async fn refused(s: &AppState, c: &UiCaller, e: Error, shown: Shown) -> Page {
    match e {
        Error::StepUpRequired => Ok(super::step_up_then("/users")),
        e @ (Error::Invalid { .. } | Error::Forbidden(_) | Error::WrongState(_) | Error::Conflict(_)) => {
            let status = crate::error::status(&e);
            match users_page(s, c, Shown { error: Some(e.public_message()), ..shown }).await {
                Ok(page) => Ok((status, page).into_response()),
                // Not allowed to see the page either: the refusal alone.
                Err(_) => Err(e.into()),
            }
        }
        e => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: String,
    email: String,
    #[serde(default)]
    display_name: String,
    role: String,
}

/// A change to someone's access: `confirm=yes` once the confirmation page was answered.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: String,
    #[serde(default)]
    confirm: String,
}

csrf_forms!(UserForm, ConfirmForm, RoleForm);

pub async fn create_user(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form: f }: UiAction<UserForm>,
) -> Page {
    match s.portal.create_user(&c.principal, &f.email, &f.display_name, &f.role, None, &meta).await {
        Ok((u, link)) => {
            let notice = Some(format!("{} was added as {}.", person(&u), a_role(u.role)));
            Ok(users_page(&s, &c, Shown { invite_url: link, notice, ..Shown::default() }).await?.into_response())
        }
        Err(e) => {
            let new_user = NewUser { email: f.email, display_name: f.display_name, role: f.role };
            refused(&s, &c, e, Shown { new_user, ..Shown::default() }).await
        }
    }
}

/// The page that asks to confirm a change to someone's access.
#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    nav: Nav,
    heading: String,
    /// What will be done, in plain words.
    what: String,
    /// When it takes effect and what it ends.
    effect: String,
    /// Further consequences, one a paragraph.
    more: Vec<String>,
    /// Where the confirmed form posts, and the values it posts again (besides the CSRF token
    /// and `confirm=yes`).
    action: String,
    fields: Vec<(&'static str, String)>,
    button: String,
}

const NEEDS_APPROVAL: &str = "A second owner or admin must approve this before it takes effect.";

/// The user `id` as the caller sees them on the users page.
async fn target(s: &AppState, c: &UiCaller, id: UserId) -> Result<User, Error> {
    s.portal.list_users(&c.principal).await?.into_iter().find(|u| u.id == id).ok_or(Error::NotFound)
}

/// Change a user's role, after a confirmation page. A rise in reach becomes a request for a
/// second owner or admin; a lowering takes effect at once and ends the user's sessions.
pub async fn change_role(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<UserId>,
    UiAction { caller: c, form: f }: UiAction<RoleForm>,
) -> Page {
    let chosen = Role::parse(&f.role).ok().map(|r| (id, r));
    let kept = || Shown { chosen, ..Shown::default() };
    let u = match target(&s, &c, id).await {
        Ok(u) => u,
        Err(e) => return refused(&s, &c, e, kept()).await,
    };
    // Ask first, when the change is one the caller may make. A change the rule refuses goes
    // straight to the use case, which asks the same rule, refuses it and records the refusal.
    if f.confirm != "yes"
        && let Some((_, to)) = chosen
        && policy::may_change_role(&c.principal, u.role, to).is_ok()
    {
        return Ok(role_confirmation(&c, &u, to).into_response());
    }
    match s.portal.change_role(&c.principal, id, &f.role, &meta).await {
        Ok(Change::Applied) => Ok(done("role", id)),
        Ok(Change::Requested(_)) => {
            let to = chosen.map(|(_, r)| a_role(r)).unwrap_or("the new role");
            let notice = format!(
                "Requested: making {} {to} waits for a second owner or admin's approval on the Approvals page. \
                 Until then they stay {}.",
                person(&u),
                a_role(u.role)
            );
            Ok(users_page(&s, &c, Shown { notice: Some(notice), ..Shown::default() }).await?.into_response())
        }
        Err(e) => refused(&s, &c, e, kept()).await,
    }
}

fn role_confirmation(c: &UiCaller, u: &User, to: Role) -> ConfirmPage {
    let who = person(u);
    let rises = policy::rises_in_reach(u.role, to);
    let effect = if rises {
        format!("{NEEDS_APPROVAL} Until then {} stays {}.", u.display_name, a_role(u.role))
    } else {
        "This takes effect at once and ends their sessions and API tokens: they sign in again with the new role."
            .to_string()
    };
    let mut more = Vec::new();
    if policy::role_change_clears_memberships(u.role, to) {
        more.push("They will be taken off every matter's list they are on.".to_string());
    }
    ConfirmPage {
        nav: Nav::of(c),
        heading: format!("Change {}'s role?", u.display_name),
        what: format!("{who} is {} now and would become {}.", a_role(u.role), a_role(to)),
        effect,
        more,
        action: format!("/users/{}/role", u.id),
        fields: vec![("role", to.as_str().to_string())],
        button: if rises { format!("Ask to make them {}", a_role(to)) } else { format!("Make them {}", a_role(to)) },
    }
}

/// Deactivate a user, after a confirmation page: they cannot sign in, and their sessions and
/// API tokens end at once.
pub async fn deactivate(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<UserId>,
    UiAction { caller: c, form: f }: UiAction<ConfirmForm>,
) -> Page {
    let u = match target(&s, &c, id).await {
        Ok(u) => u,
        Err(e) => return refused(&s, &c, e, Shown::default()).await,
    };
    // As for roles: only a change the rules allow is asked about; the use case refuses the rest.
    let may = policy::may_deactivate(&c.principal, u.id, u.role).is_ok() && u.status != UserStatus::Disabled;
    if f.confirm != "yes" && may {
        let mut more = Vec::new();
        if u.role != Role::Client {
            more.push("Reactivating them later waits for a second owner or admin's approval.".to_string());
        }
        let page = ConfirmPage {
            nav: Nav::of(&c),
            heading: format!("Deactivate {}?", u.display_name),
            what: format!("{} ({}) will no longer be able to sign in.", person(&u), u.role.as_str()),
            effect: "This takes effect at once: their sessions and API tokens end.".into(),
            more,
            action: format!("/users/{id}/deactivate"),
            fields: Vec::new(),
            button: "Deactivate".into(),
        };
        return Ok(page.into_response());
    }
    match s.portal.deactivate_user(&c.principal, id, &meta).await {
        Ok(_) => Ok(done("deactivated", id)),
        Err(e) => refused(&s, &c, e, Shown::default()).await,
    }
}

/// Reactivate a deactivated user, after a confirmation page. A client comes back at once;
/// anyone else waits for a second owner or admin's approval.
pub async fn reactivate(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<UserId>,
    UiAction { caller: c, form: f }: UiAction<ConfirmForm>,
) -> Page {
    let u = match target(&s, &c, id).await {
        Ok(u) => u,
        Err(e) => return refused(&s, &c, e, Shown::default()).await,
    };
    let rule = policy::may_reactivate(&c.principal, u.role).ok().filter(|_| u.status == UserStatus::Disabled);
    if f.confirm != "yes"
        && let Some(rule) = rule
    {
        let effect = match rule {
            RoleChangeRule::NeedsApproval => {
                format!("{NEEDS_APPROVAL} Until then {} stays deactivated.", u.display_name)
            }
            RoleChangeRule::Direct => "This takes effect at once.".to_string(),
        };
        let page = ConfirmPage {
            nav: Nav::of(&c),
            heading: format!("Reactivate {}?", u.display_name),
            what: format!("{} will be able to sign in again as {}.", person(&u), a_role(u.role)),
            effect,
            more: Vec::new(),
            action: format!("/users/{id}/reactivate"),
            fields: Vec::new(),
            button: "Reactivate".into(),
        };
        return Ok(page.into_response());
    }
    match s.portal.reactivate_user(&c.principal, id, &meta).await {
        Ok(Change::Applied) => Ok(done("reactivated", id)),
        Ok(Change::Requested(_)) => {
            let notice = format!(
                "Reactivating {} waits for a second owner or admin's approval on the Approvals page.",
                person(&u)
            );
            Ok(users_page(&s, &c, Shown { notice: Some(notice), ..Shown::default() }).await?.into_response())
        }
        Err(e) => refused(&s, &c, e, Shown::default()).await,
    }
}
