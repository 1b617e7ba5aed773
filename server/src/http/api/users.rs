//! `GET/POST /users`, `GET/PATCH/DELETE /users/{id}`: thin adapters over the identity service.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use platform::{
    Platform,
    identity::{NewUser, User, UserChanges},
};
use secrecy::SecretString;
use serde::Deserialize;

use super::{ApiError, Caller, JsonObject};

pub async fn list(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(platform.identity().list_users(&caller).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    email: String,
    password: SecretString,
    roles: Vec<String>,
}

pub async fn create(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    JsonObject(req): JsonObject<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let new = NewUser {
        username: req.username,
        email: req.email,
        password: req.password,
        roles: req.roles,
    };
    Ok((
        StatusCode::CREATED,
        Json(platform.identity().create_user(&caller, new).await?),
    ))
}

pub async fn get(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(platform.identity().get_user(&caller, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    email: Option<String>,
    password: Option<SecretString>,
    #[serde(default)]
    add_roles: Vec<String>,
    #[serde(default)]
    remove_roles: Vec<String>,
    disabled: Option<bool>,
}

pub async fn update(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(req): JsonObject<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    let changes = UserChanges {
        email: req.email,
        password: req.password,
        add_roles: req.add_roles,
        remove_roles: req.remove_roles,
    };
    Ok(Json(
        platform
            .identity()
            .update_user_by_id(&caller, &id, changes, req.disabled)
            .await?,
    ))
}

pub async fn delete(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    platform.identity().delete_user(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes every second factor of a user (`users:update`); they enrol again where soc2.yml
/// requires.
pub async fn reset_mfa(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    platform.identity().reset_mfa(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
