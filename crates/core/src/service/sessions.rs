//! A user's own sessions and password: see where they are signed in, end a session, change the
//! password (which ends every other session). Admins end all of a user's sessions.

use super::{Portal, actor, blocking};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::authn::password;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::{SessionRecord, UserStatus};
use crate::policy::can;
use crate::policy::{self, Principal, Via};
use secrecy::SecretString;

impl Portal {
    /// The caller's sessions, most recently used first.
    pub async fn list_sessions(&self, p: &Principal) -> Result<Vec<SessionRecord>> {
        policy::authorize_tenant::<can::ManageOwnSessions>(p)?;
        self.read().await?.sessions().list_user_sessions(p.tenant_id, p.user_id).await
    }

    /// End one of the caller's sessions, named by its public id.
    pub async fn end_session(&self, p: &Principal, public_id: &str, meta: &RequestMeta) -> Result<()> {
        policy::authorize_tenant::<can::ManageOwnSessions>(p)?;
        let mut tx = self.write().await?;
        let sessions = tx.sessions().list_user_sessions(p.tenant_id, p.user_id).await?;
        let s = sessions.iter().find(|s| s.public_id() == public_id).ok_or(Error::NotFound)?;
        tx.sessions().delete_session(&s.token_hash).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::SessionEnd, Target::User(p.user_id), meta)
            .with_detail(serde_json::json!({ "session": public_id }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// End every session of a user (an admin's action, e.g. for a lost laptop).
    pub async fn end_user_sessions(&self, p: &Principal, user: UserId, meta: &RequestMeta) -> Result<()> {
        let grant = policy::authorize_tenant::<can::ManageUsers>(p)?;
        let mut tx = self.write().await?;
        tx.users().user(grant.tenant_id(), user).await?.ok_or(Error::NotFound)?;
        tx.sessions().delete_user_sessions(grant.tenant_id(), user).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::SessionEndAll, Target::User(user), meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Change the caller's password. The current one must be given (a wrong one counts as a
    /// failed sign-in); every other session of the user ends, this one stays.
    pub async fn change_password(
        &self,
        p: &Principal,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<u64> {
        policy::authorize_tenant::<can::ManageOwnSessions>(p)?;
        let Via::Session { session_hash, .. } = &p.via else {
            return Err(Error::Forbidden("change a password with an API token".into()));
        };
        password::check_strength(&new)?;
        let stored = self.read().await?.users().user_by_email(p.tenant_id, &p.email).await?.and_then(|(_, h)| h);
        let ok = blocking(move || password::verify(&current, stored.as_deref())).await?;
        let now = self.clock.now();
        let mut tx = self.write().await?;
        if !ok {
            let failures = tx.logins().record_login_failure(p.tenant_id, p.user_id, now).await?;
            self.brute_force_alert(&mut *tx, p.tenant_id, p.user_id, Some(failures), meta, now).await?;
            let ev = NewEvent::new(
                Some(p.tenant_id),
                actor(p),
                Action::UserPasswordChangeFailed,
                Target::User(p.user_id),
                meta,
            );
            tx.audit().append_audit(&ev, now).await?;
            tx.commit().await?;
            return Err(Error::invalid("current_password", "is not correct"));
        }
        drop(tx);
        let hash = blocking(move || password::hash(&new)).await?;
        let mut tx = self.write().await?;
        tx.users().set_password(p.tenant_id, p.user_id, &hash, UserStatus::Active).await?;
        let ended = tx.sessions().delete_other_sessions(p.tenant_id, p.user_id, session_hash).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::UserPasswordChange, Target::User(p.user_id), meta)
            .with_detail(serde_json::json!({ "other_sessions_ended": ended }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(ended)
    }
}
