//! Leases (see migration 0021).

use crate::error::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait LeaseRepo: Send {
    /// Take or renew lease `name` for `holder` until `until`: true if it was free, expired at
    /// `now`, or already `holder`'s (compare and set).
    async fn take_lease(
        &mut self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool>;
    /// Give lease `name` up, if `holder` still has it.
    async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()>;
    /// Whether someone holds lease `name` at `now`.
    async fn lease_held(&mut self, name: &str, now: OffsetDateTime) -> Result<bool>;
    /// How many leases whose names start with `prefix` are held at `now`.
    async fn leases_held(&mut self, prefix: &str, now: OffsetDateTime) -> Result<i64>;
}
