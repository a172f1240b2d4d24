//! Security incidents over the API: the public report channel (no sign-in; its own rate limit
//! per source and a small body limit), a signed-in user's breach report, a firm's breach
//! notices, and the operators' incident work.

use super::dto::{Items, ts};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson, ApiPath, Meta, OperatorCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::error::Error;
use portcullis_core::ids::{DocumentId, IncidentId, TokenId, UserId};
use portcullis_core::incidents::{
    AffectedTenant, BreachNotice, BreachScope, IncidentKind, IncidentSeverity, IncidentState, choose,
};
use portcullis_core::service::{IncidentChange, IncidentView, NewReport};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// The largest report body accepted.
pub const REPORT_BODY_LIMIT: usize = 64 * 1024;

/// A vulnerability or breach report.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `vulnerability` or `breach`.
    pub kind: String,
    /// One line (at most 200 characters).
    pub summary: String,
    /// What you found, how to reproduce it, what may have been exposed (at most 20 000 characters).
    pub details: String,
    /// How to reach you (optional; an email address or anything else, at most 320 characters).
    pub contact: Option<String>,
}

/// A signed-in user's breach report.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreachReportRequest {
    pub summary: String,
    pub details: String,
}

/// A report taken: quote the reference in any follow-up.
#[derive(Serialize, ToSchema)]
pub struct ReportReceipt {
    pub reference: String,
    pub message: String,
}

/// One entry of an incident's timeline.
#[derive(Serialize, ToSchema)]
pub struct TimelineView {
    pub at: String,
    /// `reporter`, `user:<id>`, `operator:<id>` or `system`.
    pub by: String,
    pub what: String,
    pub text: String,
}

/// What a breach touched in one firm.
#[derive(Serialize, ToSchema)]
pub struct AffectedView {
    pub tenant_id: String,
    pub matters: Vec<String>,
    pub documents: Vec<String>,
    pub users: Vec<String>,
    pub downloads: u64,
    pub events: u64,
}

/// A firm told of a breach.
#[derive(Serialize, ToSchema)]
pub struct NotifiedView {
    pub tenant_id: String,
    pub users: Vec<String>,
    pub at: String,
}

/// An incident as operators see it.
#[derive(Serialize, ToSchema)]
pub struct IncidentBodyView {
    pub id: String,
    pub reference: String,
    pub kind: String,
    pub severity: String,
    pub state: String,
    pub reported_at: String,
    pub triage_due: String,
    /// Set when the triage target was missed and alerted.
    pub triage_alerted_at: Option<String>,
    pub assignee: Option<String>,
    /// For breaches: the UK GDPR Article 33 deadline, 72 hours after the report.
    pub regulator_deadline: Option<String>,
    pub summary: String,
    pub details: String,
    pub contact: Option<String>,
    /// The reporter's firm and account, for a signed-in report.
    pub reporter_tenant: Option<String>,
    pub reporter_user: Option<String>,
    pub timeline: Vec<TimelineView>,
    pub affected: Vec<AffectedView>,
    pub notified: Vec<NotifiedView>,
}

fn affected_view(tenant: String, t: &AffectedTenant) -> AffectedView {
    AffectedView {
        tenant_id: tenant,
        matters: t.matters.iter().map(ToString::to_string).collect(),
        documents: t.documents.iter().map(ToString::to_string).collect(),
        users: t.users.iter().map(ToString::to_string).collect(),
        downloads: t.downloads,
        events: t.events,
    }
}

/// The view of an incident, for the API and the console alike.
pub(crate) fn incident_view(v: &IncidentView) -> IncidentBodyView {
    use portcullis_core::incidents::Author;
    let r = &v.record;
    IncidentBodyView {
        id: r.id.to_string(),
        reference: r.reference.clone(),
        kind: r.kind.as_str().into(),
        severity: r.severity.as_str().into(),
        state: r.state.as_str().into(),
        reported_at: ts(r.reported_at),
        triage_due: ts(r.triage_due),
        triage_alerted_at: r.triage_alerted_at.map(ts),
        assignee: r.assignee.map(|a| a.to_string()),
        regulator_deadline: v.regulator_deadline().map(ts),
        summary: v.body.summary.clone(),
        details: v.body.details.clone(),
        contact: v.body.contact.clone(),
        reporter_tenant: v.body.reporter.map(|p| p.tenant_id.to_string()),
        reporter_user: v.body.reporter.map(|p| p.user_id.to_string()),
        timeline: v
            .body
            .timeline
            .iter()
            .map(|e| TimelineView {
                at: ts(e.at),
                by: match &e.by {
                    Author::Reporter => "reporter".into(),
                    Author::User(u) => format!("user:{u}"),
                    Author::Operator(o) => format!("operator:{o}"),
                    Author::System => "system".into(),
                },
                what: e.what.clone(),
                text: e.text.clone(),
            })
            .collect(),
        affected: v.body.affected.iter().flatten().map(|(t, a)| affected_view(t.to_string(), a)).collect(),
        notified: v
            .body
            .notified
            .iter()
            .map(|n| NotifiedView {
                tenant_id: n.tenant_id.to_string(),
                users: n.users.iter().map(ToString::to_string).collect(),
                at: ts(n.at),
            })
            .collect(),
    }
}

