//! Figures for the monitoring system: how far the audit chains have grown and how much of them
//! signed checkpoints cover, and how old the tenant keys in use are. Counts and ages only: no
//! tenant names, no content.

use super::Portal;
use crate::audit::ChainStatus;
use crate::error::Result;
use std::collections::HashMap;
use time::OffsetDateTime;

/// One look at the state worth alerting on.
#[derive(Debug, Clone)]
pub struct MonitoringSnapshot {
    pub taken_at: OffsetDateTime,
    pub chains: Vec<ChainStatus>,
    /// When the oldest tenant key still used for new writes was made (per tenant and purpose,
    /// the newest version is the one in use).
    pub oldest_current_tenant_key_at: Option<OffsetDateTime>,
    /// Tenant keys held, all versions.
    pub tenant_keys: usize,
    /// Work waiting in the durable queues (shared by every node).
    pub queues: Vec<crate::model::QueueDepth>,
}

impl MonitoringSnapshot {
    /// Events written but not yet covered by a signed checkpoint, across all chains.
    pub fn unsealed_events(&self) -> i64 {
        self.chains.iter().map(|c| c.length - c.sealed_through).sum()
    }

    /// How long the oldest unsealed event has waited for a checkpoint (zero when all sealed).
    pub fn oldest_unsealed_age(&self) -> time::Duration {
        self.chains
            .iter()
            .filter_map(|c| c.oldest_unsealed_at)
            .map(|at| self.taken_at - at)
            .max()
            .unwrap_or(time::Duration::ZERO)
            .max(time::Duration::ZERO)
    }
}

impl Portal {
    /// Read the figures [`MonitoringSnapshot`] holds. For the metrics endpoint, which only the
    /// monitoring system reaches (token or separate listener); no principal is involved.
    pub async fn monitoring_snapshot(&self) -> Result<MonitoringSnapshot> {
        let mut tx = self.read().await?;
        let chains = tx.audit().audit_chain_status().await?;
        let queues = tx.outbox().queue_depths().await?;
        let keys = tx.keys().all_tenant_keys().await?;
        let mut current: HashMap<(crate::ids::TenantId, &'static str), (u32, OffsetDateTime)> = HashMap::new();
        for k in &keys {
            let slot = current.entry((k.tenant_id, k.purpose.as_str())).or_insert((k.version, k.created_at));
            if k.version >= slot.0 {
                *slot = (k.version, k.created_at);
            }
        }
        Ok(MonitoringSnapshot {
            taken_at: self.clock.now(),
            chains,
            oldest_current_tenant_key_at: current.values().map(|(_, at)| *at).min(),
            tenant_keys: keys.len(),
            queues,
        })
    }
}
