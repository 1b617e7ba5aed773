//! Cross-site request forgery: one layer in front of every route.
//!
//! A browser attaches the session cookie to any request to this site, whoever's page sends it, and
//! SameSite=Lax does not stop another port of the same host or a sibling subdomain. So every
//! state-changing request a browser could be made to send must come from one of the public origins
//! (`--public-origin`): its `Origin` header (or, when a browser sends none, its `Referer`) must name
//! one of them, or it is refused with 403 `csrf_rejected` and a `permission_denied` audit event.
//!
//! Checked: every method but GET, HEAD, OPTIONS and TRACE, on every route (server functions, the
//! no-JavaScript form posts, the upload route, sign-in — which carries no cookie yet: login CSRF —
//! and sign-out). Not checked: REST requests under `/api/v1` that carry a bearer token or no cookie
//! at all. The REST API reads only bearer tokens, and a browser cannot add an `Authorization:
//! Bearer` header to another site's request (that needs a CORS preflight this server never
//! approves), so those requests cannot be forged from a page.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use platform::{
    Platform,
    audit::Actor,
    identity::sessions::{SESSION_USER_KEY, SessionUser},
};
use tower_sessions::Session;

use super::api::ApiError;

/// The origins (`scheme://host[:port]`) browsers use to reach this server.
#[derive(Debug, Clone)]
pub struct PublicOrigins(Arc<Vec<String>>);

impl PublicOrigins {
    /// Parses `https://wasm.example.com` items: a scheme (http or https), a host and an optional
    /// port, nothing else.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut origins = Vec::new();
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let bad = |why: &str| format!("--public-origin: \"{item}\" {why}");
            let url = url::Url::parse(item)
                .map_err(|_| bad("is not a URL such as https://wasm.example.com"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(bad("must start with http:// or https:// and name a host"));
            }
            if !url.username().is_empty()
                || url.password().is_some()
                || url.path() != "/"
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(bad(
                    "must be only scheme, host and port (no path, query or user)",
                ));
            }
            origins.push(url.origin().ascii_serialization());
        }
        Ok(Self(Arc::new(origins)))
    }

    /// The origins of a server listening on `addr` when none is configured: the loopback names
    /// for a loopback or all-addresses listener, the address itself otherwise.
    pub fn derived(addr: SocketAddr, scheme: &str) -> Self {
        let port = addr.port();
        let ip = addr.ip();
        let origins = if ip.is_loopback() || ip.is_unspecified() {
            vec![
                format!("{scheme}://127.0.0.1:{port}"),
                format!("{scheme}://localhost:{port}"),
                format!("{scheme}://[::1]:{port}"),
            ]
        } else {
            vec![format!("{scheme}://{addr}")]
        };
        Self(Arc::new(origins))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first (preferred) origin, for links printed on the console.
    pub fn first(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    pub fn list(&self) -> &[String] {
        &self.0
    }

    /// Whether the URL or origin `text` (an `Origin` or `Referer` value) is one of ours.
    pub fn allows(&self, text: &str) -> bool {
        url::Url::parse(text).is_ok_and(|url| {
            let origin = url.origin().ascii_serialization();
            self.0.contains(&origin)
        })
    }
}

/// Whether `request` is one a page on another site could make a browser send with its cookies.
/// `certificate`: the connection carries a client certificate that signs in (tls.yml
/// `client_auth.map_to_user`), an ambient credential like a cookie.
fn needs_check(method: &Method, path: &str, headers: &HeaderMap, certificate: bool) -> bool {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return false;
    }
    let rest = path == "/api/v1" || path.starts_with("/api/v1/");
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    !(rest && (bearer || !(headers.contains_key(header::COOKIE) || certificate)))
}

/// Why the request's source is not accepted, or `None` when it is.
fn refusal(origins: &PublicOrigins, headers: &HeaderMap) -> Option<&'static str> {
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) if origins.allows(origin) => None,
        (Some(_), _) => Some("the Origin header is not this site"),
        (None, Some(referer)) if origins.allows(referer) => None,
        (None, Some(_)) => Some("the Referer header is not this site"),
        (None, None) => Some("the request has neither an Origin nor a Referer header"),
    }
}

/// The layer: refuses cross-site writes (see the module documentation).
pub async fn check(
    State(state): State<(Platform, PublicOrigins)>,
    request: Request,
    next: Next,
) -> Response {
    let (platform, origins) = state;
    let certificate = request
        .extensions()
        .get::<crate::serve::tls::CertificateUser>()
        .is_some();
    if !needs_check(
        request.method(),
        request.uri().path(),
        request.headers(),
        certificate,
    ) {
        return next.run(request).await;
    }
    let Some(reason) = refusal(&origins, request.headers()) else {
        return next.run(request).await;
    };
    let (parts, _) = request.into_parts();
    record(&platform, parts, reason).await;
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_rejected",
        format!("cross-site request refused: {reason}; send it from this site's pages"),
    )
    .into_response()
}

