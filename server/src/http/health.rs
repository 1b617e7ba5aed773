//! `GET /healthz` (the process answers) and `GET /readyz` (database reachable, schema current).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use platform::Platform;
use serde_json::json;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(platform): State<Platform>) -> impl IntoResponse {
    let r = platform.readiness().await;
    let word = |ok: bool, yes: &'static str, no: &'static str| if ok { yes } else { no };
    let body = Json(json!({
        "status": word(r.ready(), "ready", "not_ready"),
        "database": word(r.database, "ok", "unreachable"),
        "migrations": word(r.migrations, "ok", "pending"),
    }));
    let status = if r.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
