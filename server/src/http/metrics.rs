//! `GET /metrics` (Prometheus text format) and the middleware that counts requests.
//!
//! Scrapes from the addresses of `--metrics-allow` / `WASM_AS_OS_METRICS_ALLOW` (loopback by
//! default) need no credentials; any other caller needs a bearer token with `metrics:read`.
//! Behind a reverse proxy on the same host every request comes from loopback: set the variable to
//! `none` there so a token is always required.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Extension, Router,
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use ipnet::IpNet;
use platform::Platform;

use super::{AppState, api::ApiError};

/// The networks that may scrape without a token.
#[derive(Debug, Clone, Default)]
pub struct MetricsAllow(pub Vec<IpNet>);

impl MetricsAllow {
    /// Parses `127.0.0.0/8,::1/128`; `none` or an empty list allows no address.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "none")
        {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "--metrics-allow: \"{item}\" is not an address or network (e.g. 10.0.0.0/8)"
                    )
                })?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    fn allows(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|n| n.contains(&ip))
    }
}

pub fn router(allow: MetricsAllow) -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(Extension(Arc::new(allow)))
}

async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(allow): Extension<Arc<MetricsAllow>>,
    headers: HeaderMap,
) -> Response {
    if allow.allows(peer.ip()) {
        return text(state.platform.scrape_metrics());
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return (
            [(header::WWW_AUTHENTICATE, "Bearer")],
            ApiError::unauthorized(
                "metrics from this address need a bearer token with metrics:read",
            ),
        )
            .into_response();
    };
    let principal = match state.platform.identity().authenticate(token).await {
        Ok(principal) => principal,
        Err(_) => return ApiError::unauthorized("the bearer token is not valid").into_response(),
    };
    // The permission is decided (and a refusal audited) by the platform, as every other decision.
    match state.platform.metrics_for(&principal).await {
        Ok(body) => text(body),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Counts every request by method, route template (never the raw path) and status.
pub async fn track(State(platform): State<Platform>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    platform.metrics().http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_allowed_by_default_and_none_allows_nothing() {
        let default = MetricsAllow::parse(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(default.allows("127.0.0.1".parse().unwrap()));
        assert!(default.allows("::1".parse().unwrap()));
        assert!(default.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!default.allows("10.1.2.3".parse().unwrap()));
        assert!(
            !MetricsAllow::parse(&["none".into()])
                .unwrap()
                .allows("127.0.0.1".parse().unwrap())
        );
        assert!(MetricsAllow::parse(&["bogus".into()]).is_err());
    }
}
