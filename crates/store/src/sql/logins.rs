//! Sign-in throttling in SQL: the failure count and lock of each account.

use super::{SqlTx, db, ms};
use async_trait::async_trait;
use portcullis_core::authn::lockout::{self, Lock};
use portcullis_core::error::Result;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::ports::LoginRepo;
use time::OffsetDateTime;

#[async_trait]
impl LoginRepo for SqlTx {
    async fn login_lock(&mut self, tenant: TenantId, user: UserId) -> Result<Lock> {
        const Q: &str = "SELECT locked_until, hard_locked FROM users WHERE tenant_id = $1 AND id = $2";
        let row: Option<(Option<i64>, i64)> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        Ok(match row {
            Some((_, hard)) if hard != 0 => Lock::Hard,
            Some((Some(until), _)) => Lock::Until(portcullis_core::clock::from_millis(until)),
            _ => Lock::Open,
        })
    }

    async fn record_login_failure(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<u32> {
        const COUNT: &str = "UPDATE users SET failed_logins = failed_logins + 1 WHERE tenant_id = $1 AND id = $2 \
                             RETURNING failed_logins";
        const LOCK: &str = "UPDATE users SET locked_until = $3, hard_locked = $4 WHERE tenant_id = $1 AND id = $2";
        let (t, u) = (tenant.to_string(), user.to_string());
        let n: i64 = on!(self, |c| sqlx::query_scalar(COUNT).bind(&t).bind(&u).fetch_one(c).await).map_err(db)?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let (until, hard) = match lockout::after_failure(n, at) {
            Lock::Open => (None, 0i64),
            Lock::Until(t) => (Some(ms(t)), 0),
            Lock::Hard => (None, 1),
        };
        on!(self, |c| sqlx::query(LOCK)
            .bind(&t)
            .bind(&u)
            .bind(until)
            .bind(hard)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n)
    }

    async fn reset_login_failures(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "UPDATE users SET failed_logins = 0, locked_until = NULL, hard_locked = 0 \
                         WHERE tenant_id = $1 AND id = $2 AND (failed_logins <> 0 OR hard_locked <> 0)";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}
