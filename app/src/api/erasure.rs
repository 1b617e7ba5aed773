//! Server functions of the account page's "Delete my account" section (see
//! `platform::compliance::erasure`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// The caller's erasure request as the account page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRow {
    pub id: String,
    /// `requested`, `scheduled`, `running`, `done`, `rejected` or `cancelled`.
    pub status: String,
    pub requested_at: String,
    /// When it runs (scheduled).
    pub run_at: Option<String>,
    /// The administrator's reason, when rejected.
    pub note: Option<String>,
}

impl ErasureRow {
    /// Still open: it can be cancelled until it runs.
    pub fn cancellable(&self) -> bool {
        matches!(self.status.as_str(), "requested" | "scheduled")
    }
}

/// The caller's latest request, if any.
#[server(endpoint = "erasure/mine", input = leptos::server_fn::codec::GetUrl)]
pub async fn my_erasure() -> Result<Option<ErasureRow>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(platform
        .compliance()
        .own_erasure(&principal)
        .await?
        .map(|e| ErasureRow {
            id: e.id,
            status: e.status,
            requested_at: when(e.requested_at),
            run_at: e.run_at.map(when),
            note: e.note,
        }))
}

/// Asks for the erasure of the caller's account, confirmed with the password.
#[server(endpoint = "erasure/request")]
pub async fn request_erasure(password: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform
        .compliance()
        .request_erasure(&principal, &secrecy::SecretString::from(password))
        .await?;
    leptos_axum::redirect("/account?erasure=requested#erasure");
    Ok(())
}

/// Cancels the caller's open request.
#[server(endpoint = "erasure/cancel")]
pub async fn cancel_erasure(id: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform
        .compliance()
        .cancel_erasure(&principal, &id)
        .await?;
    leptos_axum::redirect("/account?erasure=cancelled#erasure");
    Ok(())
}
