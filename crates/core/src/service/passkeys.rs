//! Passkeys and security keys (WebAuthn) as a second factor: registering one, listing and
//! removing them, and the challenges a sign-in or step-up answers with one. Checking an answer
//! is part of the second-factor check in `factors`.

use super::factors::FactorUsed;
use super::{Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::authn::secret;
use crate::authn::webauthn::{self, PasskeyChallenge, Passkeys, PublicKeyCredential, RegisterPublicKeyCredential};
use crate::error::{Error, Result};
use crate::ids::PasskeyId;
use crate::model::{ChallengePurpose, PasskeyRecord, User, WebauthnChallenge};
use crate::policy::can;
use crate::policy::{self, Principal, Via};
use crate::ports::Tx;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::Duration;
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

/// How long the browser has to answer a challenge (the authenticator's own timeout is 5 min).
const CHALLENGE_TTL: Duration = Duration::minutes(5);

/// A passkey's name: what its owner calls it, to tell several apart.
const MAX_NAME: usize = 60;

/// The state a registration keeps until the browser answers.
#[derive(Serialize, Deserialize)]
struct Registration {
    name: String,
    state: PasskeyRegistration,
}

impl Portal {
    /// The relying party, or why passkeys are off on this server.
    fn relying_party(&self) -> Result<&Passkeys> {
        match &self.passkeys {
            Ok(p) => Ok(p),
            Err(reason) => Err(Error::invalid("passkey", reason.clone())),
        }
    }

    /// Store a ceremony's state and return what the client needs.
    async fn new_challenge(
        &self,
        tx: &mut dyn Tx,
        user: (crate::ids::TenantId, crate::ids::UserId),
        purpose: ChallengePurpose,
        state: String,
        options: serde_json::Value,
    ) -> Result<PasskeyChallenge> {
        let now = self.clock.now();
        let id = secret::generate("pwc_")?.expose_secret().to_string();
        let ch = WebauthnChallenge {
            id: id.clone(),
            tenant_id: user.0,
            user_id: user.1,
            purpose,
            state,
            expires_at: now + CHALLENGE_TTL,
        };
        tx.factors().insert_webauthn_challenge(&ch, now).await?;
        Ok(PasskeyChallenge { challenge_id: id, options })
    }

    /// A sign-in or step-up challenge for `user`, if they have passkeys (and this server can
    /// use them).
    pub(super) async fn passkey_challenge(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        purpose: ChallengePurpose,
    ) -> Result<Option<PasskeyChallenge>> {
        let keys = tx.factors().passkeys(user.tenant_id, user.id).await?;
        let (Ok(rp), false) = (&self.passkeys, keys.is_empty()) else { return Ok(None) };
        let creds: Vec<_> = keys.into_iter().map(|k| k.credential).collect();
        let (options, state) = rp.start_authentication(&creds)?;
        let state = serde_json::to_string(&state).map_err(Error::internal)?;
        let options = serde_json::to_value(&options).map_err(Error::internal)?;
        self.new_challenge(tx, (user.tenant_id, user.id), purpose, state, options).await.map(Some)
    }

    /// Check an answer to a sign-in or step-up challenge. `None` if it is not a valid answer
    /// (unknown or expired challenge, bad signature, a counter that went backwards); the
    /// challenge is spent either way.
    pub(super) async fn check_passkey(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        purpose: ChallengePurpose,
        challenge_id: &str,
        answer: &PublicKeyCredential,
    ) -> Result<Option<FactorUsed>> {
        let now = self.clock.now();
        let Ok(rp) = &self.passkeys else { return Ok(None) };
        let Some(ch) =
            tx.factors().take_webauthn_challenge(user.tenant_id, user.id, challenge_id, purpose, now).await?
        else {
            return Ok(None);
        };
        let state: PasskeyAuthentication = serde_json::from_str(&ch.state).map_err(Error::internal)?;
        let Ok(result) = rp.finish_authentication(answer, &state) else { return Ok(None) };
        let mut keys = tx.factors().passkeys(user.tenant_id, user.id).await?;
        let Some(key) = keys.iter_mut().find(|k| k.credential.cred_id() == result.cred_id()) else {
            return Ok(None);
        };
        // The counter (and backup flags) move with each use; a cloned key would fall behind.
        key.credential.update_credential(&result);
        key.last_used_at = Some(now);
        tx.factors().update_passkey(key).await?;
        Ok(Some(FactorUsed::Passkey))
    }

    /// Start registering a passkey or security key (a change of factors: step-up if the user
    /// has a factor already). The browser answers with `navigator.credentials.create`.
    pub async fn start_passkey_registration(
        &self,
        p: &Principal,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<PasskeyChallenge> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let name = crate::validate::line("name", name, MAX_NAME)?;
        let rp = self.relying_party()?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let exclude = tx
            .factors()
            .passkeys(p.tenant_id, p.user_id)
            .await?
            .iter()
            .map(|k| k.credential.cred_id().clone())
            .collect();
        let (options, state) = rp.start_registration(p.user_id.as_uuid(), &p.email, &p.display_name, exclude)?;
        let state = serde_json::to_string(&Registration { name, state }).map_err(Error::internal)?;
        let options = serde_json::to_value(&options).map_err(Error::internal)?;
        let ch =
            self.new_challenge(&mut *tx, (p.tenant_id, p.user_id), ChallengePurpose::Register, state, options).await?;
        let ev = NewEvent::new(
            Some(p.tenant_id),
            actor(p),
            Action::AuthPasskeyRegistrationStarted,
            Target::User(p.user_id),
            meta,
        );
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        Ok(ch)
    }

    /// Finish a registration with the browser's answer: the key becomes one of the user's
    /// factors, and this session counts as checked (the key just verified its user).
    pub async fn finish_passkey_registration(
        &self,
        p: &Principal,
        challenge_id: &str,
        answer: &RegisterPublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<PasskeyRecord> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let rp = self.relying_party()?;
        let now = self.clock.now();
        let mut tx = self.write().await?;
        let taken = tx
            .factors()
            .take_webauthn_challenge(p.tenant_id, p.user_id, challenge_id, ChallengePurpose::Register, now)
            .await?;
        let checked = match taken {
            None => Err(Error::invalid(
                "challenge_id",
                "no registration is waiting under this id (or it expired); start again",
            )),
            Some(ch) => {
                let reg: Registration = serde_json::from_str(&ch.state).map_err(Error::internal)?;
                rp.finish_registration(answer, &reg.state).map(|credential| (reg.name, credential))
            }
        };
        let (name, credential) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                // The spent challenge is deleted with the refusal's audit event.
                let ev = NewEvent::new(
                    Some(p.tenant_id),
                    actor(p),
                    Action::AuthPasskeyRegistrationFailed,
                    Target::User(p.user_id),
                    meta,
                )
                .with_detail(serde_json::json!({ "reason": e.code() }));
                tx.audit().append_audit(&ev, now).await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        if tx.factors().passkey_credential_exists(&webauthn::credential_id(&credential)).await? {
            return Err(Error::Conflict("This passkey".into()));
        }
        let record = PasskeyRecord {
            id: PasskeyId::new(),
            tenant_id: p.tenant_id,
            user_id: p.user_id,
            name,
            credential,
            created_at: now,
            last_used_at: None,
        };
        tx.factors().insert_passkey(&record).await?;
        tx.factors().clear_enrol_required(p.tenant_id, p.user_id).await?;
        if let Via::Session { session_hash, .. } = &p.via {
            tx.factors().set_session_second_factor(session_hash, now).await?;
        }
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthPasskeyAdded, Target::Passkey(record.id), meta)
            .with_detail(serde_json::json!({ "user": p.user_id }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The caller's passkeys.
    pub async fn list_passkeys(&self, p: &Principal) -> Result<Vec<PasskeyRecord>> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        self.read().await?.factors().passkeys(p.tenant_id, p.user_id).await
    }

    /// Remove one of the caller's passkeys (a change of factors: step-up). Refused if it is the
    /// last factor of someone the firm requires a second factor of.
    pub async fn remove_passkey(&self, p: &Principal, id: PasskeyId, meta: &RequestMeta) -> Result<()> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let keys = tx.factors().passkeys(p.tenant_id, p.user_id).await?;
        if !keys.iter().any(|k| k.id == id) {
            return Err(Error::NotFound);
        }
        let others = keys.len() > 1 || tx.factors().totp(p.tenant_id, p.user_id).await?.is_some();
        self.refuse_removing_last_factor(&mut *tx, p, others).await?;
        tx.factors().delete_passkey(p.tenant_id, p.user_id, id).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuthPasskeyRemoved, Target::Passkey(id), meta)
            .with_detail(serde_json::json!({ "user": p.user_id }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// A challenge for a step-up with a passkey, for a signed-in session.
    pub async fn start_passkey_step_up(&self, p: &Principal) -> Result<PasskeyChallenge> {
        policy::authorize_tenant::<can::ManageOwnFactors>(p)?;
        self.relying_party()?;
        let mut tx = self.write().await?;
        let user = tx.users().user(p.tenant_id, p.user_id).await?.ok_or(Error::Unauthenticated)?;
        let ch = self
            .passkey_challenge(&mut *tx, &user, ChallengePurpose::StepUp)
            .await?
            .ok_or_else(|| Error::invalid("passkey", "you have no passkey; use a code from your authenticator app"))?;
        tx.commit().await?;
        Ok(ch)
    }
}
