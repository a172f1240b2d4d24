//! The integration suite: one binary that drives real Portcullis servers over HTTPS, each test
//! on SQLite and on PostgreSQL.
// Tests and their helpers fail by panicking, with the reason in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod alerts;
mod anomaly;
mod api;
mod audit_seal;
mod audit_search;
mod authz;
mod authz_four_eyes;
mod authz_platform;
mod authz_revoke;
mod authz_wall;
mod backups;
mod browser;
mod changes;
mod cli;
mod console;
mod disclosure;
mod dlp;
mod encryption;
mod erasure;
mod export;
mod four_eyes;
mod import;
mod incidents;
mod intrusion;
mod isolation;
mod keys;
mod lifecycle;
mod log_shipping;
mod logs;
mod mail;
mod monitoring;
mod network_access;
mod passkeys;
mod platform;
mod reconnect;
mod release;
mod roles;
mod rolling;
mod s3;
mod streaming;
mod subscriptions;
mod support;
mod throttle;
mod two_factor;
mod ui;
mod uploads;
mod waf;

/// Define a test that runs once per database: `both!(name, |srv| async move { ... })` makes
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, |$srv:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($srv: &portcullis_testkit::TestServer) {
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let srv = portcullis_testkit::TestServer::start(portcullis_testkit::Db::Sqlite).await;
                run(&srv).await;
                srv.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let srv = portcullis_testkit::TestServer::start(portcullis_testkit::Db::Postgres).await;
                run(&srv).await;
                srv.stop().await;
            }
        }
    };
}
