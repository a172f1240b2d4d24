//! Subscription lifecycle and the erasure ledger in SQL: tenant status, retention notices, the
//! ledger rows, and the one statement per table that removes a destroyed tenant's rows.

use super::tenants::TenantRow;
use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::TenantId;
use portcullis_core::model::{ErasureReason, ErasureRecord, Tenant, TenantStatus};
use portcullis_core::ports::LifecycleRepo;
use time::OffsetDateTime;

/// Every table that holds rows of a tenant, with the statement that deletes them (`$1` is the
/// tenant's id), in an order the foreign keys accept. A table added to the schema with a
/// `tenant_id`, `user_id` or `chain` column must be added here: the test below fails until it is.
pub(crate) const TENANT_TABLES: &[(&str, &str)] = &[
    ("alert_deliveries", "DELETE FROM alert_deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE tenant_id = $1)"),
    ("alerts", "DELETE FROM alerts WHERE tenant_id = $1"),
    ("breach_notices", "DELETE FROM breach_notices WHERE tenant_id = $1"),
    ("document_flags", "DELETE FROM document_flags WHERE tenant_id = $1"),
    ("download_usage", "DELETE FROM download_usage WHERE tenant_id = $1"),
    ("documents", "DELETE FROM documents WHERE tenant_id = $1"),
    ("messages", "DELETE FROM messages WHERE tenant_id = $1"),
    ("matter_members", "DELETE FROM matter_members WHERE tenant_id = $1"),
    ("matters", "DELETE FROM matters WHERE tenant_id = $1"),
    ("approvals", "DELETE FROM approvals WHERE tenant_id = $1"),
    ("mail_outbox", "DELETE FROM mail_outbox WHERE tenant_id = $1"),
    ("known_devices", "DELETE FROM known_devices WHERE tenant_id = $1"),
    ("passkeys", "DELETE FROM passkeys WHERE tenant_id = $1"),
    ("webauthn_challenges", "DELETE FROM webauthn_challenges WHERE tenant_id = $1"),
    ("user_totp", "DELETE FROM user_totp WHERE tenant_id = $1"),
    ("totp_enrolments", "DELETE FROM totp_enrolments WHERE tenant_id = $1"),
    ("recovery_codes", "DELETE FROM recovery_codes WHERE tenant_id = $1"),
    ("sessions", "DELETE FROM sessions WHERE tenant_id = $1"),
    ("api_tokens", "DELETE FROM api_tokens WHERE tenant_id = $1"),
    ("links", "DELETE FROM links WHERE tenant_id = $1"),
    ("security_blocks", "DELETE FROM security_blocks WHERE tenant_id = $1"),
    ("security_detections", "DELETE FROM security_detections WHERE tenant_id = $1"),
    ("user_baselines", "DELETE FROM user_baselines WHERE tenant_id = $1"),
    ("user_known_ips", "DELETE FROM user_known_ips WHERE tenant_id = $1"),
    // Failed sign-ins name a known account by its user id.
    ("signin_failures", "DELETE FROM signin_failures WHERE target IN (SELECT id FROM users WHERE tenant_id = $1)"),
    ("key_rotations", "DELETE FROM key_rotations WHERE tenant_id = $1"),
    ("blob_garbage", "DELETE FROM blob_garbage WHERE tenant_id = $1"),
    ("tenant_exports", "DELETE FROM tenant_exports WHERE tenant_id = $1"),
    ("tenant_keys", "DELETE FROM tenant_keys WHERE tenant_id = $1"),
    ("tenant_protection", "DELETE FROM tenant_protection WHERE tenant_id = $1"),
    ("retention_notices", "DELETE FROM retention_notices WHERE tenant_id = $1"),
    ("users", "DELETE FROM users WHERE tenant_id = $1"),
    // The tenant's audit chain: allowed by the database only once the ledger records the
    // crypto-shred (see migration 0022).
    ("audit_events", "DELETE FROM audit_events WHERE chain = $1"),
    ("audit_heads", "DELETE FROM audit_heads WHERE chain = $1"),
    ("audit_checkpoints", "DELETE FROM audit_checkpoints WHERE chain = $1"),
    ("tenants", "DELETE FROM tenants WHERE id = $1"),
];

