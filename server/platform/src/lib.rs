//! wasm-as-os platform services: everything that decides, stores or runs.
//!
//! The HTTP API, the server functions of the dashboard and the CLI all call these services.

pub mod access;
pub mod audit;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod csv;
pub mod denial;
pub mod edge;
pub mod generation;
pub mod identity;
pub mod metrics;
pub mod modules;
pub mod problem;
pub mod secrets;
pub mod security;
pub mod settings;
pub mod store;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use sea_orm::DatabaseConnection;

pub use crate::{audit::AuditService, clock::Clock, config::Config};

/// An error and its sources as one line (`outer: inner: …`), for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// What start-up needs.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Overrides database.yml (`DATABASE_URL`).
    pub database_url: Option<String>,
    pub clock: Arc<dyn Clock>,
    /// Browser session lifetimes (not in the spec; `serve` flags).
    pub sessions: identity::sessions::SessionTimeouts,
    /// Largest module upload accepted, in bytes (not in the spec; a `serve` flag).
    pub max_upload: u64,
    /// Start the wasmtime sandbox (the server does; CLI commands need not).
    pub run_modules: bool,
}

/// The default upload cap: above ids.yml's 50 MB, so larger modules are quarantined as suspicious
/// rather than refused.
pub const DEFAULT_MAX_UPLOAD: u64 = 100 * 1024 * 1024;

/// Why the platform could not start; each reads as one sentence.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config dir holds invalid files.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The data dir cannot be created or written.
    #[error("the data dir {path} is not usable: {reason}")]
    DataDir { path: PathBuf, reason: String },
    /// The database cannot be reached or migrated.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The roles of rbac.yml could not be stored.
    #[error("cannot store the roles of rbac.yml: {0}")]
    Roles(#[from] identity::IdentityError),
    /// A secret kept in the data dir cannot be read or written.
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    /// Module storage cannot be prepared, or stored modules cannot be analysed again.
    #[error("module storage: {0}")]
    Modules(String),
    /// The audit journal cannot be opened.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// An identity provider cannot be set up.
    #[error("identity provider: {0}")]
    Identity(String),
    /// rate_limit.yml's Redis cannot be reached.
    #[error("rate_limit.yml redis_url: {0}")]
    Edge(#[from] edge::store::StoreError),
    /// The settings saved on the Compliance page cannot be read.
    #[error("cannot read the saved settings: {0}")]
    Settings(sea_orm::DbErr),
}

/// Something start-up wants the operator to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    GeneratedJwtSecret { path: PathBuf },
    GeneratedStorageKey { path: PathBuf },
}

/// The running platform; cheap to clone.
#[derive(Debug, Clone)]
pub struct Platform(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    data_dir: PathBuf,
    db: DatabaseConnection,
    engine: store::Engine,
    clock: Arc<dyn Clock>,
    audit: AuditService,
    metrics: metrics::Metrics,
    identity: identity::Identity,
    modules: modules::Modules,
    compliance: compliance::Compliance,
    edge: edge::Edge,
    /// The audit service's observer, owned here (it holds the edge weakly).
    _observer: Arc<dyn edge::Observer>,
    /// Moved by every access-changing write (see [`generation`]).
    generation: generation::AccessGeneration,
    /// Set once the schema was seen current; migrations only move forward, so it stays true.
    schema_current: std::sync::atomic::AtomicBool,
    jwt_secret: secrecy::SecretString,
    sessions: identity::sessions::SessionTimeouts,
}

/// Health of the platform's dependencies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    pub database: bool,
    pub migrations: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database && self.migrations
    }
}

/// Makes sure `path` exists, is private to its owner (mode 0700: created so, tightened if it was
/// looser) and can be written.
pub fn prepare_data_dir(path: &Path) -> Result<(), StartError> {
    let fail = |e: std::io::Error| StartError::DataDir {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(path).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(fail)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        }
    }
    let probe = path.join(".write-test");
    // A probe left by a crash would make the exclusive create below fail.
    let _ = std::fs::remove_file(&probe);
    secrets::write_private(&probe, "ok").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

