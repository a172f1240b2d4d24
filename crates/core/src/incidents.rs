//! Security incidents: what a report is, the states it moves through, and how a breach's scope
//! is matched against the audit log. Pure logic; the use cases are in `service::incidents`.
//!
//! States follow the ITIL incident flow and only move forward: reported → triaged → contained →
//! resolved → closed. Skipping ahead is allowed (a report found to be spam is resolved
//! straight away, with a note saying why), going back is not: a reopened problem is a new
//! incident that refers to the old one, so the record of what was decided when stays as it was.

use crate::audit::{Action, StoredEvent, Target};
use crate::clock::to_millis;
use crate::error::{Error, Result};
use crate::ids::{DocumentId, IncidentId, MatterId, OperatorId, TenantId, TokenId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::{Duration, OffsetDateTime};

/// UK GDPR Article 33: a personal data breach is notified to the regulator within 72 hours of
/// becoming aware of it.
pub const REGULATOR_DEADLINE: Duration = Duration::hours(72);

/// The longest breach window one scoping may cover; a wider one is several incidents' work or
/// a mistake, and every event in it is read.
pub const MAX_SCOPE_WINDOW: Duration = Duration::days(90);

/// Limits on what a reporter may send.
pub const MAX_SUMMARY_CHARS: usize = 200;
pub const MAX_DETAILS_CHARS: usize = 20_000;
pub const MAX_CONTACT_CHARS: usize = 320;

crate::model::stored_enum! {
    /// What was reported.
    pub enum IncidentKind ("incident kind") {
        /// A weakness in the service, from a security researcher or anyone else.
        Vulnerability = "vulnerability",
        /// Client information may have become public or reached the wrong people.
        Breach = "breach",
    }
}

crate::model::stored_enum! {
    /// How bad it is (set by the reporter's kind at first; operators change it when triaging).
    pub enum IncidentSeverity ("incident severity") {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

crate::model::stored_enum! {
    /// Where handling has got to.
    pub enum IncidentState ("incident state") {
        Reported = "reported",
        Triaged = "triaged",
        Contained = "contained",
        Resolved = "resolved",
        Closed = "closed",
    }
}

impl IncidentState {
    const ORDER: [IncidentState; 5] = [
        IncidentState::Reported,
        IncidentState::Triaged,
        IncidentState::Contained,
        IncidentState::Resolved,
        IncidentState::Closed,
    ];

    fn rank(self) -> usize {
        Self::ORDER.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// Whether an incident in this state may move to `next`: forward only.
    pub fn check_move(self, next: IncidentState) -> Result<()> {
        if next.rank() > self.rank() {
            Ok(())
        } else {
            Err(Error::invalid(
                "state",
                format!(
                    "an incident moves forward only (reported, triaged, contained, resolved, closed); this one is {} \
                     and cannot become {}",
                    self.as_str(),
                    next.as_str()
                ),
            ))
        }
    }
}

/// Read a value a person chose (`field` names it in the error) among `all`.
pub fn choose<T: Copy>(field: &'static str, s: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T> {
    all.iter().copied().find(|v| name(*v) == s).ok_or_else(|| {
        Error::invalid(
            field,
            format!("must be one of: {}", all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ")),
        )
    })
}

impl IncidentKind {
    /// The severity a new report starts with: a breach report is high until triage says
    /// otherwise.
    pub fn initial_severity(self) -> IncidentSeverity {
        match self {
            IncidentKind::Vulnerability => IncidentSeverity::Medium,
            IncidentKind::Breach => IncidentSeverity::High,
        }
    }
}

/// A tracking reference for the reporter: `INC-` and twelve hexadecimal digits in groups of
/// four, from the incident's random id (48 bits; the column is unique, so a clash is refused,
/// never merged).
pub fn reference(id: IncidentId) -> String {
    let hex = id.as_uuid().simple().to_string().to_uppercase();
    let d = hex.get(..12).unwrap_or("000000000000");
    format!("INC-{}-{}-{}", &d[..4], &d[4..8], &d[8..12])
}

/// Who wrote an entry of the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum Author {
    Reporter,
    User(UserId),
    Operator(OperatorId),
    System,
}

/// One entry of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: Author,
    /// `reported`, `note`, `state`, `severity`, `assigned`, `scoped`, `notified`, `triage_overdue`.
    pub what: String,
    pub text: String,
}

/// Which signed-in user reported it, when one did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reporter {
    pub tenant_id: TenantId,
    pub user_id: UserId,
}

/// What the operator says a breach covers. Every given part must match an event for it to
/// count (the window always applies); at least one of accounts, IP ranges and documents is
/// needed, so a scope can never be "everything in the window" by accident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreachScope {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Compromised accounts: events they caused.
    #[serde(default)]
    pub accounts: Vec<UserId>,
    /// Compromised API tokens: events caused through them (whoever's they are).
    #[serde(default)]
    pub tokens: Vec<TokenId>,
    /// Source ranges (CIDR): events from there.
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    /// Documents known to be out: events about them.
    #[serde(default)]
    pub documents: Vec<DocumentId>,
}

impl BreachScope {
    /// Refuse a scope that is empty, backwards, too wide or names a range that is not one.
    pub fn check(&self) -> Result<Vec<ipnet::IpNet>> {
        if self.to <= self.from {
            return Err(Error::invalid("to", "must be after `from`"));
        }
        if self.to - self.from > MAX_SCOPE_WINDOW {
            return Err(Error::invalid("to", "the window may cover at most 90 days"));
        }
        if self.accounts.is_empty() && self.tokens.is_empty() && self.ip_ranges.is_empty() && self.documents.is_empty()
        {
            return Err(Error::invalid(
                "accounts",
                "give accounts, API tokens, IP ranges or documents (with the window)",
            ));
        }
        self.ip_ranges
            .iter()
            .map(|r| {
                r.parse::<ipnet::IpNet>().map_err(|_| Error::invalid("ip_ranges", format!("{r:?} is not a CIDR range")))
            })
            .collect()
    }

    /// Whether `ev`, an event of a tenant's chain, falls within the scope. `ranges` are the
    /// parsed `ip_ranges` (from [`BreachScope::check`]).
    pub fn matches(&self, ranges: &[ipnet::IpNet], ev: &StoredEvent) -> bool {
        // Stored times have millisecond precision: compare at that precision, as the store does.
        let (at, from, to) = (to_millis(ev.at), to_millis(self.from), to_millis(self.to));
        if ev.chain.is_empty() || at < from || at >= to {
            return false;
        }
        let account = self.accounts.is_empty() || ev.actor_user().is_some_and(|u| self.accounts.contains(&u));
        let token = self.tokens.is_empty() || {
            let via = serde_json::from_str::<serde_json::Value>(&ev.detail)
                .ok()
                .and_then(|d| d.get(crate::audit::VIA_TOKEN).and_then(|t| t.as_str()).map(str::to_string));
            via.is_some_and(|via| self.tokens.iter().any(|t| t.to_string() == via))
        };
        let source = ranges.is_empty()
            || ev
                .ip
                .as_deref()
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                .is_some_and(|ip| ranges.iter().any(|r| r.contains(&ip)));
        let document =
            self.documents.is_empty() || matches!(ev.target(), Target::Document(d) if self.documents.contains(&d));
        account && token && source && document
    }
}

/// What a breach touched in one firm: ids only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedTenant {
    pub matters: BTreeSet<MatterId>,
    pub documents: BTreeSet<DocumentId>,
    /// Accounts that acted within the scope.
    pub users: BTreeSet<UserId>,
    /// Documents downloaded within the scope (a subset of `documents`).
    pub downloads: u64,
    pub events: u64,
}

