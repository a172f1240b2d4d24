//! Security alerts and their deliveries in SQL.

use super::{OutboxSql, SqlTx, db, ms};
use crate::rows::{self, DeliveryStateRow, id, opt_id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::AlertId;
use portcullis_core::model::{Alert, AlertChannel, AlertDelivery, AlertKind, NewAlert, Notice, Severity};
use portcullis_core::ports::AlertRepo;
use time::OffsetDateTime;

/// The columns of `alerts`, in the order `AlertRow` and the INSERT use.
macro_rules! alert_columns {
    () => {
        "id, kind, severity, tenant_id, subject, summary, detail, dedup_key, occurrences, first_at, last_at, \
         window_end, dispatched_at, follow_up_dispatched_at"
    };
}

/// The columns of `alert_deliveries`, in the order `DeliveryRow` and the INSERT use.
macro_rules! delivery_columns {
    () => {
        "id, alert_id, channel, recipient, notice, created_at, attempts, next_attempt_at, sent_at, failed_at, \
         last_error"
    };
}

const ALERT_OUTBOX: OutboxSql = outbox_sql!("alert_deliveries", "alert_id", delivery_columns!());

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: String,
    kind: String,
    severity: String,
    tenant_id: Option<String>,
    subject: String,
    summary: String,
    detail: String,
    dedup_key: String,
    occurrences: i64,
    first_at: i64,
    last_at: i64,
    window_end: i64,
    dispatched_at: Option<i64>,
    follow_up_dispatched_at: Option<i64>,
}