impl Platform {
    /// Loads the config, prepares the data dir, connects, migrates and wires the services.
    pub async fn start(options: StartOptions) -> Result<(Self, Vec<Notice>), StartError> {
        let config = config::load(&options.config_dir)?;
        prepare_data_dir(&options.data_dir)?;
        config::sandbox::check_allowed_paths(&config.sandbox, &options.data_dir)?;
        let mut notices = Vec::new();
        let (jwt_secret, generated) = secrets::jwt_secret(&config, &options.data_dir)?;
        if let Some(path) = generated {
            notices.push(Notice::GeneratedJwtSecret { path });
        }
        let (url, engine) =
            store::target(&config, &options.data_dir, options.database_url.as_deref())?;
        let db = store::connect(&config, &url, &engine).await?;
        store::migrate(&db).await?;
        let generation = store::access_generation(&db, &engine)?;
        let config = Arc::new(config);
        // The dashboard's changes to privacy.yml and soc2.yml, over the files.
        let settings = settings::Live::new(&config);
        settings.refresh(&db).await.map_err(StartError::Settings)?;
        if let Some(problem) = settings.get().files.iter().find_map(|f| f.problem.clone()) {
            tracing::warn!(%problem, "the saved settings do not apply; the files' values are in force");
        }
        let metrics = metrics::Metrics::new();
        let audit = AuditService::start(
            db.clone(),
            options.clock.clone(),
            config.clone(),
            settings,
            &options.data_dir,
            metrics.clone(),
        )?;
        let edge = edge::Edge::new(
            &config,
            edge::store_for(&config).await?,
            options.clock.clone(),
            audit.clone(),
            metrics.clone(),
        );
        let observer: Arc<dyn edge::Observer> = Arc::new(edge.clone());
        audit.set_observer(Arc::downgrade(&observer));
        let (key, generated) = secrets::storage_key(&options.data_dir)?;
        if let Some(path) = generated {
            notices.push(Notice::GeneratedStorageKey { path });
        }
        let identity = identity::Identity::new(
            db.clone(),
            options.clock.clone(),
            config.clone(),
            audit.clone(),
            identity::IdentityKeys {
                jwt_secret: &jwt_secret,
                storage_key: &key,
            },
            generation.clone(),
            edge.clone(),
        )
        .map_err(StartError::Identity)?;
        identity.sync_builtin_roles().await?;
        let store = modules::storage::ModuleStore::new(options.data_dir.join("modules"), &key)
            .map_err(|e| StartError::Modules(e.to_string()))?;
        let executor = if options.run_modules {
            let cache = options.data_dir.join("cache").join("compiled");
            Some(Arc::new(
                modules::execute::Executor::new(&config, cache)
                    .map_err(|e| StartError::Modules(format!("cannot start the sandbox: {e}")))?,
            ))
        } else {
            None
        };
        let modules = modules::Modules::new(
            db.clone(),
            options.clock.clone(),
            config.clone(),
            audit.clone(),
            store,
            options.max_upload,
            executor,
            generation.clone(),
            edge.clone(),
        );
        let compliance = compliance::Compliance::new(
            db.clone(),
            options.clock.clone(),
            config.clone(),
            audit.clone(),
            identity.clone(),
            modules.clone(),
            options.data_dir.clone(),
        );
        let inner = Inner {
            config,
            data_dir: options.data_dir,
            db,
            engine,
            clock: options.clock,
            audit,
            metrics,
            identity,
            modules,
            compliance,
            edge,
            _observer: observer,
            generation,
            schema_current: false.into(),
            jwt_secret,
            sessions: options.sessions,
        };
        Ok((Self(Arc::new(inner)), notices))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.0.data_dir
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.0.db
    }

    pub fn engine(&self) -> &store::Engine {
        &self.0.engine
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }

    pub fn audit(&self) -> &AuditService {
        &self.0.audit
    }

