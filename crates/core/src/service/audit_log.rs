//! The firm's audit log, as owners, admins and auditors read it. Events name actors, actions
//! and object ids, never client content, so auditors can read them without seeing any.

use super::Portal;
use crate::audit::{StoredEvent, chain_key};
use crate::error::{Error, Result};
use crate::policy::{self, Permission, Principal};

/// Most events one page returns.
pub const MAX_AUDIT_PAGE: i64 = 500;

impl Portal {
    /// The tenant's events after sequence number `after`, oldest first, at most `limit`.
    pub async fn audit_log(&self, p: &Principal, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        policy::authorize_tenant(p, Permission::ReadAudit)?;
        if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
            return Err(Error::invalid("limit", format!("must be from 1 to {MAX_AUDIT_PAGE}")));
        }
        if after < 0 {
            return Err(Error::invalid("after", "must not be negative"));
        }
        self.read().await?.audit_chain(&chain_key(Some(p.tenant_id)), after, limit).await
    }
}
