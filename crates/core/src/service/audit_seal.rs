//! Tamper evidence for the audit log: every node signs checkpoints of every chain that grew
//! (background, and `portcullis audit checkpoint`), after checking what came since the chain's
//! last checkpoint against it, and `portcullis audit verify` walks each chain from its first
//! event, checking every link, every hash and every checkpoint signature against public keys
//! that do not come from the database. Either raises an alert for a chain that does not verify.

use super::{NewAlert, Portal};
use crate::audit::{
    Action, Actor, AuditCheckpoint, ChainFault, ChainVerifier, NewEvent, RequestMeta, Target, chain_key,
};
use crate::crypto::signing::{AuditPublicKey, AuditSigner};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::model::{AlertKind, Severity};
use crate::ports::Tx;
use crate::validate;

/// Events read per query while verifying: memory stays flat however long the chain.
const VERIFY_PAGE: i64 = 1000;

/// What verification found in one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// The tenant's name, or `None` for the platform chain.
    pub tenant: Option<String>,
    pub chain: String,
    pub events: u64,
    pub checkpoints: usize,
    /// The newest checkpoint's event, if any.
    pub last_checkpoint: Option<i64>,
    /// The first broken event; `None` if the chain is intact.
    pub fault: Option<ChainFault>,
}

impl Portal {
    /// Sign a checkpoint of every chain with events newer than its last checkpoint. Returns how
    /// many were made. Before signing, what came since the chain's last checkpoint is checked
    /// against it (see [`ChainVerifier::resume`]); a chain that does not verify is not signed
    /// (that would bless the tampering) but raises an audit-verification alert. Safe on several
    /// nodes at once: a checkpoint of the same event by another node makes the signing
    /// transaction fail and the next run finds nothing to do.
    pub async fn checkpoint_audit(&self, signer: &AuditSigner) -> Result<usize> {
        let (heads, faults) = {
            let mut tx = self.read().await?;
            let mut heads = Vec::new();
            let mut faults = Vec::new();
            // The platform chain and each tenant's: an index lookup each, never a scan of the events.
            let chains = std::iter::once(chain_key(None))
                .chain(tx.tenants().tenant_ids().await?.into_iter().map(|t| chain_key(Some(t))));
            for chain in chains.collect::<Vec<_>>() {
                let head = tx.audit().audit_head(&chain).await?;
                let last = tx.audit().latest_audit_checkpoint(&chain).await?;
                if head.as_ref().map(|h| h.seq) == last.as_ref().map(|c| c.seq) {
                    continue;
                }
                let v = match last {
                    // A checkpoint by a key this node does not hold (the key was changed) is held
                    // to its hash only.
                    Some(c) if c.key_id == signer.key_id() => ChainVerifier::resume(c, &[signer.public_key()]),
                    Some(c) => ChainVerifier::resume(c, &[]),
                    None => ChainVerifier::new(Vec::new(), &[]),
                };
                match (walk(&mut *tx, &chain, v).await?.finish(), head) {
                    (Some(fault), _) => faults.push((chain, fault)),
                    (None, Some(head)) => heads.push(head),
                    (None, None) => {}
                }
            }
            (heads, faults)
        };
        for (chain, fault) in &faults {
            self.audit_fault_alert(chain, fault, "checkpoint").await?;
        }
        if heads.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let now = self.clock.now();
        let mut signed = Vec::with_capacity(heads.len());
        for head in &heads {
            // A firm being destroyed gets no more checkpoints: its chain is about to go, and a
            // checkpoint written after it went would outlive it.
            if let Ok(tenant) = head.chain.parse::<crate::ids::TenantId>()
                && tx.lifecycle().erasure(tenant).await?.is_some()
            {
                continue;
            }
            let mut cp = AuditCheckpoint {
                chain: head.chain.clone(),
                seq: head.seq,
                hash: head.hash.clone(),
                signed_at: now,
                key_id: signer.key_id().to_string(),
                signature: String::new(),
            };
            cp.signature = signer.sign(&cp.body());
            tx.audit().insert_audit_checkpoint(&cp).await?;
            signed.push(cp);
        }
        tx.commit().await?;
        // Each signed head goes to the logs, and with them to the central collectors: a copy
        // off this server that a truncated or rebuilt chain can be checked against.
        for cp in &signed {
            let chain = if cp.chain.is_empty() { "platform" } else { cp.chain.as_str() };
            tracing::info!(
                chain,
                seq = cp.seq,
                hash = %cp.hash,
                key_id = %cp.key_id,
                signature = %cp.signature,
                "audit checkpoint signed"
            );
        }
        Ok(signed.len())
    }