/// What a breach touched, firm by firm.
pub type Affected = BTreeMap<TenantId, AffectedTenant>;

/// Fold matching events into what they touched.
pub fn affected<'a>(
    scope: &BreachScope,
    ranges: &[ipnet::IpNet],
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> Affected {
    let mut out = Affected::new();
    for ev in events.into_iter().filter(|e| scope.matches(ranges, e)) {
        let Ok(tenant) = ev.chain.parse::<TenantId>() else { continue };
        let t = out.entry(tenant).or_default();
        t.events += 1;
        if let Some(m) = ev.matter.as_deref().and_then(|m| m.parse().ok()) {
            t.matters.insert(m);
        }
        if let Target::Document(d) = ev.target() {
            t.documents.insert(d);
            if ev.action() == Some(Action::DocumentDownload) {
                t.downloads += 1;
            }
        }
        if let Some(u) = ev.actor_user() {
            t.users.insert(u);
        }
    }
    out
}

/// A firm told of a breach, and whom in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifiedTenant {
    pub tenant_id: TenantId,
    pub users: Vec<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The sealed part of an incident: everything people wrote, and the breach work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentBody {
    pub summary: String,
    pub details: String,
    pub contact: Option<String>,
    pub reporter: Option<Reporter>,
    pub timeline: Vec<TimelineEntry>,
    pub scope: Option<BreachScope>,
    pub affected: Option<Affected>,
    pub notified: Vec<NotifiedTenant>,
}

