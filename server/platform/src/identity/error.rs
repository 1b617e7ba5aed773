//! What can go wrong in the identity services; each message is safe to show to the caller.

use std::collections::BTreeMap;

use super::{password, tokens};
use crate::problem::format_fields;

/// Errors of the identity services; each message is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The principal lacks the permission.
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// No user by that name.
    #[error("no user named \"{0}\"")]
    UnknownUser(String),
    /// No API token with that id (or not one the caller may see).
    #[error("no API token with id \"{0}\"")]
    UnknownToken(String),
    /// No linked identity with that id (or not one the caller may see).
    #[error("no linked sign-in with id \"{0}\"")]
    UnknownIdentity(String),
    /// No passkey with that id among the caller's own.
    #[error("no passkey with id \"{0}\"")]
    UnknownFactor(String),
    /// No role by that name.
    #[error("no role named \"{0}\"")]
    UnknownRole(String),
    /// Input was rejected; messages per field.
    #[error("{}", format_fields(.0))]
    Invalid(BTreeMap<String, Vec<String>>),
    /// The username or email is taken.
    #[error("{0}")]
    Conflict(String),
    /// The change would leave no enabled account holding the admin role.
    #[error("this would leave no enabled administrator: give another account the admin role first")]
    LastAdmin,
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// A token could not be signed.
    #[error(transparent)]
    Token(#[from] tokens::TokenError),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    /// The audit event could not be stored.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// A rejected input with one message for one field.
pub(super) fn invalid(field: &str, message: impl Into<String>) -> IdentityError {
    IdentityError::Invalid(BTreeMap::from([(field.to_string(), vec![message.into()])]))
}