/// The per-source limit on public reports, for the API and the form alike. A request whose
/// source is unknown (never, behind the client-address layer) shares one bucket.
pub(crate) fn check_report_rate(s: &AppState, meta: &portcullis_core::audit::RequestMeta) -> Result<(), Error> {
    let ip = meta.ip.as_deref().and_then(|i| i.parse().ok()).unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    s.guards.report(ip)
}

fn receipt(v: &IncidentView) -> (StatusCode, Json<ReportReceipt>) {
    let message = format!(
        "Thank you. Your report is recorded as {}; quote it in any follow-up. Our security team triages every \
         report within its target time.",
        v.record.reference
    );
    (StatusCode::CREATED, Json(ReportReceipt { reference: v.record.reference.clone(), message }))
}

/// Report a vulnerability or a breach. No sign-in; a few reports per source are accepted per
/// minute, and a body of at most 64 KiB.
#[utoipa::path(post, path = "/api/v1/reports", tag = "incidents", request_body = ReportRequest,
    responses((status = 201, body = ReportReceipt),
        (status = 400, body = crate::error::ErrorBody, description = "a field is missing, too long or not text"),
        (status = 413, body = crate::error::ErrorBody, description = "the body is larger than 64 KiB"),
        (status = 429, body = crate::error::ErrorBody, description = "too many reports from this source")))]
pub async fn report(
    State(s): State<AppState>,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<ReportRequest>,
) -> Result<(StatusCode, Json<ReportReceipt>), ApiError> {
    check_report_rate(&s, &meta)?;
    let kind = choose("kind", &req.kind, IncidentKind::ALL, IncidentKind::as_str)?;
    let new = NewReport { kind, summary: &req.summary, details: &req.details, contact: req.contact.as_deref() };
    Ok(receipt(&s.portal.report_incident(new, None, &meta).await?))
}

/// Report, as a signed-in user, that client information may have become public. It lands as a
/// high-severity breach incident naming you and your firm.
#[utoipa::path(post, path = "/api/v1/breach-reports", tag = "incidents", request_body = BreachReportRequest,
    responses((status = 201, body = ReportReceipt), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn breach_report(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<BreachReportRequest>,
) -> Result<(StatusCode, Json<ReportReceipt>), ApiError> {
    let new = NewReport { kind: IncidentKind::Breach, summary: &req.summary, details: &req.details, contact: None };
    Ok(receipt(&s.portal.report_incident(new, Some(&p), &meta).await?))
}

/// A breach notice to the firm (owners and admins).
#[derive(Serialize, ToSchema)]
pub struct BreachNoticeView {
    pub reference: String,
    pub notified_at: String,
    pub from: String,
    pub to: String,
    pub affected: AffectedView,
}

pub(crate) fn notice_view(tenant: String, n: &BreachNotice) -> BreachNoticeView {
    BreachNoticeView {
        reference: n.reference.clone(),
        notified_at: ts(n.notified_at),
        from: ts(n.from),
        to: ts(n.to),
        affected: affected_view(tenant, &n.affected),
    }
}

/// The firm's breach notices of the last 30 days (owners and admins).
#[utoipa::path(get, path = "/api/v1/breach-notices", tag = "incidents",
    responses((status = 200, body = Items<BreachNoticeView>), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn notices(
    State(s): State<AppState>,
    ApiCaller(p): ApiCaller,
) -> Result<Json<Items<BreachNoticeView>>, ApiError> {
    let items = s.portal.breach_notices(&p).await?.iter().map(|n| notice_view(p.tenant_id.to_string(), n)).collect();
    Ok(Json(Items { items }))
}

/// Every incident, newest first (operators).
#[utoipa::path(get, path = "/api/v1/platform/incidents", tag = "incidents",
    responses((status = 200, body = Items<IncidentBodyView>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
) -> Result<Json<Items<IncidentBodyView>>, ApiError> {
    let items = s.portal.list_incidents(&op).await?.iter().map(incident_view).collect();
    Ok(Json(Items { items }))
}

/// One incident (operators).
#[utoipa::path(get, path = "/api/v1/platform/incidents/{id}", tag = "incidents",
    responses((status = 200, body = IncidentBodyView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    ApiPath(id): ApiPath<IncidentId>,
) -> Result<Json<IncidentBodyView>, ApiError> {
    Ok(Json(incident_view(&s.portal.incident(&op, id).await?)))
}

/// A change to an incident: any of these, at least one.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    /// `triaged`, `contained`, `resolved` or `closed` (forward only).
    pub state: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: Option<String>,
    /// An operator's email, or "" to unassign.
    pub assignee: Option<String>,
    /// A note for the timeline.
    pub note: Option<String>,
}

impl IncidentUpdate {
    pub(crate) fn into_change(self) -> Result<IncidentChange, Error> {
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(choose("state", s, IncidentState::ALL, IncidentState::as_str)?),
            None => None,
        };
        let severity = match self.severity.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(choose("severity", s, IncidentSeverity::ALL, IncidentSeverity::as_str)?),
            None => None,
        };
        Ok(IncidentChange { state, severity, assignee: self.assignee, note: self.note })
    }
}

/// Triage, assign, note or move an incident on (privileged operators). Audited.
#[utoipa::path(post, path = "/api/v1/platform/incidents/{id}", tag = "incidents", request_body = IncidentUpdate,
    responses((status = 200, body = IncidentBodyView),
        (status = 400, body = crate::error::ErrorBody, description = "nothing to change, or a state that is not forward"),
        (status = 409, body = crate::error::ErrorBody, description = "someone else changed it first")),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<IncidentId>,
    ApiJson(req): ApiJson<IncidentUpdate>,
) -> Result<Json<IncidentBodyView>, ApiError> {
    Ok(Json(incident_view(&s.portal.update_incident(&op, id, req.into_change()?, &meta).await?)))
}

