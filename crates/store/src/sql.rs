//! The `Store` port on SQLite and PostgreSQL. The SQL text is shared: both engines accept `$n`
//! placeholders, `RETURNING` and the plain types used here (TEXT, BIGINT), so each query is
//! written once and the `on!` macro runs it on whichever engine is open.

use async_trait::async_trait;
use portcullis_core::clock::to_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::ports::{
    AlertRepo, ApprovalRepo, AuditRepo, BlobRepo, DeviceRepo, DocumentRepo, ExportRepo, FactorRepo, IncidentRepo,
    IntrusionRepo, KeyRepo, LeaseRepo, LifecycleRepo, LinkRepo, LoginRepo, MatterRepo, MessageRepo, OperatorRepo,
    OutboxRepo, ProtectionRepo, RotationRepo, SessionRepo, Store, TenantRepo, TokenRepo, Tx, TxMode, UserRepo,
};
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

/// The columns of `documents`, in the order `DocumentRow` and the INSERT use.
macro_rules! document_columns {
    () => {
        "id, tenant_id, matter_id, name, size, content_type, sha256, uploaded_by, created_at, key_version, blob_rev"
    };
}

/// The columns of `tenants`, in the order `TenantRow` and the INSERT use.
macro_rules! tenant_columns {
    () => {
        "id, name, display_name, created_at, two_factor_staff, two_factor_clients, status, ended_at"
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

// Each area: its SQL, its rows and its repository trait on `SqlTx`.
mod alerts;
mod approvals;
mod audit;
mod blobs;
mod devices;
mod documents;
mod exports;
mod factors;
mod incidents;
mod intrusion;
mod keys;
mod leases;
mod lifecycle;
mod links;
mod logins;
mod matters;
mod messages;
mod operators;
mod outbox;
mod protection;
mod rotation;
mod sessions;
mod tenants;
mod tokens;
mod users;

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
