//! Change records (ITIL change management). Every change to a security setting — a firm's
//! upload allow-list, network access list, DLP policy and download cap, two-factor requirement,
//! users' roles, API tokens and data keys; on the platform the master key, the destruction of a
//! firm's keys, operators and their roles — is one audit event of an action named in
//! [`TENANT`] or [`PLATFORM`]. Its detail holds the setting `before` and `after` the change and,
//! where separation of duties applies, the `approval` that allowed it (see [`detail`]). A change
//! record is that event read as who, what, when, before, after and approval ([`record`]).
//!
//! Why the audit log and not a table of its own: the event is written in the change's own
//! transaction, so a change cannot happen unrecorded and no record survives a change that was
//! rolled back; it is covered by the chain's hashes and signed checkpoints, so a record cannot
//! be edited or removed unseen; and there is one copy to keep, export, back up and erase.

use crate::audit::search::Scope;
use crate::audit::{Action, StoredEvent};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// A kind of change: the audit action that records it and the setting it changes, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeKind {
    pub action: Action,
    pub setting: &'static str,
}

const fn kind(action: Action, setting: &'static str) -> ChangeKind {
    ChangeKind { action, setting }
}

/// The changes a firm's chain records.
pub const TENANT: &[ChangeKind] = &[
    kind(Action::TenantUploadPolicy, "upload allow-list"),
    kind(Action::TenantNetworkAccess, "network access list"),
    kind(Action::TenantDlpPolicy, "data loss prevention policy and download cap"),
    kind(Action::TenantTwoFactorPolicy, "two-factor requirement"),
    kind(Action::UserRoleChange, "user role"),
    kind(Action::TokenCreate, "API token issued"),
    kind(Action::TokenRevoke, "API token revoked"),
    kind(Action::KeysRotateTenantStart, "data key: new version"),
    kind(Action::KeysRotateTenantFinish, "data key: old versions retired"),
];

/// The changes the platform's chain records.
pub const PLATFORM: &[ChangeKind] = &[
    kind(Action::KeysRotateMaster, "master key"),
    kind(Action::KeysRotateMasterUnapproved, "master key: rotation without approval"),
    kind(Action::KeysShred, "a firm's keys destroyed"),
    kind(Action::OperatorAdd, "operator added"),
    kind(Action::OperatorGrant, "operator role granted"),
    kind(Action::OperatorRoleSuspended, "operator role suspended"),
    kind(Action::OperatorTokensRevoked, "operator tokens revoked"),
    kind(Action::ConfigSecurityLimits, "security limits (configuration)"),
];

/// The catalogue of a chain.
pub fn kinds(scope: Scope) -> &'static [ChangeKind] {
    match scope {
        Scope::Tenant => TENANT,
        Scope::Platform => PLATFORM,
    }
}

/// Who allowed a change that one person may not make alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Approval {
    /// The approval request's id.
    pub id: String,
    /// Stored actor form (`user:<id>`, `operator:<id>`) of who asked.
    pub requested_by: String,
    /// Stored actor form of who approved.
    pub approved_by: String,
}

/// The detail of a change event: the setting before and after, and the approval if one was
/// needed. Every site that makes a change in the catalogue builds its detail here, so the
/// records have one shape.
pub fn detail(before: impl Serialize, after: impl Serialize, approval: Option<&Approval>) -> Value {
    let mut d = serde_json::Map::new();
    d.insert("before".into(), serde_json::json!(before));
    d.insert("after".into(), serde_json::json!(after));
    if let Some(a) = approval {
        d.insert("approval".into(), serde_json::json!(a));
    }
    Value::Object(d)
}

/// One change, as the change list shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangeRecord {
    /// `CHG-<seq>` in a firm's chain, `CHG-P-<seq>` in the platform's: the event's place in its
    /// chain, so the reference leads straight to the tamper-evident event.
    pub reference: String,
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The setting changed, in words.
    pub setting: &'static str,
    /// The audit action that records it.
    pub action: String,
    /// Who made it (stored actor form).
    pub actor: String,
    /// What it was made to (`tenant:<id>`, `user:<id>`, `token:<id>`, `operator:<id>`).
    pub subject: String,
    pub before: Value,
    pub after: Value,
    /// Present where separation of duties required a second person.
    pub approval: Option<Approval>,
}

/// Read an event of `scope`'s chain as a change record; `None` for an event that records no
/// change of a security setting. Events written before the shape of [`detail`] existed have no
/// `before`: their whole detail is shown as `after`, so nothing they recorded is hidden.
pub fn record(ev: &StoredEvent, scope: Scope) -> Option<ChangeRecord> {
    let kind = kinds(scope).iter().find(|k| Some(k.action) == ev.action())?;
    let detail: Value = serde_json::from_str(&ev.detail).unwrap_or(Value::Null);
    let shaped = detail.get("after").is_some();
    let (before, after) = if shaped {
        (detail.get("before").cloned().unwrap_or(Value::Null), detail.get("after").cloned().unwrap_or(Value::Null))
    } else {
        (Value::Null, detail.clone())
    };
    let approval = detail.get("approval").and_then(|a| serde_json::from_value(a.clone()).ok());
    let prefix = match scope {
        Scope::Tenant => "CHG-",
        Scope::Platform => "CHG-P-",
    };
    Some(ChangeRecord {
        reference: format!("{prefix}{:06}", ev.seq),
        seq: ev.seq,
        at: ev.at,
        setting: kind.setting,
        action: ev.action.clone(),
        actor: ev.actor.clone(),
        subject: ev.target.clone(),
        before,
        after,
        approval,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(action: &str, detail: Value) -> StoredEvent {
        StoredEvent {
            chain: "t".into(),
            seq: 42,
            at: OffsetDateTime::UNIX_EPOCH,
            actor: "user:a".into(),
            action: action.into(),
            target: "user:b".into(),
            ip: None,
            request_id: None,
            detail: detail.to_string(),
            matter: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_change_event_reads_as_who_what_before_after_and_approval() {
        let a = Approval { id: "r1".into(), requested_by: "user:a".into(), approved_by: "user:c".into() };
        let ev = event(
            "user.role_change",
            detail(serde_json::json!({"role": "staff"}), serde_json::json!({"role": "admin"}), Some(&a)),
        );
        let r = record(&ev, Scope::Tenant).unwrap();
        assert_eq!(r.reference, "CHG-000042");
        assert_eq!(r.setting, "user role");
        assert_eq!((r.actor.as_str(), r.subject.as_str()), ("user:a", "user:b"));
        assert_eq!(r.before["role"], "staff");
        assert_eq!(r.after["role"], "admin");
        assert_eq!(r.approval, Some(a));
    }

    #[test]
    fn other_events_are_no_change_and_chains_keep_their_own_catalogue() {
        assert!(record(&event("matter.view", Value::Null), Scope::Tenant).is_none());
        assert!(record(&event("keys.rotate_master", Value::Null), Scope::Tenant).is_none());
        let r = record(&event("keys.rotate_master", serde_json::json!({"to": "k2"})), Scope::Platform).unwrap();
        assert_eq!(r.reference, "CHG-P-000042");
        // An event from before the shape: all it said is shown, nothing invented as `before`.
        assert_eq!((r.before, r.after), (Value::Null, serde_json::json!({"to": "k2"})));
        assert_eq!(r.approval, None);
    }

    #[test]
    fn every_action_is_catalogued_once_per_chain() {
        for scope in [Scope::Tenant, Scope::Platform] {
            let mut seen = std::collections::HashSet::new();
            assert!(kinds(scope).iter().all(|k| seen.insert(k.action)), "{scope:?}");
        }
    }
}
