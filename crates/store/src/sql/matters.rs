//! Matters and their members in SQL.

use super::{SqlTx, db, ms};
use crate::rows::{self, id};
use async_trait::async_trait;
use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::ids::{MatterId, TenantId, UserId};
use portcullis_core::model::{Matter, MatterMember, Role};
use portcullis_core::policy::{MatterFacts, MatterGrant, MatterListGrant, MatterVisibility, TenantGrant, can};
use portcullis_core::ports::MatterRepo;
use time::OffsetDateTime;

/// The columns of `matters` (with a table prefix such as `"m."`), in the order `MatterRow` and
/// the INSERT use.
macro_rules! matter_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "tenant_id, ",
            $p,
            "reference, ",
            $p,
            "title, ",
            $p,
            "created_by, ",
            $p,
            "created_at, ",
            $p,
            "restricted"
        )
    };
}

/// The ethical wall in SQL, over matters `m` of tenant `$1` as user `$2` sees them: every
/// unrestricted matter and those whose list holds the user. Every query that reads across
/// matters for someone uses it (or [`on_list!`]), so the walls are written once.
macro_rules! unrestricted_or_listed {
    () => {
        "(m.restricted = 0 OR EXISTS (SELECT 1 FROM matter_members mm \
         WHERE mm.tenant_id = m.tenant_id AND mm.matter_id = m.id AND mm.user_id = $2))"
    };
}
pub(crate) use unrestricted_or_listed;

/// Matters `m` whose list holds user `$2` (what clients see).
macro_rules! on_list {
    () => {
        "EXISTS (SELECT 1 FROM matter_members mm WHERE mm.tenant_id = m.tenant_id AND mm.matter_id = m.id \
         AND mm.user_id = $2)"
    };
}
pub(crate) use on_list;

#[derive(sqlx::FromRow)]
pub(crate) struct MatterRow {
    id: String,
    tenant_id: String,
    reference: String,
    title: String,
    created_by: String,
    created_at: i64,
    restricted: i64,
}

