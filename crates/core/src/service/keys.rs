//! Platform key operations: master-key rotation and key status. Tenant content is never read:
//! only wrapped tenant keys are unwrapped and wrapped again.

use super::Portal;
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::crypto::keys::tenant_key_context;
use crate::error::Result;
use crate::model::{Tenant, TenantKeyRecord};

/// One tenant key as `keys status` shows it (never the key itself).
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub tenant: Option<Tenant>,
    pub key: TenantKeyRecord,
}

impl Portal {
    /// Every tenant key, with its tenant.
    pub async fn key_status(&self) -> Result<Vec<KeyStatus>> {
        let mut tx = self.read().await?;
        let mut out = Vec::new();
        for key in tx.keys().all_tenant_keys().await? {
            out.push(KeyStatus { tenant: tx.tenants().tenant(key.tenant_id).await?, key });
        }
        Ok(out)
    }

    /// Crypto-shredding: destroy every key of a tenant, making all its documents and encrypted
    /// fields unreadable in every copy that depends on them (database dumps, document store
    /// copies, backups of either). Irreversible. The destruction of a firm (`erasure`) does the
    /// same through the same store method, inside the transaction that records the shred in the
    /// erasure ledger; the audit event stays in the platform chain.
    pub async fn shred_tenant_keys(&self, tenant: crate::ids::TenantId, meta: &RequestMeta) -> Result<u64> {
        let mut tx = self.write().await?;
        let destroyed = tx.keys().destroy_tenant_keys(tenant).await?;
        let ev = NewEvent::new(None, Actor::Cli, Action::KeysShred, Target::Tenant(tenant), meta)
            .with_detail(serde_json::json!({ "keys_destroyed": destroyed }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        self.keyring.forget(tenant)?;
        Ok(destroyed)
    }

    /// Re-wrap every tenant key that the master key in use did not wrap, in one transaction
    /// with its audit event: after a crash nothing or everything is re-wrapped, and running
    /// again finishes the job. Documents and fields are not touched (their keys do not change).
    /// `step` is called at named points, so crash tests can stop the process there.
    /// `approval`: the second operator's, when one allowed this rotation (it goes into the
    /// change record).
    pub async fn rewrap_tenant_keys(
        &self,
        meta: &RequestMeta,
        approval: Option<&crate::changes::Approval>,
        step: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(usize, usize)> {
        let provider = self.keyring.provider().clone();
        let target = provider.key_id();
        let mut tx = self.write().await?;
        tx.keys().lock_tenant_keys().await?;
        let keys = tx.keys().all_tenant_keys().await?;
        let total = keys.len();
        let old: std::collections::BTreeSet<String> =
            keys.iter().filter(|k| k.key_id != target).map(|k| k.key_id.clone()).collect();
        let mut rewrapped = 0;
        for mut k in keys.into_iter().filter(|k| k.key_id != target) {
            let context = tenant_key_context(k.tenant_id, k.purpose, k.version);
            let plain = provider.unwrap(&k.key_id, &k.wrapped, &context).await?;
            let w = provider.wrap(&plain, &context).await?;
            (k.wrapped, k.key_id) = (w.bytes, w.key_id);
            tx.keys().rewrap_tenant_key(&k).await?;
            rewrapped += 1;
            step("mid-rewrap");
        }
        // Incidents' own data keys (see `incidents`) are wrapped by the master key too.
        let mut incidents = 0;
        for mut r in tx.incidents().list_incidents(i64::MAX).await?.into_iter().filter(|r| r.key_id != target) {
            let context = super::incidents::key_context(r.id);
            let plain = provider.unwrap(&r.key_id, &r.wrapped_key, &context).await?;
            let w = provider.wrap(&plain, &context).await?;
            (r.wrapped_key, r.key_id, r.version) = (w.bytes, w.key_id, r.version + 1);
            if !tx.incidents().update_incident(&r).await? {
                return Err(crate::error::Error::Conflict("A newer change to an incident".into()));
            }
            incidents += 1;
        }
        let ev = NewEvent::new(None, Actor::Cli, Action::KeysRotateMaster, Target::Platform, meta).with_detail(
            crate::changes::detail(
                serde_json::json!({ "key_ids": old }),
                serde_json::json!({ "key_id": target, "rewrapped": rewrapped, "total": total, "incident_keys": incidents }),
                approval,
            ),
        );
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        step("before-commit");
        tx.commit().await?;
        Ok((rewrapped, total))
    }
}
