//! The audit pipeline: the event model, the service every other service records through, and the
//! destinations of audit.yml (file, syslog, database).
//!
//! `record` redacts the event's sensitive fields, appends it to this process's write-ahead journal
//! (one `write(2)`: it survives the process from then on) and returns; background consumers, one
//! per destination, deliver the journal in batches, retrying a failing destination without
//! blocking requests or the other destinations. Journals of processes that died are delivered at
//! the next start. The file and the database carry a hash chain (`admin audit verify`). See
//! docs/audit.md.

pub mod anonymise;
pub mod checkpoint;
pub(crate) mod entity;
pub mod erase;
mod event;
mod journal;
pub mod line;
pub mod personal;
mod pipeline;
pub mod query;
pub mod redact;
pub mod sink;
pub mod subjects;
pub mod verify;

use std::{path::Path, sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder, QuerySelect};

pub use self::{
    event::{Actor, AuditEvent, EventKind, Outcome, Target},
    query::{AuditPage, AuditParams, AuditQuery},
    redact::Redactor,
};
use crate::{access::Principal, clock::Clock, config::Config, metrics::Metrics};

/// How long `recent` and `search` wait for the database destination to catch up.
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);
/// How long shutdown waits for the destinations to deliver what is buffered.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the audit service.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event could not be written to the database.
    #[error("could not store the audit event")]
    Store(#[from] sea_orm::DbErr),
    /// A stored row could not be read back as an event.
    #[error("stored audit event {id} is malformed: {reason}")]
    Malformed { id: uuid::Uuid, reason: String },
    /// The event could not be made durable in the journal (disk full, data dir removed, shut down).
    #[error("could not accept the audit event: {0}")]
    Journal(std::io::Error),
    /// The journal under the data dir could not be opened at start.
    #[error("cannot open the audit journal under {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A verification could not run (unreadable file, missing chain head).
    #[error("cannot verify the audit log: {0}")]
    Verify(String),
    /// A query was malformed: the field it names and what is wrong with it.
    #[error("invalid audit query: {field}: {message}")]
    Query {
        field: &'static str,
        message: String,
    },
    /// The key of the hash chains cannot be read or made.
    #[error(transparent)]
    Key(#[from] crate::secrets::SecretError),
    /// The caller may not read the audit log.
    #[error("reading the audit log needs the system:audit permission")]
    Forbidden,
}

/// An event as stored, with its id and time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedEvent {
    pub id: uuid::Uuid,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Chain v2: the digests of the personal values (`personal.rs`); `None` on v1 events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<personal::Pii>,
}

#[derive(Debug, Clone)]
pub struct AuditService(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    /// privacy.yml as in force now (the dashboard edits it while running).
    settings: crate::settings::Live,
    redactor: Redactor,
    metrics: Metrics,
    /// The key of the hash chains (kept outside the database).
    chain_key: line::ChainKey,
    /// The pseudonyms and keys personal values are sealed with.
    subjects: Arc<subjects::Subjects>,
    /// `None` when auditing is off.
    pipeline: Option<pipeline::Pipeline>,
    /// The audit files of audit.yml (absolute paths).
    files: Vec<std::path::PathBuf>,
    /// Sees every event before audit.yml filters it: the intrusion detection of ids.yml. Weak,
    /// as the edge holds this service: the platform owns the edge.
    observer: std::sync::OnceLock<std::sync::Weak<dyn crate::edge::Observer>>,
}

impl AuditService {
    /// Starts the destinations of audit.yml; the journal lives under `data_dir/audit-journal`.
    pub fn start(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        live: crate::settings::Live,
        data_dir: &Path,
        metrics: Metrics,
    ) -> Result<Self, AuditError> {
        let settings = &config.audit.audit;
        let redactor = Redactor::new(settings.filter_sensitive_data, &settings.sensitive_fields);
        let (key, generated) = crate::secrets::audit_chain_key(data_dir, true)?;
        if let Some(path) = generated {
            tracing::info!(path = %path.display(), "generated the audit chain key");
        }
        let chain_key = line::ChainKey::new(key);
        let (wrap, generated) = crate::secrets::audit_subject_key(data_dir, true)?;
        if let Some(path) = generated {
            tracing::info!(path = %path.display(), "generated the audit subject key");
        }
        let subjects = Arc::new(subjects::Subjects::new(db.clone(), &wrap));
        let files = settings
            .destinations
            .iter()
            .filter_map(|d| match d {
                crate::config::audit::Destination::File { path, .. } if path.is_absolute() => {
                    Some(path.clone())
                }
                crate::config::audit::Destination::File { path, .. } => Some(data_dir.join(path)),
                _ => None,
            })
            .collect();
        let pipeline = if settings.enabled {
            let root = data_dir.join("audit-journal");
            let sinks = sink::Sink::from_config(&settings.destinations, &db, data_dir, &chain_key);
            Some(
                pipeline::Pipeline::start(&root, sinks, &metrics, subjects.clone())
                    .map_err(|source| AuditError::Open { path: root, source })?,
            )
        } else {
            None
        };
        Ok(Self(Arc::new(Inner {
            db,
            clock,
            config,
            settings: live,
            redactor,
            metrics,
            chain_key,
            subjects,
            pipeline,
            files,
            observer: std::sync::OnceLock::new(),
        })))
    }

