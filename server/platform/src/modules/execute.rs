//! Running modules in the sandbox: `modules:execute` with ownership and sharing, quarantined
//! modules refused, capabilities from sandbox.yml (defaults, or the module's capability group),
//! each run recorded in `module_runs` and audited as `module_execute` (limit and capability
//! violations also as `sandbox_violation`).

mod slots;

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use super::{ModuleError, Modules, run};
use crate::{
    access::Principal,
    audit::{AuditEvent, EventKind, Outcome},
    config::Config,
};

pub use self::slots::{Busy, BusyScope, RunPermit, RunSlots};

/// What to run: an exported function, or a WASI command.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ExecuteRequest {
    /// `{"function":"add","args":[{"type":"i32","value":2}]}`
    Call {
        function: String,
        #[serde(default)]
        args: Vec<sandbox::Value>,
    },
    /// `{"args":[…],"env":{…},"stdin":"…"}`
    Command {
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        stdin: String,
    },
}

/// The result of a run, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<sandbox::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration_ms: f64,
    pub iterations: u64,
    pub peak_memory_bytes: u64,
}

/// Why a run did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// Access, quarantine, storage and the like.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The sandbox refused to prepare the module (limits checked at instantiation).
    #[error("{error}")]
    Prepare {
        run_id: String,
        error: sandbox::PrepareError,
    },
    /// The run ended with a limit, a capability denial or a trap.
    #[error("{error}")]
    Sandbox {
        run_id: String,
        error: sandbox::SandboxError,
    },
    /// Too many runs in progress (of this user, of this module, or in all); nothing ran.
    #[error(transparent)]
    Busy(#[from] Busy),
}

impl ExecuteError {
    /// The `sandbox.<kind>` code, for errors that come from the sandbox.
    pub fn sandbox_code(&self) -> Option<&'static str> {
        match self {
            Self::Module(_) => None,
            Self::Prepare { error, .. } => Some(error.code()),
            Self::Sandbox { error, .. } => Some(error.code()),
            Self::Busy(_) => Some("sandbox.busy"),
        }
    }

    pub fn run_id(&self) -> Option<&str> {
        match self {
            Self::Module(_) | Self::Busy(_) => None,
            Self::Prepare { run_id, .. } | Self::Sandbox { run_id, .. } => Some(run_id),
        }
    }
}

impl From<sea_orm::DbErr> for ExecuteError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Module(e.into())
    }
}

/// A recorded run, for the run history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub actor: String,
    pub mode: String,
    pub outcome: String,
    pub duration_ms: f64,
    pub peak_memory_bytes: u64,
    pub iterations: u64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Results, exit code, output or error; `null` unless `output_visible`.
    pub result: serde_json::Value,
    /// Whether the caller sees the run's output: only who ran it and holders of `modules:*` do;
    /// others see that it happened, its outcome and duration.
    pub output_visible: bool,
    /// Whether the history keeps only a prefix of stdout or stderr (sandbox.yml
    /// `storage.run_output_kept`).
    pub truncated: bool,
}

