//! The end of a firm's data: the erasure ledger, and the queues' depths for monitoring.

use super::*;

/// A row of the erasure ledger: one destroyed tenant (or one being destroyed), kept for good so
/// its id and name stay reserved and the erasure can be proved and re-applied to backups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRecord {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub reason: ErasureReason,
    /// Who asked: `user:<id>` or `system` (retention).
    pub requested_by: String,
    /// Who approved: `user:<id>` (customer erasure), `None` for retention.
    pub approved_by: Option<String>,
    pub requested_at: OffsetDateTime,
    pub approved_at: Option<OffsetDateTime>,
    /// When the tenant's keys were destroyed (crypto-shredding, the first step).
    pub keys_destroyed_at: Option<OffsetDateTime>,
    /// The tenant's audit chain as it ended: its last sequence number and head hash.
    pub audit_seq: Option<i64>,
    pub audit_head: Option<String>,
    pub finished_at: Option<OffsetDateTime>,
    /// What was destroyed, per kind (JSON object of counts).
    pub counts: serde_json::Value,
    /// The signed erasure certificate (JSON), once finished.
    pub certificate: Option<String>,
    /// The owners' addresses for the certificate mail, captured before destruction; emptied
    /// once it is sent.
    pub notify_to: Vec<String>,
    pub notified_at: Option<OffsetDateTime>,
    /// When the backup target applied the erasure; `None` until then.
    pub synced_to_backups_at: Option<OffsetDateTime>,
}

/// Work waiting in one of the durable queues, for monitoring and autoscaling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// `mail`, `alerts` or `exports`.
    pub queue: &'static str,
    /// Items not yet done (neither sent nor given up; for exports, not yet written).
    pub waiting: i64,
    /// When the oldest of them was queued.
    pub oldest_at: Option<OffsetDateTime>,
}
