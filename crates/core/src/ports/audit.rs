//! The audit chains: their events, checkpoints and searches.

use crate::audit::search::AuditFilter;
use crate::audit::{AuditCheckpoint, ChainStatus, NewEvent, StoredEvent};
use crate::error::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait AuditRepo: Send {
    /// Append an event to its tenant's chain, in this transaction.
    async fn append_audit(&mut self, ev: &NewEvent, at: OffsetDateTime) -> Result<()>;
    /// The events of one chain (tenant id, or "" for the platform), in order.
    async fn audit_chain(&mut self, chain: &str, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>>;
    /// The events of the reach's chain after `after_seq` (and not past `upto_seq`, if given)
    /// that match every filter and that the reach sees (walled matters' events are left out),
    /// in order, at most `limit`. The database does the filtering.
    async fn search_audit(
        &mut self,
        reach: &crate::policy::AuditReach,
        filter: &AuditFilter,
        after_seq: i64,
        upto_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>>;
    /// Every audit chain's key found among the events (tenant ids, and "" for the platform
    /// chain). Reads the whole event table: for verification, not for periodic work.
    async fn audit_chains(&mut self) -> Result<Vec<String>>;
    /// A chain's newest checkpoint.
    async fn latest_audit_checkpoint(&mut self, chain: &str) -> Result<Option<AuditCheckpoint>>;
    /// A chain's newest event.
    async fn audit_head(&mut self, chain: &str) -> Result<Option<StoredEvent>>;
    async fn insert_audit_checkpoint(&mut self, c: &AuditCheckpoint) -> Result<()>;
    /// A chain's checkpoints, oldest first.
    async fn audit_checkpoints(&mut self, chain: &str) -> Result<Vec<AuditCheckpoint>>;
    /// Every chain's length and checkpoint coverage, from the chain heads (no event scan).
    async fn audit_chain_status(&mut self) -> Result<Vec<ChainStatus>>;
    /// Events of every tenant chain (never the platform's) with `from <= at < to`, ordered by
    /// (at, chain, seq) and after `after` in that order, at most `limit`: breach scoping reads
    /// a window page by page.
    async fn audit_window(
        &mut self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<(OffsetDateTime, String, i64)>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>>;
}
