//! Four eyes in SQL: approval requests, and the role changes they carry out.

use super::{SqlTx, db, ms};
use crate::rows::{self, id, opt_id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{ApprovalId, TenantId, UserId};
use portcullis_core::model::{ApprovalRequest, ApprovalState, Role};
use portcullis_core::ports::ApprovalRepo;
use time::OffsetDateTime;

/// The columns of `approvals`, in the order `ApprovalRow` uses.
macro_rules! approval_columns {
    () => {
        "id, tenant_id, action, requested_by, requested_at, expires_at, state, decided_by, decided_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    id: String,
    tenant_id: String,
    action: String,
    requested_by: String,
    requested_at: i64,
    expires_at: i64,
    state: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
}

impl ApprovalRow {
    pub(crate) fn into_model(self) -> Result<ApprovalRequest> {
        Ok(ApprovalRequest {
            id: id(&self.id, portcullis_core::ids::ApprovalId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            action: serde_json::from_str(&self.action).map_err(Error::internal)?,
            requested_by: id(&self.requested_by, portcullis_core::ids::UserId::from_uuid)?,
            requested_at: from_millis(self.requested_at),
            expires_at: from_millis(self.expires_at),
            state: ApprovalState::parse(&self.state)?,
            decided_by: opt_id(self.decided_by, portcullis_core::ids::UserId::from_uuid)?,
            decided_at: self.decided_at.map(from_millis),
        })
    }
}

#[async_trait]
impl ApprovalRepo for SqlTx {
    async fn insert_approval(&mut self, a: &ApprovalRequest) -> Result<()> {
        const Q: &str = "INSERT INTO approvals (id, tenant_id, action, requested_by, requested_at, expires_at, state, \
                         decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)";
        let action = serde_json::to_string(&a.action).map_err(Error::internal)?;
        on!(self, |c| sqlx::query(Q)
            .bind(a.id.to_string())
            .bind(a.tenant_id.to_string())
            .bind(&action)
            .bind(a.requested_by.to_string())
            .bind(ms(a.requested_at))
            .bind(ms(a.expires_at))
            .bind(a.state.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn approval(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<ApprovalRequest>> {
        const Q: &str = concat!("SELECT ", approval_columns!(), " FROM approvals WHERE tenant_id = $1 AND id = $2");
        let row: Option<ApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(ApprovalRow::into_model).transpose()
    }

    async fn list_approvals(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<ApprovalRequest>> {
        const Q: &str = concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE tenant_id = $1 ORDER BY requested_at DESC LIMIT $2"
        );
        let rows: Vec<ApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, ApprovalRow::into_model)
    }

    async fn decide_approval(
        &mut self,
        tenant: TenantId,
        id: ApprovalId,
        state: ApprovalState,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE approvals SET state = $3, decided_by = $4, decided_at = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND state = 'pending'";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(state.as_str())
            .bind(by.to_string())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn set_user_role(&mut self, tenant: TenantId, user: UserId, role: Role) -> Result<()> {
        const Q: &str = "UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(user.to_string())
            .bind(role.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        if n != 1 {
            return Err(Error::NotFound);
        }
        Ok(())
    }
}
