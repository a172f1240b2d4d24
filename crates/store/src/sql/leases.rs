//! Leases in SQL (see migration 0021).

use super::{SqlTx, db, ms};
use async_trait::async_trait;
use portcullis_core::error::Result;
use portcullis_core::ports::LeaseRepo;
use time::OffsetDateTime;

#[async_trait]
impl LeaseRepo for SqlTx {
    async fn take_lease(
        &mut self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                         WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(name)
            .bind(holder)
            .bind(ms(until))
            .bind(ms(now))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()> {
        const Q: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
        on!(self, |c| sqlx::query(Q).bind(name).bind(holder).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }

    async fn lease_held(&mut self, name: &str, now: OffsetDateTime) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM leases WHERE name = $1 AND expires_at > $2";
        let n: i64 = on!(self, |c| sqlx::query_scalar(Q).bind(name).bind(ms(now)).fetch_one(c).await).map_err(db)?;
        Ok(n > 0)
    }

    async fn leases_held(&mut self, prefix: &str, now: OffsetDateTime) -> Result<i64> {
        // A prefix match without LIKE, so no character of the prefix is a wildcard.
        const Q: &str = "SELECT COUNT(*) FROM leases WHERE substr(name, 1, length($1)) = $1 AND expires_at > $2";
        on!(self, |c| sqlx::query_scalar(Q).bind(prefix).bind(ms(now)).fetch_one(c).await).map_err(db)
    }
}
