//! Personal-data exports over the API (see `platform::compliance::export`): `POST /me/export`
//! asks for one (202 and its status), `GET /me/exports[/{id}]` follows it, `GET
//! /me/exports/{id}/download` fetches the file once; `POST /users/{id}/export` asks for another
//! account's (administrators).

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{
    Platform,
    compliance::export::{Download, ExportRequest, ExportStatus},
};
use serde::Deserialize;

use super::{ApiError, Caller, JsonObject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    format: String,
    #[serde(default)]
    include_binaries: bool,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    passphrase: Option<secrecy::SecretString>,
}

impl From<RequestBody> for ExportRequest {
    fn from(b: RequestBody) -> Self {
        Self {
            format: b.format,
            include_binaries: b.include_binaries,
            recipient: b.recipient,
            passphrase: b.passphrase,
        }
    }
}

fn accepted(status: ExportStatus) -> Response {
    let location = format!("/api/v1/me/exports/{}", status.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(status),
    )
        .into_response()
}

pub async fn request_own(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    JsonObject(body): JsonObject<RequestBody>,
) -> Result<Response, ApiError> {
    let status = platform
        .compliance()
        .request_export(&caller, None, body.into())
        .await?;
    Ok(accepted(status))
}

pub async fn request_for(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject<RequestBody>,
) -> Result<Response, ApiError> {
    let status = platform
        .compliance()
        .request_export(&caller, Some(&id), body.into())
        .await?;
    Ok(accepted(status))
}

pub async fn list(
    State(platform): State<Platform>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ExportStatus>>, ApiError> {
    Ok(Json(platform.compliance().list_exports(&caller).await?))
}

pub async fn status(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ExportStatus>, ApiError> {
    Ok(Json(
        platform.compliance().export_status(&caller, &id).await?,
    ))
}

pub async fn download(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let file = platform.compliance().take_export(&caller, &id).await?;
    Ok(file_response(file))
}

/// The file as an attachment, streamed; never cached.
pub fn file_response(download: Download) -> Response {
    let stream = tokio_util::io::ReaderStream::new(download.file);
    let disposition = format!("attachment; filename=\"{}\"", download.file_name);
    (
        [
            (header::CONTENT_TYPE, download.content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, download.size.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
