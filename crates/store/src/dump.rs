//! A logical, engine-neutral copy of the database, for backups: every table read in one
//! snapshot (PostgreSQL `REPEATABLE READ READ ONLY`; SQLite one read transaction, which WAL
//! mode keeps consistent while writers go on), as JSON objects whose values follow the
//! column's declared type; and the way back in, in one write transaction, tables in an order
//! their foreign keys accept. It is generic over the schema: tables, columns and keys come from
//! the engine's catalog, so a new migration needs no change here, and a SQLite backup loads
//! into PostgreSQL and back.
//!
//! Table and column names are only ever taken from the catalog (or checked against it) and
//! must be plain lower-case identifiers; every value is bound as a parameter.

use crate::sql::SqlStore;
use futures::StreamExt;
use futures::stream::BoxStream;
use portcullis_core::error::{Error, Result};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Row as _};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One row: column name to value (integer, text, boolean, hex for bytes, number, or null).
pub type Row = serde_json::Map<String, Value>;

/// sqlx's own bookkeeping, never dumped or loaded (the target migrates itself).
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// How a column's values are written and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
    Bytes,
    Real,
}

impl Kind {
    /// From a declared type (SQLite) or `data_type` (PostgreSQL).
    fn of(declared: &str) -> Self {
        let t = declared.to_ascii_lowercase();
        if t.contains("int") || t == "serial" || t == "bigserial" {
            Kind::Int
        } else if t.contains("bool") {
            Kind::Bool
        } else if t.contains("blob") || t.contains("bytea") {
            Kind::Bytes
        } else if t.contains("real") || t.contains("double") || t.contains("float") || t.contains("numeric") {
            Kind::Real
        } else {
            Kind::Text
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// `column` holds values of `parent`'s `parent_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub column: String,
    pub parent: String,
    pub parent_column: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub parents: Vec<ForeignKey>,
}

fn db(e: sqlx::Error) -> Error {
    Error::internal(format!("database: {e}"))
}

/// A catalog name fit to appear, quoted, in SQL text.
/// Columns a backup holds in another form than the live row: the owners' addresses kept in
/// the erasure ledger only until the certificate is mailed are left out once the firm is
/// destroyed, so no backup keeps personal data of an erased firm.
const REDACTED: &[(&str, &str, &str)] =
    &[("tenant_erasures", "notify_to", "CASE WHEN finished_at IS NULL THEN notify_to ELSE '[]' END")];

fn ident(name: &str) -> Result<String> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(Error::internal(format!("unexpected table or column name {name:?}")))
    }
}

use crate::sql::{Inner as Tx, on};

const SQLITE_TABLES: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
const SQLITE_COLUMNS: &str = "SELECT name, type FROM pragma_table_info($1) ORDER BY cid";
const SQLITE_KEYS: &str = "SELECT \"from\", \"table\", COALESCE(\"to\", 'id') FROM pragma_foreign_key_list($1)";
const PG_TABLES: &str = "SELECT table_name::text FROM information_schema.tables \
                         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name";
const PG_COLUMNS: &str = "SELECT column_name::text, data_type::text FROM information_schema.columns \
                          WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
const PG_KEYS: &str = "SELECT a.attname::text, p.relname::text, pa.attname::text FROM pg_constraint c \
                       JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
                       JOIN pg_class p ON p.oid = c.confrelid \
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
                       JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1] \
                       WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = $1";

/// A foreign key as the catalog queries give it: column, parent table, parent column.
type KeyRow = (String, String, String);

