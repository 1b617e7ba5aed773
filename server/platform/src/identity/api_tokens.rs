//! Personal API tokens: a signed-in person makes a named token for scripts and the REST API (a
//! Google- or LDAP-only account has no password for `POST /api/v1/auth/login`). The token is shown
//! once; only its SHA-256 is stored (it is 256 random bits, so no slow hash is needed). Each token
//! has an expiry (at most [`MAX_LIFETIME_DAYS`]) and may be narrowed to some of its owner's
//! permissions. It acts with what its owner holds *now*, narrowed: disabling the owner stops it at
//! the next request, and a lost role takes its permissions from the token too. A password change
//! leaves tokens standing (they are separate credentials, listed and revocable on the account
//! page). Creating and revoking are audited (`api_token_create`, `api_token_revoke`).

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Identity, IdentityError, auth::AuthError, entities::api_token, error::invalid};
use crate::{
    access::{Permission, PermissionSet, Principal},
    audit::{AuditEvent, EventKind, Outcome},
    denial::Denial,
};

/// What every personal token starts with, so a leaked one is recognisable (and secret scanners can
/// look for it).
pub const TOKEN_PREFIX: &str = "wao_";
/// The longest a token may live.
pub const MAX_LIFETIME_DAYS: u32 = 365;
/// The lifetime when none is asked for.
pub const DEFAULT_LIFETIME_DAYS: u32 = 90;
/// Most live tokens one person may hold; of their revoked and expired ones, only as many of the
/// newest are kept. So nobody can make the server store without bound.
pub const MAX_TOKENS_PER_USER: u64 = 50;
/// `last_used_at` is written at most this often per token, so a busy script does not turn every
/// request into a write.
const LAST_USED_GRANULARITY: chrono::Duration = chrono::Duration::seconds(60);

/// A token as it is listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// The last four characters, to tell tokens apart.
    pub hint: String,
    /// `None`: everything the owner holds.
    pub permissions: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `revoked` or `expired`, when it was read.
    pub state: &'static str,
}

/// A new token: its name, lifetime in days and optional narrower permissions.
#[derive(Debug, Clone, Default)]
pub struct NewApiToken {
    pub name: String,
    pub expires_in_days: Option<u32>,
    pub permissions: Option<Vec<String>>,
}

/// A token just made: the listing and, this once, the secret.
#[derive(Debug)]
pub struct IssuedApiToken {
    pub token: SecretString,
    pub info: ApiToken,
}

/// Token names: 1–64 of letters, digits, space, `.`, `_`, `-`, starting with a letter or digit
/// (the OpenAPI document's `^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`).
pub fn check_token_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok =
        bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-'));
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err("must be 1–64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit".into())
    }
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The permissions a token is narrowed to; `None`: everything its owner holds. A stored list that
/// does not read as one grants nothing (fail closed), never everything.
fn narrowed_to(stored: Option<serde_json::Value>) -> Option<Vec<String>> {
    stored.map(|p| serde_json::from_value::<Vec<String>>(p).unwrap_or_default())
}

impl ApiToken {
    fn from_row(row: api_token::Model, now: DateTime<Utc>) -> Self {
        let state = if row.revoked_at.is_some() {
            "revoked"
        } else if row.expires_at <= now {
            "expired"
        } else {
            "active"
        };
        Self {
            id: row.id.to_string(),
            name: row.name,
            hint: row.hint,
            permissions: narrowed_to(row.permissions),
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
            state,
        }
    }
}

impl Identity {
    /// Makes a personal token for the signed-in principal. Its permissions, when given, must be
    /// ones the principal holds (nobody grants what they lack).
    pub async fn create_api_token(
        &self,
        principal: &Principal,
        new: NewApiToken,
    ) -> Result<IssuedApiToken, IdentityError> {
        let Some(user_id) = principal.id().and_then(|id| uuid::Uuid::parse_str(id).ok()) else {
            return Err(IdentityError::Forbidden("a user account".into()));
        };
        let name = new.name;
        check_token_name(&name).map_err(|m| invalid("name", m))?;
        let days = new.expires_in_days.unwrap_or(DEFAULT_LIFETIME_DAYS);
        if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
            return Err(invalid(
                "expires_in_days",
                format!("must be 1–{MAX_LIFETIME_DAYS} days"),
            ));
        }
        let permissions = match &new.permissions {
            None => None,
            Some(list) => {
                let mut parsed = Vec::with_capacity(list.len());
                for p in list {
                    let permission = p
                        .parse::<Permission>()
                        .map_err(|e| invalid("permissions", e))?;
                    parsed.push(permission);
                }
                if parsed.is_empty() {
                    return Err(invalid(
                        "permissions",
                        "name at least one permission, or leave it out for all of yours",
                    ));
                }
                if let Some(missing) = principal.lacks(&parsed) {
                    let missing = missing.to_string();
                    return Err(self
                        .deny(
                            principal,
                            missing,
                            "api_tokens",
                            "a token cannot hold a permission its owner lacks",
                        )
                        .await);
                }
                let mut names: Vec<String> = parsed.iter().map(ToString::to_string).collect();
                names.sort();
                names.dedup();
                Some(names)
            }
        };
        let now = self.clock.now();
        let inactive = Condition::any()
            .add(api_token::Column::RevokedAt.is_not_null())
            .add(api_token::Column::ExpiresAt.lte(now));
        // Revoked and expired tokens stay listed, the newest MAX_TOKENS_PER_USER of them.
        let old: Vec<uuid::Uuid> = api_token::Entity::find()
            .select_only()
            .column(api_token::Column::Id)
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(inactive.clone())
            .order_by_desc(api_token::Column::CreatedAt)
            .offset(MAX_TOKENS_PER_USER)
            // SQLite takes OFFSET only after a LIMIT; there are never more than twice the bound.
            .limit(10 * MAX_TOKENS_PER_USER)
            .into_tuple()
            .all(&self.db)
            .await?;
        if !old.is_empty() {
            api_token::Entity::delete_many()
                .filter(api_token::Column::Id.is_in(old))
                .exec(&self.db)
                .await?;
        }
        let held = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(Condition::all().not().add(inactive))
            .count(&self.db)
            .await?;
        if held >= MAX_TOKENS_PER_USER {
            return Err(invalid(
                "name",
                format!("you hold {MAX_TOKENS_PER_USER} tokens already; revoke one first"),
            ));
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let row = api_token::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            user_id: Set(user_id),
            name: Set(name),
            token_hash: Set(digest(&token)),
            hint: Set(token[token.len() - 4..].to_string()),
            permissions: Set(permissions.map(|p| serde_json::json!(p))),
            created_at: Set(now),
            expires_at: Set(now + chrono::Duration::days(i64::from(days))),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        let info = ApiToken::from_row(row, now);
        self.record_token(principal, EventKind::ApiTokenCreate, &info, user_id)
            .await?;
        Ok(IssuedApiToken {
            token: SecretString::from(token),
            info,
        })
    }

