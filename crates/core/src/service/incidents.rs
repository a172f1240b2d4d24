//! Security incidents: vulnerability and breach reports land here, operators work them, and a
//! confirmed breach is scoped from the audit log and told to every firm it touched.
//!
//! What people wrote may itself hold client information (a breach report often quotes what was
//! seen), so an incident's body is sealed under its own data key, wrapped by the master key
//! like a tenant key (and re-wrapped with them when the master key rotates). Every change is
//! audited on the platform chain; a signed-in reporter's report is also audited in their firm's
//! chain, and a breach notice in each firm's chain it went to.

use super::Portal;
use super::notifications::{Rendered, one_line, utc};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::crypto::fields::FieldCipher;
use crate::crypto::keys::KeyBytes;
use crate::error::{Error, Result};
use crate::ids::{IncidentId, MailId};
use crate::incidents::{
    self, Affected, Author, BreachNotice, BreachScope, IncidentBody, IncidentKind, IncidentRecord, IncidentSeverity,
    IncidentState, NotifiedTenant, Reporter, TimelineEntry,
};
use crate::model::{AlertKind, DeliveryState, MailKind, NewAlert, OutboxMail, Severity};
use crate::policy::can;
use crate::policy::{self, OperatorPrincipal, PlatformPermission, Principal};
use crate::ports::Tx;
use time::{Duration, OffsetDateTime};

/// Events read per page while scoping a breach, and the most read in all.
const SCOPE_PAGE: i64 = 5_000;
const SCOPE_MAX_EVENTS: usize = 2_000_000;

/// How long a firm's owners and admins see a breach notice as a banner.
pub const NOTICE_BANNER: Duration = Duration::days(30);

/// An incident as operators see it: the record and its opened body.
#[derive(Clone, Debug)]
pub struct IncidentView {
    pub record: IncidentRecord,
    pub body: IncidentBody,
}

impl IncidentView {
    /// The UK GDPR Article 33 deadline, for breaches: 72 hours from the report (when the
    /// platform became aware).
    pub fn regulator_deadline(&self) -> Option<OffsetDateTime> {
        (self.record.kind == IncidentKind::Breach).then(|| self.record.reported_at + incidents::REGULATOR_DEADLINE)
    }
}

/// What an operator changes in one step; every part is optional, a note is always welcome.
#[derive(Clone, Debug, Default)]
pub struct IncidentChange {
    pub state: Option<IncidentState>,
    pub severity: Option<IncidentSeverity>,
    /// An operator's email, or "" to unassign.
    pub assignee: Option<String>,
    pub note: Option<String>,
}

/// A report as the web layer hands it over.
#[derive(Clone, Debug)]
pub struct NewReport<'a> {
    pub kind: IncidentKind,
    pub summary: &'a str,
    pub details: &'a str,
    pub contact: Option<&'a str>,
}

/// The associated data an incident's key is wrapped with: it cannot be moved to another.
pub(super) fn key_context(id: IncidentId) -> Vec<u8> {
    [b"portcullis incident key v1".as_slice(), id.as_uuid().as_bytes()].concat()
}

fn place(id: IncidentId) -> String {
    format!("incidents.body:{id}")
}

/// An incident's audit detail: its reference and state, never what anyone wrote; `extra`
/// (`name`, value) is added beside them.
fn audit_detail(r: &IncidentRecord, extra: Option<(&str, serde_json::Value)>) -> serde_json::Value {
    let mut d = serde_json::Map::new();
    d.insert("reference".into(), r.reference.clone().into());
    d.insert("kind".into(), r.kind.as_str().into());
    d.insert("severity".into(), r.severity.as_str().into());
    d.insert("state".into(), r.state.as_str().into());
    d.insert("assignee".into(), r.assignee.map(|a| a.to_string()).into());
    if let Some((k, v)) = extra {
        d.insert(k.into(), v);
    }
    serde_json::Value::Object(d)
}

impl Portal {
    async fn incident_key(&self, r: &IncidentRecord) -> Result<KeyBytes> {
        self.keyring.provider().unwrap(&r.key_id, &r.wrapped_key, &key_context(r.id)).await
    }