impl MatterRow {
    pub(crate) fn into_model(self) -> Result<Matter> {
        Ok(Matter {
            id: id(&self.id, portcullis_core::ids::MatterId::from_uuid)?,
            tenant_id: id(&self.tenant_id, portcullis_core::ids::TenantId::from_uuid)?,
            reference: self.reference,
            title: self.title,
            created_by: id(&self.created_by, portcullis_core::ids::UserId::from_uuid)?,
            created_at: from_millis(self.created_at),
            restricted: self.restricted != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
    added_at: i64,
}

impl MemberRow {
    pub(crate) fn into_model(self) -> Result<MatterMember> {
        Ok(MatterMember {
            user_id: id(&self.user_id, portcullis_core::ids::UserId::from_uuid)?,
            email: self.email,
            display_name: self.display_name,
            role: Role::parse(&self.role).map_err(Error::internal)?,
            added_at: from_millis(self.added_at),
        })
    }
}

#[async_trait]
impl MatterRepo for SqlTx {
    async fn insert_matter(&mut self, grant: &TenantGrant<can::CreateMatter>, m: &Matter) -> Result<()> {
        if grant.tenant_id() != m.tenant_id {
            return Err(Error::NotFound);
        }
        const Q: &str = concat!("INSERT INTO matters (", matter_columns!(""), ") VALUES ($1, $2, $3, $4, $5, $6, $7)");
        on!(self, |c| sqlx::query(Q)
            .bind(m.id.to_string())
            .bind(m.tenant_id.to_string())
            .bind(&m.reference)
            .bind(&m.title)
            .bind(m.created_by.to_string())
            .bind(ms(m.created_at))
            .bind(i64::from(m.restricted))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn matter_facts(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<MatterFacts>> {
        const Q: &str = "SELECT m.restricted, mm.role FROM matters m LEFT JOIN matter_members mm \
                         ON mm.tenant_id = m.tenant_id AND mm.matter_id = m.id AND mm.user_id = $3 \
                         WHERE m.tenant_id = $1 AND m.id = $2";
        let row: Option<(i64, Option<String>)> = on!(self, |c| sqlx::query_as(Q)
            .bind(tenant.to_string())
            .bind(matter.to_string())
            .bind(user.to_string())
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        let Some((restricted, role)) = row else { return Ok(None) };
        let membership = role.map(|r| Role::parse(&r).map_err(Error::internal)).transpose()?;
        Ok(Some(MatterFacts { tenant_id: tenant, matter_id: matter, membership, restricted: restricted != 0 }))
    }

    async fn matter(&mut self, grant: &MatterGrant<can::ViewMatter>) -> Result<Option<Matter>> {
        const Q: &str = concat!("SELECT ", matter_columns!(""), " FROM matters WHERE tenant_id = $1 AND id = $2");
        let row: Option<MatterRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_optional(c)
            .await)
        .map_err(db)?;
        row.map(MatterRow::into_model).transpose()
    }

    async fn list_matters(&mut self, grant: &MatterListGrant<can::ListMatters>) -> Result<Vec<Matter>> {
        const UNRESTRICTED: &str = concat!(
            "SELECT ",
            matter_columns!("m."),
            " FROM matters m WHERE m.tenant_id = $1 AND ",
            unrestricted_or_listed!(),
            " ORDER BY m.created_at DESC"
        );
        const MEMBER: &str = concat!(
            "SELECT ",
            matter_columns!("m."),
            " FROM matters m WHERE m.tenant_id = $1 AND ",
            on_list!(),
            " ORDER BY m.created_at DESC"
        );
        const WHOLE: &str =
            concat!("SELECT ", matter_columns!("m."), " FROM matters m WHERE m.tenant_id = $1 ORDER BY m.created_at");
        let tenant = grant.tenant_id().to_string();
        let rows: Vec<MatterRow> = match grant.visibility() {
            MatterVisibility::WholeFirm => on!(self, |c| sqlx::query_as(WHOLE).bind(&tenant).fetch_all(c).await),
            MatterVisibility::Unrestricted(u) => {
                on!(self, |c| sqlx::query_as(UNRESTRICTED).bind(&tenant).bind(u.to_string()).fetch_all(c).await)
            }
            MatterVisibility::MemberOf(u) => {
                on!(self, |c| sqlx::query_as(MEMBER).bind(&tenant).bind(u.to_string()).fetch_all(c).await)
            }
        }
        .map_err(db)?;
        rows::all(rows, MatterRow::into_model)
    }

    async fn insert_member(
        &mut self,
        grant: &MatterGrant<can::ManageMembers>,
        user: UserId,
        role: Role,
        at: OffsetDateTime,
    ) -> Result<()> {
        const Q: &str =
            "INSERT INTO matter_members (tenant_id, matter_id, user_id, role, added_at) VALUES ($1, $2, $3, $4, $5)";
        on!(self, |c| sqlx::query(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .bind(user.to_string())
            .bind(role.as_str())
            .bind(ms(at))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(())
    }

    async fn remove_member(&mut self, grant: &MatterGrant<can::ManageMembers>, user: UserId) -> Result<bool> {
        const Q: &str = "DELETE FROM matter_members WHERE tenant_id = $1 AND matter_id = $2 AND user_id = $3";
        let n = on!(self, |c| sqlx::query(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .bind(user.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)?;
        Ok(n > 0)
    }

    async fn remove_memberships(&mut self, grant: &TenantGrant<can::ManageUsers>, user: UserId) -> Result<u64> {
        const Q: &str = "DELETE FROM matter_members WHERE tenant_id = $1 AND user_id = $2";
        on!(self, |c| sqlx::query(Q)
            .bind(grant.tenant_id().to_string())
            .bind(user.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db)
    }

    async fn list_members(&mut self, grant: &MatterGrant<can::ListMembers>) -> Result<Vec<MatterMember>> {
        const Q: &str = "SELECT mm.user_id, u.email, u.display_name, mm.role, mm.added_at \
                         FROM matter_members mm JOIN users u ON u.id = mm.user_id AND u.tenant_id = mm.tenant_id \
                         WHERE mm.tenant_id = $1 AND mm.matter_id = $2 ORDER BY mm.added_at";
        let rows: Vec<MemberRow> = on!(self, |c| sqlx::query_as(Q)
            .bind(grant.tenant_id().to_string())
            .bind(grant.matter_id().to_string())
            .fetch_all(c)
            .await)
        .map_err(db)?;
        rows::all(rows, MemberRow::into_model)
    }
}
