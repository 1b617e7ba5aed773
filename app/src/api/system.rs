//! `system_status`: what the overview page shows about the running platform.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformStatus {
    pub version: String,
    pub database_reachable: bool,
    pub schema_current: bool,
}

#[server(endpoint = "system/status", input = leptos::server_fn::codec::GetUrl)]
pub async fn system_status() -> Result<PlatformStatus, AppError> {
    let platform = use_context::<platform::Platform>().ok_or_else(AppError::internal_error)?;
    let readiness = platform.readiness().await;
    Ok(PlatformStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        database_reachable: readiness.database,
        schema_current: readiness.migrations,
    })
}
