//! The `Store` port on SQLite and PostgreSQL. The SQL text is shared: both engines accept `$n`
//! placeholders, `RETURNING` and the plain types used here (TEXT, BIGINT), so each query is
//! written once and the `on!` macro runs it on whichever engine is open.

use crate::rows::{
    self, AlertRow, ApprovalRow, AuditRow, BaselineRow, BlockRow, DeliveryRow, DetectionRow, DocumentRow, FieldRow,
    GrantRow, KeyRotationRow, LinkRow, MailRow, MatterRow, MemberRow, MessageRow, OperatorRow, PendingTotpRow,
    SessionRow, TenantKeyRow, TenantRow, TenantSummaryRow, TokenRow, TotpRow, UserRow, VettingRow,
};
use async_trait::async_trait;
use portcullis_core::audit::search::{ActionMatch, AuditFilter};
use portcullis_core::audit::{self, AuditCheckpoint, ChainStatus, NewEvent, StoredEvent};
use portcullis_core::authn::lockout::{self, Lock};
use portcullis_core::authn::webauthn;
use portcullis_core::clock::to_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{
    AlertId, ApprovalId, BlockId, DocumentId, IncidentId, MailId, MatterId, OperatorId, PasskeyId, TenantId, TokenId,
    UserId,
};
use portcullis_core::incidents::{BreachNotice, IncidentRecord};
use portcullis_core::model::{
    Alert, AlertDelivery, ApiToken, ApprovalRequest, ApprovalState, Baseline, Block, BlockScope, ChallengePurpose,
    Detection, Document, DocumentFlag, ErasureRecord, ExportState, FlagState, KeyPurpose, KeyRotation, KnownDevice,
    LinkRecord, Matter, MatterMember, Message, Notice, Operator, OperatorGrant, OperatorRole, OutboxMail,
    PasskeyRecord, PendingTotp, PlatformApproval, Role, SealedColumn, SessionRecord, StoredField, Tenant, TenantExport,
    TenantKeyRecord, TenantStatus, TenantSummary, TotpRecord, User, UserStatus, VettingRecord, WebauthnChallenge,
};
use portcullis_core::policy::{MatterGrant, MatterListGrant, MatterVisibility, TenantGrant};
use portcullis_core::ports::{
    AlertRepo, ApprovalRepo, AuditRepo, BlobRepo, DeviceRepo, DocumentRepo, ExportRepo, FactorRepo, IncidentRepo,
    IntrusionRepo, KeyRepo, LeaseRepo, LifecycleRepo, LinkRepo, LoginRepo, MatterRepo, MessageRepo, OperatorRepo,
    OutboxRepo, ProtectionRepo, RotationRepo, SessionRepo, TenantRepo, TokenRepo, UserRepo,
};
use portcullis_core::ports::{Store, Tx, TxMode};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// A database connection pool on one of the two engines.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: Pool,
    /// Keeps a pool on several PostgreSQL hosts on the primary (see [`crate::pg_hosts`]).
    watcher: Option<tokio::task::AbortHandle>,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// An open transaction on one of the two engines.
struct SqlTx {
    inner: Inner,
}

/// A transaction on either engine (also the dump's snapshot and loader).
pub(crate) enum Inner {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

/// Run the same query code on whichever engine the transaction is on: `on!(self, |c| ...)` for
/// a value with an `inner` transaction, `on!(tx EXPR, |c| ...)` for a `&mut Inner`.
macro_rules! on {
    (tx $tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::sql::Inner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::sql::Inner::Pg(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
    ($self:expr, |$c:ident| $body:expr) => {
        on!(tx &mut $self.inner, |$c| $body)
    };
}
pub(crate) use on;

/// The columns of `security_blocks`, in the order `BlockRow` and the INSERT use.
macro_rules! block_columns {
    () => {
        "id, scope, tenant_id, user_id, ip, reason, detail, created_at, expires_at, lifted_at, lifted_by"
    };
}

/// The columns of `documents`, in the order `DocumentRow` and the INSERT use.
macro_rules! document_columns {
    () => {
        "id, tenant_id, matter_id, name, size, content_type, sha256, uploaded_by, created_at, key_version, blob_rev"
    };
}

/// The columns of `matters` (with a table prefix such as `"m."`), in the order `MatterRow` and
/// the INSERT use.
macro_rules! matter_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "tenant_id, ",
            $p,
            "reference, ",
            $p,
            "title, ",
            $p,
            "created_by, ",
            $p,
            "created_at, ",
            $p,
            "restricted"
        )
    };
}

/// The columns of `approvals`, in the order `ApprovalRow` uses.
macro_rules! approval_columns {
    () => {
        "id, tenant_id, action, requested_by, requested_at, expires_at, state, decided_by, decided_at"
    };
}

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

/// The columns of `incidents`, in the order `IncidentRow` and the INSERT use.
macro_rules! incident_columns {
    () => {
        "id, reference, kind, severity, state, reported_at, triage_due, triage_alerted_at, assignee, version, key_id, \
         wrapped_key, body"
    };
}

/// The columns of `platform_approvals`, in the order `PlatformApprovalRow` uses.
macro_rules! platform_approval_columns {
    () => {
        "id, action, requested_by, requested_at, expires_at, state, decided_by, decided_at, used_at"
    };
}

/// The columns of `tenants`, in the order `TenantRow` and the INSERT use.
macro_rules! tenant_columns {
    () => {
        "id, name, display_name, created_at, two_factor_staff, two_factor_clients, status, ended_at"
    };
}

/// The columns of `sessions`, in the order `SessionRow` and the INSERT use.
macro_rules! session_columns {
    () => {
        "token_hash, tenant_id, user_id, csrf_token, created_at, last_seen_at, second_factor_at, enrol_required, ip, \
         user_agent"
    };
}

/// The columns of `key_rotations`, in the order `KeyRotationRow` uses.
macro_rules! rotation_columns {
    () => {
        "tenant_id, target_version, started_at, finished_at, heartbeat_at, documents_done, fields_done"
    };
}

/// The columns of `mail_outbox`, in the order `MailRow` and the INSERT use.
macro_rules! mail_columns {
    () => {
        "id, tenant_id, user_id, kind, detail, created_at, attempts, next_attempt_at, sent_at, failed_at, last_error"
    };
}

/// The columns of `alerts`, in the order `AlertRow` and the INSERT use.
macro_rules! alert_columns {
    () => {
        "id, kind, severity, tenant_id, subject, summary, detail, dedup_key, occurrences, first_at, last_at, \
         window_end, dispatched_at, follow_up_dispatched_at"
    };
}

/// The columns of `alert_deliveries`, in the order `DeliveryRow` and the INSERT use.
macro_rules! delivery_columns {
    () => {
        "id, alert_id, channel, recipient, notice, created_at, attempts, next_attempt_at, sent_at, failed_at, \
         last_error"
    };
}

/// The delivery bookkeeping of one outbox table, whose rows are keyed by a parent (`$1`) and
/// their own id (`$2`). Built from literals at compile time: no name ever comes from input.
struct OutboxSql {
    /// Unsent, not given up, due at `$1`; oldest due first, at most `$2`.
    due: &'static str,
    /// Move the due time from `$3` (as read) to `$4` (the lease's end), if still unsent.
    lease: &'static str,
    /// Sent at `$3`.
    sent: &'static str,
    /// Attempts `$3`, error `$4`, due again at `$5`, given up at `$6` (or NULL).
    failure: &'static str,
}

macro_rules! outbox_sql {
    ($table:literal, $parent:literal, $columns:expr) => {
        OutboxSql {
            due: concat!(
                "SELECT ",
                $columns,
                " FROM ",
                $table,
                " WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
            ),
            lease: concat!(
                "UPDATE ",
                $table,
                " SET next_attempt_at = $4 WHERE ",
                $parent,
                " = $1 AND id = $2 AND next_attempt_at = $3 AND sent_at IS NULL AND failed_at IS NULL"
            ),
            sent: concat!(
                "UPDATE ",
                $table,
                " SET sent_at = $3, last_error = NULL WHERE ",
                $parent,
                " = $1 AND id = $2"
            ),
            failure: concat!(
                "UPDATE ",
                $table,
                " SET attempts = $3, last_error = $4, next_attempt_at = $5, failed_at = $6 WHERE ",
                $parent,
                " = $1 AND id = $2"
            ),
        }
    };
}

const MAIL_OUTBOX: OutboxSql = outbox_sql!("mail_outbox", "tenant_id", mail_columns!());
const ALERT_OUTBOX: OutboxSql = outbox_sql!("alert_deliveries", "alert_id", delivery_columns!());

/// The statements re-encryption runs on one sealed column. Built from literals at compile time:
/// no name ever comes from input.
struct FieldSql {
    select: &'static str,
    count: &'static str,
    update: &'static str,
}

macro_rules! field_sql {
    ($table:literal, $col:literal, $bind1:literal, $bind2:literal) => {
        FieldSql {
            select: concat!(
                "SELECT id, ",
                $bind1,
                " AS bind1, ",
                $bind2,
                " AS bind2, ",
                $col,
                " AS value FROM ",
                $table,
                " WHERE tenant_id = $1 AND ",
                $col,
                " NOT LIKE $2 AND id > $3 ORDER BY id LIMIT $4"
            ),
            count: concat!("SELECT COUNT(*) FROM ", $table, " WHERE tenant_id = $1 AND ", $col, " NOT LIKE $2"),
            update: concat!(
                "UPDATE ",
                $table,
                " SET ",
                $col,
                " = $4 WHERE tenant_id = $1 AND id = $2 AND ",
                $col,
                " = $3"
            ),
        }
    };
}

/// Where each sealed column lives, and the ids its place binds (see `SealedColumn`).
fn field_sql(column: SealedColumn) -> FieldSql {
    match column {
        SealedColumn::UserEmail => field_sql!("users", "email", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)"),
        SealedColumn::UserDisplayName => {
            field_sql!("users", "display_name", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)")
        }
        SealedColumn::MatterReference => {
            field_sql!("matters", "reference", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)")
        }
        SealedColumn::MatterTitle => field_sql!("matters", "title", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)"),
        SealedColumn::DocumentName => field_sql!("documents", "name", "matter_id", "CAST(NULL AS TEXT)"),
        SealedColumn::MessageBody => field_sql!("messages", "body", "matter_id", "author_id"),
        SealedColumn::TotpSecret => field_sql!("user_totp", "secret", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)"),
        SealedColumn::TotpPending => {
            field_sql!("totp_enrolments", "secret", "CAST(NULL AS TEXT)", "CAST(NULL AS TEXT)")
        }
    }
}

/// The LIKE pattern of values sealed under key `version`.
fn current_pattern(version: u32) -> String {
    format!("{}%", portcullis_core::crypto::fields::version_prefix(version))
}

mod exports;
mod lifecycle;

/// Map a database error: a unique-key clash is a conflict the caller can act on; anything else is
/// internal, with the detail kept for the log.
/// How long a client is told to wait when the database is out of reach.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

fn db(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return Error::Conflict("This record".into());
    }
    if unavailable(&e) {
        // The database is away or changing primaries: a 503 with Retry-After, so clients and
        // balancers try again; the cause goes to the log, never to the client.
        tracing::warn!(error = %e, "the database is out of reach");
        return Error::Overloaded { retry_after_secs: UNAVAILABLE_RETRY_SECS };
    }
    Error::internal(format!("database: {e}"))
}

/// Whether `e` says the database could not be reached or cannot take writes now (a standby,
/// or a server shutting down or starting), rather than that the request was wrong.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => true,
        // 25006 read-only transaction, 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
        // connect now, 08xxx connection exceptions.
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| matches!(c.as_ref(), "25006" | "57P01" | "57P02" | "57P03") || c.starts_with("08"))
        }
        _ => false,
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    to_millis(t)
}

fn size_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::internal("size does not fit the database"))
}

