//! `AppError`: the one error type every server function returns.

use std::collections::BTreeMap;

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Not signed in, or the credentials are no longer valid.
    #[error("please sign in")]
    Unauthorized,
    /// Signed in, but lacking the permission.
    #[error("you do not have permission to do this")]
    Forbidden,
    /// The thing does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// Input was rejected; messages per field.
    #[error("please correct the highlighted fields")]
    Validation(BTreeMap<String, Vec<String>>),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Too many requests.
    #[error("too many requests; try again shortly")]
    RateLimited,
    /// Too many module runs in progress (the message names the limit); nothing ran.
    #[error("{0}")]
    Busy(String),
    /// Something failed on the server; details are in the server log only.
    #[error("something went wrong on the server; it has been logged")]
    Internal,
    /// The request itself failed (network, encoding).
    #[error("the request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// A stable machine-readable code, as used in REST error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Validation(_) => "validation",
            Self::Conflict(_) => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Busy(_) => "sandbox.busy",
            Self::Internal => "internal",
            Self::Transport(_) => "transport",
        }
    }

    /// Logs `cause` with its chain on the server and returns the opaque [`AppError::Internal`].
    #[cfg(feature = "ssr")]
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %platform::error_chain(cause), "internal error");
        Self::Internal
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport(value.to_string())
    }
}
