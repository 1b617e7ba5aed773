//! The REST API under `/api/v1`: JSON in and out, bearer tokens, errors as
//! `{"error":{"code":"…","message":"…"}}`.

pub mod audit;
mod auth;
mod compliance;
pub mod erasures;
mod error;
pub mod exports;
pub mod modules;
mod roles;
mod tokens;
mod users;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts, Query, rejection::QueryRejection},
    http::{StatusCode, header, request::Parts},
};
use platform::{access::Principal, identity::auth::Client};

pub use self::error::ApiError;
use super::AppState;

/// JSON bodies of the API are small; larger ones get 413.
const BODY_LIMIT: usize = 64 * 1024;

/// Declares the API's routes once: [`ROUTES`] lists every (method, path) served, and `routes()`
/// builds the router from the same lines, so the OpenAPI test compares the document with what is
/// really served.
macro_rules! api_routes {
    ($($path:literal => $first:ident($fh:expr) $(.$method:ident($h:expr))* $(; layer $layer:expr)?,)*) => {
        /// Every operation the API serves, as (method, path under `/api/v1`); the OpenAPI test
        /// reads it.
        #[cfg_attr(not(test), allow(dead_code))]
        pub const ROUTES: &[(&str, &str)] =
            &[$((stringify!($first), $path), $((stringify!($method), $path),)*)*];

        fn routes() -> Router<AppState> {
            Router::new()$(.route($path, axum::routing::$first($fh)$(.$method($h))*$(.layer($layer))?))*
        }
    };
}

api_routes! {
    "/auth/login" => post(auth::login),
    "/auth/refresh" => post(auth::refresh),
    "/auth/logout" => post(auth::logout),
    "/auth/mfa" => post(auth::mfa),
    "/auth/mfa/passkey" => post(auth::passkey_options),
    "/me" => get(auth::me),
    "/me/tokens" => get(tokens::list).post(tokens::create),
    "/me/tokens/{id}" => delete(tokens::revoke),
    "/me/export" => post(exports::request_own),
    "/me/exports" => get(exports::list),
    "/me/exports/{id}" => get(exports::status),
    "/me/exports/{id}/download" => get(exports::download),
    "/me/erasure" => get(erasures::own).post(erasures::request_own).delete(erasures::cancel_own),
    "/erasures" => get(erasures::list),
    "/compliance/privacy" => get(compliance::privacy),
    "/compliance/controls" => get(compliance::controls),
    "/compliance/settings" => get(compliance::settings),
    "/compliance/settings/{file}" => put(compliance::save_settings),
    "/erasures/{id}/approve" => post(erasures::approve),
    "/erasures/{id}/reject" => post(erasures::reject),
    "/users" => get(users::list).post(users::create),
    "/users/{id}" => get(users::get).patch(users::update).delete(users::delete),
    "/users/{id}/export" => post(exports::request_for),
    "/users/{id}/erasure" => post(erasures::erase_user),
    "/users/{id}/mfa" => delete(users::reset_mfa),
    "/roles" => get(roles::list).post(roles::create),
    "/roles/{name}" => patch(roles::update),
    "/modules" => get(modules::list).post(modules::upload); layer DefaultBodyLimit::disable(),
    "/modules/{id}" => get(modules::get).patch(modules::update).delete(modules::delete),
    "/modules/{id}/shares" => post(modules::shares::<true>).delete(modules::shares::<false>),
    "/modules/{id}/execute" => post(modules::execute),
    "/modules/{id}/runs" => get(modules::runs),
    "/modules/{id}/release" => post(modules::review::<false>),
    "/modules/{id}/quarantine" => post(modules::review::<true>),
    "/audit/events" => get(audit::events),
    "/audit/export" => get(audit::export_api),
    "/openapi.json" => get(openapi),
}

pub fn router() -> Router<AppState> {
    routes()
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The OpenAPI 3 document of this API (kept true by the `openapi` integration test).
pub const OPENAPI: &str = include_str!("api/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The parsed query string, or 400 with `code` and what is wrong with it (as JSON, like every
/// other error of the API).
pub fn query<T>(
    query: Result<Query<T>, QueryRejection>,
    code: &'static str,
) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, code, e.body_text()))
}

/// A paging parameter: `default` when absent, else a value within `range` (the bounds the OpenAPI
/// document states), or 400 with `code` naming the parameter.
pub fn paging(
    name: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    code: &'static str,
) -> Result<u64, ApiError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(v),
        Some(v) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("{name} must be {}–{}, not {v}", range.start(), range.end()),
        )),
    }
}

/// A JSON request body that must be an object (serde would also read a struct from an array),
/// then of type `T`; anything else is 400 `invalid_request`, a wrong content type 415 and an
/// oversized body 413, as the OpenAPI document states.
pub struct JsonObject<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S>
    for JsonObject<T>
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        let invalid = |message: String| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("Failed to deserialize the JSON body into the target type: {message}"),
            )
        };
        if !value.is_object() {
            return Err(invalid("expected a JSON object".into()));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| invalid(e.to_string()))
    }
}

/// The bearer token of the request, if any.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match value.strip_prefix("Bearer ").map(str::trim) {
            Some(token) if !token.is_empty() => Ok(Self(token.to_string())),
            _ => Err(ApiError::unauthorized(
                "a bearer token is required (Authorization: Bearer …)",
            )),
        }
    }
}

/// The authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // tls.yml `client_auth.map_to_user`: without an Authorization header, a verified client
        // certificate names the account.
        if !parts.headers.contains_key(header::AUTHORIZATION)
            && let Some(user) = parts.extensions.get::<crate::serve::tls::CertificateUser>()
        {
            let principal = state
                .platform
                .identity()
                .authenticate_certificate(&user.0)
                .await?;
            return Ok(Self(principal));
        }
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        let principal = state.platform.identity().authenticate(&token).await?;
        Ok(Self(principal))
    }
}

/// Source address and user agent, for audit events.
pub fn client(peer: std::net::SocketAddr, headers: &axum::http::HeaderMap) -> Client {
    Client {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::{OPENAPI, ROUTES};

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_the_router_serves() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(
            documented, served,
            "the document lists exactly the served operations"
        );
    }
}
