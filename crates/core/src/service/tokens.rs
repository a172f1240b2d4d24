//! API bearer tokens: created by a signed-in user, scoped, expiring, revocable. Only a hash of
//! the secret is stored; the secret is shown once.

use super::{Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::authn::secret;
use crate::error::{Error, Result};
use crate::ids::TokenId;
use crate::model::ApiToken;
use crate::policy::can;
use crate::policy::{self, Principal, Scope};
use crate::validate;
use secrecy::SecretString;
use time::Duration;

/// Default and longest token lifetimes, in days.
pub const DEFAULT_TOKEN_DAYS: i64 = 90;
pub const MAX_TOKEN_DAYS: i64 = 365;

impl Portal {
    /// Create a token for the caller. Returns the record and the secret (shown once).
    pub async fn create_token(
        &self,
        p: &Principal,
        name: &str,
        scopes: &[String],
        expires_in_days: Option<i64>,
        meta: &RequestMeta,
    ) -> Result<(ApiToken, SecretString)> {
        policy::authorize_tenant::<can::ManageOwnTokens>(p)?;
        let name = validate::line("name", name, 100)?;
        if scopes.is_empty() {
            return Err(Error::invalid("scopes", "name at least one scope"));
        }
        let mut parsed = scopes.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>>>()?;
        parsed.sort();
        parsed.dedup();
        let usable = policy::usable_scopes(p.role);
        if let Some(s) = parsed.iter().find(|s| !usable.contains(s)) {
            return Err(Error::invalid(
                "scopes",
                format!("the {} role cannot use the {} scope", p.role.as_str(), s.as_str()),
            ));
        }
        let days = expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
        if !(1..=MAX_TOKEN_DAYS).contains(&days) {
            return Err(Error::invalid("expires_in_days", format!("must be from 1 to {MAX_TOKEN_DAYS}")));
        }
        let now = self.clock.now();
        let secret = secret::generate("pct_")?;
        let token = ApiToken {
            id: TokenId::new(),
            tenant_id: p.tenant_id,
            user_id: p.user_id,
            name,
            scopes: parsed,
            created_at: now,
            expires_at: Some(now + Duration::days(days)),
            revoked_at: None,
            last_used_at: None,
        };
        let mut tx = self.write().await?;
        // A new credential is a sensitive action: a fresh second-factor check, if the user has one.
        self.require_step_up(&mut *tx, p).await?;
        tx.tokens().insert_api_token(&token, &secret::hash(&secret)).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::TokenCreate, Target::Token(token.id), meta)
            .with_detail(crate::changes::detail(
                serde_json::Value::Null,
                serde_json::json!({ "scopes": token.scopes, "expires_at": token.expires_at.map(|e| e.unix_timestamp()) }),
                None,
            ));
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await?;
        Ok((token, secret))
    }

    /// The caller's tokens.
    pub async fn list_tokens(&self, p: &Principal) -> Result<Vec<ApiToken>> {
        policy::authorize_tenant::<can::ManageOwnTokens>(p)?;
        self.read().await?.tokens().list_api_tokens(p.tenant_id, p.user_id).await
    }

    /// Revoke one of the caller's tokens.
    pub async fn revoke_token(&self, p: &Principal, id: TokenId, meta: &RequestMeta) -> Result<()> {
        policy::authorize_tenant::<can::ManageOwnTokens>(p)?;
        let mut tx = self.write().await?;
        let now = self.clock.now();
        if !tx.tokens().revoke_api_token(p.tenant_id, p.user_id, id, now).await? {
            return Err(Error::NotFound);
        }
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::TokenRevoke, Target::Token(id), meta).with_detail(
            crate::changes::detail(
                serde_json::json!({ "state": "active" }),
                serde_json::json!({ "state": "revoked" }),
                None,
            ),
        );
        tx.audit().append_audit(&ev, now).await?;
        tx.commit().await
    }
}
