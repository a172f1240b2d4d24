//! A tenant's users in SQL.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::{Role, User, UserStatus};
use portcullis_core::policy::{TenantGrant, can};
use portcullis_core::ports::UserRepo;

/// `SELECT` of every user column, followed by a literal tail.
macro_rules! select_users {
    ($tail:literal) => {
        concat!("SELECT id, tenant_id, email, display_name, role, status, created_at, password_hash FROM users ", $tail)
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    display_name: String,
    role: String,
    status: String,
    created_at: i64,
    pub(crate) password_hash: Option<String>,
}

impl UserRow {
    pub(crate) fn into_model(self) -> Result<User> {
        Ok(User {
            id: id(&self.id, portcullis_core::ids::UserId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            email: self.email,
            display_name: self.display_name,
            role: Role::parse(&self.role).map_err(Error::internal)?,
            status: UserStatus::parse(&self.status)?,
            created_at: from_millis(self.created_at),
        })
    }
}

#[async_trait]
impl UserRepo for SqlTx {
    async fn insert_user(&mut self, u: &User, email_lookup: &str, password_hash: Option<&str>) -> Result<()> {
        const Q: &str = "INSERT INTO users (id, tenant_id, email, display_name, role, status, created_at, password_hash, \
                         email_lookup) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        on!(self, |c| sqlx::query(Q)
            .bind(u.id.to_string())
            .bind(u.tenant_id.to_string())
            .bind(&u.email)
            .bind(&u.display_name)
            .bind(u.role.as_str())
            .bind(u.status.as_str())
            .bind(ms(u.created_at))
            .bind(password_hash)
            .bind(email_lookup)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn user_by_email(&mut self, tenant: TenantId, email_lookup: &str) -> Result<Option<(User, Option<String>)>> {
        const Q: &str = select_users!("WHERE tenant_id = $1 AND email_lookup = $2");
        let row: Option<UserRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(email_lookup).fetch_optional(c).await)
                .map_err(db)?;
        row.map(|mut r| {
            let hash = r.password_hash.take();
            r.into_model().map(|u| (u, hash))
        })
        .transpose()
    }

    async fn user(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>> {
        const Q: &str = select_users!("WHERE tenant_id = $1 AND id = $2");
        let row: Option<UserRow> =
            on!(self, |c| sqlx::query_as(Q).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(c).await)
                .map_err(db)?;
        row.map(UserRow::into_model).transpose()
    }

    async fn set_password(&mut self, tenant: TenantId, id: UserId, hash: &str, status: UserStatus) -> Result<()> {
        const Q: &str = "UPDATE users SET password_hash = $3, status = $4 WHERE tenant_id = $1 AND id = $2";
        on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(hash)
            .bind(status.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn set_user_status(&mut self, tenant: TenantId, id: UserId, status: UserStatus) -> Result<bool> {
        const Q: &str = "UPDATE users SET status = $3 WHERE tenant_id = $1 AND id = $2";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(status.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n == 1)
    }

    async fn list_users(&mut self, grant: &TenantGrant<can::ListUsers>) -> Result<Vec<User>> {
        const Q: &str = select_users!("WHERE tenant_id = $1 ORDER BY email");
        let rows: Vec<UserRow> =
            on!(self, |c| sqlx::query_as(Q).bind(grant.tenant_id().to_string()).fetch_all(c).await).map_err(db)?;
        rows::all(rows, UserRow::into_model)
    }

    async fn tenant_admins(&mut self, tenant: TenantId) -> Result<Vec<UserId>> {
        const Q: &str = "SELECT id FROM users WHERE tenant_id = $1 AND role IN ('owner', 'admin') \
                         AND status = 'active' ORDER BY id";
        let ids: Vec<String> =
            on!(self, |c| sqlx::query_scalar(Q).bind(tenant.to_string()).fetch_all(c).await).map_err(db)?;
        ids.iter().map(|s| rows::id(s, UserId::from_uuid)).collect()
    }
}
