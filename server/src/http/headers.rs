//! Browser security headers on every response (issue 17, item 4):
//!
//! - HTML pages get a Content-Security-Policy that allows exactly what the dashboard needs: its own
//!   scripts, styles, images and fetches (`'self'`), the WebAssembly bundle
//!   (`'wasm-unsafe-eval'`), and Leptos' inline hydration and resource scripts by a nonce made
//!   fresh for each response ([`CspNonce`], handed to Leptos through the request's extensions);
//!   no plugins, no `<base>`, and no framing (`frame-ancestors 'none'`).
//! - Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`,
//!   a `Permissions-Policy` that turns off the browser features the dashboard never uses, and
//!   `X-Frame-Options: DENY` for browsers without `frame-ancestors`.
//! - Pages, server functions and the API are `Cache-Control: no-store` (they are per-person and
//!   can carry personal data); the hashed static bundle keeps its caching.
//! - Under TLS, `Strict-Transport-Security` with the configured max-age.
//!
//! `form-action` is left out on purpose: "Sign in with Google" posts to this server, which
//! redirects the browser to the provider, and Chromium applies `form-action` to that redirect.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use base64::Engine;

/// The nonce of one response's CSP, as Leptos puts it on its inline scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

impl CspNonce {
    fn new() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// What [`security_headers`] adds beyond the fixed headers.
#[derive(Debug, Clone, Default)]
pub struct HeaderPolicy {
    /// `Strict-Transport-Security` value, when the server speaks HTTPS.
    pub hsts: Option<HeaderValue>,
}

impl HeaderPolicy {
    /// HSTS for `max_age` seconds (with subdomains), or none.
    pub fn with_hsts(max_age: Option<u64>) -> Self {
        Self {
            hsts: max_age.and_then(|age| {
                HeaderValue::from_str(&format!("max-age={age}; includeSubDomains")).ok()
            }),
        }
    }
}

const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), \
    magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=(), browsing-topics=()";

/// The CSP of an HTML page whose inline scripts carry `nonce`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// Sets the headers above on every response.
pub async fn security_headers(
    State(policy): State<HeaderPolicy>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = CspNonce::new();
    request.extensions_mut().insert(nonce.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let html = content_type.starts_with("text/html");
    // The bundle, styles, icons and fonts are the same for everyone.
    let static_asset = [
        "application/javascript",
        "text/javascript",
        "application/wasm",
        "text/css",
        "image/",
        "font/",
    ]
    .iter()
    .any(|t| content_type.starts_with(t));
    if html && let Ok(csp) = HeaderValue::from_str(&content_security_policy(&nonce.0)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !static_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(hsts) = &policy.hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_fresh_and_url_safe() {
        let (a, b) = (CspNonce::new().0, CspNonce::new().0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn the_policy_names_the_nonce_and_forbids_framing() {
        let csp = content_security_policy("abc");
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
