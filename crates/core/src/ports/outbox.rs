//! The mail outbox, and the depth of every work queue.

use crate::error::Result;
use crate::ids::{MailId, TenantId};
use crate::model::OutboxMail;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait OutboxRepo: Send {
    async fn insert_mail(&mut self, m: &OutboxMail) -> Result<()>;
    /// Unsent, not given up, due at `now`, of every tenant, oldest due first.
    async fn due_mail(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<OutboxMail>>;
    /// Take a mail for sending: move its due time to `until` if it is still `seen` (the value
    /// read with it), so of several nodes only one wins. False if another node took it.
    async fn lease_mail(
        &mut self,
        tenant: TenantId,
        id: MailId,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool>;
    async fn mark_mail_sent(&mut self, tenant: TenantId, id: MailId, at: OffsetDateTime) -> Result<()>;
    /// Record a failed attempt: the attempt count, the error, and either the next due time or
    /// (`failed_at`) that sending is given up.
    async fn record_mail_failure(
        &mut self,
        tenant: TenantId,
        id: MailId,
        attempts: u32,
        error: &str,
        next_attempt_at: OffsetDateTime,
        failed_at: Option<OffsetDateTime>,
    ) -> Result<()>;
    /// How much work waits in the mail outbox, the alert deliveries and the export jobs.
    async fn queue_depths(&mut self) -> Result<Vec<crate::model::QueueDepth>>;
}
