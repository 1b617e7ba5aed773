//! The HTTP side of the edge (`platform::edge`): which address a request comes from, and the gate
//! every request passes before any other work.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use platform::{
    Platform,
    edge::{Budget, EdgeError, GateRequest},
    identity::sessions::{SESSION_USER_KEY, SessionUser},
};
use tower_sessions::Session;

use super::api::ApiError;

/// Replaces `ConnectInfo` with the client's address (rate_limit.yml `trusted_proxies`), so every
/// later layer, audit event and limit sees the same address, and serves the request inside
/// [`platform::edge::serving`].
pub async fn client_address(
    State(platform): State<Platform>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        return next.run(request).await;
    };
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let ip = platform.edge().client_address(peer.ip(), forwarded);
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
    platform::edge::serving(ip, next.run(request)).await
}

/// Static files and health checks spend no budget (they are still refused to blacklisted and
/// blocked addresses).
fn counted(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    !(path.starts_with("/pkg/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
        || file.contains('.'))
}

/// The signed-in user, when known without a database read of its own: a bearer access token
/// whose signature checks out, or the browser session the session layer loads anyway.
async fn user_of(
    platform: &Platform,
    bearer: Option<String>,
    session: Option<Session>,
) -> Option<String> {
    if let Some(token) = bearer {
        return platform.identity().token_subject(token.trim());
    }
    session?
        .get::<SessionUser>(SESSION_USER_KEY)
        .await
        .ok()
        .flatten()
        .map(|u| u.user_id)
}

/// Blacklist, blocks and the global, per-user and per-endpoint budgets.
pub async fn gate(State(platform): State<Platform>, request: Request, next: Next) -> Response {
    let Some(ConnectInfo(addr)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    let counted = counted(&path);
    let browser = !path.starts_with("/api/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let user = if counted {
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let session = request.extensions().get::<Session>().cloned();
        user_of(&platform, bearer, session).await
    } else {
        None
    };
    let method = request.method().as_str().to_string();
    let decision = platform
        .edge()
        .gate(&GateRequest {
            ip: addr.ip(),
            user: user.as_deref(),
            method: &method,
            path: &path,
            counted,
        })
        .await;
    match decision {
        Ok(passed) => {
            let mut response = next.run(request).await;
            if let Some(budget) = passed.budget
                && !response.headers().contains_key("ratelimit-limit")
            {
                budget_headers(response.headers_mut(), &budget);
            }
            response
        }
        Err(refusal) => refused(&refusal, browser),
    }
}

/// The `RateLimit-*` headers (IETF draft `RateLimit-Limit`, `-Remaining`, `-Reset`, `-Policy`).
pub fn budget_headers(headers: &mut HeaderMap, b: &Budget) {
    let reset = b.reset.as_secs() + u64::from(b.reset.subsec_nanos() > 0);
    headers.insert("ratelimit-limit", b.limit.into());
    headers.insert("ratelimit-remaining", b.remaining.into());
    headers.insert("ratelimit-reset", reset.into());
    if let Ok(policy) = HeaderValue::from_str(&format!("{};w={}", b.limit, b.period.as_secs())) {
        headers.insert("ratelimit-policy", policy);
    }
}

/// A refusal: a short page for a browser asking for one outside `/api`, else the JSON error.
fn refused(refusal: &EdgeError, browser: bool) -> Response {
    let api = ApiError::from_problem(refusal);
    if !browser {
        return api.into_response();
    }
    let status = api.status();
    let headers = api.into_response().headers().clone();
    let title = if status == StatusCode::TOO_MANY_REQUESTS {
        "Too many requests"
    } else {
        "Access refused"
    };
    // The message is the error table's fixed text (no caller input), so it needs no escaping.
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} · wasm-as-os</title>\
         <link rel=\"stylesheet\" href=\"/pkg/wasm-as-os.css\"></head><body class=\"refusal\">\
         <main class=\"refusal-card\" role=\"alert\"><h1>{title}</h1><p>{refusal}</p></main>\
         </body></html>"
    );
    let mut response = (status, Html(page)).into_response();
    for name in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
    ] {
        if let Some(v) = headers.get(name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}
