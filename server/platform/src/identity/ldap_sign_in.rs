//! Password sign-in through the LDAP directory: which accounts it decides for, and creating or
//! updating the account of whoever it lets in.
//!
//! **Order of password providers.** An account with a local password is checked locally, and only
//! there: a directory entry of the same name cannot take it over. An account made by the directory
//! (no local password, linked to an `ldap` identity) is checked against the directory only. A name
//! with no account here is tried against the directory (when enabled): the entry it finds gets an
//! account named after it, with its `mail`, linked as the identity (`ldap`, entry DN).
//!
//! **Roles** come from the entry's groups through `group_roles` (by `cn` or DN), or are
//! `default_role` when none is mapped (`none` refuses the person); they are set again at every
//! sign-in, so removing someone from a directory group takes the role away at their next sign-in.
//!
//! A directory that cannot be reached fails that sign-in with a clear 503 and a `login_failure`
//! (reason `directory_unavailable`); local accounts keep signing in.

use std::collections::BTreeSet;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;

use super::{
    Identity, IdentityError,
    auth::{AuthError, Client},
    entities::{federated_identity, role, user, user_role},
    ldap::{DirectoryEntry, DirectoryError, LDAP, LdapClient},
};
use crate::audit::{Actor, AuditEvent, EventKind, Outcome};

impl Identity {
    /// Whether the directory decides a password sign-in for this account (see the module doc).
    pub(super) async fn directory_managed(
        &self,
        row: Option<&user::Model>,
    ) -> Result<bool, AuthError> {
        match row {
            None => Ok(true),
            Some(r) if r.password_hash.is_some() => Ok(false),
            Some(r) => Ok(federated_identity::Entity::find()
                .filter(federated_identity::Column::UserId.eq(r.id))
                .filter(federated_identity::Column::Provider.eq(LDAP))
                .one(&self.db)
                .await?
                .is_some()),
        }
    }

    /// Signs in through the directory; creates or updates the account.
    pub(super) async fn directory_sign_in(
        &self,
        ldap: &LdapClient,
        name: &str,
        password: &SecretString,
        row: Option<user::Model>,
        client: &Client,
        method: &str,
    ) -> Result<user::Model, AuthError> {
        let short: String = name.chars().take(64).collect();
        let refuse = |reason: &'static str, id: Option<String>| async move {
            let actor = Actor {
                id,
                name: short.clone(),
            };
            let details =
                serde_json::json!({ "reason": reason, "method": method, "provider": LDAP });
            self.audit_auth(
                EventKind::LoginFailure,
                Outcome::Failure,
                actor,
                client,
                details,
            )
            .await
        };
        let row_id = row.as_ref().map(|r| r.id.to_string());
        let entry = match ldap.authenticate(name, password).await {
            Ok(entry) => entry,
            Err(DirectoryError::InvalidCredentials) => {
                refuse("wrong password or unknown user", row_id).await?;
                return Err(AuthError::InvalidCredentials);
            }
            Err(DirectoryError::Unavailable(why)) => {
                tracing::error!(provider = LDAP, error = %why, "LDAP sign-in failed: the directory is unavailable");
                refuse("directory_unavailable", row_id).await?;
                return Err(AuthError::ProviderUnavailable("LDAP"));
            }
        };
        let Some(roles) = self.directory_roles(&entry) else {
            refuse("no role for the entry's groups", row_id).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let row = match row {
            Some(existing) => {
                let linked = federated_identity::Entity::find()
                    .filter(federated_identity::Column::UserId.eq(existing.id))
                    .filter(federated_identity::Column::Provider.eq(LDAP))
                    .one(&self.db)
                    .await?;
                if linked.is_none_or(|l| l.subject != entry.dn) {
                    refuse("the account belongs to another directory entry", row_id).await?;
                    return Err(AuthError::InvalidCredentials);
                }
                self.update_directory_account(existing, &entry, &roles)
                    .await?
            }
            None => match self.create_directory_account(name, &entry, &roles).await? {
                Ok(created) => created,
                Err(reason) => {
                    refuse(reason, None).await?;
                    return Err(AuthError::InvalidCredentials);
                }
            },
        };
        if row.disabled {
            refuse("account disabled", Some(row.id.to_string())).await?;
            return Err(AuthError::InvalidCredentials);
        }
        let mut active: user::ActiveModel = row.clone().into();
        active.last_login_at = Set(Some(self.clock.now()));
        let row = active.update(&self.db).await?;
        let actor = Actor::user(row.id.to_string(), row.username.clone());
        let details = serde_json::json!({ "method": method, "provider": LDAP });
        self.audit_auth(
            EventKind::LoginSuccess,
            Outcome::Success,
            actor,
            client,
            details,
        )
        .await?;
        Ok(row)
    }