/// Every table (sqlx's own excluded), parents before children.
async fn catalog(tx: &mut Tx) -> Result<Vec<Table>> {
    let names: Vec<String> = match tx {
        Tx::Sqlite(t) => sqlx::query_scalar(SQLITE_TABLES).fetch_all(&mut **t).await,
        Tx::Pg(t) => sqlx::query_scalar(PG_TABLES).fetch_all(&mut **t).await,
    }
    .map_err(db)?;
    let mut tables = Vec::new();
    for name in names.into_iter().filter(|n| n != MIGRATIONS_TABLE) {
        ident(&name)?;
        let (cols, keys): (Vec<(String, String)>, Vec<KeyRow>) = match tx {
            Tx::Sqlite(t) => (
                sqlx::query_as(SQLITE_COLUMNS).bind(&name).fetch_all(&mut **t).await.map_err(db)?,
                sqlx::query_as(SQLITE_KEYS).bind(&name).fetch_all(&mut **t).await.map_err(db)?,
            ),
            Tx::Pg(t) => (
                sqlx::query_as(PG_COLUMNS).bind(&name).fetch_all(&mut **t).await.map_err(db)?,
                sqlx::query_as(PG_KEYS).bind(&name).fetch_all(&mut **t).await.map_err(db)?,
            ),
        };
        let columns = cols.into_iter().map(|(name, ty)| Column { kind: Kind::of(&ty), name }).collect();
        let parents = keys
            .into_iter()
            .map(|(column, parent, parent_column)| ForeignKey { column, parent, parent_column })
            .collect();
        tables.push(Table { name, columns, parents });
    }
    order_by_keys(tables)
}

/// Parents before children (Kahn's algorithm; a table's references to itself are ignored).
fn order_by_keys(mut left: Vec<Table>) -> Result<Vec<Table>> {
    let mut placed: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let (ready, waiting): (Vec<Table>, Vec<Table>) =
            left.into_iter().partition(|t| t.parents.iter().all(|k| k.parent == t.name || placed.contains(&k.parent)));
        if ready.is_empty() {
            let names: Vec<&str> = waiting.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::internal(format!("foreign keys form a cycle among {names:?}")));
        }
        for t in ready {
            placed.insert(t.name.clone());
            out.push(t);
        }
        left = waiting;
    }
    Ok(out)
}

/// Decode row values by kind, on either engine's row type.
macro_rules! decode {
    ($row:expr, $table:expr) => {{
        let mut out = Row::new();
        for (i, c) in $table.columns.iter().enumerate() {
            let v = match c.kind {
                Kind::Int => $row.try_get::<Option<i64>, _>(i).map(|v| v.map(Value::from)),
                Kind::Text => $row.try_get::<Option<String>, _>(i).map(|v| v.map(Value::from)),
                Kind::Bool => $row.try_get::<Option<bool>, _>(i).map(|v| v.map(Value::from)),
                Kind::Bytes => $row.try_get::<Option<Vec<u8>>, _>(i).map(|v| v.map(|b| Value::from(hex::encode(b)))),
                Kind::Real => $row.try_get::<Option<f64>, _>(i).map(|v| v.map(Value::from)),
            }
            .map_err(db)?;
            out.insert(c.name.clone(), v.unwrap_or(Value::Null));
        }
        Ok::<Row, Error>(out)
    }};
}

/// The whole database as of one moment.
pub struct Snapshot {
    tx: Tx,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl Snapshot {
    /// The newest migration applied (the schema version the rows follow).
    pub async fn schema_version(&mut self) -> Result<i64> {
        const Q: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations";
        on!(tx &mut self.tx, |c| sqlx::query_scalar::<_, i64>(Q).fetch_one(c).await).map_err(db)
    }

    /// Every table, parents before children.
    pub async fn tables(&mut self) -> Result<Vec<Table>> {
        catalog(&mut self.tx).await
    }

    /// Every row of `table`, streamed.
    pub fn rows<'a>(&'a mut self, table: &'a Table) -> Result<BoxStream<'a, Result<Row>>> {
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| match REDACTED.iter().find(|(t, col, _)| *t == table.name && *col == c.name) {
                Some((_, col, expr)) => Ok(format!("{expr} AS {}", ident(col)?)),
                None => ident(&c.name),
            })
            .collect::<Result<_>>()?;
        let sql = format!("SELECT {} FROM {}", cols.join(", "), ident(&table.name)?);
        Ok(match &mut self.tx {
            Tx::Sqlite(t) => Box::pin(
                sqlx::query(AssertSqlSafe(sql))
                    .fetch(&mut **t)
                    .map(move |r| r.map_err(db).and_then(|row| decode!(row, table))),
            ),
            Tx::Pg(t) => Box::pin(
                sqlx::query(AssertSqlSafe(sql))
                    .fetch(&mut **t)
                    .map(move |r| r.map_err(db).and_then(|row| decode!(row, table))),
            ),
        })
    }

