//! Modules: upload (streamed to disk, analysed, stored encrypted by content hash), listing what a
//! principal may see, sharing, quarantine and review, and re-analysis when the rules change.
//!
//! Access follows rbac.yml: `modules:create` to upload, `modules:read` to see, and the `resources`
//! section's ownership and sharing — a user reaches modules they own, modules shared with them or
//! one of their roles, or every module through `modules:*`. Quarantine review is for holders of
//! `modules:*` (admins).

mod entities;
pub mod execute;
pub mod policy;
mod recorder;
pub mod storage;

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func},
};
use serde::Serialize;

pub use self::entities::{module, run, share};
use self::storage::{ModuleStore, Staged, StorageError};
use crate::{
    access::{Principal, Relation},
    audit::{Actor, AuditEvent, AuditService, EventKind, Outcome},
    clock::Clock,
    config::Config,
};

/// Errors of the module services; each message is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The principal lacks the permission.
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// No such module, or not one the caller may see.
    #[error("no module with id \"{0}\"")]
    NotFound(String),
    /// Input was rejected; messages per field.
    #[error("{}", .0.iter().map(|(f, m)| format!("{f} {}", m.join(", "))).collect::<Vec<_>>().join("; "))]
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

fn invalid(field: &str, message: impl Into<String>) -> ModuleError {
    ModuleError::Invalid(BTreeMap::from([(field.to_string(), vec![message.into()])]))
}

/// Whether a module may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleStatus {
    Active,
    Review,
    Quarantined,
}

impl ModuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Review => "review",
            Self::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "review" => Some(Self::Review),
            "quarantined" => Some(Self::Quarantined),
            _ => None,
        }
    }
}

/// Who a module is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Grantee {
    /// A user, by username.
    User(String),
    /// Everyone holding a role.
    Role(String),
}

/// The analysis part of a module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub risk_score: u8,
    pub findings: Vec<analysis::Finding>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub suspicious: bool,
}

/// A module as the services return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub owner_id: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub kind: String,
    pub status: ModuleStatus,
    pub analysis: Analysis,
    pub capability_group: Option<String>,
    pub review_note: Option<String>,
    pub shares: Vec<Grantee>,
    pub created_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
}

/// Filters of the module list.
#[derive(Debug, Clone, Default)]
pub struct ModuleFilter {
    pub status: Option<ModuleStatus>,
    /// Owner's username.
    pub owner: Option<String>,
    /// Text in the name or description.
    pub q: Option<String>,
}

/// Name and description of an upload.
#[derive(Debug, Clone, Default)]
pub struct UploadMeta {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Modules {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    audit: AuditService,
    store: ModuleStore,
    policy: Arc<analysis::Policy>,
    policy_hash: String,
    max_upload: u64,
    /// The sandbox; `None` in processes that do not run modules (the CLI).
    executor: Option<Arc<execute::Executor>>,
    /// Writes the run history behind the runs; present with the executor.
    runs: Option<recorder::RunRecorder>,
    /// Moved by every change to modules, their shares, accounts and roles, in any process.
    generation: crate::generation::AccessGeneration,
    /// What an execute needs to know of a module, reused while the generation stands.
    access: Arc<crate::generation::Fresh<uuid::Uuid, Option<ModuleAccess>>>,
    /// Uploads of one owner take turns from the quota check to the stored row (striped by owner,
    /// so the set is bounded), so parallel uploads cannot pass the quota together.
    quota_turns: Arc<[tokio::sync::Mutex<()>; QUOTA_STRIPES]>,
}

/// How many owners' uploads can be between quota check and insert at once.
const QUOTA_STRIPES: usize = 64;

/// What deciding on a run needs of a module: its owner and shares, and what the run uses.
#[derive(Debug)]
pub(crate) struct ModuleAccess {
    target: RunTarget,
    /// Analysed under other rules than the current ones (re-analysed before it runs).
    stale: bool,
    owner_id: uuid::Uuid,
    shares: Vec<share::Model>,
}

/// The fields of a module a run uses.
#[derive(Debug, Clone)]
pub(crate) struct RunTarget {
    pub(crate) id: uuid::Uuid,
    pub(crate) status: String,
    pub(crate) sha256: String,
    pub(crate) capability_group: Option<String>,
}

/// What one step of the background re-analysis did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reanalysis {
    /// This module was analysed again; `status` is its status now.
    Reanalysed { id: String, status: String },
    /// Every module is current.
    Idle,
}

