//! Audit events and their per-tenant hash chain. Each event's hash covers the previous event's
//! hash, so removing, editing or reordering an event breaks every hash after it. The store
//! appends an event in the same transaction as the action it records.

use crate::ids::{TenantId, UserId};
use aws_lc_rs::digest;
use time::OffsetDateTime;

/// Who did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// The local command-line tool.
    Cli,
    /// The server itself (scheduled jobs, first-start setup).
    System,
    /// Someone not signed in (a failed sign-in, a one-time link).
    Anonymous,
    /// A platform operator (the service's own staff).
    Operator(crate::ids::OperatorId),
}

impl Actor {
    /// The stored form.
    pub fn to_stored(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
            Actor::Anonymous => "anonymous".into(),
            Actor::Operator(id) => format!("operator:{id}"),
        }
    }
}

/// Where a request came from, for the audit trail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// The client's `User-Agent` (cut to 200 characters), shown in session lists; not audited.
    pub user_agent: Option<String>,
}

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// `None` for platform events that belong to no tenant.
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    /// Dotted verb, e.g. `matter.create`.
    pub action: &'static str,
    /// What was acted on, e.g. `matter:<id>`.
    pub target: String,
    pub meta: RequestMeta,
    /// Extra facts; never secrets and never client content.
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        tenant_id: Option<TenantId>,
        actor: Actor,
        action: &'static str,
        target: impl Into<String>,
        meta: &RequestMeta,
    ) -> Self {
        Self { tenant_id, actor, action, target: target.into(), meta: meta.clone(), detail: serde_json::Value::Null }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// An event as stored, with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The chain key: the tenant id, or empty for platform events.
    pub chain: String,
    pub seq: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The chain key of an event's tenant.
pub fn chain_key(tenant: Option<TenantId>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

/// Build the stored form of `ev`, chained after `prev_hash` at position `seq`.
pub fn seal(ev: &NewEvent, seq: i64, at: OffsetDateTime, prev_hash: &str) -> StoredEvent {
    let mut e = StoredEvent {
        chain: chain_key(ev.tenant_id),
        seq,
        at,
        actor: ev.actor.to_stored(),
        action: ev.action.to_string(),
        target: ev.target.clone(),
        ip: ev.meta.ip.clone(),
        request_id: ev.meta.request_id.clone(),
        detail: ev.detail.to_string(),
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    e.hash = event_hash(&e);
    e
}

/// The hash of a stored event: SHA-256 over every field, each length-prefixed so no two
/// different events encode alike.
pub fn event_hash(e: &StoredEvent) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let at = crate::clock::to_millis(e.at).to_string();
    let seq = e.seq.to_string();
    let fields: [&str; 10] = [
        "portcullis-audit-v1",
        &e.chain,
        &seq,
        &at,
        &e.actor,
        &e.action,
        &e.target,
        e.ip.as_deref().unwrap_or(""),
        e.request_id.as_deref().unwrap_or(""),
        &e.detail,
    ];
    for f in fields.iter().chain(std::iter::once(&e.prev_hash.as_str())) {
        ctx.update(&(f.len() as u64).to_be_bytes());
        ctx.update(f.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// Check a run of consecutive events of one chain, starting after `prev_hash`. Returns the
/// sequence number of the first event that does not fit.
pub fn verify_run(prev_hash: &str, first_seq: i64, events: &[StoredEvent]) -> Result<(), i64> {
    let mut prev = prev_hash.to_string();
    for (expect, e) in (first_seq..).zip(events) {
        if e.seq != expect || e.prev_hash != prev || event_hash(e) != e.hash {
            return Err(e.seq);
        }
        prev = e.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEvent> {
        let t = TenantId::new();
        let mut prev = String::new();
        (1..=n)
            .map(|seq| {
                let ev =
                    NewEvent::new(Some(t), Actor::System, "test.event", format!("n:{seq}"), &RequestMeta::default());
                let e = seal(&ev, seq, OffsetDateTime::UNIX_EPOCH, &prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_run("", 1, &chain(5)), Ok(()));
    }

    #[test]
    fn edit_delete_and_reorder_are_detected() {
        let mut edited = chain(5);
        edited[2].target = "changed".into();
        assert_eq!(verify_run("", 1, &edited), Err(3));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify_run("", 1, &deleted), Err(3));

        let mut swapped = chain(5);
        swapped.swap(1, 2);
        assert_eq!(verify_run("", 1, &swapped), Err(3));
    }
}
