//! Second factors: TOTP enrolment with recovery codes, the check (of a code or a passkey) at
//! sign-in and at step-up, the firm's two-factor requirement. The decisions (who may, whether a step-up is fresh enough)
//! are the policy module's; this module does the work and the audit.

use super::{Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::authn::webauthn::PublicKeyCredential;
use crate::authn::{lockout, secret, totp};
use crate::error::{Error, Result};
use crate::ids::{TenantId, UserId};
use crate::model::{ChallengePurpose, PendingTotp, SensitiveAction, TotpRecord, User};
use crate::policy::can;
use crate::policy::{self, Principal, Via};
use crate::ports::Tx;
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

/// An enrolment not confirmed within this time must be started again.
const ENROLMENT_TTL: Duration = Duration::minutes(15);

/// What a user needs to add an authenticator app: shown once, at enrolment.
#[derive(Debug)]
pub struct TotpEnrolment {
    pub secret: SecretString,
    pub otpauth_url: SecretString,
    /// The QR code of the URL, as an SVG document.
    pub qr_svg: SecretString,
}

/// A user's second-factor state, as their security page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityStatus {
    pub totp_enabled: bool,
    /// How many passkeys or security keys the user has registered.
    pub passkeys: usize,
    pub enrolment_pending: bool,
    pub recovery_codes_left: u64,
    /// The firm requires a second factor of this user.
    pub two_factor_required: bool,
    /// The session's last second-factor check, if any.
    pub verified_at: Option<time::OffsetDateTime>,
}

/// Which factor a check accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorUsed {
    Totp,
    RecoveryCode,
    Passkey,
}

/// What a user offers as their second factor.
#[derive(Debug)]
pub enum FactorProof {
    /// A code from the authenticator app, or a recovery code.
    Code(String),
    /// The answer to a passkey challenge the server gave out.
    Passkey { challenge_id: String, answer: Box<PublicKeyCredential> },
}

impl TotpEnrolment {
    fn of(secret: SecretString, account: &str) -> Result<Self> {
        let url = totp::otpauth_url(&secret, account)?;
        let qr_svg = totp::qr_svg(&url)?;
        Ok(Self { secret, otpauth_url: url.into(), qr_svg: qr_svg.into() })
    }
}

impl FactorUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorUsed::Totp => "totp",
            FactorUsed::RecoveryCode => "recovery_code",
            FactorUsed::Passkey => "passkey",
        }
    }
}

impl Portal {
    /// Check a proof of the user's second factor in `tx`: a TOTP code for a time step newer
    /// than any accepted before, an unspent recovery code (which is spent), or an answer to a
    /// passkey challenge made for `purpose`. `None` if it is not valid; the caller audits and
    /// refuses.
    pub(super) async fn check_factor(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        proof: &FactorProof,
        purpose: ChallengePurpose,
    ) -> Result<Option<FactorUsed>> {
        let code = match proof {
            FactorProof::Code(c) => c,
            FactorProof::Passkey { challenge_id, answer } => {
                return self.check_passkey(tx, user, purpose, challenge_id, answer).await;
            }
        };
        let Some(t) = tx.factors().totp(user.tenant_id, user.id).await? else { return Ok(None) };
        if totp::is_totp_code(code) {
            let now = u64::try_from(self.clock.now().unix_timestamp()).map_err(Error::internal)?;
            let Some(step) = totp::check(&t.secret, code, now)? else { return Ok(None) };
            return Ok(tx.factors().use_totp_step(user.tenant_id, user.id, step).await?.then_some(FactorUsed::Totp));
        }
        let hash = secret::hash_str(&totp::normalise_recovery_code(code));
        Ok(tx
            .factors()
            .use_recovery_code(user.tenant_id, user.id, &hash, self.clock.now())
            .await?
            .then_some(FactorUsed::RecoveryCode))
    }

    /// Has the user any second factor (an authenticator app or a passkey)?
    pub(super) async fn has_second_factor(&self, tx: &mut dyn Tx, tenant: TenantId, user: UserId) -> Result<bool> {
        Ok(tx.factors().totp(tenant, user).await?.is_some() || !tx.factors().passkeys(tenant, user).await?.is_empty())
    }

    /// Refuse a sensitive action unless the caller checked their second factor recently (if
    /// they have one). Asked inside the action's transaction.
    pub(super) async fn require_step_up(&self, tx: &mut dyn Tx, p: &Principal) -> Result<()> {
        let has_factor = match p.via {
            Via::Cli => false,
            _ => self.has_second_factor(tx, p.tenant_id, p.user_id).await?,
        };
        policy::step_up(p, has_factor, self.clock.now())
    }