    /// The roles `group_roles` gives the entry, or `default_role`; `None` when that is `none`.
    fn directory_roles(&self, entry: &DirectoryEntry) -> Option<Vec<String>> {
        let config = self.config.security.ldap()?;
        let mut roles = BTreeSet::new();
        for (group, role) in &config.group_roles {
            if entry.groups.iter().any(|g| g == &group.to_lowercase()) {
                roles.insert(role.clone());
            }
        }
        if roles.is_empty() {
            if config.default_role == "none" {
                return None;
            }
            roles.insert(config.default_role.clone());
        }
        Some(roles.into_iter().collect())
    }

    /// Roles that exist here, of `wanted` (a mapping to a missing role is logged and skipped).
    async fn existing_roles(&self, wanted: &[String]) -> Result<Vec<String>, AuthError> {
        let mut out = Vec::new();
        for name in wanted {
            if role::Entity::find_by_id(name.clone())
                .one(&self.db)
                .await?
                .is_some()
            {
                out.push(name.clone());
            } else {
                tracing::error!(role = %name, "security.yml: the LDAP provider maps to a role that does not exist; skipped");
            }
        }
        Ok(out)
    }

    /// A new account for a directory entry; `Err(reason)` when one cannot be made.
    async fn create_directory_account(
        &self,
        name: &str,
        entry: &DirectoryEntry,
        roles: &[String],
    ) -> Result<Result<user::Model, &'static str>, AuthError> {
        if super::check_username(name).is_err() {
            return Ok(Err("the directory name is not a valid username here"));
        }
        let Some(email) = entry
            .email
            .clone()
            .filter(|e| super::check_email(e).is_ok())
        else {
            return Ok(Err("the directory entry has no usable mail attribute"));
        };
        if user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Ok(Err("the entry's mail is another account's email"));
        }
        let roles = self.existing_roles(roles).await?;
        if roles.is_empty() {
            return Ok(Err("no role for the entry's groups"));
        }
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7();
        let txn = self.writes.begin().await.map_err(IdentityError::from)?;
        let row = user::ActiveModel {
            id: Set(id),
            username: Set(name.to_string()),
            email: Set(email.clone()),
            password_hash: Set(None),
            disabled: Set(false),
            token_version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(None),
        }
        .insert(&*txn)
        .await?;
        for role_name in &roles {
            user_role::ActiveModel {
                user_id: Set(id),
                role_name: Set(role_name.clone()),
            }
            .insert(&*txn)
            .await?;
        }
        federated_identity::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(id),
            provider: Set(LDAP.to_string()),
            subject: Set(entry.dn.clone()),
            email: Set(Some(email.clone())),
            created_at: Set(now),
            last_login_at: Set(Some(now)),
        }
        .insert(&*txn)
        .await?;
        txn.commit().await.map_err(IdentityError::from)?;
        let actor = Actor::user(id.to_string(), name.to_string());
        for (kind, details) in [
            (
                EventKind::UserCreate,
                serde_json::json!({ "username": name, "roles": roles, "provider": LDAP }),
            ),
            (
                EventKind::IdentityLink,
                serde_json::json!({ "username": name, "provider": LDAP, "email": email }),
            ),
        ] {
            let event = AuditEvent::new(kind, actor.clone(), Outcome::Success)
                .with_target("user", id.to_string())
                .with_details(details);
            self.audit
                .record(event)
                .await
                .map_err(IdentityError::from)?;
        }
        Ok(Ok(row))
    }

    /// Sets a directory account's roles (and email) to what the directory says now.
    async fn update_directory_account(
        &self,
        row: user::Model,
        entry: &DirectoryEntry,
        roles: &[String],
    ) -> Result<user::Model, AuthError> {
        let wanted: BTreeSet<String> = self.existing_roles(roles).await?.into_iter().collect();
        let held: BTreeSet<String> = user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(row.id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.role_name)
            .collect();
        if wanted == held {
            return Ok(row);
        }
        let txn = self.writes.begin().await.map_err(IdentityError::from)?;
        user_role::Entity::delete_many()
            .filter(user_role::Column::UserId.eq(row.id))
            .exec(&*txn)
            .await?;
        for role_name in &wanted {
            user_role::ActiveModel {
                user_id: Set(row.id),
                role_name: Set(role_name.clone()),
            }
            .insert(&*txn)
            .await?;
        }
        txn.commit().await.map_err(IdentityError::from)?;
        let event = AuditEvent::new(EventKind::RoleChange, Actor::system(), Outcome::Success)
            .with_target("user", row.id.to_string())
            .with_details(serde_json::json!({
                "username": row.username,
                "provider": LDAP,
                "dn": entry.dn,
                "from": held,
                "to": wanted,
            }));
        self.audit
            .record(event)
            .await
            .map_err(IdentityError::from)?;
        Ok(row)
    }
}