/// The engine (which keeps the prepared modules, bounded) and the runs in progress, shared by
/// every run.
pub struct Executor {
    sandbox: sandbox::Sandbox,
    slots: Arc<RunSlots>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

/// Size of the sandbox's instance pool: the most runs in progress at once, all users together.
const MAX_INSTANCES: u32 = 256;

/// The sandbox limits of sandbox.yml.
pub fn limits(config: &Config) -> sandbox::Limits {
    use crate::config::sandbox::PolicyName;
    let sb = &config.sandbox.sandbox;
    let l = &sb.resource_limits;
    let max_iterations = sb
        .policies
        .iter()
        .find(|p| p.name == PolicyName::NoInfiniteLoops && p.enabled)
        .map(|p| p.max_iterations.unwrap_or(1_000_000));
    sandbox::Limits {
        max_memory_bytes: l.max_memory.bytes(),
        max_execution_time: l.max_execution_time.duration(),
        max_stack_depth: l.max_stack_depth,
        max_table_size: l.max_table_size,
        max_globals: l.max_globals,
        max_iterations,
        max_output_bytes: 1024 * 1024,
    }
}

impl Executor {
    pub fn new(
        config: &Config,
        cache_dir: std::path::PathBuf,
    ) -> Result<Self, sandbox::PrepareError> {
        let options = sandbox::SandboxOptions {
            limits: limits(config),
            cache_dir,
            max_instances: MAX_INSTANCES,
            extra_tls_roots: Vec::new(),
            // 256 modules and 512 MiB of compiled code; least recently used evicted first.
            prepared_cache: sandbox::PreparedCacheLimits::default(),
        };
        let l = &config.sandbox.sandbox.resource_limits;
        Ok(Self {
            sandbox: sandbox::Sandbox::new(options)?,
            slots: RunSlots::new(
                l.max_concurrent_runs_per_user,
                l.max_concurrent_runs_per_module,
                MAX_INSTANCES,
            ),
        })
    }
}

fn capabilities(config: &Config, group: Option<&str>) -> sandbox::Capabilities {
    let sb = &config.sandbox.sandbox;
    let d = sb.default_capabilities;
    let mut caps = sandbox::Capabilities {
        file_access: d.file_access,
        allowed_paths: Vec::new(),
        network_access: d.network_access,
        allowed_hosts: Vec::new(),
        environment_access: d.environment_access,
        system_calls: d.system_calls,
    };
    if let Some(g) = group.and_then(|g| sb.module_capabilities.get(g)) {
        caps.file_access = g.file_access.unwrap_or(caps.file_access);
        caps.network_access = g.network_access.unwrap_or(caps.network_access);
        caps.environment_access = g.environment_access.unwrap_or(caps.environment_access);
        caps.system_calls = g.system_calls.unwrap_or(caps.system_calls);
        caps.allowed_paths = g.allowed_paths.clone();
        caps.allowed_hosts = g.allowed_hosts.clone();
    }
    caps
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A run's result as the history keeps it: stdout and stderr cut to `limit` bytes each (at a
/// character boundary) and marked truncated. The caller of the run gets all of it.
fn kept_in_history(result: &RunResult, limit: usize) -> serde_json::Value {
    fn cut(text: Option<&String>, limit: usize) -> (Option<String>, bool) {
        match text {
            Some(t) if t.len() > limit => {
                let mut end = limit;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                (Some(t[..end].to_string()), true)
            }
            other => (other.cloned(), false),
        }
    }
    let (stdout, out_cut) = cut(result.stdout.as_ref(), limit);
    let (stderr, err_cut) = cut(result.stderr.as_ref(), limit);
    let kept = RunResult {
        stdout,
        stderr,
        stdout_truncated: result.stdout_truncated || out_cut,
        stderr_truncated: result.stderr_truncated || err_cut,
        results: result.results.clone(),
        run_id: result.run_id.clone(),
        ..*result
    };
    serde_json::to_value(&kept).unwrap_or_default()
}

impl Modules {
    /// Runs a module (`modules:execute`; ownership and sharing apply; quarantined modules are
    /// refused). Every attempt that reaches the sandbox is recorded and audited.
    pub async fn execute(
        &self,
        principal: &Principal,
        id: &str,
        request: ExecuteRequest,
    ) -> Result<RunResult, ExecuteError> {
        let executor = self.executor.clone().ok_or_else(|| {
            ExecuteError::Module(ModuleError::Conflict(
                "module execution is not available in this process".into(),
            ))
        })?;
        self.admit(crate::edge::Action::Run, principal).await?;
        let row = self.reach_for_run(principal, id).await?;
        if let Err(refusal) = self.runnable(id, &row.status) {
            let outcome = match refusal {
                ModuleError::InReview(_) => "in_review",
                _ => "quarantined",
            };
            let details =
                serde_json::json!({ "module_id": row.id.to_string(), "outcome": outcome });
            self.audit_refusal(principal, row.id, details).await?;
            return Err(refusal.into());
        }
        // Held until the run has finished (dropped on every return, panic or cancellation).
        let user = principal.id().unwrap_or(principal.name());
        let permit = match executor.slots.try_acquire(user, &row.id.to_string()) {
            Ok(permit) => Arc::new(permit),
            Err(busy) => {
                let details = serde_json::json!({
                    "module_id": row.id.to_string(), "outcome": "sandbox.busy",
                    "limit": busy.scope().as_str(), "max": busy.limit(),
                });
                self.audit_refusal(principal, row.id, details).await?;
                return Err(busy.into());
            }
        };
        let run_id = uuid::Uuid::now_v7();
        let started_at = self.clock.now();
        let prepared = match executor.sandbox.cached(&row.sha256) {
            Some(p) => p,
            None => {
                let bytes = self
                    .store
                    .read(&row.sha256)
                    .await
                    .map_err(ModuleError::from)?;
                let exec = executor.clone();
                // The compile keeps the slot even if the caller goes away meanwhile.
                let held = permit.clone();
                let prepared = tokio::task::spawn_blocking(move || {
                    let _held = held;
                    exec.sandbox.prepare(&bytes)
                })
                .await
                .map_err(|e| {
                    ModuleError::Storage(super::storage::StorageError::Io(std::io::Error::other(e)))
                })?;
                match prepared {
                    Ok(p) => p,
                    Err(error) => {
                        let outcome = error.code();
                        self.record_run(
                            principal,
                            row.id,
                            run_id,
                            &request,
                            outcome,
                            std::time::Duration::ZERO,
                            0,
                            0,
                            serde_json::json!({ "error": error.to_string() }),
                            started_at,
                        )
                        .await?;
                        return Err(ExecuteError::Prepare {
                            run_id: run_id.to_string(),
                            error,
                        });
                    }
                }
            }
        };
        let caps = capabilities(&self.config, row.capability_group.as_deref());
        let invocation = match request.clone() {
            ExecuteRequest::Call { function, args } => sandbox::Invocation::Call { function, args },
            ExecuteRequest::Command { args, env, stdin } => sandbox::Invocation::Command {
                args,
                env,
                stdin: stdin.into_bytes(),
            },
        };
        match executor.sandbox.run(&prepared, &invocation, &caps).await {
            Ok(report) => {
                let is_call = matches!(request, ExecuteRequest::Call { .. });
                let result = RunResult {
                    run_id: run_id.to_string(),
                    results: is_call.then(|| report.results.clone()),
                    exit_code: report.exit_code,
                    stdout: (!is_call).then(|| text(&report.stdout)),
                    stderr: (!is_call).then(|| text(&report.stderr)),
                    stdout_truncated: report.stdout_truncated,
                    stderr_truncated: report.stderr_truncated,
                    duration_ms: report.duration.as_secs_f64() * 1000.0,
                    iterations: report.iterations,
                    peak_memory_bytes: report.peak_memory_bytes,
                };
                let kept = self.config.sandbox.sandbox.storage.run_output_kept.bytes();
                let summary = kept_in_history(&result, usize::try_from(kept).unwrap_or(usize::MAX));
                self.record_run(
                    principal,
                    row.id,
                    run_id,
                    &request,
                    "success",
                    report.duration,
                    report.peak_memory_bytes,
                    report.iterations,
                    summary,
                    started_at,
                )
                .await?;
                Ok(result)
            }
            Err(error) => {
                let elapsed = (self.clock.now() - started_at).to_std().unwrap_or_default();
                self.record_run(
                    principal,
                    row.id,
                    run_id,
                    &request,
                    error.code(),
                    elapsed,
                    0,
                    0,
                    serde_json::json!({ "error": error.to_string() }),
                    started_at,
                )
                .await?;
                if !matches!(
                    error,
                    sandbox::SandboxError::InvalidInvocation(_) | sandbox::SandboxError::Trap(_)
                ) {
                    let event = AuditEvent::new(EventKind::SandboxViolation, principal.actor(), Outcome::Denied)
                        .with_target("module", row.id.to_string())
                        .with_details(serde_json::json!({ "module_id": row.id.to_string(), "run_id": run_id.to_string(), "violation": error.code(), "message": error.to_string() }));
                    self.audit.record(event).await.map_err(ModuleError::from)?;
                }
                Err(ExecuteError::Sandbox {
                    run_id: run_id.to_string(),
                    error,
                })
            }
        }
    }

    /// A run refused before it started (quarantined, busy): audited as a denied
    /// `module_execute`, not recorded in the run history.
    async fn audit_refusal(
        &self,
        principal: &Principal,
        module_id: uuid::Uuid,
        details: serde_json::Value,
    ) -> Result<(), ExecuteError> {
        let event = AuditEvent::new(EventKind::ModuleExecute, principal.actor(), Outcome::Denied)
            .with_target("module", module_id.to_string())
            .with_details(details);
        self.audit.record(event).await.map_err(ModuleError::from)?;
        Ok(())
    }

    /// Waits until this process's runs are in the run history (and in `last_run_at`).
    pub async fn flush_runs(&self) {
        if let Some(runs) = &self.runs {
            runs.flush().await;
        }
    }

    /// Writes the queued run history before shutdown, waiting up to `limit`.
    pub async fn finish_runs(&self, limit: std::time::Duration) {
        if let Some(runs) = &self.runs {
            runs.flush_within(limit).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_run(
        &self,
        principal: &Principal,
        module_id: uuid::Uuid,
        run_id: uuid::Uuid,
        request: &ExecuteRequest,
        outcome: &str,
        duration: std::time::Duration,
        peak_memory: u64,
        iterations: u64,
        result: serde_json::Value,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ExecuteError> {
        let mode = match request {
            ExecuteRequest::Call { .. } => "call",
            ExecuteRequest::Command { .. } => "command",
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let history = run::Model {
            id: run_id,
            module_id,
            user_id: principal.id().and_then(|i| uuid::Uuid::parse_str(i).ok()),
            actor: principal.name().to_string(),
            mode: mode.to_string(),
            outcome: outcome.to_string(),
            duration_us: clamp(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)),
            peak_memory_bytes: clamp(peak_memory),
            iterations: clamp(iterations),
            result,
            started_at,
        };
        if let Some(runs) = &self.runs {
            runs.record(history).await;
        }
        let audit_outcome = if outcome == "success" {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let details = serde_json::json!({
            "module_id": module_id.to_string(), "run_id": run_id.to_string(), "mode": mode, "outcome": outcome,
            "duration_ms": duration.as_secs_f64() * 1000.0,
        });
        let event = AuditEvent::new(EventKind::ModuleExecute, principal.actor(), audit_outcome)
            .with_target("module", module_id.to_string())
            .with_details(details);
        self.audit.record(event).await.map_err(ModuleError::from)?;
        Ok(())
    }

    /// The latest runs of a module (`modules:read` on it), newest first. The output of a run is
    /// shown only to who ran it and to holders of `modules:*`.
    pub async fn runs(
        &self,
        principal: &Principal,
        id: &str,
        limit: u64,
    ) -> Result<Vec<RunSummary>, ModuleError> {
        self.flush_runs().await;
        let row = self.reach(principal, id, "read").await?;
        let rows = run::Entity::find()
            .filter(run::Column::ModuleId.eq(row.id))
            .order_by_desc(run::Column::StartedAt)
            .order_by_desc(run::Column::Id)
            .limit(limit.clamp(1, 500))
            .all(&self.db)
            .await?;
        let everyone = matches!(principal, Principal::System) || principal.can("modules", "*");
        let me = principal.id().and_then(|i| uuid::Uuid::parse_str(i).ok());
        Ok(rows
            .into_iter()
            .map(|r| {
                let visible = everyone || (me.is_some() && r.user_id == me);
                let truncated = visible
                    && [&r.result["stdout_truncated"], &r.result["stderr_truncated"]]
                        .iter()
                        .any(|t| t.as_bool() == Some(true));
                RunSummary {
                    id: r.id.to_string(),
                    actor: r.actor,
                    mode: r.mode,
                    outcome: r.outcome,
                    duration_ms: r.duration_us as f64 / 1000.0,
                    peak_memory_bytes: u64::try_from(r.peak_memory_bytes).unwrap_or_default(),
                    iterations: u64::try_from(r.iterations).unwrap_or_default(),
                    started_at: r.started_at,
                    result: if visible {
                        r.result
                    } else {
                        serde_json::Value::Null
                    },
                    output_visible: visible,
                    truncated,
                }
            })
            .collect())
    }
}
