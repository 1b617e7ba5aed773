//! `GET /audit/events` (one page, keyset-paged) and `GET /audit/export` (the whole filter as CSV or
//! JSON, streamed page by page). The dashboard's export link uses [`export`] with the browser
//! session instead of a bearer token.

use axum::{
    Json,
    body::Body,
    extract::{Query, State, rejection::QueryRejection},
    http::header,
    response::{IntoResponse, Response},
};
use platform::{
    Platform,
    access::Principal,
    audit::{AuditPage, AuditParams, AuditQuery, query::ExportFormat},
};
use serde::Deserialize;

use super::{ApiError, Caller};

/// `GET /audit/events?event=&actor=&outcome=&resource=&from=&to=&q=&after=&limit=`; `limit` is
/// 1–500 (50 when absent), as the OpenAPI document states.
pub async fn events(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let params = super::query(query, "invalid_query")?;
    let limit = super::paging("limit", params.limit, 50, 1..=500, "invalid_query")?;
    let query = AuditQuery::from_params(&AuditParams {
        limit: Some(limit),
        ..params
    })?;
    Ok(Json(platform.audit().search(&caller, &query).await?))
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<ExportFormat>,
    #[serde(flatten)]
    params: AuditParams,
}

impl ExportQuery {
    pub fn into_parts(self) -> (AuditParams, ExportFormat) {
        (self.params, self.format.unwrap_or(ExportFormat::Csv))
    }
}

/// `GET /audit/export?format=csv|json&<filters>`.
pub async fn export_api(
    State(platform): State<Platform>,
    Caller(caller): Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (params, format) = super::query(query, "invalid_query")?.into_parts();
    export(platform, caller, params, format).await
}

/// Streams every event matching the filter, newest first, as the audit service writes it
/// ([`platform::audit::AuditService::start_export`]): a refusal or a bad filter is an error status,
/// a failure later ends the body early (and is logged).
pub async fn export(
    platform: Platform,
    principal: Principal,
    params: AuditParams,
    format: ExportFormat,
) -> Result<Response, ApiError> {
    let export = platform
        .audit()
        .start_export(&principal, params, format)
        .await?;
    let disposition = format!(
        "attachment; filename=\"audit-{}.{}\"",
        platform.clock().now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let body = futures_util::stream::unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await?.map_err(|e| {
            tracing::error!(error = %platform::error_chain(&e), "audit export ended early");
            std::io::Error::other("the audit export ended early")
        });
        Some((chunk, export))
    });
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
