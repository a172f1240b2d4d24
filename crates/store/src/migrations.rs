//! The schema's migrations, embedded in the binary. Most of the schema is the same on both
//! engines and is written once in `migrations/common`; what differs (triggers, mainly) lives in
//! `migrations/sqlite` and `migrations/postgres`. Numbers are global: each version exists either
//! in `common` or in both engine folders. Migrations only go forward, each in its own
//! transaction; a database carrying a version this build does not know is refused.

use sqlx::SqlStr;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

const COMMON: &[Embedded] = &[
    (1, "foundation", include_str!("../migrations/common/0001_foundation.sql")),
    (3, "tenant keys", include_str!("../migrations/common/0003_tenant_keys.sql")),
    (4, "key rotation", include_str!("../migrations/common/0004_key_rotation.sql")),
    (5, "two factor", include_str!("../migrations/common/0005_two_factor.sql")),
    (6, "roles and walls", include_str!("../migrations/common/0006_roles_and_walls.sql")),
    (7, "approvals", include_str!("../migrations/common/0007_approvals.sql")),
    (8, "login throttle", include_str!("../migrations/common/0008_login_throttle.sql")),
    (9, "session devices", include_str!("../migrations/common/0009_session_devices.sql")),
    (10, "operators", include_str!("../migrations/common/0010_operators.sql")),
    (11, "token scopes", include_str!("../migrations/common/0011_token_scopes.sql")),
    (12, "mail and devices", include_str!("../migrations/common/0012_mail_and_devices.sql")),
    (13, "passkeys", include_str!("../migrations/common/0013_passkeys.sql")),
    (14, "platform approvals", include_str!("../migrations/common/0014_platform_approvals.sql")),
    (15, "audit checkpoints", include_str!("../migrations/common/0015_audit_checkpoints.sql")),
    (16, "audit search", include_str!("../migrations/common/0016_audit_search.sql")),
    (17, "alerts", include_str!("../migrations/common/0017_alerts.sql")),
    (19, "dlp", include_str!("../migrations/common/0019_dlp.sql")),
    (20, "intrusion", include_str!("../migrations/common/0020_intrusion.sql")),
    (21, "backups", include_str!("../migrations/common/0021_backups.sql")),
    (23, "exports", include_str!("../migrations/common/0023_exports.sql")),
    (24, "incidents", include_str!("../migrations/common/0024_incidents.sql")),
];

const SQLITE: &[Embedded] = &[
    (2, "audit append only", include_str!("../migrations/sqlite/0002_audit_append_only.sql")),
    (22, "lifecycle", include_str!("../migrations/sqlite/0022_lifecycle.sql")),
];

const POSTGRES: &[Embedded] = &[
    (2, "audit append only", include_str!("../migrations/postgres/0002_audit_append_only.sql")),
    (22, "lifecycle", include_str!("../migrations/postgres/0022_lifecycle.sql")),
];

/// Which engine's list to build.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// One engine's migrations, up to a version (all of them with `i64::MAX`).
#[derive(Debug)]
struct Source(Engine, i64);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(self) -> futures::future::BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        let upto = self.1;
        let specific = match self.0 {
            Engine::Sqlite => SQLITE,
            Engine::Postgres => POSTGRES,
        };
        let mut all: Vec<Migration> = COMMON
            .iter()
            .chain(specific)
            .filter(|(version, _, _)| *version <= upto)
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect();
        all.sort_by_key(|m| m.version);
        Box::pin(async move { Ok(all) })
    }
}

/// The migrator for one engine.
pub(crate) async fn migrator(engine: Engine) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(engine, i64::MAX)).await
}

/// The migrator for one engine, stopping at `version`.
pub(crate) async fn migrator_upto(engine: Engine, version: i64) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(engine, version)).await
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    COMMON.iter().chain(SQLITE).map(|(v, _, _)| *v).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_unique_and_increasing_per_engine() {
        for specific in [SQLITE, POSTGRES] {
            let mut v: Vec<i64> = COMMON.iter().chain(specific).map(|m| m.0).collect();
            v.sort();
            let n = v.len();
            v.dedup();
            assert_eq!(v.len(), n, "a version is defined twice");
        }
        let s: Vec<i64> = SQLITE.iter().map(|m| m.0).collect();
        let p: Vec<i64> = POSTGRES.iter().map(|m| m.0).collect();
        assert_eq!(s, p, "engine-specific versions must exist for both engines");
    }
}
