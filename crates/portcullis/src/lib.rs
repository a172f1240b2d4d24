//! The Portcullis server as a library: configuration, TLS and start-up, shared by the
//! `portcullis` command and the integration tests.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit_key;
pub mod background;
pub mod backup;
pub mod cli;
pub mod config;
pub mod connections;
pub mod lifecycle_cli;
pub mod logs;
pub mod mail;
pub mod master_key;
pub mod monitoring;
pub mod object_stores;
pub mod server;
pub mod tls;
