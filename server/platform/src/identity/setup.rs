//! First start: while no account exists, `serve` prints a one-time link; whoever opens it creates
//! the first administrator. The link carries a random token; only its SHA-256 is stored, it expires
//! after [`SETUP_TOKEN_LIFETIME`], and it works once.

use std::time::Duration;

use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr,
};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::{Identity, IdentityError, NewUser, User, entities::setup_token};
use crate::access::Principal;

/// How long a set-up link stays valid.
pub const SETUP_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// A freshly issued set-up token (shown once, never stored in the clear).
#[derive(Debug, Clone)]
pub struct SetupToken {
    pub token: SecretString,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The first administrator's details, entered on the set-up page.
#[derive(Debug)]
pub struct FirstAdmin {
    pub username: String,
    pub email: String,
    pub password: SecretString,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Identity {
    /// Issues a set-up token when no account exists yet; `None` once someone has an account.
    pub async fn issue_setup_token(&self) -> Result<Option<SetupToken>, IdentityError> {
        if self.user_count().await? > 0 {
            return Ok(None);
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let now = self.clock.now();
        let expires_at = now
            + chrono::Duration::from_std(SETUP_TOKEN_LIFETIME)
                .unwrap_or(chrono::Duration::hours(1));
        setup_token::ActiveModel {
            token_hash: Set(digest(&token)),
            created_at: Set(now),
            expires_at: Set(expires_at),
            used: Set(false),
        }
        .insert(&self.db)
        .await?;
        Ok(Some(SetupToken {
            token: token.into(),
            expires_at,
        }))
    }

    /// Whether `token` is an unused, unexpired set-up token and set-up is still needed.
    pub async fn setup_token_valid(&self, token: &str) -> Result<bool, IdentityError> {
        let now = self.clock.now();
        let found = setup_token::Entity::find_by_id(digest(token))
            .one(&self.db)
            .await?;
        Ok(found.is_some_and(|t| !t.used && t.expires_at > now) && self.user_count().await? == 0)
    }

    /// Creates the first administrator with a valid set-up token; the token is spent even if the
    /// account cannot be created, so each link is tried once. Audited as `user_create` by the system.
    pub async fn create_first_admin(
        &self,
        token: &str,
        admin: FirstAdmin,
    ) -> Result<User, IdentityError> {
        let invalid_link = || {
            IdentityError::Forbidden(
                "a valid set-up link (it may have expired or been used)".into(),
            )
        };
        if !self.setup_token_valid(token).await? {
            return Err(invalid_link());
        }
        // Check the input before spending the link, so a typo does not cost a restart.
        let mut fields = std::collections::BTreeMap::new();
        let username = admin.username.trim().to_lowercase();
        let email = admin.email.trim().to_lowercase();
        if let Err(m) = super::check_username(&username) {
            fields.insert("username".to_string(), vec![m]);
        }
        if let Err(m) = super::check_email(&email) {
            fields.insert("email".to_string(), vec![m]);
        }
        if let Err(IdentityError::Invalid(f)) =
            self.check_password(&admin.password, &username, &email)
        {
            fields.extend(f);
        }
        if !fields.is_empty() {
            return Err(IdentityError::Invalid(fields));
        }
        let claimed = setup_token::Entity::update_many()
            .col_expr(setup_token::Column::Used, Expr::value(true))
            .filter(setup_token::Column::TokenHash.eq(digest(token)))
            .filter(setup_token::Column::Used.eq(false))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected != 1 || self.user_count().await? > 0 {
            return Err(invalid_link());
        }
        let new = NewUser {
            username,
            email,
            password: admin.password,
            roles: vec!["admin".to_string()],
        };
        self.create_user(&Principal::System, new).await
    }
}
