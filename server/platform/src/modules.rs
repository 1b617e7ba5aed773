//! Modules: upload (streamed to disk, analysed, stored encrypted by content hash), listing what a
//! principal may see, sharing, quarantine and review, and re-analysis when the rules change.
//!
//! Access follows rbac.yml: `modules:create` to upload, `modules:read` to see, and the `resources`
//! section's ownership and sharing — a user reaches modules they own, modules shared with them or
//! one of their roles, or every module through `modules:*`. Quarantine review is for holders of
//! `modules:*` (admins).
//!
//! One file per concern: what goes wrong (`error.rs`), what the services take and return
//! (`model.rs`), upload, list, update and delete (`catalog.rs`), who reaches a module (`reach.rs`),
//! sharing (`sharing.rs`), an administrator's review and capability groups (`review.rs`),
//! analysis and re-analysis (`reanalysis.rs`), the static-analysis rules taken from the config
//! (`analysis_rules.rs`), storage (`storage.rs`) and runs (`execute.rs`, `recorder.rs`).

pub mod analysis_rules;
mod catalog;
pub(crate) mod entities;
mod error;
pub mod execute;
mod model;
mod reach;
mod reanalysis;
mod recorder;
mod review;
mod sharing;
pub mod storage;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use self::storage::ModuleStore;
pub use self::{
    entities::{module, run, share},
    error::ModuleError,
    model::{
        Analysis, Grantee, ModuleFilter, ModuleInfo, ModuleStatus, Reanalysis, UploadMeta,
        check_name,
    },
};
use crate::{
    access::Principal,
    audit::{AuditEvent, AuditService, EventKind, Outcome},
    clock::Clock,
    config::Config,
    generation::AccessWrites,
};

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
    /// The only way to write modules and shares: each write moves the access generation once
    /// committed (see [`crate::generation::writes`]).
    writes: AccessWrites,
    /// What an execute needs to know of a module, reused while the generation stands.
    access: Arc<crate::generation::Fresh<uuid::Uuid, Option<ModuleAccess>>>,
    /// Uploads of one owner take turns from the quota check to the stored row (striped by owner,
    /// so the set is bounded), so parallel uploads cannot pass the quota together.
    quota_turns: Arc<[tokio::sync::Mutex<()>; QUOTA_STRIPES]>,
    /// rate_limit.yml budgets for uploads and runs, and ids.yml throttles.
    edge: crate::edge::Edge,
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

/// Most modules kept in memory for deciding on runs.
const ACCESS_CACHE: usize = 10_000;

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
        edge: crate::edge::Edge,
    ) -> Self {
        let policy = analysis_rules::from_config(&config);
        let policy_hash = analysis_rules::fingerprint(&policy);
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
            writes: AccessWrites::new(db.clone(), generation),
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
            quota_turns: Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
            edge,
            access,
        }
    }

    /// The encrypted module files (exports read them).
    pub(crate) fn store(&self) -> &ModuleStore {
        &self.store
    }

    /// The upload size cap, in bytes.
    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    async fn require(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
    ) -> Result<(), ModuleError> {
        Ok(principal
            .require(&self.audit, "modules", action, target)
            .await?)
    }

    async fn record(
        &self,
        principal: &Principal,
        kind: EventKind,
        outcome: Outcome,
        row: &module::Model,
        details: serde_json::Value,
    ) -> Result<(), ModuleError> {
        let event = AuditEvent::new(kind, principal.actor(), outcome)
            .with_target("module", row.id.to_string())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }
}

impl Modules {
    /// Spends one of the principal's uploads or runs (rate_limit.yml `per_endpoint`; runs also
    /// obey ids.yml throttles). The system principal has no budget.
    async fn admit(
        &self,
        action: crate::edge::Action,
        principal: &Principal,
    ) -> Result<(), ModuleError> {
        if let Some(id) = principal.id() {
            self.edge
                .admit(action, crate::edge::Who::User(id), None)
                .await?;
        }
        Ok(())
    }
}
