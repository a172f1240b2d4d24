//! Authentication primitives: password hashing, random secrets, and the TOTP second factor.

pub mod lockout;
pub mod password;
pub mod secret;
pub mod totp;