/// Most modules kept in memory for deciding on runs.
const ACCESS_CACHE: usize = 10_000;

/// Module names: 1–128 printable characters, trimmed.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        Err("must be 1–128 printable characters".into())
    } else {
        Ok(name.to_string())
    }
}

impl Modules {
    // Wired once, in `Platform::start`, from what start-up made.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        audit: AuditService,
        store: ModuleStore,
        max_upload: u64,
        executor: Option<Arc<execute::Executor>>,
        generation: crate::generation::AccessGeneration,
    ) -> Self {
        let policy = policy::from_config(&config);
        let policy_hash = policy::fingerprint(&policy);
        let runs = executor
            .is_some()
            .then(|| recorder::RunRecorder::start(db.clone()))
            .flatten();
        if executor.is_some() && runs.is_none() {
            tracing::error!(
                "no tokio runtime to write the run history on; runs will not be recorded"
            );
        }
        let access = Arc::new(crate::generation::Fresh::new(
            generation.clone(),
            ACCESS_CACHE,
        ));
        Self {
            db,
            clock,
            config,
            audit,
            store,
            policy: Arc::new(policy),
            policy_hash,
            max_upload,
            executor,
            runs,
            generation,
            quota_turns: Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
            access,
        }
    }

    /// The upload size cap, in bytes.
    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    fn actor(principal: &Principal) -> Actor {
        Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        }
    }

    async fn deny(&self, principal: &Principal, permission: &str, target: &str) -> ModuleError {
        let event = AuditEvent::new(
            EventKind::PermissionDenied,
            Self::actor(principal),
            Outcome::Denied,
        )
        .with_details(serde_json::json!({ "permission": permission, "target": target }));
        if let Err(e) = self.audit.record(event).await {
            return e.into();
        }
        ModuleError::Forbidden(permission.to_string())
    }

    async fn require(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
    ) -> Result<(), ModuleError> {
        if principal.can("modules", action) {
            Ok(())
        } else {
            Err(self
                .deny(principal, &format!("modules:{action}"), target)
                .await)
        }
    }

    async fn record(
        &self,
        principal: &Principal,
        kind: EventKind,
        outcome: Outcome,
        row: &module::Model,
        details: serde_json::Value,
    ) -> Result<(), ModuleError> {
        let event = AuditEvent::new(kind, Self::actor(principal), outcome)
            .with_target("module", row.id.to_string())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }

    /// Whether the principal may upload (`modules:create`), checked before a body is read.
    pub async fn check_can_upload(&self, principal: &Principal) -> Result<(), ModuleError> {
        self.require(principal, "create", "upload").await
    }

    /// Streams an upload into temporary storage (bounded by the upload cap).
    pub async fn stage(
        &self,
        body: impl tokio::io::AsyncRead + Unpin,
    ) -> Result<Staged, ModuleError> {
        Ok(self.store.stage(body, self.max_upload).await?)
    }

    fn status_for(&self, report: &analysis::Report) -> ModuleStatus {
        let q = &self.config.static_analysis.static_analysis.quarantine;
        match report.verdict {
            _ if !q.enabled => ModuleStatus::Active,
            analysis::Verdict::Quarantined if q.auto_quarantine || report.suspicious => {
                ModuleStatus::Quarantined
            }
            analysis::Verdict::Quarantined | analysis::Verdict::Review => ModuleStatus::Review,
            analysis::Verdict::Active => ModuleStatus::Active,
        }
    }

    async fn analyse(&self, bytes: Vec<u8>) -> Result<analysis::Report, ModuleError> {
        let policy = self.policy.clone();
        tokio::task::spawn_blocking(move || analysis::analyze_with_threads(&bytes, &policy, 1))
            .await
            .map_err(|e| ModuleError::Storage(StorageError::Io(std::io::Error::other(e))))?
            .map_err(ModuleError::from)
    }

    /// Uploads a staged module (`modules:create`): validates and analyses it, stores it encrypted,
    /// and quarantines it when the analysis says so. Audited as `module_upload` (and
    /// `module_quarantine`).
    pub async fn upload(
        &self,
        principal: &Principal,
        meta: UploadMeta,
        staged: Staged,
    ) -> Result<ModuleInfo, ModuleError> {
        self.require(principal, "create", &meta.name).await?;
        let Some(owner) = principal.id().and_then(|id| uuid::Uuid::parse_str(id).ok()) else {
            return Err(ModuleError::Forbidden(
                "a user account (modules have owners)".into(),
            ));
        };
        let name = check_name(&meta.name).map_err(|m| invalid("name", m))?;
        if staged.size == 0 {
            return Err(ModuleError::Empty);
        }
        let bytes = tokio::fs::read(&staged.path)
            .await
            .map_err(StorageError::from)?;
        let report = self.analyse(bytes).await?;
        let stripe = usize::from(owner.as_bytes()[15]) % QUOTA_STRIPES;
        let _turn = self.quota_turns[stripe].lock().await;
        self.check_quota(principal, owner, &name, staged.size)
            .await?;
        self.store.commit(&staged).await?;
        let status = self.status_for(&report);
        let now = self.clock.now();
        let row = module::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            name: Set(name),
            description: Set(meta.description.trim().chars().take(2000).collect()),
            owner_id: Set(owner),
            size_bytes: Set(i64::try_from(staged.size).unwrap_or(i64::MAX)),
            sha256: Set(staged.sha256.clone()),
            kind: Set(kind_str(report.kind).to_string()),
            status: Set(status.as_str().to_string()),
            risk_score: Set(i16::from(report.risk_score)),
            suspicious: Set(report.suspicious),
            analysis: Set(analysis_json(&report)),
            policy_hash: Set(self.policy_hash.clone()),
            capability_group: Set(None),
            review_note: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_run_at: Set(None),
        }
        .insert(&self.db)
        .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                // The staged file goes with `staged`; the stored copy goes unless a module uses it.
                if let Err(cleanup) = self.remove_unused(&staged.sha256).await {
                    tracing::warn!(error = %cleanup, "could not remove the stored copy of a failed upload");
                }
                return Err(e.into());
            }
        };
        self.generation.advance();
        let details = serde_json::json!({ "name": row.name, "sha256": row.sha256, "size_bytes": staged.size, "risk_score": report.risk_score, "status": status.as_str() });
        self.record(
            principal,
            EventKind::ModuleUpload,
            Outcome::Success,
            &row,
            details,
        )
        .await?;
        if status == ModuleStatus::Quarantined {
            let (reason, severity) = if report.suspicious {
                (
                    "suspicious upload (ids.yml suspicious_module_upload)",
                    "critical",
                )
            } else {
                ("risk score at or above high_risk_threshold", "high")
            };
            let details =
                serde_json::json!({ "reason": reason, "severity": severity, "automatic": true });
            self.record(
                principal,
                EventKind::ModuleQuarantine,
                Outcome::Success,
                &row,
                details,
            )
            .await?;
        }
        self.info(row).await
    }

    /// Refuses an upload that would take the owner's modules past
    /// sandbox.yml `storage.module_quota_per_user`; audited as a denied `module_upload`.
    async fn check_quota(
        &self,
        principal: &Principal,
        owner: uuid::Uuid,
        name: &str,
        size: u64,
    ) -> Result<(), ModuleError> {
        let quota = self
            .config
            .sandbox
            .sandbox
            .storage
            .module_quota_per_user
            .bytes();
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back, on both databases.
        let used: Option<i64> = module::Entity::find()
            .select_only()
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)"),
                "used",
            )
            .filter(module::Column::OwnerId.eq(owner))
            .into_tuple()
            .one(&self.db)
            .await?;
        let used = u64::try_from(used.unwrap_or_default()).unwrap_or_default();
        if used.saturating_add(size) <= quota {
            return Ok(());
        }
        let event = AuditEvent::new(EventKind::ModuleUpload, Self::actor(principal), Outcome::Denied)
            .with_details(serde_json::json!({ "name": name, "size_bytes": size, "reason": "quota_exceeded", "quota_bytes": quota, "used_bytes": used }));
        self.audit.record(event).await?;
        Err(ModuleError::QuotaExceeded { quota })
    }

    /// The caller's relation to a module.
    async fn relation(
        &self,
        principal: &Principal,
        row: &module::Model,
    ) -> Result<Relation, ModuleError> {
        if matches!(principal, Principal::User { id, .. } if row.owner_id.to_string() != *id) {
            let shares = share::Entity::find()
                .filter(share::Column::ModuleId.eq(row.id))
                .all(&self.db)
                .await?;
            return Ok(relation_with(principal, row.owner_id, &shares));
        }
        Ok(relation_with(principal, row.owner_id, &[]))
    }

    fn resource_policy(&self) -> crate::config::rbac::ResourcePolicy {
        self.config
            .rbac
            .resources
            .get("modules")
            .copied()
            .unwrap_or(crate::config::rbac::ResourcePolicy {
                ownership: true,
                sharing: true,
            })
    }

    /// Loads a module the principal may `action`; modules they may not see at all are "not found".
    pub(crate) async fn reach(
        &self,
        principal: &Principal,
        id: &str,
        action: &str,
    ) -> Result<module::Model, ModuleError> {
        let not_found = || ModuleError::NotFound(id.to_string());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
        let row = module::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let relation = self.relation(principal, &row).await?;
        self.check_reach(principal, id, action, relation).await?;
        Ok(row)
    }

    /// [`Self::reach`] for runs: owner, shares, status, capability group and content hash come
    /// from memory while no module, share, account or role changed anywhere (see
    /// [`crate::generation`]).
    pub(crate) async fn reach_for_run(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<RunTarget, ModuleError> {
        let not_found = || ModuleError::NotFound(id.to_string());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
        let access = self
            .access
            .get_or_load(&uuid, self.load_access(uuid))
            .await?;
        let Some(access) = Option::as_ref(&access) else {
            return Err(not_found());
        };
        let relation = relation_with(principal, access.owner_id, &access.shares);
        self.check_reach(principal, id, "execute", relation).await?;
        if access.stale {
            // Not yet reached by the background re-analysis: analysed now, for a caller who may
            // run it, so nothing runs under outdated rules.
            let row = module::Entity::find_by_id(uuid)
                .one(&self.db)
                .await?
                .ok_or_else(not_found)?;
            let row = if row.policy_hash == self.policy_hash {
                row
            } else {
                self.reanalyse(row).await?
            };
            return Ok(run_target(row));
        }
        Ok(access.target.clone())
    }

    async fn load_access(&self, id: uuid::Uuid) -> Result<Option<ModuleAccess>, ModuleError> {
        let Some(row) = module::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let shares = share::Entity::find()
            .filter(share::Column::ModuleId.eq(id))
            .all(&self.db)
            .await?;
        Ok(Some(ModuleAccess {
            stale: row.policy_hash != self.policy_hash,
            owner_id: row.owner_id,
            target: run_target(row),
            shares,
        }))
    }

    async fn check_reach(
        &self,
        principal: &Principal,
        id: &str,
        action: &str,
        relation: Relation,
    ) -> Result<(), ModuleError> {
        let not_found = || ModuleError::NotFound(id.to_string());
        let policy = self.resource_policy();
        if !principal.can_on("modules", "read", policy, relation) {
            // Invisible modules are not confirmed to exist, but the attempt is audited.
            return Err(match self.deny(principal, "modules:read", id).await {
                ModuleError::Forbidden(_) => not_found(),
                other => other,
            });
        }
        if !principal.can_on("modules", action, policy, relation) {
            return Err(self.deny(principal, &format!("modules:{action}"), id).await);
        }
        Ok(())
    }

    /// One module (`modules:read`, ownership and sharing apply).
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<ModuleInfo, ModuleError> {
        self.flush_runs().await;
        let row = self.reach(principal, id, "read").await?;
        self.info(row).await
    }

    /// Modules the principal may see, newest first, one page at a time, and the total.
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &ModuleFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<ModuleInfo>, u64), ModuleError> {
        self.flush_runs().await;
        self.require(principal, "read", "*").await?;
        let mut query = module::Entity::find();
        if let Principal::User { id, roles, .. } = principal
            && !principal.can("modules", "*")
            && self.resource_policy().ownership
        {
            let me = uuid::Uuid::parse_str(id).unwrap_or_default();
            let mut shared = Condition::any().add(
                share::Column::GranteeKind
                    .eq("user")
                    .and(share::Column::Grantee.eq(id.clone())),
            );
            if !roles.is_empty() {
                shared = shared.add(
                    share::Column::GranteeKind
                        .eq("role")
                        .and(share::Column::Grantee.is_in(roles.clone())),
                );
            }
            let shared_ids: Vec<uuid::Uuid> = if self.resource_policy().sharing {
                share::Entity::find()
                    .filter(shared)
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|s| s.module_id)
                    .collect()
            } else {
                Vec::new()
            };
            query = query.filter(
                Condition::any()
                    .add(module::Column::OwnerId.eq(me))
                    .add(module::Column::Id.is_in(shared_ids)),
            );
        }
        if let Some(status) = filter.status {
            query = query.filter(module::Column::Status.eq(status.as_str()));
        }
        if let Some(owner) = filter.owner.as_deref().filter(|o| !o.trim().is_empty()) {
            let owner_id = self.user_id(owner).await?.unwrap_or_default();
            query = query.filter(module::Column::OwnerId.eq(owner_id));
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = format!(
                "%{}%",
                q.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            query = query.filter(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(module::Column::Name)))
                            .like(pattern.clone()),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(module::Column::Description)))
                            .like(pattern),
                    ),
            );
        }
        let total = query.clone().count(&self.db).await?;
        let rows = query
            .order_by_desc(module::Column::CreatedAt)
            .order_by_desc(module::Column::Id)
            .offset(offset)
            .limit(limit.clamp(1, 200))
            .all(&self.db)
            .await?;
        Ok((self.infos(rows).await?, total))
    }

    /// Renames or re-describes a module (`modules:update`).
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<ModuleInfo, ModuleError> {
        let row = self.reach(principal, id, "update").await?;
        let mut active: module::ActiveModel = row.into();
        if let Some(name) = name {
            active.name = Set(check_name(&name).map_err(|m| invalid("name", m))?);
        }
        if let Some(description) = description {
            active.description = Set(description.trim().chars().take(2000).collect());
        }
        active.updated_at = Set(self.clock.now());
        let change = self.generation.change();
        let row = active.update(&self.db).await?;
        drop(change);
        self.info(row).await
    }

    /// Deletes a module and, when no other module holds the same bytes, its file
    /// (`modules:delete`); audited as `module_delete` with the reason.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: &str,
        reason: Option<String>,
    ) -> Result<(), ModuleError> {
        let row = self.reach(principal, id, "delete").await?;
        let change = self.generation.change();
        module::Entity::delete_by_id(row.id).exec(&self.db).await?;
        drop(change);
        self.remove_unused(&row.sha256).await?;
        let details =
            serde_json::json!({ "name": row.name, "sha256": row.sha256, "reason": reason });
        self.record(
            principal,
            EventKind::ModuleDelete,
            Outcome::Success,
            &row,
            details,
        )
        .await
    }

    /// Deletes the stored file of `sha256` unless a module still holds the same bytes.
    async fn remove_unused(&self, sha256: &str) -> Result<(), ModuleError> {
        let others = module::Entity::find()
            .filter(module::Column::Sha256.eq(sha256))
            .count(&self.db)
            .await?;
        if others == 0 {
            self.store.remove(sha256).await?;
        }
        Ok(())
    }

    async fn user_id(&self, username: &str) -> Result<Option<uuid::Uuid>, ModuleError> {
        use crate::identity::entities::user;
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username.trim().to_lowercase()))
            .one(&self.db)
            .await?
            .map(|u| u.id))
    }

    /// An enabled account's id. Unknown and disabled names look the same to the caller, so sharing
    /// does not tell who has an account.
    async fn active_user_id(&self, username: &str) -> Result<Option<uuid::Uuid>, ModuleError> {
        use crate::identity::entities::user;
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username.trim().to_lowercase()))
            .filter(user::Column::Disabled.eq(false))
            .one(&self.db)
            .await?
            .map(|u| u.id))
    }

    /// Shares a module with a user or a role (owner, or `modules:*`); audited as `module_share`.
    /// Unknown and disabled users get the same refusal (see [`Self::active_user_id`]).
    pub async fn share(
        &self,
        principal: &Principal,
        id: &str,
        grantee: Grantee,
    ) -> Result<ModuleInfo, ModuleError> {
        let row = self.reach(principal, id, "read").await?;
        self.require_owner(principal, &row, "share").await?;
        if !self.resource_policy().sharing {
            return Err(ModuleError::Conflict(
                "rbac.yml turns sharing of modules off".into(),
            ));
        }
        let (kind, key) = match &grantee {
            Grantee::User(name) => (
                "user",
                self.active_user_id(name)
                    .await?
                    .ok_or_else(|| {
                        invalid(
                            "user",
                            format!("cannot share with \"{name}\": no active account by that name"),
                        )
                    })?
                    .to_string(),
            ),
            Grantee::Role(name) => {
                use crate::identity::entities::role;
                if role::Entity::find_by_id(name.clone())
                    .one(&self.db)
                    .await?
                    .is_none()
                {
                    return Err(invalid("role", format!("no role named \"{name}\"")));
                }
                ("role", name.clone())
            }
        };
        let exists = share::Entity::find_by_id((row.id, kind.to_string(), key.clone()))
            .one(&self.db)
            .await?
            .is_some();
        if !exists {
            let change = self.generation.change();
            share::ActiveModel {
                module_id: Set(row.id),
                grantee_kind: Set(kind.into()),
                grantee: Set(key),
                created_at: Set(self.clock.now()),
            }
            .insert(&self.db)
            .await?;
            drop(change);
            self.record(
                principal,
                EventKind::ModuleShare,
                Outcome::Success,
                &row,
                serde_json::json!({ "action": "share", "with": grantee }),
            )
            .await?;
        }
        self.info(row).await
    }

    /// Withdraws a share; audited as `module_share`.
    pub async fn unshare(
        &self,
        principal: &Principal,
        id: &str,
        grantee: Grantee,
    ) -> Result<ModuleInfo, ModuleError> {
        let row = self.reach(principal, id, "read").await?;
        self.require_owner(principal, &row, "share").await?;
        let (kind, key) = match &grantee {
            Grantee::User(name) => (
                "user",
                self.user_id(name)
                    .await?
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            ),
            Grantee::Role(name) => ("role", name.clone()),
        };
        let change = self.generation.change();
        let gone = share::Entity::delete_by_id((row.id, kind.to_string(), key))
            .exec(&self.db)
            .await?;
        drop(change);
        if gone.rows_affected > 0 {
            self.record(
                principal,
                EventKind::ModuleShare,
                Outcome::Success,
                &row,
                serde_json::json!({ "action": "unshare", "with": grantee }),
            )
            .await?;
        }
        self.info(row).await
    }

    async fn require_owner(
        &self,
        principal: &Principal,
        row: &module::Model,
        what: &str,
    ) -> Result<(), ModuleError> {
        let owner = matches!(principal, Principal::System)
            || principal.id() == Some(row.owner_id.to_string().as_str());
        if owner || principal.can("modules", "*") {
            Ok(())
        } else {
            Err(self
                .deny(
                    principal,
                    &format!("modules:{what} (owner or modules:*)"),
                    &row.id.to_string(),
                )
                .await)
        }
    }

    /// Modules waiting for review or quarantined (`modules:*`), worst first.
    pub async fn review_queue(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ModuleInfo>, ModuleError> {
        self.require(principal, "*", "review-queue").await?;
        let rows = module::Entity::find()
            .filter(module::Column::Status.is_in(["review", "quarantined"]))
            .order_by_desc(module::Column::RiskScore)
            .order_by_desc(module::Column::CreatedAt)
            .all(&self.db)
            .await?;
        self.infos(rows).await
    }

    /// Releases a module from review or quarantine, or quarantines it (`modules:*`), with a reason;
    /// audited as `module_release` / `module_quarantine`.
    pub async fn set_quarantine(
        &self,
        principal: &Principal,
        id: &str,
        quarantine: bool,
        reason: &str,
    ) -> Result<ModuleInfo, ModuleError> {
        self.require(principal, "*", id).await?;
        let row = self.reach(principal, id, "read").await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(invalid(
                "reason",
                "give a reason; it is kept in the audit log",
            ));
        }
        let (status, kind) = if quarantine {
            (ModuleStatus::Quarantined, EventKind::ModuleQuarantine)
        } else {
            (ModuleStatus::Active, EventKind::ModuleRelease)
        };
        let mut active: module::ActiveModel = row.into();
        active.status = Set(status.as_str().to_string());
        active.review_note = Set(Some(reason.chars().take(2000).collect()));
        active.updated_at = Set(self.clock.now());
        let change = self.generation.change();
        let row = active.update(&self.db).await?;
        drop(change);
        self.record(
            principal,
            kind,
            Outcome::Success,
            &row,
            serde_json::json!({ "reason": reason, "automatic": false }),
        )
        .await?;
        self.info(row).await
    }

    /// Assigns a sandbox.yml `module_capabilities` group to a module, or none (`modules:*`);
    /// audited as `module_update`… recorded under `config_change`.
    pub async fn set_capability_group(
        &self,
        principal: &Principal,
        id: &str,
        group: Option<String>,
    ) -> Result<ModuleInfo, ModuleError> {
        self.require(principal, "*", id).await?;
        let row = self.reach(principal, id, "read").await?;
        if let Some(g) = &group
            && !self
                .config
                .sandbox
                .sandbox
                .module_capabilities
                .contains_key(g)
        {
            let known: Vec<&String> = self
                .config
                .sandbox
                .sandbox
                .module_capabilities
                .keys()
                .collect();
            return Err(invalid(
                "capability_group",
                format!("no capability group \"{g}\" in sandbox.yml (known: {known:?})"),
            ));
        }
        let before = row.capability_group.clone();
        let mut active: module::ActiveModel = row.into();
        active.capability_group = Set(group.clone());
        active.updated_at = Set(self.clock.now());
        let change = self.generation.change();
        let row = active.update(&self.db).await?;
        drop(change);
        let details =
            serde_json::json!({ "setting": "capability_group", "from": before, "to": group });
        self.record(
            principal,
            EventKind::ConfigChange,
            Outcome::Success,
            &row,
            details,
        )
        .await?;
        self.info(row).await
    }

    fn stale(&self) -> sea_orm::Select<module::Entity> {
        module::Entity::find().filter(module::Column::PolicyHash.ne(self.policy_hash.clone()))
    }

    /// How many stored modules were analysed under other rules than the current ones.
    pub async fn stale_count(&self) -> Result<u64, ModuleError> {
        use sea_orm::PaginatorTrait;
        Ok(self.stale().count(&self.db).await?)
    }

    /// One step of the background re-analysis: analyses the oldest module whose analysis predates
    /// the current rules (see [`Self::stale_count`]). Start-up does none of this work; `serve`
    /// runs these steps behind the listener, and a run of a stale module re-analyses it first.
    pub async fn reanalyse_next(&self) -> Result<Reanalysis, ModuleError> {
        let Some(row) = self
            .stale()
            .order_by_asc(module::Column::CreatedAt)
            .one(&self.db)
            .await?
        else {
            return Ok(Reanalysis::Idle);
        };
        let updated = self.reanalyse(row).await?;
        Ok(Reanalysis::Reanalysed {
            id: updated.id.to_string(),
            status: updated.status,
        })
    }

    /// Analyses one module again under the current rules and stores the new report and status;
    /// a new quarantine is audited as `module_quarantine`.
    async fn reanalyse(&self, row: module::Model) -> Result<module::Model, ModuleError> {
        let bytes = self.store.read(&row.sha256).await?;
        let report = self.analyse(bytes).await?;
        let status = match (self.status_for(&report), ModuleStatus::parse(&row.status)) {
            // A released module stays released unless the new rules quarantine it.
            (ModuleStatus::Review, Some(ModuleStatus::Active)) if row.review_note.is_some() => {
                ModuleStatus::Active
            }
            (new, _) => new,
        };
        let mut active: module::ActiveModel = row.clone().into();
        active.risk_score = Set(i16::from(report.risk_score));
        active.suspicious = Set(report.suspicious);
        active.analysis = Set(analysis_json(&report));
        active.status = Set(status.as_str().to_string());
        active.policy_hash = Set(self.policy_hash.clone());
        active.updated_at = Set(self.clock.now());
        let change = self.generation.change();
        let updated = active.update(&self.db).await?;
        drop(change);
        if status == ModuleStatus::Quarantined && row.status != "quarantined" {
            let details = serde_json::json!({
                "reason": "re-analysis under changed rules",
                "automatic": true
            });
            self.record(
                &Principal::System,
                EventKind::ModuleQuarantine,
                Outcome::Success,
                &updated,
                details,
            )
            .await?;
        }
        Ok(updated)
    }

    /// Whether a module in `status` may run: quarantined never, in review only when
    /// static_analysis.yml `quarantine.run_in_review` allows it.
    pub(crate) fn runnable(&self, id: &str, status: &str) -> Result<(), ModuleError> {
        match ModuleStatus::parse(status) {
            Some(ModuleStatus::Active) => Ok(()),
            Some(ModuleStatus::Review)
                if self
                    .config
                    .static_analysis
                    .static_analysis
                    .quarantine
                    .run_in_review =>
            {
                Ok(())
            }
            Some(ModuleStatus::Review) => Err(ModuleError::InReview(id.to_string())),
            Some(ModuleStatus::Quarantined) | None => Err(ModuleError::Quarantined(id.to_string())),
        }
    }

    async fn info(&self, row: module::Model) -> Result<ModuleInfo, ModuleError> {
        let id = row.id;
        self.infos(vec![row])
            .await?
            .pop()
            .ok_or_else(|| ModuleError::NotFound(id.to_string()))
    }

    /// The views of several modules: owners, shares and share users in three queries in all.
    async fn infos(&self, rows: Vec<module::Model>) -> Result<Vec<ModuleInfo>, ModuleError> {
        use crate::identity::entities::user;
        use std::collections::HashMap;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let shares = share::Entity::find()
            .filter(share::Column::ModuleId.is_in(ids))
            .order_by_asc(share::Column::Grantee)
            .all(&self.db)
            .await?;
        let mut user_ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.owner_id).collect();
        user_ids.extend(
            shares
                .iter()
                .filter(|s| s.grantee_kind != "role")
                .filter_map(|s| uuid::Uuid::parse_str(&s.grantee).ok()),
        );
        user_ids.sort_unstable();
        user_ids.dedup();
        let names: HashMap<uuid::Uuid, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(user_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let mut by_module: HashMap<uuid::Uuid, Vec<Grantee>> = HashMap::new();
        for s in shares {
            let grantee = if s.grantee_kind == "role" {
                Some(Grantee::Role(s.grantee))
            } else {
                uuid::Uuid::parse_str(&s.grantee)
                    .ok()
                    .and_then(|uid| names.get(&uid))
                    .map(|n| Grantee::User(n.clone()))
            };
            by_module.entry(s.module_id).or_default().extend(grantee);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let owner = names
                    .get(&row.owner_id)
                    .cloned()
                    .unwrap_or_else(|| "(deleted user)".to_string());
                let shares = by_module.remove(&row.id).unwrap_or_default();
                Self::view(row, owner, shares)
            })
            .collect())
    }

    fn view(row: module::Model, owner: String, shares: Vec<Grantee>) -> ModuleInfo {
        let report: StoredAnalysis =
            serde_json::from_value(row.analysis.clone()).unwrap_or_default();
        ModuleInfo {
            id: row.id.to_string(),
            name: row.name,
            description: row.description,
            owner,
            owner_id: row.owner_id.to_string(),
            size_bytes: u64::try_from(row.size_bytes).unwrap_or_default(),
            sha256: row.sha256,
            kind: row.kind,
            status: ModuleStatus::parse(&row.status).unwrap_or(ModuleStatus::Quarantined),
            analysis: Analysis {
                risk_score: u8::try_from(row.risk_score).unwrap_or(10),
                findings: report.findings,
                imports: report.imports,
                exports: report.exports,
                suspicious: row.suspicious,
            },
            capability_group: row.capability_group,
            review_note: row.review_note,
            shares,
            created_at: row.created_at,
            last_run_at: row.last_run_at,
        }
    }
}

