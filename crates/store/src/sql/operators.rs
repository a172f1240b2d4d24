//! Platform operators in SQL: approvals, grants, vetting, tokens and the tenant directory.

use super::tenants::TenantRow;
use super::{SqlTx, db, ms};
use crate::rows::{self, count, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{ApprovalId, OperatorId};
use portcullis_core::model::{
    ApprovalState, Operator, OperatorGrant, OperatorRole, PlatformAction, PlatformApproval, TenantSummary,
    VettingRecord,
};
use portcullis_core::ports::OperatorRepo;
use time::OffsetDateTime;

/// The columns of `platform_approvals`, in the order `PlatformApprovalRow` uses.
macro_rules! platform_approval_columns {
    () => {
        "id, action, requested_by, requested_at, expires_at, state, decided_by, decided_at, used_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct PlatformApprovalRow {
    id: String,
    action: String,
    requested_by: String,
    requested_at: i64,
    expires_at: i64,
    state: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    used_at: Option<i64>,
}

impl PlatformApprovalRow {
    pub(crate) fn into_model(self) -> Result<PlatformApproval> {
        let operator = |s: &str| id(s, portcullis_core::ids::OperatorId::from_uuid);
        Ok(PlatformApproval {
            id: id(&self.id, portcullis_core::ids::ApprovalId::from_uuid)?,
            action: PlatformAction::from_stored(&self.action)?,
            requested_by: operator(&self.requested_by)?,
            requested_at: from_millis(self.requested_at),
            expires_at: from_millis(self.expires_at),
            state: ApprovalState::parse(&self.state)?,
            decided_by: self.decided_by.as_deref().map(operator).transpose()?,
            decided_at: self.decided_at.map(from_millis),
            used_at: self.used_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OperatorRow {
    id: String,
    email: String,
    display_name: String,
    created_at: i64,
}

impl OperatorRow {
    pub(crate) fn into_model(self) -> Result<Operator> {
        Ok(Operator {
            id: id(&self.id, portcullis_core::ids::OperatorId::from_uuid)?,
            email: self.email,
            display_name: self.display_name,
            created_at: from_millis(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    operator_id: String,
    role: String,
    granted_at: i64,
    suspended_at: Option<i64>,
}

impl GrantRow {
    pub(crate) fn into_model(self) -> Result<OperatorGrant> {
        Ok(OperatorGrant {
            operator_id: id(&self.operator_id, portcullis_core::ids::OperatorId::from_uuid)?,
            role: OperatorRole::parse(&self.role).map_err(Error::internal)?,
            granted_at: from_millis(self.granted_at),
            suspended_at: self.suspended_at.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct VettingRow {
    operator_id: String,
    checked_by: String,
    checked_at: i64,
    valid_until: i64,
    recorded_at: i64,
}

impl VettingRow {
    pub(crate) fn into_model(self) -> Result<VettingRecord> {
        Ok(VettingRecord {
            operator_id: id(&self.operator_id, portcullis_core::ids::OperatorId::from_uuid)?,
            checked_by: self.checked_by,
            checked_at: from_millis(self.checked_at),
            valid_until: from_millis(self.valid_until),
            recorded_at: from_millis(self.recorded_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantSummaryRow {
    #[sqlx(flatten)]
    tenant: TenantRow,
    users: i64,
    documents: i64,
    stored_bytes: i64,
}

impl TenantSummaryRow {
    pub(crate) fn into_model(self) -> Result<TenantSummary> {
        Ok(TenantSummary {
            tenant: self.tenant.into_model()?,
            users: count(self.users)?,
            documents: count(self.documents)?,
            stored_bytes: count(self.stored_bytes)?,
        })
    }
}

#[async_trait]
impl OperatorRepo for SqlTx {
    async fn insert_platform_approval(&mut self, a: &PlatformApproval) -> Result<()> {
        const Q: &str = "INSERT INTO platform_approvals (id, action, requested_by, requested_at, expires_at, state) \
                         VALUES ($1, $2, $3, $4, $5, $6)";
        on!(self, |c| sqlx::query(Q)
            .bind(a.id.to_string())
            .bind(a.action.to_stored())
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

    async fn platform_approval(&mut self, id: ApprovalId) -> Result<Option<PlatformApproval>> {
        const Q: &str = concat!("SELECT ", platform_approval_columns!(), " FROM platform_approvals WHERE id = $1");
        let row: Option<PlatformApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(PlatformApprovalRow::into_model).transpose()
    }

    async fn pending_platform_approval(
        &mut self,
        action: PlatformAction,
        now: OffsetDateTime,
    ) -> Result<Option<PlatformApproval>> {
        const Q: &str = concat!(
            "SELECT ",
            platform_approval_columns!(),
            " FROM platform_approvals WHERE action = $1 AND state = 'pending' AND expires_at > $2 \
             ORDER BY requested_at DESC, id LIMIT 1"
        );
        let row: Option<PlatformApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(action.to_stored()).bind(ms(now)).fetch_optional(c).await)
                .map_err(db)?;
        row.map(PlatformApprovalRow::into_model).transpose()
    }

    async fn list_platform_approvals(&mut self, limit: i64) -> Result<Vec<PlatformApproval>> {
        const Q: &str = concat!(
            "SELECT ",
            platform_approval_columns!(),
            " FROM platform_approvals ORDER BY requested_at DESC, id LIMIT $1"
        );
        let rows: Vec<PlatformApprovalRow> =
            on!(self, |c| sqlx::query_as(Q).bind(limit).fetch_all(c).await).map_err(db)?;
        rows::all(rows, PlatformApprovalRow::into_model)
    }

    async fn decide_platform_approval(
        &mut self,
        id: ApprovalId,
        state: ApprovalState,
        by: OperatorId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        const Q: &str = "UPDATE platform_approvals SET state = $2, decided_by = $3, decided_at = $4 \
                         WHERE id = $1 AND state = 'pending'";
        let n = on!(self, |c| sqlx::query(Q)
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

    async fn use_platform_approval(&mut self, id: ApprovalId, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE platform_approvals SET used_at = $2 \
                         WHERE id = $1 AND state = 'approved' AND used_at IS NULL";
        let n =
            on!(self, |c| sqlx::query(Q).bind(id.to_string()).bind(ms(at)).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_operator(&mut self, o: &Operator) -> Result<()> {
        const Q: &str = "INSERT INTO operators (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)";
        on!(self, |c| sqlx::query(Q)
            .bind(o.id.to_string())
            .bind(&o.email)
            .bind(&o.display_name)
            .bind(ms(o.created_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn operator_by_email(&mut self, email: &str) -> Result<Option<Operator>> {
        const Q: &str = "SELECT id, email, display_name, created_at FROM operators WHERE email = $1";
        let row: Option<OperatorRow> =
            on!(self, |c| sqlx::query_as(Q).bind(email).fetch_optional(c).await).map_err(db)?;
        row.map(OperatorRow::into_model).transpose()
    }

    async fn operator(&mut self, id: OperatorId) -> Result<Option<Operator>> {
        const Q: &str = "SELECT id, email, display_name, created_at FROM operators WHERE id = $1";
        let row: Option<OperatorRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(OperatorRow::into_model).transpose()
    }

    async fn list_operators(&mut self) -> Result<Vec<Operator>> {
        const Q: &str = "SELECT id, email, display_name, created_at FROM operators ORDER BY email";
        let rows: Vec<OperatorRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, OperatorRow::into_model)
    }

    async fn put_operator_grant(&mut self, g: &OperatorGrant) -> Result<()> {
        const Q: &str = "INSERT INTO operator_grants (operator_id, role, granted_at, suspended_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (operator_id, role) DO UPDATE SET granted_at = excluded.granted_at, \
                         suspended_at = excluded.suspended_at";
        on!(self, |c| sqlx::query(Q)
            .bind(g.operator_id.to_string())
            .bind(g.role.as_str())
            .bind(ms(g.granted_at))
            .bind(g.suspended_at.map(ms))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn operator_grants(&mut self, id: OperatorId) -> Result<Vec<OperatorGrant>> {
        const Q: &str = "SELECT operator_id, role, granted_at, suspended_at FROM operator_grants \
                         WHERE operator_id = $1 ORDER BY role";
        let rows: Vec<GrantRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_all(c).await).map_err(db)?;
        rows::all(rows, GrantRow::into_model)
    }

    async fn active_grants(&mut self, role: OperatorRole) -> Result<Vec<OperatorGrant>> {
        const Q: &str = "SELECT operator_id, role, granted_at, suspended_at FROM operator_grants \
                         WHERE role = $1 AND suspended_at IS NULL ORDER BY operator_id";
        let rows: Vec<GrantRow> =
            on!(self, |c| sqlx::query_as(Q).bind(role.as_str()).fetch_all(c).await).map_err(db)?;
        rows::all(rows, GrantRow::into_model)
    }

    async fn suspend_operator_grant(&mut self, id: OperatorId, role: OperatorRole, at: OffsetDateTime) -> Result<bool> {
        const Q: &str = "UPDATE operator_grants SET suspended_at = $3 \
                         WHERE operator_id = $1 AND role = $2 AND suspended_at IS NULL";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(id.to_string())
            .bind(role.as_str())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_vetting(&mut self, v: &VettingRecord) -> Result<()> {
        const Q: &str = "INSERT INTO operator_vetting (operator_id, checked_by, checked_at, valid_until, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5)";
        on!(self, |c| sqlx::query(Q)
            .bind(v.operator_id.to_string())
            .bind(&v.checked_by)
            .bind(ms(v.checked_at))
            .bind(ms(v.valid_until))
            .bind(ms(v.recorded_at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn vetting(&mut self, id: OperatorId) -> Result<Option<VettingRecord>> {
        const Q: &str = "SELECT operator_id, checked_by, checked_at, valid_until, recorded_at FROM operator_vetting \
                         WHERE operator_id = $1 ORDER BY recorded_at DESC LIMIT 1";
        let row: Option<VettingRow> =
            on!(self, |c| sqlx::query_as(Q).bind(id.to_string()).fetch_optional(c).await).map_err(db)?;
        row.map(VettingRow::into_model).transpose()
    }

    async fn insert_operator_token(
        &mut self,
        id: OperatorId,
        hash: &str,
        at: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<()> {
        const Q: &str =
            "INSERT INTO operator_tokens (token_hash, operator_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        on!(self, |c| sqlx::query(Q)
            .bind(hash)
            .bind(id.to_string())
            .bind(ms(at))
            .bind(ms(expires))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn delete_operator_tokens(&mut self, id: OperatorId) -> Result<u64> {
        const Q: &str = "DELETE FROM operator_tokens WHERE operator_id = $1";
        on!(self, |c| sqlx::query(Q).bind(id.to_string()).execute(c).await.map(|r| r.rows_affected())).map_err(db)
    }

    async fn delete_operator_token(&mut self, id: OperatorId, hash: &str) -> Result<bool> {
        const Q: &str = "DELETE FROM operator_tokens WHERE operator_id = $1 AND token_hash = $2";
        let n =
            on!(self, |c| sqlx::query(Q).bind(id.to_string()).bind(hash).execute(c).await.map(|r| r.rows_affected()))
                .map_err(db)?;
        Ok(n == 1)
    }

    async fn operator_by_token(&mut self, hash: &str, now: OffsetDateTime) -> Result<Option<Operator>> {
        const Q: &str = "SELECT o.id, o.email, o.display_name, o.created_at FROM operator_tokens t \
                         JOIN operators o ON o.id = t.operator_id WHERE t.token_hash = $1 AND t.expires_at > $2";
        let row: Option<OperatorRow> =
            on!(self, |c| sqlx::query_as(Q).bind(hash).bind(ms(now)).fetch_optional(c).await).map_err(db)?;
        row.map(OperatorRow::into_model).transpose()
    }

    async fn tenant_summaries(&mut self) -> Result<Vec<TenantSummary>> {
        const Q: &str = concat!(
            "SELECT ",
            tenant_columns!(),
            ", (SELECT COUNT(*) FROM users u WHERE u.tenant_id = tenants.id) AS users, \
             (SELECT COUNT(*) FROM documents d WHERE d.tenant_id = tenants.id) AS documents, \
             (SELECT CAST(COALESCE(SUM(d.size), 0) AS BIGINT) FROM documents d WHERE d.tenant_id = tenants.id) \
             AS stored_bytes FROM tenants ORDER BY name"
        );
        let rows: Vec<TenantSummaryRow> = on!(self, |c| sqlx::query_as(Q).fetch_all(c).await).map_err(db)?;
        rows::all(rows, TenantSummaryRow::into_model)
    }
}
