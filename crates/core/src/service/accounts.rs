//! Tenants, sign-in, sessions, and one-time links.

use super::factors::FactorProof;
use super::{Portal, actor, blocking};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::authn::device::DeviceSecret;
use crate::authn::{lockout, password, secret};
use crate::error::{Error, Result};
use crate::ids::{TenantId, UserId};
use crate::model::{
    ChallengePurpose, KeyPurpose, LinkPurpose, LinkRecord, Role, SessionRecord, Tenant, TenantStatus, User, UserStatus,
};
use crate::policy::{self, Principal, SecondFactor, Via};
use crate::ports::Tx;
use crate::validate;
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

/// Sessions and tokens are touched at most this often, so reads do not turn into writes.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// A successful sign-in: the principal, the cookie secret, the session's CSRF token, and the
/// device cookie the browser should keep.
#[derive(Debug)]
pub struct LoginOutcome {
    pub principal: Principal,
    pub session_secret: SecretString,
    pub csrf_token: String,
    pub device: super::DeviceOutcome,
}

/// What a one-time link is for, shown before it is used.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub purpose: LinkPurpose,
    pub email: Option<String>,
    pub tenant_name: Option<String>,
}

impl Portal {
    /// On a fresh installation (no tenant yet), make a one-time setup link. `None` once a tenant exists.
    pub async fn bootstrap_link(&self) -> Result<Option<String>> {
        let mut tx = self.write().await?;
        if tx.tenants().count_tenants().await? > 0 {
            return Ok(None);
        }
        // Only the newest setup link works.
        tx.links().burn_bootstrap_links(self.clock.now()).await?;
        let secret = self.new_link(&mut *tx, LinkPurpose::Bootstrap, None, None, self.settings.setup_link_ttl).await?;
        let ev = NewEvent::new(None, Actor::System, Action::SetupLinkIssued, Target::Platform, &RequestMeta::default());
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        Ok(Some(self.link_url("setup", &secret)))
    }

