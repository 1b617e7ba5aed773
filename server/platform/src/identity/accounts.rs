//! Creating and changing accounts: email, password and roles (`users:create`, `users:update`).

use std::collections::BTreeMap;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};

use super::{
    Identity, IdentityError, NewUser, User, UserChanges, check_email, check_username, dedup,
    entities::{role, user, user_role},
    error::invalid,
    grants, password,
};
use crate::{access::Principal, audit::EventKind};

impl Identity {
    pub(super) async fn check_roles(&self, roles: &[String]) -> Result<(), IdentityError> {
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

    pub(super) fn check_password(
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
        let txn = self.writes.begin().await?;
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
        .insert(&*txn)
        .await?;
        for role_name in dedup(&new.roles) {
            user_role::ActiveModel {
                user_id: Set(id),
                role_name: Set(role_name),
            }
            .insert(&*txn)
            .await?;
        }
        txn.commit().await?;
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
        let txn = self.writes.begin().await?;
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
        active.update(&*txn).await?;
        for name in dedup(&changes.add_roles) {
            if !before.roles.contains(&name) {
                user_role::ActiveModel {
                    user_id: Set(row.id),
                    role_name: Set(name),
                }
                .insert(&*txn)
                .await?;
            }
        }
        if !changes.remove_roles.is_empty() {
            user_role::Entity::delete_many()
                .filter(user_role::Column::UserId.eq(row.id))
                .filter(user_role::Column::RoleName.is_in(changes.remove_roles.clone()))
                .exec(&*txn)
                .await?;
        }
        if takes_admin {
            self.keep_an_admin(principal, &txn).await?;
        }
        txn.commit().await?;
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
        let row = self.row_by_id(id).await?;
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
}
