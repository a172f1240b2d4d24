//! The narrow interfaces the domain needs from the outside world. The store crate implements
//! them for SQLite, PostgreSQL and object stores; tests can implement them too.
//!
//! Every store method takes the tenant it works in (directly or inside a policy grant): no query
//! can wander across tenants because no query is written without one.

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

use crate::error::Result;
pub use alerts::AlertRepo;
pub use approvals::ApprovalRepo;
use async_trait::async_trait;
pub use audit::AuditRepo;
pub use blobs::BlobRepo;
use bytes::Bytes;
pub use devices::DeviceRepo;
pub use documents::DocumentRepo;
pub use exports::ExportRepo;
pub use factors::FactorRepo;
use futures::Stream;
pub use incidents::IncidentRepo;
pub use intrusion::IntrusionRepo;
pub use keys::KeyRepo;
pub use leases::LeaseRepo;
pub use lifecycle::LifecycleRepo;
pub use links::LinkRepo;
pub use logins::LoginRepo;
pub use matters::MatterRepo;
pub use messages::MessageRepo;
pub use operators::OperatorRepo;
pub use outbox::OutboxRepo;
pub use protection::ProtectionRepo;
pub use rotation::RotationRepo;
pub use sessions::SessionRepo;
use std::ops::Range;
use std::pin::Pin;
pub use tenants::TenantRepo;
pub use tokens::TokenRepo;
pub use users::UserRepo;

/// Whether a transaction will write. SQLite takes its write lock up front for writers, so two
/// writers never deadlock upgrading a read lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxMode {
    Read,
    Write,
}

/// A database: hands out transactions.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    async fn begin(&self, mode: TxMode) -> Result<Box<dyn Tx>>;
    /// Is the database reachable?
    async fn ping(&self) -> Result<()>;
    /// Which engine, for status output.
    fn engine(&self) -> &'static str;
}

/// One transaction. Dropped without `commit`, it rolls back. Its methods live on one repository
/// per area, which the transaction hands out.
#[async_trait]
pub trait Tx: Send {
    async fn commit(self: Box<Self>) -> Result<()>;

    fn tenants(&mut self) -> &mut dyn TenantRepo;
    fn lifecycle(&mut self) -> &mut dyn LifecycleRepo;
    fn exports(&mut self) -> &mut dyn ExportRepo;
    fn keys(&mut self) -> &mut dyn KeyRepo;
    fn users(&mut self) -> &mut dyn UserRepo;
    fn sessions(&mut self) -> &mut dyn SessionRepo;
    fn links(&mut self) -> &mut dyn LinkRepo;
    fn tokens(&mut self) -> &mut dyn TokenRepo;
    fn matters(&mut self) -> &mut dyn MatterRepo;
    fn documents(&mut self) -> &mut dyn DocumentRepo;
    fn messages(&mut self) -> &mut dyn MessageRepo;
    fn operators(&mut self) -> &mut dyn OperatorRepo;
    fn logins(&mut self) -> &mut dyn LoginRepo;
    fn approvals(&mut self) -> &mut dyn ApprovalRepo;
    fn factors(&mut self) -> &mut dyn FactorRepo;
    fn rotation(&mut self) -> &mut dyn RotationRepo;
    fn blobs(&mut self) -> &mut dyn BlobRepo;
    fn leases(&mut self) -> &mut dyn LeaseRepo;
    fn devices(&mut self) -> &mut dyn DeviceRepo;
    fn outbox(&mut self) -> &mut dyn OutboxRepo;
    fn alerts(&mut self) -> &mut dyn AlertRepo;
    fn protection(&mut self) -> &mut dyn ProtectionRepo;
    fn intrusion(&mut self) -> &mut dyn IntrusionRepo;
    fn audit(&mut self) -> &mut dyn AuditRepo;
    fn incidents(&mut self) -> &mut dyn IncidentRepo;
}

/// A stream of bytes, as documents travel.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where document bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Store a stream under `key`. The object becomes visible only once the whole stream has been
    /// written; if the stream fails, nothing is left behind. Returns the byte count.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64>;
    /// Read an object, or a byte range of it.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// The stored size of an object.
    async fn size(&self, key: &str) -> Result<u64>;
    /// Is the store reachable and writable?
    async fn ping(&self) -> Result<()>;
}

/// Where mail goes out: SMTP in the server, a recorder in tests.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Deliver one plain-text message to `to`. An error means it may not have been delivered.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()>;
}

/// Where alert webhooks go: a signed HTTPS POST in the server, a recorder in tests.
#[async_trait]
pub trait Webhook: Send + Sync + std::fmt::Debug {
    /// POST this JSON body, signed, to the configured endpoint. Ok only when the endpoint
    /// answered 2xx; an error means it may not have been delivered.
    async fn post(&self, body: &[u8]) -> Result<()>;
}

#[cfg(test)]
mod tests {
    /// The repositories of tenant content name a bare `TenantId` only in their locators, which
    /// come before the policy and return what it needs (the matter a document is on, a
    /// matter's wall and the caller's place on its list), never content: every other method
    /// takes a grant.
    #[test]
    fn content_methods_take_grants() {
        let locators = ["matter_facts", "document_matter"];
        for (file, src) in [
            ("matters", include_str!("matters.rs")),
            ("documents", include_str!("documents.rs")),
            ("messages", include_str!("messages.rs")),
        ] {
            for method in src.split("async fn ").skip(1) {
                let name = method.split('(').next().unwrap_or_default();
                let signature = method.split(';').next().unwrap_or_default();
                if locators.contains(&name) {
                    assert!(!signature.contains("Grant"), "{file}::{name} is a locator");
                    continue;
                }
                assert!(!signature.contains("TenantId"), "{file}::{name} takes a bare tenant id");
                assert!(signature.contains("Grant<can::"), "{file}::{name} takes no grant of a permission");
            }
        }
    }

    /// The domain knows neither HTTP nor SQL: its manifest pulls in neither.
    #[test]
    fn core_depends_on_neither_http_nor_sql() {
        let manifest = include_str!("../../Cargo.toml");
        for dep in ["axum", "hyper", "http", "tower", "sqlx", "reqwest"] {
            assert!(
                !manifest.lines().any(|l| l.trim_start().starts_with(&format!("{dep}."))
                    || l.trim_start().starts_with(&format!("{dep} "))),
                "portcullis-core depends on {dep}"
            );
        }
    }
}