    /// Use the first-start link: create the first tenant and its owner.
    pub async fn bootstrap(
        &self,
        link: &str,
        tenant_name: &str,
        display_name: &str,
        owner_email: &str,
        owner_password: SecretString,
        meta: &RequestMeta,
    ) -> Result<TenantId> {
        let name = validate::tenant_name(tenant_name)?;
        let display = validate::line("display_name", display_name, 200)?;
        let email = validate::email(owner_email)?;
        password::check_strength(&owner_password)?;
        let hash = blocking(move || password::hash(&owner_password)).await?;
        let mut tx = self.write().await?;
        self.take_link(&mut *tx, link, LinkPurpose::Bootstrap).await?;
        // The platform audit event claims the platform chain's head row first, which serialises
        // concurrent bootstraps (several nodes starting at once): the second sees the tenant.
        let ev = NewEvent::new(None, Actor::Anonymous, Action::SetupCompleted, Target::Platform, meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        if tx.tenants().count_tenants().await? > 0 {
            return Err(Error::LinkExpired);
        }
        let tenant = self.insert_tenant(&mut *tx, &name, &display, &email, Some(&hash), Actor::Anonymous, meta).await?;
        tx.commit().await?;
        Ok(tenant.0)
    }

    /// Create a tenant and its owner (command line). Without a password, the owner gets a
    /// one-time link to choose one; the link is returned.
    pub async fn create_tenant(
        &self,
        tenant_name: &str,
        owner_email: &str,
        owner_password: Option<SecretString>,
    ) -> Result<(TenantId, Option<String>)> {
        self.create_tenant_as(tenant_name, owner_email, owner_password, Actor::Cli, &RequestMeta::default()).await
    }

    /// Create a tenant and its owner on behalf of `by` (the command line or an operator).
    pub(super) async fn create_tenant_as(
        &self,
        tenant_name: &str,
        owner_email: &str,
        owner_password: Option<SecretString>,
        by: Actor,
        meta: &RequestMeta,
    ) -> Result<(TenantId, Option<String>)> {
        let name = validate::tenant_name(tenant_name)?;
        let email = validate::email(owner_email)?;
        let hash = match owner_password {
            Some(pw) => {
                password::check_strength(&pw)?;
                Some(blocking(move || password::hash(&pw)).await?)
            }
            None => None,
        };
        let mut tx = self.write().await?;
        let (tenant_id, owner) = self.insert_tenant(&mut *tx, &name, &name, &email, hash.as_deref(), by, meta).await?;
        let link = match hash {
            Some(_) => None,
            None => {
                let s = self
                    .new_link(
                        &mut *tx,
                        LinkPurpose::SetPassword,
                        Some(tenant_id),
                        Some(owner),
                        self.settings.setup_link_ttl,
                    )
                    .await?;
                Some(self.link_url("invite", &s))
            }
        };
        tx.commit().await?;
        Ok((tenant_id, link))
    }

    /// Refuse a name a firm has, or an erased firm had: the names of destroyed firms stay
    /// reserved, so a new firm never passes for an old one (in mail, certificates or the
    /// ledger the backups re-apply).
    pub(super) async fn check_new_tenant_name(&self, tx: &mut dyn Tx, name: &str) -> Result<()> {
        if tx.tenants().tenant_by_name(name).await?.is_some() {
            return Err(Error::Conflict(format!("A tenant named {name:?}").into()));
        }
        if tx.lifecycle().erasure_by_name(name).await?.is_some() {
            return Err(Error::Conflict(
                format!("An erased tenant named {name:?} (names of erased firms are not used again)").into(),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_tenant(
        &self,
        tx: &mut dyn Tx,
        name: &str,
        display: &str,
        email: &str,
        hash: Option<&str>,
        by: Actor,
        meta: &RequestMeta,
    ) -> Result<(TenantId, UserId)> {
        self.check_new_tenant_name(tx, name).await?;
        let now = self.clock.now();
        let tenant = Tenant {
            id: TenantId::new(),
            name: name.to_string(),
            display_name: display.to_string(),
            created_at: now,
            two_factor_staff: false,
            two_factor_clients: false,
            status: TenantStatus::Active,
            ended_at: None,
        };
        tx.tenants().insert_tenant(&tenant).await?;
        self.add_tenant_key(tx, tenant.id, KeyPurpose::Data, 1).await?;
        self.add_tenant_key(tx, tenant.id, KeyPurpose::Index, 1).await?;
        let owner = User {
            id: UserId::new(),
            tenant_id: tenant.id,
            email: email.to_string(),
            display_name: email.split('@').next().unwrap_or(email).to_string(),
            role: Role::Owner,
            status: if hash.is_some() { UserStatus::Active } else { UserStatus::Invited },
            created_at: now,
        };
        tx.users().insert_user(&owner, &owner.email, hash).await?;
        let ev = NewEvent::new(Some(tenant.id), by, Action::TenantCreate, Target::Tenant(tenant.id), meta)
            .with_detail(serde_json::json!({ "name": name, "owner": owner.id.to_string() }));
        tx.audit().append_audit(&ev, now).await?;
        Ok((tenant.id, owner.id))
    }

    /// Sign in with tenant, email and password. Unknown tenant, unknown user, a user who cannot
    /// sign in and a wrong password all give `InvalidCredentials` after the same hashing work.
    /// A user with a second factor also needs `proof` (a TOTP code, a recovery code, or the
    /// answer to a passkey challenge): without a valid one the answer is `SecondFactorRequired`,
    /// with a fresh passkey challenge if the user has passkeys. A user the firm requires a
    /// second factor of, who has none, gets a session that may only enrol one. `device` is the
    /// browser's device cookie, if it sent one: a sign-in from a device the user has not used
    /// before notifies the user (see `devices`).
    pub async fn login(
        &self,
        tenant_name: &str,
        email: &str,
        pw: SecretString,
        proof: Option<&FactorProof>,
        device: Option<&DeviceSecret>,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome> {
        // Look up, then verify with no transaction open: hashing takes a while and must not hold
        // a write lock or a pooled connection that other requests need.
        let (tenant, found, lock) = {
            let mut tx = self.read().await?;
            let tenant = match validate::tenant_name(tenant_name) {
                Ok(n) => tx.tenants().tenant_by_name(&n).await?,
                Err(_) => None,
            };
            // A firm being erased may have no keys left to look its users up with: its accounts
            // are unknown from the start of the erasure.
            let found = match (&tenant, validate::email(email)) {
                (Some(t), Ok(e)) if t.status != TenantStatus::Erasing => tx.users().user_by_email(t.id, &e).await?,
                _ => None,
            };
            let lock = match &found {
                Some((u, _)) => tx.logins().login_lock(u.tenant_id, u.id).await?,
                None => lockout::Lock::Open,
            };
            (tenant, found, lock)
        };
        // The hash is checked even for a locked account, so a lock costs the same time as a try.
        let stored_hash = found.as_ref().and_then(|(_, h)| h.clone());
        let ok = blocking(move || password::verify(&pw, stored_hash.as_deref())).await?;
        let now = self.clock.now();
        let mut tx = self.write().await?;
        // A device cookie known for this account lets its user through a block on the address.
        let known_device = match (&found, device) {
            (Some((u, _)), Some(d)) => {
                let (ip, ua) = (meta.ip.as_deref(), meta.user_agent.as_deref());
                tx.devices().touch_known_device(u.tenant_id, u.id, &d.hash(), now, ip, ua).await?
            }
            _ => false,
        };
        if let Some(refusal) =
            self.gate_signin(&mut *tx, found.as_ref().map(|(u, _)| u), known_device, meta, now).await?
        {
            tx.commit().await?;
            return Err(refusal);
        }
        // The firm's network list: outside it, no sign-in (before the password's verdict, so
        // the refusal says nothing about the password).
        if let Some(t) = &tenant
            && !self.sign_in_allowed_from(&mut *tx, t.id, meta).await?
        {
            let target = found.as_ref().map_or(Target::Unknown, |(u, _)| Target::User(u.id));
            let ev = NewEvent::new(Some(t.id), Actor::Anonymous, Action::AuthLoginRefusedNetwork, target, meta);
            tx.audit().append_audit(&ev, now).await?;
            tx.commit().await?;
            return Err(Error::Forbidden(
                "sign in from this network: your firm allows sign-in only from its own networks".into(),
            ));
        }
        let unknown_name = format!("{tenant_name}|{email}");
        let (user, tenant) = match (found, tenant.clone()) {
            (Some((u, _)), Some(t)) if !lockout::may_try(lock, now) => {
                // Locked: refused without looking at the password, and not counted. The answer
                // is the same as for a wrong password.
                let ev = NewEvent::new(Some(t.id), Actor::Anonymous, Action::AuthLoginLocked, Target::User(u.id), meta);
                tx.audit().append_audit(&ev, now).await?;
                self.brute_force_alert(&mut *tx, t.id, u.id, None, meta, now).await?;
                if !ok {
                    // Guesses go on against the locked account: they count toward detection.
                    self.note_signin_failure(&mut *tx, Some(t.id), Some(u.id), "", meta, now).await?;
                }
                tx.commit().await?;
                return Err(Error::InvalidCredentials);
            }
            (Some((u, _)), Some(t)) if ok && u.status == UserStatus::Active => (u, t),
            (other, _) => {
                // Every failure writes the same kind of event, so a known user's failure costs
                // the same as an unknown one's; unknown firms go to the platform chain.
                let (target, failures) = match &other {
                    Some((u, _)) => {
                        (Target::User(u.id), Some(tx.logins().record_login_failure(u.tenant_id, u.id, now).await?))
                    }
                    None => (Target::Unknown, None),
                };
                let ev = NewEvent::new(
                    tenant.as_ref().map(|t| t.id),
                    Actor::Anonymous,
                    Action::AuthLoginFailed,
                    target,
                    meta,
                )
                .with_detail(serde_json::json!({ "consecutive_failures": failures }));
                tx.audit().append_audit(&ev, now).await?;
                if let (Some((u, _)), Some(n)) = (&other, failures) {
                    self.brute_force_alert(&mut *tx, u.tenant_id, u.id, Some(n), meta, now).await?;
                }
                let (t, u) = (other.as_ref().map(|(u, _)| u.tenant_id), other.as_ref().map(|(u, _)| u.id));
                self.note_signin_failure(&mut *tx, t, u, &unknown_name, meta, now).await?;
                tx.commit().await?;
                return Err(Error::InvalidCredentials);
            }
        };
        // An ended subscription: the right password learns that, and nothing more.
        if tenant.status != TenantStatus::Active {
            let ev = NewEvent::new(
                Some(tenant.id),
                Actor::Anonymous,
                Action::AuthLoginRefusedSubscription,
                Target::User(user.id),
                meta,
            )
            .with_detail(serde_json::json!({ "status": tenant.status.as_str() }));
            tx.audit().append_audit(&ev, now).await?;
            tx.commit().await?;
            return Err(Error::SubscriptionEnded);
        }
        let has_factor = self.has_second_factor(&mut *tx, user.tenant_id, user.id).await?;
        let factor = match (has_factor, proof) {
            (true, Some(proof)) => self.check_factor(&mut *tx, &user, proof, ChallengePurpose::SignIn).await?,
            _ => None,
        };
        if has_factor && factor.is_none() {
            // The password was right: record whether the proof was missing or refused. A wrong
            // one counts as a failed sign-in, so codes cannot be guessed without limit. A user
            // with passkeys gets a fresh challenge to answer with the next try.
            let challenge = self.passkey_challenge(&mut *tx, &user, ChallengePurpose::SignIn).await?;
            let (action, failures) = match proof {
                Some(_) => (
                    Action::AuthSecondFactorFailed,
                    Some(tx.logins().record_login_failure(user.tenant_id, user.id, now).await?),
                ),
                None => (Action::AuthSecondFactorRequired, None),
            };
            let ev = NewEvent::new(Some(user.tenant_id), Actor::Anonymous, action, Target::User(user.id), meta)
                .with_detail(serde_json::json!({ "consecutive_failures": failures }));
            tx.audit().append_audit(&ev, now).await?;
            if let Some(n) = failures {
                self.brute_force_alert(&mut *tx, user.tenant_id, user.id, Some(n), meta, now).await?;
                self.note_signin_failure(&mut *tx, Some(user.tenant_id), Some(user.id), "", meta, now).await?;
            }
            tx.commit().await?;
            return Err(Error::SecondFactorRequired(challenge.map(Box::new)));
        }
        // An account under attack needs a second factor, or (without one) a known device and
        // then an enrolment.
        let protected = self.protected_since(&mut *tx, user.tenant_id, user.id).await?.is_some();
        let must_enrol = match policy::protected_sign_in(protected, has_factor, known_device) {
            Ok(m) => m,
            Err(e) => {
                let ev = NewEvent::new(
                    Some(user.tenant_id),
                    Actor::Anonymous,
                    Action::AuthLoginProtected,
                    Target::User(user.id),
                    meta,
                );
                tx.audit().append_audit(&ev, now).await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        tx.logins().reset_login_failures(user.tenant_id, user.id).await?;
        let second_factor = SecondFactor {
            enrol_required: must_enrol || (!has_factor && policy::two_factor_required(&tenant, user.role)),
            verified_at: factor.map(|_| now),
            step_up_required: false,
        };
        let session_secret = secret::generate("pcs_")?;
        let csrf_token = secret::generate("")?.expose_secret().to_string();
        let session_hash = secret::hash(&session_secret);
        tx.sessions()
            .insert_session(&SessionRecord {
                token_hash: session_hash.clone(),
                tenant_id: user.tenant_id,
                user_id: user.id,
                csrf_token: csrf_token.clone(),
                created_at: now,
                last_seen_at: now,
                second_factor_at: second_factor.verified_at,
                enrol_required: second_factor.enrol_required,
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
            })
            .await?;
        let ev =
            NewEvent::new(Some(user.tenant_id), Actor::User(user.id), Action::AuthLogin, Target::User(user.id), meta)
                .with_detail(serde_json::json!({
                    "second_factor": factor.map(|f| f.as_str()),
                    "enrol_required": second_factor.enrol_required,
                }));
        tx.audit().append_audit(&ev, now).await?;
        let device = self.recognise_device(&mut *tx, &user, device, meta, now).await?;
        self.observe_signin(&mut *tx, &user, device.new, meta, now).await?;
        tx.commit().await?;
        let mut principal = principal_of(user, Via::Session { csrf_token: csrf_token.clone(), session_hash });
        principal.second_factor = second_factor;
        Ok(LoginOutcome { principal, session_secret, csrf_token, device })
    }

    /// Resolve a session cookie to its principal, enforcing idle and absolute timeouts.
    pub async fn authenticate_session(&self, cookie: &str) -> Result<Principal> {
        let hash = secret::hash_str(cookie);
        let mut tx = self.read().await?;
        let Some(s) = tx.sessions().session(&hash).await? else {
            return Err(Error::Unauthenticated);
        };
        let now = self.clock.now();
        let expired =
            now - s.last_seen_at > self.settings.session_idle || now - s.created_at > self.settings.session_absolute;
        let user = tx.users().user(s.tenant_id, s.user_id).await?;
        let protected_since = self.protected_since(&mut *tx, s.tenant_id, s.user_id).await?;
        // Ending a subscription ends its sessions; this refuses any that slipped past that.
        let tenant = tx.tenants().tenant(s.tenant_id).await?.filter(|t| t.status == TenantStatus::Active);
        let required = match (&tenant, &user) {
            (Some(t), Some(u)) => self.factor_requirement(&mut *tx, t, u).await?,
            _ => FactorRequirement::None,
        };
        drop(tx);
        let user = match user {
            Some(u) if !expired && tenant.is_some() && u.status == UserStatus::Active => u,
            _ => {
                let mut w = self.write().await?;
                w.sessions().delete_session(&hash).await?;
                w.commit().await?;
                return Err(Error::Unauthenticated);
            }
        };
        if now - s.last_seen_at > TOUCH_EVERY {
            let mut w = self.write().await?;
            w.sessions().touch_session(&hash, now).await?;
            w.commit().await?;
        }
        let mut principal = principal_of(user, Via::Session { csrf_token: s.csrf_token, session_hash: hash });
        // A requirement the firm set after this session began reaches it now: without a factor
        // the session may only enrol one, with one it must check it first.
        principal.second_factor = SecondFactor {
            enrol_required: s.enrol_required || required == FactorRequirement::Missing,
            verified_at: s.second_factor_at,
            step_up_required: required == FactorRequirement::Held && s.second_factor_at.is_none(),
        };
        policy::protection_resets_step_up(&mut principal.second_factor, protected_since);
        Ok(principal)
    }

    /// End a session.
    pub async fn logout(&self, p: &Principal, cookie: &str, meta: &RequestMeta) -> Result<()> {
        let mut tx = self.write().await?;
        tx.sessions().delete_session(&secret::hash_str(cookie)).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthLogout, Target::User(p.user_id), meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Resolve an API bearer token to its principal.
    pub async fn authenticate_token(&self, bearer: &str) -> Result<Principal> {
        let mut tx = self.read().await?;
        let Some(t) = tx.tokens().api_token_by_hash(&secret::hash_str(bearer)).await? else {
            return Err(Error::Unauthenticated);
        };
        let now = self.clock.now();
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::Unauthenticated);
        }
        let Some(user) = tx.users().user(t.tenant_id, t.user_id).await?.filter(|u| u.status == UserStatus::Active)
        else {
            return Err(Error::Unauthenticated);
        };
        let Some(tenant) = tx.tenants().tenant(t.tenant_id).await?.filter(|t| t.status == TenantStatus::Active) else {
            return Err(Error::Unauthenticated);
        };
        // A token cannot show a second factor: while the firm requires one of its user and they
        // have none, their tokens are suspended (they work again once the user enrols).
        if self.factor_requirement(&mut *tx, &tenant, &user).await? == FactorRequirement::Missing {
            return Err(Error::EnrolmentRequired);
        }
        drop(tx);
        if t.last_used_at.is_none_or(|l| now - l > TOUCH_EVERY) {
            let mut w = self.write().await?;
            w.tokens().touch_api_token(t.tenant_id, t.id, now).await?;
            w.commit().await?;
        }
        Ok(principal_of(user, Via::Token { id: t.id, scopes: t.scopes }))
    }

    /// What a one-time link is for, without using it.
    pub async fn link_info(&self, link: &str) -> Result<LinkInfo> {
        let mut tx = self.read().await?;
        let rec = self.live_link(&mut *tx, link).await?;
        let (email, tenant_name) = match (rec.tenant_id, rec.user_id) {
            (Some(t), Some(u)) => {
                (tx.users().user(t, u).await?.map(|u| u.email), tx.tenants().tenant(t).await?.map(|t| t.name))
            }
            _ => (None, None),
        };
        Ok(LinkInfo { purpose: rec.purpose, email, tenant_name })
    }

    /// Use a set-password link: the invited user chooses a password and becomes active.
    pub async fn accept_invite(&self, link: &str, pw: SecretString, meta: &RequestMeta) -> Result<()> {
        password::check_strength(&pw)?;
        let hash = blocking(move || password::hash(&pw)).await?;
        let mut tx = self.write().await?;
        let rec = self.take_link(&mut *tx, link, LinkPurpose::SetPassword).await?;
        let (Some(tenant), Some(user)) = (rec.tenant_id, rec.user_id) else {
            return Err(Error::LinkExpired);
        };
        // A set-password link is for a user who has not chosen one yet; once active, older links
        // for the same user are dead (they must not become a password-reset backdoor).
        if tx.users().user(tenant, user).await?.is_none_or(|u| u.status != UserStatus::Invited) {
            return Err(Error::LinkExpired);
        }
        tx.links().burn_user_links(tenant, user, self.clock.now()).await?;
        tx.users().set_password(tenant, user, &hash, UserStatus::Active).await?;
        tx.sessions().delete_user_sessions(tenant, user).await?;
        let ev = NewEvent::new(Some(tenant), Actor::User(user), Action::UserPasswordSet, Target::User(user), meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Store a new one-time link and return its secret.
    pub(super) async fn new_link(
        &self,
        tx: &mut dyn Tx,
        purpose: LinkPurpose,
        tenant_id: Option<TenantId>,
        user_id: Option<UserId>,
        ttl: Duration,
    ) -> Result<SecretString> {
        let s = secret::generate("")?;
        let now = self.clock.now();
        tx.links()
            .insert_link(&LinkRecord {
                token_hash: secret::hash(&s),
                purpose,
                tenant_id,
                user_id,
                created_at: now,
                expires_at: now + ttl,
            })
            .await?;
        Ok(s)
    }

    async fn live_link(&self, tx: &mut dyn Tx, link: &str) -> Result<LinkRecord> {
        match tx.links().link(&secret::hash_str(link)).await? {
            Some(rec) if rec.expires_at > self.clock.now() => Ok(rec),
            _ => Err(Error::LinkExpired),
        }
    }

    async fn take_link(&self, tx: &mut dyn Tx, link: &str, purpose: LinkPurpose) -> Result<LinkRecord> {
        let rec = self.live_link(tx, link).await?;
        if rec.purpose != purpose || !tx.links().use_link(&rec.token_hash, self.clock.now()).await? {
            return Err(Error::LinkExpired);
        }
        Ok(rec)
    }
}

/// What the firm's two-factor requirement asks of one user now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FactorRequirement {
    /// The firm does not require a second factor of this user.
    None,
    /// It does, and the user has none yet.
    Missing,
    /// It does, and the user has one.
    Held,
}

impl Portal {
    /// What the firm's two-factor requirement asks of `user` now. Asked on every request, so a
    /// requirement reaches sessions and tokens made before it.
    async fn factor_requirement(&self, tx: &mut dyn Tx, tenant: &Tenant, user: &User) -> Result<FactorRequirement> {
        if !policy::two_factor_required(tenant, user.role) {
            return Ok(FactorRequirement::None);
        }
        Ok(if self.has_second_factor(tx, user.tenant_id, user.id).await? {
            FactorRequirement::Held
        } else {
            FactorRequirement::Missing
        })
    }
}

pub(super) fn principal_of(u: User, via: Via) -> Principal {
    Principal {
        tenant_id: u.tenant_id,
        user_id: u.id,
        email: u.email,
        display_name: u.display_name,
        role: u.role,
        via,
        second_factor: SecondFactor::default(),
    }
}
