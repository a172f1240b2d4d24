//! Tamper evidence for the audit log: every node signs checkpoints of every chain that grew
//! (background, and `portcullis audit checkpoint`), and `portcullis audit verify` walks each
//! chain from its first event, checking every link, every hash and every checkpoint signature
//! against public keys that do not come from the database.

use super::Portal;
use crate::audit::{AuditCheckpoint, ChainFault, ChainVerifier, chain_key};
use crate::crypto::signing::{AuditPublicKey, AuditSigner};
use crate::error::{Error, Result};
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
    /// many were made. Safe on several nodes at once: a checkpoint of the same event by another
    /// node makes this transaction fail and the next run finds nothing to do.
    pub async fn checkpoint_audit(&self, signer: &AuditSigner) -> Result<usize> {
        let mut tx = self.write().await?;
        let now = self.clock.now();
        let mut made = 0;
        // The platform chain and each tenant's: an index lookup each, never a scan of the events.
        let chains =
            std::iter::once(chain_key(None)).chain(tx.tenant_ids().await?.into_iter().map(|t| chain_key(Some(t))));
        for chain in chains.collect::<Vec<_>>() {
            let Some(head) = tx.audit_head(&chain).await? else { continue };
            let last = tx.latest_audit_checkpoint(&chain).await?.map(|c| c.seq).unwrap_or(0);
            if head.seq <= last {
                continue;
            }
            let mut cp = AuditCheckpoint {
                chain,
                seq: head.seq,
                hash: head.hash,
                signed_at: now,
                key_id: signer.key_id().to_string(),
                signature: String::new(),
            };
            cp.signature = signer.sign(&cp.body());
            tx.insert_audit_checkpoint(&cp).await?;
            made += 1;
        }
        tx.commit().await?;
        Ok(made)
    }

    /// Verify every chain (or one tenant's) from its first event against `trusted` keys.
    pub async fn verify_audit(&self, tenant: Option<&str>, trusted: &[AuditPublicKey]) -> Result<Vec<ChainReport>> {
        let mut tx = self.read().await?;
        let chains = match tenant {
            Some(name) => {
                let t = tx.tenant_by_name(&validate::tenant_name(name)?).await?.ok_or(Error::NotFound)?;
                vec![chain_key(Some(t.id))]
            }
            None => tx.audit_chains().await?,
        };
        let mut reports = Vec::new();
        for chain in chains {
            let checkpoints = tx.audit_checkpoints(&chain).await?;
            let last_checkpoint = checkpoints.last().map(|c| c.seq);
            let mut v = ChainVerifier::new(checkpoints, trusted);
            loop {
                let page = tx.audit_chain(&chain, v.next_seq() - 1, VERIFY_PAGE).await?;
                v.feed(&page);
                if (page.len() as i64) < VERIFY_PAGE || v.is_settled() {
                    break;
                }
            }
            let (events, checkpoints) = (v.events, v.checkpoints());
            let tenant = match chain.parse() {
                Ok(id) => tx.tenant(id).await?.map(|t| t.name),
                Err(_) => None,
            };
            reports.push(ChainReport { tenant, chain, events, checkpoints, last_checkpoint, fault: v.finish() });
        }
        Ok(reports)
    }
}
