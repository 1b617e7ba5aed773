//! The dashboard's plain HTTP endpoints, for what a server function cannot carry: module upload
//! from the browser (a multipart form works without JavaScript, answered with a redirect; the
//! hydrated page sends the same form with `XMLHttpRequest` to show upload progress and gets JSON
//! back), and the file downloads (the audit export, a personal-data export).

use axum::{
    Json,
    body::Body,
    extract::{Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use platform::{
    Platform,
    access::Principal,
    identity::sessions::{SESSION_USER_KEY, SessionUser},
};
use tower_sessions::Session;

use super::api::{
    ApiError,
    modules::{UploadQuery, staged_upload},
};

/// The signed-in principal of a browser session, if it still stands.
pub async fn session_principal(platform: &Platform, session: &Session) -> Option<Principal> {
    let user = session
        .get::<SessionUser>(SESSION_USER_KEY)
        .await
        .ok()
        .flatten()?;
    platform
        .identity()
        .session_principal(&user, platform.session_timeouts())
        .await
        .ok()
        .flatten()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// `POST /modules/upload`.
pub async fn upload(
    State(platform): State<Platform>,
    session: Session,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    request: Request<Body>,
) -> Response {
    let json = wants_json(request.headers());
    let result = async {
        let Some(principal) = session_principal(&platform, &session).await else {
            return Err(ApiError::unauthorized("please sign in"));
        };
        let Query(query) = query.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
        })?;
        platform.modules().check_can_upload(&principal).await?;
        let (meta, staged) = staged_upload(&platform, request, query).await?;
        Ok(platform.modules().upload(&principal, meta, staged).await?)
    }
    .await;
    match (result, json) {
        (Ok(module), true) => (StatusCode::CREATED, Json(module)).into_response(),
        (Ok(module), false) => {
            Redirect::to(&format!("/modules/{}?uploaded=1", module.id)).into_response()
        }
        (Err(e), true) => e.into_response(),
        (Err(e), false) if e.status() == StatusCode::UNAUTHORIZED => {
            Redirect::to("/login?next=/modules/upload").into_response()
        }
        // Only the code travels in the URL: the page shows its own message for known codes, so
        // a link cannot make the page say anything else.
        (Err(e), false) => {
            Redirect::to(&format!("/modules/upload?error={}", urlencode(e.code()))).into_response()
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /audit/export?format=csv|json&<filters>`: the Audit page's export link, with the browser
/// session. Signed-out browsers are sent to sign in and come back.
pub async fn audit_export(
    State(platform): State<Platform>,
    session: Session,
    query: Result<Query<super::api::audit::ExportQuery>, axum::extract::rejection::QueryRejection>,
    uri: axum::http::Uri,
) -> Response {
    let Some(principal) = session_principal(&platform, &session).await else {
        let back = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/audit");
        return Redirect::to(&format!("/login?next={}", urlencode(back))).into_response();
    };
    let result = async {
        let Query(query) = query
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
        let (params, format) = query.into_parts();
        super::api::audit::export(platform, principal, params, format).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /account/exports/{id}/download`: the account page's download link. It works once; a
/// refusal (used, expired, not ready, not yours) goes back to the page, which says why.
pub async fn export_download(
    State(platform): State<Platform>,
    session: Session,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(principal) = session_principal(&platform, &session).await else {
        return Redirect::to("/login?next=/account%23exports").into_response();
    };
    match platform.compliance().take_export(&principal, &id).await {
        Ok(file) => super::api::exports::file_response(file),
        Err(e) => {
            let problem = platform::problem::Describe::problem(&e);
            if problem.kind == platform::problem::Kind::Internal {
                tracing::error!(error = %platform::error_chain(&e), "an export download failed");
            }
            Redirect::to(&format!("/account?export_error={}#exports", problem.code)).into_response()
        }
    }
}