    /// End the snapshot.
    pub async fn close(self) -> Result<()> {
        match self.tx {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Pg(t) => t.rollback().await,
        }
        .map_err(db)
    }
}

/// Bind a JSON value as `kind` (a null bound with the column's type, as PostgreSQL needs).
macro_rules! bind_value {
    ($q:expr, $kind:expr, $v:expr, $table:expr, $col:expr) => {{
        let bad = || Error::invalid("backup", format!("{}.{}: value {} does not fit the column", $table, $col, $v));
        match ($kind, $v) {
            (Kind::Int, Value::Null) => $q.bind(None::<i64>),
            (Kind::Text, Value::Null) => $q.bind(None::<String>),
            (Kind::Bool, Value::Null) => $q.bind(None::<bool>),
            (Kind::Bytes, Value::Null) => $q.bind(None::<Vec<u8>>),
            (Kind::Real, Value::Null) => $q.bind(None::<f64>),
            (Kind::Int, v) => $q.bind(v.as_i64().ok_or_else(bad)?),
            (Kind::Text, Value::String(s)) => $q.bind(s.clone()),
            (Kind::Bool, Value::Bool(b)) => $q.bind(*b),
            (Kind::Bytes, Value::String(s)) => $q.bind(hex::decode(s).map_err(|_| bad())?),
            (Kind::Real, v) => $q.bind(v.as_f64().ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }};
}

/// Loads rows into a database in one transaction: nothing is visible unless all of it
/// commits.
pub struct Loader {
    tx: Tx,
    tables: HashMap<String, Table>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loader")
    }
}

impl Loader {
    /// Insert one row into `table`; its columns must all exist there (a column the row lacks
    /// takes its default).
    pub async fn insert(&mut self, table: &str, row: &Row) -> Result<()> {
        let t = self
            .tables
            .get(table)
            .ok_or_else(|| Error::invalid("backup", format!("table {table} does not exist in this database")))?;
        let mut cols = Vec::with_capacity(row.len());
        let mut kinds = Vec::with_capacity(row.len());
        for (name, _) in row {
            let c = t.columns.iter().find(|c| &c.name == name).ok_or_else(|| {
                Error::invalid("backup", format!("column {table}.{name} does not exist in this database"))
            })?;
            cols.push(ident(name)?);
            kinds.push(c.kind);
        }
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", ident(table)?, cols.join(", "), marks.join(", "));
        match &mut self.tx {
            Tx::Sqlite(c) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for ((name, v), kind) in row.iter().zip(&kinds) {
                    q = bind_value!(q, *kind, v, table, name);
                }
                q.execute(&mut **c).await.map_err(db)?;
            }
            Tx::Pg(c) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for ((name, v), kind) in row.iter().zip(&kinds) {
                    q = bind_value!(q, *kind, v, table, name);
                }
                q.execute(&mut **c).await.map_err(db)?;
            }
        }
        Ok(())
    }

    /// The tables of the database loaded into, parents before children.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    pub async fn commit(self) -> Result<()> {
        match self.tx {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Pg(t) => t.commit().await,
        }
        .map_err(db)
    }
}

