//! Server functions for the sign-in methods beyond a password: whether "Sign in with Google" is
//! offered, and the account page's linked identities (see `platform::identity::federation`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// Which ways to sign in the sign-in page offers (security.yml `auth.providers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    pub local: bool,
    pub google: bool,
}

/// The enabled sign-in methods.
#[server(endpoint = "auth/options", input = leptos::server_fn::codec::GetUrl)]
pub async fn sign_in_options() -> Result<SignInMethods, AppError> {
    let platform = ssr::platform()?;
    let security = &platform.config().security;
    Ok(SignInMethods {
        local: security.local_password_policy().is_some(),
        google: platform.identity().google().is_some(),
    })
}

/// A linked sign-in as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedRow {
    pub id: String,
    pub provider: String,
    pub email: Option<String>,
    pub linked_at: String,
    pub last_used_at: Option<String>,
}

/// The caller's linked sign-ins, oldest first.
#[server(endpoint = "identities/list", input = leptos::server_fn::codec::GetUrl)]
pub async fn linked_identities() -> Result<Vec<LinkedRow>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(platform
        .identity()
        .linked_identities(&principal)
        .await?
        .into_iter()
        .map(|l| LinkedRow {
            id: l.id,
            provider: l.provider,
            email: l.email,
            linked_at: when(l.created_at),
            last_used_at: l.last_login_at.map(when),
        })
        .collect())
}

/// Unlinks one of the caller's sign-ins (not the last way they can sign in).
#[server(endpoint = "identities/unlink")]
pub async fn unlink_identity(id: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform.identity().unlink_identity(&principal, &id).await?;
    leptos_axum::redirect("/account?unlinked=1#linked");
    Ok(())
}
