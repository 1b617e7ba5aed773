//! A failed server function answers with the status its error has in the REST API.
//!
//! Leptos answers every server function error with 500 and the encoded `AppError`, which carries
//! the status from the one error table (`platform::problem`). This layer puts that status on the
//! response, so a dashboard call and a REST call for the same error agree on the wire. A plain form
//! post without JavaScript is answered with a redirect instead, which this leaves alone.

use axum::{
    body::Body,
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;

/// The largest error body read back; `AppError`s are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        tracing::error!("a server function's error body could not be read back");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let status = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("status").and_then(serde_json::Value::as_u64))
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (400..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok());
    if let Some(status) = status {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}
