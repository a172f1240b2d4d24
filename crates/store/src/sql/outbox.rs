//! The mail outbox in SQL, and the depth of every work queue.

use super::{OutboxSql, SqlTx, db, ms};
use crate::rows::{self, DeliveryStateRow, id};
use async_trait::async_trait;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{MailId, TenantId};
use portcullis_core::model::{MailKind, OutboxMail};
use portcullis_core::ports::OutboxRepo;
use time::OffsetDateTime;

/// The columns of `mail_outbox`, in the order `MailRow` and the INSERT use.
macro_rules! mail_columns {
    () => {
        "id, tenant_id, user_id, kind, detail, created_at, attempts, next_attempt_at, sent_at, failed_at, last_error"
    };
}

const MAIL_OUTBOX: OutboxSql = outbox_sql!("mail_outbox", "tenant_id", mail_columns!());

#[derive(sqlx::FromRow)]
pub(crate) struct MailRow {
    id: String,
    tenant_id: String,
    user_id: String,
    kind: String,
    detail: String,
    #[sqlx(flatten)]
    delivery: DeliveryStateRow,
}

impl MailRow {
    pub(crate) fn into_model(self) -> Result<OutboxMail> {
        Ok(OutboxMail {
            id: id(&self.id, portcullis_core::ids::MailId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            kind: MailKind::parse(&self.kind)?,
            detail: serde_json::from_str(&self.detail).map_err(Error::internal)?,
            delivery: self.delivery.into_model()?,
        })
    }
}

#[async_trait]
impl OutboxRepo for SqlTx {
    async fn insert_mail(&mut self, m: &OutboxMail) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO mail_outbox (",
            mail_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(m.id.to_string())
            .bind(m.tenant_id.to_string())
            .bind(m.user_id.to_string())
            .bind(m.kind.as_str())
            .bind(m.detail.to_string())
            .bind(ms(m.delivery.created_at))
            .bind(i64::from(m.delivery.attempts))
            .bind(ms(m.delivery.next_attempt_at))
            .bind(m.delivery.sent_at.map(ms))
            .bind(m.delivery.failed_at.map(ms))
            .bind(&m.delivery.last_error)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn due_mail(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<OutboxMail>> {
        rows::all(self.outbox_due(&MAIL_OUTBOX, now, limit).await?, MailRow::into_model)
    }

    async fn lease_mail(
        &mut self,
        tenant: TenantId,
        id: MailId,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        self.outbox_lease(&MAIL_OUTBOX, (tenant.to_string(), id.to_string()), seen, until).await
    }

    async fn mark_mail_sent(&mut self, tenant: TenantId, id: MailId, at: OffsetDateTime) -> Result<()> {
        self.outbox_sent(&MAIL_OUTBOX, (tenant.to_string(), id.to_string()), at).await
    }

    async fn record_mail_failure(
        &mut self,
        tenant: TenantId,
        id: MailId,
        attempts: u32,
        error: &str,
        next_attempt_at: OffsetDateTime,
        failed_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let key = (tenant.to_string(), id.to_string());
        self.outbox_failure(&MAIL_OUTBOX, key, attempts, Some(error), next_attempt_at, failed_at).await
    }

    async fn queue_depths(&mut self) -> Result<Vec<portcullis_core::model::QueueDepth>> {
        // The due indexes cover the waiting rows of the outboxes; exports are few.
        const Q: &str = "SELECT 'mail', COUNT(*), MIN(created_at) FROM mail_outbox \
                         WHERE sent_at IS NULL AND failed_at IS NULL \
                         UNION ALL SELECT 'alerts', COUNT(*), MIN(created_at) FROM alert_deliveries \
                         WHERE sent_at IS NULL AND failed_at IS NULL \
                         UNION ALL SELECT 'exports', COUNT(*), MIN(created_at) FROM tenant_exports \
                         WHERE state = 'pending'";
        let rows: Vec<(String, i64, Option<i64>)> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(queue, waiting, oldest)| {
                let queue = ["mail", "alerts", "exports"].into_iter().find(|q| *q == queue)?;
                Some(portcullis_core::model::QueueDepth {
                    queue,
                    waiting,
                    oldest_at: oldest.map(portcullis_core::clock::from_millis),
                })
            })
            .collect())
    }
}
