//! Storage: one SeaORM connection pool to the embedded SQLite file or to PostgreSQL.

use std::{fmt, path::Path, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::ExposeSecret;

use crate::config::{Config, database::Database as DbSettings};

/// The file name of the embedded database inside the data dir.
pub const SQLITE_FILE: &str = "wasm-as-os.db";

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot connect to the {engine} database: {reason}")]
    Connect { engine: Engine, reason: String },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(sea_orm::DbErr),
    /// Any other database error.
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// Which database is in use, for messages and the status page (no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Sqlite { path: String },
    Postgres { host: String, name: String },
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "SQLite ({path})"),
            Self::Postgres { host, name } => write!(f, "PostgreSQL ({name} on {host})"),
        }
    }
}

/// Where to connect: `DATABASE_URL` first, then database.yml, else SQLite under the data dir.
pub fn target(
    config: &Config,
    data_dir: &Path,
    database_url: Option<&str>,
) -> Result<(String, Engine), StoreError> {
    if let Some(url) = database_url {
        let parsed = url::Url::parse(url).map_err(|e| StoreError::Connect {
            engine: Engine::Postgres {
                host: "?".into(),
                name: "?".into(),
            },
            reason: format!("DATABASE_URL is not a valid URL: {e}"),
        })?;
        let engine = match parsed.scheme() {
            "sqlite" => Engine::Sqlite {
                path: parsed.path().to_string(),
            },
            _ => Engine::Postgres {
                host: parsed.host_str().unwrap_or("localhost").to_string(),
                name: parsed.path().trim_start_matches('/').to_string(),
            },
        };
        return Ok((url.to_string(), engine));
    }
    if let Some(file) = &config.database {
        let db = &file.database;
        let engine = Engine::Postgres {
            host: db.host.clone(),
            name: db.name.clone(),
        };
        return Ok((postgres_url(db, &engine)?, engine));
    }
    let path = data_dir.join(SQLITE_FILE);
    let shown = path.display().to_string();
    Ok((
        format!("sqlite://{shown}?mode=rwc"),
        Engine::Sqlite { path: shown },
    ))
}

fn postgres_url(db: &DbSettings, engine: &Engine) -> Result<String, StoreError> {
    let invalid = |what: &str| StoreError::Connect {
        engine: engine.clone(),
        reason: format!("database.{what} is not valid in a connection URL"),
    };
    let mut url = url::Url::parse(&format!("postgres://{}:{}/", db.host, db.port))
        .map_err(|_| invalid("host"))?;
    url.set_username(&db.user).map_err(|()| invalid("user"))?;
    url.set_password(Some(db.password.expose_secret()))
        .map_err(|()| invalid("password"))?;
    url.set_path(&db.name);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("sslmode", db.ssl_mode.as_str());
        for (key, path) in [
            ("sslcert", &db.ssl_cert),
            ("sslkey", &db.ssl_key),
            ("sslrootcert", &db.ssl_ca),
        ] {
            if let Some(path) = path {
                q.append_pair(key, &path.display().to_string());
            }
        }
        q.append_pair(
            "options",
            &format!(
                "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
                db.statement_timeout.duration().as_millis(),
                db.idle_in_transaction_timeout.duration().as_millis()
            ),
        );
    }
    Ok(url.to_string())
}

/// Opens the pool with database.yml's pool settings.
pub async fn connect(
    config: &Config,
    url: &str,
    engine: &Engine,
) -> Result<DatabaseConnection, StoreError> {
    let settings = &config
        .database
        .as_ref()
        .unwrap_or(&config.database_defaults)
        .database;
    if let Engine::Sqlite { path } = engine {
        private_sqlite_file(Path::new(path));
    }
    let mut options = ConnectOptions::new(url.to_string());
    let max = match engine {
        // One writer at a time is what SQLite allows; a small pool avoids lock contention.
        Engine::Sqlite { .. } => settings.max_connections.min(8),
        Engine::Postgres { .. } => settings.max_connections,
    };
    options
        .max_connections(max)
        .min_connections(settings.max_idle_connections.min(max))
        .max_lifetime(settings.connection_lifetime.duration())
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // Per connection, so every pooled connection gets them (a PRAGMA run once after connecting
        // reaches only the one connection that ran it): WAL lets readers go on during a write, and
        // NORMAL syncs at checkpoints rather than at every commit, which WAL keeps crash-safe.
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    let db = Database::connect(options)
        .await
        .map_err(|e| StoreError::Connect {
            engine: engine.clone(),
            reason: short_reason(&e),
        })?;
    Ok(db)
}

/// Makes the SQLite file at `path` readable by its owner only: created empty with mode 0600 when
/// missing (SQLite takes an empty file as a new database, and gives its `-wal` and `-shm` files the
/// database file's mode), tightened when looser. Failures are left for SQLite to report.
fn private_sqlite_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:") {
            return;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        if options.open(path).is_ok() {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            if let Ok(meta) = std::fs::metadata(&name)
                && meta.is_file()
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}

/// The access generation of the database `db` is connected to (see [`crate::generation`]): a
/// counter file beside an SQLite file, notifications on PostgreSQL, memory for in-memory SQLite.
pub fn access_generation(
    db: &DatabaseConnection,
    engine: &Engine,
) -> Result<crate::generation::AccessGeneration, StoreError> {
    use crate::generation::AccessGeneration;
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => Ok(AccessGeneration::postgres(db.clone())),
        _ => {
            let options = db.get_sqlite_connection_pool().connect_options();
            let file = options.get_filename();
            let name = file.to_string_lossy();
            if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
                return Ok(AccessGeneration::in_memory());
            }
            AccessGeneration::sqlite_file(file).map_err(|e| StoreError::Connect {
                engine: engine.clone(),
                reason: format!(
                    "cannot open {}{}: {e}",
                    file.display(),
                    crate::generation::FILE_SUFFIX
                ),
            })
        }
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    Migrator::up(db, None).await.map_err(StoreError::Migrate)
}

/// Whether every migration has been applied.
pub async fn migrations_applied(db: &DatabaseConnection) -> Result<bool, StoreError> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

/// A database error as one line without the connection string.
fn short_reason(e: &sea_orm::DbErr) -> String {
    let text = e.to_string();
    let text = text.strip_prefix("Connection Error: ").unwrap_or(&text);
    text.lines().next().unwrap_or_default().to_string()
}
