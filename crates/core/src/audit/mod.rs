//! Audit events and their per-tenant hash chain. Each event's hash covers the previous event's
//! hash, so removing, editing or reordering an event breaks every hash after it. The store
//! appends an event in the same transaction as the action it records.

use crate::ids::{MatterId, TenantId, UserId};
use aws_lc_rs::digest;
use time::OffsetDateTime;

pub mod search;
#[cfg(test)]
mod tests;
mod vocab;

pub use vocab::{Action, Target};

/// Who did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// A user through one of their API tokens: stored as the user (searches by actor find
    /// both), with the token's id added to the event's detail as `via_token` (see [`seal`]).
    Token {
        user: UserId,
        token: crate::ids::TokenId,
    },
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
            Actor::User(id) | Actor::Token { user: id, .. } => format!("user:{id}"),
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
    /// What happened, e.g. [`Action::MatterCreate`].
    pub action: Action,
    /// What was acted on, e.g. [`Target::Matter`].
    pub target: Target,
    pub meta: RequestMeta,
    /// Extra facts; never secrets and never client content.
    pub detail: serde_json::Value,
    /// The matter the event concerns, if any: the matter itself, or one of its documents or
    /// messages. Searching by matter uses it (see [`StoredEvent::matter`]).
    pub matter: Option<MatterId>,
}

impl NewEvent {
    pub fn new(tenant_id: Option<TenantId>, actor: Actor, action: Action, target: Target, meta: &RequestMeta) -> Self {
        Self { tenant_id, actor, action, target, meta: meta.clone(), detail: serde_json::Value::Null, matter: None }
    }

    /// Mark the event as concerning `matter` (or one of its documents or messages).
    pub fn on_matter(mut self, matter: MatterId) -> Self {
        self.matter = Some(matter);
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Count a written event in the metrics: every action, and sign-ins and second-factor failures
/// under their own names for dashboards and alert rules. Counted when written (a transaction
/// that later rolls back is still counted; such rollbacks are rare failures themselves).
pub fn count(ev: &NewEvent) {
    metrics::counter!("portcullis_audit_events_total", "action" => ev.action.as_str()).increment(1);
    let login = match ev.action {
        Action::AuthLogin => Some("success"),
        Action::AuthLoginFailed => Some("failure"),
        Action::AuthLoginLocked => Some("locked"),
        _ => None,
    };
    if let Some(outcome) = login {
        metrics::counter!("portcullis_logins_total", "outcome" => outcome).increment(1);
    }
    if matches!(ev.action, Action::AuthSecondFactorFailed | Action::AuthStepUpFailed) {
        metrics::counter!("portcullis_second_factor_failures_total").increment(1);
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
    /// The matter the event concerns (its id, as stored), so that a search by matter finds the
    /// events about the matter *and* about its documents and messages with one indexed column.
    ///
    /// A filter decides what an auditor sees, so the column must not be changeable without
    /// trace: anyone able to clear it could hide an event from a search by matter while the
    /// chain still verified. It is therefore covered by the event's hash like every other
    /// field (see [`event_hash`]): an event with a matter hashes under the `v2` domain tag with
    /// the matter as an extra field, one without hashes exactly as before (`v1`). Events written
    /// before the column existed keep verifying; setting the column on one of them, or clearing
    /// or changing it on a newer one, breaks that event's hash. (Deriving the column from the
    /// target or detail instead would leave the column itself uncovered.)
    pub matter: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent {
    /// The action, read back; `None` for text no [`Action`] stores (an imported or tampered
    /// event).
    pub fn action(&self) -> Option<Action> {
        Action::parse(&self.action).ok()
    }

    /// The target, read back.
    pub fn target(&self) -> Target {
        Target::parse(&self.target)
    }

    /// The user who acted, if a user did (directly or through a token).
    pub fn actor_user(&self) -> Option<UserId> {
        Target::user_of_actor(&self.actor)
    }
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
        action: ev.action.as_str().to_string(),
        target: ev.target.to_stored(),
        ip: ev.meta.ip.clone(),
        request_id: ev.meta.request_id.clone(),
        detail: stored_detail(ev).to_string(),
        matter: ev.matter.map(|m| m.to_string()),
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    e.hash = event_hash(&e);
    e
}

/// The detail as stored: an event caused through an API token names the token (`via_token`),
/// covered by the event's hash like the rest of the detail.
fn stored_detail(ev: &NewEvent) -> std::borrow::Cow<'_, serde_json::Value> {
    let Actor::Token { token, .. } = &ev.actor else {
        return std::borrow::Cow::Borrowed(&ev.detail);
    };
    let mut d = match &ev.detail {
        serde_json::Value::Object(m) => m.clone(),
        serde_json::Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("detail".to_string(), other.clone())]),
    };
    d.insert(VIA_TOKEN.into(), serde_json::Value::String(token.to_string()));
    std::borrow::Cow::Owned(serde_json::Value::Object(d))
}

/// The detail key naming the API token an event was caused through.
pub const VIA_TOKEN: &str = "via_token";

/// The hash of a stored event: SHA-256 over every field, each length-prefixed so no two
/// different events encode alike. An event without a matter hashes as in the first version of
/// the format (`v1`); one with a matter under the tag `v2`, with the matter after the detail, so
/// the two forms can never encode alike either.
pub fn event_hash(e: &StoredEvent) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let at = crate::clock::to_millis(e.at).to_string();
    let seq = e.seq.to_string();
    let tag = if e.matter.is_some() { "portcullis-audit-v2" } else { "portcullis-audit-v1" };
    let fields: [&str; 10] = [
        tag,
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
    for f in fields.into_iter().chain(e.matter.as_deref()).chain([e.prev_hash.as_str()]) {
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

/// How far one chain has grown and how much of it a signed checkpoint covers, for monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    pub chain: String,
    /// Events in the chain.
    pub length: i64,
    /// The newest checkpoint's sequence number (0: none yet).
    pub sealed_through: i64,
    /// When the newest checkpoint was signed.
    pub last_checkpoint_at: Option<OffsetDateTime>,
    /// When the oldest event no checkpoint covers yet was written.
    pub oldest_unsealed_at: Option<OffsetDateTime>,
}

/// A signed statement that a chain had `hash` at event `seq` (see `crypto::signing`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    pub signed_at: OffsetDateTime,
    pub key_id: String,
    /// Ed25519, hex.
    pub signature: String,
}

impl AuditCheckpoint {
    pub fn body(&self) -> crate::crypto::signing::CheckpointBody<'_> {
        crate::crypto::signing::CheckpointBody {
            chain: &self.chain,
            seq: self.seq,
            hash: &self.hash,
            signed_at: self.signed_at,
            key_id: &self.key_id,
        }
    }
}

