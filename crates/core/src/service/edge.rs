//! Protective controls at the edge: the web layer refuses malformed or hostile requests before
//! any handler runs, and tells the platform audit chain here. The web layer decides what to
//! record (it deduplicates per source, so a flood of garbage is a handful of events).

use super::Portal;
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::error::Result;
use serde_json::json;

/// A request the request filter refused.
#[derive(Clone, Debug)]
pub struct BlockedRequest {
    /// The rule that refused it (`path.traversal`, `header.crlf`, ...).
    pub rule: &'static str,
    pub method: String,
    /// The route pattern if one matched, else the raw path cut short.
    pub target: String,
    /// How many blocks from the same source this event stands for (the first, or a summary of
    /// those suppressed since the last event).
    pub count: u64,
}

impl Portal {
    /// Audit a refused request on the platform chain as `waf.block`.
    pub async fn audit_blocked_request(&self, b: &BlockedRequest, meta: &RequestMeta) -> Result<()> {
        let mut tx = self.write().await?;
        let ev = NewEvent::new(None, Actor::System, Action::WafBlock, Target::Request, meta).with_detail(json!({
            "rule": b.rule,
            "method": b.method,
            "target": b.target,
            "count": b.count,
        }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }
}
