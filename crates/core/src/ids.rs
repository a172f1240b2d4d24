//! Identifier newtypes. Every id is its own type so a `MatterId` can never be passed where a
//! `DocumentId` is expected; all are random UUIDv4 (unguessable, so ids leak nothing about volume).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            /// Wrap a UUID read back from storage.
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Unparseable ids are reported as "not found": a malformed id names nothing.
                Uuid::parse_str(s).map(Self).map_err(|_| crate::Error::NotFound)
            }
        }
    )*};
}

id_type!(
    /// A subscriber (a firm).
    TenantId,
    /// A staff or client user of one tenant.
    UserId,
    /// A client case.
    MatterId,
    /// A stored document.
    DocumentId,
    /// A message on a matter.
    MessageId,
    /// An API token (the id is public; the secret is not).
    TokenId,
    /// A request for a sensitive action, waiting for a second person's approval.
    ApprovalId,
    /// One of the service's own staff (a platform operator), apart from every tenant.
    OperatorId,
    /// A registered passkey or security key.
    PasskeyId,
    /// A mail waiting in (or sent from) the outbox.
    MailId,
    /// A security alert (one per kind, tenant and subject per deduplication window).
    AlertId,
    /// One delivery of an alert to one channel (an operator's address, the webhook).
    DeliveryId,
    /// A block of a source, an account's forced step-up, or a user's paused downloads.
    BlockId,
    /// Something intrusion or anomaly detection noticed.
    DetectionId,
    /// A security incident (a vulnerability or breach report and its handling).
    IncidentId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = MatterId::new();
        let parsed: MatterId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn malformed_id_is_not_found() {
        assert!(matches!("nope".parse::<DocumentId>(), Err(crate::Error::NotFound)));
    }
}
