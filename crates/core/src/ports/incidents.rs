//! Incidents and the breach notices sent for them.

use crate::error::Result;
use crate::ids::{IncidentId, TenantId};
use crate::incidents::{BreachNotice, IncidentRecord};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait IncidentRepo: Send {
    async fn insert_incident(&mut self, i: &IncidentRecord) -> Result<()>;
    async fn incident(&mut self, id: IncidentId) -> Result<Option<IncidentRecord>>;
    /// Newest first.
    async fn list_incidents(&mut self, limit: i64) -> Result<Vec<IncidentRecord>>;
    /// Store `i` if the stored version is still `i.version - 1`; false if someone else changed
    /// it first.
    async fn update_incident(&mut self, i: &IncidentRecord) -> Result<bool>;
    /// Incidents still `reported` past their triage target and not alerted yet.
    async fn triage_overdue(&mut self, now: OffsetDateTime) -> Result<Vec<IncidentRecord>>;
    async fn insert_breach_notice(&mut self, n: &BreachNotice, tenant: TenantId) -> Result<()>;
    /// A firm's breach notices since `since`, newest first.
    async fn breach_notices(&mut self, tenant: TenantId, since: OffsetDateTime) -> Result<Vec<BreachNotice>>;
}
