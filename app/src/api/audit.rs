//! The Audit dashboard's data: one keyset page of events for the filters in the URL.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// One event as the table shows it, with the whole event as pretty JSON for its detail view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    pub event: String,
    pub outcome: String,
    pub actor: String,
    /// `type id`, or empty.
    pub resource: String,
    pub ip: String,
    pub json: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub rows: Vec<AuditRow>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// Every event name, for the filter.
    pub event_names: Vec<String>,
}

/// A page of audit events (`system:audit`). Bad filters come back as field errors.
#[server(endpoint = "audit/search", input = leptos::server_fn::codec::GetUrl)]
#[allow(clippy::too_many_arguments)]
pub async fn search_audit(
    #[server(default)] event: String,
    #[server(default)] actor: String,
    #[server(default)] outcome: String,
    #[server(default)] resource: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] q: String,
    #[server(default)] after: String,
) -> Result<AuditView, AppError> {
    use platform::audit::{AuditParams, AuditQuery, EventKind};
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let params = AuditParams {
        event,
        actor,
        outcome,
        resource,
        from,
        to,
        q,
        after,
        limit: Some(50),
    };
    let query = AuditQuery::from_params(&params)?;
    let page = platform.audit().search(&principal, &query).await?;
    let rows = page
        .events
        .into_iter()
        .map(|e| AuditRow {
            id: e.id.to_string(),
            time: e.timestamp.format("%Y-%m-%d %H:%M:%S").to_string(),
            event: e.event.kind.as_str().to_string(),
            outcome: e.event.outcome.as_str().to_string(),
            actor: e.event.actor.name.clone(),
            resource: e
                .event
                .target
                .as_ref()
                .map(|t| format!("{} {}", t.kind, t.id))
                .unwrap_or_default(),
            // After the IDS window only the network is kept (privacy.yml data_anonymization).
            ip: e
                .event
                .ip
                .clone()
                .or_else(|| e.event.ip_net.clone())
                .unwrap_or_default(),
            json: serde_json::to_string_pretty(&e).unwrap_or_default(),
        })
        .collect();
    Ok(AuditView {
        rows,
        next: page.next,
        event_names: EventKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect(),
    })
}
