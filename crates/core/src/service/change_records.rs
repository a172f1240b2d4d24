//! Change records as owners, admins and auditors read them (and operators, the platform's own):
//! the audit events of the change catalogue (`crate::changes`), searched and paged like the
//! audit log they are kept in.

use super::Portal;
use super::audit_log::read_page;
use crate::audit::search::{ActionMatch, AuditFilter, Scope, Search, SearchInput};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::changes::{self, ChangeRecord};
use crate::error::{Error, Result};
use crate::policy::can;
use crate::policy::{self, AuditReach, OperatorPrincipal, PlatformPermission, Principal};

/// One page of change records.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangePage {
    pub changes: Vec<ChangeRecord>,
    /// The `after` of the next page; `None` when this page holds the last matching change.
    pub next: Option<i64>,
}

impl Portal {
    /// The firm's changes to security settings matching the search (who, when, and `action`:
    /// one change action), oldest first.
    pub async fn list_changes(&self, p: &Principal, input: &SearchInput) -> Result<ChangePage> {
        let reach = AuditReach::Firm(policy::authorize_list::<can::ReadAudit>(p)?);
        self.change_page(&reach, input, Scope::Tenant).await
    }

    /// The platform's changes: the master key, keys destroyed, operators and their roles, the
    /// configured security limits.
    pub async fn list_platform_changes(&self, op: &OperatorPrincipal, input: &SearchInput) -> Result<ChangePage> {
        policy::authorize_platform(op, PlatformPermission::ReadPlatformAudit, self.clock.now())?;
        self.change_page(&AuditReach::Platform, input, Scope::Platform).await
    }

    /// Record the configured security limits (`limits`: key to value) as a change when they
    /// differ from the last record; returns whether they did. Each node calls it at start, so a
    /// changed configuration is on record before it serves. The record holds the keys that
    /// changed (`before`, `after`) and every limit (`limits`, for the next comparison). Nodes
    /// run with different limits record each other's in turn at each start: keep them alike.
    pub async fn record_security_limits(&self, limits: serde_json::Value) -> Result<bool> {
        let mut tx = self.write().await?;
        let filter =
            AuditFilter { action: Some(ActionMatch::Exact(LIMITS_ACTION.as_str().into())), ..AuditFilter::default() };
        let (mut after, mut last) = (0, None);
        loop {
            let page = tx.audit().search_audit(&AuditReach::Platform, &filter, after, None, LIMITS_PAGE).await?;
            let full = page.len() == usize::try_from(LIMITS_PAGE).map_err(Error::internal)?;
            if let Some(e) = page.into_iter().last() {
                after = e.seq;
                last = Some(e);
            }
            if !full {
                break;
            }
        }
        let previous = match last {
            Some(e) => serde_json::from_str::<serde_json::Value>(&e.detail)
                .map_err(Error::internal)?
                .get_mut("limits")
                .map(serde_json::Value::take)
                .unwrap_or_default(),
            None => serde_json::Value::Null,
        };
        if previous == limits {
            return Ok(false);
        }
        let (before, after) = changed_keys(&previous, &limits);
        let mut detail = changes::detail(before, after, None);
        if let Some(d) = detail.as_object_mut() {
            d.insert("limits".into(), limits);
        }
        let ev = NewEvent::new(None, Actor::System, LIMITS_ACTION, Target::Platform, &RequestMeta::default())
            .with_detail(detail);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn change_page(&self, reach: &AuditReach, input: &SearchInput, scope: Scope) -> Result<ChangePage> {
        let search = change_search(input, scope)?;
        let mut tx = self.read().await?;
        let page = read_page(&mut *tx, reach, &search.filter, search.after, None, search.limit).await?;
        Ok(ChangePage {
            changes: page.events.iter().filter_map(|e| changes::record(e, scope)).collect(),
            next: page.next,
        })
    }
}

/// The change record of the configured security limits.
const LIMITS_ACTION: Action = Action::ConfigSecurityLimits;

/// Records of the limits read per query when looking for the last.
const LIMITS_PAGE: i64 = 500;

/// The keys whose values differ between two objects of limits: (before, after), each an object
/// of just those keys (a key one side lacks is `null` there). Everything, when there was none.
fn changed_keys(old: &serde_json::Value, new: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    use serde_json::{Map, Value};
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return (Value::Null, new.clone());
    };
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let (mut before, mut after) = (Map::new(), Map::new());
    for k in keys {
        let (o, n) = (old.get(k).cloned().unwrap_or(Value::Null), new.get(k).cloned().unwrap_or(Value::Null));
        if o != n {
            before.insert(k.clone(), o);
            after.insert(k.clone(), n);
        }
    }
    (Value::Object(before), Value::Object(after))
}

/// The audit search for change records: the caller's filters, with the action narrowed to the
/// catalogue (or to one action of it, if they named one).
fn change_search(input: &SearchInput, scope: Scope) -> Result<Search> {
    if input.matter.as_deref().is_some_and(|m| !m.trim().is_empty()) {
        return Err(Error::invalid("matter", "change records are not searched by matter"));
    }
    let mut search = Search::parse(input, scope)?;
    let catalogue = changes::kinds(scope);
    search.filter.action = Some(match search.filter.action.take() {
        None => ActionMatch::OneOf(catalogue.iter().map(|k| k.action.as_str().to_string()).collect()),
        Some(ActionMatch::Exact(a)) if catalogue.iter().any(|k| Action::parse(&a).is_ok_and(|p| p == k.action)) => {
            ActionMatch::Exact(a)
        }
        Some(_) => {
            let names: Vec<&str> = catalogue.iter().map(|k| k.action.as_str()).collect();
            return Err(Error::invalid("action", format!("must be one of the change actions: {}", names.join(", "))));
        }
    });
    Ok(search)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input(action: Option<&str>, matter: Option<&str>) -> SearchInput {
        SearchInput { action: action.map(Into::into), matter: matter.map(Into::into), ..SearchInput::default() }
    }

    #[test]
    fn a_limits_record_shows_only_what_changed() {
        let old = serde_json::json!({ "a": 1, "b": 2, "gone": true });
        let new = serde_json::json!({ "a": 1, "b": 3, "new": "x" });
        let (before, after) = changed_keys(&old, &new);
        assert_eq!(before, serde_json::json!({ "b": 2, "gone": true, "new": null }));
        assert_eq!(after, serde_json::json!({ "b": 3, "gone": null, "new": "x" }));
        assert_eq!(changed_keys(&serde_json::Value::Null, &new), (serde_json::Value::Null, new.clone()));
    }

    #[test]
    fn the_search_is_narrowed_to_the_catalogue_of_its_chain() {
        let all = change_search(&input(None, None), Scope::Tenant).unwrap();
        let Some(ActionMatch::OneOf(list)) = all.filter.action else { panic!("{:?}", all.filter.action) };
        assert!(list.contains(&"user.role_change".to_string()) && !list.contains(&"keys.rotate_master".to_string()));
        let one = change_search(&input(Some("keys.rotate_master"), None), Scope::Platform).unwrap();
        assert_eq!(one.filter.action, Some(ActionMatch::Exact("keys.rotate_master".into())));
        for (i, field) in [
            (input(Some("matter.view"), None), "action"),
            (input(Some("tenant."), None), "action"),
            (input(Some("keys.rotate_master"), None), "action"),
            (input(None, Some("x")), "matter"),
        ] {
            let e = change_search(&i, Scope::Tenant).unwrap_err();
            assert!(matches!(&e, Error::Invalid { field: f, .. } if *f == field), "{e:?}");
        }
    }
}
