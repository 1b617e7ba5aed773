//! One log line per request, with its request id. Only the path is logged: query strings can carry
//! tokens.

use std::time::Instant;

use axum::{extract::Request, middleware::Next, response::Response};

pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(target: "http", %method, %path, status, latency_ms = format_args!("{latency_ms:.2}"), %request_id, "request");
    response
}
