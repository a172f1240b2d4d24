//! Known devices (see `authn::device`).

use crate::error::Result;
use crate::ids::{TenantId, UserId};
use crate::model::KnownDevice;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait DeviceRepo: Send {
    /// Note a sign-in from a device the user has used before: its last sighting, IP and user
    /// agent. False if the user has no device with this hash.
    async fn touch_known_device(
        &mut self,
        tenant: TenantId,
        user: UserId,
        device_hash: &str,
        at: OffsetDateTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<bool>;
    async fn insert_known_device(&mut self, d: &KnownDevice) -> Result<()>;
}
