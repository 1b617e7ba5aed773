//! The one error table: for every error a service returns, its kind (and so its HTTP status), a
//! stable code, a message safe to show the caller, and the form fields it concerns.
//!
//! The REST API (`server/src/http/api/error.rs`), the dashboard's server functions
//! (`app/src/api/error.rs`) and the CLI (`server/src/commands.rs`) all render an error from its
//! [`Problem`] and decide nothing themselves, so the same error has the same status, code and
//! message wherever it is met. A new service error is added here, once.
//!
//! Errors of kind [`Kind::Internal`] never show their cause: the adapter logs it (with
//! [`crate::error_chain`]) and shows [`INTERNAL_MESSAGE`].

use std::collections::BTreeMap;

use crate::{
    audit::AuditError,
    compliance::ComplianceError,
    identity::{IdentityError, auth::AuthError},
    modules::{ModuleError, execute::ExecuteError},
    security::SecurityError,
};

/// What the caller shows instead of an internal error's cause.
pub const INTERNAL_MESSAGE: &str = "something went wrong on the server; it has been logged";

/// The kind of an error: decides its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed (a query or cursor that does not parse).
    BadRequest,
    /// Not signed in, or the credentials are not valid.
    Unauthorized,
    /// Signed in, but lacking the permission (or a provider is turned off).
    Forbidden,
    /// The thing does not exist, or the caller may not see it.
    NotFound,
    /// The change conflicts with the current state.
    Conflict,
    /// It existed once and is gone for good (a used or expired download link).
    Gone,
    /// The upload is over a size or quota limit.
    TooLarge,
    /// Well-formed input that was refused (per-field messages, or a module the sandbox refused).
    Unprocessable,
    /// Too much in progress; try again shortly.
    TooManyRequests,
    /// Something this depends on (an identity provider) cannot be reached; try again later.
    Unavailable,
    /// Something failed underneath; logged, never shown.
    Internal,
}

impl Kind {
    /// The HTTP status of this kind.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Gone => 410,
            Self::TooLarge => 413,
            Self::Unprocessable => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

/// How an error is shown to whoever caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: Kind,
    /// Stable and machine-readable (`validation`, `module_quarantined`, `sandbox.fuel`, …).
    pub code: &'static str,
    /// One sentence, safe to show.
    pub message: String,
    /// The form fields the error is about, each with its messages (empty when it concerns none).
    pub fields: BTreeMap<String, Vec<String>>,
    /// When to try again, in seconds (`Retry-After`), for refusals that pass.
    pub retry_after: Option<u64>,
    /// The budget that refused (`RateLimit-*` headers).
    pub budget: Option<crate::edge::Budget>,
    /// Further members of the error object (`mfa_required`'s `challenge_id` and `methods`).
    pub extra: BTreeMap<&'static str, serde_json::Value>,
}

impl Problem {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
            budget: None,
            extra: BTreeMap::new(),
        }
    }

    /// The same problem, shown next to `field` in a form.
    pub fn on_field(mut self, field: &str) -> Self {
        self.fields
            .insert(field.to_string(), vec![self.message.clone()]);
        self
    }

    /// Input refused, with messages per field; the message lists them all in one line.
    pub fn invalid(fields: &BTreeMap<String, Vec<String>>) -> Self {
        Self {
            kind: Kind::Unprocessable,
            code: "validation",
            message: format_fields(fields),
            fields: fields.clone(),
            retry_after: None,
            budget: None,
            extra: BTreeMap::new(),
        }
    }

    /// An internal failure: the caller sees [`INTERNAL_MESSAGE`], the cause goes to the log.
    pub fn internal() -> Self {
        Self::new(Kind::Internal, "internal", INTERNAL_MESSAGE)
    }

    /// The HTTP status of this problem.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

