//! Server functions of the account page's personal API tokens (see
//! `platform::identity::api_tokens`).
//!
//! A new token is shown once. Between the form's POST and the page that shows it, it travels in a
//! short-lived cookie (`HttpOnly`, `SameSite=Strict`, one minute, `Secure` under TLS; its path is `/`
//! because the hydrated page reads it through this module's server function) that the page clears as it reads it: so it is never stored on the server, works with and
//! without JavaScript, and is not in any URL.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// The cookie that carries a new token to the page that shows it.
#[cfg(feature = "ssr")]
const NEW_TOKEN_COOKIE: &str = "wao_new_token";

/// A token as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub hint: String,
    /// `None`: everything the owner holds.
    pub permissions: Option<Vec<String>>,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub state: String,
}

/// The caller's tokens, newest first.
#[server(endpoint = "tokens/list", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_tokens() -> Result<Vec<TokenRow>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let tokens = platform.identity().list_api_tokens(&principal).await?;
    Ok(tokens
        .into_iter()
        .map(|t| TokenRow {
            state: t.state.to_string(),
            id: t.id,
            name: t.name,
            hint: t.hint,
            permissions: t.permissions,
            created_at: when(t.created_at),
            expires_at: when(t.expires_at),
            last_used_at: t.last_used_at.map(when),
        })
        .collect())
}

/// Makes a token: `expires_in_days` as the form sends it, `permissions` separated by commas or
/// spaces (empty: everything the caller holds).
#[server(endpoint = "tokens/create")]
pub async fn create_token(
    name: String,
    expires_in_days: String,
    #[server(default)] permissions: String,
) -> Result<(), AppError> {
    use secrecy::ExposeSecret;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let days = expires_in_days
        .trim()
        .parse::<u32>()
        .map_err(|_| AppError::invalid("expires_in_days", "must be a number of days"))?;
    let list: Vec<String> = permissions
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let new = platform::identity::api_tokens::NewApiToken {
        name,
        expires_in_days: Some(days),
        permissions: (!list.is_empty()).then_some(list),
    };
    let issued = platform
        .identity()
        .create_api_token(&principal, new)
        .await?;
    ssr::hand_over(NEW_TOKEN_COOKIE, issued.token.expose_secret(), 60);
    leptos_axum::redirect("/account?token=new#tokens");
    Ok(())
}

/// The token made a moment ago in this browser, once: the cookie that carried it is cleared.
#[server(endpoint = "tokens/take_new", input = leptos::server_fn::codec::GetUrl)]
pub async fn take_new_token() -> Result<Option<String>, AppError> {
    use platform::identity::api_tokens::TOKEN_PREFIX;
    ssr::principal().await?;
    let token = ssr::take_handed_over(NEW_TOKEN_COOKIE)
        .await?
        .filter(|t| t.starts_with(TOKEN_PREFIX) && t.len() <= 128);
    Ok(token)
}

/// Revokes one of the caller's tokens.
#[server(endpoint = "tokens/revoke")]
pub async fn revoke_token(id: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform
        .identity()
        .revoke_api_token(&principal, &id)
        .await?;
    leptos_axum::redirect("/account?revoked=1#tokens");
    Ok(())
}
