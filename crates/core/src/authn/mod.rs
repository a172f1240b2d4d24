//! Authentication primitives: password hashing, random secrets, the second factors (TOTP,
//! WebAuthn), and the long-lived cookie that recognises a device.

pub mod device;
pub mod lockout;
pub mod password;
pub mod secret;
pub mod totp;
pub mod webauthn;
