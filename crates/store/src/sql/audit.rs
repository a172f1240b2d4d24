//! The audit chains in SQL: events, heads, checkpoints and searches.

use super::{SqlTx, db, ms};
use crate::rows;
use async_trait::async_trait;
use portcullis_core::audit::search::{ActionMatch, AuditFilter};
use portcullis_core::audit::{self, AuditCheckpoint, ChainStatus, NewEvent, StoredEvent};
use portcullis_core::clock::from_millis;
use portcullis_core::error::Result;
use portcullis_core::policy::{AuditReach, MatterVisibility};
use portcullis_core::ports::AuditRepo;
use time::OffsetDateTime;

/// The columns of `audit_events`, in the order `AuditRow` and the INSERT use.
macro_rules! audit_columns {
    () => {
        "chain, seq, at, actor, action, target, ip, request_id, detail, matter_id, prev_hash, hash"
    };
}

/// A value for a placeholder of a query whose text depends on which filters are given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Text(String),
    Int(i64),
}

/// The audit search: fixed SQL text for each filter given, every value bound to a placeholder
/// (the text is built only from the constant fragments below, never from input). Building it per
/// search, rather than one query with `($n IS NULL OR ...)` for each filter, lets both engines
/// use the index of the filter at hand.
fn audit_search_query(
    chain: &str,
    walls: Option<MatterVisibility>,
    filter: &AuditFilter,
    after_seq: i64,
    upto_seq: Option<i64>,
    limit: i64,
) -> (String, Vec<Bind>) {
    let mut sql =
        String::from(concat!("SELECT ", audit_columns!(), " FROM audit_events WHERE chain = $1 AND seq > $2"));
    let mut binds = vec![Bind::Text(chain.to_string()), Bind::Int(after_seq)];
    let mut param = |v: Bind| {
        binds.push(v);
        format!("${}", binds.len())
    };
    if let Some(upto) = upto_seq {
        sql.push_str(&format!(" AND seq <= {}", param(Bind::Int(upto))));
    }
    if let Some(actor) = &filter.actor {
        sql.push_str(&format!(" AND actor = {}", param(Bind::Text(actor.clone()))));
    }
    match &filter.action {
        Some(ActionMatch::Exact(a)) => sql.push_str(&format!(" AND action = {}", param(Bind::Text(a.clone())))),
        // Not LIKE: `_` is a wildcard there and SQLite's LIKE ignores case. The prefix is ASCII.
        Some(ActionMatch::Prefix(a)) => {
            let (len, prefix) = (param(Bind::Text(a.clone())), param(Bind::Text(a.clone())));
            sql.push_str(&format!(" AND substr(action, 1, length({len})) = {prefix}"));
        }
        // An empty list matches nothing (`IN ()` is not SQL).
        Some(ActionMatch::OneOf(list)) if list.is_empty() => sql.push_str(" AND 1 = 0"),
        Some(ActionMatch::OneOf(list)) => {
            let params: Vec<String> = list.iter().map(|a| param(Bind::Text(a.clone()))).collect();
            sql.push_str(&format!(" AND action IN ({})", params.join(", ")));
        }
        None => {}
    }
    if let Some(m) = filter.matter {
        sql.push_str(&format!(" AND matter_id = {}", param(Bind::Text(m.to_string()))));
    }
    // The ethical walls: an event about a matter shows only to those who may see the matter.
    // The chain is the tenant's id, so `$1` is the tenant of the matters too.
    const LISTED: &str = "EXISTS (SELECT 1 FROM matter_members mm WHERE mm.tenant_id = $1 \
                          AND mm.matter_id = audit_events.matter_id AND mm.user_id = ";
    match walls {
        None | Some(MatterVisibility::WholeFirm) => {}
        Some(MatterVisibility::Unrestricted(u)) => {
            let u = param(Bind::Text(u.to_string()));
            sql.push_str(&format!(
                " AND (matter_id IS NULL OR EXISTS (SELECT 1 FROM matters m WHERE m.tenant_id = $1 \
                 AND m.id = audit_events.matter_id AND m.restricted = 0) OR {LISTED}{u}))"
            ));
        }
        Some(MatterVisibility::MemberOf(u)) => {
            let u = param(Bind::Text(u.to_string()));
            sql.push_str(&format!(" AND (matter_id IS NULL OR {LISTED}{u}))"));
        }
    }
    if let Some(from) = filter.from {
        sql.push_str(&format!(" AND at >= {}", param(Bind::Int(ms(from)))));
    }
    if let Some(to) = filter.to {
        sql.push_str(&format!(" AND at <= {}", param(Bind::Int(ms(to)))));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {}", param(Bind::Int(limit))));
    (sql, binds)
}

/// A row of `audit_checkpoints`: chain, seq, hash, signed_at, key_id, signature.
type CheckpointRow = (String, i64, String, i64, String, String);

fn checkpoint((chain, seq, hash, signed_at, key_id, signature): CheckpointRow) -> AuditCheckpoint {
    AuditCheckpoint { chain, seq, hash, signed_at: portcullis_core::clock::from_millis(signed_at), key_id, signature }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    chain: String,
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    ip: Option<String>,
    request_id: Option<String>,
    detail: String,
    matter_id: Option<String>,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    pub(crate) fn into_model(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            chain: self.chain,
            seq: self.seq,
            at: from_millis(self.at),
            actor: self.actor,
            action: self.action,
            target: self.target,
            ip: self.ip,
            request_id: self.request_id,
            detail: self.detail,
            matter: self.matter_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

impl SqlTx {
    /// Run an audit search built by [`audit_search_query`].
    async fn run_audit_search(&mut self, sql: String, binds: Vec<Bind>) -> Result<Vec<StoredEvent>> {
        let rows: Vec<AuditRow> = on!(self, |c| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = match b {
                    Bind::Text(v) => q.bind(v),
                    Bind::Int(v) => q.bind(v),
                };
            }
            q.fetch_all(c).await
        })
        .map_err(db)?;
        rows::all(rows, AuditRow::into_model)
    }
}

#[async_trait]
impl AuditRepo for SqlTx {
    async fn append_audit(&mut self, ev: &NewEvent, at: OffsetDateTime) -> Result<()> {
        // Claim the next place in the chain. The UPDATE locks the head row until commit, so
        // concurrent writers of one chain are serialised and the chain never forks.
        const INIT: &str =
            "INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, '') ON CONFLICT (chain) DO NOTHING";
        const CLAIM: &str = "UPDATE audit_heads SET seq = seq + 1 WHERE chain = $1 RETURNING seq, hash";
        const INSERT: &str = concat!(
            "INSERT INTO audit_events (",
            audit_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        const ADVANCE: &str = "UPDATE audit_heads SET hash = $2 WHERE chain = $1";
        let chain = audit::chain_key(ev.tenant_id);
        on!(self, |c| sqlx::query(INIT).bind(&chain).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        let (seq, prev): (i64, String) =
            on!(self, |c| sqlx::query_as(CLAIM).bind(&chain).fetch_one(c).await).map_err(db)?;
        let e = audit::seal(ev, seq, at, &prev);
        on!(self, |c| sqlx::query(INSERT)
            .bind(&e.chain)
            .bind(e.seq)
            .bind(ms(e.at))
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.ip)
            .bind(&e.request_id)
            .bind(&e.detail)
            .bind(&e.matter)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        on!(self, |c| sqlx::query(ADVANCE).bind(&chain).bind(&e.hash).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }

    async fn audit_chains(&mut self) -> Result<Vec<String>> {
        const Q: &str = "SELECT DISTINCT chain FROM audit_events ORDER BY chain";
        on!(self, |c| sqlx::query_scalar(Q).fetch_all(c).await).map_err(db)
    }

    async fn audit_chain_status(&mut self) -> Result<Vec<ChainStatus>> {
        // The heads give each chain's length; the event just after the newest checkpoint (if
        // any) is the oldest one not yet sealed. Index lookups only.
        const Q: &str = "SELECT h.chain, h.seq, COALESCE(c.seq, 0), c.signed_at, e.at FROM audit_heads h \
                         LEFT JOIN (SELECT chain, MAX(seq) AS seq, MAX(signed_at) AS signed_at \
                                    FROM audit_checkpoints GROUP BY chain) c ON c.chain = h.chain \
                         LEFT JOIN audit_events e ON e.chain = h.chain AND e.seq = COALESCE(c.seq, 0) + 1 \
                         ORDER BY h.chain";
        type Row = (String, i64, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(chain, length, sealed_through, signed_at, unsealed_at)| ChainStatus {
                chain,
                length,
                sealed_through,
                last_checkpoint_at: signed_at.map(portcullis_core::clock::from_millis),
                oldest_unsealed_at: unsealed_at.map(portcullis_core::clock::from_millis),
            })
            .collect())
    }

    async fn audit_head(&mut self, chain: &str) -> Result<Option<StoredEvent>> {
        const Q: &str =
            concat!("SELECT ", audit_columns!(), " FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1");
        let row: Option<AuditRow> = on!(self, |c| sqlx::query_as(Q).bind(chain).fetch_optional(c).await).map_err(db)?;
        row.map(AuditRow::into_model).transpose()
    }

    async fn insert_audit_checkpoint(&mut self, cp: &AuditCheckpoint) -> Result<()> {
        const Q: &str = "INSERT INTO audit_checkpoints (chain, seq, hash, signed_at, key_id, signature) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(&cp.chain)
            .bind(cp.seq)
            .bind(&cp.hash)
            .bind(ms(cp.signed_at))
            .bind(&cp.key_id)
            .bind(&cp.signature)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn audit_checkpoints(&mut self, chain: &str) -> Result<Vec<AuditCheckpoint>> {
        const Q: &str = "SELECT chain, seq, hash, signed_at, key_id, signature FROM audit_checkpoints \
                         WHERE chain = $1 ORDER BY seq";
        let rows: Vec<CheckpointRow> = on!(self, |c| sqlx::query_as(Q).bind(chain).fetch_all(c).await).map_err(db)?;
        Ok(rows.into_iter().map(checkpoint).collect())
    }

    async fn latest_audit_checkpoint(&mut self, chain: &str) -> Result<Option<AuditCheckpoint>> {
        const Q: &str = "SELECT chain, seq, hash, signed_at, key_id, signature FROM audit_checkpoints \
                         WHERE chain = $1 ORDER BY seq DESC LIMIT 1";
        let row: Option<CheckpointRow> =
            on!(self, |c| sqlx::query_as(Q).bind(chain).fetch_optional(c).await).map_err(db)?;
        Ok(row.map(checkpoint))
    }

    async fn audit_chain(&mut self, chain: &str, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let (sql, binds) = audit_search_query(chain, None, &AuditFilter::default(), after_seq, None, limit);
        self.run_audit_search(sql, binds).await
    }

    async fn search_audit(
        &mut self,
        reach: &AuditReach,
        filter: &AuditFilter,
        after_seq: i64,
        upto_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let (sql, binds) = audit_search_query(&reach.chain(), reach.walls(), filter, after_seq, upto_seq, limit);
        self.run_audit_search(sql, binds).await
    }

    async fn audit_window(
        &mut self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<(OffsetDateTime, String, i64)>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        // The platform chain is '' and never part of a breach's scope. Without a cursor the
        // cursor test is given values that every row passes.
        const Q: &str = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE chain <> '' AND at >= $1 AND at < $2 \
             AND (at > $3 OR (at = $3 AND (chain > $4 OR (chain = $4 AND seq > $5)))) \
             ORDER BY at, chain, seq LIMIT $6"
        );
        let (at, chain, seq) = after.map(|(a, c, s)| (ms(a), c, s)).unwrap_or((i64::MIN, String::new(), i64::MIN));
        let rows: Vec<AuditRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(ms(from))
            .bind(ms(to))
            .bind(at)
            .bind(&chain)
            .bind(seq)
            .bind(limit)
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, AuditRow::into_model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::audit::search::ActionMatch;
    use portcullis_core::ids::MatterId;

    #[test]
    fn audit_search_binds_every_value() {
        let m = MatterId::new();
        let filter = AuditFilter {
            actor: Some("user:x' OR 1=1 --".into()),
            action: Some(ActionMatch::Prefix("auth.".into())),
            matter: Some(m),
            from: Some(OffsetDateTime::UNIX_EPOCH),
            to: Some(OffsetDateTime::UNIX_EPOCH),
        };
        let (sql, binds) = audit_search_query("t", None, &filter, 5, Some(9), 10);
        assert!(!sql.contains("OR 1=1") && !sql.contains("auth.") && !sql.contains(&m.to_string()), "{sql}");
        assert_eq!(binds.len(), 10);
        assert!(sql.ends_with("ORDER BY seq LIMIT $10"), "{sql}");
        let (plain, binds) = audit_search_query("t", None, &AuditFilter::default(), 0, None, 3);
        assert_eq!(binds, [Bind::Text("t".into()), Bind::Int(0), Bind::Int(3)]);
        assert!(plain.ends_with("WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"), "{plain}");
        let list =
            AuditFilter { action: Some(ActionMatch::OneOf(vec!["a.b".into(), "c.d".into()])), ..Default::default() };
        let (sql, binds) = audit_search_query("t", None, &list, 0, None, 3);
        assert!(sql.contains("AND action IN ($3, $4) ORDER BY seq LIMIT $5"), "{sql}");
        assert_eq!(binds[2..4], [Bind::Text("a.b".into()), Bind::Text("c.d".into())]);
        let none = AuditFilter { action: Some(ActionMatch::OneOf(Vec::new())), ..Default::default() };
        assert!(audit_search_query("t", None, &none, 0, None, 3).0.contains("AND 1 = 0"));
    }
}
