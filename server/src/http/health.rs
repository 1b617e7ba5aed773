//! `GET /healthz` (the process answers) and `GET /readyz` (database reachable, schema current).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use platform::Platform;
use serde_json::json;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(
    State(platform): State<Platform>,
    State(tls): State<super::TlsState>,
) -> impl IntoResponse {
    let r = platform.readiness().await;
    // Evidence for soc2.yml encryption_in_transit: what TLS is in force and when the certificate
    // expires (warned about 30 days before).
    let tls = match &tls.0 {
        None => json!({ "enabled": false }),
        Some(tls) => {
            let info = tls.info();
            let days_left = info.days_left(chrono::Utc::now());
            json!({
                "enabled": true,
                "min_version": tls.summary.min_version,
                "cipher_suites": tls.summary.cipher_suites,
                "client_auth": tls.summary.client_auth,
                "certificate": {
                    "subject": info.subject,
                    "not_after": info.not_after,
                    "days_left": days_left,
                    "expires_soon": days_left < 30,
                },
            })
        }
    };
    let word = |ok: bool, yes: &'static str, no: &'static str| if ok { yes } else { no };
    let body = Json(json!({
        "status": word(r.ready(), "ready", "not_ready"),
        "database": word(r.database, "ok", "unreachable"),
        "migrations": word(r.migrations, "ok", "pending"),
        "tls": tls,
    }));
    let status = if r.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
