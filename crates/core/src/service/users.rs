//! Staff and client user management.

use super::{Portal, actor, blocking};
use crate::audit::{NewEvent, RequestMeta};
use crate::authn::password;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{LinkPurpose, Role, User, UserStatus};
use crate::policy::can;
use crate::policy::{self, Principal};
use crate::validate;
use secrecy::SecretString;

impl Portal {
    /// The tenant's users.
    pub async fn list_users(&self, p: &Principal) -> Result<Vec<User>> {
        let grant = policy::authorize_tenant::<can::ListUsers>(p)?;
        self.read().await?.users().list_users(&grant).await
    }

    /// Create a user. Without a password the user is invited: the returned link lets them choose
    /// one. Owners are made only at tenant creation; only an owner may create an admin.
    pub async fn create_user(
        &self,
        p: &Principal,
        email: &str,
        display_name: &str,
        role: &str,
        pw: Option<SecretString>,
        meta: &RequestMeta,
    ) -> Result<(User, Option<String>)> {
        let role = Role::parse(role)?;
        let grant = policy::may_create_user(p, role)?;
        let email = validate::email(email)?;
        let display_name = if display_name.trim().is_empty() {
            email.split('@').next().unwrap_or(&email).to_string()
        } else {
            validate::line("display_name", display_name, 200)?
        };
        let hash = match pw {
            Some(pw) => {
                password::check_strength(&pw)?;
                Some(blocking(move || password::hash(&pw)).await?)
            }
            None => None,
        };
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            tenant_id: grant.tenant_id(),
            email,
            display_name,
            role,
            status: if hash.is_some() { UserStatus::Active } else { UserStatus::Invited },
            created_at: now,
        };
        let mut tx = self.write().await?;
        if tx.users().user_by_email(user.tenant_id, &user.email).await?.is_some() {
            return Err(Error::Conflict("A user with this email".into()));
        }
        tx.users().insert_user(&user, &user.email, hash.as_deref()).await?;
        let link = match user.status {
            UserStatus::Invited => {
                let ttl = self.settings.invite_link_ttl;
                let s =
                    self.new_link(&mut *tx, LinkPurpose::SetPassword, Some(user.tenant_id), Some(user.id), ttl).await?;
                Some(self.link_url("invite", &s))
            }
            _ => None,
        };
        let ev = NewEvent::new(Some(user.tenant_id), actor(p), "user.create", format!("user:{}", user.id), meta)
            .with_detail(serde_json::json!({ "role": role.as_str() }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok((user, link))
    }

    /// Look up a tenant by its sign-in name (command line).
    pub async fn tenant_by_name(&self, name: &str) -> Result<crate::model::Tenant> {
        let name = validate::tenant_name(name)?;
        self.read().await?.tenants().tenant_by_name(&name).await?.ok_or(Error::NotFound)
    }

    /// Lift a sign-in lock (after 100 consecutive failures only an admin can).
    pub async fn unlock_user(&self, p: &Principal, user: UserId, meta: &RequestMeta) -> Result<()> {
        let grant = policy::authorize_tenant::<can::ManageUsers>(p)?;
        let mut tx = self.write().await?;
        tx.users().user(grant.tenant_id(), user).await?.ok_or(Error::NotFound)?;
        tx.logins().reset_login_failures(grant.tenant_id(), user).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), "user.unlock", format!("user:{user}"), meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }
}
