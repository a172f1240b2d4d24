//! Four eyes: the sensitive actions that wait for a second person, in a firm and on the platform, and the exports they allow.

use super::*;

/// A sensitive action that takes effect only once a second, different admin approves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SensitiveAction {
    /// Give a user a role that widens their reach (see `policy::rises_in_reach`).
    GrantRole { user_id: UserId, role: Role },
    /// Let a deactivated user sign in again.
    ReactivateUser { user_id: UserId },
    /// Lower the firm's two-factor requirement to these settings.
    TwoFactorPolicy { staff: bool, clients: bool },
    /// Destroy the firm and all its data (customer-directed erasure; see `service::erasure`).
    EraseTenant,
    /// Export all of the firm's data in an archive encrypted to this age recipient (`age1...`,
    /// supplied by the owner; see `service::export`).
    ExportTenant { recipient: String },
}

impl SensitiveAction {
    /// The stable name used in audit events and the API.
    pub fn name(&self) -> &'static str {
        match self {
            SensitiveAction::GrantRole { .. } => "grant_role",
            SensitiveAction::ReactivateUser { .. } => "reactivate_user",
            SensitiveAction::TwoFactorPolicy { .. } => "two_factor_policy",
            SensitiveAction::EraseTenant => "erase_tenant",
            SensitiveAction::ExportTenant { .. } => "export_tenant",
        }
    }
}

/// Where a tenant export stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportState {
    /// Approved; the export job has not finished writing it (it starts over after a restart).
    Pending,
    /// The archive is stored and may be downloaded until `expires_at`.
    Done,
    /// Writing failed; `error` says why. A new request is needed.
    Failed,
    /// Past `expires_at`: the archive was deleted.
    Expired,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Pending => "pending",
            ExportState::Done => "done",
            ExportState::Failed => "failed",
            ExportState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(ExportState::Pending),
            "done" => Ok(ExportState::Done),
            "failed" => Ok(ExportState::Failed),
            "expired" => Ok(ExportState::Expired),
            other => Err(crate::Error::internal(format!("unknown export state {other:?}"))),
        }
    }
}

/// An export of a whole firm's data, identified by the approval that allowed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantExport {
    pub id: ApprovalId,
    pub tenant_id: TenantId,
    /// The age recipient the archive is encrypted to.
    pub recipient: String,
    pub requested_by: UserId,
    pub approved_by: UserId,
    pub state: ExportState,
    pub entries_done: u64,
    pub entries_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The stored archive's size and SHA-256 (hex) once done.
    pub archive_size: Option<u64>,
    pub archive_sha256: Option<String>,
    /// The SHA-256 of the archive's manifest entry, which an import names.
    pub manifest_sha256: Option<String>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
}

impl TenantExport {
    /// Where the archive is kept in the blob store.
    pub fn blob_key(&self) -> String {
        export_blob_key(self.tenant_id, self.id)
    }
}

/// The blob-store key of a tenant export's archive (under the tenant's prefix, so erasure
/// finds it).
pub fn export_blob_key(tenant: TenantId, id: ApprovalId) -> String {
    format!("tenants/{tenant}/exports/{id}.age")
}

/// Where an approval request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    /// Approved by a second admin, and carried out in the same transaction.
    Approved,
    Rejected,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(ApprovalState::Pending),
            "approved" => Ok(ApprovalState::Approved),
            "rejected" => Ok(ApprovalState::Rejected),
            other => Err(crate::Error::internal(format!("unknown approval state {other:?}"))),
        }
    }
}

/// A request for a sensitive action (four eyes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: ApprovalId,
    pub tenant_id: TenantId,
    pub action: SensitiveAction,
    pub requested_by: UserId,
    pub requested_at: OffsetDateTime,
    /// A pending request past this time can no longer be approved.
    pub expires_at: OffsetDateTime,
    pub state: ApprovalState,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<OffsetDateTime>,
}

/// A sensitive action on the whole platform, carried out only after two privileged operators
/// agreed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformAction {
    /// Rotate the master key (`portcullis keys rotate-master --approval ID`).
    RotateMasterKey,
    /// End a firm's subscription. It locks every one of the firm's people out, so one operator
    /// may only ask (`POST /api/v1/platform/tenants/{name}/end`); the second operator's approval
    /// ends it, in the approval's own transaction.
    EndSubscription(TenantId),
}

impl PlatformAction {
    /// The action's name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformAction::RotateMasterKey => "rotate_master_key",
            PlatformAction::EndSubscription(_) => "end_subscription",
        }
    }

    /// The firm the action is done to, if it is done to one.
    pub fn tenant(self) -> Option<TenantId> {
        match self {
            PlatformAction::RotateMasterKey => None,
            PlatformAction::EndSubscription(t) => Some(t),
        }
    }

    /// The stored form: the name, then `:` and the firm's id for an action done to a firm (so an
    /// approval names what it allows, and cannot be spent on another firm).
    pub fn to_stored(self) -> String {
        match self.tenant() {
            Some(t) => format!("{}:{t}", self.as_str()),
            None => self.as_str().to_string(),
        }
    }

    /// Read [`PlatformAction::to_stored`]'s form back.
    pub fn from_stored(s: &str) -> crate::Result<Self> {
        let bad = || crate::Error::internal(format!("unknown platform action {s:?}"));
        match s.split_once(':') {
            None if s == "rotate_master_key" => Ok(PlatformAction::RotateMasterKey),
            Some(("end_subscription", t)) => Ok(PlatformAction::EndSubscription(t.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }

    /// An action asked for by name on the approvals API. Only the actions done to no firm are
    /// asked for there; a firm's are asked for where they are done.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "rotate_master_key" => Ok(PlatformAction::RotateMasterKey),
            "end_subscription" => Err(crate::Error::invalid(
                "action",
                "a subscription's end is asked for with POST /api/v1/platform/tenants/{name}/end",
            )),
            _ => Err(crate::Error::invalid("action", "the platform actions needing approval are: rotate_master_key")),
        }
    }
}

/// A request for a sensitive platform action (four eyes among operators).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformApproval {
    pub id: ApprovalId,
    pub action: PlatformAction,
    pub requested_by: OperatorId,
    pub requested_at: OffsetDateTime,
    /// A pending request past this time can no longer be approved; an approved one can no
    /// longer be used.
    pub expires_at: OffsetDateTime,
    pub state: ApprovalState,
    pub decided_by: Option<OperatorId>,
    pub decided_at: Option<OffsetDateTime>,
    /// When the action it allowed was carried out (an approval allows it once).
    pub used_at: Option<OffsetDateTime>,
}
