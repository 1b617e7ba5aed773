//! Errors of preparing and running a module, each with a stable code.

/// Why a module could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The bytes are not a valid WebAssembly module for this engine.
    #[error("invalid module: {0}")]
    Invalid(String),
    /// The module declares more globals than `max_globals`.
    #[error("the module declares {declared} globals; at most {limit} are allowed")]
    GlobalsLimit { declared: u32, limit: u32 },
    /// A table's initial size is beyond `max_table_size`.
    #[error("table {index} starts with {initial} elements; at most {limit} are allowed")]
    TableLimit {
        index: u32,
        initial: u64,
        limit: u32,
    },
    /// The memories' initial sizes together exceed `max_memory_bytes`.
    #[error("the module's memories start at {initial_bytes} bytes; at most {limit} are allowed")]
    MemoryLimit { initial_bytes: u64, limit: u64 },
    /// The module imports something the sandbox does not provide.
    #[error("import `{module}::{name}` is not provided by the sandbox")]
    BlockedImport { module: String, name: String },
    /// Instrumenting or compiling failed (a bug or an unsupported feature).
    #[error("could not compile the module: {0}")]
    Compile(String),
}

impl PrepareError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::Compile(_) => "sandbox.invalid_module",
            Self::GlobalsLimit { .. } => "sandbox.globals_limit",
            Self::TableLimit { .. } => "sandbox.table_limit",
            Self::MemoryLimit { .. } => "sandbox.memory_limit",
            Self::BlockedImport { .. } => "sandbox.blocked_import",
        }
    }
}

/// Why a run ended without a result. A run ending in error affects no other run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// Growing the instance's memories (all of them together) went past `max_memory_bytes`.
    #[error("memory limit exceeded: {requested_bytes} bytes requested, at most {limit} allowed")]
    MemoryLimit { requested_bytes: u64, limit: u64 },
    /// The run passed `max_execution_time` (in wasm or in a host call).
    #[error("the run exceeded its {limit_ms} ms time limit")]
    Timeout { limit_ms: u128 },
    /// The call chain went deeper than `max_stack_depth` (or hit wasmtime's native stack guard).
    #[error("stack overflow: the call depth exceeded {limit}")]
    StackOverflow { limit: u32 },
    /// A loop ran more than `max_iterations` times.
    #[error("a loop exceeded {limit} iterations")]
    IterationLimit { limit: u64 },
    /// A table grew (or would start) beyond `max_table_size`.
    #[error("table limit exceeded: {requested} elements requested, at most {limit} allowed")]
    TableLimit { requested: u64, limit: u32 },
    /// The module declares more globals than `max_globals`.
    #[error("the module declares {declared} globals; at most {limit} are allowed")]
    GlobalsLimit { declared: u32, limit: u32 },
    /// The run needed a capability it was not granted.
    #[error("{capability} {detail} is not granted")]
    CapabilityDenied {
        capability: &'static str,
        detail: String,
    },
    /// Any other trap, with wasmtime's message.
    #[error("trap: {0}")]
    Trap(String),
    /// No such export, or wrong argument count or types.
    #[error("invalid invocation: {0}")]
    InvalidInvocation(String),
}

impl SandboxError {
    /// The stable error code (`sandbox.<kind>`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MemoryLimit { .. } => "sandbox.memory_limit",
            Self::Timeout { .. } => "sandbox.timeout",
            Self::StackOverflow { .. } => "sandbox.stack_overflow",
            Self::IterationLimit { .. } => "sandbox.iteration_limit",
            Self::TableLimit { .. } => "sandbox.table_limit",
            Self::GlobalsLimit { .. } => "sandbox.globals_limit",
            Self::CapabilityDenied { .. } => "sandbox.capability_denied",
            Self::Trap(_) => "sandbox.trap",
            Self::InvalidInvocation(_) => "sandbox.invalid_invocation",
        }
    }
}

/// A limit hit inside wasmtime (from the resource limiter or the epoch callback), carried
/// through wasmtime's error so the run can be classified precisely.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Violation(pub(crate) SandboxError);
