//! The execution engine: runs untrusted WebAssembly under limits and capabilities.
//!
//! One [`Sandbox`] owns one wasmtime `Engine` (pooling allocator, epoch interruption driven by a
//! 10 ms ticker thread). [`Sandbox::prepare`] validates a module, checks its declarations against
//! the [`Limits`], instruments it once (call-depth and loop-iteration counters), precompiles it and
//! caches the artifact on disk and an `InstancePre` in memory. [`Sandbox::run`] instantiates it in
//! a fresh `Store` and either calls an export or runs it as a WASI preview 1 command, under the
//! [`Capabilities`] granted for that run. WASI 0.2 command components are prepared and run too
//! (checked, each inner core module instrumented like a core module, compiled; see `README.md`).
//! See `README.md` for the guarantees.

mod cache;
mod component;
mod config;
mod engine;
mod error;
mod http;
mod instrument;
mod limiter;
mod lookup;
mod lru;
mod network;
mod output;
mod preopen;
mod run;
mod wasi;

pub use config::{Capabilities, Limits, PreparedCacheLimits, SandboxOptions};
pub use engine::{Prepared, PreparedFrom, Sandbox};
pub use error::{PrepareError, SandboxError};
pub use network::NetworkPolicy;
pub use preopen::{PreopenError, check_preopen};
pub use run::{Invocation, RunReport, Value};
/// The DER certificate type of [`SandboxOptions::extra_tls_roots`].
pub use rustls::pki_types::CertificateDer;

/// The transformation [`Sandbox::prepare`] applies to a core module before compiling: depth and
/// loop-iteration counters for `limits` (exposed for tooling and benchmarks).
pub fn instrument(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, PrepareError> {
    let bytes = wat::parse_bytes(bytes).map_err(|e| PrepareError::Invalid(e.to_string()))?;
    instrument::instrument(
        &bytes,
        instrument::Policy {
            max_stack_depth: limits.max_stack_depth,
            max_iterations: limits.max_iterations,
        },
        instrument::Target::Core,
    )
}