    /// The principal's own tokens, newest first (revoked and expired ones included, marked).
    pub async fn list_api_tokens(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ApiToken>, IdentityError> {
        let Some(user_id) = principal.id().and_then(|id| uuid::Uuid::parse_str(id).ok()) else {
            return Ok(Vec::new());
        };
        let rows = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(user_id))
            .order_by_desc(api_token::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let now = self.clock.now();
        Ok(rows
            .into_iter()
            .map(|r| ApiToken::from_row(r, now))
            .collect())
    }

    /// Revokes one of the principal's own tokens, or anyone's with `users:update`; it stops working
    /// at its next use. Revoking a revoked token changes nothing and is not an error.
    pub async fn revoke_api_token(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<ApiToken, IdentityError> {
        let not_found = || IdentityError::UnknownToken(id.to_string());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
        let row = api_token::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let own = principal.id() == Some(row.user_id.to_string().as_str());
        if !own && !principal.can("users", "update") {
            // Someone else's token is not confirmed to exist; the attempt is audited.
            let reason = Some("another person's API token");
            return Err(
                match principal
                    .deny(&self.audit, "users:update", id, reason)
                    .await
                {
                    Denial::Forbidden(_) => not_found(),
                    Denial::Audit(e) => e.into(),
                },
            );
        }
        if row.revoked_at.is_some() {
            return Ok(ApiToken::from_row(row, self.clock.now()));
        }
        let owner = row.user_id;
        let mut active: api_token::ActiveModel = row.into();
        active.revoked_at = Set(Some(self.clock.now()));
        let info = ApiToken::from_row(active.update(&self.db).await?, self.clock.now());
        self.record_token(principal, EventKind::ApiTokenRevoke, &info, owner)
            .await?;
        Ok(info)
    }

    /// The principal behind a personal token: the token must be known, unrevoked and unexpired,
    /// and its owner enabled. It acts with its owner's current permissions, narrowed to the
    /// token's own list when it has one.
    pub(super) async fn authenticate_api_token(&self, token: &str) -> Result<Principal, AuthError> {
        let row = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(digest(token)))
            .one(&self.db)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let now = self.clock.now();
        if row.revoked_at.is_some() || row.expires_at <= now {
            return Err(AuthError::InvalidToken);
        }
        let principal = self
            .live_principal(row.user_id, None)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if row
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
        {
            // Not an access write: no cached decision reads it.
            api_token::Entity::update_many()
                .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
                .filter(api_token::Column::Id.eq(row.id))
                .exec(&self.db)
                .await?;
        }
        let Some(names) = narrowed_to(row.permissions) else {
            return Ok(principal);
        };
        let narrowed: PermissionSet = names.iter().filter_map(|p| p.parse().ok()).collect();
        Ok(match principal {
            Principal::User {
                id,
                username,
                roles,
                permissions,
            } => Principal::User {
                id,
                username,
                roles,
                permissions: permissions.intersect(&narrowed),
            },
            Principal::System => Principal::System,
        })
    }

    async fn record_token(
        &self,
        principal: &Principal,
        kind: EventKind,
        token: &ApiToken,
        owner: uuid::Uuid,
    ) -> Result<(), IdentityError> {
        let event = AuditEvent::new(kind, principal.actor(), Outcome::Success)
            .with_target("api_token", token.id.clone())
            .with_details(serde_json::json!({
                "name": token.name,
                "owner": owner.to_string(),
                "expires_at": token.expires_at,
                "permissions": token.permissions,
            }));
        self.audit.record(event).await?;
        Ok(())
    }
}
