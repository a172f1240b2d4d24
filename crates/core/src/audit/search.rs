//! Searching the audit log: the filters owners, admins and auditors (and platform operators, on
//! the platform's own chain) may give, parsed and checked here once for every entry point (API,
//! page, export). Each refusal names the parameter at fault.

use crate::error::{Error, Result};
use crate::ids::MatterId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most events one page returns.
pub const MAX_PAGE: i64 = 500;

/// Events per page when the caller names no limit.
pub const DEFAULT_PAGE: i64 = 100;

/// Longest action filter accepted.
const MAX_ACTION_LEN: usize = 100;

/// Which chain a search reads. It decides what a bare id given as `actor` names: a user in a
/// tenant's chain, an operator in the platform's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Platform,
}

/// How the action filter matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionMatch {
    /// This action only, e.g. `matter.view`.
    Exact(String),
    /// Every action starting with this, which ends in a dot, e.g. `auth.`.
    Prefix(String),
    /// Any of these actions (the change records' catalogue, see `crate::changes`).
    OneOf(Vec<String>),
}

impl ActionMatch {
    /// The filter as typed; the actions of a list joined by commas.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ActionMatch::Exact(s) | ActionMatch::Prefix(s) => s.into(),
            ActionMatch::OneOf(v) => v.join(",").into(),
        }
    }
}

/// What a search matches: every filter given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor in its stored form: `user:<id>`, `operator:<id>`, `cli`, `system` or `anonymous`.
    pub actor: Option<String>,
    pub action: Option<ActionMatch>,
    /// Events about the matter and about its documents and messages (see `StoredEvent::matter`).
    pub matter: Option<MatterId>,
    /// At or after this time.
    pub from: Option<OffsetDateTime>,
    /// At or before this time.
    pub to: Option<OffsetDateTime>,
}

/// A search's parameters as typed into a query string or a form. Absent and empty are the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchInput {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub matter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<String>,
    pub limit: Option<String>,
}

/// A checked search: filters and the page wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub filter: AuditFilter,
    /// Events after this sequence number (0: from the start).
    pub after: i64,
    /// At most this many, 1 to [`MAX_PAGE`].
    pub limit: i64,
}

/// The forms an export comes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, each event exactly as stored.
    Jsonl,
    /// Comma-separated values with a header row, for spreadsheets.
    Csv,
}

impl ExportFormat {
    /// `jsonl` (the default) or `csv`.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        match raw.map(str::trim).unwrap_or("") {
            "" | "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(Error::invalid("format", "must be jsonl or csv")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// A given, non-blank parameter, trimmed.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Search {
    /// Check every parameter.
    pub fn parse(input: &SearchInput, scope: Scope) -> Result<Self> {
        let filter = AuditFilter {
            actor: given(&input.actor).map(|a| parse_actor(a, scope)).transpose()?,
            action: given(&input.action).map(parse_action).transpose()?,
            matter: match (given(&input.matter), scope) {
                (None, _) => None,
                (Some(_), Scope::Platform) => {
                    return Err(Error::invalid("matter", "platform events concern no matter"));
                }
                (Some(m), Scope::Tenant) => {
                    Some(m.parse().map_err(|_| Error::invalid("matter", "must be a matter id (a UUID)"))?)
                }
            },
            from: given(&input.from).map(|t| parse_time("from", t)).transpose()?,
            to: given(&input.to).map(|t| parse_time("to", t)).transpose()?,
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(Error::invalid("from", "must not be later than to"));
        }
        let after = match given(&input.after) {
            None => 0,
            Some(a) => a
                .parse::<i64>()
                .ok()
                .filter(|a| *a >= 0)
                .ok_or_else(|| Error::invalid("after", "must be a sequence number (0 or more)"))?,
        };
        let limit = match given(&input.limit) {
            None => DEFAULT_PAGE,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| Error::invalid("limit", format!("must be a number from 1 to {MAX_PAGE}")))?,
        };
        Ok(Search { filter, after, limit })
    }
}

/// `user:<id>`, `operator:<id>`, `cli`, `system`, `anonymous`, or a bare id: a user's in a
/// tenant's chain, an operator's in the platform's.
fn parse_actor(raw: &str, scope: Scope) -> Result<String> {
    if matches!(raw, "cli" | "system" | "anonymous") {
        return Ok(raw.to_string());
    }
    let bare = match scope {
        Scope::Tenant => "user",
        Scope::Platform => "operator",
    };
    let (kind, id) = match raw.split_once(':') {
        None => (bare, raw),
        Some((kind @ ("user" | "operator"), id)) => (kind, id),
        Some(_) => {
            return Err(Error::invalid("actor", "must be a user id, user:ID, operator:ID, cli, system or anonymous"));
        }
    };
    let id = uuid::Uuid::parse_str(id).map_err(|_| Error::invalid("actor", "the id must be a UUID"))?;
    Ok(format!("{kind}:{}", id.hyphenated()))
}

