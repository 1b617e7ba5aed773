//! Server functions of the Users dashboard.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// A user as the dashboard shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// One page of the user list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    pub users: Vec<UserView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
    /// Every role name, for the role pickers.
    pub roles: Vec<String>,
}

pub const USERS_PER_PAGE: u64 = 25;

#[cfg(feature = "ssr")]
impl From<platform::identity::User> for UserView {
    fn from(u: platform::identity::User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            roles: u.roles,
            disabled: u.disabled,
            created_at: u.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            last_login_at: u
                .last_login_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        }
    }
}

/// Checked role names from a form (`roles[admin]=on`).
#[cfg(feature = "ssr")]
fn checked(roles: BTreeMap<String, String>) -> Vec<String> {
    roles.into_keys().collect()
}

/// Users whose name or email contains `q`, one page at a time (1-based).
#[server(endpoint = "users/list", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_users(
    #[server(default)] q: String,
    #[server(default)] page: u64,
) -> Result<UsersPage, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let page = page.max(1);
    let (users, total) = platform
        .identity()
        .search_users(&principal, &q, (page - 1) * USERS_PER_PAGE, USERS_PER_PAGE)
        .await?;
    let roles = platform
        .identity()
        .list_roles(&principal)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    Ok(UsersPage {
        users: users.into_iter().map(UserView::from).collect(),
        total,
        page,
        per_page: USERS_PER_PAGE,
        roles,
    })
}

/// One user, and every role name.
#[server(endpoint = "users/get", input = leptos::server_fn::codec::GetUrl)]
pub async fn get_user(id: String) -> Result<(UserView, Vec<String>), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let user = platform.identity().get_user(&principal, &id).await?;
    let roles = platform
        .identity()
        .list_roles(&principal)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    Ok((user.into(), roles))
}

/// Creates a local account.
#[server(endpoint = "users/create")]
pub async fn create_user(
    username: String,
    email: String,
    password: String,
    #[server(default)] roles: BTreeMap<String, String>,
) -> Result<UserView, AppError> {
    use platform::identity::NewUser;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let new = NewUser {
        username,
        email,
        password: password.into(),
        roles: checked(roles),
    };
    let user = platform.identity().create_user(&principal, new).await?;
    leptos_axum::redirect(&format!("/users/{}?created=1", user.id));
    Ok(user.into())
}

/// Sets a user's roles to exactly the checked ones.
#[server(endpoint = "users/set_roles")]
pub async fn set_user_roles(
    id: String,
    #[server(default)] roles: BTreeMap<String, String>,
) -> Result<UserView, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let user = platform
        .identity()
        .set_roles(&principal, &id, &checked(roles))
        .await?;
    Ok(user.into())
}

/// Disables or enables a user; disabling ends their sessions and tokens at once.
#[server(endpoint = "users/set_disabled")]
pub async fn set_user_disabled(id: String, disabled: bool) -> Result<UserView, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let user = platform
        .identity()
        .update_user_by_id(&principal, &id, Default::default(), Some(disabled))
        .await?;
    Ok(user.into())
}

/// Sets a new password for a user (an admin's reset); their sessions and tokens end.
#[server(endpoint = "users/reset_password")]
pub async fn reset_password(id: String, password: String) -> Result<UserView, AppError> {
    use platform::identity::UserChanges;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let changes = UserChanges {
        password: Some(password.into()),
        ..UserChanges::default()
    };
    let user = platform
        .identity()
        .update_user_by_id(&principal, &id, changes, None)
        .await?;
    Ok(user.into())
}

/// Deletes a user.
#[server(endpoint = "users/delete")]
pub async fn delete_user(id: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform.identity().delete_user(&principal, &id).await?;
    leptos_axum::redirect("/users?deleted=1");
    Ok(())
}
