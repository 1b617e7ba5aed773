//! `rate_limit.yml`: request budgets and IP allow/deny lists.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;

use super::{Problems, units::Span};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub rate_limiting: RateLimiting,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimiting {
    pub enabled: bool,
    pub global: Limit,
    pub per_user: Limit,
    pub per_endpoint: BTreeMap<String, Limit>,
    pub ip_whitelist: Vec<IpNet>,
    pub ip_blacklist: Vec<IpNet>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub requests_per_minute: u32,
    pub burst: u32,
    /// The accounting window; one minute when left out.
    #[serde(default)]
    pub window: Option<Span>,
}

impl RateLimitFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        let rl = &self.rate_limiting;
        let mut limits = vec![
            ("rate_limiting.global".to_string(), rl.global),
            ("rate_limiting.per_user".to_string(), rl.per_user),
        ];
        for (path, limit) in &rl.per_endpoint {
            if !path.starts_with("/") {
                p.push(
                    format!("rate_limiting.per_endpoint.\"{path}\""),
                    "endpoint patterns start with /",
                );
            }
            limits.push((format!("rate_limiting.per_endpoint.\"{path}\""), *limit));
        }
        for (key, limit) in limits {
            if limit.requests_per_minute == 0 {
                p.push(format!("{key}.requests_per_minute"), "must be at least 1");
            }
            if limit.window.is_some_and(|w| w.duration().is_zero()) {
                p.push(format!("{key}.window"), "must be longer than zero");
            }
        }
    }
}
