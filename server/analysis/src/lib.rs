//! Static analysis of uploaded WebAssembly (core modules and components) for wasm-as-os.
//!
//! [`analyze`] validates the bytes fully (with the features wasmtime 48 enables by default), then
//! applies the rules of `static_analysis.yml` that the [`Policy`] enables, scores the findings and
//! gives a [`Verdict`]. It knows nothing of the platform's config files: the platform maps them
//! onto [`Policy`]. See `README.md` beside this crate for the rules, heuristics and score.

mod body;
mod funcs;
mod policy;
mod report;
mod rules;
mod scan;
mod tee;

pub use funcs::MAX_THREADS;
pub use policy::{Limits, Policy, Rule, RuleSetting, Severity, matches_pattern};
pub use report::{Finding, Location, ModuleKind, Report, RuleId, Verdict, risk_score, verdict};
pub use rules::{EMPTY_BODY_MIN_FUNCTIONS, EMPTY_BODY_PERCENT};

use wasmparser::WasmFeatures;

/// Why bytes are not a valid WebAssembly module or component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WebAssembly: {message}{}", offset.map(|o| format!(" (at byte offset {o:#x})")).unwrap_or_default())]
pub struct InvalidModule {
    /// The parser's or validator's reason.
    pub message: String,
    /// Where in the bytes it went wrong.
    pub offset: Option<usize>,
}

/// The proposals wasmtime 48 enables by default (its `Config::features` with the crate's
/// default features: WebAssembly 3.0, GC types, exceptions, threads, the component model and
/// component-model async), so that what passes here also compiles there.
pub fn wasmtime_default_features() -> WasmFeatures {
    WasmFeatures::WASM3
        | WasmFeatures::GC_TYPES
        | WasmFeatures::EXCEPTIONS
        | WasmFeatures::THREADS
        | WasmFeatures::COMPONENT_MODEL
        | WasmFeatures::CM_ASYNC
}

/// Whether an import (a component's import name, or a core `module.name`) is a network
/// interface: a WASI 0.2 `wasi:sockets` or `wasi:http` interface, whatever its version.
pub fn is_network_import(name: &str) -> bool {
    ["wasi:sockets/", "wasi:http/"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Validate `bytes` and apply `policy`'s rules.
///
/// Returns [`InvalidModule`] with the parser's reason and offset for empty, malformed, truncated
/// or ill-typed input.
/// Function bodies are checked on up to [`MAX_THREADS`] threads when the code is large enough.
pub fn analyze(bytes: &[u8], policy: &Policy) -> Result<Report, InvalidModule> {
    analyze_with_threads(bytes, policy, MAX_THREADS)
}

/// [`analyze`] with at most `max_threads` threads for function bodies (1: all on the caller's
/// thread). The report does not depend on the thread count.
pub fn analyze_with_threads(
    bytes: &[u8],
    policy: &Policy,
    max_threads: usize,
) -> Result<Report, InvalidModule> {
    let size_bytes = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let scanned = scan::run(
        bytes,
        rules::Findings::new(policy, size_bytes),
        max_threads.max(1),
    )?;
    let risk_score = risk_score(&scanned.findings);
    let network_imports = scanned
        .imports
        .iter()
        .filter(|i| is_network_import(i))
        .cloned()
        .collect();
    Ok(Report {
        kind: scanned.kind,
        size_bytes,
        network_imports,
        imports: scanned.imports,
        exports: scanned.exports,
        verdict: verdict(
            risk_score,
            scanned.suspicious,
            policy.high_risk_threshold,
            policy.medium_risk_threshold,
        ),
        findings: scanned.findings,
        risk_score,
        suspicious: scanned.suspicious,
    })
}