/// Per-field messages as one line: `field message, message; field message`.
pub fn format_fields(fields: &BTreeMap<String, Vec<String>>) -> String {
    fields
        .iter()
        .map(|(f, msgs)| format!("{f} {}", msgs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An error that knows how it is shown. Implemented once per service error, in this file.
pub trait Describe: std::error::Error + 'static {
    fn problem(&self) -> Problem;
}

impl Describe for AuthError {
    fn problem(&self) -> Problem {
        match self {
            // The dashboard shows it under the password: the form's last field, and the message
            // never says which part was wrong.
            Self::InvalidCredentials => {
                Problem::new(Kind::Unauthorized, "unauthorized", self.to_string())
                    .on_field("password")
            }
            Self::InvalidToken => {
                Problem::new(Kind::Unauthorized, "unauthorized", self.to_string())
            }
            Self::LocalDisabled => {
                Problem::new(Kind::Forbidden, "local_login_disabled", self.to_string())
                    .on_field("password")
            }
            Self::ProviderUnavailable(_) => {
                Problem::new(Kind::Unavailable, "provider_unavailable", self.to_string())
                    .on_field("password")
            }
            Self::Limited(inner) => inner.problem().on_field("password"),
            Self::MfaRequired { challenge, methods } => {
                let mut problem =
                    Problem::new(Kind::Unauthorized, "mfa_required", self.to_string());
                problem
                    .extra
                    .insert("challenge_id", challenge.clone().into());
                problem.extra.insert("methods", serde_json::json!(methods));
                problem
            }
            Self::MfaEnrolmentRequired => {
                Problem::new(Kind::Forbidden, "mfa_enrolment_required", self.to_string())
            }
            Self::PasskeyUnavailable(_) => {
                Problem::new(Kind::BadRequest, "passkey_unavailable", self.to_string())
                    .on_field("passkey")
            }
            Self::MfaChallenge => Problem::new(
                Kind::Unauthorized,
                "mfa_challenge_expired",
                self.to_string(),
            ),
            Self::MfaWrongCode => {
                Problem::new(Kind::Unauthorized, "mfa_failed", self.to_string()).on_field("code")
            }
            Self::MfaLocked { retry_after } => {
                let mut problem =
                    Problem::new(Kind::TooManyRequests, "mfa_locked", self.to_string())
                        .on_field("code");
                problem.retry_after = Some(*retry_after);
                problem
            }
            Self::Internal(inner) => inner.problem(),
        }
    }
}

impl Describe for crate::edge::EdgeError {
    fn problem(&self) -> Problem {
        use crate::edge::EdgeError;
        let message = self.to_string();
        let mut problem = match self {
            EdgeError::Blacklisted => Problem::new(Kind::Forbidden, "ip_blacklisted", message),
            EdgeError::Blocked { .. } => Problem::new(Kind::Forbidden, "ip_blocked", message),
            EdgeError::RateLimited { .. } => {
                Problem::new(Kind::TooManyRequests, "rate_limited", message)
            }
            EdgeError::Throttled { .. } => {
                Problem::new(Kind::TooManyRequests, "throttled", message)
            }
        };
        problem.retry_after = self.retry_after();
        problem.budget = self.budget();
        problem
    }
}

impl Describe for crate::edge::EdgeAdminError {
    fn problem(&self) -> Problem {
        use crate::edge::EdgeAdminError;
        let message = self.to_string();
        match self {
            EdgeAdminError::Forbidden(_) => Problem::new(Kind::Forbidden, "forbidden", message),
            EdgeAdminError::NotBlocked(_) => Problem::new(Kind::NotFound, "not_found", message),
            EdgeAdminError::Store(_) | EdgeAdminError::Audit(_) => Problem::internal(),
        }
    }
}

impl Describe for IdentityError {
    fn problem(&self) -> Problem {
        let message = self.to_string();
        match self {
            Self::Forbidden(_) => Problem::new(Kind::Forbidden, "forbidden", message),
            Self::UnknownUser(_)
            | Self::UnknownRole(_)
            | Self::UnknownToken(_)
            | Self::UnknownIdentity(_)
            | Self::UnknownFactor(_) => Problem::new(Kind::NotFound, "not_found", message),
            Self::Invalid(fields) => Problem::invalid(fields),
            Self::Conflict(_) => Problem::new(Kind::Conflict, "conflict", message),
            Self::LastAdmin => Problem::new(Kind::Conflict, "last_admin", message),
            Self::Hash(_) | Self::Token(_) | Self::Db(_) | Self::Audit(_) => Problem::internal(),
        }
    }
}

impl Describe for ModuleError {
    fn problem(&self) -> Problem {
        let message = self.to_string();
        match self {
            Self::Limited(inner) => inner.problem(),
            Self::Forbidden(_) => Problem::new(Kind::Forbidden, "forbidden", message),
            Self::NotFound(_) => Problem::new(Kind::NotFound, "not_found", message),
            Self::Invalid(fields) => Problem::invalid(fields),
            // The upload form's one field is the file.
            Self::InvalidWasm(_) => {
                Problem::new(Kind::Unprocessable, "invalid_module", message).on_field("file")
            }
            Self::Empty => Problem::new(Kind::BadRequest, "empty_module", message).on_field("file"),
            Self::TooLarge { .. } => {
                Problem::new(Kind::TooLarge, "payload_too_large", message).on_field("file")
            }
            Self::QuotaExceeded { .. } => {
                Problem::new(Kind::TooLarge, "quota_exceeded", message).on_field("file")
            }
            Self::Quarantined(_) => Problem::new(Kind::Conflict, "module_quarantined", message),
            Self::InReview(_) => Problem::new(Kind::Conflict, "module_in_review", message),
            Self::Conflict(_) => Problem::new(Kind::Conflict, "conflict", message),
            Self::Storage(_) | Self::Db(_) | Self::Audit(_) => Problem::internal(),
        }
    }
}

impl Describe for ExecuteError {
    fn problem(&self) -> Problem {
        match self {
            Self::Module(inner) => inner.problem(),
            Self::Busy(busy) => {
                Problem::new(Kind::TooManyRequests, "sandbox.busy", busy.to_string())
            }
            Self::Prepare { .. } | Self::Sandbox { .. } => {
                let code = self.sandbox_code().unwrap_or("sandbox.trap");
                let run = self
                    .run_id()
                    .map(|r| format!(" (run {r})"))
                    .unwrap_or_default();
                Problem::new(Kind::Unprocessable, code, format!("{self}{run}"))
            }
        }
    }
}

impl Describe for AuditError {
    fn problem(&self) -> Problem {
        match self {
            Self::Forbidden => Problem::new(Kind::Forbidden, "forbidden", self.to_string()),
            Self::Query { field, message } => {
                let mut problem = Problem::new(Kind::BadRequest, "invalid_query", self.to_string());
                problem
                    .fields
                    .insert((*field).to_string(), vec![message.clone()]);
                problem
            }
            Self::Store(_)
            | Self::Malformed { .. }
            | Self::Journal(_)
            | Self::Open { .. }
            | Self::Verify(_)
            | Self::Key(_) => Problem::internal(),
        }
    }
}

impl Describe for SecurityError {
    fn problem(&self) -> Problem {
        match self {
            Self::Forbidden(_) => Problem::new(Kind::Forbidden, "forbidden", self.to_string()),
            Self::Db(_) | Self::Audit(_) => Problem::internal(),
        }
    }
}

impl Describe for ComplianceError {
    fn problem(&self) -> Problem {
        let message = self.to_string();
        match self {
            Self::Forbidden(_) => Problem::new(Kind::Forbidden, "forbidden", message),
            Self::Disabled(_) => Problem::new(Kind::Forbidden, "feature_disabled", message),
            Self::UnknownUser(_)
            | Self::UnknownExport(_)
            | Self::UnknownErasure(_)
            | Self::UnknownSettings(_) => Problem::new(Kind::NotFound, "not_found", message),
            Self::ErasureStarted(_) => Problem::new(Kind::Conflict, "erasure_started", message),
            Self::Stale(_) => Problem::new(Kind::Conflict, "settings_changed", message),
            Self::Invalid(fields) => Problem::invalid(fields),
            Self::Busy(_) => Problem::new(Kind::TooManyRequests, "export_in_progress", message),
            Self::NotReady(_) => Problem::new(Kind::Conflict, "export_not_ready", message),
            Self::Failed => Problem::new(Kind::Conflict, "export_failed", message),
            Self::Downloaded => Problem::new(Kind::Gone, "export_downloaded", message),
            Self::Expired => Problem::new(Kind::Gone, "export_expired", message),
            Self::Db(_) | Self::Audit(_) | Self::Io(_) | Self::Step(_) => Problem::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_show_their_cause() {
        let e = ModuleError::Db(sea_orm::DbErr::Custom(
            "password=hunter2 at 10.0.0.7".into(),
        ));
        let p = e.problem();
        assert_eq!(p.kind, Kind::Internal);
        assert_eq!(p.status(), 500);
        assert_eq!(p.message, INTERNAL_MESSAGE);
        assert!(p.fields.is_empty());
    }

    #[test]
    fn validation_names_each_field_and_lists_them_in_the_message() {
        let fields: BTreeMap<String, Vec<String>> = [
            (
                "email".to_string(),
                vec!["is not an email address".to_string()],
            ),
            (
                "username".to_string(),
                vec!["is taken".to_string(), "is too short".to_string()],
            ),
        ]
        .into();
        let p = IdentityError::Invalid(fields.clone()).problem();
        assert_eq!((p.status(), p.code), (422, "validation"));
        assert_eq!(p.fields, fields);
        assert_eq!(
            p.message,
            "email is not an email address; username is taken, is too short"
        );
    }

    #[test]
    fn wrong_credentials_are_401_and_shown_under_the_password() {
        let p = AuthError::InvalidCredentials.problem();
        assert_eq!((p.status(), p.code), (401, "unauthorized"));
        assert_eq!(p.fields["password"], vec!["invalid username or password"]);
    }

    #[test]
    fn an_audit_query_error_names_its_field_without_parsing_the_message() {
        let e = AuditError::Query {
            field: "from",
            message: "must be before to".into(),
        };
        let p = e.problem();
        assert_eq!((p.status(), p.code), (400, "invalid_query"));
        assert_eq!(p.fields["from"], vec!["must be before to"]);
        assert_eq!(p.message, "invalid audit query: from: must be before to");
    }

    #[test]
    fn a_quarantined_module_has_its_own_code() {
        let p = ModuleError::Quarantined("m1".into()).problem();
        assert_eq!((p.status(), p.code), (409, "module_quarantined"));
    }
}
