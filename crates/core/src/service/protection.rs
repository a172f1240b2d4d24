//! Protective controls on content: the upload allow-list, data loss prevention (what happens to
//! documents and messages that carry identifiers) and the daily download cap. The settings are
//! the firm's, changed by owners and admins with a fresh second-factor check, and audited with
//! their old and new values.

use super::{NewAlert, Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::dlp::{Detector, Findings};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, TenantId, UserId};
use crate::inspect::FileKind;
use crate::model::{AlertKind, Document, DocumentFlag, FlagState, Severity};
use crate::policy::can;
use crate::policy::{self, MatterGrant, Principal};
use crate::ports::Tx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to do when a detector finds identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlpAction {
    /// Nothing.
    Allow,
    /// Accept; flag the document (or message) visibly and audit the finding.
    Warn,
    /// Documents: hide from client users. Messages: refused.
    BlockClients,
    /// Documents: held for an owner's or admin's review. Messages: refused.
    Quarantine,
}

impl DlpAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DlpAction::Allow => "allow",
            DlpAction::Warn => "warn",
            DlpAction::BlockClients => "block_clients",
            DlpAction::Quarantine => "quarantine",
        }
    }
}

/// The daily download cap per user (UTC days). `None`: no cap of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadCap {
    pub downloads: Option<u64>,
    pub bytes: Option<u64>,
}

impl Default for DownloadCap {
    /// 500 downloads or 10 GiB a day: far above a day's real work, well below a bulk export.
    fn default() -> Self {
        Self { downloads: Some(500), bytes: Some(10 << 30) }
    }
}

/// A firm's protective settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Protection {
    /// The file types uploads may be (checked from their content).
    pub allowed: Vec<FileKind>,
    /// The action per detector (by its name); a detector not named warns.
    pub detectors: BTreeMap<String, DlpAction>,
    pub download_cap: DownloadCap,
    /// The networks (CIDR ranges) the firm's users may sign in from; empty: anywhere.
    pub sign_in_networks: Vec<String>,
}

impl Default for Protection {
    fn default() -> Self {
        Self {
            allowed: FileKind::ALL.to_vec(),
            detectors: Detector::ALL.iter().map(|d| (d.as_str().to_owned(), DlpAction::Warn)).collect(),
            download_cap: DownloadCap::default(),
            sign_in_networks: Vec::new(),
        }
    }
}

/// Parse CIDR ranges (a bare address is one host), in their canonical form.
fn parse_networks(list: &[String]) -> Result<Vec<ipnet::IpNet>> {
    let mut nets = Vec::with_capacity(list.len());
    for raw in list {
        let raw = raw.trim();
        let net = raw
            .parse::<ipnet::IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| Error::invalid("networks", format!("{raw:?} is not a CIDR range such as 203.0.113.0/24")))?;
        nets.push(net.trunc());
    }
    nets.sort();
    nets.dedup();
    if nets.len() > 100 {
        return Err(Error::invalid("networks", "at most 100 ranges"));
    }
    Ok(nets)
}

use policy::network_allows;

impl Protection {
    pub fn action(&self, d: Detector) -> DlpAction {
        self.detectors.get(d.as_str()).copied().unwrap_or(DlpAction::Warn)
    }

    /// The strongest action any detector is set to: what a document the scan could not read in
    /// full gets, since it may hold anything (fail closed).
    pub fn strongest_configured(&self) -> DlpAction {
        Detector::ALL.into_iter().map(|d| self.action(d)).max().unwrap_or(DlpAction::Warn)
    }

    /// The strongest action the findings call for.
    pub fn strongest(&self, findings: &Findings) -> DlpAction {
        findings.iter().filter(|(_, n)| **n > 0).map(|(d, _)| self.action(*d)).max().unwrap_or(DlpAction::Allow)
    }

    pub fn allowed_names(&self) -> Vec<&'static str> {
        self.allowed.iter().map(|k| k.as_str()).collect()
    }

    fn validate(&self) -> Result<()> {
        for name in self.detectors.keys() {
            Detector::parse(name)?;
        }
        if self.download_cap.downloads == Some(0) || self.download_cap.bytes == Some(0) {
            return Err(Error::invalid("download_cap", "a cap must be at least 1 (leave it out for no cap)"));
        }
        Ok(())
    }
}

/// Counts per detector as JSON (names and numbers only).
pub fn findings_json(f: &Findings) -> serde_json::Value {
    serde_json::Value::Object(f.iter().map(|(d, n)| (d.as_str().to_owned(), serde_json::json!(n))).collect())
}

