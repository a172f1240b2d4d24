//! Encryption at rest: the document stream format and the key hierarchy. Primitives come from
//! aws-lc-rs (AES-256-GCM, HKDF-SHA256); nothing here implements a cipher.

pub mod certificate;
pub mod fields;
pub mod keys;
pub mod sealed;
pub mod signing;
pub mod stream;
pub mod webhook;
