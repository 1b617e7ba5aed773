//! Server functions of the Roles dashboard.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// A role, its permissions and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
    pub holders: Vec<String>,
}

/// Permissions typed one per line (or separated by commas or spaces).
#[cfg(feature = "ssr")]
fn parse_permissions(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every role.
#[server(endpoint = "roles/list", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_roles() -> Result<Vec<RoleView>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let roles = platform.identity().roles_with_holders(&principal).await?;
    Ok(roles
        .into_iter()
        .map(|r| RoleView {
            name: r.role.name,
            description: r.role.description,
            builtin: r.role.builtin,
            permissions: r.role.permissions,
            holders: r.holders,
        })
        .collect())
}

/// Creates a custom role.
#[server(endpoint = "roles/create")]
pub async fn create_role(
    name: String,
    #[server(default)] description: String,
    permissions: String,
) -> Result<(), AppError> {
    use platform::identity::roles::NewRole;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let new = NewRole {
        name,
        description,
        permissions: parse_permissions(&permissions),
    };
    let role = platform.identity().create_role(&principal, new).await?;
    leptos_axum::redirect(&format!("/roles#role-{}", role.name));
    Ok(())
}

/// Replaces a custom role's description and permissions.
#[server(endpoint = "roles/update")]
pub async fn update_role(
    name: String,
    #[server(default)] description: String,
    permissions: String,
) -> Result<(), AppError> {
    use platform::identity::roles::RoleChanges;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let changes = RoleChanges {
        description: Some(description),
        permissions: Some(parse_permissions(&permissions)),
    };
    platform
        .identity()
        .update_role(&principal, &name, changes)
        .await?;
    leptos_axum::redirect(&format!("/roles#role-{name}"));
    Ok(())
}