/// The pool, for the modules of this crate that speak to each engine directly.
pub(crate) enum PoolRef<'a> {
    Sqlite(&'a SqlitePool),
    Pg(&'a PgPool),
}

impl SqlStore {
    /// Open (creating if needed) the database at `url` and bring its schema up to date.
    /// `sqlite://PATH` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Self> {
        let store = Self::open_unmigrated(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub(crate) fn pool_ref(&self) -> PoolRef<'_> {
        match &self.pool {
            Pool::Sqlite(p) => PoolRef::Sqlite(p),
            Pool::Pg(p) => PoolRef::Pg(p),
        }
    }

    /// Apply the migrations up to `version` only (a restore brings an empty database to the
    /// backup's schema, loads the rows, then applies the rest).
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        use crate::migrations::{Engine, migrator_upto};
        let fail = |e: sqlx::migrate::MigrateError| Error::internal(format!("migration failed: {e}"));
        match &self.pool {
            Pool::Sqlite(p) => migrator_upto(Engine::Sqlite, version).await.map_err(fail)?.run(p).await.map_err(fail),
            Pool::Pg(p) => migrator_upto(Engine::Postgres, version).await.map_err(fail)?.run(p).await.map_err(fail),
        }
    }

    /// The newest migration applied; 0 for a database never migrated.
    pub async fn schema_version(&self) -> Result<i64> {
        const Q: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations";
        match &self.pool {
            Pool::Sqlite(p) => {
                const EXISTS: &str =
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";
                let n: i64 = sqlx::query_scalar(EXISTS).fetch_one(p).await.map_err(db)?;
                if n == 0 {
                    return Ok(0);
                }
                sqlx::query_scalar(Q).fetch_one(p).await.map_err(db)
            }
            Pool::Pg(p) => {
                const EXISTS: &str = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";
                let exists: bool = sqlx::query_scalar(EXISTS).fetch_one(p).await.map_err(db)?;
                if !exists {
                    return Ok(0);
                }
                sqlx::query_scalar(Q).fetch_one(p).await.map_err(db)
            }
        }
    }

    /// Open the database at `url` as it is, without migrating (see [`Self::open`]).
    pub async fn open_unmigrated(url: &str) -> Result<Self> {
        let mut watcher = None;
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let hosts = crate::pg_hosts::split(url)?;
            let start = if hosts.len() > 1 {
                crate::pg_hosts::find_primary(&hosts)
                    .await
                    .ok_or_else(|| Error::internal("none of the database hosts answers as a primary"))?
            } else {
                0
            };
            let opts = hosts.get(start).cloned().ok_or_else(|| Error::invalid("database_url", "no host"))?;
            let switched = std::sync::Arc::new(crate::pg_hosts::Switched::default());
            let stale = switched.clone();
            let pool = PgPoolOptions::new()
                .max_connections(20)
                .acquire_timeout(Duration::from_secs(10))
                // After the primary moved, connections to the old one are not handed out.
                .before_acquire(move |_, meta| {
                    let fresh = !stale.predates(meta.age);
                    Box::pin(async move { Ok(fresh) })
                })
                .connect_with(opts)
                .await
                .map_err(db)?;
            if hosts.len() > 1 {
                watcher = Some(crate::pg_hosts::watch(pool.clone(), hosts, start, switched).abort_handle());
            }
            Pool::Pg(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::invalid("database_url", e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Audit events must survive a power cut once the action is reported done.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            Pool::Sqlite(SqlitePoolOptions::new().max_connections(8).connect_with(opts).await.map_err(db)?)
        } else {
            return Err(Error::invalid("database_url", "must start with sqlite: or postgres://"));
        };
        Ok(Self { pool, watcher })
    }

    /// Apply pending migrations, each in its own transaction. A database migrated by a newer
    /// Portcullis (a migration this build does not know) is refused rather than downgraded.
    pub async fn migrate(&self) -> Result<()> {
        use crate::migrations::{Engine, migrator};
        let fail = |e: sqlx::migrate::MigrateError| Error::internal(format!("migration failed: {e}"));
        match &self.pool {
            Pool::Sqlite(p) => migrator(Engine::Sqlite).await.map_err(fail)?.run(p).await.map_err(fail),
            Pool::Pg(p) => migrator(Engine::Postgres).await.map_err(fail)?.run(p).await.map_err(fail),
        }
    }

    /// The pool's connections, for monitoring: (open, idle, most allowed).
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Pg(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        }
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Pg(p) => p.close().await,
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn begin(&self, mode: TxMode) -> Result<Box<dyn Tx>> {
        let inner = match (&self.pool, mode) {
            // Writers take SQLite's write lock at BEGIN, so two writers queue instead of
            // deadlocking on a lock upgrade.
            (Pool::Sqlite(p), TxMode::Write) => Inner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await.map_err(db)?),
            (Pool::Sqlite(p), TxMode::Read) => Inner::Sqlite(p.begin().await.map_err(db)?),
            (Pool::Pg(p), _) => Inner::Pg(p.begin().await.map_err(db)?),
        };
        Ok(Box::new(SqlTx { inner }))
    }

    async fn ping(&self) -> Result<()> {
        let r = match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            Pool::Pg(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        };
        r.map_err(db)
    }

    fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Pg(_) => "postgres",
        }
    }
}

/// `SELECT` of every user column, followed by a literal tail.
macro_rules! select_users {
    ($tail:literal) => {
        concat!("SELECT id, tenant_id, email, display_name, role, status, created_at, password_hash FROM users ", $tail)
    };
}

/// `SELECT` of every API-token column except the secret hash, followed by a literal tail.
macro_rules! select_tokens {
    ($tail:literal) => {
        concat!(
            "SELECT id, tenant_id, user_id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM api_tokens ",
            $tail
        )
    };
}

impl SqlTx {
    /// Serialise this transaction with every other holding the lock `name`, until it ends. On
    /// PostgreSQL a transaction-scoped advisory lock (every node shares it); SQLite needs none,
    /// since a write transaction already holds the database's only write lock. (Today the
    /// audit chain's head row also serialises a tenant's audited actions; counters must not
    /// depend on that.)
    async fn advisory_lock(&mut self, name: &str) -> Result<()> {
        const Q: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
        match &mut self.inner {
            Inner::Sqlite(_) => Ok(()),
            Inner::Pg(t) => sqlx::query(Q).bind(name).execute(&mut **t).await.map(|_| ()).map_err(db),
        }
    }

