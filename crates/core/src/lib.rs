//! The Portcullis domain: what a tenant, a matter, a document and a user are, who may do what
//! with them (`policy`), and the use cases (`service`). It knows nothing of HTTP or SQL; the
//! `ports` say what it needs from storage.
#![forbid(unsafe_code)]

pub mod archive;
pub mod audit;
pub mod authn;
pub mod changes;
pub mod clock;
pub mod crypto;
pub mod disclosure;
pub mod dlp;
pub mod error;
pub mod ids;
pub mod incidents;
pub mod inspect;
pub mod model;
pub mod net;
pub mod policy;
pub mod ports;
pub mod service;
pub mod validate;

pub use error::{Error, Result};
