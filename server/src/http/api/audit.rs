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
    audit::{
        AuditPage, AuditParams, AuditQuery,
        query::{CSV_HEADER, csv_row},
    },
};
use serde::Deserialize;

use super::{ApiError, Caller};

/// Rows fetched per page while exporting.
const EXPORT_PAGE: u64 = 500;

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

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<Format>,
    #[serde(flatten)]
    params: AuditParams,
}

impl ExportQuery {
    pub fn into_parts(self) -> (AuditParams, Format) {
        (self.params, self.format.unwrap_or(Format::Csv))
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

/// Streams every event matching the filter, newest first. The first page is read before the
/// response starts, so a refusal or a bad filter is a proper error status; a failure later ends
/// the body early (and is logged). The service records the export as `data_export`.
pub async fn export(
    platform: Platform,
    principal: Principal,
    params: AuditParams,
    format: Format,
) -> Result<Response, ApiError> {
    let filter = serde_json::to_value(&params).unwrap_or_default();
    let mut query = AuditQuery::from_params(&AuditParams {
        after: String::new(),
        limit: None,
        ..params
    })?;
    query.limit = EXPORT_PAGE;
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let first = platform
        .audit()
        .export(&principal, &query, filter, extension)
        .await?;
    let now = platform.clock().now();
    struct State {
        platform: Platform,
        principal: Principal,
        query: AuditQuery,
        page: Option<AuditPage>,
        started: bool,
        wrote: bool,
        done: bool,
    }
    let state = State {
        platform,
        principal,
        query,
        page: Some(first),
        started: false,
        wrote: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        let mut out = String::new();
        if !st.started {
            st.started = true;
            out.push_str(if format == Format::Csv {
                CSV_HEADER
            } else {
                "["
            });
        }
        let page = match st.page.take() {
            Some(page) => page,
            None => match st.platform.audit().search(&st.principal, &st.query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %platform::error_chain(&e), "audit export ended early");
                    st.done = true;
                    return Some((
                        Err(std::io::Error::other("the audit export ended early")),
                        st,
                    ));
                }
            },
        };
        for event in &page.events {
            match format {
                Format::Csv => out.push_str(&csv_row(event)),
                Format::Json => {
                    if st.wrote {
                        out.push(',');
                    }
                    st.wrote = true;
                    out.push_str(&serde_json::to_string(event).unwrap_or_default());
                }
            }
        }
        match page.next {
            Some(next) => st.query.after = Some(next),
            None => {
                st.done = true;
                if format == Format::Json {
                    out.push(']');
                }
            }
        }
        Some((Ok::<_, std::io::Error>(out), st))
    });
    let disposition = format!(
        "attachment; filename=\"audit-{}.{extension}\"",
        now.format("%Y%m%dT%H%M%SZ")
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
