//! Authentication primitives: password hashing, random secrets, and the second factors (TOTP,
//! WebAuthn).

pub mod lockout;
pub mod password;
pub mod secret;
pub mod totp;
pub mod webauthn;
