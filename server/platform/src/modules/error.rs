//! What can go wrong in the module services; each message is safe to show to the caller.

use std::collections::BTreeMap;

use super::storage::StorageError;

/// Errors of the module services; each message is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Over a rate_limit.yml budget, or runs paused by an ids.yml throttle.
    #[error(transparent)]
    Limited(#[from] crate::edge::EdgeError),
    /// The principal lacks the permission.
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// No such module, or not one the caller may see.
    #[error("no module with id \"{0}\"")]
    NotFound(String),
    /// Input was rejected; messages per field.
    #[error("{}", crate::problem::format_fields(.0))]
    Invalid(BTreeMap<String, Vec<String>>),
    /// The bytes are not valid WebAssembly.
    #[error("{0}")]
    InvalidWasm(#[from] analysis::InvalidModule),
    /// The upload was empty.
    #[error("the upload is empty; send the bytes of a .wasm file")]
    Empty,
    /// The upload is over the size cap.
    #[error("the module is larger than the upload limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The module is quarantined and cannot run.
    #[error("module {0} is quarantined; an administrator must release it before it can run")]
    Quarantined(String),
    /// The module waits for review and static_analysis.yml does not let such modules run.
    #[error("module {0} is waiting for review; an administrator must release it before it can run")]
    InReview(String),
    /// The upload would take the owner past sandbox.yml `storage.module_quota_per_user`.
    #[error(
        "this upload would take your modules past your storage quota of {quota} bytes; delete modules you no longer need"
    )]
    QuotaExceeded { quota: u64 },
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(StorageError),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    /// The audit event could not be stored.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<StorageError> for ModuleError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::TooLarge { limit } => Self::TooLarge { limit },
            other => Self::Storage(other),
        }
    }
}

pub(super) fn invalid(field: &str, message: impl Into<String>) -> ModuleError {
    ModuleError::Invalid(BTreeMap::from([(field.to_string(), vec![message.into()])]))
}