/// Records the refusal as `permission_denied`, naming the signed-in user whose browser was used.
async fn record(platform: &Platform, request: axum::http::request::Parts, reason: &str) {
    let mut actor = Actor {
        id: None,
        name: "anonymous".to_string(),
    };
    if let Some(session) = request.extensions.get::<Session>()
        && let Ok(Some(user)) = session.get::<SessionUser>(SESSION_USER_KEY).await
    {
        let principal = platform
            .identity()
            .session_principal(&user, platform.session_timeouts())
            .await;
        actor = match principal {
            Ok(Some(p)) => p.actor(),
            _ => Actor {
                id: Some(user.user_id),
                name: "unknown".to_string(),
            },
        };
    }
    let header_text = |name: header::HeaderName| {
        request
            .headers
            .get(name)
            .map(|v: &axum::http::HeaderValue| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(256)
                    .collect::<String>()
            })
    };
    let ip = request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let event = platform::denial::denied_event(
        actor,
        serde_json::json!({
                "reason": "csrf_rejected",
                "why": reason,
                "method": request.method.as_str(),
                "path": request.uri.path().chars().take(256).collect::<String>(),
                "origin": header_text(header::ORIGIN),
                "referer_origin": header_text(header::REFERER)
                    .and_then(|r| url::Url::parse(&r).ok())
                    .map(|u| u.origin().ascii_serialization()),
        }),
    )
    .with_client(ip, header_text(header::USER_AGENT));
    if let Err(e) = platform.audit().record(event).await {
        tracing::error!(error = %e, "could not record a refused cross-site request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn configured_origins_are_normalised_and_anything_more_is_refused() {
        let o = PublicOrigins::parse(&["HTTPS://Wasm.Example.com:443".into()]).unwrap();
        assert_eq!(o.list(), ["https://wasm.example.com"]);
        assert!(o.allows("https://wasm.example.com"));
        assert!(o.allows("https://wasm.example.com/users?x=1"));
        assert!(!o.allows("https://wasm.example.com:8443"));
        assert!(!o.allows("http://wasm.example.com"));
        assert!(!o.allows("https://evil.wasm.example.com"));
        assert!(!o.allows("null"));
        for bad in [
            "wasm.example.com",
            "ftp://wasm.example.com",
            "https://wasm.example.com/app",
            "https://u@wasm.example.com",
            "https://wasm.example.com/?q",
        ] {
            assert!(PublicOrigins::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_derived_origins_follow_the_listen_address() {
        let o = PublicOrigins::derived("127.0.0.1:3000".parse().unwrap(), "http");
        assert!(o.allows("http://127.0.0.1:3000"));
        assert!(o.allows("http://localhost:3000"));
        assert!(!o.allows("http://127.0.0.1:3001"));
        let o = PublicOrigins::derived("10.0.0.5:8080".parse().unwrap(), "http");
        assert_eq!(o.list(), ["http://10.0.0.5:8080"]);
    }

    #[test]
    fn writes_are_checked_unless_they_are_rest_calls_without_a_cookie_or_with_a_bearer() {
        let none = HeaderMap::new();
        let cookie = headers(&[(header::COOKIE, "wasm_as_os_session=x")]);
        let both = headers(&[
            (header::COOKIE, "wasm_as_os_session=x"),
            (header::AUTHORIZATION, "Bearer t"),
        ]);
        let basic = headers(&[
            (header::COOKIE, "wasm_as_os_session=x"),
            (header::AUTHORIZATION, "Basic dTpw"),
        ]);
        assert!(!needs_check(
            &Method::GET,
            "/api/users/list",
            &cookie,
            false
        ));
        assert!(needs_check(
            &Method::POST,
            "/api/auth/sign_in",
            &none,
            false
        ));
        assert!(needs_check(&Method::POST, "/modules/upload", &both, false));
        assert!(!needs_check(
            &Method::POST,
            "/api/v1/auth/login",
            &none,
            false
        ));
        assert!(!needs_check(
            &Method::DELETE,
            "/api/v1/users/1",
            &both,
            false
        ));
        assert!(needs_check(
            &Method::DELETE,
            "/api/v1/users/1",
            &cookie,
            false
        ));
        assert!(needs_check(
            &Method::DELETE,
            "/api/v1/users/1",
            &basic,
            false
        ));
        assert!(needs_check(&Method::POST, "/api/v1x", &none, false));
        // A client certificate that signs in is sent by the browser like a cookie.
        assert!(needs_check(&Method::POST, "/api/v1/modules", &none, true));
        assert!(!needs_check(&Method::POST, "/api/v1/modules", &both, true));
    }

    #[test]
    fn the_origin_decides_and_the_referer_only_when_there_is_no_origin() {
        let o = PublicOrigins::derived("127.0.0.1:3000".parse().unwrap(), "http");
        let ok = "http://127.0.0.1:3000";
        let evil = "http://127.0.0.1:3001";
        assert!(refusal(&o, &headers(&[(header::ORIGIN, ok)])).is_none());
        assert!(refusal(&o, &headers(&[(header::ORIGIN, evil)])).is_some());
        assert!(
            refusal(
                &o,
                &headers(&[
                    (header::ORIGIN, evil),
                    (header::REFERER, "http://127.0.0.1:3000/")
                ])
            )
            .is_some()
        );
        assert!(
            refusal(
                &o,
                &headers(&[(header::REFERER, "http://localhost:3000/x")])
            )
            .is_none()
        );
        assert!(
            refusal(
                &o,
                &headers(&[(header::REFERER, "http://localhost:3001/x")])
            )
            .is_some()
        );
        assert!(refusal(&o, &HeaderMap::new()).is_some());
        assert!(refusal(&o, &headers(&[(header::ORIGIN, "null")])).is_some());
    }
}
