//! Signing in and out of the dashboard, the account page, and first-start set-up.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// The signed-in user as the dashboard shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}

impl SignedInUser {
    /// Whether the user holds `resource:action` (or `resource:*`); only for showing controls —
    /// the services decide.
    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p == &format!("{resource}:{action}") || p == &format!("{resource}:*"))
    }
}

/// The signed-in user, or `None`.
#[server(endpoint = "auth/me", input = leptos::server_fn::codec::GetUrl)]
pub async fn current_user() -> Result<Option<SignedInUser>, AppError> {
    use platform::access::Principal;
    Ok(ssr::current_principal().await?.and_then(|p| match p {
        Principal::User {
            id,
            username,
            roles,
            permissions,
        } => Some(SignedInUser {
            id,
            username,
            roles,
            permissions: permissions.iter().map(ToString::to_string).collect(),
        }),
        Principal::System => None,
    }))
}

/// Signs in with a local account and starts a fresh session.
#[server(endpoint = "auth/sign_in")]
pub async fn sign_in(
    username: String,
    password: String,
    #[server(default)] next: Option<String>,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let password = secrecy::SecretString::from(password);
    let outcome = platform
        .identity()
        .sign_in(&username, &password, &ssr::client())
        .await?;
    ssr::after_first_factor(outcome, &ssr::safe_next(next.as_deref())).await
}

/// Ends the session.
#[server(endpoint = "auth/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let platform = ssr::platform()?;
    if let Some((_, principal)) = ssr::enrolling().await? {
        platform
            .identity()
            .sign_out(&principal, &ssr::client())
            .await?;
    }
    ssr::session()
        .await?
        .flush()
        .await
        .map_err(|e| AppError::internal(&e))?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// Changes the signed-in user's password (the current one must be given). Other sessions end.
#[server(endpoint = "auth/change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let user = platform
        .identity()
        .change_own_password(&principal, &current_password.into(), new_password.into())
        .await?;
    ssr::start_session(user).await?;
    leptos_axum::redirect("/account?changed=1");
    Ok(())
}

/// Whether the set-up link `token` can still create the first administrator.
#[server(endpoint = "setup/check", input = leptos::server_fn::codec::GetUrl)]
pub async fn setup_token_valid(token: String) -> Result<bool, AppError> {
    Ok(ssr::platform()?
        .identity()
        .setup_token_valid(&token)
        .await?)
}

/// Creates the first administrator through a set-up link and signs them in.
#[server(endpoint = "setup/create_admin")]
pub async fn create_first_admin(
    token: String,
    username: String,
    email: String,
    password: String,
) -> Result<(), AppError> {
    use platform::identity::setup::FirstAdmin;
    let platform = ssr::platform()?;
    let secret = secrecy::SecretString::from(password);
    let admin = FirstAdmin {
        username: username.clone(),
        email,
        password: secret.clone(),
    };
    platform
        .identity()
        .create_first_admin(&token, admin)
        .await?;
    let outcome = platform
        .identity()
        .sign_in(&username, &secret, &ssr::client())
        .await?;
    ssr::after_first_factor(outcome, "/").await
}
