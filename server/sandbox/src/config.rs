//! The plain configuration structs the platform maps `sandbox.yml` into.

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

/// Resource limits applied to every run (sandbox.yml `resource_limits` and `policies`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Sum of the sizes of all linear memories of an instance (`max_memory`).
    pub max_memory_bytes: u64,
    /// Wall-clock deadline of a run, host calls included (`max_execution_time`).
    pub max_execution_time: Duration,
    /// Deepest chain of active wasm calls allowed (`max_stack_depth`).
    pub max_stack_depth: u32,
    /// Most elements any table may hold, at instantiation and on growth (`max_table_size`).
    pub max_table_size: u32,
    /// Most globals (imported + defined) a module may declare (`max_globals`).
    pub max_globals: u32,
    /// Most iterations of any single loop per entry (`no_infinite_loops.max_iterations`);
    /// `None` when that policy is disabled.
    pub max_iterations: Option<u64>,
    /// Cap on each of stdout and stderr; more is dropped and flagged as truncated.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    /// The spec's values: 100MB, 30s, depth 1000, 1000 table elements, 100 globals,
    /// 1 000 000 iterations; 1 MiB of output per stream.
    fn default() -> Self {
        Self {
            max_memory_bytes: 100 * 1024 * 1024,
            max_execution_time: Duration::from_secs(30),
            max_stack_depth: 1000,
            max_table_size: 1000,
            max_globals: 100,
            max_iterations: Some(1_000_000),
            max_output_bytes: 1024 * 1024,
        }
    }
}

/// What a run may reach outside its own memory. Everything is off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Preopen each of `allowed_paths` (read-write) at the same path in the guest.
    pub file_access: bool,
    /// Host directories made visible when `file_access` is granted.
    pub allowed_paths: Vec<PathBuf>,
    /// Outbound WASI 0.2 sockets to `allowed_hosts` only (checked on the resolved address).
    pub network_access: bool,
    /// Hosts (`name`, `name:port`, `ip`, `ip:port`, `[ipv6]:port`) reachable with `network_access`.
    pub allowed_hosts: Vec<String>,
    /// Pass the caller's environment variables to the guest.
    pub environment_access: bool,
    /// Real clocks and secure randomness; without it the guest sees frozen clocks and
    /// fixed "random" bytes.
    pub system_calls: bool,
}

/// How to build a [`crate::Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Limits applied to every module prepared and run by this sandbox.
    pub limits: Limits,
    /// Where precompiled modules are cached (created with mode 0700).
    pub cache_dir: PathBuf,
    /// Most instances alive at once (size of the pooling allocator).
    pub max_instances: u32,
    /// Certificates trusted for outgoing `https` besides the Mozilla roots of `webpki-roots`
    /// (for example a corporate CA; the tests add a test CA). Usually empty. An entry that does
    /// not parse as a certificate makes [`crate::Sandbox::new`] fail.
    pub extra_tls_roots: Vec<CertificateDer<'static>>,
    /// Bounds of the in-memory cache of prepared modules.
    pub prepared_cache: PreparedCacheLimits,
}

/// Bounds of the in-memory cache of prepared modules (least recently used evicted first; an
/// evicted module is prepared again from the on-disk cache of compiled code, without
/// recompiling). A module whose code alone exceeds `max_bytes` is prepared for each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreparedCacheLimits {
    /// Most prepared modules kept.
    pub max_entries: usize,
    /// Most bytes of compiled code (`Prepared::code_bytes`) kept, all modules together.
    pub max_bytes: u64,
}

impl Default for PreparedCacheLimits {
    /// 256 modules, 512 MiB of code.
    fn default() -> Self {
        Self {
            max_entries: 256,
            max_bytes: 512 * 1024 * 1024,
        }
    }
}