impl AlertRow {
    pub(crate) fn into_model(self) -> Result<Alert> {
        Ok(Alert {
            id: id(&self.id, portcullis_core::ids::AlertId::from_uuid)?,
            facts: NewAlert {
                kind: AlertKind::parse(&self.kind)?,
                severity: Severity::parse(&self.severity)?,
                tenant_id: opt_id(self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
                subject: self.subject,
                summary: self.summary,
                detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            },
            dedup_key: self.dedup_key,
            occurrences: u32::try_from(self.occurrences).map_err(Error::internal)?,
            first_at: from_millis(self.first_at),
            last_at: from_millis(self.last_at),
            window_end: from_millis(self.window_end),
            dispatched_at: self.dispatched_at.map(from_millis),
            follow_up_dispatched_at: self.follow_up_dispatched_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: String,
    alert_id: String,
    channel: String,
    recipient: Option<String>,
    notice: String,
    #[sqlx(flatten)]
    delivery: DeliveryStateRow,
}

impl DeliveryRow {
    pub(crate) fn into_model(self) -> Result<AlertDelivery> {
        Ok(AlertDelivery {
            id: id(&self.id, portcullis_core::ids::DeliveryId::from_uuid)?,
            alert_id: id(&self.alert_id, portcullis_core::ids::AlertId::from_uuid)?,
            channel: AlertChannel::parse(&self.channel)?,
            recipient: self.recipient,
            notice: Notice::parse(&self.notice)?,
            delivery: self.delivery.into_model()?,
        })
    }
}

#[async_trait]
impl AlertRepo for SqlTx {
    async fn record_alert(&mut self, a: &Alert) -> Result<(AlertId, u32)> {
        // A repeat within the window only counts; the first occurrence's facts stay.
        const Q: &str = concat!(
            "INSERT INTO alerts (",
            alert_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (dedup_key) DO UPDATE SET occurrences = alerts.occurrences + 1, \
             last_at = excluded.last_at RETURNING id, occurrences"
        );
        let (id, n): (String, i64) = on!(self, |c| sqlx::query_as(Q)
            .bind(a.id.to_string())
            .bind(a.facts.kind.as_str())
            .bind(a.facts.severity.as_str())
            .bind(a.facts.tenant_id.map(|t| t.to_string()))
            .bind(&a.facts.subject)
            .bind(&a.facts.summary)
            .bind(a.facts.detail.to_string())
            .bind(&a.dedup_key)
            .bind(i64::from(a.occurrences))
            .bind(ms(a.first_at))
            .bind(ms(a.last_at))
            .bind(ms(a.window_end))
            .bind(a.dispatched_at.map(ms))
            .bind(a.follow_up_dispatched_at.map(ms))
            .fetch_one(c)
            .await)
        .map_err(db)?;
        Ok((rows::id(&id, AlertId::from_uuid)?, u32::try_from(n).map_err(Error::internal)?))
    }

    async fn alert(&mut self, id: AlertId) -> Result<Option<Alert>> {
        const Q: &str = concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1");
        let row: Option<AlertRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(AlertRow::into_model).transpose()
    }

    async fn alerts_to_dispatch(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Alert>> {
        const Q: &str = concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE dispatched_at IS NULL \
             OR (follow_up_dispatched_at IS NULL AND occurrences > 1 AND window_end <= $1) \
             ORDER BY first_at LIMIT $2"
        );
        let rows: Vec<AlertRow> =
            on!(self, |c| sqlx::query_as(Q).bind(ms(now)).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, AlertRow::into_model)
    }

    async fn claim_alert_dispatch(&mut self, id: AlertId, notice: Notice, at: OffsetDateTime) -> Result<bool> {
        const FIRST: &str = "UPDATE alerts SET dispatched_at = $2, follow_up_dispatched_at = \
                             CASE WHEN window_end <= $2 THEN $2 ELSE NULL END \
                             WHERE id = $1 AND dispatched_at IS NULL";
        const FOLLOW_UP: &str = "UPDATE alerts SET follow_up_dispatched_at = $2 WHERE id = $1 \
                                 AND dispatched_at IS NOT NULL AND follow_up_dispatched_at IS NULL \
                                 AND occurrences > 1 AND window_end <= $2";
        let q = match notice {
            Notice::First => FIRST,
            Notice::FollowUp => FOLLOW_UP,
        };
        let n =
            on!(self, |c| sqlx::query(q).bind(id.to_string()).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_alert_delivery(&mut self, d: &AlertDelivery) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO alert_deliveries (",
            delivery_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(d.id.to_string())
            .bind(d.alert_id.to_string())
            .bind(d.channel.as_str())
            .bind(&d.recipient)
            .bind(d.notice.as_str())
            .bind(ms(d.delivery.created_at))
            .bind(i64::from(d.delivery.attempts))
            .bind(ms(d.delivery.next_attempt_at))
            .bind(d.delivery.sent_at.map(ms))
            .bind(d.delivery.failed_at.map(ms))
            .bind(&d.delivery.last_error)
            .execute(c)
            .await
            .map(|_| ()))
        .map_err(db)
    }

    async fn due_alert_deliveries(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<AlertDelivery>> {
        rows::all(self.outbox_due(&ALERT_OUTBOX, now, limit).await?, DeliveryRow::into_model)
    }

    async fn lease_alert_delivery(&mut self, d: &AlertDelivery, until: OffsetDateTime) -> Result<bool> {
        let key = (d.alert_id.to_string(), d.id.to_string());
        self.outbox_lease(&ALERT_OUTBOX, key, d.delivery.next_attempt_at, until).await
    }

    async fn mark_alert_delivery_sent(&mut self, d: &AlertDelivery, at: OffsetDateTime) -> Result<()> {
        self.outbox_sent(&ALERT_OUTBOX, (d.alert_id.to_string(), d.id.to_string()), at).await
    }

    async fn record_alert_delivery_failure(&mut self, d: &AlertDelivery) -> Result<()> {
        let key = (d.alert_id.to_string(), d.id.to_string());
        let s = &d.delivery;
        self.outbox_failure(&ALERT_OUTBOX, key, s.attempts, s.last_error.as_deref(), s.next_attempt_at, s.failed_at)
            .await
    }
}
