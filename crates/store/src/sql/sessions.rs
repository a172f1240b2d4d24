//! Sign-in sessions in SQL.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::Result;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::SessionRecord;
use portcullis_core::ports::SessionRepo;
use time::OffsetDateTime;

/// The columns of `sessions`, in the order `SessionRow` and the INSERT use.
macro_rules! session_columns {
    () => {
        "token_hash, tenant_id, user_id, csrf_token, created_at, last_seen_at, second_factor_at, enrol_required, ip, \
         user_agent"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    token_hash: String,
    tenant_id: String,
    user_id: String,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    second_factor_at: Option<i64>,
    enrol_required: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl SessionRow {
    pub(crate) fn into_model(self) -> Result<SessionRecord> {
        Ok(SessionRecord {
            token_hash: self.token_hash,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            csrf_token: self.csrf_token,
            created_at: from_millis(self.created_at),
            last_seen_at: from_millis(self.last_seen_at),
            second_factor_at: self.second_factor_at.map(from_millis),
            enrol_required: self.enrol_required != 0,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

#[async_trait]
impl SessionRepo for SqlTx {
    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()> {
        const Q: &str =
            concat!("INSERT INTO sessions (", session_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        on!(self, |c| sqlx::query(Q)
            .bind(&s.token_hash)
            .bind(s.tenant_id.to_string())
            .bind(s.user_id.to_string())
            .bind(&s.csrf_token)
            .bind(ms(s.created_at))
            .bind(ms(s.last_seen_at))
            .bind(s.second_factor_at.map(ms))
            .bind(i64::from(s.enrol_required))
            .bind(&s.ip)
            .bind(&s.user_agent)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>> {
        const Q: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE token_hash = $1");
        let row: Option<SessionRow> =
            on!(self, |c| sqlx::query_as(Q).bind(token_hash).fetch_optional(c).await).map_err(db)?;
        row.map(SessionRow::into_model).transpose()
    }

    async fn touch_session(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1";
        on!(self, |c| sqlx::query(Q).bind(token_hash).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        const Q: &str = "DELETE FROM sessions WHERE token_hash = $1";
        on!(self, |c| sqlx::query(Q).bind(token_hash).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(())
    }

    async fn list_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<SessionRecord>> {
        const Q: &str = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY last_seen_at DESC"
        );
        let rows: Vec<SessionRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, SessionRow::into_model)
    }

    async fn delete_other_sessions(&mut self, tenant: TenantId, user: UserId, keep: &str) -> Result<u64> {
        const Q: &str = "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND token_hash <> $3";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(keep)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)
    }

    async fn delete_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2";
        self.exec_for_user(Q, tenant, user).await.map(|_| ())
    }
}
