//! Personal-data exports (privacy.yml `data_export`).
//!
//! A request is checked, recorded as a `data_export` audit event and stored as a `queued` row; the
//! export is then prepared in the background (at most [`CONCURRENT`] at once), its progress
//! written to the row, into `<data dir>/exports/` (private, like the rest of the data dir), sealed
//! with `age` when asked or when privacy.yml requires it. The person who asked — and only they —
//! fetches it once within [`LIFETIME`]; the file is deleted as the download starts, and an unused
//! one when it expires. A passphrase lives in memory only while its export is prepared, so an
//! export a restart interrupts is marked failed (after [`STALE_AFTER`] without progress) and has to
//! be asked for again.
//!
//! An administrator (`users:read` and `system:audit`) may export any account; the export is
//! theirs to download, and both the request and the download name them in the audit trail.

mod archive;
mod collect;

/// The export's data sections and their columns (the classification table checks against them).
pub(crate) fn sections() -> Vec<(&'static str, &'static [&'static str])> {
    use collect::{
        ACCOUNT, AUDIT, LINKED, MODULES, RUNS, SECOND_FACTORS, SESSIONS, SHARES, TOKENS,
    };
    [
        ACCOUNT,
        LINKED,
        SESSIONS,
        TOKENS,
        SECOND_FACTORS,
        MODULES,
        SHARES,
        RUNS,
        AUDIT,
    ]
    .iter()
    .map(|s| (s.name, s.columns))
    .collect()
}
pub mod seal;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use secrecy::SecretString;
use serde::Serialize;

pub use self::seal::Seal;
use super::{Compliance, ComplianceError, entities::data_export, invalid};
use crate::{
    access::Principal,
    audit::{AuditEvent, EventKind, Outcome},
    config::privacy::ExportFormat,
    identity::entities::user,
};

/// How long a prepared export waits to be downloaded.
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// A queued or running export whose progress has not moved for this long was interrupted (by a
/// restart) and is marked failed.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(10);
/// Exports prepared at once by one server.
pub const CONCURRENT: usize = 2;
/// Exports waiting or being prepared across the platform; more are refused until some finish.
pub const MAX_IN_FLIGHT: u64 = 16;
/// Export records kept per account (older ones, long since downloaded or expired, are dropped).
pub const KEEP_PER_ACCOUNT: u64 = 20;

/// What a person asks for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// `json` or `csv`, one of privacy.yml's `data_export.formats`.
    pub format: String,
    /// Whether module files go into the export too.
    pub include_binaries: bool,
    /// An age X25519 recipient (`age1…`) to encrypt to.
    pub recipient: Option<String>,
    /// Or a passphrase to encrypt with.
    pub passphrase: Option<SecretString>,
}

/// An export as it is listed: its request and how far it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportStatus {
    pub id: String,
    /// Whose data.
    pub user_id: String,
    pub username: String,
    pub format: String,
    /// `none`, `recipient` or `passphrase`.
    pub encryption: String,
    pub include_binaries: bool,
    /// `queued`, `running`, `ready`, `downloaded`, `expired` or `failed`.
    pub status: String,
    /// 0–100.
    pub progress: i16,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub size_bytes: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Until when the download works.
    pub expires_at: Option<DateTime<Utc>>,
    pub downloaded_at: Option<DateTime<Utc>>,
    /// The name the file downloads under.
    pub file_name: String,
}

/// A download: the open file (already removed from the export directory) and how to send it.
#[derive(Debug)]
pub struct Download {
    pub file: tokio::fs::File,
    pub file_name: String,
    pub content_type: &'static str,
    pub size: u64,
}

/// Runs the preparations: where files go and how many are prepared at once.
#[derive(Debug, Clone)]
pub struct Preparer {
    dir: PathBuf,
    turns: Arc<tokio::sync::Semaphore>,
    /// Preparations started by this process and not yet finished, to wait for in tests and at
    /// shutdown.
    running: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Preparer {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            turns: Arc::new(tokio::sync::Semaphore::new(CONCURRENT)),
            running: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    fn building(&self, id: uuid::Uuid) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn ready(&self, id: uuid::Uuid) -> PathBuf {
        self.dir.join(format!("{id}.export"))
    }

    pub(super) fn discard(&self, id: uuid::Uuid) {
        for path in [self.building(id), self.ready(id)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(error = %e, path = %path.display(), "an export file could not be removed");
                }
                _ => {}
            }
        }
    }
}