/// The first thing wrong with a chain: the event (by sequence number) where it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFault {
    pub seq: i64,
    pub reason: &'static str,
}

/// Checks one chain from its first event, fed in order a page at a time, against its signed
/// checkpoints. It finds an edited, deleted, reordered or inserted event (the links or hashes
/// stop matching), a chain rebuilt after such a change (its hashes no longer match a signed
/// checkpoint), a forged or unsigned checkpoint, and a chain cut back past a checkpoint.
#[derive(Debug)]
pub struct ChainVerifier {
    checkpoints: std::collections::BTreeMap<i64, AuditCheckpoint>,
    /// The hash the next event must link to; `None` before the first event of a resumed check
    /// (that event is held to its checkpoint instead).
    prev_hash: Option<String>,
    next_seq: i64,
    pub events: u64,
    fault: Option<ChainFault>,
}

impl ChainVerifier {
    /// Start with the chain's checkpoints; each must be signed by one of `trusted`.
    pub fn new(checkpoints: Vec<AuditCheckpoint>, trusted: &[crate::crypto::signing::AuditPublicKey]) -> Self {
        let fault = checkpoints
            .iter()
            .filter(|c| !trusted.iter().any(|k| k.verifies(&c.body(), &c.signature)))
            .map(|c| ChainFault { seq: c.seq, reason: "checkpoint signature is not valid (or its key is not trusted)" })
            .min_by_key(|f| f.seq);
        Self {
            checkpoints: checkpoints.into_iter().map(|c| (c.seq, c)).collect(),
            prev_hash: Some(String::new()),
            next_seq: 1,
            events: 0,
            fault,
        }
    }

    /// Check only what came since a chain's newest checkpoint, fed from the checkpointed event
    /// on: that event must still have the hash the checkpoint signed, every later one must link
    /// to it, and the chain must not end before it. The checkpoint's signature is checked
    /// against `trusted`; pass no keys to skip that (a checkpoint by a key this node does not
    /// hold, after a key change).
    pub fn resume(checkpoint: AuditCheckpoint, trusted: &[crate::crypto::signing::AuditPublicKey]) -> Self {
        let seq = checkpoint.seq;
        let trusted_by_us =
            trusted.is_empty() || trusted.iter().any(|k| k.verifies(&checkpoint.body(), &checkpoint.signature));
        let fault = (!trusted_by_us)
            .then_some(ChainFault { seq, reason: "checkpoint signature is not valid (or its key is not trusted)" });
        Self { checkpoints: [(seq, checkpoint)].into(), prev_hash: None, next_seq: seq, events: 0, fault }
    }

    /// Check the next events of the chain, in order.
    pub fn feed(&mut self, events: &[StoredEvent]) {
        for e in events {
            if self.fault.as_ref().is_some_and(|f| f.seq <= e.seq) {
                return;
            }
            let reason = if e.seq != self.next_seq {
                Some("an event is missing or out of order here")
            } else if self.prev_hash.as_ref().is_some_and(|p| e.prev_hash != *p) {
                Some("the link to the previous event is broken")
            } else if event_hash(e) != e.hash {
                Some("the event was changed after it was written")
            } else if self.checkpoints.get(&e.seq).is_some_and(|c| c.hash != e.hash) {
                Some("the chain differs from what a signed checkpoint recorded")
            } else {
                None
            };
            if let Some(reason) = reason {
                let seq = e.seq.min(self.next_seq);
                self.fault = Some(ChainFault { seq, reason });
                return;
            }
            self.prev_hash = Some(e.hash.clone());
            self.next_seq += 1;
            self.events += 1;
        }
    }

    /// Whether the verdict is known: the events checked reach the first fault, so no earlier
    /// one can turn up and later events need not be read. (A bad checkpoint far along the chain
    /// is a fault too, but an edited event before it would be the first.)
    pub fn is_settled(&self) -> bool {
        self.fault.as_ref().is_some_and(|f| f.seq <= self.next_seq)
    }

    /// The sequence number after the last event checked.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// The verdict, once every event was fed: `None` if the chain is intact.
    pub fn finish(self) -> Option<ChainFault> {
        if let Some(f) = self.fault {
            return Some(f);
        }
        // A signed checkpoint past the end: events it covered are gone.
        self.checkpoints
            .keys()
            .next_back()
            .filter(|seq| **seq >= self.next_seq)
            .map(|_| ChainFault { seq: self.next_seq, reason: "the chain ends before its last signed checkpoint" })
    }

    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }
}
