//! Security alerts and their outbox (see `service::alerts`).

use crate::error::Result;
use crate::ids::AlertId;
use crate::model::{Alert, AlertDelivery, Notice};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait AlertRepo: Send {
    /// Record an occurrence: a new alert, or, if one with the same `dedup_key` exists, one more
    /// occurrence of it (count and last time). Atomic, so concurrent nodes count one alert.
    /// Returns the stored alert's id and its occurrences.
    async fn record_alert(&mut self, a: &Alert) -> Result<(AlertId, u32)>;
    async fn alert(&mut self, id: AlertId) -> Result<Option<Alert>>;
    /// Alerts whose first notice is not queued yet, or whose follow-up is due at `now` and not
    /// queued yet; oldest first.
    async fn alerts_to_dispatch(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Alert>>;
    /// Claim the queueing of a notice, so of several nodes only one queues it; false if another
    /// node did. Claiming the first notice at or after the window's end claims the follow-up too
    /// (the first notice then carries the final count).
    async fn claim_alert_dispatch(&mut self, id: AlertId, notice: Notice, at: OffsetDateTime) -> Result<bool>;
    async fn insert_alert_delivery(&mut self, d: &AlertDelivery) -> Result<()>;
    /// Unsent, not given up, due at `now`, oldest due first.
    async fn due_alert_deliveries(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<AlertDelivery>>;
    /// Take a delivery for sending, as `lease_mail` does: move its due time to `until` if it is
    /// still `d.next_attempt_at`. False if another node took it.
    async fn lease_alert_delivery(&mut self, d: &AlertDelivery, until: OffsetDateTime) -> Result<bool>;
    async fn mark_alert_delivery_sent(&mut self, d: &AlertDelivery, at: OffsetDateTime) -> Result<()>;
    /// Store a failed attempt: `d`'s attempts, last error, next due time and, if delivery is
    /// given up, `failed_at`.
    async fn record_alert_delivery_failure(&mut self, d: &AlertDelivery) -> Result<()>;
}
