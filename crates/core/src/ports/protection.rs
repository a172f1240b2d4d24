//! Protective controls: upload allow-list, DLP, download caps.

use crate::error::Result;
use crate::ids::{TenantId, UserId};
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
pub trait ProtectionRepo: Send {
    /// The firm's protective settings (JSON), if it changed the defaults.
    async fn protection_settings(&mut self, tenant: TenantId) -> Result<Option<String>>;
    async fn set_protection_settings(&mut self, tenant: TenantId, settings: &str, at: OffsetDateTime) -> Result<()>;
    /// Count one download of `bytes` against a user's day (`YYYY-MM-DD`, UTC).
    async fn add_download(&mut self, tenant: TenantId, user: UserId, day: &str, bytes: u64) -> Result<()>;
    /// A user's downloads and bytes on a day.
    async fn download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<(u64, u64)>;
    /// Forget a user's downloads on a day (an admin lifts the cap); whether there were any.
    async fn reset_download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<bool>;
}