/// An exact action (dotted lowercase words, e.g. `matter.view`) or a prefix ending in a dot
/// (e.g. `auth.`).
fn parse_action(raw: &str) -> Result<ActionMatch> {
    let (body, prefix) = match raw.strip_suffix('.') {
        Some(body) => (body, true),
        None => (raw, false),
    };
    let words_ok = body
        .split('.')
        .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    // An exact action always has a dot; a lone word is most likely a prefix missing its dot.
    if raw.len() > MAX_ACTION_LEN || !words_ok || (!prefix && !body.contains('.')) {
        return Err(Error::invalid(
            "action",
            "must be an exact action such as matter.view, or a prefix ending in a dot such as auth.",
        ));
    }
    Ok(if prefix { ActionMatch::Prefix(raw.to_string()) } else { ActionMatch::Exact(raw.to_string()) })
}

fn parse_time(field: &'static str, raw: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| Error::invalid(field, "must be an RFC 3339 time such as 2026-11-24T09:30:00Z"))
}

fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl AuditFilter {
    /// The filters as query-string pairs, to repeat them in links (next page, export).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(a) = &self.actor {
            out.push(("actor", a.clone()));
        }
        if let Some(a) = &self.action {
            out.push(("action", a.as_str().to_string()));
        }
        if let Some(m) = self.matter {
            out.push(("matter", m.to_string()));
        }
        if let Some(t) = self.from {
            out.push(("from", format_time(t)));
        }
        if let Some(t) = self.to {
            out.push(("to", format_time(t)));
        }
        out
    }

    /// The filters as a JSON object, for the audit event of an export: ids, action names and
    /// times, never client content.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.to_pairs().into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pairs: &[(&str, &str)]) -> SearchInput {
        let mut i = SearchInput::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "actor" => i.actor = v,
                "action" => i.action = v,
                "matter" => i.matter = v,
                "from" => i.from = v,
                "to" => i.to = v,
                "after" => i.after = v,
                "limit" => i.limit = v,
                _ => unreachable!(),
            }
        }
        i
    }

    fn refused_field(pairs: &[(&str, &str)], scope: Scope) -> &'static str {
        match Search::parse(&input(pairs), scope) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{pairs:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn good_input_parses() {
        let id = "6f1c1a52-7f4a-4a3b-9d52-2b6f0e0a9c11";
        let s = Search::parse(
            &input(&[
                ("actor", id),
                ("action", "auth."),
                ("matter", id),
                ("from", "2026-11-24T09:00:00Z"),
                ("to", "2026-11-24T10:00:00+01:00"),
                ("after", "7"),
                ("limit", "500"),
            ]),
            Scope::Tenant,
        )
        .unwrap();
        assert_eq!(s.filter.actor.as_deref(), Some(&*format!("user:{id}")));
        assert_eq!(s.filter.action, Some(ActionMatch::Prefix("auth.".into())));
        assert_eq!((s.after, s.limit), (7, 500));
        let empty = Search::parse(&input(&[("actor", " "), ("limit", "")]), Scope::Tenant).unwrap();
        assert_eq!((empty.filter, empty.after, empty.limit), (AuditFilter::default(), 0, DEFAULT_PAGE));
        let p = Search::parse(&input(&[("actor", id)]), Scope::Platform).unwrap();
        assert_eq!(p.filter.actor, Some(format!("operator:{id}")));
        for a in ["cli", "system", "anonymous"] {
            assert_eq!(Search::parse(&input(&[("actor", a)]), Scope::Tenant).unwrap().filter.actor.unwrap(), a);
        }
        let e = Search::parse(&input(&[("action", "document.download")]), Scope::Tenant).unwrap();
        assert_eq!(e.filter.action, Some(ActionMatch::Exact("document.download".into())));
        // Round trip through links.
        let pairs = s.filter.to_pairs();
        let again: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(Search::parse(&input(&again), Scope::Tenant).unwrap().filter, s.filter);
    }

    #[test]
    fn bad_input_names_its_field() {
        let t = Scope::Tenant;
        assert_eq!(refused_field(&[("actor", "nobody")], t), "actor");
        assert_eq!(refused_field(&[("actor", "admin:6f1c1a52-7f4a-4a3b-9d52-2b6f0e0a9c11")], t), "actor");
        for bad in ["auth", "Auth.", "auth..", ".auth", "auth.login%", "auth.*", "a b.c", ""] {
            if !bad.is_empty() {
                assert_eq!(refused_field(&[("action", bad)], t), "action", "{bad}");
            }
        }
        assert_eq!(refused_field(&[("action", &format!("{}.x", "a".repeat(100)))], t), "action");
        assert_eq!(refused_field(&[("matter", "42")], t), "matter");
        assert_eq!(refused_field(&[("matter", "6f1c1a52-7f4a-4a3b-9d52-2b6f0e0a9c11")], Scope::Platform), "matter");
        assert_eq!(refused_field(&[("from", "yesterday")], t), "from");
        assert_eq!(refused_field(&[("to", "2026-11-24")], t), "to");
        assert_eq!(refused_field(&[("from", "2026-11-24T10:00:00Z"), ("to", "2026-11-24T09:00:00Z")], t), "from");
        for bad in ["-1", "x", "1.5"] {
            assert_eq!(refused_field(&[("after", bad)], t), "after");
        }
        for bad in ["0", "501", "-3", "many"] {
            assert_eq!(refused_field(&[("limit", bad)], t), "limit");
        }
    }
}
