//! Second factors: TOTP, recovery codes, passkeys and their WebAuthn ceremonies, and the
//! second-factor state of sessions.

use crate::error::Result;
use crate::ids::{PasskeyId, TenantId, UserId};
use crate::model::{ChallengePurpose, PasskeyRecord, PendingTotp, TotpRecord, WebauthnChallenge};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait FactorRepo: Send {
    /// A user's active TOTP factor.
    async fn totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<TotpRecord>>;
    /// Make this the user's active TOTP factor, replacing any other.
    async fn put_totp(&mut self, t: &TotpRecord) -> Result<()>;
    /// Accept time step `step` if it is newer than every step accepted before; false if not (a
    /// replayed code). Atomic, so two requests cannot both use one code.
    async fn use_totp_step(&mut self, tenant: TenantId, user: UserId, step: u64) -> Result<bool>;
    /// Remove the user's TOTP factor and recovery codes.
    async fn delete_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    async fn pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<PendingTotp>>;
    /// Store an enrolment waiting for its first code, replacing an earlier one.
    async fn put_pending_totp(&mut self, t: &PendingTotp) -> Result<()>;
    async fn delete_pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    /// Replace the user's recovery codes with these hashes.
    async fn replace_recovery_codes(&mut self, tenant: TenantId, user: UserId, hashes: &[String]) -> Result<()>;
    /// Spend a recovery code; false if it is unknown or spent.
    async fn use_recovery_code(
        &mut self,
        tenant: TenantId,
        user: UserId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool>;
    async fn recovery_codes_left(&mut self, tenant: TenantId, user: UserId) -> Result<u64>;
    /// Record a second-factor check on a session.
    async fn set_session_second_factor(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()>;
    /// The user has enrolled: none of their sessions is held to enrolment any more.
    async fn clear_enrol_required(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    /// The user's passkeys and security keys, oldest first.
    async fn passkeys(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyRecord>>;
    async fn insert_passkey(&mut self, k: &PasskeyRecord) -> Result<()>;
    /// Is this credential id registered to anyone, in any tenant?
    async fn passkey_credential_exists(&mut self, credential_id: &str) -> Result<bool>;
    /// Store a passkey's new signature counter after a use.
    async fn update_passkey(&mut self, k: &PasskeyRecord) -> Result<()>;
    /// Remove one of the user's passkeys; false if there is no such passkey of theirs.
    async fn delete_passkey(&mut self, tenant: TenantId, user: UserId, id: PasskeyId) -> Result<bool>;
    /// Keep a ceremony's state; expired ones of the same user are dropped.
    async fn insert_webauthn_challenge(&mut self, c: &WebauthnChallenge, now: OffsetDateTime) -> Result<()>;
    /// Take (read and delete) an unexpired challenge of this user made for this purpose, so an
    /// answer can be checked against it once.
    async fn take_webauthn_challenge(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: &str,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<Option<WebauthnChallenge>>;
}
