//! API errors: a status and `{"error":{"code","message"}}`. Internal causes are logged, not sent.

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use std::collections::BTreeMap;

use platform::{
    identity::{IdentityError, auth::AuthError},
    modules::ModuleError,
    problem::{Describe, Kind},
};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Per-field messages of a validation error (omitted from the body when empty).
    fields: BTreeMap<String, Vec<String>>,
    /// `Retry-After` (seconds) and the budget that refused (`RateLimit-*`), for refusals that
    /// pass; boxed, as errors travel in every `Result`.
    wait: Option<Box<(Option<u64>, Option<platform::edge::Budget>)>>,
    /// Further members of the error object (`mfa_required`'s challenge).
    extra: BTreeMap<&'static str, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            wait: None,
            extra: BTreeMap::new(),
        }
    }

    /// Renders a service error from its problem; an internal one is logged with its cause.
    pub fn from_problem(error: &dyn Describe) -> Self {
        let problem = error.problem();
        if problem.kind == Kind::Internal {
            tracing::error!(error = %platform::error_chain(error), "internal error in the API");
        }
        let status =
            StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            code: problem.code,
            message: problem.message,
            fields: problem.fields,
            wait: (problem.retry_after.is_some() || problem.budget.is_some())
                .then(|| Box::new((problem.retry_after, problem.budget))),
            extra: problem.extra,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if !self.fields.is_empty() {
            error["fields"] = serde_json::json!(self.fields);
        }
        for (key, value) in self.extra {
            error[key] = value;
        }
        let body = serde_json::json!({ "error": error });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.wait {
            let (retry_after, budget) = *wait;
            if let Some(budget) = budget {
                crate::http::edge::budget_headers(response.headers_mut(), &budget);
            }
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.into());
            }
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_request"
        };
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(status, code, r.body_text())
    }
}

/// Every service error is rendered from its row in the one error table ([`platform::problem`]).
macro_rules! from_problem {
    ($($error:ty),+ $(,)?) => {$(
        impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                Self::from_problem(&e)
            }
        }
    )+};
}

from_problem!(
    AuthError,
    IdentityError,
    ModuleError,
    platform::modules::execute::ExecuteError,
    platform::audit::AuditError,
    platform::security::SecurityError,
    platform::compliance::ComplianceError,
);
