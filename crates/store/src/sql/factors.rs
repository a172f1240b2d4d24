//! Second factors in SQL: TOTP, recovery codes, passkeys, WebAuthn challenges and the second-factor
//! state of sessions.

use super::{SqlTx, db, ms, size_i64};
use crate::rows::{self, count, id};
use async_trait::async_trait;
use portcullis_core::authn::webauthn;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{PasskeyId, TenantId, UserId};
use portcullis_core::model::{ChallengePurpose, PasskeyRecord, PendingTotp, TotpRecord, WebauthnChallenge};
use portcullis_core::ports::FactorRepo;
use secrecy::ExposeSecret;
use time::OffsetDateTime;

#[derive(sqlx::FromRow)]
pub(crate) struct TotpRow {
    id: String,
    tenant_id: String,
    secret: String,
    enrolled_at: i64,
    last_step: i64,
}

impl TotpRow {
    pub(crate) fn into_model(self) -> Result<TotpRecord> {
        Ok(TotpRecord {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.id, portcullis_core::ids::UserId::from_uuid)?,
            secret: secrecy::SecretString::from(self.secret),
            enrolled_at: from_millis(self.enrolled_at),
            last_step: count(self.last_step)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PasskeyRow {
    id: String,
    tenant_id: String,
    user_id: String,
    name: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl PasskeyRow {
    pub(crate) fn into_model(self) -> Result<PasskeyRecord> {
        Ok(PasskeyRecord {
            id: id(&self.id, portcullis_core::ids::PasskeyId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            name: self.name,
            credential: serde_json::from_str(&self.credential).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
            last_used_at: self.last_used_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChallengeRow {
    id: String,
    tenant_id: String,
    user_id: String,
    purpose: String,
    state: String,
    expires_at: i64,
}

impl ChallengeRow {
    pub(crate) fn into_model(self) -> Result<WebauthnChallenge> {
        Ok(WebauthnChallenge {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            purpose: portcullis_core::model::ChallengePurpose::parse(&self.purpose)
                .ok_or_else(|| Error::internal(format!("unknown challenge purpose {:?}", self.purpose)))?,
            id: self.id,
            state: self.state,
            expires_at: from_millis(self.expires_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PendingTotpRow {
    id: String,
    tenant_id: String,
    secret: String,
    created_at: i64,
}

impl PendingTotpRow {
    pub(crate) fn into_model(self) -> Result<PendingTotp> {
        Ok(PendingTotp {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.id, portcullis_core::ids::UserId::from_uuid)?,
            secret: secrecy::SecretString::from(self.secret),
            created_at: from_millis(self.created_at),
        })
    }
}

#[async_trait]
impl FactorRepo for SqlTx {
    async fn totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<TotpRecord>> {
        const Q: &str = "SELECT id, tenant_id, secret, enrolled_at, last_step FROM user_totp \
                         WHERE tenant_id = $1 AND id = $2";
        let row: Option<TotpRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(TotpRow::into_model).transpose()
    }

    async fn put_totp(&mut self, t: &TotpRecord) -> Result<()> {
        const Q: &str = "INSERT INTO user_totp (id, tenant_id, secret, enrolled_at, last_step) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, enrolled_at = excluded.enrolled_at, \
                         last_step = excluded.last_step";
        let step = size_i64(t.last_step)?;
        on!(self, |c| sqlx::query(Q)
            .bind(t.user_id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.secret.expose_secret())
            .bind(ms(t.enrolled_at))
            .bind(step)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn use_totp_step(&mut self, tenant: TenantId, user: UserId, step: u64) -> Result<bool> {
        const Q: &str = "UPDATE user_totp SET last_step = $3 WHERE tenant_id = $1 AND id = $2 AND last_step < $3";
        let step = size_i64(step)?;
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(step)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn delete_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        for q in [
            "DELETE FROM user_totp WHERE tenant_id = $1 AND id = $2",
            "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2",
        ] {
            self.exec_for_user(q, tenant, user).await?;
        }
        Ok(())
    }

    async fn pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<PendingTotp>> {
        const Q: &str =
            "SELECT id, tenant_id, secret, created_at FROM totp_enrolments WHERE tenant_id = $1 AND id = $2";
        let row: Option<PendingTotpRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(PendingTotpRow::into_model).transpose()
    }

    async fn put_pending_totp(&mut self, t: &PendingTotp) -> Result<()> {
        const Q: &str = "INSERT INTO totp_enrolments (id, tenant_id, secret, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at";
        on!(self, |c| sqlx::query(Q)
            .bind(t.user_id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.secret.expose_secret())
            .bind(ms(t.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn delete_pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "DELETE FROM totp_enrolments WHERE tenant_id = $1 AND id = $2";
        self.exec_for_user(Q, tenant, user).await.map(|_| ())
    }

    async fn replace_recovery_codes(&mut self, tenant: TenantId, user: UserId, hashes: &[String]) -> Result<()> {
        const DEL: &str = "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2";
        const INS: &str =
            "INSERT INTO recovery_codes (tenant_id, user_id, code_hash, used_at) VALUES ($1, $2, $3, NULL)";
        let (t, u) = (tenant.to_string(), user.to_string());
        on!(self, |c| sqlx::query(DEL).bind(&t).bind(&u).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        for h in hashes {
            on!(self, |c| sqlx::query(INS).bind(&t).bind(&u).bind(h).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        }
        Ok(())
    }

    async fn use_recovery_code(
        &mut self,
        tenant: TenantId,
        user: UserId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE recovery_codes SET used_at = $4 \
                         WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 AND used_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(hash)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn recovery_codes_left(&mut self, tenant: TenantId, user: UserId) -> Result<u64> {
        const Q: &str = "SELECT COUNT(*) FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL";
        let n: i64 =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_one(c).await)
                .map_err(db)?;
        u64::try_from(n).map_err(Error::internal)
    }

    async fn set_session_second_factor(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE sessions SET second_factor_at = $2 WHERE token_hash = $1";
        on!(self, |c| sqlx::query(Q).bind(token_hash).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }

    async fn clear_enrol_required(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "UPDATE sessions SET enrol_required = 0 WHERE tenant_id = $1 AND user_id = $2";
        self.exec_for_user(Q, tenant, user).await.map(|_| ())
    }

    async fn passkeys(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyRecord>> {
        const Q: &str = "SELECT id, tenant_id, user_id, name, credential, created_at, last_used_at FROM passkeys \
                         WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id";
        let rows: Vec<PasskeyRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, PasskeyRow::into_model)
    }

    async fn insert_passkey(&mut self, k: &PasskeyRecord) -> Result<()> {
        const Q: &str = "INSERT INTO passkeys (id, tenant_id, user_id, credential_id, name, credential, created_at, \
                         last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let credential = serde_json::to_string(&k.credential).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(k.id.to_string())
            .bind(k.tenant_id.to_string())
            .bind(k.user_id.to_string())
            .bind(webauthn::credential_id(&k.credential))
            .bind(&k.name)
            .bind(&credential)
            .bind(ms(k.created_at))
            .bind(k.last_used_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn passkey_credential_exists(&mut self, credential_id: &str) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM passkeys WHERE credential_id = $1";
        let n: i64 = on!(self, |c| sqlx::query_scalar(Q).bind(credential_id).fetch_one(c).await).map_err(db)?;
        Ok(n > 0)
    }

    async fn update_passkey(&mut self, k: &PasskeyRecord) -> Result<()> {
        const Q: &str = "UPDATE passkeys SET credential = $3, last_used_at = $4 WHERE tenant_id = $1 AND id = $2";
        let credential = serde_json::to_string(&k.credential).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(k.tenant_id.to_string())
            .bind(k.id.to_string())
            .bind(&credential)
            .bind(k.last_used_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn delete_passkey(&mut self, tenant: TenantId, user: UserId, id: PasskeyId) -> Result<bool> {
        const Q: &str = "DELETE FROM passkeys WHERE tenant_id = $1 AND user_id = $2 AND id = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_webauthn_challenge(&mut self, ch: &WebauthnChallenge, now: OffsetDateTime) -> Result<()> {
        const PURGE: &str =
            "DELETE FROM webauthn_challenges WHERE tenant_id = $1 AND user_id = $2 AND expires_at <= $3";
        const Q: &str = "INSERT INTO webauthn_challenges (id, tenant_id, user_id, purpose, state, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        let (t, u) = (ch.tenant_id.to_string(), ch.user_id.to_string());
        on!(self, |c| sqlx::query(PURGE).bind(&t).bind(&u).bind(ms(now)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        on!(self, |c| sqlx::query(Q)
            .bind(&ch.id)
            .bind(&t)
            .bind(&u)
            .bind(ch.purpose.as_str())
            .bind(&ch.state)
            .bind(ms(ch.expires_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn take_webauthn_challenge(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: &str,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<Option<WebauthnChallenge>> {
        // Deleted whatever its state: a challenge is good for one answer, right or wrong.
        const Q: &str = "DELETE FROM webauthn_challenges WHERE tenant_id = $1 AND user_id = $2 AND id = $3 \
                         RETURNING id, tenant_id, user_id, purpose, state, expires_at";
        let row: Option<ChallengeRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(id)
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        let found = row.map(ChallengeRow::into_model).transpose()?;
        Ok(found.filter(|c| c.purpose == purpose && c.expires_at > now))
    }
}
