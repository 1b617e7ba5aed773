//! Identity: local accounts, their roles, and the roles themselves (rbac.yml's and custom ones).
//!
//! Every operation takes the acting [`Principal`], checks its permission here, and records its
//! audit event here, so the CLI, the REST API and the dashboard behave the same.

pub mod auth;
pub(crate) mod entities;
pub mod grants;
pub mod password;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod tokens;

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use self::entities::{role, user, user_role};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, AuditService, EventKind, Outcome},
    clock::Clock,
    config::Config,
};

/// Errors of the identity services; each message is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The principal lacks the permission.
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// No user by that name.
    #[error("no user named \"{0}\"")]
    UnknownUser(String),
    /// No role by that name.
    #[error("no role named \"{0}\"")]
    UnknownRole(String),
    /// Input was rejected; messages per field.
    #[error("{}", format_fields(.0))]
    Invalid(BTreeMap<String, Vec<String>>),
    /// The username or email is taken.
    #[error("{0}")]
    Conflict(String),
    /// The change would leave no enabled account holding the admin role.
    #[error("this would leave no enabled administrator: give another account the admin role first")]
    LastAdmin,
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// A token could not be signed.
    #[error(transparent)]
    Token(#[from] tokens::TokenError),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    /// The audit event could not be stored.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

fn format_fields(fields: &BTreeMap<String, Vec<String>>) -> String {
    fields
        .iter()
        .map(|(f, msgs)| format!("{f} {}", msgs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A user as the services return it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A role and the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

/// A new local account.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: SecretString,
    pub roles: Vec<String>,
}

/// Changes to an account; `None` and empty lists leave things as they are.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub password: Option<SecretString>,
    pub add_roles: Vec<String>,
    pub remove_roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Identity {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    audit: AuditService,
    hasher: password::Hasher,
    keys: tokens::TokenKeys,
    /// Moved by every change to accounts and roles (and modules), in any process.
    generation: crate::generation::AccessGeneration,
    /// Accounts as authentication needs them, reused while the generation stands.
    accounts: Arc<crate::generation::Fresh<uuid::Uuid, Option<auth::Account>>>,
    /// Whether each refresh family (a sign-in) still stands, reused while the generation stands;
    /// revoking a family moves the generation.
    families: Arc<crate::generation::Fresh<uuid::Uuid, bool>>,
}

/// Most accounts kept in memory for authentication.
const ACCOUNT_CACHE: usize = 10_000;

fn invalid(field: &str, message: impl Into<String>) -> IdentityError {
    IdentityError::Invalid(BTreeMap::from([(field.to_string(), vec![message.into()])]))
}

/// Usernames: 3–64 of lowercase letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    let ok_start = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if (3..=64).contains(&name.len()) && ok_chars && ok_start {
        Ok(())
    } else {
        Err("must be 3–64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit".into())
    }
}

/// A plausible email address: one `@`, a non-empty local part and a dotted domain, no spaces.
pub fn check_email(email: &str) -> Result<(), String> {
    let valid = email.len() <= 255
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|p| !p.is_empty())
        });
    if valid {
        Ok(())
    } else {
        Err(format!("\"{email}\" is not a valid email address"))
    }
}

