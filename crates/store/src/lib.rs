//! Storage for Portcullis: the core's `Store` port on SQLite (the one-machine default) and on
//! PostgreSQL (many nodes), and its `BlobStore` port on `object_store` (local files now, S3 later).
#![forbid(unsafe_code)]

mod blob;
pub mod dump;
mod migrations;
mod pg_hosts;
mod rows;
mod sql;

pub use blob::ObjectBlobStore;
pub use migrations::latest_version as latest_schema_version;
pub use sql::SqlStore;
