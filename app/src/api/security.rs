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

/// An address blocked by an ids.yml rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub ip: String,
    pub rule: String,
    pub since: String,
    pub until: String,
}

/// A user whose runs an ids.yml rule holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleView {
    pub user_id: String,
    pub rule: String,
    pub until: String,
}

/// A recent rule trigger, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerView {
    pub at: String,
    pub rule: String,
    pub action: String,
    pub ip: String,
}

/// An alert destination's last delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub channel: String,
    pub ok: bool,
    pub at: String,
    pub error: Option<String>,
}

/// Blocks, throttles, recent triggers and alert deliveries (`system:audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeView {
    pub blocks: Vec<BlockView>,
    pub throttles: Vec<ThrottleView>,
    pub triggers: Vec<TriggerView>,
    pub channels: Vec<ChannelView>,
    pub can_unblock: bool,
}

/// What rate_limit.yml and ids.yml are doing now (`system:audit`).
#[server(endpoint = "security/edge", input = leptos::server_fn::codec::GetUrl)]
pub async fn edge_state() -> Result<EdgeView, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let o = platform.edge().overview(&principal).await?;
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(EdgeView {
        blocks: o
            .blocks
            .into_iter()
            .map(|b| BlockView {
                ip: b.ip.to_string(),
                rule: b.rule,
                since: time(b.since),
                until: time(b.until),
            })
            .collect(),
        throttles: o
            .throttles
            .into_iter()
            .map(|t| ThrottleView {
                user_id: t.user_id,
                rule: t.rule,
                until: time(t.until),
            })
            .collect(),
        triggers: o
            .triggers
            .into_iter()
            .map(|e| {
                let text = |k: &str| e.event.details[k].as_str().unwrap_or_default().to_string();
                TriggerView {
                    at: time(e.timestamp),
                    rule: text("rule"),
                    action: text("action"),
                    ip: e
                        .event
                        .ip
                        .clone()
                        .or(e.event.ip_net.clone())
                        .unwrap_or_default(),
                }
            })
            .collect(),
        channels: o
            .channels
            .into_iter()
            .map(|c| ChannelView {
                channel: format!("{} (destination {})", c.channel, c.destination),
                ok: c.ok,
                at: time(c.at),
                error: c.error,
            })
            .collect(),
        can_unblock: o.can_unblock,
    })
}

/// Lifts a block before it ends (`system:unblock`, which the admin role's `system:*` holds);
/// audited as `ip_unblocked`.
#[server(endpoint = "security/unblock")]
pub async fn unblock(ip: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let Ok(ip) = ip.trim().parse::<std::net::IpAddr>() else {
        return Err(AppError::invalid("ip", "not an IP address"));
    };
    platform.edge().unblock(&principal, ip).await?;
    leptos_axum::redirect("/security#blocks");
    Ok(())
}