    /// Hands every event recorded from now on to `observer` while it lives (set once, at
    /// start-up).
    pub fn set_observer(&self, observer: std::sync::Weak<dyn crate::edge::Observer>) {
        if self.0.observer.set(observer).is_err() {
            tracing::warn!("the audit observer was already set");
        }
    }

    /// Records `event` unless audit.yml leaves it out; returns the event as it will be stored.
    ///
    /// Sensitive fields of `details` are redacted first. The call returns once the event is in the
    /// journal (microseconds); the destinations receive it in the background.
    pub async fn record(&self, event: AuditEvent) -> Result<Option<RecordedEvent>, AuditError> {
        self.0.metrics.observe_event(&event);
        // What intrusion detection needs of it (nothing, for most events).
        let observed = self
            .0
            .observer
            .get()
            .and_then(std::sync::Weak::upgrade)
            .and_then(|o| Some((o, crate::edge::ids::observe(&event)?)));
        let result = self.store(event).await;
        // After the event is journaled, so what the rules do comes after what made them act.
        if let Some((observer, observation)) = observed {
            observer.observe(observation).await;
        }
        result
    }

    async fn store(&self, mut event: AuditEvent) -> Result<Option<RecordedEvent>, AuditError> {
        if !self.wants(event.kind) {
            return Ok(None);
        }
        let Some(pipeline) = &self.0.pipeline else {
            return Ok(None);
        };
        self.0.redactor.redact(&mut event.details);
        self.reduce(&mut event);
        let now = self.0.clock.now();
        // Both databases keep microseconds; the chain hashes what they keep.
        let timestamp =
            chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let mut recorded = RecordedEvent {
            id: uuid::Uuid::now_v7(),
            timestamp,
            event,
            pii: None,
        };
        self.seal(&mut recorded).await?;
        let mut line = serde_json::to_vec(&recorded).map_err(|e| AuditError::Journal(e.into()))?;
        line.push(b'\n');
        if let Err(e) = pipeline.append(&line) {
            self.0.metrics.audit_dropped("journal", 1);
            tracing::error!(error = %e, event = recorded.event.kind.as_str(), "an audit event could not be accepted");
            return Err(AuditError::Journal(e));
        }
        Ok(Some(recorded))
    }

    /// privacy.yml and soc2.yml as in force now, shared with the services that apply them.
    pub fn settings(&self) -> &crate::settings::Live {
        &self.0.settings
    }

    /// How long full client addresses and user agents are kept (privacy.yml, as in force now).
    fn full_for(&self) -> std::time::Duration {
        let live = self.0.settings.get();
        live.privacy
            .privacy
            .data_anonymization
            .full_for(&self.0.config.ids)
    }

    /// privacy.yml `data_anonymization`: adds the reduced forms of the client's address and user
    /// agent, which stay once the full values are dropped ([`Self::anonymise`]).
    fn reduce(&self, event: &mut AuditEvent) {
        use crate::config::privacy::AnonymizedField;
        let live = self.0.settings.get();
        let settings = &live.privacy.privacy.data_anonymization;
        if settings.reduces(AnonymizedField::IpAddress) {
            event.ip_net = event.ip.as_deref().and_then(anonymise::reduce_ip);
        }
        if settings.reduces(AnonymizedField::UserAgent) {
            event.ua_family = event.user_agent.as_deref().map(anonymise::ua_family);
        }
    }

    /// Drops the full client address and user agent of the events older than the IDS window
    /// (privacy.yml `data_anonymization`, `full_for`) from the database and the audit files;
    /// the reduced forms stay. Idempotent; see [`crate::compliance::Compliance::anonymise`].
    /// Events older than privacy.yml's window for full values that still keep a full client
    /// address or user agent (anonymisation has not caught up with them), and the window's start.
    pub async fn unreduced(&self) -> Result<(u64, chrono::DateTime<chrono::Utc>), AuditError> {
        let window = self.full_for();
        let cutoff = self.0.clock.now()
            - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        Ok((anonymise::unreduced(&self.0.db, cutoff).await?, cutoff))
    }