impl Identity {
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        audit: AuditService,
        secret: &SecretString,
        generation: crate::generation::AccessGeneration,
    ) -> Self {
        let permits = std::thread::available_parallelism().map_or(2, usize::from);
        let keys = tokens::TokenKeys::new(secret, &config.security.auth.jwt);
        let accounts = Arc::new(crate::generation::Fresh::new(
            generation.clone(),
            ACCOUNT_CACHE,
        ));
        let families = Arc::new(crate::generation::Fresh::new(
            generation.clone(),
            ACCOUNT_CACHE,
        ));
        Self {
            db,
            clock,
            config,
            audit,
            hasher: password::Hasher::new(permits),
            keys,
            generation,
            accounts,
            families,
        }
    }

    /// Writes rbac.yml's roles into the database (their permissions follow the file); roles that
    /// already match are left alone, and roles that came from the file but left it are deleted.
    pub async fn sync_builtin_roles(&self) -> Result<(), IdentityError> {
        let result = self.write_builtin_roles().await;
        if !matches!(result, Ok(false)) {
            self.generation.advance();
        }
        result.map(|_| ())
    }

    /// Whether any role was written.
    async fn write_builtin_roles(&self) -> Result<bool, IdentityError> {
        let now = self.clock.now();
        let mut changed = false;
        for (name, def) in &self.config.rbac.roles {
            let permissions = serde_json::json!(def.permissions);
            match role::Entity::find_by_id(name.clone()).one(&self.db).await? {
                Some(existing) if existing.builtin && existing.permissions == permissions => {}
                Some(existing) => {
                    let mut active: role::ActiveModel = existing.into();
                    active.permissions = Set(permissions);
                    active.builtin = Set(true);
                    active.updated_at = Set(now);
                    active.update(&self.db).await?;
                    changed = true;
                }
                None => {
                    role::ActiveModel {
                        name: Set(name.clone()),
                        description: Set(format!("The {name} role from rbac.yml")),
                        builtin: Set(true),
                        permissions: Set(permissions),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(&self.db)
                    .await?;
                    changed = true;
                }
            }
        }
        // A role taken out of rbac.yml grants nothing any more: it and its holders' links go.
        let stale = role::Entity::find()
            .filter(role::Column::Builtin.eq(true))
            .filter(role::Column::Name.is_not_in(self.config.rbac.roles.keys().cloned()))
            .all(&self.db)
            .await?;
        for row in stale {
            let txn = self.db.begin().await?;
            user_role::Entity::delete_many()
                .filter(user_role::Column::RoleName.eq(&row.name))
                .exec(&txn)
                .await?;
            role::Entity::delete_by_id(row.name).exec(&txn).await?;
            txn.commit().await?;
            changed = true;
        }
        Ok(changed)
    }

    async fn authorize(
        &self,
        principal: &Principal,
        resource: &str,
        action: &str,
        target: &str,
    ) -> Result<(), IdentityError> {
        if principal.can(resource, action) {
            return Ok(());
        }
        let permission = format!("{resource}:{action}");
        Err(self
            .deny(principal, permission, target, "missing permission")
            .await)
    }

    async fn record(
        &self,
        principal: &Principal,
        kind: EventKind,
        user: &User,
        details: serde_json::Value,
    ) -> Result<(), IdentityError> {
        let actor = Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        };
        let event = AuditEvent::new(kind, actor, Outcome::Success)
            .with_target("user", user.id.clone())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }

    async fn check_roles(&self, roles: &[String]) -> Result<(), IdentityError> {
        for name in roles {
            if role::Entity::find_by_id(name.clone())
                .one(&self.db)
                .await?
                .is_none()
            {
                return Err(invalid("roles", format!("unknown role \"{name}\"")));
            }
        }
        Ok(())
    }

    fn check_password(
        &self,
        password: &SecretString,
        username: &str,
        email: &str,
    ) -> Result<(), IdentityError> {
        let Some(policy) = self.config.security.local_password_policy() else {
            return Err(invalid(
                "password",
                "local accounts are disabled in security.yml",
            ));
        };
        let problems = password::check(policy, password.expose_secret(), username, email);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(IdentityError::Invalid(BTreeMap::from([(
                "password".to_string(),
                problems,
            )])))
        }
    }

    /// Creates a local account (`users:create`); audited as `user_create`.
    pub async fn create_user(
        &self,
        principal: &Principal,
        new: NewUser,
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "create", &new.username)
            .await?;
        let username = new.username.trim().to_lowercase();
        let email = new.email.trim().to_lowercase();
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Err(m) = check_username(&username) {
            fields.entry("username".into()).or_default().push(m);
        }
        if let Err(m) = check_email(&email) {
            fields.entry("email".into()).or_default().push(m);
        }
        if let Err(IdentityError::Invalid(f)) =
            self.check_password(&new.password, &username, &email)
        {
            fields.extend(f);
        }
        if new.roles.is_empty() {
            fields
                .entry("roles".into())
                .or_default()
                .push("give at least one role".into());
        }
        if !fields.is_empty() {
            return Err(IdentityError::Invalid(fields));
        }
        self.check_roles(&new.roles).await?;
        self.check_grant(principal, &new.roles, &username).await?;
        if user::Entity::find()
            .filter(user::Column::Username.eq(&username))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(IdentityError::Conflict(format!(
                "a user named \"{username}\" already exists"
            )));
        }
        if user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(IdentityError::Conflict(format!(
                "the email address {email} is already in use"
            )));
        }
        let hash = self.hasher.hash(&new.password).await?;
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7();
        let txn = self.db.begin().await?;
        user::ActiveModel {
            id: Set(id),
            username: Set(username.clone()),
            email: Set(email),
            password_hash: Set(Some(hash)),
            disabled: Set(false),
            token_version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(None),
        }
        .insert(&txn)
        .await?;
        for role_name in dedup(&new.roles) {
            user_role::ActiveModel {
                user_id: Set(id),
                role_name: Set(role_name),
            }
            .insert(&txn)
            .await?;
        }
        let change = self.generation.change();
        txn.commit().await?;
        drop(change);
        let created = self.find(&username).await?;
        self.record(
            principal,
            EventKind::UserCreate,
            &created,
            serde_json::json!({ "username": created.username, "roles": created.roles }),
        )
        .await?;
        Ok(created)
    }

    /// Changes email, password or roles (`users:update`); audited as `user_update` and, for roles,
    /// `role_change`.
    pub async fn update_user(
        &self,
        principal: &Principal,
        username: &str,
        changes: UserChanges,
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "update", username)
            .await?;
        let row = self.row(username).await?;
        self.check_reach(principal, row.id, &row.username).await?;
        let email = changes.email.as_deref().map(|e| e.trim().to_lowercase());
        if let Some(email) = &email {
            check_email(email).map_err(|m| invalid("email", m))?;
            let taken = user::Entity::find()
                .filter(user::Column::Email.eq(email))
                .filter(user::Column::Id.ne(row.id))
                .one(&self.db)
                .await?;
            if taken.is_some() {
                return Err(IdentityError::Conflict(format!(
                    "the email address {email} is already in use"
                )));
            }
        }
        if let Some(password) = &changes.password {
            self.check_password(
                password,
                &row.username,
                email.as_deref().unwrap_or(&row.email),
            )?;
        }
        self.check_roles(&changes.add_roles).await?;
        self.check_grant(principal, &changes.add_roles, &row.username)
            .await?;
        let hash = match &changes.password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let before = self.find(username).await?;
        // Only an enabled admin counts: taking the role from a disabled one leaves the count as is.
        let takes_admin = !row.disabled
            && before.roles.iter().any(|r| r == grants::ADMIN_ROLE)
            && changes.remove_roles.iter().any(|r| r == grants::ADMIN_ROLE);
        let txn = self.db.begin().await?;
        if takes_admin {
            self.hold_admins(principal, &txn).await?;
        }
        let mut active: user::ActiveModel = row.clone().into();
        if let Some(email) = email.clone() {
            active.email = Set(email);
        }
        if let Some(hash) = hash {
            active.password_hash = Set(Some(hash));
            active.token_version = Set(row.token_version + 1);
        }
        active.updated_at = Set(self.clock.now());
        active.update(&txn).await?;
        for name in dedup(&changes.add_roles) {
            if !before.roles.contains(&name) {
                user_role::ActiveModel {
                    user_id: Set(row.id),
                    role_name: Set(name),
                }
                .insert(&txn)
                .await?;
            }
        }
        if !changes.remove_roles.is_empty() {
            user_role::Entity::delete_many()
                .filter(user_role::Column::UserId.eq(row.id))
                .filter(user_role::Column::RoleName.is_in(changes.remove_roles.clone()))
                .exec(&txn)
                .await?;
        }
        if takes_admin {
            self.keep_an_admin(principal, &txn).await?;
        }
        let change = self.generation.change();
        txn.commit().await?;
        drop(change);
        let after = self.find(username).await?;
        let changed: Vec<&str> = [
            ("email", email.is_some()),
            ("password", changes.password.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.then_some(k))
        .collect();
        if !changed.is_empty() {
            self.record(
                principal,
                EventKind::UserUpdate,
                &after,
                serde_json::json!({ "changed": changed }),
            )
            .await?;
        }
        if before.roles != after.roles {
            self.record(
                principal,
                EventKind::RoleChange,
                &after,
                serde_json::json!({ "from": before.roles, "to": after.roles }),
            )
            .await?;
        }
        Ok(after)
    }

    /// Disables or re-enables an account (`users:update`); audited as `user_disable`/`user_enable`.
    /// Disabling also bumps the token version, so every token issued before stops working.
    pub async fn set_disabled(
        &self,
        principal: &Principal,
        username: &str,
        disabled: bool,
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "update", username)
            .await?;
        let row = self.row(username).await?;
        self.check_reach(principal, row.id, &row.username).await?;
        let takes_admin = disabled && !row.disabled && self.is_admin(&self.db, row.id).await?;
        let version = row.token_version;
        let mut active: user::ActiveModel = row.into();
        active.disabled = Set(disabled);
        if disabled {
            active.token_version = Set(version + 1);
        }
        active.updated_at = Set(self.clock.now());
        let txn = self.db.begin().await?;
        if takes_admin {
            self.hold_admins(principal, &txn).await?;
        }
        let row = active.update(&txn).await?;
        if takes_admin {
            self.keep_an_admin(principal, &txn).await?;
        }
        let change = self.generation.change();
        txn.commit().await?;
        drop(change);
        if disabled {
            self.end_sessions_of(row.id).await?;
        }
        let user = self.find(username).await?;
        let kind = if disabled {
            EventKind::UserDisable
        } else {
            EventKind::UserEnable
        };
        self.record(
            principal,
            kind,
            &user,
            serde_json::json!({ "username": user.username }),
        )
        .await?;
        Ok(user)
    }

    /// Every user, by username (`users:read`).
    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<User>, IdentityError> {
        self.authorize(principal, "users", "read", "*").await?;
        let rows = user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?;
        let links = user_role::Entity::find()
            .order_by_asc(user_role::Column::RoleName)
            .all(&self.db)
            .await?;
        let mut roles: BTreeMap<uuid::Uuid, Vec<String>> = BTreeMap::new();
        for link in links {
            roles.entry(link.user_id).or_default().push(link.role_name);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let roles = roles.remove(&r.id).unwrap_or_default();
                to_user(r, roles)
            })
            .collect())
    }

    /// One user by id (`users:read`).
    pub async fn get_user(&self, principal: &Principal, id: &str) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "read", id).await?;
        self.user_by_id(id).await
    }

    /// One user by id, for a service that has authorized its caller already.
    async fn user_by_id(&self, id: &str) -> Result<User, IdentityError> {
        let uuid =
            uuid::Uuid::parse_str(id).map_err(|_| IdentityError::UnknownUser(id.to_string()))?;
        let row = user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::UnknownUser(id.to_string()))?;
        self.find(&row.username).await
    }

    /// Every role with its permissions (`users:read`).
    pub async fn list_roles(&self, principal: &Principal) -> Result<Vec<Role>, IdentityError> {
        self.authorize(principal, "users", "read", "roles").await?;
        let rows = role::Entity::find()
            .order_by_asc(role::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(roles::to_role).collect())
    }

    /// Deletes an account (`users:delete`), its role links, refresh tokens and sessions; audited as
    /// `user_delete`. Nobody deletes their own account this way.
    pub async fn delete_user(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "delete", id).await?;
        let uuid =
            uuid::Uuid::parse_str(id).map_err(|_| IdentityError::UnknownUser(id.to_string()))?;
        let row = user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::UnknownUser(id.to_string()))?;
        if principal.id() == Some(id) {
            return Err(IdentityError::Conflict(
                "you cannot delete your own account".into(),
            ));
        }
        self.check_reach(principal, uuid, &row.username).await?;
        let gone = self.find(&row.username).await?;
        let takes_admin = !gone.disabled && gone.roles.iter().any(|r| r == grants::ADMIN_ROLE);
        let txn = self.db.begin().await?;
        if takes_admin {
            self.hold_admins(principal, &txn).await?;
        }
        user_role::Entity::delete_many()
            .filter(user_role::Column::UserId.eq(uuid))
            .exec(&txn)
            .await?;
        entities::refresh_token::Entity::delete_many()
            .filter(entities::refresh_token::Column::UserId.eq(uuid))
            .exec(&txn)
            .await?;
        entities::session::Entity::delete_many()
            .filter(entities::session::Column::UserId.eq(uuid))
            .exec(&txn)
            .await?;
        user::Entity::delete_by_id(uuid).exec(&txn).await?;
        if takes_admin {
            self.keep_an_admin(principal, &txn).await?;
        }
        let change = self.generation.change();
        txn.commit().await?;
        drop(change);
        self.record(
            principal,
            EventKind::UserDelete,
            &gone,
            serde_json::json!({ "username": gone.username }),
        )
        .await?;
        Ok(gone)
    }

    /// Changes the principal's own password after checking the current one (no permission needed
    /// beyond being signed in). Every other session and token of the user ends; the returned
    /// [`sessions::SessionUser`] lets the caller keep the current session.
    pub async fn change_own_password(
        &self,
        principal: &Principal,
        current: &SecretString,
        new: SecretString,
    ) -> Result<sessions::SessionUser, IdentityError> {
        let Some(id) = principal.id() else {
            return Err(IdentityError::Forbidden("a user account".into()));
        };
        let uuid =
            uuid::Uuid::parse_str(id).map_err(|_| IdentityError::UnknownUser(id.to_string()))?;
        let row = user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::UnknownUser(id.to_string()))?;
        if !self
            .hasher
            .verify(current, row.password_hash.clone())
            .await?
        {
            return Err(invalid("current_password", "is not your current password"));
        }
        self.check_password(&new, &row.username, &row.email)?;
        let hash = self.hasher.hash(&new).await?;
        let version = row.token_version + 1;
        let mut active: user::ActiveModel = row.clone().into();
        active.password_hash = Set(Some(hash));
        active.token_version = Set(version);
        active.updated_at = Set(self.clock.now());
        let change = self.generation.change();
        active.update(&self.db).await?;
        drop(change);
        self.end_sessions_of(uuid).await?;
        let user = self.find(&row.username).await?;
        self.record(
            principal,
            EventKind::UserUpdate,
            &user,
            serde_json::json!({ "changed": ["password"], "by": "self" }),
        )
        .await?;
        Ok(sessions::SessionUser {
            user_id: id.to_string(),
            version,
            signed_in_at: self.clock.now(),
        })
    }

    /// One page of users whose name or email contains `query` (`users:read`), and the total.
    pub async fn search_users(
        &self,
        principal: &Principal,
        query: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<User>, u64), IdentityError> {
        use sea_orm::{PaginatorTrait, QuerySelect, sea_query::ExprTrait};
        self.authorize(principal, "users", "read", "*").await?;
        // Usernames and emails are stored lower-case, so a lower-cased needle matches case-insensitively.
        let needle = query.trim().to_lowercase();
        let mut find = user::Entity::find();
        if !needle.is_empty() {
            let escaped = needle
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\');
            find = find.filter(
                sea_orm::Condition::any()
                    .add(
                        sea_orm::sea_query::Expr::col(user::Column::Username).like(pattern.clone()),
                    )
                    .add(sea_orm::sea_query::Expr::col(user::Column::Email).like(pattern)),
            );
        }
        let total = find.clone().count(&self.db).await?;
        let rows = find
            .order_by_asc(user::Column::Username)
            .offset(offset)
            .limit(limit.clamp(1, 200))
            .all(&self.db)
            .await?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let links = user_role::Entity::find()
            .filter(user_role::Column::UserId.is_in(ids))
            .order_by_asc(user_role::Column::RoleName)
            .all(&self.db)
            .await?;
        let mut roles: BTreeMap<uuid::Uuid, Vec<String>> = BTreeMap::new();
        for link in links {
            roles.entry(link.user_id).or_default().push(link.role_name);
        }
        let users = rows
            .into_iter()
            .map(|r| {
                let roles = roles.remove(&r.id).unwrap_or_default();
                to_user(r, roles)
            })
            .collect();
        Ok((users, total))
    }

    /// How many accounts exist (no permission: used to decide whether set-up is needed).
    pub async fn user_count(&self) -> Result<u64, sea_orm::DbErr> {
        use sea_orm::PaginatorTrait;
        user::Entity::find().count(&self.db).await
    }

    /// The account row by username (case-insensitive), if any.
    async fn find_row(&self, username: &str) -> Result<Option<user::Model>, sea_orm::DbErr> {
        let name = username.trim().to_lowercase();
        user::Entity::find()
            .filter(user::Column::Username.eq(name))
            .one(&self.db)
            .await
    }

    async fn row(&self, username: &str) -> Result<user::Model, IdentityError> {
        self.find_row(username)
            .await?
            .ok_or_else(|| IdentityError::UnknownUser(username.trim().to_lowercase()))
    }

    /// Applies `changes` and, when given, the disabled flag to the user with this id
    /// (`users:update`); each part is audited as by [`Self::update_user`] and [`Self::set_disabled`].
    pub async fn update_user_by_id(
        &self,
        principal: &Principal,
        id: &str,
        changes: UserChanges,
        disabled: Option<bool>,
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "update", id).await?;
        let uuid =
            uuid::Uuid::parse_str(id).map_err(|_| IdentityError::UnknownUser(id.to_string()))?;
        let row = user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::UnknownUser(id.to_string()))?;
        let has_changes = changes.email.is_some()
            || changes.password.is_some()
            || !changes.add_roles.is_empty()
            || !changes.remove_roles.is_empty();
        let mut user = if has_changes {
            self.update_user(principal, &row.username, changes).await?
        } else {
            self.find(&row.username).await?
        };
        if let Some(disabled) = disabled.filter(|d| *d != user.disabled) {
            user = self
                .set_disabled(principal, &row.username, disabled)
                .await?;
        }
        Ok(user)
    }

    /// Sets the roles of the user with this id to exactly `roles` (`users:update`); the roles added
    /// and removed are audited as by [`Self::update_user`]. At least one role is required.
    pub async fn set_roles(
        &self,
        principal: &Principal,
        id: &str,
        roles: &[String],
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "update", id).await?;
        if roles.is_empty() {
            return Err(invalid("roles", "give at least one role"));
        }
        let current = self.user_by_id(id).await?;
        let changes = UserChanges {
            add_roles: roles
                .iter()
                .filter(|r| !current.roles.contains(r))
                .cloned()
                .collect(),
            remove_roles: current
                .roles
                .iter()
                .filter(|r| !roles.contains(r))
                .cloned()
                .collect(),
            ..UserChanges::default()
        };
        self.update_user_by_id(principal, id, changes, None).await
    }

    async fn find(&self, username: &str) -> Result<User, IdentityError> {
        let row = self.row(username).await?;
        let roles = user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(row.id))
            .order_by_asc(user_role::Column::RoleName)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| l.role_name)
            .collect();
        Ok(to_user(row, roles))
    }
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

fn to_user(r: user::Model, roles: Vec<String>) -> User {
    User {
        id: r.id.to_string(),
        username: r.username,
        email: r.email,
        roles,
        disabled: r.disabled,
        created_at: r.created_at,
        last_login_at: r.last_login_at,
    }
}