/// A document with its DLP flag, as a list shows it.
#[derive(Clone, Debug)]
pub struct FlaggedDocument {
    pub document: Document,
    pub flag: Option<DocumentFlag>,
}

/// The UTC day of a moment, as the cap counts it.
fn day(t: time::OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl Portal {
    /// The firm's settings (defaults until changed).
    pub(super) async fn protection_in(&self, tx: &mut dyn Tx, tenant: TenantId) -> Result<Protection> {
        match tx.protection().protection_settings(tenant).await? {
            Some(json) => serde_json::from_str(&json).map_err(Error::internal),
            None => Ok(Protection::default()),
        }
    }

    /// The firm's protective settings, for its owners and admins.
    pub async fn protection(&self, p: &Principal) -> Result<Protection> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.read().await?;
        self.protection_in(&mut *tx, p.tenant_id).await
    }

    /// Change the upload allow-list (step-up; audited with before and after).
    pub async fn set_upload_policy(&self, p: &Principal, allowed: &[String], meta: &RequestMeta) -> Result<Protection> {
        let mut kinds = allowed.iter().map(|s| FileKind::parse(s)).collect::<Result<Vec<_>>>()?;
        kinds.sort();
        kinds.dedup();
        self.change_protection(p, Action::TenantUploadPolicy, meta, |s| s.allowed = kinds).await
    }

    /// Change the networks the firm's users may sign in from (step-up; audited with before and
    /// after). A list that leaves out the address the change comes from is refused: saving it
    /// would lock its author out.
    pub async fn set_network_access(
        &self,
        p: &Principal,
        networks: &[String],
        meta: &RequestMeta,
    ) -> Result<Protection> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let nets: Vec<String> = parse_networks(networks)?.iter().map(ToString::to_string).collect();
        if !network_allows(&nets, meta.ip.as_deref()) {
            return Err(Error::invalid(
                "networks",
                format!(
                    "the list leaves out the address you are using ({}); saving it would lock you out",
                    meta.ip.as_deref().unwrap_or("unknown")
                ),
            ));
        }
        self.change_protection(p, Action::TenantNetworkAccess, meta, |s| s.sign_in_networks = nets).await
    }

    /// Whether the firm lets its users sign in from the request's address.
    pub(super) async fn sign_in_allowed_from(
        &self,
        tx: &mut dyn Tx,
        tenant: TenantId,
        meta: &RequestMeta,
    ) -> Result<bool> {
        Ok(network_allows(&self.protection_in(tx, tenant).await?.sign_in_networks, meta.ip.as_deref()))
    }

    /// Change the DLP actions and the download cap (step-up; audited with before and after).
    pub async fn set_dlp_policy(
        &self,
        p: &Principal,
        detectors: BTreeMap<String, DlpAction>,
        cap: DownloadCap,
        meta: &RequestMeta,
    ) -> Result<Protection> {
        self.change_protection(p, Action::TenantDlpPolicy, meta, |s| {
            s.detectors.extend(detectors);
            s.download_cap = cap;
        })
        .await
    }

    async fn change_protection(
        &self,
        p: &Principal,
        action: crate::audit::Action,
        meta: &RequestMeta,
        change: impl FnOnce(&mut Protection),
    ) -> Result<Protection> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let before = self.protection_in(&mut *tx, p.tenant_id).await?;
        let mut after = before.clone();
        change(&mut after);
        after.validate()?;
        let now = self.clock.now();
        tx.protection()
            .set_protection_settings(p.tenant_id, &serde_json::to_string(&after).map_err(Error::internal)?, now)
            .await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), action, Target::Tenant(p.tenant_id), meta)
            .with_detail(serde_json::json!({ "before": before, "after": after }));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The documents the DLP scan holds for review, newest first (ids, matter and counts: the
    /// review happens by downloading it, which the matter's access rules still govern). Only the
    /// matters the reviewer may see: an ethical wall binds owners and admins too.
    pub async fn held_documents(&self, p: &Principal) -> Result<Vec<DocumentFlag>> {
        let grant = policy::authorize_list::<can::ReviewHeldDocuments>(p)?;
        let mut tx = self.read().await?;
        tx.documents().flags_in_state(&grant, FlagState::Quarantined).await
    }

    /// A held document and its flag, under the grant to review it on its own matter (a matter
    /// the reviewer may not see is `NotFound`, as is an unknown document); one not held is
    /// refused.
    async fn held(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        id: DocumentId,
        not_held: &'static str,
    ) -> Result<(MatterGrant<can::ReviewHeldDocuments>, Document, DocumentFlag)> {
        let grant = self.grant_document::<can::ReviewHeldDocuments>(tx, p, id).await?;
        match tx.documents().held_document(&grant, id).await? {
            Some((d, Some(f))) if f.state == FlagState::Quarantined => Ok((grant, d, f)),
            None => Err(Error::NotFound),
            Some(_) => Err(Error::invalid("document", not_held)),
        }
    }

    /// Whether someone other than `subject` may review what concerns them (see
    /// [`policy::may_review`]); refuses a self-review when they may. Returns whether this is one.
    pub(super) async fn review_of(&self, tx: &mut dyn Tx, p: &Principal, subject: UserId) -> Result<bool> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        // The firm's active owners and admins: the roles allowed to review.
        let others = tx.users().tenant_admins(p.tenant_id).await?.iter().any(|u| *u != p.user_id);
        policy::may_review(p, subject, others)?;
        Ok(subject == p.user_id)
    }

    /// Release a held document: everyone with access to its matter may download it again
    /// (after a step-up; not by its uploader while another owner or admin can do it).
    pub async fn release_document(&self, p: &Principal, id: DocumentId, meta: &RequestMeta) -> Result<()> {
        let mut tx = self.write().await?;
        let (grant, doc, flag) = self.held(&mut *tx, p, id, "this document is not held for review").await?;
        self.require_step_up(&mut *tx, p).await?;
        let own = self.review_of(&mut *tx, p, doc.uploaded_by).await?;
        tx.documents().set_document_flag_state(&grant, id, FlagState::Released).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpDocumentReleased, Target::Document(id), meta)
            .with_detail(serde_json::json!({ "matter": flag.matter_id.to_string(), "self_reviewed": own }))
            .on_matter(flag.matter_id);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    /// Delete a held document, record and stored bytes (after a step-up).
    pub async fn discard_document(&self, p: &Principal, id: DocumentId, meta: &RequestMeta) -> Result<()> {
        let mut tx = self.write().await?;
        let (grant, doc, flag) =
            self.held(&mut *tx, p, id, "only a document held for review can be deleted here").await?;
        self.require_step_up(&mut *tx, p).await?;
        tx.documents().delete_document(&grant, id).await?;
        // Recorded as replaced, so a copy a running backup still names outlives the backup.
        tx.blobs().mark_blob(p.tenant_id, &doc.blob_key(), false, self.clock.now()).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpDocumentDeleted, Target::Document(id), meta)
            .with_detail(serde_json::json!({ "matter": flag.matter_id.to_string(), "size": doc.size }))
            .on_matter(flag.matter_id);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        if let Err(e) = self.delete_replaced_blob(&doc.blob_key()).await {
            tracing::error!(error = %e, document = %id, "could not remove the stored bytes of a deleted document");
        }
        Ok(())
    }

    /// Lift a user's download cap for the rest of today (their count starts again; after a
    /// step-up; not one's own while another owner or admin can do it).
    pub async fn lift_download_cap(&self, p: &Principal, user: UserId, meta: &RequestMeta) -> Result<()> {
        policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        tx.users().user(p.tenant_id, user).await?.ok_or(Error::NotFound)?;
        let own = self.review_of(&mut *tx, p, user).await?;
        let now = self.clock.now();
        let today = day(now);
        let (downloads, bytes) = tx.protection().download_usage(p.tenant_id, user, &today).await?;
        tx.protection().reset_download_usage(p.tenant_id, user, &today).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpDownloadCapLifted, Target::User(user), meta)
            .with_detail(
                serde_json::json!({ "day": today, "downloads": downloads, "bytes": bytes, "self_reviewed": own }),
            );
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await
    }

    /// Check the caller's daily cap and count this download, in the download's transaction. A
    /// refusal is audited (and committed) before it is returned.
    pub(super) async fn count_download(
        &self,
        mut tx: Box<dyn Tx>,
        p: &Principal,
        doc: &Document,
        bytes: u64,
        meta: &RequestMeta,
    ) -> Result<Box<dyn Tx>> {
        let settings = self.protection_in(&mut *tx, p.tenant_id).await?;
        let now = self.clock.now();
        let today = day(now);
        tx.intrusion().lock_user_counters(p.tenant_id, p.user_id).await?;
        let used = tx.protection().download_usage(p.tenant_id, p.user_id, &today).await?;
        let cap = settings.download_cap;
        if let Err(e) = policy::download_cap(used, cap.downloads, cap.bytes) {
            drop(tx);
            let mut tx = self.write().await?;
            let ev =
                NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpDownloadCapped, Target::Document(doc.id), meta)
                    .with_detail(serde_json::json!({
                        "day": today, "downloads": used.0, "bytes": used.1,
                        "cap_downloads": cap.downloads, "cap_bytes": cap.bytes,
                    }))
                    .on_matter(doc.matter_id);
            tx.audit().append_audit(&ev, now).await?;
            tx.commit().await?;
            return Err(e);
        }
        tx.protection().add_download(p.tenant_id, p.user_id, &today, bytes).await?;
        Ok(tx)
    }

    /// Decide what a scanned upload becomes, from the firm's settings: the flag to store (if
    /// any) and whether to raise an alert. A document whose text could not all be read fails
    /// closed: it gets the strongest action the firm has set for any detector (held, or hidden
    /// from clients), and at least the visible `unscanned` flag.
    pub(super) fn flag_for(
        settings: &Protection,
        doc: &Document,
        kind: FileKind,
        findings: &Findings,
        unscanned: bool,
    ) -> Option<DocumentFlag> {
        let found = settings.strongest(findings);
        let unread = unscanned && kind.scanned();
        let action = if unread { found.max(settings.strongest_configured()) } else { found };
        let state = match action {
            DlpAction::Quarantine => FlagState::Quarantined,
            DlpAction::BlockClients => FlagState::ClientBlocked,
            DlpAction::Warn if found == DlpAction::Warn => FlagState::Warned,
            _ if unread => FlagState::Unscanned,
            DlpAction::Warn | DlpAction::Allow => return None,
        };
        Some(DocumentFlag {
            tenant_id: doc.tenant_id,
            document_id: doc.id,
            matter_id: doc.matter_id,
            state,
            findings: findings_json(findings).to_string(),
            created_at: doc.created_at,
        })
    }

    /// Store a flag with its audit event, and alert owners and admins of a quarantine; in `tx`.
    pub(super) async fn record_flag(
        &self,
        tx: &mut dyn Tx,
        grant: &MatterGrant<can::UploadDocument>,
        p: &Principal,
        flag: &DocumentFlag,
        meta: &RequestMeta,
    ) -> Result<()> {
        tx.documents().insert_document_flag(grant, flag).await?;
        let findings: serde_json::Value = serde_json::from_str(&flag.findings).map_err(Error::internal)?;
        let subject = Target::Document(flag.document_id);
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpDocumentFlagged, subject.clone(), meta)
            .with_detail(serde_json::json!({
                "matter": flag.matter_id.to_string(), "state": flag.state.as_str(), "findings": findings,
            }))
            .on_matter(flag.matter_id);
        tx.audit().append_audit(&ev, flag.created_at).await?;
        if flag.state == FlagState::Quarantined {
            let alert = NewAlert::new(
                AlertKind::DocumentQuarantined,
                Severity::Warning,
                Some(p.tenant_id),
                subject.to_stored(),
                "An uploaded document was held for review by the data loss prevention policy",
            )
            .with_detail(serde_json::json!({
                "document": flag.document_id.to_string(),
                "matter": flag.matter_id.to_string(),
                "findings": findings,
            }));
            self.raise_alert_in(tx, &alert, flag.created_at).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_parsed_and_matched() {
        let nets: Vec<String> = parse_networks(&["10.1.2.3/8".into(), "2001:db8::1".into(), "10.0.0.0/8".into()])
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "2001:db8::1/128"]);
        assert!(network_allows(&nets, Some("10.200.0.1")));
        assert!(network_allows(&nets, Some("2001:db8::1")));
        assert!(!network_allows(&nets, Some("192.0.2.1")));
        assert!(!network_allows(&nets, None));
        assert!(network_allows(&[], None));
        assert!(parse_networks(&["10.0.0.0/33".into()]).is_err());
        assert!(parse_networks(&["example.com".into()]).is_err());
    }

    #[test]
    fn the_strongest_action_wins_and_days_are_utc() {
        let mut s = Protection::default();
        s.detectors.insert("iban".into(), DlpAction::Quarantine);
        let mut f = Findings::new();
        f.insert(Detector::PaymentCard, 1);
        assert_eq!(s.strongest(&f), DlpAction::Warn);
        f.insert(Detector::Iban, 2);
        assert_eq!(s.strongest(&f), DlpAction::Quarantine);
        assert_eq!(s.strongest(&Findings::new()), DlpAction::Allow);
        let t = time::macros::datetime!(2026-11-25 23:30 -02:00);
        assert_eq!(day(t), "2026-11-26");
    }
}