/// The columns of `tenant_erasures`, in the order `ErasureRow` and the INSERT use.
macro_rules! erasure_columns {
    () => {
        "tenant_id, tenant_name, reason, requested_by, approved_by, requested_at, approved_at, keys_destroyed_at, \
         audit_seq, audit_head, finished_at, counts, certificate, notify_to, notified_at, synced_to_backups_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct ErasureRow {
    tenant_id: String,
    tenant_name: String,
    reason: String,
    requested_by: String,
    approved_by: Option<String>,
    requested_at: i64,
    approved_at: Option<i64>,
    keys_destroyed_at: Option<i64>,
    audit_seq: Option<i64>,
    audit_head: Option<String>,
    finished_at: Option<i64>,
    counts: String,
    certificate: Option<String>,
    notify_to: String,
    notified_at: Option<i64>,
    synced_to_backups_at: Option<i64>,
}

impl ErasureRow {
    pub(crate) fn into_model(self) -> Result<ErasureRecord> {
        Ok(ErasureRecord {
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            tenant_name: self.tenant_name,
            reason: ErasureReason::parse(&self.reason)?,
            requested_by: self.requested_by,
            approved_by: self.approved_by,
            requested_at: from_millis(self.requested_at),
            approved_at: self.approved_at.map(from_millis),
            keys_destroyed_at: self.keys_destroyed_at.map(from_millis),
            audit_seq: self.audit_seq,
            audit_head: self.audit_head,
            finished_at: self.finished_at.map(from_millis),
            counts: serde_json::from_str(&self.counts).map_err(Error::internal)?,
            certificate: self.certificate,
            notify_to: serde_json::from_str(&self.notify_to).map_err(Error::internal)?,
            notified_at: self.notified_at.map(from_millis),
            synced_to_backups_at: self.synced_to_backups_at.map(from_millis),
        })
    }
}

fn json(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

fn json_list(v: &[String]) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

impl SqlTx {
    /// Ledger rows matching `cond` (a constant SQL condition with at most one `$1` text bind).
    async fn lc_erasures(&mut self, cond: &'static str, bind: Option<String>) -> Result<Vec<ErasureRecord>> {
        let q = sqlx::AssertSqlSafe(format!("SELECT {} FROM tenant_erasures WHERE {cond}", erasure_columns!()));
        let rows: Vec<ErasureRow> = match bind {
            Some(b) => on!(self, |c| sqlx::query_as(q).bind(b).fetch_all(c).await),
            None => on!(self, |c| sqlx::query_as(q).fetch_all(c).await),
        }
        .map_err(db)?;
        rows::all(rows, ErasureRow::into_model)
    }
}

#[async_trait]
impl LifecycleRepo for SqlTx {
    async fn set_tenant_status(
        &mut self,
        tenant: TenantId,
        status: TenantStatus,
        ended_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        const Q: &str = "UPDATE tenants SET status = $2, ended_at = $3 WHERE id = $1";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(status.as_str())
            .bind(ended_at.map(ms))
            .execute(c)
            .await
            .map(|_| ()))
        .map_err(db)
    }
    async fn revoke_tenant_access(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<(u64, u64)> {
        const SESSIONS: &str = "DELETE FROM sessions WHERE tenant_id = $1";
        const TOKENS: &str = "UPDATE api_tokens SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL";
        let t = tenant.to_string();
        let s =
            on!(self, |c| sqlx::query(SESSIONS).bind(&t).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        let k = on!(self, |c| sqlx::query(TOKENS).bind(&t).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok((s, k))
    }
    async fn ended_tenants(&mut self) -> Result<Vec<Tenant>> {
        const Q: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE status = 'ended' ORDER BY ended_at");
        let rows: Vec<TenantRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, TenantRow::into_model)
    }
    async fn record_retention_notice(
        &mut self,
        tenant: TenantId,
        ended_at: OffsetDateTime,
        days_before: u32,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "INSERT INTO retention_notices (tenant_id, ended_at, days_before, queued_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, ended_at, days_before) DO NOTHING";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(ms(ended_at))
            .bind(i64::from(days_before))
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_erasure(&mut self, e: &ErasureRecord) -> Result<bool> {
        const Q: &str = concat!(
            "INSERT INTO tenant_erasures (",
            erasure_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (tenant_id) DO NOTHING"
        );
        let (counts, notify) = (json(&e.counts)?, json_list(&e.notify_to)?);
        let n = on!(self, |c| sqlx::query(Q)
            .bind(e.tenant_id.to_string())
            .bind(&e.tenant_name)
            .bind(e.reason.as_str())
            .bind(&e.requested_by)
            .bind(&e.approved_by)
            .bind(ms(e.requested_at))
            .bind(e.approved_at.map(ms))
            .bind(e.keys_destroyed_at.map(ms))
            .bind(e.audit_seq)
            .bind(&e.audit_head)
            .bind(e.finished_at.map(ms))
            .bind(&counts)
            .bind(&e.certificate)
            .bind(&notify)
            .bind(e.notified_at.map(ms))
            .bind(e.synced_to_backups_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn erasure(&mut self, tenant: TenantId) -> Result<Option<ErasureRecord>> {
        Ok(self.lc_erasures("tenant_id = $1", Some(tenant.to_string())).await?.into_iter().next())
    }
    async fn erasure_by_name(&mut self, name: &str) -> Result<Option<ErasureRecord>> {
        Ok(self.lc_erasures("tenant_name = $1", Some(name.to_string())).await?.into_iter().next())
    }
    async fn open_erasures(&mut self) -> Result<Vec<ErasureRecord>> {
        self.lc_erasures("finished_at IS NULL ORDER BY requested_at", None).await
    }
    async fn erasures_to_notify(&mut self) -> Result<Vec<ErasureRecord>> {
        self.lc_erasures("finished_at IS NOT NULL AND notified_at IS NULL ORDER BY finished_at", None).await
    }
    async fn unsynced_erasures(&mut self) -> Result<Vec<ErasureRecord>> {
        self.lc_erasures("finished_at IS NOT NULL AND synced_to_backups_at IS NULL ORDER BY finished_at", None).await
    }
    async fn erasure_keys_destroyed(&mut self, e: &ErasureRecord) -> Result<bool> {
        const Q: &str = "UPDATE tenant_erasures SET keys_destroyed_at = $2, counts = $3, audit_seq = $4, \
                         audit_head = $5 WHERE tenant_id = $1 AND keys_destroyed_at IS NULL";
        let counts = json(&e.counts)?;
        let n = on!(self, |c| sqlx::query(Q)
            .bind(e.tenant_id.to_string())
            .bind(e.keys_destroyed_at.map(ms))
            .bind(&counts)
            .bind(e.audit_seq)
            .bind(&e.audit_head)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn tenant_blob_keys(&mut self, tenant: TenantId) -> Result<Vec<String>> {
        const DOCS: &str = "SELECT id, blob_rev FROM documents WHERE tenant_id = $1 ORDER BY id";
        const GARBAGE: &str = "SELECT blob_key FROM blob_garbage WHERE tenant_id = $1 ORDER BY blob_key";
        let t = tenant.to_string();
        let docs: Vec<(String, String)> =
            on!(self, |c| sqlx::query_as(DOCS).bind(&t).fetch_all(c).await).map_err(db)?;
        let mut keys = docs
            .into_iter()
            .map(|(id, rev)| {
                let doc = rows::id(&id, portcullis_core::ids::DocumentId::from_uuid)?;
                Ok(portcullis_core::model::blob_key(tenant, doc, &rev))
            })
            .collect::<Result<Vec<_>>>()?;
        let garbage: Vec<String> =
            on!(self, |c| sqlx::query_scalar(GARBAGE).bind(&t).fetch_all(c).await).map_err(db)?;
        keys.extend(garbage);
        keys.extend(self.exp_blob_keys(tenant).await?);
        Ok(keys)
    }
    async fn delete_tenant_rows(&mut self, tenant: TenantId) -> Result<Vec<(String, u64)>> {
        let t = tenant.to_string();
        let mut out = Vec::with_capacity(TENANT_TABLES.len());
        for (table, q) in TENANT_TABLES {
            let n = on!(self, |c| sqlx::query(*q).bind(&t).execute(c).await.map(|r| r.rows_affected()))
                .map_err(|e| Error::internal(format!("deleting the tenant's rows of {table}: {e}")))?;
            out.push(((*table).to_string(), n));
        }
        Ok(out)
    }
    async fn finish_erasure(&mut self, e: &ErasureRecord) -> Result<bool> {
        const Q: &str = "UPDATE tenant_erasures SET finished_at = $2, counts = $3, certificate = $4 \
                         WHERE tenant_id = $1 AND finished_at IS NULL";
        let counts = json(&e.counts)?;
        let n = on!(self, |c| sqlx::query(Q)
            .bind(e.tenant_id.to_string())
            .bind(e.finished_at.map(ms))
            .bind(&counts)
            .bind(&e.certificate)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn erasure_notified(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE tenant_erasures SET notified_at = $2, notify_to = '[]' WHERE tenant_id = $1";
        on!(self, |c| sqlx::query(Q).bind(tenant.to_string()).bind(ms(at)).execute(c).await.map(|_| ())).map_err(db)
    }
    async fn mark_erasure_synced(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE tenant_erasures SET synced_to_backups_at = $2 \
                         WHERE tenant_id = $1 AND finished_at IS NOT NULL AND synced_to_backups_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table that can hold a tenant's rows is in `TENANT_TABLES`, so a destruction misses
    /// none (the ledger itself, which outlives the tenant, is the one exception).
    #[tokio::test]
    async fn every_table_with_tenant_rows_is_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = crate::SqlStore::open(&url).await.unwrap();
        let super::super::Pool::Sqlite(pool) = &store.pool else { unreachable!() };
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name IN ('tenant_id', 'user_id', 'chain') ORDER BY m.name",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let covered: Vec<&str> = TENANT_TABLES.iter().map(|(t, _)| *t).collect();
        let missing: Vec<&String> =
            tables.iter().filter(|t| !covered.contains(&t.as_str()) && *t != "tenant_erasures").collect();
        assert!(missing.is_empty(), "tables with tenant rows not destroyed: {missing:?}");
        assert!(tables.len() > 20, "{tables:?}");
        store.close().await;
    }
}
