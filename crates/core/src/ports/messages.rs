//! Messages on a matter.

use crate::error::Result;
use crate::model::Message;
use crate::policy::{MatterGrant, can};
use async_trait::async_trait;

#[async_trait]
pub trait MessageRepo: Send {
    async fn insert_message(&mut self, grant: &MatterGrant<can::PostMessage>, m: &Message) -> Result<()>;
    async fn list_messages(&mut self, grant: &MatterGrant<can::ReadMessages>) -> Result<Vec<Message>>;
}
