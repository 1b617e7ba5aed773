//! Access control: `resource:action` permissions with `resource:*` wildcards, the principal that
//! acts, and the ownership and sharing rules of rbac.yml's `resources` section.

use std::{collections::BTreeSet, fmt, str::FromStr};

use crate::config::rbac::{self, ResourcePolicy};

/// One permission, `resource:action`; the action `*` grants every action on the resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    resource: String,
    action: String,
}

impl Permission {
    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    /// Whether this permission allows `action` on `resource`.
    pub fn grants(&self, resource: &str, action: &str) -> bool {
        self.resource == resource && (self.action == "*" || self.action == action)
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        rbac::check_permission(s)?;
        let (resource, action) = s
            .split_once(':')
            .ok_or_else(|| format!("\"{s}\" is not of the form resource:action"))?;
        Ok(Self {
            resource: resource.to_string(),
            action: action.to_string(),
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

/// The union of the permissions of a principal's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn allows(&self, resource: &str, action: &str) -> bool {
        self.0.iter().any(|p| p.grants(resource, action))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    /// Whether everything `permission` grants is granted here too: `modules:read` is covered by
    /// `modules:read` or `modules:*`; `modules:*` only by `modules:*`.
    pub fn covers(&self, permission: &Permission) -> bool {
        self.allows(permission.resource(), permission.action())
    }
}

impl PermissionSet {
    /// What both sets grant: `modules:*` here and `modules:read` there give `modules:read`.
    pub fn intersect(&self, other: &Self) -> Self {
        let from_self = self.0.iter().filter(|p| other.covers(p));
        let from_other = other.0.iter().filter(|p| self.covers(p));
        Self(from_self.chain(from_other).cloned().collect())
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Who is acting. The CLI and start-up act as [`Principal::System`], which may do everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    System,
    User {
        id: String,
        username: String,
        roles: Vec<String>,
        permissions: PermissionSet,
    },
}

/// How the caller relates to one owned resource (a module, task or snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Owner,
    SharedWith,
    Other,
}

impl Principal {
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::System => None,
            Self::User { id, .. } => Some(id),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::System => "system",
            Self::User { username, .. } => username,
        }
    }

    /// Whether the principal holds `resource:action` (or `resource:*`).
    pub fn can(&self, resource: &str, action: &str) -> bool {
        match self {
            Self::System => true,
            Self::User { permissions, .. } => permissions.allows(resource, action),
        }
    }

    /// The first of `permissions` the principal does not hold (wildcards understood), or `None`
    /// when it holds them all. The system principal holds everything.
    pub fn lacks<'a>(
        &self,
        permissions: impl IntoIterator<Item = &'a Permission>,
    ) -> Option<&'a Permission> {
        match self {
            Self::System => None,
            Self::User {
                permissions: held, ..
            } => permissions.into_iter().find(|p| !held.covers(p)),
        }
    }

    /// Whether the principal may do `action` on one owned resource. With `ownership` on, a user
    /// reaches their own rows, rows shared with them (only where `sharing` is on), or any row
    /// through the wildcard `resource:*`.
    pub fn can_on(
        &self,
        resource: &str,
        action: &str,
        policy: ResourcePolicy,
        relation: Relation,
    ) -> bool {
        if !self.can(resource, action) {
            return false;
        }
        if matches!(self, Self::System) || !policy.ownership {
            return true;
        }
        match relation {
            Relation::Owner => true,
            Relation::SharedWith if policy.sharing => true,
            _ => self.can(resource, "*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(perms: &[&str]) -> Principal {
        Principal::User {
            id: "u1".into(),
            username: "dev".into(),
            roles: vec!["developer".into()],
            permissions: perms.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_wildcard_grants_every_action_on_its_resource_only() {
        let admin = user(&["modules:*"]);
        assert!(admin.can("modules", "delete"));
        assert!(admin.can("modules", "execute"));
        assert!(!admin.can("users", "read"));
    }

    #[test]
    fn an_exact_permission_grants_only_its_action() {
        let viewer = user(&["modules:read", "metrics:read"]);
        assert!(viewer.can("modules", "read"));
        assert!(!viewer.can("modules", "create"));
        assert!(!viewer.can("metrics", "write"));
    }

    #[test]
    fn a_wildcard_is_covered_only_by_the_same_wildcard() {
        let helpdesk = user(&["users:update", "users:read"]);
        let perms = |list: &[&str]| -> Vec<Permission> {
            list.iter().map(|p| p.parse().unwrap()).collect()
        };
        assert_eq!(helpdesk.lacks(&perms(&["users:update"])), None);
        assert_eq!(
            helpdesk
                .lacks(&perms(&["users:read", "users:*"]))
                .map(ToString::to_string),
            Some("users:*".to_string())
        );
        assert_eq!(
            helpdesk
                .lacks(&perms(&["system:*"]))
                .map(ToString::to_string),
            Some("system:*".to_string())
        );
        let admin = user(&["users:*", "system:*"]);
        assert_eq!(
            admin.lacks(&perms(&["users:*", "users:delete", "system:audit"])),
            None
        );
        assert_eq!(Principal::System.lacks(&perms(&["modules:*"])), None);
    }

    #[test]
    fn malformed_permissions_do_not_parse() {
        assert!("modules".parse::<Permission>().is_err());
        assert!("wizards:read".parse::<Permission>().is_err());
        assert!("modules:Read!".parse::<Permission>().is_err());
        assert_eq!(
            "snapshots:restore"
                .parse::<Permission>()
                .unwrap()
                .to_string(),
            "snapshots:restore"
        );
    }

    #[test]
    fn ownership_limits_a_user_to_their_own_and_shared_rows() {
        let modules = ResourcePolicy {
            ownership: true,
            sharing: true,
        };
        let tasks = ResourcePolicy {
            ownership: true,
            sharing: false,
        };
        let dev = user(&["modules:read", "scheduler:read"]);
        assert!(dev.can_on("modules", "read", modules, Relation::Owner));
        assert!(dev.can_on("modules", "read", modules, Relation::SharedWith));
        assert!(!dev.can_on("modules", "read", modules, Relation::Other));
        assert!(
            !dev.can_on("scheduler", "read", tasks, Relation::SharedWith),
            "tasks cannot be shared"
        );
        assert!(
            !dev.can_on("modules", "delete", modules, Relation::Owner),
            "ownership does not add permissions"
        );
    }

    #[test]
    fn the_resource_wildcard_reaches_everyones_rows() {
        let modules = ResourcePolicy {
            ownership: true,
            sharing: true,
        };
        let admin = user(&["modules:*"]);
        assert!(admin.can_on("modules", "delete", modules, Relation::Other));
        assert!(Principal::System.can_on("modules", "delete", modules, Relation::Other));
    }
}
