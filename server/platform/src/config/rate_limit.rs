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
    /// Addition to the spec: proxies whose `X-Forwarded-For` names the client (none by default,
    /// so the socket's peer is the client). See `edge/address.rs`.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Addition to the spec: keep budgets, counters, blocks and throttles in this Redis
    /// (`redis://[:password@]host:port/db`), so several replicas enforce one budget. Without it
    /// they live in each process' memory.
    #[serde(default)]
    pub redis_url: Option<secrecy::SecretString>,
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
        if let Some(url) = &rl.redis_url {
            use secrecy::ExposeSecret;
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("redis+unix://")) {
                p.push(
                    "rate_limiting.redis_url",
                    "must be a redis:// URL (redis://[:password@]host:port/db)",
                );
            }
        }
        let mut limits = vec![
            ("rate_limiting.global".to_string(), rl.global),
            ("rate_limiting.per_user".to_string(), rl.per_user),
        ];
        for (path, limit) in &rl.per_endpoint {
            if !path.starts_with('/') || path.contains("**") || path.contains('?') {
                p.push(
                    format!("rate_limiting.per_endpoint.\"{path}\""),
                    "endpoint patterns are paths starting with /, where * stands for one segment",
                );
            }
            limits.push((format!("rate_limiting.per_endpoint.\"{path}\""), *limit));
        }
        for (key, limit) in limits {
            if limit.requests_per_minute == 0 {
                p.push(format!("{key}.requests_per_minute"), "must be at least 1");
            }
            if limit.burst == 0 {
                p.push(format!("{key}.burst"), "must be at least 1");
            }
            if limit.window.is_some_and(|w| w.duration().is_zero()) {
                p.push(format!("{key}.window"), "must be longer than zero");
            }
        }
    }
}
