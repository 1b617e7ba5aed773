//! Custom roles: admins create roles and edit their permissions; rbac.yml's roles follow the file.
//!
//! Managing roles is user administration: creating one needs `users:create`, editing one
//! `users:update` (admins hold both through `users:*`). A role grants only what its maker holds,
//! and only someone holding all it grants may edit it (see [`super::grants`]).

use std::collections::BTreeMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{
    Identity, IdentityError, Role, dedup,
    entities::{role, user, user_role},
    invalid,
};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    config::rbac::check_permission,
};

/// A role to create.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// Changes to a role; `None` leaves a part as it is. `permissions` replaces the whole list.
#[derive(Debug, Clone, Default)]
pub struct RoleChanges {
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// A role with the usernames that hold it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleWithHolders {
    #[serde(flatten)]
    pub role: Role,
    pub holders: Vec<String>,
}

/// Role names: 2–64 lowercase letters, digits, `-` and `_`, starting with a letter.
pub fn check_role_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be 2–64 lowercase letters, digits, '-' or '_', starting with a letter".into())
    }
}

fn check_permissions(permissions: &[String]) -> Result<Vec<String>, IdentityError> {
    let problems: Vec<String> = permissions
        .iter()
        .filter_map(|p| check_permission(p).err())
        .collect();
    if !problems.is_empty() {
        return Err(IdentityError::Invalid(BTreeMap::from([(
            "permissions".to_string(),
            problems,
        )])));
    }
    if permissions.is_empty() {
        return Err(invalid("permissions", "give at least one permission"));
    }
    Ok(dedup(permissions))
}

pub(super) fn to_role(r: role::Model) -> Role {
    Role {
        permissions: serde_json::from_value(r.permissions).unwrap_or_default(),
        name: r.name,
        description: r.description,
        builtin: r.builtin,
    }
}

