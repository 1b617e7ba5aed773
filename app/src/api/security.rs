//! The security dashboard's data: counts over time from the audit events.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// One charted series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesView {
    pub name: String,
    pub event: String,
    pub counts: Vec<u64>,
    pub total: u64,
}

/// Counts per hour over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityView {
    /// Bucket start labels (`HH:MM`, UTC).
    pub labels: Vec<String>,
    pub series: Vec<SeriesView>,
    pub hours: usize,
}

/// Authentication failures, denials, executions and sandbox violations per hour (`metrics:read`).
#[server(endpoint = "security/overview", input = leptos::server_fn::codec::GetUrl)]
pub async fn security_overview(#[server(default)] hours: usize) -> Result<SecurityView, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let hours = if hours == 0 { 24 } else { hours };
    let overview = platform.security_overview(&principal, hours).await?;
    Ok(SecurityView {
        labels: overview
            .buckets
            .iter()
            .map(|b| b.format("%H:%M").to_string())
            .collect(),
        series: overview
            .series
            .into_iter()
            .map(|s| SeriesView {
                name: s.name,
                event: s.event,
                counts: s.counts,
                total: s.total,
            })
            .collect(),
        hours: overview.buckets.len(),
    })
}