    pub async fn anonymise(&self) -> Result<anonymise::Anonymised, AuditError> {
        let window = self.full_for();
        let cutoff = self.0.clock.now()
            - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        // The journal segment written so far is deleted once the destinations pass the next
        // event (the caller records one when anything changed).
        self.roll_journal()?;
        self.caught_up().await;
        let (addresses, user_agents) = anonymise::database(&self.0.db, cutoff).await?;
        self.flush(SHUTDOWN_TIMEOUT).await;
        let mut lines = 0;
        for log in self.0.files.clone() {
            lines += tokio::task::spawn_blocking(move || anonymise::files(&log, cutoff))
                .await
                .map_err(|e| AuditError::Journal(std::io::Error::other(e)))?
                .map_err(AuditError::Journal)?;
        }
        Ok(anonymise::Anonymised {
            addresses,
            user_agents,
            lines,
        })
    }

    /// Chain v2: replaces each personal value's place in the hash by its keyed digest under its
    /// subject's key, and drops the plaintext of subjects being erased.
    async fn seal(&self, r: &mut RecordedEvent) -> Result<(), AuditError> {
        let fields = personal::fields(r);
        let mut pii = personal::Pii::new();
        let mut clear = Vec::new();
        for (pointer, value, owner) in fields {
            let user_key = match owner {
                personal::Owner::Account(id) => id,
                personal::Owner::Username(name) => match self.account_named(&name).await? {
                    Some(id) => id,
                    None => match &r.event.actor.id {
                        Some(id) => id.clone(),
                        None => subjects::epoch_key(r.timestamp),
                    },
                },
                personal::Owner::Nobody => subjects::epoch_key(r.timestamp),
            };
            let subject = self.0.subjects.resolve(&user_key, r.timestamp).await?;
            let d = subject
                .key()
                .map(|k| personal::digest(k, &r.id, &pointer, &value))
                .unwrap_or_default();
            if !subject.writes_plaintext() {
                clear.push(pointer.clone());
            }
            pii.insert(
                pointer,
                personal::Sealed {
                    s: subject.pseudonym,
                    d,
                },
            );
        }
        for pointer in clear {
            personal::clear(r, &pointer);
        }
        r.pii = Some(pii);
        Ok(())
    }

