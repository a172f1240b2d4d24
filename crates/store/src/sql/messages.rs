//! Messages in SQL.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::model::Message;
use portcullis_core::policy::{MatterGrant, can};
use portcullis_core::ports::MessageRepo;

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: String,
    tenant_id: String,
    matter_id: String,
    author_id: String,
    author_name: String,
    body: String,
    created_at: i64,
}

impl MessageRow {
    pub(crate) fn into_model(self) -> Result<Message> {
        Ok(Message {
            id: id(&self.id, portcullis_core::ids::MessageId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            matter_id: id(&self.matter_id, portcullis_core::ids::MatterId::from_uuid)?,
            author_id: id(&self.author_id, portcullis_core::ids::UserId::from_uuid)?,
            author_name: self.author_name,
            body: self.body,
            created_at: from_millis(self.created_at),
        })
    }
}

#[async_trait]
impl MessageRepo for SqlTx {
    async fn insert_message(&mut self, grant: &MatterGrant<can::PostMessage>, m: &Message) -> Result<()> {
        if grant.tenant_id() != m.tenant_id || grant.matter_id() != m.matter_id {
            return Err(Error::NotFound);
        }
        // Lock the matter row first (a no-op write: a row lock on PostgreSQL, SQLite's writer
        // lock is already held), so two posts cannot both claim the same place.
        const LOCK: &str = "UPDATE matters SET id = id WHERE tenant_id = $1 AND id = $2";
        on!(self, |c| sqlx::query(LOCK)
            .bind(m.tenant_id.to_string())
            .bind(m.matter_id.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        const Q: &str = "INSERT INTO messages (id, tenant_id, matter_id, author_id, body, created_at, seq) \
                         SELECT $1, $2, $3, $4, $5, $6, COALESCE(MAX(seq), 0) + 1 FROM messages WHERE tenant_id = $2 AND matter_id = $3";
        on!(self, |c| sqlx::query(Q)
            .bind(m.id.to_string())
            .bind(m.tenant_id.to_string())
            .bind(m.matter_id.to_string())
            .bind(m.author_id.to_string())
            .bind(&m.body)
            .bind(ms(m.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn list_messages(&mut self, grant: &MatterGrant<can::ReadMessages>) -> Result<Vec<Message>> {
        const Q: &str = "SELECT m.id, m.tenant_id, m.matter_id, m.author_id, u.display_name AS author_name, m.body, m.created_at \
                         FROM messages m JOIN users u ON u.id = m.author_id AND u.tenant_id = m.tenant_id \
                         WHERE m.tenant_id = $1 AND m.matter_id = $2 ORDER BY m.seq";
        let rows: Vec<MessageRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, MessageRow::into_model)
    }
}
