//! Messages exchanged on a matter.

use super::{Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::error::Result;
use crate::ids::{MatterId, MessageId};
use crate::model::Message;
use crate::policy::Principal;
use crate::policy::can;
use crate::validate;

/// Longest message body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 20_000;

impl Portal {
    /// The matter's messages, oldest first. Audited (`message.read`, with how many were shown)
    /// in the same transaction: if the event cannot be written, no message is shown.
    pub async fn list_messages(&self, p: &Principal, matter: MatterId, meta: &RequestMeta) -> Result<Vec<Message>> {
        let mut tx = self.write().await?;
        let grant = self.grant_matter::<can::ReadMessages>(&mut *tx, p, matter).await?;
        let messages = tx.messages().list_messages(&grant).await?;
        let detail = serde_json::json!({ "count": messages.len() });
        self.audit_matter_read(&mut *tx, p, Action::MessageRead, matter, detail, meta).await?;
        tx.commit().await?;
        Ok(messages)
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
        let grant = self.grant_matter::<can::PostMessage>(&mut *tx, p, matter).await?;
        // Data loss prevention: a message is delivered the moment it is posted, so there is
        // nothing to hold; identifiers the firm quarantines or keeps from clients are refused
        // (the refusal is audited with counts only), and warned ones are posted and audited.
        let settings = self.protection_in(&mut *tx, p.tenant_id).await?;
        let findings = crate::dlp::scan(&body);
        let action = settings.strongest(&findings);
        if action >= super::DlpAction::BlockClients {
            drop(tx);
            let mut tx = self.write().await?;
            let ev =
                NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpMessageRefused, Target::Matter(matter), meta)
                    .with_detail(serde_json::json!({
                        "findings": super::findings_json(&findings), "action": action.as_str(),
                    }))
                    .on_matter(matter);
            tx.audit().append_audit(&ev, self.clock.now()).await?;
            tx.commit().await?;
            let what = findings
                .iter()
                .filter(|(d, n)| **n > 0 && settings.action(**d) >= super::DlpAction::BlockClients)
                .map(|(d, _)| d.as_str().replace('_', " "))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(crate::Error::DlpRefused(what));
        }
        let m = Message {
            id: MessageId::new(),
            tenant_id: p.tenant_id,
            matter_id: matter,
            author_id: p.user_id,
            author_name: p.display_name.clone(),
            body,
            created_at: self.clock.now(),
        };
        tx.messages().insert_message(&grant, &m).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::MessagePost, Target::Matter(matter), meta)
            .with_detail(serde_json::json!({ "message": m.id.to_string() }))
            .on_matter(matter);
        tx.audit().append_audit(&ev, m.created_at).await?;
        if action == super::DlpAction::Warn {
            let ev =
                NewEvent::new(Some(p.tenant_id), actor(p), Action::DlpMessageFlagged, Target::Matter(matter), meta)
                    .with_detail(serde_json::json!({
                        "message": m.id.to_string(), "findings": super::findings_json(&findings),
                    }))
                    .on_matter(matter);
            tx.audit().append_audit(&ev, m.created_at).await?;
        }
        tx.commit().await?;
        Ok(m)
    }
}
