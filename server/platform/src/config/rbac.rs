//! `rbac.yml`: roles with `resource:action` permissions, and the resource ownership rules.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Problems;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacFile {
    pub roles: BTreeMap<String, RoleDef>,
    pub resources: BTreeMap<String, ResourcePolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResourcePolicy {
    pub ownership: bool,
    pub sharing: bool,
}

/// Resources a permission may name.
pub const PERMISSION_RESOURCES: &[&str] = &[
    "modules",
    "users",
    "roles",
    "system",
    "scheduler",
    "metrics",
    "snapshots",
    "audit",
    "security",
    "compliance",
];
/// Resources whose rows have owners (the `resources` section).
pub const OWNED_RESOURCES: &[&str] = &["modules", "tasks", "snapshots"];

/// Checks the `resource:action` shape of a permission; `resource:*` is the wildcard.
pub fn check_permission(permission: &str) -> Result<(), String> {
    let Some((resource, action)) = permission.split_once(':') else {
        return Err(format!(
            "\"{permission}\" is not of the form resource:action"
        ));
    };
    if !PERMISSION_RESOURCES.contains(&resource) {
        return Err(format!(
            "\"{permission}\" names unknown resource \"{resource}\" (known: {})",
            PERMISSION_RESOURCES.join(", ")
        ));
    }
    let valid_action = action == "*"
        || (!action.is_empty() && action.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    if !valid_action {
        return Err(format!(
            "\"{permission}\" has an invalid action \"{action}\" (lowercase letters, or *)"
        ));
    }
    Ok(())
}

impl RbacFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        for (name, role) in &self.roles {
            let valid_name = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_name {
                p.push(
                    format!("roles.{name}"),
                    "role names use lowercase letters, digits, - and _",
                );
            }
            for (i, permission) in role.permissions.iter().enumerate() {
                if let Err(reason) = check_permission(permission) {
                    p.push(format!("roles.{name}.permissions[{i}]"), reason);
                }
            }
        }
        for name in self.resources.keys() {
            if !OWNED_RESOURCES.contains(&name.as_str()) {
                p.push(
                    format!("resources.{name}"),
                    format!("unknown resource (known: {})", OWNED_RESOURCES.join(", ")),
                );
            }
        }
    }
}
