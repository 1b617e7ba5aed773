//! API errors: a status and `{"error":{"code","message"}}`. Internal causes are logged, not sent.

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use platform::{
    identity::{IdentityError, auth::AuthError},
    modules::ModuleError,
};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
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

    fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %platform::error_chain(cause), "internal error in the API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
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

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials | AuthError::InvalidToken => {
                Self::unauthorized(e.to_string())
            }
            AuthError::LocalDisabled => {
                Self::new(StatusCode::FORBIDDEN, "local_login_disabled", e.to_string())
            }
            AuthError::Internal(inner) => inner.into(),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match &e {
            IdentityError::Forbidden(_) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            IdentityError::UnknownUser(_) | IdentityError::UnknownRole(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            IdentityError::Invalid(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                e.to_string(),
            ),
            IdentityError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            IdentityError::LastAdmin => {
                Self::new(StatusCode::CONFLICT, "last_admin", e.to_string())
            }
            IdentityError::Hash(_)
            | IdentityError::Token(_)
            | IdentityError::Db(_)
            | IdentityError::Audit(_) => Self::internal(&e),
        }
    }
}

impl From<ModuleError> for ApiError {
    fn from(e: ModuleError) -> Self {
        match &e {
            ModuleError::Forbidden(_) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            ModuleError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            ModuleError::Invalid(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                e.to_string(),
            ),
            ModuleError::InvalidWasm(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_module",
                e.to_string(),
            ),
            ModuleError::Empty => Self::new(StatusCode::BAD_REQUEST, "empty_module", e.to_string()),
            ModuleError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            ModuleError::Quarantined(_) => {
                Self::new(StatusCode::CONFLICT, "module_quarantined", e.to_string())
            }
            ModuleError::InReview(_) => {
                Self::new(StatusCode::CONFLICT, "module_in_review", e.to_string())
            }
            ModuleError::QuotaExceeded { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "quota_exceeded",
                e.to_string(),
            ),
            ModuleError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            ModuleError::Storage(_) | ModuleError::Db(_) | ModuleError::Audit(_) => {
                Self::internal(&e)
            }
        }
    }
}

impl From<platform::modules::execute::ExecuteError> for ApiError {
    fn from(e: platform::modules::execute::ExecuteError) -> Self {
        use platform::modules::execute::ExecuteError;
        match e {
            ExecuteError::Module(inner) => inner.into(),
            ExecuteError::Busy(busy) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sandbox.busy",
                busy.to_string(),
            ),
            ref sandboxed => {
                let code = sandboxed.sandbox_code().unwrap_or("sandbox.trap");
                let run = sandboxed
                    .run_id()
                    .map(|r| format!(" (run {r})"))
                    .unwrap_or_default();
                Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    code,
                    format!("{sandboxed}{run}"),
                )
            }
        }
    }
}

impl From<platform::audit::AuditError> for ApiError {
    fn from(e: platform::audit::AuditError) -> Self {
        use platform::audit::AuditError;
        match &e {
            AuditError::Forbidden => Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            AuditError::Query(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
            }
            _ => Self::internal(&e),
        }
    }
}
