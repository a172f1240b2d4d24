//! Intrusion and anomaly detection in SQL: blocks, detections, failed sign-ins, baselines and known
//! addresses.

use super::{SqlTx, db, ms};
use crate::rows::{self, count, id, opt_id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{BlockId, TenantId, UserId};
use portcullis_core::model::{Baseline, Block, BlockScope, Detection, DetectionKind};
use portcullis_core::ports::IntrusionRepo;
use time::OffsetDateTime;

/// The columns of `security_blocks`, in the order `BlockRow` and the INSERT use.
macro_rules! block_columns {
    () => {
        "id, scope, tenant_id, user_id, ip, reason, detail, created_at, expires_at, lifted_at, lifted_by"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct BlockRow {
    id: String,
    scope: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    ip: Option<String>,
    reason: String,
    detail: String,
    created_at: i64,
    expires_at: Option<i64>,
    lifted_at: Option<i64>,
    lifted_by: Option<String>,
}

impl BlockRow {
    pub(crate) fn into_model(self) -> Result<Block> {
        Ok(Block {
            id: id(&self.id, portcullis_core::ids::BlockId::from_uuid)?,
            scope: BlockScope::parse(&self.scope)?,
            tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: opt_id(self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            ip: self.ip,
            reason: DetectionKind::parse(&self.reason)?,
            detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
            expires_at: self.expires_at.map(from_millis),
            lifted_at: self.lifted_at.map(from_millis),
            lifted_by: self.lifted_by,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DetectionRow {
    id: String,
    kind: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    ip: Option<String>,
    detail: String,
    created_at: i64,
}

impl DetectionRow {
    pub(crate) fn into_model(self) -> Result<Detection> {
        Ok(Detection {
            id: id(&self.id, portcullis_core::ids::DetectionId::from_uuid)?,
            kind: DetectionKind::parse(&self.kind)?,
            tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: opt_id(self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            ip: self.ip,
            detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BaselineRow {
    tenant_id: String,
    user_id: String,
    day: i64,
    day_count: i64,
    day_bytes: i64,
    avg_count: i64,
    avg_bytes: i64,
    days: i64,
    hours: String,
}

impl BaselineRow {
    pub(crate) fn into_model(self) -> Result<Baseline> {
        let hours: Vec<u32> = serde_json::from_str(&self.hours).map_err(Error::internal)?;
        Ok(Baseline {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            day: self.day,
            day_count: count(self.day_count)?,
            day_bytes: count(self.day_bytes)?,
            avg_count_milli: count(self.avg_count)?,
            avg_bytes_milli: count(self.avg_bytes)?,
            days: u32::try_from(self.days).map_err(Error::internal)?,
            hours: hours.try_into().map_err(|_| Error::internal("stored hours are not 24 counts"))?,
        })
    }
}

#[async_trait]
impl IntrusionRepo for SqlTx {
    async fn insert_block(&mut self, b: &Block) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO security_blocks (",
            block_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(b.id.to_string())
            .bind(b.scope.as_str())
            .bind(b.tenant_id.map(|t| t.to_string()))
            .bind(b.user_id.map(|u| u.to_string()))
            .bind(&b.ip)
            .bind(b.reason.as_str())
            .bind(b.detail.to_string())
            .bind(ms(b.created_at))
            .bind(b.expires_at.map(ms))
            .bind(b.lifted_at.map(ms))
            .bind(&b.lifted_by)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn block(&mut self, id: BlockId) -> Result<Option<Block>> {
        const Q: &str = concat!("SELECT ", block_columns!(), " FROM security_blocks WHERE id = $1");
        let row: Option<BlockRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(BlockRow::into_model).transpose()
    }

    async fn active_blocks(&mut self, tenant: Option<TenantId>, now: OffsetDateTime) -> Result<Vec<Block>> {
        const Q: &str = concat!(
            "SELECT ",
            block_columns!(),
            " FROM security_blocks WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
             AND (tenant_id = $1 OR ($1 IS NULL AND tenant_id IS NULL)) ORDER BY created_at DESC, id LIMIT 500"
        );
        let rows: Vec<BlockRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.map(|t| t.to_string())).bind(ms(now)).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, BlockRow::into_model)
    }

    async fn source_block(&mut self, ip: &str, now: OffsetDateTime) -> Result<Option<Block>> {
        const Q: &str = concat!(
            "SELECT ",
            block_columns!(),
            " FROM security_blocks WHERE ip = $1 AND scope = 'source' AND lifted_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC LIMIT 1"
        );
        let row: Option<BlockRow> =
            on!(self, |c| sqlx::query_as(Q).bind(ip).bind(ms(now)).fetch_optional(c).await).map_err(db)?;
        row.map(BlockRow::into_model).transpose()
    }

    async fn user_block(
        &mut self,
        tenant: TenantId,
        user: UserId,
        scope: BlockScope,
        now: OffsetDateTime,
    ) -> Result<Option<Block>> {
        const Q: &str = concat!(
            "SELECT ",
            block_columns!(),
            " FROM security_blocks WHERE tenant_id = $1 AND user_id = $2 AND scope = $3 AND lifted_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $4) ORDER BY created_at DESC LIMIT 1"
        );
        let row: Option<BlockRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(scope.as_str())
            .bind(ms(now))
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        row.map(BlockRow::into_model).transpose()
    }

    async fn lift_block(&mut self, id: BlockId, by: &str, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE security_blocks SET lifted_at = $2, lifted_by = $3 WHERE id = $1 AND lifted_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(ms(at))
            .bind(by)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_detection(&mut self, d: &Detection) -> Result<()> {
        const Q: &str = "INSERT INTO security_detections (id, kind, tenant_id, user_id, ip, detail, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on!(self, |c| sqlx::query(Q)
            .bind(d.id.to_string())
            .bind(d.kind.as_str())
            .bind(d.tenant_id.map(|t| t.to_string()))
            .bind(d.user_id.map(|u| u.to_string()))
            .bind(&d.ip)
            .bind(d.detail.to_string())
            .bind(ms(d.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn detections(&mut self, tenant: Option<TenantId>, limit: i64) -> Result<Vec<Detection>> {
        const Q: &str = "SELECT id, kind, tenant_id, user_id, ip, detail, created_at FROM security_detections \
                         WHERE tenant_id = $1 OR ($1 IS NULL AND tenant_id IS NULL) \
                         ORDER BY created_at DESC, id LIMIT $2";
        let rows: Vec<DetectionRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.map(|t| t.to_string())).bind(limit).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, DetectionRow::into_model)
    }

    async fn record_signin_failure(
        &mut self,
        ip: &str,
        target: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(u32, u32, u32)> {
        const PRUNE: &str = "DELETE FROM signin_failures WHERE at < $1";
        const INSERT: &str = "INSERT INTO signin_failures (ip, target, at) VALUES ($1, $2, $3)";
        const TARGETS: &str = "SELECT COUNT(DISTINCT target) FROM signin_failures WHERE ip = $1 AND at >= $2";
        const SOURCES: &str = "SELECT COUNT(DISTINCT ip) FROM signin_failures WHERE target = $1 AND at >= $2";
        const TRIES: &str = "SELECT COUNT(*) FROM signin_failures WHERE ip = $1 AND target = $2 AND at >= $3";
        self.advisory_lock("signin_failures").await?;
        on!(self, |c| sqlx::query(PRUNE).bind(ms(since)).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        on!(self, |c| sqlx::query(INSERT)
            .bind(ip)
            .bind(target)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        let targets: i64 =
            on!(self, |c| sqlx::query_scalar(TARGETS).bind(ip).bind(ms(since)).fetch_one(c).await).map_err(db)?;
        let sources: i64 =
            on!(self, |c| sqlx::query_scalar(SOURCES).bind(target).bind(ms(since)).fetch_one(c).await).map_err(db)?;
        let tries: i64 =
            on!(self, |c| sqlx::query_scalar(TRIES).bind(ip).bind(target).bind(ms(since)).fetch_one(c).await)
                .map_err(db)?;
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok((n(targets), n(sources), n(tries)))
    }

    async fn lock_user_counters(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        self.advisory_lock(&format!("user_counters:{tenant}:{user}")).await
    }

    async fn baseline(&mut self, tenant: TenantId, user: UserId) -> Result<Option<Baseline>> {
        const Q: &str = "SELECT tenant_id, user_id, day, day_count, day_bytes, avg_count, avg_bytes, days, hours \
                         FROM user_baselines WHERE tenant_id = $1 AND user_id = $2";
        let row: Option<BaselineRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(BaselineRow::into_model).transpose()
    }

    async fn save_baseline(&mut self, b: &Baseline) -> Result<()> {
        const Q: &str = "INSERT INTO user_baselines (tenant_id, user_id, day, day_count, day_bytes, avg_count, \
                         avg_bytes, days, hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (tenant_id, user_id) DO UPDATE SET day = excluded.day, \
                         day_count = excluded.day_count, day_bytes = excluded.day_bytes, \
                         avg_count = excluded.avg_count, avg_bytes = excluded.avg_bytes, days = excluded.days, \
                         hours = excluded.hours";
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let hours = serde_json::to_string(&b.hours.to_vec()).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(b.tenant_id.to_string())
            .bind(b.user_id.to_string())
            .bind(b.day)
            .bind(big(b.day_count))
            .bind(big(b.day_bytes))
            .bind(big(b.avg_count_milli))
            .bind(big(b.avg_bytes_milli))
            .bind(i64::from(b.days))
            .bind(&hours)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn remember_ip(&mut self, tenant: TenantId, user: UserId, ip: &str, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "INSERT INTO user_known_ips (tenant_id, user_id, ip, first_seen) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (tenant_id, user_id, ip) DO NOTHING";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(ip)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
}
