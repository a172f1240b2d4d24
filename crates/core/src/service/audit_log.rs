//! The audit log as owners, admins and auditors read it (and platform operators, the platform's
//! own chain): searched, paged and exported. Events name actors, actions and object ids, never
//! client content, so auditors can read them without seeing any.

use super::{Portal, actor};
use crate::audit::search::{AuditFilter, ExportFormat, Scope, Search, SearchInput};
use crate::audit::{Action, NewEvent, RequestMeta, StoredEvent, Target};
use crate::error::{Error, Result};
use crate::policy::can;
use crate::policy::{self, AuditReach, OperatorPrincipal, PlatformPermission, Principal};
use crate::ports::Tx;

/// Events read per query while exporting: memory stays flat however many events match.
const EXPORT_PAGE: i64 = 500;

/// One page of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    pub events: Vec<StoredEvent>,
    /// The `after` of the next page; `None` when this page holds the last matching event.
    pub next: Option<i64>,
}

/// Read up to `limit` matching events after `after` (and not past `upto`), and whether more
/// follow (one more is asked for to know).
pub(super) async fn read_page(
    tx: &mut dyn Tx,
    reach: &AuditReach,
    filter: &AuditFilter,
    after: i64,
    upto: Option<i64>,
    limit: i64,
) -> Result<AuditPage> {
    let mut events = tx.audit().search_audit(reach, filter, after, upto, limit.saturating_add(1)).await?;
    let keep = usize::try_from(limit).map_err(Error::internal)?;
    let next = if events.len() > keep {
        events.truncate(keep);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage { events, next })
}

/// An export of the audit log under way: a page at a time from the database, so it is never
/// held whole in memory. Made only by [`Portal::export_audit`], once the policy allowed it and
/// its `audit.export` event was written; it ends at the chain's head as it was then.
#[derive(Debug)]
pub struct AuditExport {
    portal: Portal,
    format: ExportFormat,
    reach: AuditReach,
    filter: AuditFilter,
    after: i64,
    upto: i64,
    done: bool,
}

impl AuditExport {
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The next matching events, oldest first; `None` once every one was returned.
    pub async fn next_page(&mut self) -> Result<Option<Vec<StoredEvent>>> {
        if self.done {
            return Ok(None);
        }
        let mut tx = self.portal.read().await?;
        let page = read_page(&mut *tx, &self.reach, &self.filter, self.after, Some(self.upto), EXPORT_PAGE).await?;
        match page.next {
            Some(next) => self.after = next,
            None => self.done = true,
        }
        Ok(Some(page.events).filter(|events| !events.is_empty()))
    }
}

impl Portal {
    /// The tenant's events matching the search, oldest first. The caller's right is checked
    /// before their input.
    pub async fn search_audit(&self, p: &Principal, input: &SearchInput) -> Result<AuditPage> {
        let reach = AuditReach::Firm(policy::authorize_list::<can::ReadAudit>(p)?);
        let search = Search::parse(input, Scope::Tenant)?;
        let mut tx = self.read().await?;
        read_page(&mut *tx, &reach, &search.filter, search.after, None, search.limit).await
    }

    /// The platform's own events matching the search, oldest first: the chain that belongs to
    /// no tenant. Tenants' events (their content's reads among them) are never in it.
    pub async fn search_platform_audit(&self, op: &OperatorPrincipal, input: &SearchInput) -> Result<AuditPage> {
        policy::authorize_platform(op, PlatformPermission::ReadPlatformAudit, self.clock.now())?;
        let search = Search::parse(input, Scope::Platform)?;
        let mut tx = self.read().await?;
        read_page(&mut *tx, &AuditReach::Platform, &search.filter, search.after, None, search.limit).await
    }

    /// Start exporting the tenant's events matching the filters of `input` (its page fields are
    /// not used). The export is itself audited (`audit.export`, with its format and filters)
    /// before any event is read: if that event cannot be written, nothing is exported.
    pub async fn export_audit(
        &self,
        p: &Principal,
        input: &SearchInput,
        format: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<AuditExport> {
        let reach = AuditReach::Firm(policy::authorize_list::<can::ReadAudit>(p)?);
        let format = ExportFormat::parse(format)?;
        let filter = Search::parse(&SearchInput { after: None, limit: None, ..input.clone() }, Scope::Tenant)?.filter;
        let chain = reach.chain();
        let mut tx = self.write().await?;
        let mut ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::AuditExport, Target::Tenant(p.tenant_id), meta)
            .with_detail(serde_json::json!({ "format": format.as_str(), "filter": filter.to_json() }));
        ev.matter = filter.matter;
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        // The export ends with its own event: later events belong to a later export.
        let upto =
            tx.audit().audit_head(&chain).await?.map(|e| e.seq).ok_or_else(|| Error::internal("no audit head"))?;
        tx.commit().await?;
        Ok(AuditExport { portal: self.clone(), format, reach, filter, after: 0, upto, done: false })
    }
}
