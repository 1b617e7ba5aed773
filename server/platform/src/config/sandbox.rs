//! `sandbox.yml`: capabilities, resource limits and policies for module runs.

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use serde::Deserialize;

use super::{
    Problems,
    units::{ByteSize, Span},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxFile {
    pub sandbox: Sandbox,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    pub default_capabilities: Capabilities,
    pub resource_limits: ResourceLimits,
    pub module_capabilities: BTreeMap<String, CapabilityGroup>,
    pub policies: Vec<Policy>,
    /// Addition to the spec: what the platform keeps of runs and modules (README, "Limits on
    /// stored data").
    #[serde(default)]
    pub storage: Storage,
}

/// `sandbox.storage` (an addition to the spec): bounds on what callers make the server keep.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Bytes of each of stdout and stderr kept in a run's history entry; the caller still gets
    /// the whole output, the history keeps this prefix and says it was truncated.
    pub run_output_kept: ByteSize,
    /// Total size of the modules one user may own; an upload past it is refused.
    pub module_quota_per_user: ByteSize,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            run_output_kept: ByteSize(64 * 1024),
            module_quota_per_user: ByteSize(1 << 30),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    pub file_access: bool,
    pub network_access: bool,
    pub system_calls: bool,
    pub environment_access: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    pub max_memory: ByteSize,
    pub max_execution_time: Span,
    pub max_stack_depth: u32,
    pub max_table_size: u32,
    pub max_globals: u32,
    /// Addition to the spec: most runs one user may have in progress at once; one more is
    /// refused with `sandbox.busy` (429).
    #[serde(default = "default_runs_per_user")]
    pub max_concurrent_runs_per_user: u32,
    /// Addition to the spec: most runs of one module in progress at once, whoever started them.
    #[serde(default = "default_runs_per_module")]
    pub max_concurrent_runs_per_module: u32,
}

/// Default of `max_concurrent_runs_per_user`: a sixteenth of the sandbox's 256 instances.
pub const DEFAULT_RUNS_PER_USER: u32 = 16;
/// Default of `max_concurrent_runs_per_module`.
pub const DEFAULT_RUNS_PER_MODULE: u32 = 32;

fn default_runs_per_user() -> u32 {
    DEFAULT_RUNS_PER_USER
}

fn default_runs_per_module() -> u32 {
    DEFAULT_RUNS_PER_MODULE
}

/// A named group of extra capabilities an admin can assign to a module; unset flags keep the default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CapabilityGroup {
    pub file_access: Option<bool>,
    #[serde(default)]
    pub allowed_paths: Vec<PathBuf>,
    pub network_access: Option<bool>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    pub system_calls: Option<bool>,
    pub environment_access: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: PolicyName,
    pub enabled: bool,
    #[serde(default)]
    pub max_iterations: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    NoInfiniteLoops,
    MemoryBoundsCheck,
    StackOverflowProtection,
}

