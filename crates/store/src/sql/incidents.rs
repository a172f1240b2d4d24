//! Incidents and breach notices in SQL.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{IncidentId, TenantId};
use portcullis_core::incidents::{BreachNotice, IncidentRecord};
use portcullis_core::ports::IncidentRepo;
use time::OffsetDateTime;

/// The columns of `incidents`, in the order `IncidentRow` and the INSERT use.
macro_rules! incident_columns {
    () => {
        "id, reference, kind, severity, state, reported_at, triage_due, triage_alerted_at, assignee, version, key_id, \
         wrapped_key, body"
    };
}

/// A row of `incidents`, in the order of `incident_columns!`.
#[derive(sqlx::FromRow)]
pub(crate) struct IncidentRow {
    id: String,
    reference: String,
    kind: String,
    severity: String,
    state: String,
    reported_at: i64,
    triage_due: i64,
    triage_alerted_at: Option<i64>,
    assignee: Option<String>,
    version: i64,
    key_id: String,
    wrapped_key: String,
    body: String,
}

impl IncidentRow {
    pub(crate) fn into_model(self) -> Result<portcullis_core::incidents::IncidentRecord> {
        use portcullis_core::incidents::{IncidentKind, IncidentRecord, IncidentSeverity, IncidentState};
        Ok(IncidentRecord {
            id: id(&self.id, portcullis_core::ids::IncidentId::from_uuid)?,
            reference: self.reference,
            kind: IncidentKind::parse(&self.kind)?,
            severity: IncidentSeverity::parse(&self.severity)?,
            state: IncidentState::parse(&self.state)?,
            reported_at: from_millis(self.reported_at),
            triage_due: from_millis(self.triage_due),
            triage_alerted_at: self.triage_alerted_at.map(from_millis),
            assignee: self
                .assignee
                .as_deref()
                .map(|a| id(a, portcullis_core::ids::OperatorId::from_uuid))
                .transpose()?,
            version: self.version,
            key_id: self.key_id,
            wrapped_key: hex::decode(&self.wrapped_key)
                .map_err(|_| Error::internal("a stored incident key is not hexadecimal"))?,
            body: self.body,
        })
    }
}

#[async_trait]
impl IncidentRepo for SqlTx {
    async fn insert_incident(&mut self, i: &IncidentRecord) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO incidents (",
            incident_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(i.id.to_string())
            .bind(&i.reference)
            .bind(i.kind.as_str())
            .bind(i.severity.as_str())
            .bind(i.state.as_str())
            .bind(ms(i.reported_at))
            .bind(ms(i.triage_due))
            .bind(i.triage_alerted_at.map(ms))
            .bind(i.assignee.map(|a| a.to_string()))
            .bind(i.version)
            .bind(&i.key_id)
            .bind(hex::encode(&i.wrapped_key))
            .bind(&i.body)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn incident(&mut self, id: IncidentId) -> Result<Option<IncidentRecord>> {
        const Q: &str = concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id = $1");
        let row: Option<IncidentRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(IncidentRow::into_model).transpose()
    }

    async fn list_incidents(&mut self, limit: i64) -> Result<Vec<IncidentRecord>> {
        const Q: &str =
            concat!("SELECT ", incident_columns!(), " FROM incidents ORDER BY reported_at DESC, id LIMIT $1");
        let rows: Vec<IncidentRow> = on!(self, |c| sqlx::query_as(Q).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, IncidentRow::into_model)
    }

    async fn update_incident(&mut self, i: &IncidentRecord) -> Result<bool> {
        const Q: &str = "UPDATE incidents SET severity = $2, state = $3, triage_alerted_at = $4, assignee = $5, \
                         version = $6, key_id = $7, wrapped_key = $8, body = $9 WHERE id = $1 AND version = $10";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(i.id.to_string())
            .bind(i.severity.as_str())
            .bind(i.state.as_str())
            .bind(i.triage_alerted_at.map(ms))
            .bind(i.assignee.map(|a| a.to_string()))
            .bind(i.version)
            .bind(&i.key_id)
            .bind(hex::encode(&i.wrapped_key))
            .bind(&i.body)
            .bind(i.version - 1)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn triage_overdue(&mut self, now: OffsetDateTime) -> Result<Vec<IncidentRecord>> {
        const Q: &str = concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE state = 'reported' AND triage_due <= $1 AND triage_alerted_at IS NULL \
             ORDER BY triage_due LIMIT 100"
        );
        let rows: Vec<IncidentRow> = on!(self, |c| sqlx::query_as(Q).bind(ms(now)).fetch_all(c).await).map_err(db)?;
        rows::all(rows, IncidentRow::into_model)
    }

    async fn insert_breach_notice(&mut self, n: &BreachNotice, tenant: TenantId) -> Result<()> {
        const Q: &str =
            "INSERT INTO breach_notices (incident_id, tenant_id, notified_at, detail) VALUES ($1, $2, $3, $4)";
        let detail = serde_json::to_string(n).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(n.incident_id.to_string())
            .bind(tenant.to_string())
            .bind(ms(n.notified_at))
            .bind(&detail)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn breach_notices(&mut self, tenant: TenantId, since: OffsetDateTime) -> Result<Vec<BreachNotice>> {
        const Q: &str = "SELECT detail FROM breach_notices WHERE tenant_id = $1 AND notified_at >= $2 \
                         ORDER BY notified_at DESC LIMIT 50";
        let rows: Vec<(String,)> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(ms(since)).fetch_all(c).await).map_err(db)?;
        rows.into_iter()
            .map(|(d,)| serde_json::from_str(&d).map_err(|_| Error::internal("a stored breach notice is not JSON")))
            .collect()
    }
}