/// A breach's scope: the window, and the compromised accounts, API tokens, source ranges or
/// documents.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    /// RFC 3339.
    pub from: String,
    /// RFC 3339 (not included).
    pub to: String,
    #[serde(default)]
    pub accounts: Vec<String>,
    /// API token ids: events caused through those tokens.
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    #[serde(default)]
    pub documents: Vec<String>,
}

impl ScopeRequest {
    pub(crate) fn into_scope(self) -> Result<BreachScope, Error> {
        let time = |field: &'static str, v: &str| {
            OffsetDateTime::parse(v.trim(), &Rfc3339).map_err(|_| Error::invalid(field, "must be an RFC 3339 time"))
        };
        let ids = |field: &'static str, v: &[String]| -> Result<Vec<uuid::Uuid>, Error> {
            v.iter()
                .map(|s| {
                    uuid::Uuid::parse_str(s.trim()).map_err(|_| Error::invalid(field, format!("{s:?} is not an id")))
                })
                .collect()
        };
        Ok(BreachScope {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            accounts: ids("accounts", &self.accounts)?.into_iter().map(UserId::from_uuid).collect(),
            tokens: ids("tokens", &self.tokens)?.into_iter().map(TokenId::from_uuid).collect(),
            ip_ranges: self.ip_ranges,
            documents: ids("documents", &self.documents)?.into_iter().map(DocumentId::from_uuid).collect(),
        })
    }
}

/// Compute from the audit log what a breach touched and keep it on the incident, for checking
/// before anyone is told (privileged operators).
#[utoipa::path(post, path = "/api/v1/platform/incidents/{id}/scope", tag = "incidents", request_body = ScopeRequest,
    responses((status = 200, body = IncidentBodyView), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn scope(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<IncidentId>,
    ApiJson(req): ApiJson<ScopeRequest>,
) -> Result<Json<IncidentBodyView>, ApiError> {
    Ok(Json(incident_view(&s.portal.scope_breach(&op, id, req.into_scope()?, &meta).await?)))
}

/// Tell every firm in the scope at once: mail to its owners and admins, and a banner
/// (privileged operators). Once per incident.
#[utoipa::path(post, path = "/api/v1/platform/incidents/{id}/notify", tag = "incidents",
    responses((status = 200, body = IncidentBodyView), (status = 400, body = crate::error::ErrorBody, description = "not scoped, or told already")),
    security(("bearer" = [])))]
pub async fn notify(
    State(s): State<AppState>,
    OperatorCaller(op): OperatorCaller,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<IncidentId>,
) -> Result<Json<IncidentBodyView>, ApiError> {
    Ok(Json(incident_view(&s.portal.notify_breach(&op, id, &meta).await?)))
}
