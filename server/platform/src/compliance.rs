//! Compliance: the GDPR duties of privacy.yml.
//!
//! - `export.rs`: a person's data export (`data_export`), prepared in the background, offered once
//!   for download, optionally sealed with `age`. What goes into it is in `export/collect.rs`, how
//!   it is written (JSON, or a zip of CSV files) in `export/archive.rs`, the encryption in
//!   `export/seal.rs`.
//!
//! - `erasure.rs`: the right to be forgotten: requests, decisions and the resumable erasure.
//! - `retention.rs`: privacy.yml `data_retention`, applied by a daily job and the CLI, and
//!   `data_anonymization` of the audit trail, applied every hour.
//! - `overview.rs`: what the compliance page shows.
//!
//! Every operation takes the acting [`Principal`], decides access here and records its audit event
//! here, so the dashboard, the REST API and the CLI behave the same.

pub mod classification;
pub mod controls;
pub(crate) mod entities;
pub mod erasure;
pub mod export;
pub mod overview;
pub mod retention;
pub mod settings;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use sea_orm::DatabaseConnection;

use crate::{access::Principal, audit::AuditService, clock::Clock, config::Config, denial::Denial};

/// What goes wrong in compliance operations; each variant's kind and code are in `problem.rs`.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    /// The principal lacks a permission (already recorded as `permission_denied`).
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// privacy.yml turns the feature off.
    #[error("{0} is turned off in privacy.yml")]
    Disabled(&'static str),
    /// No such account.
    #[error("no user {0}")]
    UnknownUser(String),
    /// No such export, or not one the caller asked for.
    #[error("no export {0}")]
    UnknownExport(String),
    /// No such settings file (only privacy.yml and soc2.yml are edited on the page).
    #[error("no settings file {0:?}: privacy.yml and soc2.yml are the ones edited here")]
    UnknownSettings(String),
    /// No such erasure request.
    #[error("no erasure request {0}")]
    UnknownErasure(String),
    /// The erasure request was decided already or is running; it cannot change now.
    #[error("this erasure request is {0} and can no longer be changed")]
    ErasureStarted(String),
    /// A step of an erasure failed (it is retried).
    #[error("{0}")]
    Step(String),
    /// The request is refused, with a message per field.
    #[error("{}", crate::problem::format_fields(.0))]
    Invalid(BTreeMap<String, Vec<String>>),
    /// An export of this account is being prepared already, or the server prepares as many as it
    /// takes at once.
    #[error("{0}")]
    Busy(&'static str),
    /// The export is still being prepared.
    #[error("the export is not ready yet ({0}% done)")]
    NotReady(i16),
    /// Its preparation failed; a new one must be requested.
    #[error("the export could not be prepared; request a new one")]
    Failed,
    /// The file was downloaded already: a download link works once.
    #[error(
        "this export was downloaded already; a download link works once, so request a new export"
    )]
    Downloaded,
    /// The file was not fetched in time and is gone.
    #[error("this export expired before it was downloaded; request a new one")]
    Expired,
    /// The settings changed since the page the save came from was rendered.
    #[error("{0}")]
    Stale(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// The audit event could not be recorded.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A file of the export could not be written or read.
    #[error("export file: {0}")]
    Io(#[from] std::io::Error),
}

impl From<Denial> for ComplianceError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden(p) => Self::Forbidden(p),
            Denial::Audit(e) => Self::Audit(e),
        }
    }
}

/// One field's message, as [`ComplianceError::Invalid`].
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ComplianceError {
    ComplianceError::Invalid([(field.to_string(), vec![message.into()])].into())
}

/// The compliance services; cheap to clone.
#[derive(Debug, Clone)]
pub struct Compliance {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    /// privacy.yml and soc2.yml as in force now (the settings dashboard edits them).
    settings: crate::settings::Live,
    audit: AuditService,
    identity: crate::identity::Identity,
    modules: crate::modules::Modules,
    exports: export::Preparer,
    data_dir: PathBuf,
    /// The last verification of the audit chain, evidence for `data_integrity_checks`.
    chain_check: controls::ChainCheck,
}

impl Compliance {
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        audit: AuditService,
        identity: crate::identity::Identity,
        modules: crate::modules::Modules,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            db,
            clock,
            config,
            settings: audit.settings().clone(),
            audit,
            identity,
            modules,
            exports: export::Preparer::new(data_dir.join("exports")),
            data_dir,
            chain_check: Default::default(),
        }
    }

    /// privacy.yml as in force now (read again on every use: the dashboard edits it).
    fn privacy(&self) -> crate::config::privacy::Privacy {
        self.settings.get().privacy.privacy.clone()
    }

    /// The signed-in account of `principal`, or `Forbidden` for the system principal.
    fn own_id(principal: &Principal) -> Result<uuid::Uuid, ComplianceError> {
        principal
            .id()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .ok_or_else(|| ComplianceError::Forbidden("a user account".into()))
    }
}
