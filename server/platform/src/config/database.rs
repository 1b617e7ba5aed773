//! `database.yml`: the PostgreSQL connection. Without this file (and without `DATABASE_URL`) the
//! embedded SQLite database under the data dir is used; the pool and timeout settings apply to both.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::{Problems, units::Span};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFile {
    pub database: Database,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: SecretString,
    pub max_connections: u32,
    pub max_idle_connections: u32,
    pub connection_lifetime: Span,
    pub ssl_mode: SslMode,
    #[serde(default)]
    pub ssl_cert: Option<PathBuf>,
    #[serde(default)]
    pub ssl_key: Option<PathBuf>,
    #[serde(default)]
    pub ssl_ca: Option<PathBuf>,
    pub statement_timeout: Span,
    pub idle_in_transaction_timeout: Span,
    pub log_statement: LogStatement,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogStatement {
    None,
    Ddl,
    Mod,
    All,
}

impl DatabaseFile {
    /// Checked only when the file is present, i.e. when PostgreSQL is in use.
    pub(super) fn validate(&self, p: &mut Problems) {
        let db = &self.database;
        if db.max_connections == 0 {
            p.push("database.max_connections", "must be at least 1");
        }
        if db.max_idle_connections > db.max_connections {
            p.push(
                "database.max_idle_connections",
                "must not exceed max_connections",
            );
        }
        for (key, path) in [
            ("database.ssl_cert", &db.ssl_cert),
            ("database.ssl_key", &db.ssl_key),
            ("database.ssl_ca", &db.ssl_ca),
        ] {
            if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
                p.push(
                    key,
                    format!("{} does not exist or is not a file", path.display()),
                );
            }
        }
    }
}
