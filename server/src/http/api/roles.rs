//! `GET/POST /roles`, `PATCH /roles/{name}`: thin adapters over the identity service.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use platform::{
    Platform,
    identity::{
        Role,
        roles::{NewRole, RoleChanges, RoleWithHolders},
    },
};
use serde::Deserialize;

use super::{ApiError, Caller, JsonObject};

pub async fn list(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Vec<RoleWithHolders>>, ApiError> {
    Ok(Json(platform.identity().roles_with_holders(&caller).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    name: String,
    #[serde(default)]
    description: String,
    permissions: Vec<String>,
}

pub async fn create(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    JsonObject(req): JsonObject<CreateRole>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    let new = NewRole {
        name: req.name,
        description: req.description,
        permissions: req.permissions,
    };
    Ok((
        StatusCode::CREATED,
        Json(platform.identity().create_role(&caller, new).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    description: Option<String>,
    permissions: Option<Vec<String>>,
}

pub async fn update(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    JsonObject(req): JsonObject<UpdateRole>,
) -> Result<Json<Role>, ApiError> {
    let changes = RoleChanges {
        description: req.description,
        permissions: req.permissions,
    };
    Ok(Json(
        platform
            .identity()
            .update_role(&caller, &name, changes)
            .await?,
    ))
}
