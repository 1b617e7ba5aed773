//! `/modules`: upload (raw `application/wasm` or multipart), list, detail, rename, delete, shares,
//! quarantine and release — thin adapters over the module service.

use axum::{
    Json,
    body::Body,
    extract::{FromRequest, Multipart, Path, Query, Request, State, rejection::QueryRejection},
    http::{StatusCode, header},
};
use futures_util::TryStreamExt;
use platform::{
    Platform,
    modules::{Grantee, ModuleFilter, ModuleInfo, ModuleStatus, UploadMeta, storage::Staged},
};
use serde::{Deserialize, Serialize};
use tokio_util::io::StreamReader;

use super::{ApiError, Caller, JsonObject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: Option<String>,
    #[serde(default)]
    description: String,
}

fn io_error<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The largest text field (`name`, `description`) a multipart upload may carry; the body limit is
/// off for uploads, so without it a field would be read whole into memory.
pub const MAX_FORM_FIELD: usize = 64 * 1024;

/// Reads a text field of an upload form, refusing one over [`MAX_FORM_FIELD`] bytes with 413
/// before holding more than that.
async fn small_field(
    mut field: axum::extract::multipart::Field<'_>,
    label: &str,
) -> Result<String, ApiError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
        if bytes.len() + chunk.len() > MAX_FORM_FIELD {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the \"{label}\" field is larger than {} KiB",
                    MAX_FORM_FIELD / 1024
                ),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the \"{label}\" field is not UTF-8 text"),
        )
    })
}

/// Streams the module out of a multipart form (`name`, `description`, `file`) or a raw body.
pub async fn staged_upload(
    platform: &Platform,
    request: Request,
    query: UploadQuery,
) -> Result<(UploadMeta, Staged), ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, &()).await.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
        })?;
        let mut meta = UploadMeta {
            name: query.name.unwrap_or_default(),
            description: query.description,
        };
        let mut staged = None;
        let mut file_name = String::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?
        {
            match field.name() {
                Some("name") => meta.name = small_field(field, "name").await?,
                Some("description") => meta.description = small_field(field, "description").await?,
                Some("file") => {
                    file_name = field
                        .file_name()
                        .unwrap_or_default()
                        .trim_end_matches(".wasm")
                        .to_string();
                    let reader = StreamReader::new(field.map_err(io_error));
                    staged = Some(platform.modules().stage(reader).await?);
                }
                _ => {}
            }
        }
        // A form's empty name field (in whatever order the fields came) falls back to the file name.
        if meta.name.trim().is_empty() {
            meta.name = file_name;
        }
        let staged = staged.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the form has no \"file\" field",
            )
        })?;
        Ok((meta, staged))
    } else {
        let meta = UploadMeta {
            name: query.name.unwrap_or_default(),
            description: query.description,
        };
        let reader = StreamReader::new(request.into_body().into_data_stream().map_err(io_error));
        Ok((meta, platform.modules().stage(reader).await?))
    }
}

pub async fn upload(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    query: Result<Query<UploadQuery>, QueryRejection>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<ModuleInfo>), ApiError> {
    let query = super::query(query, "invalid_request")?;
    // Refuse before reading the body (the service records the denial).
    platform.modules().check_can_upload(&caller).await?;
    let (meta, staged) = staged_upload(&platform, request, query).await?;
    Ok((
        StatusCode::CREATED,
        Json(platform.modules().upload(&caller, meta, staged).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    owner: Option<String>,
    q: Option<String>,
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    per_page: Option<u64>,
}

/// Pages of the module list: bounded, so the offset (page - 1) × per_page cannot overflow.
const MAX_PAGE: std::ops::RangeInclusive<u64> = 1..=1_000_000;

#[derive(Serialize)]
pub struct ModulePage {
    modules: Vec<ModuleInfo>,
    total: u64,
    page: u64,
    per_page: u64,
}

pub async fn list(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ModulePage>, ApiError> {
    let q = super::query(query, "invalid_request")?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ModuleStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("status must be active, review or quarantined, not \"{s}\""),
            )
        })?),
    };
    let page = super::paging("page", q.page, 1, MAX_PAGE, "invalid_request")?;
    let per_page = super::paging("per_page", q.per_page, 50, 1..=200, "invalid_request")?;
    let filter = ModuleFilter {
        status,
        owner: q.owner,
        q: q.q,
    };
    let (modules, total) = platform
        .modules()
        .list(&caller, &filter, (page - 1) * per_page, per_page)
        .await?;
    Ok(Json(ModulePage {
        modules,
        total,
        page,
        per_page,
    }))
}

pub async fn get(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ModuleInfo>, ApiError> {
    Ok(Json(platform.modules().get(&caller, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateModule {
    name: Option<String>,
    description: Option<String>,
}

pub async fn update(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(req): JsonObject<UpdateModule>,
) -> Result<Json<ModuleInfo>, ApiError> {
    Ok(Json(
        platform
            .modules()
            .update(&caller, &id, req.name, req.description)
            .await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn delete(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    query: Result<Query<Reason>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let q = super::query(query, "invalid_request")?;
    platform.modules().delete(&caller, &id, q.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    user: Option<String>,
    role: Option<String>,
}

fn grantee(req: ShareRequest) -> Result<Grantee, ApiError> {
    match (req.user, req.role) {
        (Some(u), None) => Ok(Grantee::User(u)),
        (None, Some(r)) => Ok(Grantee::Role(r)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give exactly one of \"user\" or \"role\"",
        )),
    }
}

/// `POST` (share, `SHARE = true`) and `DELETE` (unshare) `/modules/{id}/shares`.
pub async fn shares<const SHARE: bool>(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(req): JsonObject<ShareRequest>,
) -> Result<Json<ModuleInfo>, ApiError> {
    let grantee = grantee(req)?;
    let modules = platform.modules();
    let info = if SHARE {
        modules.share(&caller, &id, grantee).await?
    } else {
        modules.unshare(&caller, &id, grantee).await?
    };
    Ok(Json(info))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    reason: String,
}

/// `POST /modules/{id}/quarantine` (`QUARANTINE = true`) and `POST /modules/{id}/release`.
pub async fn review<const QUARANTINE: bool>(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(req): JsonObject<ReviewRequest>,
) -> Result<Json<ModuleInfo>, ApiError> {
    Ok(Json(
        platform
            .modules()
            .set_quarantine(&caller, &id, QUARANTINE, &req.reason)
            .await?,
    ))
}

pub async fn execute(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonObject(req): JsonObject<platform::modules::execute::ExecuteRequest>,
) -> Result<Json<platform::modules::execute::RunResult>, ApiError> {
    Ok(Json(platform.modules().execute(&caller, &id, req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<u64>,
}

pub async fn runs(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Vec<platform::modules::execute::RunSummary>>, ApiError> {
    let q = super::query(query, "invalid_request")?;
    let limit = super::paging("limit", q.limit, 50, 1..=500, "invalid_request")?;
    Ok(Json(platform.modules().runs(&caller, &id, limit).await?))
}
