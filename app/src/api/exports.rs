//! Server functions of the account page's data exports (see `platform::compliance::export`). The
//! file itself comes from `GET /account/exports/{id}/download`, a plain route, once.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// An export as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRow {
    pub id: String,
    pub username: String,
    pub format: String,
    pub encryption: String,
    pub include_binaries: bool,
    /// `queued`, `running`, `ready`, `downloaded`, `expired` or `failed`.
    pub status: String,
    pub progress: i16,
    pub error: Option<String>,
    pub size_bytes: Option<i64>,
    pub requested_at: String,
    pub expires_at: Option<String>,
    pub file_name: String,
}

impl ExportRow {
    /// Still being prepared: the page keeps watching it.
    pub fn pending(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }
}

/// What privacy.yml offers: whether exports are on, their formats, and whether they must be
/// encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExportSettings {
    pub enabled: bool,
    pub formats: Vec<String>,
    pub encryption_required: bool,
}

#[server(endpoint = "exports/options", input = leptos::server_fn::codec::GetUrl)]
pub async fn export_options() -> Result<ExportSettings, AppError> {
    let platform = ssr::platform()?;
    ssr::principal().await?;
    let settings = platform.compliance().privacy_settings();
    Ok(ExportSettings {
        enabled: settings.export,
        formats: settings.export_formats,
        encryption_required: settings.export_encryption,
    })
}

/// The exports the caller asked for, newest first.
#[server(endpoint = "exports/list", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_exports() -> Result<Vec<ExportRow>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let list = platform.compliance().list_exports(&principal).await?;
    Ok(list.into_iter().map(export_row).collect())
}

/// An export as a page shows it.
#[cfg(feature = "ssr")]
pub(crate) fn export_row(e: platform::compliance::export::ExportStatus) -> ExportRow {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    ExportRow {
        requested_at: when(e.created_at),
        expires_at: e.expires_at.map(when),
        id: e.id,
        username: e.username,
        format: e.format,
        encryption: e.encryption,
        include_binaries: e.include_binaries,
        status: e.status,
        progress: e.progress,
        error: e.error,
        size_bytes: e.size_bytes,
        file_name: e.file_name,
    }
}

/// Asks for an export of the caller's data. `protection` is `recipient`, `passphrase` or `none`
/// (the form's radio buttons); the field of the other choice is ignored.
#[server(endpoint = "exports/request")]
pub async fn request_export(
    format: String,
    #[server(default)] include_binaries: Option<String>,
    #[server(default)] protection: String,
    #[server(default)] recipient: String,
    #[server(default)] passphrase: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let (recipient, passphrase) = match protection.as_str() {
        "recipient" => (Some(recipient), None),
        "passphrase" => (None, Some(secrecy::SecretString::from(passphrase))),
        _ => (None, None),
    };
    let request = platform::compliance::export::ExportRequest {
        format,
        include_binaries: include_binaries.is_some(),
        recipient,
        passphrase,
    };
    platform
        .compliance()
        .request_export(&principal, None, request)
        .await?;
    leptos_axum::redirect("/account?export=requested#exports");
    Ok(())
}
