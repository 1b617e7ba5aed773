//! `AppError`: the one error type every server function returns.
//!
//! On the server it is made from a service error's row in the one error table
//! (`platform::problem`), so it carries the same status, code, message and fields as the REST API
//! gives for the same error; the server answers a failed server function with that status.

use std::collections::BTreeMap;

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// The HTTP status the same error has in the REST API; 0 when no answer came back.
    pub status: u16,
    /// A stable machine-readable code, as in REST error bodies.
    pub code: String,
    /// One sentence, safe to show.
    pub message: String,
    /// Messages per form field (empty when the error concerns no field).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Vec<String>>,
}

impl AppError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    /// Not signed in, or the session no longer stands.
    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized", "please sign in")
    }

    /// soc2.yml requires a second factor of this account and none is enrolled yet: the session
    /// reaches only the enrolment page.
    pub fn mfa_enrolment_required() -> Self {
        Self::new(
            403,
            "mfa_enrolment_required",
            "your role requires a second factor: enrol an authenticator app to continue",
        )
    }

    /// Whether the session must enrol a second factor before anything else.
    pub fn is_enrolment_required(&self) -> bool {
        self.code == "mfa_enrolment_required"
    }

    /// Input the server function itself refused, shown next to `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(422, "validation", format!("{field} {message}"));
        e.fields.insert(field.to_string(), vec![message]);
        e
    }

    /// Something failed on the server; details are in the server log only.
    pub fn internal_error() -> Self {
        Self::new(
            500,
            "internal",
            "something went wrong on the server; it has been logged",
        )
    }

    /// The caller must sign in (again).
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }

    /// The caller lacks the permission.
    pub fn is_forbidden(&self) -> bool {
        self.status == 403
    }

    /// Logs `cause` with its chain on the server and returns the opaque internal error.
    #[cfg(feature = "ssr")]
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %platform::error_chain(cause), "internal error");
        Self::internal_error()
    }

    /// A service error, rendered from its row in the error table (internal ones are logged).
    #[cfg(feature = "ssr")]
    pub fn from_problem(error: &dyn platform::problem::Describe) -> Self {
        let problem = error.problem();
        if problem.kind == platform::problem::Kind::Internal {
            return Self::internal(error);
        }
        Self {
            status: problem.status(),
            code: problem.code.to_string(),
            message: problem.message,
            fields: problem.fields,
        }
    }
}

/// Every service error a server function meets converts through the one error table.
#[cfg(feature = "ssr")]
macro_rules! from_problem {
    ($($error:ty),+ $(,)?) => {$(
        impl From<$error> for AppError {
            fn from(e: $error) -> Self {
                Self::from_problem(&e)
            }
        }
    )+};
}

#[cfg(feature = "ssr")]
from_problem!(
    platform::identity::auth::AuthError,
    platform::identity::IdentityError,
    platform::modules::ModuleError,
    platform::modules::execute::ExecuteError,
    platform::audit::AuditError,
    platform::security::SecurityError,
    platform::compliance::ComplianceError,
    platform::edge::EdgeError,
    platform::edge::EdgeAdminError,
);

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The arguments the browser sent did not decode: the request was malformed.
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                Self::new(400, "invalid_request", m)
            }
            other => Self::new(0, "transport", format!("the request failed: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_error_names_the_field_in_its_message_and_fields() {
        let e = AppError::invalid("env", "\"x\" is not KEY=VALUE");
        assert_eq!((e.status, e.code.as_str()), (422, "validation"));
        assert_eq!(e.to_string(), "env \"x\" is not KEY=VALUE");
        assert_eq!(e.fields["env"], vec!["\"x\" is not KEY=VALUE"]);
    }

    #[test]
    fn arguments_that_do_not_decode_are_a_bad_request_and_the_rest_a_transport_failure() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field `id`".into()));
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_request"));
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Request("offline".into()));
        assert_eq!((e.status, e.code.as_str()), (0, "transport"));
        assert!(!e.is_unauthorized() && !e.is_forbidden());
        assert!(AppError::unauthorized().is_unauthorized());
    }

    #[test]
    fn the_encoded_error_carries_its_status_for_the_server_to_answer_with() {
        let e = AppError::invalid("email", "is not an email address");
        let text = serde_json::to_string(&e).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], 422);
        assert_eq!(serde_json::from_str::<AppError>(&text).unwrap(), e);
    }
}