    async fn open_incident(&self, r: IncidentRecord) -> Result<IncidentView> {
        let key = self.incident_key(&r).await?;
        let json = FieldCipher::for_incident(r.id, &key)?.open(&place(r.id), &r.body)?;
        let body =
            serde_json::from_str(&json).map_err(|_| Error::Integrity("an incident's record is damaged".into()))?;
        Ok(IncidentView { record: r, body })
    }

    async fn seal_body(&self, r: &IncidentRecord, body: &IncidentBody) -> Result<String> {
        let key = self.incident_key(r).await?;
        let json = serde_json::to_string(body).map_err(Error::internal)?;
        FieldCipher::for_incident(r.id, &key)?.seal(&place(r.id), &json)
    }

    /// Take a report (public, or from a signed-in user) and give the reporter its reference.
    /// Operators hear of it at once through an alert.
    pub async fn report_incident(
        &self,
        report: NewReport<'_>,
        reporter: Option<&Principal>,
        meta: &RequestMeta,
    ) -> Result<IncidentView> {
        let (summary, details, contact) = incidents::check_report(report.summary, report.details, report.contact)?;
        let now = self.clock.now();
        let id = IncidentId::new();
        let key = KeyBytes::random()?;
        let wrapped = self.keyring.provider().wrap(&key, &key_context(id)).await?;
        let by = match reporter {
            Some(p) => Author::User(p.user_id),
            None => Author::Reporter,
        };
        let body = IncidentBody {
            summary,
            details,
            contact,
            reporter: reporter.map(|p| Reporter { tenant_id: p.tenant_id, user_id: p.user_id }),
            timeline: vec![TimelineEntry { at: now, by, what: "reported".into(), text: String::new() }],
            ..IncidentBody::default()
        };
        let mut record = IncidentRecord {
            id,
            reference: incidents::reference(id),
            kind: report.kind,
            severity: report.kind.initial_severity(),
            state: IncidentState::Reported,
            reported_at: now,
            triage_due: now + self.settings.incident_triage,
            triage_alerted_at: None,
            assignee: None,
            version: 1,
            key_id: wrapped.key_id,
            wrapped_key: wrapped.bytes,
            body: String::new(),
        };
        record.body = self.seal_body(&record, &body).await?;
        let mut tx = self.write().await?;
        tx.incidents().insert_incident(&record).await?;
        let actor = reporter.map(|p| Actor::User(p.user_id)).unwrap_or(Actor::Anonymous);
        let detail = audit_detail(&record, Some(("tenant", reporter.map(|p| p.tenant_id.to_string()).into())));
        let ev = NewEvent::new(None, actor, Action::IncidentReport, Target::Incident(id), meta).with_detail(detail);
        tx.audit().append_audit(&ev, now).await?;
        if let Some(p) = reporter {
            let ev = NewEvent::new(Some(p.tenant_id), actor, Action::IncidentReport, Target::Incident(id), meta)
                .with_detail(serde_json::json!({ "reference": record.reference, "kind": record.kind.as_str() }));
            tx.audit().append_audit(&ev, now).await?;
        }
        let severity = if record.kind == IncidentKind::Breach { Severity::Critical } else { Severity::Warning };
        let alert = NewAlert::new(
            AlertKind::IncidentReported,
            severity,
            None,
            format!("incident:{id}"),
            format!(
                "New {} report {}: triage due by {} UTC",
                record.kind.as_str(),
                record.reference,
                utc(record.triage_due)
            ),
        );
        self.raise_alert_in(&mut *tx, &alert, now).await?;
        tx.commit().await?;
        Ok(IncidentView { record, body })
    }

