//! Matters and their access lists.

use super::{Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::error::{Error, Result};
use crate::ids::{MatterId, UserId};
use crate::model::{LinkPurpose, Matter, MatterMember, Role, User, UserStatus};
use crate::policy::can;
use crate::policy::{self, Principal};
use crate::validate;

/// The result of adding someone to a matter. A new client user gets a one-time link to choose a
/// password; it is returned once so the inviting staff member can pass it on.
pub struct InviteOutcome {
    pub user_id: UserId,
    pub created: bool,
    pub invite_url: Option<String>,
}

impl std::fmt::Debug for InviteOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteOutcome")
            .field("user_id", &self.user_id)
            .field("created", &self.created)
            .field("invite_url", &self.invite_url.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

impl Portal {
    /// The matters the caller may see. Their titles and references are client content, so the
    /// listing is audited (`matter.list`, with how many were shown) in the same transaction:
    /// if the event cannot be written, nothing is shown.
    pub async fn list_matters(&self, p: &Principal, meta: &RequestMeta) -> Result<Vec<Matter>> {
        let grant = policy::authorize_list::<can::ListMatters>(p)?;
        let mut tx = self.write().await?;
        let matters = tx.matters().list_matters(&grant).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::MatterList, Target::Tenant(p.tenant_id), meta)
            .with_detail(serde_json::json!({ "count": matters.len() }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        Ok(matters)
    }

    /// Open a new matter. A restricted one (an ethical wall) starts with its creator alone on
    /// its list; only the users on the list see it or can add others.
    pub async fn create_matter(
        &self,
        p: &Principal,
        reference: &str,
        title: &str,
        restricted: bool,
        meta: &RequestMeta,
    ) -> Result<Matter> {
        let grant = policy::authorize_tenant::<can::CreateMatter>(p)?;
        let m = Matter {
            id: MatterId::new(),
            tenant_id: p.tenant_id,
            reference: validate::line("reference", reference, 100)?,
            title: validate::line("title", title, 300)?,
            created_by: p.user_id,
            created_at: self.clock.now(),
            restricted,
        };
        let mut tx = self.write().await?;
        tx.matters().insert_matter(&grant, &m).await?;
        if restricted {
            let creator = policy::creator_membership(&grant, m.id);
            tx.matters().insert_member(&creator, p.user_id, Role::Staff, m.created_at).await?;
        }
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::MatterCreate, Target::Matter(m.id), meta)
            .with_detail(serde_json::json!({ "restricted": restricted }))
            .on_matter(m.id);
        tx.audit().append_audit(&ev, m.created_at).await?;
        tx.commit().await?;
        Ok(m)
    }

    /// One matter, if the caller may see it. Audited (`matter.view`) in the same transaction:
    /// if the event cannot be written, the matter is not shown.
    pub async fn matter(&self, p: &Principal, id: MatterId, meta: &RequestMeta) -> Result<Matter> {
        let mut tx = self.write().await?;
        let grant = self.grant_matter::<can::ViewMatter>(&mut *tx, p, id).await?;
        let m = tx.matters().matter(&grant).await?.ok_or(Error::NotFound)?;
        self.audit_matter_read(&mut *tx, p, Action::MatterView, id, serde_json::Value::Null, meta).await?;
        tx.commit().await?;
        Ok(m)
    }

    /// The matter's access list (names and email addresses, the clients' among them), audited
    /// as `matter.member_list`.
    pub async fn list_members(&self, p: &Principal, id: MatterId, meta: &RequestMeta) -> Result<Vec<MatterMember>> {
        let mut tx = self.write().await?;
        // Clients do not see the list: it would tell them who the firm's other clients are.
        let grant = self.grant_matter::<can::ListMembers>(&mut *tx, p, id).await?;
        let members = tx.matters().list_members(&grant).await?;
        let detail = serde_json::json!({ "count": members.len() });
        self.audit_matter_read(&mut *tx, p, Action::MatterMemberList, id, detail, meta).await?;
        tx.commit().await?;
        Ok(members)
    }

    /// Put a user on a matter's list. Role `client` invites a client user by email, creating the
    /// user if needed; role `staff` adds an existing staff-side user.
    pub async fn add_member(
        &self,
        p: &Principal,
        id: MatterId,
        email: &str,
        role: &str,
        meta: &RequestMeta,
    ) -> Result<InviteOutcome> {
        let email = validate::email(email)?;
        let role = Role::parse(role)?;
        let mut tx = self.write().await?;
        let grant = self.grant_matter::<can::ManageMembers>(&mut *tx, p, id).await?;
        let now = self.clock.now();
        let existing = tx.users().user_by_email(p.tenant_id, &email).await?.map(|(u, _)| u);
        let (user, created) = match (existing, role) {
            (Some(u), Role::Client) if u.role != Role::Client => {
                return Err(Error::invalid("role", "this email belongs to a staff user; add them with role staff"));
            }
            (Some(u), Role::Client) => (u, false),
            (Some(u), _) if u.role.works_matters() => (u, false),
            (Some(u), _) if u.role == Role::Auditor => {
                return Err(Error::invalid("email", "auditors read the audit log and are never on a matter"));
            }
            (Some(_), _) => {
                return Err(Error::invalid("role", "this email belongs to a client user; add them with role client"));
            }
            (None, Role::Client) => {
                let u = User {
                    id: UserId::new(),
                    tenant_id: p.tenant_id,
                    display_name: email.split('@').next().unwrap_or(&email).to_string(),
                    email: email.clone(),
                    role: Role::Client,
                    status: UserStatus::Invited,
                    created_at: now,
                };
                tx.users().insert_user(&u, &u.email, None).await?;
                (u, true)
            }
            (None, _) => {
                return Err(Error::invalid("email", "no staff user has this email; create the user first"));
            }
        };
        if tx.matters().matter_facts(p.tenant_id, id, user.id).await?.and_then(|f| f.membership).is_some() {
            return Err(Error::Conflict("This member".into()));
        }
        let member_role = if user.role == Role::Client { Role::Client } else { Role::Staff };
        tx.matters().insert_member(&grant, user.id, member_role, now).await?;
        let invite_url = if user.status == UserStatus::Invited {
            let ttl = self.settings.invite_link_ttl;
            let s = self.new_link(&mut *tx, LinkPurpose::SetPassword, Some(p.tenant_id), Some(user.id), ttl).await?;
            Some(self.link_url("invite", &s))
        } else {
            None
        };
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::MatterMemberAdd, Target::Matter(id), meta)
            .with_detail(
                serde_json::json!({ "user": user.id.to_string(), "role": member_role.as_str(), "created": created }),
            )
            .on_matter(id);
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(InviteOutcome { user_id: user.id, created, invite_url })
    }

    /// Take a user off a matter's list. Their access ends at once: every request is decided on
    /// the list as it is then, so their open sessions and tokens lose the matter with it. A
    /// user not on the list is `NotFound`, like a matter the caller may not see.
    pub async fn remove_member(&self, p: &Principal, id: MatterId, user: UserId, meta: &RequestMeta) -> Result<()> {
        let mut tx = self.write().await?;
        let grant = self.grant_matter::<can::ManageMembers>(&mut *tx, p, id).await?;
        if !tx.matters().remove_member(&grant, user).await? {
            return Err(Error::NotFound);
        }
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::MatterMemberRemove, Target::Matter(id), meta)
            .with_detail(serde_json::json!({ "user": user.to_string() }))
            .on_matter(id);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }
}