/// What is kept of a report in the `analysis` column.
#[derive(Debug, Default, serde::Deserialize, Serialize)]
struct StoredAnalysis {
    #[serde(default)]
    findings: Vec<analysis::Finding>,
    #[serde(default)]
    imports: Vec<String>,
    #[serde(default)]
    exports: Vec<String>,
}

fn run_target(row: module::Model) -> RunTarget {
    RunTarget {
        id: row.id,
        status: row.status,
        sha256: row.sha256,
        capability_group: row.capability_group,
    }
}

/// How the caller relates to a module, given its shares.
fn relation_with(principal: &Principal, owner_id: uuid::Uuid, shares: &[share::Model]) -> Relation {
    let Principal::User { id, roles, .. } = principal else {
        return Relation::Owner;
    };
    if owner_id.to_string() == *id {
        return Relation::Owner;
    }
    let shared = shares.iter().any(|s| {
        (s.grantee_kind == "user" && s.grantee == *id)
            || (s.grantee_kind == "role" && roles.contains(&s.grantee))
    });
    if shared {
        Relation::SharedWith
    } else {
        Relation::Other
    }
}

fn analysis_json(report: &analysis::Report) -> serde_json::Value {
    serde_json::json!({ "findings": report.findings, "imports": report.imports, "exports": report.exports })
}

fn kind_str(kind: analysis::ModuleKind) -> &'static str {
    match kind {
        analysis::ModuleKind::Core => "core",
        analysis::ModuleKind::Component => "component",
    }
}