impl SqlStore {
    async fn begin_tx(&self, snapshot: bool) -> Result<Tx> {
        use crate::sql::PoolRef;
        Ok(match self.pool_ref() {
            PoolRef::Sqlite(p) => {
                Tx::Sqlite(p.begin_with(if snapshot { "BEGIN" } else { "BEGIN IMMEDIATE" }).await.map_err(db)?)
            }
            PoolRef::Pg(p) => Tx::Pg(
                p.begin_with(if snapshot { "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" } else { "BEGIN" })
                    .await
                    .map_err(db)?,
            ),
        })
    }

    /// A consistent read of the whole database. The snapshot is taken at its first query (it
    /// reads the schema version at once), and holds while writers go on.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut s = Snapshot { tx: self.begin_tx(true).await? };
        s.schema_version().await?;
        Ok(s)
    }

    /// A loader: one write transaction over the current tables.
    pub async fn loader(&self) -> Result<Loader> {
        let mut tx = self.begin_tx(false).await?;
        let tables = catalog(&mut tx).await?.into_iter().map(|t| (t.name.clone(), t)).collect();
        Ok(Loader { tx, tables })
    }

    /// Rows per table (sqlx's own table left out); tables that have none are listed with 0.
    pub async fn row_counts(&self) -> Result<BTreeMap<String, i64>> {
        let mut tx = self.begin_tx(true).await?;
        let mut out = BTreeMap::new();
        for t in catalog(&mut tx).await? {
            let sql = format!("SELECT COUNT(*) FROM {}", ident(&t.name)?);
            let n = on!(tx &mut tx, |c| sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.clone())).fetch_one(c).await)
                .map_err(db)?;
            out.insert(t.name, n);
        }
        Ok(out)
    }

    /// Drop every table (children first) and, on PostgreSQL, every function of the schema
    /// (the append-only trigger's), leaving a database the migrations can start afresh. For
    /// `backup restore --force` only.
    pub async fn wipe(&self) -> Result<()> {
        let mut tx = self.begin_tx(false).await?;
        let mut tables = catalog(&mut tx).await?;
        tables.reverse();
        let mut names: Vec<String> = tables.into_iter().map(|t| t.name).collect();
        names.push(MIGRATIONS_TABLE.to_string());
        for name in names {
            let sql = format!("DROP TABLE IF EXISTS {}", ident(&name)?);
            on!(tx &mut tx, |c| sqlx::query(AssertSqlSafe(sql.clone())).execute(c).await.map(|_| ())).map_err(db)?;
        }
        if let Tx::Pg(t) = &mut tx {
            const FUNCTIONS: &str = "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n \
                                     ON n.oid = p.pronamespace WHERE n.nspname = current_schema()";
            let functions: Vec<String> = sqlx::query_scalar(FUNCTIONS).fetch_all(&mut **t).await.map_err(db)?;
            for f in functions {
                let sql = format!("DROP FUNCTION IF EXISTS {} CASCADE", ident(&f)?);
                sqlx::query(AssertSqlSafe(sql)).execute(&mut **t).await.map_err(db)?;
            }
        }
        match tx {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Pg(t) => t.commit().await,
        }
        .map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, parents: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: vec![],
            parents: parents
                .iter()
                .map(|p| ForeignKey { column: "x".into(), parent: (*p).into(), parent_column: "id".into() })
                .collect(),
        }
    }

    #[test]
    fn parents_come_first_and_names_are_checked() {
        let got = order_by_keys(vec![table("c", &["b", "a"]), table("b", &["a", "b"]), table("a", &[])]).unwrap();
        let names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(order_by_keys(vec![table("a", &["b"]), table("b", &["a"])]).is_err());
        assert!(ident("users").is_ok());
        for bad in ["", "Users", "a\"b", "1x", "a b"] {
            assert!(ident(bad).is_err(), "{bad}");
        }
        assert_eq!(Kind::of("BIGINT"), Kind::Int);
        assert_eq!(Kind::of("text"), Kind::Text);
        assert_eq!(Kind::of("bytea"), Kind::Bytes);
    }
}
