//! `GET /me/tokens`, `POST /me/tokens`, `DELETE /me/tokens/{id}`: the caller's personal API tokens
//! (see `platform::identity::api_tokens`). The token itself is in the creation answer only.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use platform::{
    Platform,
    identity::api_tokens::{ApiToken, NewApiToken},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, JsonObject};

pub async fn list(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(platform.identity().list_api_tokens(&caller).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    #[serde(default)]
    expires_in_days: Option<u32>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

#[derive(Serialize)]
pub struct CreatedToken {
    /// Shown this once; only its hash is stored.
    token: String,
    #[serde(flatten)]
    info: ApiToken,
}

pub async fn create(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    JsonObject(req): JsonObject<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let new = NewApiToken {
        name: req.name,
        expires_in_days: req.expires_in_days,
        permissions: req.permissions,
    };
    let issued = platform.identity().create_api_token(&caller, new).await?;
    let created = CreatedToken {
        token: issued.token.expose_secret().to_string(),
        info: issued.info,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn revoke(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    platform.identity().revoke_api_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
