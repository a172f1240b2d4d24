//! The platform's own people: operators, their roles and vetting, and the tenant directory they see.

use super::*;

/// One of the service's own staff. Operators belong to no tenant and have no way to read tenant
/// content: no tenant principal is ever made for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub display_name: String,
    pub created_at: OffsetDateTime,
}

/// What an operator may do on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    /// Sees system health and the tenant directory (names and counts, never content).
    Support,
    /// Also manages subscriptions (creates tenants). Needs a current vetting record.
    Privileged,
}

impl OperatorRole {
    pub const ALL: [OperatorRole; 2] = [OperatorRole::Support, OperatorRole::Privileged];
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Support => "support",
            OperatorRole::Privileged => "privileged",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        OperatorRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("role", "must be support or privileged"))
    }
}

/// A role granted to an operator; a suspended grant gives nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorGrant {
    pub operator_id: OperatorId,
    pub role: OperatorRole,
    pub granted_at: OffsetDateTime,
    pub suspended_at: Option<OffsetDateTime>,
}

/// A background check of an operator (the policy's employee vetting): who checked, when, and
/// until when it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VettingRecord {
    pub operator_id: OperatorId,
    pub checked_by: String,
    pub checked_at: OffsetDateTime,
    pub valid_until: OffsetDateTime,
    pub recorded_at: OffsetDateTime,
}

/// One tenant as operators see it: a directory entry with counts, never content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSummary {
    pub tenant: Tenant,
    pub users: u64,
    pub documents: u64,
    pub stored_bytes: u64,
}
