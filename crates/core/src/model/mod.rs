//! The domain's records. Plain data: what may be done with them is decided in `policy`, how they
//! are stored in the store crate.

use crate::ids::{
    AlertId, ApprovalId, DeliveryId, DocumentId, MailId, MatterId, MessageId, OperatorId, PasskeyId, TenantId, TokenId,
    UserId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An enum stored as text: `as_str` is the stored form and `parse` reads it back (an unknown
/// value is an internal error: the database was written by us).
macro_rules! stored_enum {
    ($(#[$meta:meta])* pub enum $name:ident ($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> crate::Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| crate::Error::internal(format!(concat!("unknown ", $what, " {:?}"), s)))
            }
        }
    };
}
pub(crate) use stored_enum;

mod accounts;
mod approvals;
mod content;
mod lifecycle;
mod operators;
mod outbox;
mod protection;

pub use accounts::*;
pub use approvals::*;
pub use content::*;
pub use lifecycle::*;
pub use operators::*;
pub use outbox::*;
pub use protection::*;