/// Decrements the running count when a preparation ends, however it ends.
struct Running(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn file_name(row: &data_export::Model, username: &str) -> String {
    let extension = match row.format.as_str() {
        "csv" => "zip",
        _ => "json",
    };
    let sealed = if row.encryption == "none" { "" } else { ".age" };
    let day = row.created_at.format("%Y%m%d-%H%M%S");
    format!("wasm-as-os-export-{username}-{day}.{extension}{sealed}")
}

fn status_of(row: data_export::Model, username: &str) -> ExportStatus {
    ExportStatus {
        file_name: file_name(&row, username),
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        username: username.to_string(),
        format: row.format,
        encryption: row.encryption,
        include_binaries: row.include_binaries,
        status: row.status,
        progress: row.progress,
        error: row.error,
        size_bytes: row.size_bytes,
        created_at: row.created_at,
        finished_at: row.finished_at,
        expires_at: row.expires_at,
        downloaded_at: row.downloaded_at,
    }
}

/// Creates `path` as a private directory (0700).
fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(path)
}

/// Creates `path` as a new private file (0600).
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl Compliance {
    /// Asks for an export of the principal's own data (`user_id` `None` or their own id), or of
    /// another account's (`users:read` and `system:audit`). Returns the queued export; it is
    /// prepared in the background.
    pub async fn request_export(
        &self,
        principal: &Principal,
        user_id: Option<&str>,
        request: ExportRequest,
    ) -> Result<ExportStatus, ComplianceError> {
        let settings = &self.privacy().data_export;
        if !settings.enabled {
            return Err(ComplianceError::Disabled("data_export"));
        }
        let own = principal.id().and_then(|id| uuid::Uuid::parse_str(id).ok());
        let subject = match user_id {
            None => Self::own_id(principal)?,
            Some(id) => {
                let parsed = uuid::Uuid::parse_str(id.trim())
                    .map_err(|_| ComplianceError::UnknownUser(id.to_string()))?;
                if own != Some(parsed) {
                    let target = format!("data export of user {parsed}");
                    principal
                        .require(&self.audit, "users", "read", &target)
                        .await?;
                    principal
                        .require(&self.audit, "system", "audit", &target)
                        .await?;
                }
                parsed
            }
        };
        let person = user::Entity::find_by_id(subject)
            .one(&self.db)
            .await?
            .ok_or_else(|| ComplianceError::UnknownUser(subject.to_string()))?;
        let format = match request.format.trim() {
            "json" => ExportFormat::Json,
            "csv" => ExportFormat::Csv,
            _ => return Err(Self::format_problem(&settings.formats)),
        };
        if !settings.formats.contains(&format) {
            return Err(Self::format_problem(&settings.formats));
        }
        let seal = Seal::parse(request.recipient.as_deref(), request.passphrase)
            .map_err(|(field, message)| invalid(field, message))?;
        if settings.encryption && matches!(seal, Seal::None) {
            return Err(invalid(
                "recipient",
                "exports are encrypted here (privacy.yml): give an age recipient or a passphrase",
            ));
        }
        let now = self.clock.now();
        self.sweep(now).await?;
        let in_flight = || {
            data_export::Entity::find()
                .filter(data_export::Column::Status.is_in(["queued", "running"]))
        };
        if in_flight()
            .filter(data_export::Column::UserId.eq(subject))
            .count(&self.db)
            .await?
            > 0
        {
            return Err(ComplianceError::Busy(
                "an export of this account is being prepared already; wait for it to finish",
            ));
        }
        if in_flight().count(&self.db).await? >= MAX_IN_FLIGHT {
            return Err(ComplianceError::Busy(
                "the server is preparing as many exports as it takes at once; try again in a minute",
            ));
        }
        let row = data_export::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(subject),
            requested_by: Set(own),
            format: Set(match format {
                ExportFormat::Json => "json",
                ExportFormat::Csv => "csv",
            }
            .to_string()),
            encryption: Set(seal.kind().to_string()),
            include_binaries: Set(request.include_binaries),
            status: Set("queued".into()),
            progress: Set(0),
            error: Set(None),
            size_bytes: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
            expires_at: Set(None),
            downloaded_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        self.prune(subject).await?;
        self.record(principal, &row, Outcome::Success, "requested")
            .await?;
        let status = status_of(row.clone(), &person.username);
        self.exports.running.send_modify(|n| *n += 1);
        let running = Running(self.exports.running.clone());
        let this = self.clone();
        tokio::spawn(async move {
            let _running = running;
            this.prepare(row, person, format, seal).await;
        });
        Ok(status)
    }

    fn format_problem(formats: &[ExportFormat]) -> ComplianceError {
        let names: Vec<&str> = formats
            .iter()
            .map(|f| match f {
                ExportFormat::Json => "json",
                ExportFormat::Csv => "csv",
            })
            .collect();
        invalid("format", format!("must be one of: {}", names.join(", ")))
    }

    /// The exports the principal asked for, newest first.
    pub async fn list_exports(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ExportStatus>, ComplianceError> {
        let own = Self::own_id(principal)?;
        self.sweep(self.clock.now()).await?;
        let rows = data_export::Entity::find()
            .filter(data_export::Column::RequestedBy.eq(own))
            .order_by_desc(data_export::Column::CreatedAt)
            .limit(KEEP_PER_ACCOUNT * 2)
            .all(&self.db)
            .await?;
        self.with_usernames(rows).await
    }

    /// One export the principal asked for.
    pub async fn export_status(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<ExportStatus, ComplianceError> {
        self.sweep(self.clock.now()).await?;
        let row = self.asked_by(principal, id).await?;
        let mut listed = self.with_usernames(vec![row]).await?;
        listed
            .pop()
            .ok_or_else(|| ComplianceError::UnknownExport(id.to_string()))
    }

    /// Hands over a ready export, once: the row becomes `downloaded` and the file leaves the
    /// export directory as it is opened, so a second request for it is refused.
    pub async fn take_export(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Download, ComplianceError> {
        let now = self.clock.now();
        self.sweep(now).await?;
        let row = self.asked_by(principal, id).await?;
        Self::downloadable(&row)?;
        let claimed = data_export::Entity::update_many()
            .col_expr(data_export::Column::Status, Expr::value("downloaded"))
            .col_expr(data_export::Column::DownloadedAt, Expr::value(now))
            .col_expr(data_export::Column::UpdatedAt, Expr::value(now))
            .filter(data_export::Column::Id.eq(row.id))
            .filter(data_export::Column::Status.eq("ready"))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 0 {
            // Another request took it between the read and the claim.
            return Err(ComplianceError::Downloaded);
        }
        let path = self.exports.ready(row.id);
        let file = tokio::fs::File::open(&path).await?;
        let size = file.metadata().await?.len();
        tokio::fs::remove_file(&path).await?;
        self.record(principal, &row, Outcome::Success, "downloaded")
            .await?;
        let username = user::Entity::find_by_id(row.user_id)
            .one(&self.db)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        let content_type = match (row.encryption.as_str(), row.format.as_str()) {
            ("none", "json") => "application/json",
            ("none", _) => "application/zip",
            _ => "application/octet-stream",
        };
        Ok(Download {
            file,
            file_name: file_name(&row, &username),
            content_type,
            size,
        })
    }

    fn downloadable(row: &data_export::Model) -> Result<(), ComplianceError> {
        match row.status.as_str() {
            "ready" => Ok(()),
            "queued" | "running" => Err(ComplianceError::NotReady(row.progress)),
            "downloaded" => Err(ComplianceError::Downloaded),
            "expired" => Err(ComplianceError::Expired),
            _ => Err(ComplianceError::Failed),
        }
    }

    /// Waits until every export this process started has finished preparing (tests, shutdown).
    pub async fn exports_idle(&self) {
        let mut rx = self.exports.running.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    async fn asked_by(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<data_export::Model, ComplianceError> {
        let unknown = || ComplianceError::UnknownExport(id.to_string());
        let parsed = uuid::Uuid::parse_str(id.trim()).map_err(|_| unknown())?;
        let row = data_export::Entity::find_by_id(parsed)
            .one(&self.db)
            .await?
            .ok_or_else(unknown)?;
        let own = principal.id().and_then(|p| uuid::Uuid::parse_str(p).ok());
        let allowed =
            matches!(principal, Principal::System) || row.requested_by == own && own.is_some();
        if allowed { Ok(row) } else { Err(unknown()) }
    }

    pub(super) async fn with_usernames(
        &self,
        rows: Vec<data_export::Model>,
    ) -> Result<Vec<ExportStatus>, ComplianceError> {
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.user_id).collect();
        let names: std::collections::HashMap<uuid::Uuid, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let name = names.get(&r.user_id).cloned().unwrap_or_default();
                status_of(r, &name)
            })
            .collect())
    }

    /// Expires ready exports past their lifetime (deleting their files) and fails preparations a
    /// restart interrupted. Cheap when there is nothing to do; run before every read.
    pub(super) async fn sweep(&self, now: DateTime<Utc>) -> Result<(), ComplianceError> {
        let expired: Vec<uuid::Uuid> = data_export::Entity::find()
            .select_only()
            .column(data_export::Column::Id)
            .filter(data_export::Column::Status.eq("ready"))
            .filter(data_export::Column::ExpiresAt.lte(now))
            .limit(100)
            .into_tuple()
            .all(&self.db)
            .await?;
        for id in expired {
            data_export::Entity::update_many()
                .col_expr(data_export::Column::Status, Expr::value("expired"))
                .col_expr(data_export::Column::UpdatedAt, Expr::value(now))
                .filter(data_export::Column::Id.eq(id))
                .filter(data_export::Column::Status.eq("ready"))
                .exec(&self.db)
                .await?;
            self.exports.discard(id);
        }
        let stale: Vec<uuid::Uuid> = data_export::Entity::find()
            .select_only()
            .column(data_export::Column::Id)
            .filter(data_export::Column::Status.is_in(["queued", "running"]))
            .filter(data_export::Column::UpdatedAt.lte(now - STALE_AFTER))
            .limit(100)
            .into_tuple()
            .all(&self.db)
            .await?;
        for id in stale {
            self.finish_failed(
                id,
                "interrupted (the server restarted); request a new export",
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Drops the account's oldest export records past [`KEEP_PER_ACCOUNT`], with any file left.
    async fn prune(&self, subject: uuid::Uuid) -> Result<(), ComplianceError> {
        let old: Vec<uuid::Uuid> = data_export::Entity::find()
            .select_only()
            .column(data_export::Column::Id)
            .filter(data_export::Column::UserId.eq(subject))
            .filter(data_export::Column::Status.is_not_in(["queued", "running"]))
            .order_by_desc(data_export::Column::CreatedAt)
            .offset(KEEP_PER_ACCOUNT)
            .limit(10 * KEEP_PER_ACCOUNT)
            .into_tuple()
            .all(&self.db)
            .await?;
        if old.is_empty() {
            return Ok(());
        }
        data_export::Entity::delete_many()
            .filter(data_export::Column::Id.is_in(old.clone()))
            .exec(&self.db)
            .await?;
        for id in old {
            self.exports.discard(id);
        }
        Ok(())
    }

    async fn record(
        &self,
        principal: &Principal,
        row: &data_export::Model,
        outcome: Outcome,
        stage: &str,
    ) -> Result<(), ComplianceError> {
        let event = AuditEvent::new(EventKind::DataExport, principal.actor(), outcome)
            .with_target("user", row.user_id.to_string())
            .with_details(serde_json::json!({
                "export_id": row.id.to_string(),
                "stage": stage,
                "format": row.format,
                "encryption": row.encryption,
                "include_binaries": row.include_binaries,
            }));
        self.audit.record(event).await?;
        Ok(())
    }

    async fn finish_failed(
        &self,
        id: uuid::Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ComplianceError> {
        data_export::Entity::update_many()
            .col_expr(data_export::Column::Status, Expr::value("failed"))
            .col_expr(data_export::Column::Error, Expr::value(reason))
            .col_expr(data_export::Column::UpdatedAt, Expr::value(now))
            .col_expr(data_export::Column::FinishedAt, Expr::value(now))
            .filter(data_export::Column::Id.eq(id))
            .filter(data_export::Column::Status.is_in(["queued", "running"]))
            .exec(&self.db)
            .await?;
        self.exports.discard(id);
        Ok(())
    }

    /// Prepares one export; its outcome is written to its row (and a failure to the log).
    async fn prepare(
        &self,
        row: data_export::Model,
        person: user::Model,
        format: ExportFormat,
        seal: Seal,
    ) {
        let Ok(_turn) = self.exports.turns.clone().acquire_owned().await else {
            return;
        };
        let id = row.id;
        match self.build(&row, &person, format, seal).await {
            Ok(size) => {
                let now = self.clock.now();
                let done = data_export::Entity::update_many()
                    .col_expr(data_export::Column::Status, Expr::value("ready"))
                    .col_expr(data_export::Column::Progress, Expr::value(100i16))
                    .col_expr(data_export::Column::SizeBytes, Expr::value(size as i64))
                    .col_expr(data_export::Column::UpdatedAt, Expr::value(now))
                    .col_expr(data_export::Column::FinishedAt, Expr::value(now))
                    .col_expr(data_export::Column::ExpiresAt, Expr::value(now + LIFETIME))
                    .filter(data_export::Column::Id.eq(id))
                    .filter(data_export::Column::Status.eq("running"))
                    .exec(&self.db)
                    .await;
                match done {
                    Ok(r) if r.rows_affected == 1 => {}
                    Ok(_) => self.exports.discard(id),
                    Err(e) => {
                        tracing::error!(error = %e, export = %id, "a prepared export could not be marked ready");
                        self.exports.discard(id);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), export = %id, "an export could not be prepared");
                let now = self.clock.now();
                if let Err(e) = self
                    .finish_failed(
                        id,
                        "the export could not be prepared; the cause is in the server log",
                        now,
                    )
                    .await
                {
                    tracing::error!(error = %e, export = %id, "a failed export could not be marked failed");
                }
                let failed = AuditEvent::new(
                    EventKind::DataExport,
                    crate::audit::Actor::system(),
                    Outcome::Failure,
                )
                .with_target("user", row.user_id.to_string())
                .with_details(serde_json::json!({"export_id": id.to_string(), "stage": "failed"}));
                if let Err(e) = self.audit.record(failed).await {
                    tracing::error!(error = %e, "the failed export could not be audited");
                }
            }
        }
    }

    async fn build(
        &self,
        row: &data_export::Model,
        person: &user::Model,
        format: ExportFormat,
        seal: Seal,
    ) -> Result<u64, ComplianceError> {
        let id = row.id;
        let started = data_export::Entity::update_many()
            .col_expr(data_export::Column::Status, Expr::value("running"))
            .col_expr(
                data_export::Column::UpdatedAt,
                Expr::value(self.clock.now()),
            )
            .filter(data_export::Column::Id.eq(id))
            .filter(data_export::Column::Status.eq("queued"))
            .exec(&self.db)
            .await?;
        if started.rows_affected == 0 {
            return Err(ComplianceError::Failed);
        }
        private_dir(&self.exports.dir)?;
        let building = self.exports.building(id);
        let file = private_file(&building)?;
        let result = self.write(row, person, format, file).await;
        let file = match result {
            Ok(file) => file,
            Err(e) => {
                self.exports.discard(id);
                return Err(e);
            }
        };
        let ready = self.exports.ready(id);
        let sealed = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut plain = file;
            std::io::Seek::rewind(&mut plain)?;
            let out = private_file(&ready)?;
            let mut writer = std::io::BufWriter::new(out);
            seal.apply(std::io::BufReader::new(plain), &mut writer)?;
            let out = writer.into_inner().map_err(|e| e.into_error())?;
            out.sync_all()?;
            Ok(out.metadata()?.len())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        // The plain archive goes whatever happened; a sealed copy stays only when complete.
        let _ = std::fs::remove_file(&building);
        match sealed {
            Ok(size) => Ok(size),
            Err(e) => {
                self.exports.discard(id);
                Err(e.into())
            }
        }
    }

    async fn write(
        &self,
        row: &data_export::Model,
        person: &user::Model,
        format: ExportFormat,
        file: std::fs::File,
    ) -> Result<std::fs::File, ComplianceError> {
        // The trail and the run history include what was recorded up to this moment (the request
        // among it).
        self.audit.caught_up().await;
        self.modules.flush_runs().await;
        let about = [
            serde_json::json!("wasm-as-os personal data export"),
            serde_json::json!(1),
            serde_json::json!(self.clock.now()),
            serde_json::json!(person.id),
            serde_json::json!(person.username),
            serde_json::json!(row.include_binaries),
        ];
        let mut archive = archive::Archive::start(format, file, collect::ABOUT, &about)?;
        let sources = collect::Sources {
            db: &self.db,
            store: self.modules.store(),
        };
        let mut progress = collect::Progress {
            db: &self.db,
            clock: self.clock.as_ref(),
            id: row.id,
            shown: 0,
        };
        collect::collect(
            &sources,
            person,
            row.include_binaries,
            &mut archive,
            &mut progress,
        )
        .await
        .map_err(|e| match e {
            collect::CollectError::Db(e) => ComplianceError::Db(e),
            collect::CollectError::Io(e) => ComplianceError::Io(e),
            collect::CollectError::Store(e) => ComplianceError::Io(std::io::Error::other(e)),
        })?;
        Ok(archive.finish()?)
    }
}

impl Compliance {
    /// Erasure: the exports of an account (its own and those it asked for), rows and files.
    pub(super) async fn erase_exports(&self, user_id: uuid::Uuid) -> Result<u64, ComplianceError> {
        use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
        let rows = data_export::Entity::find()
            .filter(
                Condition::any()
                    .add(data_export::Column::UserId.eq(user_id))
                    .add(data_export::Column::RequestedBy.eq(user_id)),
            )
            .all(&self.db)
            .await?;
        for row in &rows {
            self.exports.discard(row.id);
        }
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        Ok(data_export::Entity::delete_many()
            .filter(data_export::Column::Id.is_in(ids))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