impl SandboxFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        let s = &self.sandbox;
        if s.storage.run_output_kept.bytes() > 1024 * 1024 {
            p.push(
                "sandbox.storage.run_output_kept",
                "must be at most 1MB (the most output a run captures)",
            );
        }
        let limits = &s.resource_limits;
        if limits.max_memory.bytes() < 64 * 1024 {
            p.push(
                "sandbox.resource_limits.max_memory",
                "must be at least 64KB (one WebAssembly page)",
            );
        }
        if limits.max_execution_time.duration().is_zero() {
            p.push(
                "sandbox.resource_limits.max_execution_time",
                "must be longer than zero",
            );
        }
        for (key, value) in [
            ("max_stack_depth", limits.max_stack_depth),
            ("max_table_size", limits.max_table_size),
            ("max_globals", limits.max_globals),
            (
                "max_concurrent_runs_per_user",
                limits.max_concurrent_runs_per_user,
            ),
            (
                "max_concurrent_runs_per_module",
                limits.max_concurrent_runs_per_module,
            ),
        ] {
            if value == 0 {
                p.push(
                    format!("sandbox.resource_limits.{key}"),
                    "must be at least 1",
                );
            }
        }
        for (name, group) in &s.module_capabilities {
            let key = format!("sandbox.module_capabilities.\"{name}\"");
            for (i, path) in group.allowed_paths.iter().enumerate() {
                if !path.is_absolute() {
                    p.push(
                        format!("{key}.allowed_paths[{i}]"),
                        format!("{} must be an absolute path", path.display()),
                    );
                }
            }
            if !group.allowed_paths.is_empty() && group.file_access != Some(true) {
                p.push(
                    format!("{key}.allowed_paths"),
                    "is set but file_access is not true",
                );
            }
            if !group.allowed_hosts.is_empty() && group.network_access != Some(true) {
                p.push(
                    format!("{key}.allowed_hosts"),
                    "is set but network_access is not true",
                );
            }
            for (i, host) in group.allowed_hosts.iter().enumerate() {
                if host.is_empty() || host.contains(['/', ' ', '@']) {
                    p.push(
                        format!("{key}.allowed_hosts[{i}]"),
                        format!("\"{host}\" is not a host name or address"),
                    );
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, policy) in s.policies.iter().enumerate() {
            if !seen.insert(policy.name) {
                p.push(
                    format!("sandbox.policies[{i}].name"),
                    "policy is listed twice",
                );
            }
            match policy.name {
                PolicyName::NoInfiniteLoops if policy.max_iterations.is_none_or(|n| n == 0) => {
                    p.push(
                        format!("sandbox.policies[{i}].max_iterations"),
                        "no_infinite_loops needs max_iterations of at least 1",
                    );
                }
                PolicyName::MemoryBoundsCheck | PolicyName::StackOverflowProtection
                    if policy.max_iterations.is_some() =>
                {
                    p.push(
                        format!("sandbox.policies[{i}].max_iterations"),
                        "only no_infinite_loops takes max_iterations",
                    );
                }
                _ => {}
            }
        }
    }

    /// The loop-iteration budget, when the `no_infinite_loops` policy is on.
    pub fn max_iterations(&self) -> Option<u64> {
        self.sandbox
            .policies
            .iter()
            .find(|p| p.name == PolicyName::NoInfiniteLoops && p.enabled)
            .and_then(|p| p.max_iterations)
    }
}

/// Checks every `allowed_paths` directory as it is on disk, for `config check` and start-up:
/// it must be reached without a symbolic link and be a directory owned by the service user
/// (`sandbox::check_preopen`; runs check it again each time), and it must neither lie inside
/// the data dir nor contain it (the data dir holds the secrets and the compiled-code cache).
pub fn check_allowed_paths(file: &SandboxFile, data_dir: &Path) -> Result<(), super::ConfigError> {
    let data = real_path(data_dir);
    let mut problems = Vec::new();
    for (name, group) in &file.sandbox.module_capabilities {
        for (i, path) in group.allowed_paths.iter().enumerate() {
            let lexical = normalized(path);
            let (inside, contains) = (lexical.starts_with(&data), data.starts_with(&lexical));
            let reason = if inside || contains {
                let relation = if inside { "lies inside" } else { "contains" };
                Some(format!(
                    "{} {relation} the data dir {}; modules must not reach it",
                    path.display(),
                    data.display()
                ))
            } else {
                sandbox::check_preopen(path).err().map(|e| e.to_string())
            };
            if let Some(reason) = reason {
                problems.push(super::Problem {
                    file: "config/sandbox.yml".into(),
                    key: format!("sandbox.module_capabilities.\"{name}\".allowed_paths[{i}]"),
                    reason,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(super::ConfigError { problems })
    }
}

/// `path` made absolute and without `.`/`..` (lexically).
fn normalized(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Where `path` really is: its existing part with symbolic links resolved, then the rest.
fn real_path(path: &Path) -> PathBuf {
    let path = normalized(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path,
        }
    }
}