    /// Run a statement whose parameters are a tenant (`$1`) and a user (`$2`); rows affected.
    async fn exec_for_user(&mut self, q: &'static str, tenant: TenantId, user: UserId) -> Result<u64> {
        let (t, u) = (tenant.to_string(), user.to_string());
        on!(self, |c| sqlx::query(q).bind(&t).bind(&u).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }

    /// The due rows of an outbox (see `OutboxSql`).
    async fn outbox_due<R>(&mut self, q: &OutboxSql, now: OffsetDateTime, limit: i64) -> Result<Vec<R>>
    where
        R: Send + Unpin + for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>,
    {
        on!(self, |c| sqlx::query_as(q.due).bind(ms(now)).bind(limit).fetch_all(c).await).map_err(db)
    }

    /// Lease an outbox row (see `OutboxSql`); false if another node took it.
    async fn outbox_lease(
        &mut self,
        q: &OutboxSql,
        key: (String, String),
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        let n = on!(self, |c| sqlx::query(q.lease)
            .bind(&key.0)
            .bind(&key.1)
            .bind(ms(seen))
            .bind(ms(until))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn outbox_sent(&mut self, q: &OutboxSql, key: (String, String), at: OffsetDateTime) -> Result<()> {
        on!(self, |c| sqlx::query(q.sent).bind(&key.0).bind(&key.1).bind(ms(at)).execute(c).await.map(|_| ()))
            .map_err(db)
    }

    async fn outbox_failure(
        &mut self,
        q: &OutboxSql,
        key: (String, String),
        attempts: u32,
        error: Option<&str>,
        next_attempt_at: OffsetDateTime,
        failed_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        on!(self, |c| sqlx::query(q.failure)
            .bind(&key.0)
            .bind(&key.1)
            .bind(i64::from(attempts))
            .bind(error)
            .bind(ms(next_attempt_at))
            .bind(failed_at.map(ms))
            .execute(c)
            .await
            .map(|_| ()))
        .map_err(db)
    }
}

#[async_trait]
impl TenantRepo for SqlTx {
    async fn count_tenants(&mut self) -> Result<i64> {
        on!(self, |c| sqlx::query_scalar("SELECT COUNT(*) FROM tenants").fetch_one(c).await).map_err(db)
    }
    async fn insert_tenant(&mut self, t: &Tenant) -> Result<()> {
        const Q: &str =
            concat!("INSERT INTO tenants (", tenant_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on!(self, |c| sqlx::query(Q)
            .bind(t.id.to_string())
            .bind(&t.name)
            .bind(&t.display_name)
            .bind(ms(t.created_at))
            .bind(i64::from(t.two_factor_staff))
            .bind(i64::from(t.two_factor_clients))
            .bind(t.status.as_str())
            .bind(t.ended_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn tenant_by_name(&mut self, name: &str) -> Result<Option<Tenant>> {
        const Q: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE name = $1");
        let row: Option<TenantRow> = on!(self, |c| sqlx::query_as(Q).bind(name).fetch_optional(c).await).map_err(db)?;
        row.map(TenantRow::into_model).transpose()
    }
    async fn tenant(&mut self, id: TenantId) -> Result<Option<Tenant>> {
        const Q: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE id = $1");
        let row: Option<TenantRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(TenantRow::into_model).transpose()
    }
    async fn set_tenant_two_factor(&mut self, tenant: TenantId, staff: bool, clients: bool) -> Result<()> {
        const Q: &str = "UPDATE tenants SET two_factor_staff = $2, two_factor_clients = $3 WHERE id = $1";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(staff))
            .bind(i64::from(clients))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn tenant_ids(&mut self) -> Result<Vec<TenantId>> {
        const Q: &str = "SELECT id FROM tenants ORDER BY id";
        let ids: Vec<String> = on!(self, |c| sqlx::query_scalar(Q).fetch_all(c).await).map_err(db)?;
        ids.iter().map(|s| rows::id(s, TenantId::from_uuid)).collect()
    }
}

#[async_trait]
impl LifecycleRepo for SqlTx {
    async fn set_tenant_status(
        &mut self,
        tenant: TenantId,
        status: TenantStatus,
        ended_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        self.lc_set_tenant_status(tenant, status, ended_at).await
    }
    async fn revoke_tenant_access(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<(u64, u64)> {
        self.lc_revoke_tenant_access(tenant, at).await
    }
    async fn ended_tenants(&mut self) -> Result<Vec<Tenant>> {
        self.lc_ended_tenants().await
    }
    async fn record_retention_notice(
        &mut self,
        tenant: TenantId,
        ended_at: OffsetDateTime,
        days_before: u32,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.lc_record_retention_notice(tenant, ended_at, days_before, at).await
    }
    async fn insert_erasure(&mut self, e: &ErasureRecord) -> Result<bool> {
        self.lc_insert_erasure(e).await
    }
    async fn erasure(&mut self, tenant: TenantId) -> Result<Option<ErasureRecord>> {
        self.lc_erasure(tenant).await
    }
    async fn erasure_by_name(&mut self, name: &str) -> Result<Option<ErasureRecord>> {
        self.lc_erasure_by_name(name).await
    }
    async fn open_erasures(&mut self) -> Result<Vec<ErasureRecord>> {
        self.lc_open_erasures().await
    }
    async fn erasure_keys_destroyed(&mut self, e: &ErasureRecord) -> Result<bool> {
        self.lc_erasure_keys_destroyed(e).await
    }
    async fn tenant_blob_keys(&mut self, tenant: TenantId) -> Result<Vec<String>> {
        self.lc_tenant_blob_keys(tenant).await
    }
    async fn delete_tenant_rows(&mut self, tenant: TenantId) -> Result<Vec<(String, u64)>> {
        self.lc_delete_tenant_rows(tenant).await
    }
    async fn finish_erasure(&mut self, e: &ErasureRecord) -> Result<bool> {
        self.lc_finish_erasure(e).await
    }
    async fn erasures_to_notify(&mut self) -> Result<Vec<ErasureRecord>> {
        self.lc_erasures_to_notify().await
    }
    async fn erasure_notified(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<()> {
        self.lc_erasure_notified(tenant, at).await
    }
    async fn unsynced_erasures(&mut self) -> Result<Vec<ErasureRecord>> {
        self.lc_unsynced_erasures().await
    }
    async fn mark_erasure_synced(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<bool> {
        self.lc_mark_erasure_synced(tenant, at).await
    }
}

#[async_trait]
impl ExportRepo for SqlTx {
    async fn insert_export(&mut self, x: &TenantExport) -> Result<()> {
        self.exp_insert(x).await
    }
    async fn tenant_export(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<TenantExport>> {
        self.exp_get(tenant, id).await
    }
    async fn exports_in_state(&mut self, state: ExportState) -> Result<Vec<TenantExport>> {
        self.exp_in_state(state).await
    }
    async fn update_export(&mut self, x: &TenantExport) -> Result<()> {
        self.exp_update(x).await
    }
}

#[async_trait]
impl KeyRepo for SqlTx {
    async fn insert_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        const Q: &str = "INSERT INTO tenant_keys (tenant_id, purpose, version, key_id, wrapped, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(k.tenant_id.to_string())
            .bind(k.purpose.as_str())
            .bind(i64::from(k.version))
            .bind(&k.key_id)
            .bind(hex::encode(&k.wrapped))
            .bind(ms(k.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn tenant_key(
        &mut self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: Option<u32>,
    ) -> Result<Option<TenantKeyRecord>> {
        const ONE: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                           WHERE tenant_id = $1 AND purpose = $2 AND version = $3";
        const NEWEST: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                              WHERE tenant_id = $1 AND purpose = $2 ORDER BY version DESC LIMIT 1";
        let t = tenant.to_string();
        let row: Option<TenantKeyRow> = match version {
            Some(v) => on!(self, |c| sqlx::query_as(ONE)
                .bind(&t)
                .bind(purpose.as_str())
                .bind(i64::from(v))
                .fetch_optional(c)
                .await),
            None => on!(self, |c| sqlx::query_as(NEWEST).bind(&t).bind(purpose.as_str()).fetch_optional(c).await),
        }
        .map_err(db)?;
        row.map(TenantKeyRow::into_model).transpose()
    }
    async fn tenant_keys(&mut self, tenant: TenantId, purpose: KeyPurpose) -> Result<Vec<TenantKeyRecord>> {
        const Q: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                         WHERE tenant_id = $1 AND purpose = $2 ORDER BY version";
        let rows: Vec<TenantKeyRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(purpose.as_str()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, TenantKeyRow::into_model)
    }
    async fn destroy_tenant_keys(&mut self, tenant: TenantId) -> Result<u64> {
        const Q: &str = "DELETE FROM tenant_keys WHERE tenant_id = $1";
        on!(self, |c| sqlx::query(Q).bind(tenant.to_string()).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }
    async fn lock_tenant_keys(&mut self) -> Result<()> {
        match &mut self.inner {
            // A SQLite writer already holds the database's only write lock.
            Inner::Sqlite(_) => Ok(()),
            Inner::Pg(t) => sqlx::query("LOCK TABLE tenant_keys IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut **t)
                .await
                .map(|_| ())
                .map_err(db),
        }
    }
    async fn all_tenant_keys(&mut self) -> Result<Vec<TenantKeyRecord>> {
        const Q: &str = "SELECT tenant_id, purpose, version, key_id, wrapped, created_at FROM tenant_keys \
                         ORDER BY tenant_id, purpose, version";
        let rows: Vec<TenantKeyRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, TenantKeyRow::into_model)
    }
    async fn rewrap_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()> {
        const Q: &str = "UPDATE tenant_keys SET key_id = $4, wrapped = $5 \
                         WHERE tenant_id = $1 AND purpose = $2 AND version = $3";
        on!(self, |c| sqlx::query(Q)
            .bind(k.tenant_id.to_string())
            .bind(k.purpose.as_str())
            .bind(i64::from(k.version))
            .bind(&k.key_id)
            .bind(hex::encode(&k.wrapped))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl UserRepo for SqlTx {
    async fn insert_user(&mut self, u: &User, email_lookup: &str, password_hash: Option<&str>) -> Result<()> {
        const Q: &str = "INSERT INTO users (id, tenant_id, email, display_name, role, status, created_at, password_hash, \
                         email_lookup) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        on!(self, |c| sqlx::query(Q)
            .bind(u.id.to_string())
            .bind(u.tenant_id.to_string())
            .bind(&u.email)
            .bind(&u.display_name)
            .bind(u.role.as_str())
            .bind(u.status.as_str())
            .bind(ms(u.created_at))
            .bind(password_hash)
            .bind(email_lookup)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn user_by_email(&mut self, tenant: TenantId, email_lookup: &str) -> Result<Option<(User, Option<String>)>> {
        const Q: &str = select_users!("WHERE tenant_id = $1 AND email_lookup = $2");
        let row: Option<UserRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(email_lookup).fetch_optional(c).await)
                .map_err(db)?;
        row.map(|mut r| {
            let hash = r.password_hash.take();
            r.into_model().map(|u| (u, hash))
        })
        .transpose()
    }
    async fn user(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>> {
        const Q: &str = select_users!("WHERE tenant_id = $1 AND id = $2");
        let row: Option<UserRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(UserRow::into_model).transpose()
    }
    async fn set_password(&mut self, tenant: TenantId, id: UserId, hash: &str, status: UserStatus) -> Result<()> {
        const Q: &str = "UPDATE users SET password_hash = $3, status = $4 WHERE tenant_id = $1 AND id = $2";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(hash)
            .bind(status.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn list_users(&mut self, grant: &TenantGrant) -> Result<Vec<User>> {
        const Q: &str = select_users!("WHERE tenant_id = $1 ORDER BY email");
        let rows: Vec<UserRow> =
            on!(self, |c| sqlx::query_as(Q).bind(grant.tenant_id().to_string()).fetch_all(c).await).map_err(db)?;
        rows::all(rows, UserRow::into_model)
    }
    async fn tenant_admins(&mut self, tenant: TenantId) -> Result<Vec<UserId>> {
        const Q: &str = "SELECT id FROM users WHERE tenant_id = $1 AND role IN ('owner', 'admin') \
                         AND status = 'active' ORDER BY id";
        let ids: Vec<String> =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).fetch_all(c).await).map_err(db)?;
        ids.iter().map(|s| rows::id(s, UserId::from_uuid)).collect()
    }
}

#[async_trait]
impl SessionRepo for SqlTx {
    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()> {
        const Q: &str =
            concat!("INSERT INTO sessions (", session_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        on!(self, |c| sqlx::query(Q)
            .bind(&s.token_hash)
            .bind(s.tenant_id.to_string())
            .bind(s.user_id.to_string())
            .bind(&s.csrf_token)
            .bind(ms(s.created_at))
            .bind(ms(s.last_seen_at))
            .bind(s.second_factor_at.map(ms))
            .bind(i64::from(s.enrol_required))
            .bind(&s.ip)
            .bind(&s.user_agent)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>> {
        const Q: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE token_hash = $1");
        let row: Option<SessionRow> =
            on!(self, |c| sqlx::query_as(Q).bind(token_hash).fetch_optional(c).await).map_err(db)?;
        row.map(SessionRow::into_model).transpose()
    }
    async fn touch_session(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1";
        on!(self, |c| sqlx::query(Q).bind(token_hash).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }
    async fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        const Q: &str = "DELETE FROM sessions WHERE token_hash = $1";
        on!(self, |c| sqlx::query(Q).bind(token_hash).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(())
    }
    async fn list_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<SessionRecord>> {
        const Q: &str = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY last_seen_at DESC"
        );
        let rows: Vec<SessionRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, SessionRow::into_model)
    }
    async fn delete_other_sessions(&mut self, tenant: TenantId, user: UserId, keep: &str) -> Result<u64> {
        const Q: &str = "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND token_hash <> $3";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(keep)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)
    }
    async fn delete_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2";
        self.exec_for_user(Q, tenant, user).await.map(|_| ())
    }
}

#[async_trait]
impl LinkRepo for SqlTx {
    async fn insert_link(&mut self, l: &LinkRecord) -> Result<()> {
        const Q: &str = "INSERT INTO links (token_hash, purpose, tenant_id, user_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(&l.token_hash)
            .bind(l.purpose.as_str())
            .bind(l.tenant_id.map(|t| t.to_string()))
            .bind(l.user_id.map(|u| u.to_string()))
            .bind(ms(l.created_at))
            .bind(ms(l.expires_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn link(&mut self, token_hash: &str) -> Result<Option<LinkRecord>> {
        const Q: &str = "SELECT token_hash, purpose, tenant_id, user_id, created_at, expires_at \
                         FROM links WHERE token_hash = $1 AND used_at IS NULL";
        let row: Option<LinkRow> =
            on!(self, |c| sqlx::query_as(Q).bind(token_hash).fetch_optional(c).await).map_err(db)?;
        row.map(LinkRow::into_model).transpose()
    }
    async fn burn_user_links(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE links SET used_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn burn_bootstrap_links(&mut self, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE links SET used_at = $1 WHERE purpose = 'bootstrap' AND used_at IS NULL";
        on!(self, |c| sqlx::query(Q).bind(ms(at)).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(())
    }
    async fn use_link(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL";
        let r = on!(self, |c| sqlx::query(Q).bind(token_hash).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(r == 1)
    }
}

#[async_trait]
impl TokenRepo for SqlTx {
    async fn insert_api_token(&mut self, t: &ApiToken, secret_hash: &str) -> Result<()> {
        const Q: &str = "INSERT INTO api_tokens (id, tenant_id, user_id, secret_hash, name, scopes, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on!(self, |c| sqlx::query(Q)
            .bind(t.id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.user_id.to_string())
            .bind(secret_hash)
            .bind(&t.name)
            .bind(rows::scopes_text(&t.scopes))
            .bind(ms(t.created_at))
            .bind(t.expires_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn api_token_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiToken>> {
        const Q: &str = select_tokens!("WHERE secret_hash = $1");
        let row: Option<TokenRow> =
            on!(self, |c| sqlx::query_as(Q).bind(secret_hash).fetch_optional(c).await).map_err(db)?;
        row.map(TokenRow::into_model).transpose()
    }
    async fn list_api_tokens(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<ApiToken>> {
        const Q: &str = select_tokens!("WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC");
        let rows: Vec<TokenRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, TokenRow::into_model)
    }
    async fn revoke_api_token(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE api_tokens SET revoked_at = $4 \
                         WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND revoked_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn touch_api_token(&mut self, tenant: TenantId, id: TokenId, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND tenant_id = $3";
        on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(ms(at))
            .bind(tenant.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl MatterRepo for SqlTx {
    async fn insert_matter(&mut self, grant: &TenantGrant, m: &Matter) -> Result<()> {
        if grant.tenant_id() != m.tenant_id {
            return Err(Error::NotFound);
        }
        const Q: &str = concat!("INSERT INTO matters (", matter_columns!(""), ") VALUES ($1, $2, $3, $4, $5, $6, $7)");
        on!(self, |c| sqlx::query(Q)
            .bind(m.id.to_string())
            .bind(m.tenant_id.to_string())
            .bind(&m.reference)
            .bind(&m.title)
            .bind(m.created_by.to_string())
            .bind(ms(m.created_at))
            .bind(i64::from(m.restricted))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn matter(&mut self, tenant: TenantId, id: MatterId) -> Result<Option<Matter>> {
        const Q: &str = concat!("SELECT ", matter_columns!(""), " FROM matters WHERE tenant_id = $1 AND id = $2");
        let row: Option<MatterRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(MatterRow::into_model).transpose()
    }
    async fn membership(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<Role>> {
        const Q: &str = "SELECT role FROM matter_members WHERE tenant_id = $1 AND matter_id = $2 AND user_id = $3";
        let role: Option<String> = on!(self, |c| sqlx::query_scalar(Q)
            .bind(tenant.to_string())
            .bind(matter.to_string())
            .bind(user.to_string())
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        role.map(|r| Role::parse(&r).map_err(Error::internal)).transpose()
    }
    async fn list_matters(&mut self, grant: &MatterListGrant) -> Result<Vec<Matter>> {
        const UNRESTRICTED: &str = concat!(
            "SELECT ",
            matter_columns!("m."),
            " FROM matters m WHERE m.tenant_id = $1 AND (m.restricted = 0 OR EXISTS (SELECT 1 FROM matter_members mm \
             WHERE mm.tenant_id = m.tenant_id AND mm.matter_id = m.id AND mm.user_id = $2)) ORDER BY m.created_at DESC"
        );
        const MEMBER: &str = concat!(
            "SELECT ",
            matter_columns!("m."),
            " FROM matters m WHERE m.tenant_id = $1 AND EXISTS (SELECT 1 FROM matter_members mm \
             WHERE mm.tenant_id = m.tenant_id AND mm.matter_id = m.id AND mm.user_id = $2) ORDER BY m.created_at DESC"
        );
        const WHOLE: &str =
            concat!("SELECT ", matter_columns!("m."), " FROM matters m WHERE m.tenant_id = $1 ORDER BY m.created_at");
        let tenant = grant.tenant_id().to_string();
        let rows: Vec<MatterRow> = match grant.visibility() {
            MatterVisibility::WholeFirm => on!(self, |c| sqlx::query_as(WHOLE).bind(&tenant).fetch_all(c).await),
            MatterVisibility::Unrestricted(u) => {
                on!(self, |c| sqlx::query_as(UNRESTRICTED).bind(&tenant).bind(u.to_string()).fetch_all(c).await)
            }
            MatterVisibility::MemberOf(u) => {
                on!(self, |c| sqlx::query_as(MEMBER).bind(&tenant).bind(u.to_string()).fetch_all(c).await)
            }
        }
        .map_err(db)?;
        rows::all(rows, MatterRow::into_model)
    }
    async fn insert_member(&mut self, grant: &MatterGrant, user: UserId, role: Role, at: OffsetDateTime) -> Result<()> {
        const Q: &str =
            "INSERT INTO matter_members (tenant_id, matter_id, user_id, role, added_at) VALUES ($1, $2, $3, $4, $5)";
        on!(self, |c| sqlx::query(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .bind(user.to_string())
            .bind(role.as_str())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn list_members(&mut self, grant: &MatterGrant) -> Result<Vec<MatterMember>> {
        const Q: &str = "SELECT mm.user_id, u.email, u.display_name, mm.role, mm.added_at \
                         FROM matter_members mm JOIN users u ON u.id = mm.user_id AND u.tenant_id = mm.tenant_id \
                         WHERE mm.tenant_id = $1 AND mm.matter_id = $2 ORDER BY mm.added_at";
        let rows: Vec<MemberRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, MemberRow::into_model)
    }
}

#[async_trait]
impl DocumentRepo for SqlTx {
    async fn insert_document(&mut self, grant: &MatterGrant, d: &Document) -> Result<()> {
        if grant.tenant_id() != d.tenant_id || grant.matter_id() != d.matter_id {
            return Err(Error::NotFound);
        }
        const Q: &str = concat!(
            "INSERT INTO documents (",
            document_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let size = size_i64(d.size)?;
        on!(self, |c| sqlx::query(Q)
            .bind(d.id.to_string())
            .bind(d.tenant_id.to_string())
            .bind(d.matter_id.to_string())
            .bind(&d.name)
            .bind(size)
            .bind(&d.content_type)
            .bind(&d.sha256)
            .bind(d.uploaded_by.to_string())
            .bind(ms(d.created_at))
            .bind(i64::from(d.key_version))
            .bind(&d.blob_rev)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn list_documents(&mut self, grant: &MatterGrant) -> Result<Vec<Document>> {
        const Q: &str = concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents WHERE tenant_id = $1 AND matter_id = $2 ORDER BY created_at DESC"
        );
        let rows: Vec<DocumentRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, DocumentRow::into_model)
    }
    async fn document(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<Document>> {
        const Q: &str = concat!("SELECT ", document_columns!(), " FROM documents WHERE tenant_id = $1 AND id = $2");
        let row: Option<DocumentRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(DocumentRow::into_model).transpose()
    }
    async fn insert_document_flag(&mut self, grant: &MatterGrant, f: &DocumentFlag) -> Result<()> {
        if grant.tenant_id() != f.tenant_id || grant.matter_id() != f.matter_id {
            return Err(Error::NotFound);
        }
        const Q: &str = "INSERT INTO document_flags (tenant_id, document_id, matter_id, state, findings, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(f.tenant_id.to_string())
            .bind(f.document_id.to_string())
            .bind(f.matter_id.to_string())
            .bind(f.state.as_str())
            .bind(&f.findings)
            .bind(ms(f.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn document_flag(&mut self, tenant: TenantId, document: DocumentId) -> Result<Option<DocumentFlag>> {
        const Q: &str = "SELECT tenant_id, document_id, matter_id, state, findings, created_at FROM document_flags \
                         WHERE tenant_id = $1 AND document_id = $2";
        let row: Option<rows::FlagRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        row.map(rows::FlagRow::into_model).transpose()
    }
    async fn document_flags(
        &mut self,
        tenant: TenantId,
        matter: Option<MatterId>,
        state: Option<FlagState>,
    ) -> Result<Vec<DocumentFlag>> {
        const Q: &str = "SELECT tenant_id, document_id, matter_id, state, findings, created_at FROM document_flags \
                         WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR matter_id = $2) \
                         AND (CAST($3 AS TEXT) IS NULL OR state = $3) ORDER BY created_at DESC LIMIT 1000";
        let rows: Vec<rows::FlagRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(matter.map(|m| m.to_string()))
            .bind(state.map(|s| s.as_str()))
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, rows::FlagRow::into_model)
    }
    async fn set_document_flag_state(
        &mut self,
        tenant: TenantId,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool> {
        const Q: &str = "UPDATE document_flags SET state = $3 WHERE tenant_id = $1 AND document_id = $2";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .bind(state.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }
    async fn delete_document(&mut self, tenant: TenantId, document: DocumentId) -> Result<bool> {
        const FLAG: &str = "DELETE FROM document_flags WHERE tenant_id = $1 AND document_id = $2";
        const DOC: &str = "DELETE FROM documents WHERE tenant_id = $1 AND id = $2";
        on!(self, |c| sqlx::query(FLAG)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        let n = on!(self, |c| sqlx::query(DOC)
            .bind(tenant.to_string())
            .bind(document.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }
}

#[async_trait]
impl MessageRepo for SqlTx {
    async fn insert_message(&mut self, grant: &MatterGrant, m: &Message) -> Result<()> {
        if grant.tenant_id() != m.tenant_id || grant.matter_id() != m.matter_id {
            return Err(Error::NotFound);
        }
        // Lock the matter row first (a no-op write: a row lock on PostgreSQL, SQLite's writer
        // lock is already held), so two posts cannot both claim the same place.
        const LOCK: &str = "UPDATE matters SET id = id WHERE tenant_id = $1 AND id = $2";
        on!(self, |c| sqlx::query(LOCK)
            .bind(m.tenant_id.to_string())
            .bind(m.matter_id.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        const Q: &str = "INSERT INTO messages (id, tenant_id, matter_id, author_id, body, created_at, seq) \
                         SELECT $1, $2, $3, $4, $5, $6, COALESCE(MAX(seq), 0) + 1 FROM messages WHERE tenant_id = $2 AND matter_id = $3";
        on!(self, |c| sqlx::query(Q)
            .bind(m.id.to_string())
            .bind(m.tenant_id.to_string())
            .bind(m.matter_id.to_string())
            .bind(m.author_id.to_string())
            .bind(&m.body)
            .bind(ms(m.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn list_messages(&mut self, grant: &MatterGrant) -> Result<Vec<Message>> {
        const Q: &str = "SELECT m.id, m.tenant_id, m.matter_id, m.author_id, u.display_name AS author_name, m.body, m.created_at \
                         FROM messages m JOIN users u ON u.id = m.author_id AND u.tenant_id = m.tenant_id \
                         WHERE m.tenant_id = $1 AND m.matter_id = $2 ORDER BY m.seq";
        let rows: Vec<MessageRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, MessageRow::into_model)
    }
}

#[async_trait]
impl OperatorRepo for SqlTx {
    async fn insert_platform_approval(&mut self, a: &PlatformApproval) -> Result<()> {
        const Q: &str = "INSERT INTO platform_approvals (id, action, requested_by, requested_at, expires_at, state) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(a.id.to_string())
            .bind(a.action.as_str())
            .bind(a.requested_by.to_string())
            .bind(ms(a.requested_at))
            .bind(ms(a.expires_at))
            .bind(a.state.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn platform_approval(&mut self, id: ApprovalId) -> Result<Option<PlatformApproval>> {
        const Q: &str = concat!("SELECT ", platform_approval_columns!(), " FROM platform_approvals WHERE id = $1");
        let row: Option<rows::PlatformApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(rows::PlatformApprovalRow::into_model).transpose()
    }
    async fn list_platform_approvals(&mut self, limit: i64) -> Result<Vec<PlatformApproval>> {
        const Q: &str = concat!(
            "SELECT ",
            platform_approval_columns!(),
            " FROM platform_approvals ORDER BY requested_at DESC, id LIMIT $1"
        );
        let rows: Vec<rows::PlatformApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, rows::PlatformApprovalRow::into_model)
    }
    async fn decide_platform_approval(
        &mut self,
        id: ApprovalId,
        state: ApprovalState,
        by: OperatorId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE platform_approvals SET state = $2, decided_by = $3, decided_at = $4 \
                         WHERE id = $1 AND state = 'pending'";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(state.as_str())
            .bind(by.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn use_platform_approval(&mut self, id: ApprovalId, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE platform_approvals SET used_at = $2 \
                         WHERE id = $1 AND state = 'approved' AND used_at IS NULL";
        let n =
            on!(self, |c| sqlx::query(Q).bind(id.to_string()).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_operator(&mut self, o: &Operator) -> Result<()> {
        const Q: &str = "INSERT INTO operators (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)";
        on!(self, |c| sqlx::query(Q)
            .bind(o.id.to_string())
            .bind(&o.email)
            .bind(&o.display_name)
            .bind(ms(o.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn operator_by_email(&mut self, email: &str) -> Result<Option<Operator>> {
        const Q: &str = "SELECT id, email, display_name, created_at FROM operators WHERE email = $1";
        let row: Option<OperatorRow> =
            on!(self, |c| sqlx::query_as(Q).bind(email).fetch_optional(c).await).map_err(db)?;
        row.map(OperatorRow::into_model).transpose()
    }
    async fn operator(&mut self, id: OperatorId) -> Result<Option<Operator>> {
        const Q: &str = "SELECT id, email, display_name, created_at FROM operators WHERE id = $1";
        let row: Option<OperatorRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(OperatorRow::into_model).transpose()
    }
    async fn list_operators(&mut self) -> Result<Vec<Operator>> {
        const Q: &str = "SELECT id, email, display_name, created_at FROM operators ORDER BY email";
        let rows: Vec<OperatorRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, OperatorRow::into_model)
    }
    async fn put_operator_grant(&mut self, g: &OperatorGrant) -> Result<()> {
        const Q: &str = "INSERT INTO operator_grants (operator_id, role, granted_at, suspended_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (operator_id, role) DO UPDATE SET granted_at = excluded.granted_at, \
                         suspended_at = excluded.suspended_at";
        on!(self, |c| sqlx::query(Q)
            .bind(g.operator_id.to_string())
            .bind(g.role.as_str())
            .bind(ms(g.granted_at))
            .bind(g.suspended_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn operator_grants(&mut self, id: OperatorId) -> Result<Vec<OperatorGrant>> {
        const Q: &str = "SELECT operator_id, role, granted_at, suspended_at FROM operator_grants \
                         WHERE operator_id = $1 ORDER BY role";
        let rows: Vec<GrantRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_all(c).await).map_err(db)?;
        rows::all(rows, GrantRow::into_model)
    }
    async fn active_grants(&mut self, role: OperatorRole) -> Result<Vec<OperatorGrant>> {
        const Q: &str = "SELECT operator_id, role, granted_at, suspended_at FROM operator_grants \
                         WHERE role = $1 AND suspended_at IS NULL ORDER BY operator_id";
        let rows: Vec<GrantRow> =
            on!(self, |c| sqlx::query_as(Q).bind(role.as_str()).fetch_all(c).await).map_err(db)?;
        rows::all(rows, GrantRow::into_model)
    }
    async fn suspend_operator_grant(&mut self, id: OperatorId, role: OperatorRole, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE operator_grants SET suspended_at = $3 \
                         WHERE operator_id = $1 AND role = $2 AND suspended_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(role.as_str())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_vetting(&mut self, v: &VettingRecord) -> Result<()> {
        const Q: &str = "INSERT INTO operator_vetting (operator_id, checked_by, checked_at, valid_until, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5)";
        on!(self, |c| sqlx::query(Q)
            .bind(v.operator_id.to_string())
            .bind(&v.checked_by)
            .bind(ms(v.checked_at))
            .bind(ms(v.valid_until))
            .bind(ms(v.recorded_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn vetting(&mut self, id: OperatorId) -> Result<Option<VettingRecord>> {
        const Q: &str = "SELECT operator_id, checked_by, checked_at, valid_until, recorded_at FROM operator_vetting \
                         WHERE operator_id = $1 ORDER BY recorded_at DESC LIMIT 1";
        let row: Option<VettingRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(VettingRow::into_model).transpose()
    }
    async fn insert_operator_token(
        &mut self,
        id: OperatorId,
        hash: &str,
        at: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<()> {
        const Q: &str =
            "INSERT INTO operator_tokens (token_hash, operator_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        on!(self, |c| sqlx::query(Q)
            .bind(hash)
            .bind(id.to_string())
            .bind(ms(at))
            .bind(ms(expires))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn delete_operator_tokens(&mut self, id: OperatorId) -> Result<u64> {
        const Q: &str = "DELETE FROM operator_tokens WHERE operator_id = $1";
        on!(self, |c| sqlx::query(Q).bind(id.to_string()).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }
    async fn operator_by_token(&mut self, hash: &str, now: OffsetDateTime) -> Result<Option<Operator>> {
        const Q: &str = "SELECT o.id, o.email, o.display_name, o.created_at FROM operator_tokens t \
                         JOIN operators o ON o.id = t.operator_id WHERE t.token_hash = $1 AND t.expires_at > $2";
        let row: Option<OperatorRow> =
            on!(self, |c| sqlx::query_as(Q).bind(hash).bind(ms(now)).fetch_optional(c).await).map_err(db)?;
        row.map(OperatorRow::into_model).transpose()
    }
    async fn tenant_summaries(&mut self) -> Result<Vec<TenantSummary>> {
        const Q: &str = concat!(
            "SELECT ",
            tenant_columns!(),
            ", (SELECT COUNT(*) FROM users u WHERE u.tenant_id = tenants.id) AS users, \
             (SELECT COUNT(*) FROM documents d WHERE d.tenant_id = tenants.id) AS documents, \
             (SELECT CAST(COALESCE(SUM(d.size), 0) AS BIGINT) FROM documents d WHERE d.tenant_id = tenants.id) \
             AS stored_bytes FROM tenants ORDER BY name"
        );
        let rows: Vec<TenantSummaryRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, TenantSummaryRow::into_model)
    }
}

#[async_trait]
impl LoginRepo for SqlTx {
    async fn login_lock(&mut self, tenant: TenantId, user: UserId) -> Result<Lock> {
        const Q: &str = "SELECT locked_until, hard_locked FROM users WHERE tenant_id = $1 AND id = $2";
        let row: Option<(Option<i64>, i64)> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        Ok(match row {
            Some((_, hard)) if hard != 0 => Lock::Hard,
            Some((Some(until), _)) => Lock::Until(portcullis_core::clock::from_millis(until)),
            _ => Lock::Open,
        })
    }
    async fn record_login_failure(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<u32> {
        const COUNT: &str = "UPDATE users SET failed_logins = failed_logins + 1 WHERE tenant_id = $1 AND id = $2 \
                             RETURNING failed_logins";
        const LOCK: &str = "UPDATE users SET locked_until = $3, hard_locked = $4 WHERE tenant_id = $1 AND id = $2";
        let (t, u) = (tenant.to_string(), user.to_string());
        let n: i64 = on!(self, |c| sqlx::query_scalar(COUNT).bind(&t).bind(&u).fetch_one(c).await).map_err(db)?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let (until, hard) = match lockout::after_failure(n, at) {
            Lock::Open => (None, 0i64),
            Lock::Until(t) => (Some(ms(t)), 0),
            Lock::Hard => (None, 1),
        };
        on!(self, |c| sqlx::query(LOCK)
            .bind(&t)
            .bind(&u)
            .bind(until)
            .bind(hard)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n)
    }
    async fn reset_login_failures(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "UPDATE users SET failed_logins = 0, locked_until = NULL, hard_locked = 0 \
                         WHERE tenant_id = $1 AND id = $2 AND (failed_logins <> 0 OR hard_locked <> 0)";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl ApprovalRepo for SqlTx {
    async fn insert_approval(&mut self, a: &ApprovalRequest) -> Result<()> {
        const Q: &str = "INSERT INTO approvals (id, tenant_id, action, requested_by, requested_at, expires_at, state, \
                         decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)";
        let action = serde_json::to_string(&a.action).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(a.id.to_string())
            .bind(a.tenant_id.to_string())
            .bind(&action)
            .bind(a.requested_by.to_string())
            .bind(ms(a.requested_at))
            .bind(ms(a.expires_at))
            .bind(a.state.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn approval(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<ApprovalRequest>> {
        const Q: &str = concat!("SELECT ", approval_columns!(), " FROM approvals WHERE tenant_id = $1 AND id = $2");
        let row: Option<ApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(ApprovalRow::into_model).transpose()
    }
    async fn list_approvals(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<ApprovalRequest>> {
        const Q: &str = concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE tenant_id = $1 ORDER BY requested_at DESC LIMIT $2"
        );
        let rows: Vec<ApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, ApprovalRow::into_model)
    }
    async fn decide_approval(
        &mut self,
        tenant: TenantId,
        id: ApprovalId,
        state: ApprovalState,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE approvals SET state = $3, decided_by = $4, decided_at = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND state = 'pending'";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(state.as_str())
            .bind(by.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn set_user_role(&mut self, tenant: TenantId, user: UserId, role: Role) -> Result<()> {
        const Q: &str = "UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(role.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        if n != 1 {
            return Err(Error::NotFound);
        }
        Ok(())
    }
}

#[async_trait]
impl FactorRepo for SqlTx {
    async fn totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<TotpRecord>> {
        const Q: &str = "SELECT id, tenant_id, secret, enrolled_at, last_step FROM user_totp \
                         WHERE tenant_id = $1 AND id = $2";
        let row: Option<TotpRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(TotpRow::into_model).transpose()
    }
    async fn put_totp(&mut self, t: &TotpRecord) -> Result<()> {
        const Q: &str = "INSERT INTO user_totp (id, tenant_id, secret, enrolled_at, last_step) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, enrolled_at = excluded.enrolled_at, \
                         last_step = excluded.last_step";
        let step = size_i64(t.last_step)?;
        on!(self, |c| sqlx::query(Q)
            .bind(t.user_id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.secret.expose_secret())
            .bind(ms(t.enrolled_at))
            .bind(step)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn use_totp_step(&mut self, tenant: TenantId, user: UserId, step: u64) -> Result<bool> {
        const Q: &str = "UPDATE user_totp SET last_step = $3 WHERE tenant_id = $1 AND id = $2 AND last_step < $3";
        let step = size_i64(step)?;
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(step)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn delete_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        for q in [
            "DELETE FROM user_totp WHERE tenant_id = $1 AND id = $2",
            "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2",
        ] {
            self.exec_for_user(q, tenant, user).await?;
        }
        Ok(())
    }
    async fn pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<PendingTotp>> {
        const Q: &str =
            "SELECT id, tenant_id, secret, created_at FROM totp_enrolments WHERE tenant_id = $1 AND id = $2";
        let row: Option<PendingTotpRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(PendingTotpRow::into_model).transpose()
    }
    async fn put_pending_totp(&mut self, t: &PendingTotp) -> Result<()> {
        const Q: &str = "INSERT INTO totp_enrolments (id, tenant_id, secret, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at";
        on!(self, |c| sqlx::query(Q)
            .bind(t.user_id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.secret.expose_secret())
            .bind(ms(t.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn delete_pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "DELETE FROM totp_enrolments WHERE tenant_id = $1 AND id = $2";
        self.exec_for_user(Q, tenant, user).await.map(|_| ())
    }
    async fn replace_recovery_codes(&mut self, tenant: TenantId, user: UserId, hashes: &[String]) -> Result<()> {
        const DEL: &str = "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2";
        const INS: &str =
            "INSERT INTO recovery_codes (tenant_id, user_id, code_hash, used_at) VALUES ($1, $2, $3, NULL)";
        let (t, u) = (tenant.to_string(), user.to_string());
        on!(self, |c| sqlx::query(DEL).bind(&t).bind(&u).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        for h in hashes {
            on!(self, |c| sqlx::query(INS).bind(&t).bind(&u).bind(h).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        }
        Ok(())
    }
    async fn use_recovery_code(
        &mut self,
        tenant: TenantId,
        user: UserId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE recovery_codes SET used_at = $4 \
                         WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 AND used_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(hash)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn recovery_codes_left(&mut self, tenant: TenantId, user: UserId) -> Result<u64> {
        const Q: &str = "SELECT COUNT(*) FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL";
        let n: i64 =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_one(c).await)
                .map_err(db)?;
        u64::try_from(n).map_err(Error::internal)
    }
    async fn set_session_second_factor(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "UPDATE sessions SET second_factor_at = $2 WHERE token_hash = $1";
        on!(self, |c| sqlx::query(Q).bind(token_hash).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }
    async fn clear_enrol_required(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        const Q: &str = "UPDATE sessions SET enrol_required = 0 WHERE tenant_id = $1 AND user_id = $2";
        self.exec_for_user(Q, tenant, user).await.map(|_| ())
    }
    async fn passkeys(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyRecord>> {
        const Q: &str = "SELECT id, tenant_id, user_id, name, credential, created_at, last_used_at FROM passkeys \
                         WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id";
        let rows: Vec<rows::PasskeyRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, rows::PasskeyRow::into_model)
    }
    async fn insert_passkey(&mut self, k: &PasskeyRecord) -> Result<()> {
        const Q: &str = "INSERT INTO passkeys (id, tenant_id, user_id, credential_id, name, credential, created_at, \
                         last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let credential = serde_json::to_string(&k.credential).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(k.id.to_string())
            .bind(k.tenant_id.to_string())
            .bind(k.user_id.to_string())
            .bind(webauthn::credential_id(&k.credential))
            .bind(&k.name)
            .bind(&credential)
            .bind(ms(k.created_at))
            .bind(k.last_used_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn passkey_credential_exists(&mut self, credential_id: &str) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM passkeys WHERE credential_id = $1";
        let n: i64 = on!(self, |c| sqlx::query_scalar(Q).bind(credential_id).fetch_one(c).await).map_err(db)?;
        Ok(n > 0)
    }
    async fn update_passkey(&mut self, k: &PasskeyRecord) -> Result<()> {
        const Q: &str = "UPDATE passkeys SET credential = $3, last_used_at = $4 WHERE tenant_id = $1 AND id = $2";
        let credential = serde_json::to_string(&k.credential).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(k.tenant_id.to_string())
            .bind(k.id.to_string())
            .bind(&credential)
            .bind(k.last_used_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn delete_passkey(&mut self, tenant: TenantId, user: UserId, id: PasskeyId) -> Result<bool> {
        const Q: &str = "DELETE FROM passkeys WHERE tenant_id = $1 AND user_id = $2 AND id = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(id.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_webauthn_challenge(&mut self, ch: &WebauthnChallenge, now: OffsetDateTime) -> Result<()> {
        const PURGE: &str =
            "DELETE FROM webauthn_challenges WHERE tenant_id = $1 AND user_id = $2 AND expires_at <= $3";
        const Q: &str = "INSERT INTO webauthn_challenges (id, tenant_id, user_id, purpose, state, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        let (t, u) = (ch.tenant_id.to_string(), ch.user_id.to_string());
        on!(self, |c| sqlx::query(PURGE).bind(&t).bind(&u).bind(ms(now)).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        on!(self, |c| sqlx::query(Q)
            .bind(&ch.id)
            .bind(&t)
            .bind(&u)
            .bind(ch.purpose.as_str())
            .bind(&ch.state)
            .bind(ms(ch.expires_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn take_webauthn_challenge(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: &str,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<Option<WebauthnChallenge>> {
        // Deleted whatever its state: a challenge is good for one answer, right or wrong.
        const Q: &str = "DELETE FROM webauthn_challenges WHERE tenant_id = $1 AND user_id = $2 AND id = $3 \
                         RETURNING id, tenant_id, user_id, purpose, state, expires_at";
        let row: Option<rows::ChallengeRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(id)
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        let found = row.map(rows::ChallengeRow::into_model).transpose()?;
        Ok(found.filter(|c| c.purpose == purpose && c.expires_at > now))
    }
}

#[async_trait]
impl RotationRepo for SqlTx {
    async fn insert_key_rotation(&mut self, r: &KeyRotation) -> Result<()> {
        const Q: &str = "INSERT INTO key_rotations (tenant_id, target_version, started_at, finished_at, heartbeat_at, \
                         documents_done, fields_done) VALUES ($1, $2, $3, NULL, NULL, 0, 0)";
        on!(self, |c| sqlx::query(Q)
            .bind(r.tenant_id.to_string())
            .bind(i64::from(r.target_version))
            .bind(ms(r.started_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn latest_key_rotation(&mut self, tenant: TenantId) -> Result<Option<KeyRotation>> {
        const Q: &str = concat!(
            "SELECT ",
            rotation_columns!(),
            " FROM key_rotations WHERE tenant_id = $1 ORDER BY target_version DESC LIMIT 1"
        );
        let row: Option<KeyRotationRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(KeyRotationRow::into_model).transpose()
    }
    async fn open_key_rotations(&mut self) -> Result<Vec<KeyRotation>> {
        const Q: &str = concat!(
            "SELECT ",
            rotation_columns!(),
            " FROM key_rotations WHERE finished_at IS NULL ORDER BY started_at"
        );
        let rows: Vec<KeyRotationRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, KeyRotationRow::into_model)
    }
    async fn touch_key_rotation(
        &mut self,
        tenant: TenantId,
        target: u32,
        at: OffsetDateTime,
        documents: u64,
        fields: u64,
    ) -> Result<()> {
        const Q: &str = "UPDATE key_rotations SET heartbeat_at = $3, documents_done = documents_done + $4, \
                         fields_done = fields_done + $5 WHERE tenant_id = $1 AND target_version = $2";
        let (documents, fields) = (size_i64(documents)?, size_i64(fields)?);
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(target))
            .bind(ms(at))
            .bind(documents)
            .bind(fields)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn finish_key_rotation(&mut self, tenant: TenantId, target: u32, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE key_rotations SET finished_at = $3, heartbeat_at = $3 \
                         WHERE tenant_id = $1 AND target_version = $2 AND finished_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(target))
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn reopen_key_rotation(&mut self, tenant: TenantId, target: u32) -> Result<()> {
        const Q: &str = "UPDATE key_rotations SET finished_at = NULL WHERE tenant_id = $1 AND target_version = $2";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(i64::from(target))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn documents_below_version(
        &mut self,
        tenant: TenantId,
        version: u32,
        after: Option<DocumentId>,
        limit: i64,
    ) -> Result<Vec<Document>> {
        const Q: &str = concat!(
            "SELECT ",
            document_columns!(),
            " FROM documents WHERE tenant_id = $1 AND key_version < $2 AND id > $3 ORDER BY id LIMIT $4"
        );
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows: Vec<DocumentRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(i64::from(version))
            .bind(&after)
            .bind(limit)
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, DocumentRow::into_model)
    }
    async fn count_documents_below_version(&mut self, tenant: TenantId, version: u32) -> Result<u64> {
        const Q: &str = "SELECT COUNT(*) FROM documents WHERE tenant_id = $1 AND key_version < $2";
        let n: i64 =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(i64::from(version)).fetch_one(c).await)
                .map_err(db)?;
        u64::try_from(n).map_err(Error::internal)
    }
    async fn switch_document_copy(
        &mut self,
        tenant: TenantId,
        id: DocumentId,
        from_rev: &str,
        to_version: u32,
        to_rev: &str,
    ) -> Result<bool> {
        const Q: &str = "UPDATE documents SET key_version = $4, blob_rev = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND blob_rev = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(from_rev)
            .bind(i64::from(to_version))
            .bind(to_rev)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn stale_fields(
        &mut self,
        tenant: TenantId,
        column: SealedColumn,
        version: u32,
        after: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredField>> {
        let q = field_sql(column).select;
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows: Vec<FieldRow> = on!(self, |c| sqlx::query_as(q)
            .bind(tenant.to_string())
            .bind(current_pattern(version))
            .bind(&after)
            .bind(limit)
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows.into_iter().map(|r| r.into_field(column)).collect()
    }
    async fn count_stale_fields(&mut self, tenant: TenantId, column: SealedColumn, version: u32) -> Result<u64> {
        let q = field_sql(column).count;
        let n: i64 = on!(self, |c| sqlx::query_scalar(q)
            .bind(tenant.to_string())
            .bind(current_pattern(version))
            .fetch_one(c)
            .await)
        .map_err(db)?;
        u64::try_from(n).map_err(Error::internal)
    }
    async fn replace_field(&mut self, tenant: TenantId, field: &StoredField, sealed: &str) -> Result<bool> {
        let q = field_sql(field.column).update;
        let n = on!(self, |c| sqlx::query(q)
            .bind(tenant.to_string())
            .bind(field.row.to_string())
            .bind(&field.value)
            .bind(sealed)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
}

#[async_trait]
impl BlobRepo for SqlTx {
    async fn mark_blob(&mut self, tenant: TenantId, key: &str, pending: bool, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "INSERT INTO blob_garbage (blob_key, tenant_id, state, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (blob_key) DO UPDATE SET state = excluded.state";
        on!(self, |c| sqlx::query(Q)
            .bind(key)
            .bind(tenant.to_string())
            .bind(if pending { "pending" } else { "replaced" })
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn claim_pending_blob(&mut self, key: &str) -> Result<bool> {
        const Q: &str = "DELETE FROM blob_garbage WHERE blob_key = $1 AND state = 'pending'";
        let n = on!(self, |c| sqlx::query(Q).bind(key).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(n == 1)
    }
    async fn abandon_pending_blobs(&mut self, tenant: TenantId) -> Result<u64> {
        const Q: &str = "UPDATE blob_garbage SET state = 'replaced' WHERE tenant_id = $1 AND state = 'pending'";
        on!(self, |c| sqlx::query(Q).bind(tenant.to_string()).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }
    async fn replaced_blobs(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<String>> {
        const Q: &str = "SELECT blob_key FROM blob_garbage WHERE tenant_id = $1 AND state = 'replaced' \
                         ORDER BY blob_key LIMIT $2";
        on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).bind(limit).fetch_all(c).await).map_err(db)
    }
    async fn forget_blob(&mut self, key: &str) -> Result<()> {
        const Q: &str = "DELETE FROM blob_garbage WHERE blob_key = $1";
        on!(self, |c| sqlx::query(Q).bind(key).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        Ok(())
    }
    async fn all_replaced_blobs(&mut self, limit: i64) -> Result<Vec<String>> {
        const Q: &str = "SELECT blob_key FROM blob_garbage WHERE state = 'replaced' ORDER BY blob_key LIMIT $1";
        on!(self, |c| sqlx::query_scalar(Q).bind(limit).fetch_all(c).await).map_err(db)
    }
}

#[async_trait]
impl LeaseRepo for SqlTx {
    async fn take_lease(
        &mut self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                         WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(name)
            .bind(holder)
            .bind(ms(until))
            .bind(ms(now))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()> {
        const Q: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
        on!(self, |c| sqlx::query(Q).bind(name).bind(holder).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db)?;
        Ok(())
    }
    async fn lease_held(&mut self, name: &str, now: OffsetDateTime) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM leases WHERE name = $1 AND expires_at > $2";
        let n: i64 = on!(self, |c| sqlx::query_scalar(Q).bind(name).bind(ms(now)).fetch_one(c).await).map_err(db)?;
        Ok(n > 0)
    }
    async fn leases_held(&mut self, prefix: &str, now: OffsetDateTime) -> Result<i64> {
        // A prefix match without LIKE, so no character of the prefix is a wildcard.
        const Q: &str = "SELECT COUNT(*) FROM leases WHERE substr(name, 1, length($1)) = $1 AND expires_at > $2";
        on!(self, |c| sqlx::query_scalar(Q).bind(prefix).bind(ms(now)).fetch_one(c).await).map_err(db)
    }
}

#[async_trait]
impl DeviceRepo for SqlTx {
    async fn touch_known_device(
        &mut self,
        tenant: TenantId,
        user: UserId,
        device_hash: &str,
        at: OffsetDateTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<bool> {
        const Q: &str = "UPDATE known_devices SET last_seen_at = $4, ip = $5, user_agent = $6 \
                         WHERE tenant_id = $1 AND user_id = $2 AND device_hash = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(device_hash)
            .bind(ms(at))
            .bind(ip)
            .bind(user_agent)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_known_device(&mut self, d: &KnownDevice) -> Result<()> {
        const Q: &str = "INSERT INTO known_devices (tenant_id, user_id, device_hash, first_seen_at, last_seen_at, \
                         user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on!(self, |c| sqlx::query(Q)
            .bind(d.tenant_id.to_string())
            .bind(d.user_id.to_string())
            .bind(&d.device_hash)
            .bind(ms(d.first_seen_at))
            .bind(ms(d.last_seen_at))
            .bind(&d.user_agent)
            .bind(&d.ip)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl OutboxRepo for SqlTx {
    async fn insert_mail(&mut self, m: &OutboxMail) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO mail_outbox (",
            mail_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(m.id.to_string())
            .bind(m.tenant_id.to_string())
            .bind(m.user_id.to_string())
            .bind(m.kind.as_str())
            .bind(m.detail.to_string())
            .bind(ms(m.delivery.created_at))
            .bind(i64::from(m.delivery.attempts))
            .bind(ms(m.delivery.next_attempt_at))
            .bind(m.delivery.sent_at.map(ms))
            .bind(m.delivery.failed_at.map(ms))
            .bind(&m.delivery.last_error)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn due_mail(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<OutboxMail>> {
        rows::all(self.outbox_due(&MAIL_OUTBOX, now, limit).await?, MailRow::into_model)
    }
    async fn lease_mail(
        &mut self,
        tenant: TenantId,
        id: MailId,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        self.outbox_lease(&MAIL_OUTBOX, (tenant.to_string(), id.to_string()), seen, until).await
    }
    async fn mark_mail_sent(&mut self, tenant: TenantId, id: MailId, at: OffsetDateTime) -> Result<()> {
        self.outbox_sent(&MAIL_OUTBOX, (tenant.to_string(), id.to_string()), at).await
    }
    async fn record_mail_failure(
        &mut self,
        tenant: TenantId,
        id: MailId,
        attempts: u32,
        error: &str,
        next_attempt_at: OffsetDateTime,
        failed_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let key = (tenant.to_string(), id.to_string());
        self.outbox_failure(&MAIL_OUTBOX, key, attempts, Some(error), next_attempt_at, failed_at).await
    }
    async fn queue_depths(&mut self) -> Result<Vec<portcullis_core::model::QueueDepth>> {
        // The due indexes cover the waiting rows of the outboxes; exports are few.
        const Q: &str = "SELECT 'mail', COUNT(*), MIN(created_at) FROM mail_outbox \
                         WHERE sent_at IS NULL AND failed_at IS NULL \
                         UNION ALL SELECT 'alerts', COUNT(*), MIN(created_at) FROM alert_deliveries \
                         WHERE sent_at IS NULL AND failed_at IS NULL \
                         UNION ALL SELECT 'exports', COUNT(*), MIN(created_at) FROM tenant_exports \
                         WHERE state = 'pending'";
        let rows: Vec<(String, i64, Option<i64>)> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(queue, waiting, oldest)| {
                let queue = ["mail", "alerts", "exports"].into_iter().find(|q| *q == queue)?;
                Some(portcullis_core::model::QueueDepth {
                    queue,
                    waiting,
                    oldest_at: oldest.map(portcullis_core::clock::from_millis),
                })
            })
            .collect())
    }
}

#[async_trait]
impl AlertRepo for SqlTx {
    async fn record_alert(&mut self, a: &Alert) -> Result<(AlertId, u32)> {
        // A repeat within the window only counts; the first occurrence's facts stay.
        const Q: &str = concat!(
            "INSERT INTO alerts (",
            alert_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (dedup_key) DO UPDATE SET occurrences = alerts.occurrences + 1, \
             last_at = excluded.last_at RETURNING id, occurrences"
        );
        let (id, n): (String, i64) = on!(self, |c| sqlx::query_as(Q)
            .bind(a.id.to_string())
            .bind(a.facts.kind.as_str())
            .bind(a.facts.severity.as_str())
            .bind(a.facts.tenant_id.map(|t| t.to_string()))
            .bind(&a.facts.subject)
            .bind(&a.facts.summary)
            .bind(a.facts.detail.to_string())
            .bind(&a.dedup_key)
            .bind(i64::from(a.occurrences))
            .bind(ms(a.first_at))
            .bind(ms(a.last_at))
            .bind(ms(a.window_end))
            .bind(a.dispatched_at.map(ms))
            .bind(a.follow_up_dispatched_at.map(ms))
            .fetch_one(c)
            .await)
        .map_err(db)?;
        Ok((rows::id(&id, AlertId::from_uuid)?, u32::try_from(n).map_err(Error::internal)?))
    }
    async fn alert(&mut self, id: AlertId) -> Result<Option<Alert>> {
        const Q: &str = concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1");
        let row: Option<AlertRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(AlertRow::into_model).transpose()
    }
    async fn alerts_to_dispatch(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Alert>> {
        const Q: &str = concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE dispatched_at IS NULL \
             OR (follow_up_dispatched_at IS NULL AND occurrences > 1 AND window_end <= $1) \
             ORDER BY first_at LIMIT $2"
        );
        let rows: Vec<AlertRow> =
            on!(self, |c| sqlx::query_as(Q).bind(ms(now)).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, AlertRow::into_model)
    }
    async fn claim_alert_dispatch(&mut self, id: AlertId, notice: Notice, at: OffsetDateTime) -> Result<bool> {
        const FIRST: &str = "UPDATE alerts SET dispatched_at = $2, follow_up_dispatched_at = \
                             CASE WHEN window_end <= $2 THEN $2 ELSE NULL END \
                             WHERE id = $1 AND dispatched_at IS NULL";
        const FOLLOW_UP: &str = "UPDATE alerts SET follow_up_dispatched_at = $2 WHERE id = $1 \
                                 AND dispatched_at IS NOT NULL AND follow_up_dispatched_at IS NULL \
                                 AND occurrences > 1 AND window_end <= $2";
        let q = match notice {
            Notice::First => FIRST,
            Notice::FollowUp => FOLLOW_UP,
        };
        let n =
            on!(self, |c| sqlx::query(q).bind(id.to_string()).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_alert_delivery(&mut self, d: &AlertDelivery) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO alert_deliveries (",
            delivery_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(d.id.to_string())
            .bind(d.alert_id.to_string())
            .bind(d.channel.as_str())
            .bind(&d.recipient)
            .bind(d.notice.as_str())
            .bind(ms(d.delivery.created_at))
            .bind(i64::from(d.delivery.attempts))
            .bind(ms(d.delivery.next_attempt_at))
            .bind(d.delivery.sent_at.map(ms))
            .bind(d.delivery.failed_at.map(ms))
            .bind(&d.delivery.last_error)
            .execute(c)
            .await
            .map(|_| ()))
        .map_err(db)
    }
    async fn due_alert_deliveries(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<AlertDelivery>> {
        rows::all(self.outbox_due(&ALERT_OUTBOX, now, limit).await?, DeliveryRow::into_model)
    }
    async fn lease_alert_delivery(&mut self, d: &AlertDelivery, until: OffsetDateTime) -> Result<bool> {
        let key = (d.alert_id.to_string(), d.id.to_string());
        self.outbox_lease(&ALERT_OUTBOX, key, d.delivery.next_attempt_at, until).await
    }
    async fn mark_alert_delivery_sent(&mut self, d: &AlertDelivery, at: OffsetDateTime) -> Result<()> {
        self.outbox_sent(&ALERT_OUTBOX, (d.alert_id.to_string(), d.id.to_string()), at).await
    }
    async fn record_alert_delivery_failure(&mut self, d: &AlertDelivery) -> Result<()> {
        let key = (d.alert_id.to_string(), d.id.to_string());
        let s = &d.delivery;
        self.outbox_failure(&ALERT_OUTBOX, key, s.attempts, s.last_error.as_deref(), s.next_attempt_at, s.failed_at)
            .await
    }
}

#[async_trait]
impl ProtectionRepo for SqlTx {
    async fn protection_settings(&mut self, tenant: TenantId) -> Result<Option<String>> {
        const Q: &str = "SELECT settings FROM tenant_protection WHERE tenant_id = $1";
        on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).fetch_optional(c).await).map_err(db)
    }
    async fn set_protection_settings(&mut self, tenant: TenantId, settings: &str, at: OffsetDateTime) -> Result<()> {
        const Q: &str = "INSERT INTO tenant_protection (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(settings)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn add_download(&mut self, tenant: TenantId, user: UserId, day: &str, bytes: u64) -> Result<()> {
        const Q: &str = "INSERT INTO download_usage (tenant_id, user_id, day, downloads, bytes) \
                         VALUES ($1, $2, $3, 1, $4) ON CONFLICT (tenant_id, user_id, day) DO UPDATE \
                         SET downloads = download_usage.downloads + 1, bytes = download_usage.bytes + excluded.bytes";
        let bytes = size_i64(bytes)?;
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(day)
            .bind(bytes)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<(u64, u64)> {
        const Q: &str =
            "SELECT downloads, bytes FROM download_usage WHERE tenant_id = $1 AND user_id = $2 AND day = $3";
        let row: Option<(i64, i64)> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(day)
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        let (n, b) = row.unwrap_or((0, 0));
        Ok((u64::try_from(n).unwrap_or(0), u64::try_from(b).unwrap_or(0)))
    }
    async fn reset_download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<bool> {
        const Q: &str = "DELETE FROM download_usage WHERE tenant_id = $1 AND user_id = $2 AND day = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(day)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }
}

#[async_trait]
impl IntrusionRepo for SqlTx {
    async fn insert_block(&mut self, b: &Block) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO security_blocks (",
            block_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(b.id.to_string())
            .bind(b.scope.as_str())
            .bind(b.tenant_id.map(|t| t.to_string()))
            .bind(b.user_id.map(|u| u.to_string()))
            .bind(&b.ip)
            .bind(b.reason.as_str())
            .bind(b.detail.to_string())
            .bind(ms(b.created_at))
            .bind(b.expires_at.map(ms))
            .bind(b.lifted_at.map(ms))
            .bind(&b.lifted_by)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn block(&mut self, id: BlockId) -> Result<Option<Block>> {
        const Q: &str = concat!("SELECT ", block_columns!(), " FROM security_blocks WHERE id = $1");
        let row: Option<BlockRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(BlockRow::into_model).transpose()
    }
    async fn active_blocks(&mut self, tenant: Option<TenantId>, now: OffsetDateTime) -> Result<Vec<Block>> {
        const Q: &str = concat!(
            "SELECT ",
            block_columns!(),
            " FROM security_blocks WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
             AND (tenant_id = $1 OR ($1 IS NULL AND tenant_id IS NULL)) ORDER BY created_at DESC, id LIMIT 500"
        );
        let rows: Vec<BlockRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.map(|t| t.to_string())).bind(ms(now)).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, BlockRow::into_model)
    }
    async fn source_block(&mut self, ip: &str, now: OffsetDateTime) -> Result<Option<Block>> {
        const Q: &str = concat!(
            "SELECT ",
            block_columns!(),
            " FROM security_blocks WHERE ip = $1 AND scope = 'source' AND lifted_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC LIMIT 1"
        );
        let row: Option<BlockRow> =
            on!(self, |c| sqlx::query_as(Q).bind(ip).bind(ms(now)).fetch_optional(c).await).map_err(db)?;
        row.map(BlockRow::into_model).transpose()
    }
    async fn user_block(
        &mut self,
        tenant: TenantId,
        user: UserId,
        scope: BlockScope,
        now: OffsetDateTime,
    ) -> Result<Option<Block>> {
        const Q: &str = concat!(
            "SELECT ",
            block_columns!(),
            " FROM security_blocks WHERE tenant_id = $1 AND user_id = $2 AND scope = $3 AND lifted_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $4) ORDER BY created_at DESC LIMIT 1"
        );
        let row: Option<BlockRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(scope.as_str())
            .bind(ms(now))
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        row.map(BlockRow::into_model).transpose()
    }
    async fn lift_block(&mut self, id: BlockId, by: &str, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE security_blocks SET lifted_at = $2, lifted_by = $3 WHERE id = $1 AND lifted_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(ms(at))
            .bind(by)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn insert_detection(&mut self, d: &Detection) -> Result<()> {
        const Q: &str = "INSERT INTO security_detections (id, kind, tenant_id, user_id, ip, detail, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on!(self, |c| sqlx::query(Q)
            .bind(d.id.to_string())
            .bind(d.kind.as_str())
            .bind(d.tenant_id.map(|t| t.to_string()))
            .bind(d.user_id.map(|u| u.to_string()))
            .bind(&d.ip)
            .bind(d.detail.to_string())
            .bind(ms(d.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn detections(&mut self, tenant: Option<TenantId>, limit: i64) -> Result<Vec<Detection>> {
        const Q: &str = "SELECT id, kind, tenant_id, user_id, ip, detail, created_at FROM security_detections \
                         WHERE tenant_id = $1 OR ($1 IS NULL AND tenant_id IS NULL) \
                         ORDER BY created_at DESC, id LIMIT $2";
        let rows: Vec<DetectionRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.map(|t| t.to_string())).bind(limit).fetch_all(c).await)
                .map_err(db)?;
        rows::all(rows, DetectionRow::into_model)
    }
    async fn record_signin_failure(
        &mut self,
        ip: &str,
        target: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(u32, u32, u32)> {
        const PRUNE: &str = "DELETE FROM signin_failures WHERE at < $1";
        const INSERT: &str = "INSERT INTO signin_failures (ip, target, at) VALUES ($1, $2, $3)";
        const TARGETS: &str = "SELECT COUNT(DISTINCT target) FROM signin_failures WHERE ip = $1 AND at >= $2";
        const SOURCES: &str = "SELECT COUNT(DISTINCT ip) FROM signin_failures WHERE target = $1 AND at >= $2";
        const TRIES: &str = "SELECT COUNT(*) FROM signin_failures WHERE ip = $1 AND target = $2 AND at >= $3";
        self.advisory_lock("signin_failures").await?;
        on!(self, |c| sqlx::query(PRUNE).bind(ms(since)).execute(c).await.map(|r| r.rows_affected())).map_err(db)?;
        on!(self, |c| sqlx::query(INSERT)
            .bind(ip)
            .bind(target)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        let targets: i64 =
            on!(self, |c| sqlx::query_scalar(TARGETS).bind(ip).bind(ms(since)).fetch_one(c).await).map_err(db)?;
        let sources: i64 =
            on!(self, |c| sqlx::query_scalar(SOURCES).bind(target).bind(ms(since)).fetch_one(c).await).map_err(db)?;
        let tries: i64 =
            on!(self, |c| sqlx::query_scalar(TRIES).bind(ip).bind(target).bind(ms(since)).fetch_one(c).await)
                .map_err(db)?;
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok((n(targets), n(sources), n(tries)))
    }
    async fn lock_user_counters(&mut self, tenant: TenantId, user: UserId) -> Result<()> {
        self.advisory_lock(&format!("user_counters:{tenant}:{user}")).await
    }
    async fn baseline(&mut self, tenant: TenantId, user: UserId) -> Result<Option<Baseline>> {
        const Q: &str = "SELECT tenant_id, user_id, day, day_count, day_bytes, avg_count, avg_bytes, days, hours \
                         FROM user_baselines WHERE tenant_id = $1 AND user_id = $2";
        let row: Option<BaselineRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(user.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(BaselineRow::into_model).transpose()
    }
    async fn save_baseline(&mut self, b: &Baseline) -> Result<()> {
        const Q: &str = "INSERT INTO user_baselines (tenant_id, user_id, day, day_count, day_bytes, avg_count, \
                         avg_bytes, days, hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (tenant_id, user_id) DO UPDATE SET day = excluded.day, \
                         day_count = excluded.day_count, day_bytes = excluded.day_bytes, \
                         avg_count = excluded.avg_count, avg_bytes = excluded.avg_bytes, days = excluded.days, \
                         hours = excluded.hours";
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let hours = serde_json::to_string(&b.hours.to_vec()).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(b.tenant_id.to_string())
            .bind(b.user_id.to_string())
            .bind(b.day)
            .bind(big(b.day_count))
            .bind(big(b.day_bytes))
            .bind(big(b.avg_count_milli))
            .bind(big(b.avg_bytes_milli))
            .bind(i64::from(b.days))
            .bind(&hours)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn remember_ip(&mut self, tenant: TenantId, user: UserId, ip: &str, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "INSERT INTO user_known_ips (tenant_id, user_id, ip, first_seen) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (tenant_id, user_id, ip) DO NOTHING";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(ip)
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
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
        self.search_audit(chain, &AuditFilter::default(), after_seq, None, limit).await
    }
    async fn search_audit(
        &mut self,
        chain: &str,
        filter: &AuditFilter,
        after_seq: i64,
        upto_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let (sql, binds) = audit_search_query(chain, filter, after_seq, upto_seq, limit);
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

#[async_trait]
impl IncidentRepo for SqlTx {
    async fn insert_incident(&mut self, i: &IncidentRecord) -> Result<()> {
        const Q: &str = concat!(
            "INSERT INTO incidents (",
            incident_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on!(self, |c| sqlx::query(Q)
            .bind(i.id.to_string())
            .bind(&i.reference)
            .bind(i.kind.as_str())
            .bind(i.severity.as_str())
            .bind(i.state.as_str())
            .bind(ms(i.reported_at))
            .bind(ms(i.triage_due))
            .bind(i.triage_alerted_at.map(ms))
            .bind(i.assignee.map(|a| a.to_string()))
            .bind(i.version)
            .bind(&i.key_id)
            .bind(hex::encode(&i.wrapped_key))
            .bind(&i.body)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn incident(&mut self, id: IncidentId) -> Result<Option<IncidentRecord>> {
        const Q: &str = concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id = $1");
        let row: Option<rows::IncidentRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(rows::IncidentRow::into_model).transpose()
    }
    async fn list_incidents(&mut self, limit: i64) -> Result<Vec<IncidentRecord>> {
        const Q: &str =
            concat!("SELECT ", incident_columns!(), " FROM incidents ORDER BY reported_at DESC, id LIMIT $1");
        let rows: Vec<rows::IncidentRow> =
            on!(self, |c| sqlx::query_as(Q).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, rows::IncidentRow::into_model)
    }
    async fn update_incident(&mut self, i: &IncidentRecord) -> Result<bool> {
        const Q: &str = "UPDATE incidents SET severity = $2, state = $3, triage_alerted_at = $4, assignee = $5, \
                         version = $6, key_id = $7, wrapped_key = $8, body = $9 WHERE id = $1 AND version = $10";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(i.id.to_string())
            .bind(i.severity.as_str())
            .bind(i.state.as_str())
            .bind(i.triage_alerted_at.map(ms))
            .bind(i.assignee.map(|a| a.to_string()))
            .bind(i.version)
            .bind(&i.key_id)
            .bind(hex::encode(&i.wrapped_key))
            .bind(&i.body)
            .bind(i.version - 1)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }
    async fn triage_overdue(&mut self, now: OffsetDateTime) -> Result<Vec<IncidentRecord>> {
        const Q: &str = concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE state = 'reported' AND triage_due <= $1 AND triage_alerted_at IS NULL \
             ORDER BY triage_due LIMIT 100"
        );
        let rows: Vec<rows::IncidentRow> =
            on!(self, |c| sqlx::query_as(Q).bind(ms(now)).fetch_all(c).await).map_err(db)?;
        rows::all(rows, rows::IncidentRow::into_model)
    }
    async fn insert_breach_notice(&mut self, n: &BreachNotice, tenant: TenantId) -> Result<()> {
        const Q: &str =
            "INSERT INTO breach_notices (incident_id, tenant_id, notified_at, detail) VALUES ($1, $2, $3, $4)";
        let detail = serde_json::to_string(n).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(n.incident_id.to_string())
            .bind(tenant.to_string())
            .bind(ms(n.notified_at))
            .bind(&detail)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }
    async fn breach_notices(&mut self, tenant: TenantId, since: OffsetDateTime) -> Result<Vec<BreachNotice>> {
        const Q: &str = "SELECT detail FROM breach_notices WHERE tenant_id = $1 AND notified_at >= $2 \
                         ORDER BY notified_at DESC LIMIT 50";
        let rows: Vec<(String,)> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(ms(since)).fetch_all(c).await).map_err(db)?;
        rows.into_iter()
            .map(|(d,)| serde_json::from_str(&d).map_err(|_| Error::internal("a stored breach notice is not JSON")))
            .collect()
    }
}

#[async_trait]
impl Tx for SqlTx {
    async fn commit(self: Box<Self>) -> Result<()> {
        match self.inner {
            Inner::Sqlite(t) => t.commit().await.map_err(db),
            Inner::Pg(t) => t.commit().await.map_err(db),
        }
    }

    fn tenants(&mut self) -> &mut dyn TenantRepo {
        self
    }
    fn lifecycle(&mut self) -> &mut dyn LifecycleRepo {
        self
    }
    fn exports(&mut self) -> &mut dyn ExportRepo {
        self
    }
    fn keys(&mut self) -> &mut dyn KeyRepo {
        self
    }
    fn users(&mut self) -> &mut dyn UserRepo {
        self
    }
    fn sessions(&mut self) -> &mut dyn SessionRepo {
        self
    }
    fn links(&mut self) -> &mut dyn LinkRepo {
        self
    }
    fn tokens(&mut self) -> &mut dyn TokenRepo {
        self
    }
    fn matters(&mut self) -> &mut dyn MatterRepo {
        self
    }
    fn documents(&mut self) -> &mut dyn DocumentRepo {
        self
    }
    fn messages(&mut self) -> &mut dyn MessageRepo {
        self
    }
    fn operators(&mut self) -> &mut dyn OperatorRepo {
        self
    }
    fn logins(&mut self) -> &mut dyn LoginRepo {
        self
    }
    fn approvals(&mut self) -> &mut dyn ApprovalRepo {
        self
    }
    fn factors(&mut self) -> &mut dyn FactorRepo {
        self
    }
    fn rotation(&mut self) -> &mut dyn RotationRepo {
        self
    }
    fn blobs(&mut self) -> &mut dyn BlobRepo {
        self
    }
    fn leases(&mut self) -> &mut dyn LeaseRepo {
        self
    }
    fn devices(&mut self) -> &mut dyn DeviceRepo {
        self
    }
    fn outbox(&mut self) -> &mut dyn OutboxRepo {
        self
    }
    fn alerts(&mut self) -> &mut dyn AlertRepo {
        self
    }
    fn protection(&mut self) -> &mut dyn ProtectionRepo {
        self
    }
    fn intrusion(&mut self) -> &mut dyn IntrusionRepo {
        self
    }
    fn audit(&mut self) -> &mut dyn AuditRepo {
        self
    }
    fn incidents(&mut self) -> &mut dyn IncidentRepo {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (sql, binds) = audit_search_query("t", &filter, 5, Some(9), 10);
        assert!(!sql.contains("OR 1=1") && !sql.contains("auth.") && !sql.contains(&m.to_string()), "{sql}");
        assert_eq!(binds.len(), 10);
        assert!(sql.ends_with("ORDER BY seq LIMIT $10"), "{sql}");
        let (plain, binds) = audit_search_query("t", &AuditFilter::default(), 0, None, 3);
        assert_eq!(binds, [Bind::Text("t".into()), Bind::Int(0), Bind::Int(3)]);
        assert!(plain.ends_with("WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"), "{plain}");
        let list =
            AuditFilter { action: Some(ActionMatch::OneOf(vec!["a.b".into(), "c.d".into()])), ..Default::default() };
        let (sql, binds) = audit_search_query("t", &list, 0, None, 3);
        assert!(sql.contains("AND action IN ($3, $4) ORDER BY seq LIMIT $5"), "{sql}");
        assert_eq!(binds[2..4], [Bind::Text("a.b".into()), Bind::Text("c.d".into())]);
        let none = AuditFilter { action: Some(ActionMatch::OneOf(Vec::new())), ..Default::default() };
        assert!(audit_search_query("t", &none, 0, None, 3).0.contains("AND 1 = 0"));
    }

    #[tokio::test]
    async fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = SqlStore::open(&url).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else { unreachable!() };
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'from the future', TRUE, x'00', 0)",
        )
        .execute(pool)
        .await
        .unwrap();
        store.close().await;
        let err = SqlStore::open(&url).await.unwrap_err();
        assert!(err.to_string().contains("migration"), "{err}");
    }
}