    /// Verify every chain (or one tenant's) from its first event against `trusted` keys. Each
    /// broken chain raises an audit-verification alert.
    pub async fn verify_audit(&self, tenant: Option<&str>, trusted: &[AuditPublicKey]) -> Result<Vec<ChainReport>> {
        let mut tx = self.read().await?;
        let chains = match tenant {
            Some(name) => {
                let t = tx.tenants().tenant_by_name(&validate::tenant_name(name)?).await?.ok_or(Error::NotFound)?;
                vec![chain_key(Some(t.id))]
            }
            None => tx.audit().audit_chains().await?,
        };
        let mut reports = Vec::new();
        for chain in chains {
            let checkpoints = tx.audit().audit_checkpoints(&chain).await?;
            let last_checkpoint = checkpoints.last().map(|c| c.seq);
            let v = walk(&mut *tx, &chain, ChainVerifier::new(checkpoints, trusted)).await?;
            let (events, checkpoints) = (v.events, v.checkpoints());
            let fault = v.finish();
            let tenant = match chain.parse() {
                Ok(id) => tx.tenants().tenant(id).await?.map(|t| t.name),
                Err(_) => None,
            };
            reports.push(ChainReport { tenant, chain, events, checkpoints, last_checkpoint, fault });
        }
        drop(tx);
        for r in &reports {
            if let Some(fault) = &r.fault
                && let Err(e) = self.audit_fault_alert(&r.chain, fault, "verify").await
            {
                // The verdict matters more than the alert: report it even if the alert fails.
                tracing::error!(chain = %r.chain, error = %e, "raising the audit-verification alert failed");
            }
        }
        Ok(reports)
    }

    /// Record a broken chain: `audit.verification_failed` on the platform chain and a critical
    /// alert, in one transaction. `by` says which check found it.
    async fn audit_fault_alert(&self, chain: &str, fault: &ChainFault, by: &'static str) -> Result<()> {
        let tenant: Option<TenantId> = chain.parse().ok();
        let shown = if chain.is_empty() { "platform" } else { chain };
        let detail = serde_json::json!({ "chain": shown, "seq": fault.seq, "reason": fault.reason, "found_by": by });
        let ev = NewEvent::new(
            None,
            Actor::System,
            Action::AuditVerificationFailed,
            Target::Chain(shown.to_string()),
            &RequestMeta::default(),
        )
        .with_detail(detail.clone());
        let alert = NewAlert::new(
            AlertKind::AuditVerificationFailure,
            Severity::Critical,
            tenant,
            format!("chain:{shown}"),
            format!("The audit log does not verify: {} (event {})", fault.reason, fault.seq),
        )
        .with_detail(detail);
        let now = self.clock.now();
        let audited = async {
            let mut tx = self.write().await?;
            tx.audit().append_audit(&ev, now).await?;
            self.raise_alert_in(&mut *tx, &alert, now).await?;
            tx.commit().await
        };
        if let Err(e) = audited.await {
            // The platform chain may be what was tampered with, so that it takes no more events:
            // the alert must still go out.
            tracing::error!(error = %e, "the audit log takes no events; raising the alert without them");
            let mut tx = self.write().await?;
            self.store_alert(&mut *tx, &alert, now).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Feed a chain's events to `v`, from the one it expects next, a page at a time, until the end
/// or a settled verdict.
async fn walk(tx: &mut dyn Tx, chain: &str, mut v: ChainVerifier) -> Result<ChainVerifier> {
    loop {
        let page = tx.audit().audit_chain(chain, v.next_seq() - 1, VERIFY_PAGE).await?;
        v.feed(&page);
        if (page.len() as i64) < VERIFY_PAGE || v.is_settled() {
            return Ok(v);
        }
    }
}
