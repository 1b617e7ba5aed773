//! Nobody grants more than they hold: the rules every change to accounts and roles passes, whichever
//! entry point it comes from (REST, dashboard, set-up link; the CLI acts as the system principal).
//!
//! - A caller grants roles and permissions only within their own effective permissions
//!   (`modules:*` covers `modules:read`; only `modules:*` covers `modules:*`).
//! - A caller changes an account (email, password, roles, disabled, deletion) or a role only when
//!   everything it holds is within the caller's permissions: a helpdesk role cannot reset an
//!   admin's password.
//! - No user leaves the platform without an enabled holder of [`ADMIN_ROLE`]: removing that role
//!   from, disabling or deleting its last enabled holder is refused. The system principal (the
//!   operator at the CLI) may, as it can always make a new administrator.
//!
//! Each refusal is a [`IdentityError::Forbidden`] with a `permission_denied` audit event, or
//! [`IdentityError::LastAdmin`].

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};

use super::{
    Identity, IdentityError,
    entities::{role, user, user_role},
};
use crate::access::{Permission, Principal};

/// The role whose last enabled holder cannot be removed by a user.
pub const ADMIN_ROLE: &str = "admin";

/// The permissions a role row grants (entries that do not parse grant nothing, as at sign-in).
fn granted(row: &role::Model) -> Vec<Permission> {
    serde_json::from_value::<Vec<String>>(row.permissions.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect()
}

impl Identity {
    /// Records a `permission_denied` event and returns the refusal naming `permission`.
    pub(super) async fn deny(
        &self,
        principal: &Principal,
        permission: String,
        target: &str,
        reason: &str,
    ) -> IdentityError {
        principal
            .deny(&self.audit, &permission, target, Some(reason))
            .await
            .into()
    }

    /// Refuses unless the principal holds every one of `permissions`.
    pub(super) async fn require_all(
        &self,
        principal: &Principal,
        permissions: &[Permission],
        target: &str,
        reason: &str,
    ) -> Result<(), IdentityError> {
        match principal.lacks(permissions) {
            None => Ok(()),
            Some(missing) => Err(self
                .deny(principal, missing.to_string(), target, reason)
                .await),
        }
    }

    /// The permissions the named roles grant together (unknown names grant nothing).
    async fn permissions_of_roles(
        &self,
        roles: &[String],
    ) -> Result<Vec<Permission>, IdentityError> {
        if roles.is_empty() {
            return Ok(Vec::new());
        }
        let rows = role::Entity::find()
            .filter(role::Column::Name.is_in(roles.iter().cloned()))
            .all(&self.db)
            .await?;
        Ok(rows.iter().flat_map(granted).collect())
    }

    /// Refuses giving `roles` to `target` unless the principal holds all they grant.
    pub(super) async fn check_grant(
        &self,
        principal: &Principal,
        roles: &[String],
        target: &str,
    ) -> Result<(), IdentityError> {
        if matches!(principal, Principal::System) || roles.is_empty() {
            return Ok(());
        }
        let permissions = self.permissions_of_roles(roles).await?;
        self.require_all(
            principal,
            &permissions,
            target,
            "grants more than the caller holds",
        )
        .await
    }

    /// Refuses changing the account `id` unless the principal holds everything its roles grant.
    pub(super) async fn check_reach(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        target: &str,
    ) -> Result<(), IdentityError> {
        if matches!(principal, Principal::System) {
            return Ok(());
        }
        let roles: Vec<String> = user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| l.role_name)
            .collect();
        let permissions = self.permissions_of_roles(&roles).await?;
        self.require_all(
            principal,
            &permissions,
            target,
            "the account holds permissions the caller lacks",
        )
        .await
    }

    /// Refuses changing a role that grants something the principal lacks.
    pub(super) async fn check_role_reach(
        &self,
        principal: &Principal,
        row: &role::Model,
    ) -> Result<(), IdentityError> {
        let target = format!("role:{}", row.name);
        self.require_all(
            principal,
            &granted(row),
            &target,
            "the role grants permissions the caller lacks",
        )
        .await
    }

    /// Whether the account `id` holds [`ADMIN_ROLE`].
    pub(super) async fn is_admin(
        &self,
        db: &impl ConnectionTrait,
        id: uuid::Uuid,
    ) -> Result<bool, IdentityError> {
        Ok(user_role::Entity::find_by_id((id, ADMIN_ROLE.to_string()))
            .one(db)
            .await?
            .is_some())
    }

    /// First statement of a transaction that may take away an administrator: on PostgreSQL it
    /// locks the admin role's row, so two such transactions take turns and the second counts what
    /// the first left. (SQLite runs one writer at a time already; a read first would only make its
    /// later write fail, so nothing is done there.)
    pub(super) async fn hold_admins(
        &self,
        principal: &Principal,
        txn: &DatabaseTransaction,
    ) -> Result<(), IdentityError> {
        if matches!(principal, Principal::System)
            || txn.get_database_backend() != DatabaseBackend::Postgres
        {
            return Ok(());
        }
        role::Entity::find_by_id(ADMIN_ROLE.to_string())
            .lock_exclusive()
            .one(txn)
            .await?;
        Ok(())
    }

    /// After the writes of `txn`: refuses (the caller drops `txn`, rolling back) when no enabled
    /// account holds [`ADMIN_ROLE`] any more. Only users are held to this.
    pub(super) async fn keep_an_admin(
        &self,
        principal: &Principal,
        txn: &DatabaseTransaction,
    ) -> Result<(), IdentityError> {
        if matches!(principal, Principal::System) {
            return Ok(());
        }
        let holders: Vec<uuid::Uuid> = user_role::Entity::find()
            .filter(user_role::Column::RoleName.eq(ADMIN_ROLE))
            .all(txn)
            .await?
            .into_iter()
            .map(|l| l.user_id)
            .collect();
        let enabled = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.is_in(holders))
            .filter(user::Column::Disabled.eq(false))
            .limit(1)
            .into_tuple::<uuid::Uuid>()
            .one(txn)
            .await?;
        match enabled {
            Some(_) => Ok(()),
            None => Err(IdentityError::LastAdmin),
        }
    }
}
