//! Intrusion and anomaly detection (see `service::intrusion`). Ids, addresses and counts only.

use crate::error::Result;
use crate::ids::{BlockId, TenantId, UserId};
use crate::model::{Baseline, Block, BlockScope, Detection};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait IntrusionRepo: Send {
    async fn insert_block(&mut self, b: &Block) -> Result<()>;
    async fn block(&mut self, id: BlockId) -> Result<Option<Block>>;
    /// Blocks in force at `now` (not lifted, not expired): a tenant's (account and download
    /// blocks), or with `None` the platform's (source blocks); newest first.
    async fn active_blocks(&mut self, tenant: Option<TenantId>, now: OffsetDateTime) -> Result<Vec<Block>>;
    /// The newest source block in force on `ip` at `now`.
    async fn source_block(&mut self, ip: &str, now: OffsetDateTime) -> Result<Option<Block>>;
    /// The newest block of `scope` in force on one user at `now`.
    async fn user_block(
        &mut self,
        tenant: TenantId,
        user: UserId,
        scope: BlockScope,
        now: OffsetDateTime,
    ) -> Result<Option<Block>>;
    /// Lift a block still in force; false if it was lifted already.
    async fn lift_block(&mut self, id: BlockId, by: &str, at: OffsetDateTime) -> Result<bool>;
    async fn insert_detection(&mut self, d: &Detection) -> Result<()>;
    /// A tenant's detections (or with `None` the platform's, which have no tenant), newest first.
    async fn detections(&mut self, tenant: Option<TenantId>, limit: i64) -> Result<Vec<Detection>>;
    /// Record a failed sign-in from `ip` on `target` and forget those before `since`; returns
    /// how many distinct targets failed from `ip`, from how many distinct addresses `target`
    /// failed, and how often `target` failed from `ip`, since `since`. Failures are recorded one
    /// at a time across nodes, so each count is seen by exactly one failure and a threshold is
    /// crossed exactly once.
    async fn record_signin_failure(
        &mut self,
        ip: &str,
        target: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(u32, u32, u32)>;
    /// Hold a user's download counters (daily usage, baseline) until this transaction ends, so
    /// that parallel downloads read and update them one after another (PostgreSQL's read
    /// committed would otherwise lose updates; SQLite's write transaction already excludes).
    async fn lock_user_counters(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    async fn baseline(&mut self, tenant: TenantId, user: UserId) -> Result<Option<Baseline>>;
    async fn save_baseline(&mut self, b: &Baseline) -> Result<()>;
    /// Remember that a user signed in from `ip`; true if it is the first time.
    async fn remember_ip(&mut self, tenant: TenantId, user: UserId, ip: &str, at: OffsetDateTime) -> Result<bool>;
}
