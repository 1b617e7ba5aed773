//! The changes that end an account's sessions and tokens: disabling, deleting, and a user changing
//! their own password.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;

use super::{
    Identity, IdentityError, User, entities,
    entities::{user, user_role},
    error::invalid,
    grants, sessions,
};
use crate::{access::Principal, audit::EventKind};

impl Identity {
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
        let txn = self.writes.begin().await?;
        if takes_admin {
            self.hold_admins(principal, &txn).await?;
        }
        let row = active.update(&*txn).await?;
        if takes_admin {
            self.keep_an_admin(principal, &txn).await?;
        }
        txn.commit().await?;
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

    /// Deletes an account (`users:delete`), its role links, refresh tokens and sessions; audited as
    /// `user_delete`. Nobody deletes their own account this way.
    pub async fn delete_user(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "delete", id).await?;
        let row = self.row_by_id(id).await?;
        let uuid = row.id;
        if principal.id() == Some(id) {
            return Err(IdentityError::Conflict(
                "you cannot delete your own account".into(),
            ));
        }
        self.check_reach(principal, uuid, &row.username).await?;
        let gone = self.find(&row.username).await?;
        let takes_admin = !gone.disabled && gone.roles.iter().any(|r| r == grants::ADMIN_ROLE);
        let txn = self.writes.begin().await?;
        if takes_admin {
            self.hold_admins(principal, &txn).await?;
        }
        user_role::Entity::delete_many()
            .filter(user_role::Column::UserId.eq(uuid))
            .exec(&*txn)
            .await?;
        entities::refresh_token::Entity::delete_many()
            .filter(entities::refresh_token::Column::UserId.eq(uuid))
            .exec(&*txn)
            .await?;
        entities::session::Entity::delete_many()
            .filter(entities::session::Column::UserId.eq(uuid))
            .exec(&*txn)
            .await?;
        user::Entity::delete_by_id(uuid).exec(&*txn).await?;
        if takes_admin {
            self.keep_an_admin(principal, &txn).await?;
        }
        txn.commit().await?;
        self.record(
            principal,
            EventKind::UserDelete,
            &gone,
            serde_json::json!({ "username": gone.username }),
        )
        .await?;
        Ok(gone)
    }

    /// Checks the principal's own password again before an irreversible request (erasure).
    /// A wrong password is refused like a wrong current password, and recorded as a
    /// `login_failure` with the reason.
    pub async fn confirm_own_password(
        &self,
        principal: &Principal,
        password: &SecretString,
    ) -> Result<(), IdentityError> {
        let Some(id) = principal.id() else {
            return Err(IdentityError::Forbidden("a user account".into()));
        };
        let row = self.row_by_id(id).await?;
        if row.password_hash.is_none() {
            return Err(invalid(
                "password",
                "this account signs in without a password here; ask an administrator to erase it",
            ));
        }
        if !self
            .hasher
            .verify(password, row.password_hash.clone())
            .await?
        {
            let event = crate::audit::AuditEvent::new(
                EventKind::LoginFailure,
                principal.actor(),
                crate::audit::Outcome::Failure,
            )
            .with_target("user", id)
            .with_details(serde_json::json!({ "reason": "wrong password when confirming an erasure request" }));
            self.audit.record(event).await?;
            return Err(invalid("password", "is not your password"));
        }
        Ok(())
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
        let row = self.row_by_id(id).await?;
        let uuid = row.id;
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
        let txn = self.writes.begin().await?;
        active.update(&*txn).await?;
        txn.commit().await?;
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
            must_enrol: false,
        })
    }
}