/// An incident as stored: the columns lists and jobs need, and the sealed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
    pub id: IncidentId,
    pub reference: String,
    pub kind: IncidentKind,
    pub severity: IncidentSeverity,
    pub state: IncidentState,
    pub reported_at: OffsetDateTime,
    /// Triage is due by then (`incident_triage_minutes` after the report).
    pub triage_due: OffsetDateTime,
    /// When the missed triage target was alerted (once).
    pub triage_alerted_at: Option<OffsetDateTime>,
    pub assignee: Option<OperatorId>,
    /// Compare-and-set counter: an update names the version it read.
    pub version: i64,
    /// The master key that wrapped the incident's data key, and the wrapped key.
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    /// The sealed [`IncidentBody`].
    pub body: String,
}

/// A firm's notice of a breach, as its owners and admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreachNotice {
    pub incident_id: IncidentId,
    pub reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub notified_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub affected: AffectedTenant,
}

/// A report as a reporter sends it, checked.
pub fn check_report(summary: &str, details: &str, contact: Option<&str>) -> Result<(String, String, Option<String>)> {
    let summary = crate::validate::line("summary", summary, MAX_SUMMARY_CHARS)?;
    let details = details.trim();
    if details.is_empty() {
        return Err(Error::invalid("details", "say what you found"));
    }
    if details.chars().count() > MAX_DETAILS_CHARS {
        return Err(Error::invalid("details", format!("must be at most {MAX_DETAILS_CHARS} characters")));
    }
    if details.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::invalid("details", "must be text"));
    }
    let contact = match contact.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(crate::validate::line("contact", c, MAX_CONTACT_CHARS)?),
    };
    Ok((summary, details.to_owned(), contact))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn event(tenant: TenantId, actor: &str, action: &str, target: &str, ip: &str, at: OffsetDateTime) -> StoredEvent {
        StoredEvent {
            chain: tenant.to_string(),
            seq: 1,
            at,
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            ip: Some(ip.into()),
            request_id: None,
            detail: "{}".into(),
            matter: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn states_only_move_forward() {
        assert!(IncidentState::Reported.check_move(IncidentState::Triaged).is_ok());
        assert!(IncidentState::Reported.check_move(IncidentState::Resolved).is_ok());
        assert!(IncidentState::Contained.check_move(IncidentState::Triaged).is_err());
        assert!(IncidentState::Closed.check_move(IncidentState::Closed).is_err());
    }

    #[test]
    fn references_are_grouped_hex() {
        let r = reference(IncidentId::new());
        assert_eq!(r.len(), 18, "{r}");
        assert!(r.starts_with("INC-") && r[4..].chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{r}");
    }

    fn window(from: OffsetDateTime, to: OffsetDateTime) -> BreachScope {
        BreachScope { from, to, accounts: vec![], tokens: vec![], ip_ranges: vec![], documents: vec![] }
    }

    #[test]
    fn a_scope_needs_a_subject_and_a_sane_window() {
        let from = datetime!(2026-11-01 00:00 UTC);
        let base = window(from, from + Duration::hours(1));
        assert!(base.check().is_err(), "window alone");
        let backwards = BreachScope { to: from, accounts: vec![UserId::new()], ..base.clone() };
        assert!(backwards.check().is_err());
        let wide = BreachScope { to: from + Duration::days(91), accounts: vec![UserId::new()], ..base.clone() };
        assert!(wide.check().is_err());
        let bad = BreachScope { ip_ranges: vec!["10.0.0.0/33".into()], ..base.clone() };
        assert!(bad.check().is_err());
        let ok = BreachScope { ip_ranges: vec!["203.0.113.0/24".into()], ..base };
        assert_eq!(ok.check().map(|r| r.len()).ok(), Some(1));
    }

    #[test]
    fn matching_events_are_folded_by_tenant() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let (bad, good) = (UserId::new(), UserId::new());
        let (d1, d2) = (DocumentId::new(), DocumentId::new());
        let m = MatterId::new();
        let t0 = datetime!(2026-11-01 10:00 UTC);
        let mut download =
            event(a, &format!("user:{bad}"), "document.download", &format!("document:{d1}"), "198.51.100.7", t0);
        download.matter = Some(m.to_string());
        let events = [
            download,
            event(
                a,
                &format!("user:{bad}"),
                "document.download",
                &format!("document:{d2}"),
                "198.51.100.7",
                t0 + Duration::minutes(5),
            ),
            // Outside the window, another account, another firm: none counts.
            event(
                a,
                &format!("user:{bad}"),
                "document.download",
                "document:x",
                "198.51.100.7",
                t0 + Duration::hours(3),
            ),
            event(a, &format!("user:{good}"), "document.download", &format!("document:{d1}"), "192.0.2.1", t0),
            event(b, &format!("user:{good}"), "matter.view", "matter:y", "198.51.100.7", t0),
        ];
        let scope = BreachScope { accounts: vec![bad], ..window(t0, t0 + Duration::hours(1)) };
        let ranges = scope.check().unwrap_or_default();
        let got = affected(&scope, &ranges, &events);
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![a]);
        let t = &got[&a];
        assert_eq!((t.events, t.downloads), (2, 2));
        assert_eq!(t.documents, BTreeSet::from([d1, d2]));
        assert_eq!(t.matters, BTreeSet::from([m]));
        assert_eq!(t.users, BTreeSet::from([bad]));

        let by_ip = BreachScope { accounts: vec![], ip_ranges: vec!["198.51.100.0/24".into()], ..scope };
        let ranges = by_ip.check().unwrap_or_default();
        assert_eq!(affected(&by_ip, &ranges, &events).len(), 2, "the range reaches both firms");
    }

    #[test]
    fn a_token_scope_matches_the_events_caused_through_that_token_only() {
        let (a, user, leaked) = (TenantId::new(), UserId::new(), TokenId::new());
        let t0 = datetime!(2026-11-01 10:00 UTC);
        let mut through = event(a, &format!("user:{user}"), "document.download", "document:x", "192.0.2.1", t0);
        through.detail = serde_json::json!({ crate::audit::VIA_TOKEN: leaked.to_string() }).to_string();
        let mut other_token = through.clone();
        other_token.detail = serde_json::json!({ crate::audit::VIA_TOKEN: TokenId::new().to_string() }).to_string();
        // The same user in their browser: not the token's doing.
        let in_browser = event(a, &format!("user:{user}"), "document.download", "document:y", "192.0.2.1", t0);
        let scope = BreachScope { tokens: vec![leaked], ..window(t0, t0 + Duration::hours(1)) };
        let ranges = scope.check().unwrap();
        assert!(scope.matches(&ranges, &through));
        assert!(!scope.matches(&ranges, &other_token) && !scope.matches(&ranges, &in_browser));
    }

    #[test]
    fn reports_are_checked() {
        assert!(check_report("", "x", None).is_err());
        assert!(check_report("s", "  ", None).is_err());
        assert!(check_report("s", "a\u{0}b", None).is_err());
        assert!(check_report("s", &"x".repeat(MAX_DETAILS_CHARS + 1), None).is_err());
        assert_eq!(check_report(" s ", "line\nline", Some(" ")).ok(), Some(("s".into(), "line\nline".into(), None)));
    }
}