    /// Every incident, newest first (at most 500).
    pub async fn list_incidents(&self, op: &OperatorPrincipal) -> Result<Vec<IncidentView>> {
        policy::authorize_platform(op, PlatformPermission::ViewIncidents, self.clock.now())?;
        let rows = self.read().await?.incidents().list_incidents(500).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.open_incident(r).await?);
        }
        Ok(out)
    }

    /// One incident, whole.
    pub async fn incident(&self, op: &OperatorPrincipal, id: IncidentId) -> Result<IncidentView> {
        policy::authorize_platform(op, PlatformPermission::ViewIncidents, self.clock.now())?;
        let r = self.read().await?.incidents().incident(id).await?.ok_or(Error::NotFound)?;
        self.open_incident(r).await
    }

    /// Apply `f` to an incident and store it with a timeline entry, audited as `action`: one
    /// transaction, compare-and-set on its version, so two operators never overwrite each other.
    async fn change_incident<F>(
        &self,
        op: &OperatorPrincipal,
        id: IncidentId,
        action: crate::audit::Action,
        meta: &RequestMeta,
        f: F,
    ) -> Result<IncidentView>
    where
        F: for<'t> FnOnce(
                &'t mut dyn Tx,
                &'t mut IncidentView,
                OffsetDateTime,
            ) -> futures::future::BoxFuture<'t, Result<serde_json::Value>>
            + Send,
    {
        let now = self.clock.now();
        if let Err(e) = policy::authorize_platform(op, PlatformPermission::ManageIncidents, now) {
            return Err(self.operator_refused(op, action.as_str(), e).await?);
        }
        let mut tx = self.write().await?;
        let r = tx.incidents().incident(id).await?.ok_or(Error::NotFound)?;
        let mut view = self.open_incident(r).await?;
        let extra = f(&mut *tx, &mut view, now).await?;
        view.record.version += 1;
        view.record.body = self.seal_body(&view.record, &view.body).await?;
        if !tx.incidents().update_incident(&view.record).await? {
            return Err(Error::Conflict("A newer change to this incident".into()));
        }
        let detail = audit_detail(&view.record, Some(("change", extra)));
        let ev = NewEvent::new(None, Actor::Operator(op.operator.id), action, Target::Incident(id), meta)
            .with_detail(detail);
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Triage, assign, note or move an incident on.
    pub async fn update_incident(
        &self,
        op: &OperatorPrincipal,
        id: IncidentId,
        change: IncidentChange,
        meta: &RequestMeta,
    ) -> Result<IncidentView> {
        let note = change.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
        if let Some(n) = &note
            && n.chars().count() > incidents::MAX_DETAILS_CHARS
        {
            return Err(Error::invalid("note", format!("must be at most {} characters", incidents::MAX_DETAILS_CHARS)));
        }
        if change.state.is_none() && change.severity.is_none() && change.assignee.is_none() && note.is_none() {
            return Err(Error::invalid("state", "give a state, severity, assignee or note"));
        }
        let by = Author::Operator(op.operator.id);
        self.change_incident(op, id, Action::IncidentUpdate, meta, move |tx, v, now| {
            Box::pin(async move {
                let mut said = serde_json::Map::new();
                let mut entry = |what: &str, text: String| {
                    v.body.timeline.push(TimelineEntry { at: now, by: by.clone(), what: what.into(), text });
                };
                if let Some(s) = change.state {
                    v.record.state.check_move(s)?;
                    entry("state", format!("{} → {}", v.record.state.as_str(), s.as_str()));
                    said.insert("state".into(), s.as_str().into());
                    v.record.state = s;
                }
                if let Some(s) = change.severity {
                    entry("severity", format!("{} → {}", v.record.severity.as_str(), s.as_str()));
                    said.insert("severity".into(), s.as_str().into());
                    v.record.severity = s;
                }
                if let Some(email) = change.assignee {
                    let who = if email.trim().is_empty() {
                        None
                    } else {
                        let e = crate::validate::email(&email)?;
                        Some(
                            tx.operators()
                                .operator_by_email(&e)
                                .await?
                                .ok_or_else(|| Error::invalid("assignee", "no operator has this email"))?,
                        )
                    };
                    entry("assigned", who.as_ref().map(|o| o.display_name.clone()).unwrap_or_else(|| "nobody".into()));
                    said.insert("assignee".into(), who.as_ref().map(|o| o.id.to_string()).into());
                    v.record.assignee = who.map(|o| o.id);
                }
                if let Some(n) = note {
                    entry("note", n);
                    said.insert("note".into(), true.into());
                }
                Ok(serde_json::Value::Object(said))
            })
        })
        .await
    }

    /// Compute from the audit log what a breach touched, and keep it on the incident for the
    /// operator to check before anyone is told. Scoping again replaces the scope (until the
    /// firms have been notified).
    pub async fn scope_breach(
        &self,
        op: &OperatorPrincipal,
        id: IncidentId,
        scope: BreachScope,
        meta: &RequestMeta,
    ) -> Result<IncidentView> {
        let ranges = scope.check()?;
        if let Err(e) = policy::authorize_platform(op, PlatformPermission::ManageIncidents, self.clock.now()) {
            return Err(self.operator_refused(op, "incident.scope", e).await?);
        }
        // Read the window first, in pages, outside the write transaction.
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let page = self.read().await?.audit().audit_window(scope.from, scope.to, after.clone(), SCOPE_PAGE).await?;
            let last = page.last().map(|e| (e.at, e.chain.clone(), e.seq));
            let full = page.len() as i64 == SCOPE_PAGE;
            events.extend(page.into_iter().filter(|e| scope.matches(&ranges, e)));
            if !full || events.len() > SCOPE_MAX_EVENTS {
                break;
            }
            after = last;
        }
        if events.len() > SCOPE_MAX_EVENTS {
            return Err(Error::invalid("to", "the scope matches too many events; narrow the window or the subjects"));
        }
        let affected = incidents::affected(&scope, &ranges, &events);
        let by = Author::Operator(op.operator.id);
        self.change_incident(op, id, Action::IncidentScope, meta, move |_, v, now| {
            Box::pin(async move {
                if v.record.kind != IncidentKind::Breach {
                    return Err(Error::invalid("kind", "only a breach is scoped"));
                }
                if !v.body.notified.is_empty() {
                    return Err(Error::invalid(
                        "scope",
                        "the firms were notified of this scope already; open a new incident",
                    ));
                }
                let summary = summarise(&affected);
                v.body.timeline.push(TimelineEntry { at: now, by, what: "scoped".into(), text: summary });
                v.body.scope = Some(scope);
                v.body.affected = Some(affected);
                Ok(serde_json::json!({ "tenants": v.body.affected.as_ref().map_or(0, |a| a.len()) }))
            })
        })
        .await
    }

    /// Tell every firm the scope touched, at once: each firm's owners and admins get a mail
    /// (through the outbox) and a banner, in one transaction with the record of who was told.
    pub async fn notify_breach(
        &self,
        op: &OperatorPrincipal,
        id: IncidentId,
        meta: &RequestMeta,
    ) -> Result<IncidentView> {
        let by = Author::Operator(op.operator.id);
        let reference_meta = meta.clone();
        self.change_incident(op, id, Action::IncidentNotify, meta, move |tx, v, now| {
            Box::pin(async move {
                let (Some(scope), Some(affected)) = (v.body.scope.clone(), v.body.affected.clone()) else {
                    return Err(Error::invalid("scope", "scope the breach first"));
                };
                if !v.body.notified.is_empty() {
                    return Err(Error::invalid("scope", "the firms were notified already"));
                }
                let mut told = Vec::new();
                for (tenant, touched) in &affected {
                    if tx.tenants().tenant(*tenant).await?.is_none() {
                        continue;
                    }
                    let notice = BreachNotice {
                        incident_id: v.record.id,
                        reference: v.record.reference.clone(),
                        notified_at: now,
                        from: scope.from,
                        to: scope.to,
                        affected: touched.clone(),
                    };
                    tx.incidents().insert_breach_notice(&notice, *tenant).await?;
                    let users = tx.users().tenant_admins(*tenant).await?;
                    for user_id in &users {
                        tx.outbox()
                            .insert_mail(&OutboxMail {
                                id: MailId::new(),
                                tenant_id: *tenant,
                                user_id: *user_id,
                                kind: MailKind::BreachNotice,
                                detail: serde_json::to_value(&notice).map_err(Error::internal)?,
                                delivery: DeliveryState::due(now),
                            })
                            .await?;
                    }
                    let ev = NewEvent::new(
                        Some(*tenant),
                        Actor::System,
                        Action::BreachNotified,
                        Target::Incident(v.record.id),
                        &reference_meta,
                    )
                    .with_detail(serde_json::json!({
                        "reference": v.record.reference,
                        "users": users.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "matters": touched.matters.len(),
                        "documents": touched.documents.len(),
                    }));
                    tx.audit().append_audit(&ev, now).await?;
                    told.push(NotifiedTenant { tenant_id: *tenant, users, at: now });
                }
                let people: usize = told.iter().map(|t| t.users.len()).sum();
                let text = format!("{} firm(s), {people} owner(s) and admin(s) told by mail and banner", told.len());
                v.body.timeline.push(TimelineEntry { at: now, by, what: "notified".into(), text });
                let out = serde_json::json!({ "tenants": told.len(), "people": people });
                v.body.notified = told;
                Ok(out)
            })
        })
        .await
    }

    /// Alert every incident still untriaged past its target, once each. Run by the background
    /// job on every node; the compare-and-set on the version makes it once in all.
    pub async fn check_incident_targets(&self) -> Result<usize> {
        let now = self.clock.now();
        let overdue = self.read().await?.incidents().triage_overdue(now).await?;
        let mut alerted = 0;
        for r in overdue {
            let mut view = self.open_incident(r).await?;
            let mut tx = self.write().await?;
            view.body.timeline.push(TimelineEntry {
                at: now,
                by: Author::System,
                what: "triage_overdue".into(),
                text: format!("not triaged by {} UTC", utc(view.record.triage_due)),
            });
            view.record.triage_alerted_at = Some(now);
            view.record.version += 1;
            view.record.body = self.seal_body(&view.record, &view.body).await?;
            if !tx.incidents().update_incident(&view.record).await? {
                continue;
            }
            let id = view.record.id;
            let ev = NewEvent::new(
                None,
                Actor::System,
                Action::IncidentTriageOverdue,
                Target::Incident(id),
                &RequestMeta::default(),
            )
            .with_detail(audit_detail(&view.record, None));
            tx.audit().append_audit(&ev, now).await?;
            let alert = NewAlert::new(
                AlertKind::IncidentTriageOverdue,
                Severity::Critical,
                None,
                format!("incident:{id}"),
                format!(
                    "Incident {} was not triaged by its target ({} UTC)",
                    view.record.reference,
                    utc(view.record.triage_due)
                ),
            );
            self.raise_alert_in(&mut *tx, &alert, now).await?;
            tx.commit().await?;
            alerted += 1;
        }
        Ok(alerted)
    }

    /// The breach notices a firm's owners and admins see (the last 30 days).
    pub async fn breach_notices(&self, p: &Principal) -> Result<Vec<BreachNotice>> {
        let grant = policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        self.read().await?.incidents().breach_notices(grant.tenant_id(), self.clock.now() - NOTICE_BANNER).await
    }
}

