//! The destinations of audit.yml: a file, syslog and the database.

pub mod database;
pub mod file;
pub mod syslog;

use std::{path::Path, sync::Arc};

use sea_orm::DatabaseConnection;

use super::RecordedEvent;
use crate::config::audit::Destination;

/// Why a destination did not take a batch; the batch is retried.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing a file or a socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The database refused the batch.
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    /// The database chain head is missing or malformed.
    #[error("the audit chain head is missing from the database (are the migrations applied?)")]
    NoChainHead,
    /// The states of the audit subjects a batch names could not be read.
    #[error("cannot read the audit subjects: {0}")]
    Subjects(String),
}

/// One configured destination.
#[derive(Debug)]
pub enum Sink {
    File(Arc<file::FileSink>),
    Syslog(syslog::SyslogSink),
    Database(database::DatabaseSink),
}

impl Sink {
    /// The sinks of audit.yml; relative file paths are under `data_dir`.
    pub fn from_config(
        destinations: &[Destination],
        db: &DatabaseConnection,
        data_dir: &Path,
        key: &super::line::ChainKey,
    ) -> Vec<(String, Self)> {
        destinations
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Destination::File { path, rotation } => {
                    let path = if path.is_absolute() {
                        path.clone()
                    } else {
                        data_dir.join(path)
                    };
                    (
                        format!("file-{i}"),
                        Self::File(Arc::new(file::FileSink::new(path, *rotation, key.clone()))),
                    )
                }
                Destination::Syslog {
                    facility,
                    tag,
                    address,
                } => (
                    format!("syslog-{i}"),
                    Self::Syslog(syslog::SyslogSink::new(facility, tag, address.as_ref())),
                ),
                Destination::Database { .. } => (
                    format!("database-{i}"),
                    Self::Database(database::DatabaseSink::new(db.clone(), key.clone())),
                ),
            })
            .collect()
    }

    /// Writes a batch, in order; all of it or an error (a retry may then repeat part of it).
    pub async fn write(&self, events: Arc<Vec<RecordedEvent>>) -> Result<(), SinkError> {
        match self {
            Self::File(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.write(&events))
                    .await
                    .map_err(|e| SinkError::Io(std::io::Error::other(e)))??;
                Ok(())
            }
            Self::Syslog(s) => s.write(&events).await,
            Self::Database(d) => d.write(&events).await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Syslog(_) => "syslog",
            Self::Database(_) => "database",
        }
    }
}
