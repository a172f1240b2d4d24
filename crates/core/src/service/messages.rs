//! Messages exchanged on a matter.

use super::{Portal, actor};
use crate::audit::{NewEvent, RequestMeta};
use crate::error::Result;
use crate::ids::{MatterId, MessageId};
use crate::model::Message;
use crate::policy::{Permission, Principal};
use crate::validate;

/// Longest message body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 20_000;

impl Portal {
    /// The matter's messages, oldest first.
    pub async fn list_messages(&self, p: &Principal, matter: MatterId) -> Result<Vec<Message>> {
        let mut tx = self.read().await?;
        let grant = self.grant_matter(&mut *tx, p, matter, Permission::ReadMessages).await?;
        tx.list_messages(&grant).await
    }

    /// Post a message on the matter.
    pub async fn post_message(
        &self,
        p: &Principal,
        matter: MatterId,
        body: &str,
        meta: &RequestMeta,
    ) -> Result<Message> {
        let body = validate::text("body", body, MAX_MESSAGE_CHARS)?;
        let mut tx = self.write().await?;
        let grant = self.grant_matter(&mut *tx, p, matter, Permission::PostMessage).await?;
        let m = Message {
            id: MessageId::new(),
            tenant_id: p.tenant_id,
            matter_id: matter,
            author_id: p.user_id,
            author_name: p.display_name.clone(),
            body,
            created_at: self.clock.now(),
        };
        tx.insert_message(&grant, &m).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), "message.post", format!("matter:{matter}"), meta)
            .with_detail(serde_json::json!({ "message": m.id.to_string() }));
        tx.append_audit(&ev, m.created_at).await?;
        tx.commit().await?;
        Ok(m)
    }
}
