//! Server-side helpers every server function uses: the platform, the browser session, the signed-in
//! principal, the caller's address, and the mapping of service errors to [`AppError`].

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use platform::{
    Platform,
    access::Principal,
    identity::{
        IdentityError,
        auth::{AuthError, Client},
        sessions::{SESSION_USER_KEY, SessionUser},
    },
};
use tower_sessions::Session;

use super::AppError;

/// The running platform, provided to every request by the server.
pub fn platform() -> Result<Platform, AppError> {
    leptos::prelude::use_context::<Platform>().ok_or(AppError::Internal)
}

/// The browser session of this request.
pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "no session layer on this request");
        AppError::Internal
    })
}

/// Who is calling: address and user agent, for audit events.
pub fn client() -> Client {
    let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() else {
        return Client::default();
    };
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    Client { ip, user_agent }
}

/// The signed-in principal, if the session holds a user who may still act.
pub async fn current_principal() -> Result<Option<Principal>, AppError> {
    let platform = platform()?;
    let session = session().await?;
    let Some(user) = session
        .get::<SessionUser>(SESSION_USER_KEY)
        .await
        .map_err(|e| AppError::internal(&e))?
    else {
        return Ok(None);
    };
    let principal = platform
        .identity()
        .session_principal(&user, platform.session_timeouts())
        .await
        .map_err(|e| AppError::internal(&e))?;
    if principal.is_none() {
        // The account was disabled, its password changed, or the session is too old: end it.
        session.flush().await.map_err(|e| AppError::internal(&e))?;
    }
    Ok(principal)
}

/// The signed-in principal, or [`AppError::Unauthorized`].
pub async fn principal() -> Result<Principal, AppError> {
    current_principal().await?.ok_or(AppError::Unauthorized)
}

/// Starts a fresh session (new id) for a user who just signed in.
pub async fn start_session(user: SessionUser) -> Result<(), AppError> {
    let session = session().await?;
    session
        .cycle_id()
        .await
        .map_err(|e| AppError::internal(&e))?;
    session
        .insert(SESSION_USER_KEY, user)
        .await
        .map_err(|e| AppError::internal(&e))
}

/// Only same-site paths are followed after sign-in.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

impl From<IdentityError> for AppError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Forbidden(_) => Self::Forbidden,
            IdentityError::UnknownUser(_) | IdentityError::UnknownRole(_) => Self::NotFound,
            IdentityError::Invalid(fields) => Self::Validation(fields),
            IdentityError::Conflict(m) => Self::Conflict(m),
            IdentityError::LastAdmin => Self::Conflict(e.to_string()),
            other => Self::internal(&other),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Self::Validation(
                [(
                    "password".to_string(),
                    vec!["invalid username or password".to_string()],
                )]
                .into(),
            ),
            AuthError::LocalDisabled => {
                Self::Validation([("password".to_string(), vec![e.to_string()])].into())
            }
            AuthError::InvalidToken => Self::Unauthorized,
            AuthError::Internal(inner) => inner.into(),
        }
    }
}