impl Identity {
    /// Writes rbac.yml's roles into the database (their permissions follow the file); roles that
    /// already match are left alone, and roles that came from the file but left it are deleted.
    /// Nothing is written (and the access generation stands) when every role matches already.
    pub async fn sync_builtin_roles(&self) -> Result<(), IdentityError> {
        let now = self.clock.now();
        let mut updates = Vec::new();
        let mut inserts = Vec::new();
        for (name, def) in &self.config.rbac.roles {
            let permissions = serde_json::json!(def.permissions);
            match role::Entity::find_by_id(name.clone()).one(&self.db).await? {
                Some(existing) if existing.builtin && existing.permissions == permissions => {}
                Some(existing) => {
                    let mut active: role::ActiveModel = existing.into();
                    active.permissions = Set(permissions);
                    active.builtin = Set(true);
                    active.updated_at = Set(now);
                    updates.push(active);
                }
                None => inserts.push(role::ActiveModel {
                    name: Set(name.clone()),
                    description: Set(format!("The {name} role from rbac.yml")),
                    builtin: Set(true),
                    permissions: Set(permissions),
                    created_at: Set(now),
                    updated_at: Set(now),
                }),
            }
        }
        // A role taken out of rbac.yml grants nothing any more: it and its holders' links go.
        let stale = role::Entity::find()
            .filter(role::Column::Builtin.eq(true))
            .filter(role::Column::Name.is_not_in(self.config.rbac.roles.keys().cloned()))
            .all(&self.db)
            .await?;
        if updates.is_empty() && inserts.is_empty() && stale.is_empty() {
            return Ok(());
        }
        let txn = self.writes.begin().await?;
        for active in updates {
            active.update(&*txn).await?;
        }
        for active in inserts {
            active.insert(&*txn).await?;
        }
        for row in stale {
            user_role::Entity::delete_many()
                .filter(user_role::Column::RoleName.eq(&row.name))
                .exec(&*txn)
                .await?;
            role::Entity::delete_by_id(row.name).exec(&*txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn record_role(
        &self,
        principal: &Principal,
        role: &Role,
        details: serde_json::Value,
    ) -> Result<(), IdentityError> {
        let actor = Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        };
        let event = AuditEvent::new(EventKind::RoleChange, actor, Outcome::Success)
            .with_target("role", role.name.clone())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }

    /// `permissions` checked and without repeats, when the principal holds every one of them
    /// (wildcards understood) and so may put them in the role `name`.
    async fn grantable(
        &self,
        principal: &Principal,
        name: &str,
        permissions: &[String],
    ) -> Result<Vec<String>, IdentityError> {
        let permissions = check_permissions(permissions)?;
        let parsed: Vec<crate::access::Permission> =
            permissions.iter().filter_map(|p| p.parse().ok()).collect();
        let target = format!("role:{name}");
        self.require_all(
            principal,
            &parsed,
            &target,
            "grants more than the caller holds",
        )
        .await?;
        Ok(permissions)
    }

    /// Creates a custom role (`users:create`); audited as `role_change`.
    pub async fn create_role(
        &self,
        principal: &Principal,
        new: NewRole,
    ) -> Result<Role, IdentityError> {
        self.authorize(principal, "users", "create", &format!("role:{}", new.name))
            .await?;
        let name = new.name.trim().to_string();
        check_role_name(&name).map_err(|m| invalid("name", m))?;
        let permissions = self.grantable(principal, &name, &new.permissions).await?;
        if role::Entity::find_by_id(name.clone())
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(IdentityError::Conflict(format!(
                "a role named \"{name}\" already exists"
            )));
        }
        let now = self.clock.now();
        let txn = self.writes.begin().await?;
        let model = role::ActiveModel {
            name: Set(name),
            description: Set(new.description.trim().chars().take(500).collect()),
            builtin: Set(false),
            permissions: Set(serde_json::json!(permissions)),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&*txn)
        .await?;
        txn.commit().await?;
        let created = to_role(model);
        self.record_role(
            principal,
            &created,
            serde_json::json!({ "action": "create", "permissions": created.permissions }),
        )
        .await?;
        Ok(created)
    }

    /// Edits a custom role (`users:update`); rbac.yml's roles are edited in the file. Audited as
    /// `role_change`.
    pub async fn update_role(
        &self,
        principal: &Principal,
        name: &str,
        changes: RoleChanges,
    ) -> Result<Role, IdentityError> {
        self.authorize(principal, "users", "update", &format!("role:{name}"))
            .await?;
        let row = role::Entity::find_by_id(name.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::UnknownRole(name.to_string()))?;
        if row.builtin {
            return Err(IdentityError::Conflict(format!(
                "\"{name}\" comes from rbac.yml; change it there"
            )));
        }
        self.check_role_reach(principal, &row).await?;
        let before = to_role(row.clone());
        let mut active: role::ActiveModel = row.into();
        if let Some(description) = changes.description {
            active.description = Set(description.trim().chars().take(500).collect());
        }
        if let Some(permissions) = changes.permissions {
            let permissions = self.grantable(principal, name, &permissions).await?;
            active.permissions = Set(serde_json::json!(permissions));
        }
        active.updated_at = Set(self.clock.now());
        let txn = self.writes.begin().await?;
        let after = to_role(active.update(&*txn).await?);
        txn.commit().await?;
        let details = serde_json::json!({ "action": "update", "from": before.permissions, "to": after.permissions });
        self.record_role(principal, &after, details).await?;
        Ok(after)
    }

    /// Every role with its permissions and holders (`users:read`).
    pub async fn roles_with_holders(
        &self,
        principal: &Principal,
    ) -> Result<Vec<RoleWithHolders>, IdentityError> {
        self.authorize(principal, "users", "read", "roles").await?;
        let roles = role::Entity::find()
            .order_by_asc(role::Column::Name)
            .all(&self.db)
            .await?;
        let names: BTreeMap<uuid::Uuid, String> = user::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for link in user_role::Entity::find()
            .filter(user_role::Column::RoleName.is_not_null())
            .all(&self.db)
            .await?
        {
            if let Some(name) = names.get(&link.user_id) {
                holders
                    .entry(link.role_name)
                    .or_default()
                    .push(name.clone());
            }
        }
        Ok(roles
            .into_iter()
            .map(|r| {
                let mut held = holders.remove(&r.name).unwrap_or_default();
                held.sort();
                RoleWithHolders {
                    role: to_role(r),
                    holders: held,
                }
            })
            .collect())
    }
}
