//! Erasure requests over the API (see `platform::compliance::erasure`): `POST /me/erasure` asks
//! for the caller's own (password again), `GET /me/erasure` shows it, `DELETE /me/erasure` cancels
//! it before it runs; administrators (`users:delete`) list requests (`GET /erasures`), approve or
//! reject them, and erase an account directly (`POST /users/{id}/erasure`).

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{
    Platform,
    compliance::{ComplianceError, erasure::Erasure},
};
use serde::Deserialize;

use super::{ApiError, Caller, JsonObject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    password: secrecy::SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

/// 404 for a caller who never asked (the router's own 404 means "no such endpoint").
fn none_yet() -> ComplianceError {
    ComplianceError::UnknownErasure("for this account".into())
}

fn accepted(erasure: Erasure, location: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.to_string())],
        Json(erasure),
    )
        .into_response()
}

pub async fn request_own(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    JsonObject(body): JsonObject<RequestBody>,
) -> Result<Response, ApiError> {
    let erasure = platform
        .compliance()
        .request_erasure(&caller, &body.password)
        .await?;
    Ok(accepted(erasure, "/api/v1/me/erasure"))
}

/// The caller's latest request; 404 when there is none.
pub async fn own(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Erasure>, ApiError> {
    platform
        .compliance()
        .own_erasure(&caller)
        .await?
        .map(Json)
        .ok_or_else(|| none_yet().into())
}

pub async fn cancel_own(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Erasure>, ApiError> {
    let compliance = platform.compliance();
    let Some(own) = compliance.own_erasure(&caller).await? else {
        return Err(none_yet().into());
    };
    Ok(Json(compliance.cancel_erasure(&caller, &own.id).await?))
}

pub async fn list(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<Erasure>>, ApiError> {
    let query = super::query(query, "invalid_query")?;
    let open_only = match query.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("status must be open or all, not {other:?}"),
            ));
        }
    };
    Ok(Json(
        platform
            .compliance()
            .list_erasures(&caller, open_only)
            .await?,
    ))
}

pub async fn approve(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Erasure>, ApiError> {
    Ok(Json(
        platform.compliance().approve_erasure(&caller, &id).await?,
    ))
}

pub async fn reject(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject<RejectBody>,
) -> Result<Json<Erasure>, ApiError> {
    Ok(Json(
        platform
            .compliance()
            .reject_erasure(&caller, &id, &body.reason)
            .await?,
    ))
}

pub async fn erase_user(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let erasure = platform
        .compliance()
        .request_erasure_for(&caller, &id)
        .await?;
    Ok(accepted(erasure, "/api/v1/erasures?status=all"))
}
