//! The REST API under `/api/v1`: JSON in and out, bearer tokens, errors as
//! `{"error":{"code":"…","message":"…"}}`.

pub mod audit;
mod auth;
mod error;
pub mod modules;
mod roles;
mod users;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts},
    http::{header, request::Parts},
    routing::{get, post},
};
use platform::{access::Principal, identity::auth::Client};

pub use self::error::ApiError;
use super::AppState;

/// JSON bodies of the API are small; larger ones get 413.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/roles", get(roles::list).post(roles::create))
        .route("/roles/{name}", axum::routing::patch(roles::update))
        .route(
            "/modules",
            get(modules::list)
                .post(modules::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/modules/{id}",
            get(modules::get)
                .patch(modules::update)
                .delete(modules::delete),
        )
        .route(
            "/modules/{id}/shares",
            post(modules::shares::<true>).delete(modules::shares::<false>),
        )
        .route("/modules/{id}/execute", post(modules::execute))
        .route("/modules/{id}/runs", get(modules::runs))
        .route("/modules/{id}/release", post(modules::review::<false>))
        .route("/modules/{id}/quarantine", post(modules::review::<true>))
        .route("/audit/events", get(audit::events))
        .route("/audit/export", get(audit::export_api))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The OpenAPI 3 document of this API (kept true by the `openapi` integration test).
pub const OPENAPI: &str = include_str!("api/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
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