/// One line on what a scope found.
fn summarise(a: &Affected) -> String {
    let docs: usize = a.values().map(|t| t.documents.len()).sum();
    let matters: usize = a.values().map(|t| t.matters.len()).sum();
    let users: usize = a.values().map(|t| t.users.len()).sum();
    format!("{} firm(s), {matters} matter(s), {docs} document(s), {users} account(s)", a.len())
}

/// The breach notice to a firm's owners and admins: what is known, in ids and counts (the mail
/// leaves the service, so it names no matter or document), and where to see it.
pub fn render_breach_notice(firm: &str, n: &BreachNotice, public_url: &str) -> Rendered {
    let firm = one_line(firm, 200);
    let t = &n.affected;
    let url = format!("{}/account/security", public_url.trim_end_matches('/'));
    let body = format!(
        "We have confirmed a security breach that touched your firm's data at {firm}.\n\
         \n\
         Reference:  {reference}\n\
         Period:     {from} to {to} (UTC)\n\
         Matters:    {matters}\n\
         Documents:  {documents} ({downloads} download(s))\n\
         Accounts:   {users} of your firm's accounts acted within it\n\
         \n\
         Sign in as an owner or admin to see which matters and documents: the notice is shown\n\
         on every page, and the list is at\n\
         {url}\n\
         \n\
         You may have to tell your own clients and the regulator (UK GDPR Article 33: within 72\n\
         hours of becoming aware). Quote the reference when you contact us.\n",
        reference = n.reference,
        from = utc(n.from),
        to = utc(n.to),
        matters = t.matters.len(),
        documents = t.documents.len(),
        downloads = t.downloads,
        users = t.users.len(),
    );
    Rendered { subject: format!("Security breach notice {} for {firm}", n.reference), body }
}