    /// The Prometheus registry services count in.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    pub fn identity(&self) -> &identity::Identity {
        &self.0.identity
    }

    pub fn modules(&self) -> &modules::Modules {
        &self.0.modules
    }

    /// Exports, erasure and retention (privacy.yml).
    pub fn compliance(&self) -> &compliance::Compliance {
        &self.0.compliance
    }

    /// Rate limits, IP lists and intrusion detection (rate_limit.yml, ids.yml).
    pub fn edge(&self) -> &edge::Edge {
        &self.0.edge
    }

    /// The access generation, to read: only the services' access writes move it.
    pub fn access_generation(&self) -> &generation::AccessGeneration {
        &self.0.generation
    }

    /// The security overview over the last `hours` hours, in hourly buckets (`metrics:read`).
    pub async fn security_overview(
        &self,
        principal: &access::Principal,
        hours: usize,
    ) -> Result<security::Overview, security::SecurityError> {
        principal
            .require(&self.0.audit, "metrics", "read", "security overview")
            .await?;
        let hours = hours.clamp(1, 24 * 14);
        security::overview(
            &self.0.db,
            self.0.clock.now(),
            chrono::Duration::hours(1),
            hours,
        )
        .await
    }

    /// The security report over `[start, end)` (`system:audit`), after the audit database caught up.
    pub async fn security_report(
        &self,
        principal: &access::Principal,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Result<security::Report, security::SecurityError> {
        principal
            .require(&self.0.audit, "system", "audit", "security report")
            .await?;
        self.0.audit.caught_up().await;
        security::report(&self.0.db, start, end, self.0.clock.now()).await
    }

    /// The Prometheus metrics as text, for a caller identified by a token (`metrics:read`; a
    /// refusal is audited). Scrapes from an address `serve --metrics-allow` trusts need no
    /// principal and read [`Self::metrics`] directly.
    pub async fn metrics_for(
        &self,
        principal: &access::Principal,
    ) -> Result<String, security::SecurityError> {
        principal
            .require(&self.0.audit, "metrics", "read", "metrics")
            .await?;
        Ok(self.scrape_metrics())
    }

    /// The metrics for a scraper from an allowed network; the time is evidence for soc2.yml
    /// `monitoring`.
    pub fn scrape_metrics(&self) -> String {
        self.0.metrics.scraped(self.0.clock.now());
        self.0.metrics.render()
    }

    /// soc2.yml's controls with their live evidence (`system:audit`): the compliance service's
    /// checks, with what the edge (alert channels) and the metrics (last scrape) know.
    pub async fn controls(
        &self,
        principal: &access::Principal,
    ) -> Result<Vec<compliance::controls::Control>, compliance::ComplianceError> {
        let configured = &self.0.config.ids.intrusion_detection.alerts;
        let status = self.0.edge.alerts().status();
        let alert_channels = configured
            .iter()
            .enumerate()
            .map(|(i, alert)| {
                let name = match alert {
                    config::ids::Alert::Email { .. } => "email",
                    config::ids::Alert::Slack { .. } => "slack",
                    config::ids::Alert::Syslog { .. } => "syslog",
                };
                let last = status
                    .iter()
                    .find(|s| s.destination == i + 1)
                    .map(|s| (s.ok, s.error.clone()));
                (name.to_string(), last)
            })
            .collect();
        let facts = compliance::controls::LiveFacts {
            alert_channels,
            last_scrape: self.0.metrics.last_scrape(),
        };
        self.0.compliance.controls(principal, &facts).await
    }

    pub fn session_timeouts(&self) -> identity::sessions::SessionTimeouts {
        self.0.sessions
    }

    /// The tower-sessions store over this platform's database.
    pub fn session_store(&self) -> identity::sessions::DbSessionStore {
        identity::sessions::DbSessionStore::new(self.0.db.clone(), self.0.clock.clone())
    }

    pub fn jwt_secret(&self) -> &secrecy::SecretString {
        &self.0.jwt_secret
    }

    /// Checks the database answers and the schema is current. The migrations table is read only
    /// until it has once shown every migration applied.
    pub async fn readiness(&self) -> Readiness {
        use std::sync::atomic::Ordering;
        let database = self.0.db.ping().await.is_ok();
        let known = self.0.schema_current.load(Ordering::Relaxed);
        let migrations =
            known || (database && store::migrations_applied(&self.0.db).await.unwrap_or(false));
        if migrations && !known {
            self.0.schema_current.store(true, Ordering::Relaxed);
        }
        Readiness {
            database,
            migrations,
        }
    }

    /// Writes the queued run history and delivers the buffered audit events, then closes the connection pool.
    pub async fn close(&self) {
        self.0
            .modules
            .finish_runs(std::time::Duration::from_secs(30))
            .await;
        // An export being prepared is given a moment; one cut short is failed at the next start.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.0.compliance.exports_idle(),
        )
        .await;
        self.0.audit.shutdown().await;
        if let Err(e) = self.0.db.clone().close().await {
            tracing::warn!(error = %e, "closing the database pool failed");
        }
    }
}
