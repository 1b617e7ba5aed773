//! The plain-HTTP listener of tls.yml `http_redirect` (documented addition): every request, any
//! method, gets `308 Permanent Redirect` to the same path and query over HTTPS and an empty body;
//! nothing else is served in clear. The target is the first `https://` public origin when one is
//! configured (`--public-origin`), else the request's host on the HTTPS port.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

use crate::http::csrf::PublicOrigins;

#[derive(Clone)]
struct Target {
    /// `https://host[:port]` from the configuration, if any.
    origin: Option<String>,
    https_port: u16,
}

pub fn router(origins: PublicOrigins, https_port: u16) -> Router {
    let origin = origins
        .list()
        .iter()
        .find(|o| o.starts_with("https://"))
        .cloned();
    Router::new()
        .fallback(to_https)
        .with_state(Target { origin, https_port })
}

async fn to_https(State(target): State<Target>, headers: HeaderMap, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let origin = match target.origin {
        Some(origin) => origin,
        None => {
            let Some(host) = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(host_name)
            else {
                return (StatusCode::BAD_REQUEST, "HTTPS only: send a Host header\n")
                    .into_response();
            };
            match target.https_port {
                443 => format!("https://{host}"),
                port => format!("https://{host}:{port}"),
            }
        }
    };
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("{origin}{path}"))],
    )
        .into_response()
}

/// The host of a `Host` header without its port (`[::1]:80` → `[::1]`), when it is a plain name
/// or address.
fn host_name(value: &str) -> Option<&str> {
    let host = if value.starts_with('[') {
        &value[..=value.find(']')?]
    } else {
        value.split(':').next()?
    };
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    plain.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port_and_odd_ones_are_refused() {
        assert_eq!(host_name("example.com:8080"), Some("example.com"));
        assert_eq!(host_name("127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(host_name("[::1]:80"), Some("[::1]"));
        assert_eq!(host_name("evil.com/x"), None);
        assert_eq!(host_name(""), None);
    }
}