    /// Refuse to remove a factor when no other would remain and the firm requires one.
    pub(super) async fn refuse_removing_last_factor(&self, tx: &mut dyn Tx, p: &Principal, others: bool) -> Result<()> {
        let tenant = tx.tenants().tenant(p.tenant_id).await?.ok_or(Error::NotFound)?;
        if !others && policy::two_factor_required(&tenant, p.role) {
            return Err(Error::Forbidden("remove your last second factor: your firm requires one".into()));
        }
        Ok(())
    }

    /// The caller's second-factor state.
    pub async fn security_status(&self, p: &Principal) -> Result<SecurityStatus> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let mut tx = self.read().await?;
        let tenant = tx.tenants().tenant(p.tenant_id).await?.ok_or(Error::NotFound)?;
        Ok(SecurityStatus {
            totp_enabled: tx.factors().totp(p.tenant_id, p.user_id).await?.is_some(),
            passkeys: tx.factors().passkeys(p.tenant_id, p.user_id).await?.len(),
            enrolment_pending: tx.factors().pending_totp(p.tenant_id, p.user_id).await?.is_some(),
            recovery_codes_left: tx.factors().recovery_codes_left(p.tenant_id, p.user_id).await?,
            two_factor_required: policy::two_factor_required(&tenant, p.role),
            verified_at: p.second_factor.verified_at,
        })
    }

    /// The firm's settings, for those who may change its security settings.
    pub async fn tenant_settings(&self, p: &Principal) -> Result<crate::model::Tenant> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        self.read().await?.tenants().tenant(p.tenant_id).await?.ok_or(Error::NotFound)
    }

    /// Start adding an authenticator app. Replacing an active one is a change of factors and
    /// needs a step-up; the active one keeps working until the new one is confirmed.
    pub async fn start_totp_enrolment(&self, p: &Principal, meta: &RequestMeta) -> Result<TotpEnrolment> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let secret = totp::new_secret()?;
        let shown = TotpEnrolment::of(secret.clone(), &p.email)?;
        let now = self.clock.now();
        tx.factors()
            .put_pending_totp(&PendingTotp {
                tenant_id: p.tenant_id,
                user_id: p.user_id,
                secret: secret.clone(),
                created_at: now,
            })
            .await?;
        let ev =
            NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthTotpEnrolmentStarted, Target::User(p.user_id), meta);
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(shown)
    }

    /// The enrolment waiting for its first code, to show again (after a mistyped code).
    pub async fn pending_totp_enrolment(&self, p: &Principal) -> Result<TotpEnrolment> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let now = self.clock.now();
        let pending = self
            .read()
            .await?
            .factors()
            .pending_totp(p.tenant_id, p.user_id)
            .await?
            .filter(|t| now - t.created_at <= ENROLMENT_TTL)
            .ok_or(Error::NotFound)?;
        TotpEnrolment::of(pending.secret, &p.email)
    }

    /// Confirm an enrolment with a first code: the app becomes the user's factor, ten new
    /// recovery codes replace any old ones (returned, once), and this session counts as checked.
    pub async fn confirm_totp_enrolment(
        &self,
        p: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<SecretString>> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let mut tx = self.write().await?;
        let now = self.clock.now();
        let pending = tx
            .factors()
            .pending_totp(p.tenant_id, p.user_id)
            .await?
            .filter(|t| now - t.created_at <= ENROLMENT_TTL)
            .ok_or_else(|| Error::invalid("code", "there is no enrolment waiting (or it expired); start again"))?;
        let unix = u64::try_from(now.unix_timestamp()).map_err(Error::internal)?;
        let Some(step) = totp::check(&pending.secret, code, unix)? else {
            drop(tx);
            let e = Error::invalid("code", "that code is not valid; check the app's clock and enter the current code");
            self.audit_refusal(p, Action::AuthTotpEnrolmentFailed, Target::User(p.user_id), &e, meta).await?;
            return Err(e);
        };
        tx.factors()
            .put_totp(&TotpRecord {
                tenant_id: p.tenant_id,
                user_id: p.user_id,
                secret: pending.secret,
                enrolled_at: now,
                last_step: step,
            })
            .await?;
        tx.factors().delete_pending_totp(p.tenant_id, p.user_id).await?;
        let codes = totp::new_recovery_codes()?;
        let hashes: Vec<String> =
            codes.iter().map(|c| secret::hash_str(&totp::normalise_recovery_code(c.expose_secret()))).collect();
        tx.factors().replace_recovery_codes(p.tenant_id, p.user_id, &hashes).await?;
        tx.factors().clear_enrol_required(p.tenant_id, p.user_id).await?;
        if let Via::Session { session_hash, .. } = &p.via {
            tx.factors().set_session_second_factor(session_hash, now).await?;
        }
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthTotpEnrolled, Target::User(p.user_id), meta);
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// Remove the user's authenticator app and recovery codes (a change of factors: step-up).
    /// Refused while the firm requires a second factor of this user.
    pub async fn remove_totp(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        if tx.factors().totp(p.tenant_id, p.user_id).await?.is_none() {
            return Err(Error::NotFound);
        }
        let others = !tx.factors().passkeys(p.tenant_id, p.user_id).await?.is_empty();
        self.refuse_removing_last_factor(&mut *tx, p, others).await?;
        tx.factors().delete_totp(p.tenant_id, p.user_id).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthTotpRemoved, Target::User(p.user_id), meta);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Step-up: check a code for a signed-in session, so sensitive actions are allowed for the
    /// next few minutes.
    pub async fn step_up(&self, p: &Principal, proof: &FactorProof, meta: &RequestMeta) -> Result<FactorUsed> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let Via::Session { session_hash, .. } = &p.via else {
            return Err(Error::Forbidden("step up with an API token (sign in in a browser session)".into()));
        };
        let mut tx = self.write().await?;
        let user = tx.users().user(p.tenant_id, p.user_id).await?.ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        // Step-up codes are throttled with sign-in failures: a stolen session cannot guess them.
        let open = lockout::may_try(tx.logins().login_lock(p.tenant_id, p.user_id).await?, now);
        let used = if open { self.check_factor(&mut *tx, &user, proof, ChallengePurpose::StepUp).await? } else { None };
        let Some(used) = used else {
            // Tries while locked are refused unchecked and not counted.
            let failures =
                if open { Some(tx.logins().record_login_failure(p.tenant_id, p.user_id, now).await?) } else { None };
            self.brute_force_alert(&mut *tx, p.tenant_id, p.user_id, failures, meta, now).await?;
            tx.commit().await?;
            let e = Error::SecondFactorRequired(None);
            self.audit_refusal(p, Action::AuthStepUpFailed, Target::User(p.user_id), &e, meta).await?;
            return Err(e);
        };
        tx.logins().reset_login_failures(p.tenant_id, p.user_id).await?;
        tx.factors().set_session_second_factor(session_hash, now).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthStepUp, Target::User(p.user_id), meta)
            .with_detail(serde_json::json!({ "factor": used.as_str() }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(used)
    }

    /// Set the firm's two-factor requirement (a security setting: step-up). Tightening it is
    /// done at once; lowering it becomes a request a second owner or admin must approve.
    pub async fn set_two_factor_policy(
        &self,
        p: &Principal,
        staff: bool,
        clients: bool,
        meta: &RequestMeta,
    ) -> Result<super::Change> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let tenant = tx.tenants().tenant(p.tenant_id).await?.ok_or(Error::NotFound)?;
        if (tenant.two_factor_staff && !staff) || (tenant.two_factor_clients && !clients) {
            let req = self.request(&mut *tx, p, SensitiveAction::TwoFactorPolicy { staff, clients }, meta).await?;
            tx.commit().await?;
            return Ok(super::Change::Requested(req));
        }
        self.apply_two_factor_policy(&mut *tx, p, staff, clients, None, meta).await?;
        tx.commit().await?;
        Ok(super::Change::Applied)
    }

    /// Store the firm's two-factor requirement with its audit event (`approval`: the request
    /// that allowed a lowering).
    pub(super) async fn apply_two_factor_policy(
        &self,
        tx: &mut dyn crate::ports::Tx,
        p: &Principal,
        staff: bool,
        clients: bool,
        approval: Option<&crate::changes::Approval>,
        meta: &RequestMeta,
    ) -> Result<()> {
        let before = tx.tenants().tenant(p.tenant_id).await?.ok_or(Error::NotFound)?;
        tx.tenants().set_tenant_two_factor(p.tenant_id, staff, clients).await?;
        let target = Target::Tenant(p.tenant_id);
        let policy = |staff: bool, clients: bool| serde_json::json!({ "staff": staff, "clients": clients });
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::TenantTwoFactorPolicy, target, meta).with_detail(
            crate::changes::detail(
                policy(before.two_factor_staff, before.two_factor_clients),
                policy(staff, clients),
                approval,
            ),
        );
        tx.audit().append_audit(&ev, self.clock.now()).await
    }
}
