//! Staff and client user management.

use super::{Portal, actor, blocking};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::authn::password;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{LinkPurpose, Role, SensitiveAction, User, UserStatus};
use crate::policy::{self, Principal, TenantGrant, can};
use crate::ports::Tx;
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
        let ev = NewEvent::new(Some(user.tenant_id), actor(p), Action::UserCreate, Target::User(user.id), meta)
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
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::UserUnlock, Target::User(user), meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Deactivate a user: they cannot sign in, and their sessions and API tokens end at once
    /// (every request checks the user's status, so nothing they opened earlier works either).
    /// Their unused set-password links are burnt. After a step-up; see [`policy::may_deactivate`].
    pub async fn deactivate_user(&self, p: &Principal, user: UserId, meta: &RequestMeta) -> Result<User> {
        let mut tx = self.write().await?;
        let target = tx.users().user(p.tenant_id, user).await?.ok_or(Error::NotFound)?;
        let grant = policy::may_deactivate(p, user, target.role)?;
        self.require_step_up(&mut *tx, p).await?;
        if target.status == UserStatus::Disabled {
            return Err(Error::WrongState("the user is already deactivated".into()));
        }
        let now = self.clock.now();
        tx.users().set_user_status(grant.tenant_id(), user, UserStatus::Disabled).await?;
        let ended = self.end_access(&mut *tx, &grant, user).await?;
        tx.links().burn_user_links(grant.tenant_id(), user, now).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::UserDeactivate, Target::User(user), meta)
            .with_detail(serde_json::json!({ "tokens_revoked": ended, "status_before": target.status.as_str() }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(User { status: UserStatus::Disabled, ..target })
    }

    /// Reactivate a deactivated user. A client comes back at once; anyone else is a rise in
    /// reach and becomes a request a second owner or admin approves (see
    /// [`policy::may_reactivate`]). A user who never chose a password still has none: they are
    /// let back in as they were, and sign in only once they have one.
    pub async fn reactivate_user(&self, p: &Principal, user: UserId, meta: &RequestMeta) -> Result<super::Change> {
        let mut tx = self.write().await?;
        let target = tx.users().user(p.tenant_id, user).await?.ok_or(Error::NotFound)?;
        let rule = policy::may_reactivate(p, target.role)?;
        self.require_step_up(&mut *tx, p).await?;
        if target.status != UserStatus::Disabled {
            return Err(Error::WrongState("the user is not deactivated".into()));
        }
        if rule == policy::RoleChangeRule::NeedsApproval {
            let req = self.request(&mut *tx, p, SensitiveAction::ReactivateUser { user_id: user }, meta).await?;
            tx.commit().await?;
            return Ok(super::Change::Requested(req));
        }
        self.apply_reactivation(&mut *tx, p, user, None, meta).await?;
        tx.commit().await?;
        Ok(super::Change::Applied)
    }

    /// Let a deactivated user in again, in `tx`, as `p` (the approver, for a request).
    pub(super) async fn apply_reactivation(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        user: UserId,
        approval: Option<&crate::changes::Approval>,
        meta: &RequestMeta,
    ) -> Result<()> {
        if !tx.users().set_user_status(p.tenant_id, user, UserStatus::Active).await? {
            return Err(Error::NotFound);
        }
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::UserReactivate, Target::User(user), meta)
            .with_detail(serde_json::json!({ "approval": approval }));
        tx.audit().append_audit(&ev, self.clock.now()).await
    }

    /// Give `user` the role `to` (from `from`), in `tx`: their sessions and API tokens end (they
    /// were opened under the old role), and a change across the line between the firm's people
    /// and its clients takes them off every matter's list. How many lists they left.
    pub(super) async fn apply_role(
        &self,
        tx: &mut dyn Tx,
        grant: &TenantGrant<can::ManageUsers>,
        user: UserId,
        from: Role,
        to: Role,
    ) -> Result<u64> {
        tx.approvals().set_user_role(grant.tenant_id(), user, to).await?;
        self.end_access(tx, grant, user).await?;
        if policy::role_change_clears_memberships(from, to) {
            return tx.matters().remove_memberships(grant, user).await;
        }
        Ok(0)
    }

    /// End every session and revoke every API token of `user`; how many tokens.
    async fn end_access(&self, tx: &mut dyn Tx, grant: &TenantGrant<can::ManageUsers>, user: UserId) -> Result<u64> {
        tx.sessions().delete_user_sessions(grant.tenant_id(), user).await?;
        tx.tokens().revoke_user_tokens(grant.tenant_id(), user, self.clock.now()).await
    }
}
