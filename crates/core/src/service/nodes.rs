//! The nodes serving now. Each node holds a lease named `node:<instance>` in the shared
//! database and renews it every [`NODE_HEARTBEAT`]; a node that stops renewing (killed, cut
//! off) drops out after [`NODE_TTL`]. The count lets every node take its share of the
//! configured rate limits, which are the whole deployment's, and is a scaling signal.

use super::Portal;
use crate::error::Result;
use time::Duration;

/// How often a node renews its registration.
pub const NODE_HEARTBEAT: Duration = Duration::seconds(10);
/// How long a registration lasts without renewal: three heartbeats, so one slow database
/// round does not make a node vanish.
pub const NODE_TTL: Duration = Duration::seconds(30);

const PREFIX: &str = "node:";

impl Portal {
    /// Register (or renew) this node, `instance` being unique per process; returns the number
    /// of nodes registered now, this one included.
    pub async fn register_node(&self, instance: &str) -> Result<u32> {
        let now = self.clock.now();
        let mut tx = self.write().await?;
        tx.leases().take_lease(&format!("{PREFIX}{instance}"), instance, now, now + NODE_TTL).await?;
        let live = tx.leases().leases_held(PREFIX, now).await?;
        tx.commit().await?;
        Ok(u32::try_from(live).unwrap_or(u32::MAX).max(1))
    }

    /// Leave: the other nodes take over this one's share at their next heartbeat.
    pub async fn leave(&self, instance: &str) -> Result<()> {
        self.release_lease(&format!("{PREFIX}{instance}"), instance).await
    }
}