    /// The id of the account a detail names: by its id, or by its username.
    async fn account_named(&self, name: &str) -> Result<Option<String>, AuditError> {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = self.0.db.get_database_backend();
        let (column, value): (&str, sea_orm::Value) = match uuid::Uuid::parse_str(name) {
            Ok(id) => ("id", id.into()),
            Err(_) => ("username", name.to_lowercase().into()),
        };
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                format!("SELECT id FROM users WHERE {column} = $1")
            }
            _ => format!("SELECT id FROM users WHERE {column} = ?"),
        };
        let row = self
            .0
            .db
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [value]))
            .await?;
        Ok(row
            .and_then(|r| r.try_get::<uuid::Uuid>("", "id").ok())
            .map(|id| id.to_string()))
    }

    /// Drops the plaintext of `pseudonym` from up to `limit` database rows after `seq`; see
    /// [`erase::database_page`].
    pub async fn erase_rows(
        &self,
        pseudonym: &str,
        after: i64,
        limit: u64,
    ) -> Result<(u64, Option<i64>), AuditError> {
        self.caught_up().await;
        erase::database_page(&self.0.db, pseudonym, after, limit).await
    }

    /// Drops the plaintext of `pseudonym` from every audit file; returns the lines changed.
    pub async fn erase_files(&self, pseudonym: &str) -> Result<u64, AuditError> {
        self.flush(SHUTDOWN_TIMEOUT).await;
        let mut changed = 0;
        for log in self.0.files.clone() {
            let p = pseudonym.to_string();
            changed += tokio::task::spawn_blocking(move || erase::files(&log, &p))
                .await
                .map_err(|e| AuditError::Journal(std::io::Error::other(e)))?
                .map_err(AuditError::Journal)?;
        }
        Ok(changed)
    }

    /// Retention: prunes the events recorded before `cutoff` behind a signed checkpoint (see
    /// [`checkpoint::prune`]); with `dry_run`, only counts them.
    pub async fn prune(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        dry_run: bool,
    ) -> Result<checkpoint::Pruned, AuditError> {
        self.caught_up().await;
        checkpoint::prune(
            &self.0.db,
            &self.0.chain_key,
            cutoff,
            self.0.clock.now(),
            dry_run,
        )
        .await
    }

    /// Starts a new journal segment, so the older ones are deleted once delivered.
    pub fn roll_journal(&self) -> Result<(), AuditError> {
        match &self.0.pipeline {
            Some(p) => p.roll().map_err(AuditError::Journal),
            None => Ok(()),
        }
    }

    /// The audit subjects (erasure marks and destroys them).
    pub fn subjects(&self) -> &subjects::Subjects {
        &self.0.subjects
    }

    /// Whether audit.yml asks for this kind of event. Events the spec names are recorded only when
    /// listed under `events`; the platform's further security events are always recorded.
    pub fn wants(&self, kind: EventKind) -> bool {
        let settings = &self.0.config.audit.audit;
        settings.enabled && (!kind.named_in_spec() || settings.records(kind))
    }

    /// The redaction rule of audit.yml (the application logs use it too).
    pub fn redactor(&self) -> &Redactor {
        &self.0.redactor
    }

    /// Waits until every destination has delivered what was recorded so far (or `timeout`).
    pub async fn flush(&self, timeout: Duration) -> bool {
        match &self.0.pipeline {
            Some(p) => p.flush(None, timeout).await,
            None => true,
        }
    }

    /// Delivers what is buffered and stops accepting events; called by [`crate::Platform::close`].
    pub async fn shutdown(&self) {
        if let Some(p) = &self.0.pipeline {
            p.shutdown(SHUTDOWN_TIMEOUT).await;
        }
    }

    /// Waits (a few seconds at most) until the database destination holds every event this
    /// process recorded, so a read sees this process's own writes.
    pub async fn caught_up(&self) {
        if let Some(p) = &self.0.pipeline {
            p.flush(Some("database"), READ_YOUR_WRITES).await;
        }
    }

    /// The newest events first, from the database (after it caught up with this process).
    pub async fn recent(&self, limit: u64) -> Result<Vec<RecordedEvent>, AuditError> {
        self.caught_up().await;
        let rows = entity::Entity::find()
            .order_by_desc(entity::Column::OccurredAt)
            .order_by_desc(entity::Column::Id)
            .limit(limit)
            .all(&self.0.db)
            .await?;
        rows.into_iter().map(RecordedEvent::try_from).collect()
    }

    /// The audit dashboard's query (`system:audit`); a refusal is itself audited.
    pub async fn search(
        &self,
        principal: &Principal,
        query: &AuditQuery,
    ) -> Result<AuditPage, AuditError> {
        principal
            .require(self, "system", "audit", "audit log")
            .await?;
        self.caught_up().await;
        query::run(&self.0.db, query).await
    }

    /// The first page of an export of the audit log (`system:audit`), recorded as `data_export`
    /// with the filter and format; the caller reads the further pages with [`Self::search`].
    pub async fn export(
        &self,
        principal: &Principal,
        query: &AuditQuery,
        filter: serde_json::Value,
        format: &str,
    ) -> Result<AuditPage, AuditError> {
        let page = self.search(principal, query).await?;
        let actor = principal.actor();
        let details =
            serde_json::json!({ "export": "audit_log", "format": format, "filter": filter });
        self.record(
            AuditEvent::new(EventKind::DataExport, actor, Outcome::Success).with_details(details),
        )
        .await?;
        Ok(page)
    }

    /// Records `config_change` when the effective configuration differs from the one the previous
    /// start of this data dir saw (its sha256 is kept in `<data dir>/config-fingerprint`; secrets
    /// are not part of it). Returns whether it changed.
    pub async fn note_config(&self, data_dir: &Path) -> Result<bool, AuditError> {
        let config = &self.0.config;
        // Debug output is deterministic (no hash maps) and shows secrets as [REDACTED].
        let text = format!("{config:?}").replacen(&format!("dir: {:?}", config.dir), "", 1);
        let fingerprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
        let path = data_dir.join("config-fingerprint");
        let previous = std::fs::read_to_string(&path)
            .ok()
            .map(|s| s.trim().to_string());
        if previous.as_deref() == Some(fingerprint.as_str()) {
            return Ok(false);
        }
        let details = serde_json::json!({ "config_fingerprint": fingerprint, "previous_fingerprint": previous, "config_dir": config.dir.display().to_string() });
        self.record(
            AuditEvent::new(EventKind::ConfigChange, Actor::system(), Outcome::Success)
                .with_details(details),
        )
        .await?;
        std::fs::write(&path, &fingerprint).map_err(AuditError::Journal)?;
        Ok(true)
    }

    /// Checks the database's hash chain.
    pub async fn verify_database(&self) -> Result<verify::Verification, AuditError> {
        self.caught_up().await;
        verify::database(&self.0.db, &self.0.chain_key, &self.0.subjects).await
    }
}
