//! The shared engine, preparation (validate, check, instrument, compile, cache) and the caches.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module,
    ModuleExport, PoolingAllocationConfig, ValType,
};

use crate::cache::{self, DiskCache};
use crate::component::{self, ComponentState};
use crate::error::PrepareError;
use crate::http;
use crate::instrument::{self, Policy};
use crate::limiter::Limiter;
use crate::lru::Lru;
use crate::run::State;
use crate::{Limits, SandboxOptions};

pub(crate) const MAX_MEMORIES_PER_MODULE: u32 = 4;
pub(crate) const MAX_TABLES_PER_MODULE: u32 = 4;
/// Most core instances one component may create (a preview 1 program adapted to a component
/// has about four: the program, the adapter and two small shims).
pub(crate) const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Most tables one component may contain, across its core instances.
pub(crate) const MAX_TABLES_PER_COMPONENT: u32 = 16;
/// How often the epoch advances; the granularity of the wall-clock deadline.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// wasmtime's native stack limit for wasm, the backstop behind the instrumented depth.
const MAX_WASM_STACK: usize = 1024 * 1024;
/// Frames kept in a trap's backtrace (wasmtime's default). A run's limit traps are recognised
/// by the youngest frame (`instrument::limit_trap`), so backtraces must stay on.
const BACKTRACE_FRAMES: NonZeroUsize = match NonZeroUsize::new(20) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// Where a [`Prepared`] module came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreparedFrom {
    /// Instrumented and compiled now.
    Compiled,
    /// Loaded from the on-disk cache of precompiled code (no compilation).
    DiskCache,
    /// Already prepared by this sandbox.
    Memory,
}

/// A core module pre-linked: with WASI preview 1, or (when it imports nothing, so it can make
/// no host call) against an empty linker whose store holds only the limiter.
#[derive(Clone)]
pub(crate) enum CorePre {
    Wasi(InstancePre<State>),
    Pure(InstancePre<Limiter>),
}

/// An exported function, resolved once per prepared module.
#[derive(Clone)]
pub(crate) struct ExportedFunc {
    pub(crate) index: ModuleExport,
    pub(crate) params: Box<[ValType]>,
    pub(crate) results: Box<[ValType]>,
}

/// The exports a run looks up, resolved at preparation instead of by name on every run.
#[derive(Default)]
pub(crate) struct CoreExports {
    /// Callable exported functions (not the instrumentation's `__sandbox_*` ones); ordered, as
    /// looking up a name by comparison is cheaper than hashing it for the few exports a module has.
    pub(crate) functions: BTreeMap<Box<str>, ExportedFunc>,
    /// The instrumentation's start function and iteration total.
    pub(crate) start: Option<ModuleExport>,
    pub(crate) iterations: Option<ModuleExport>,
}

impl CoreExports {
    fn of(module: &Module) -> Self {
        let mut exports = Self::default();
        for export in module.exports() {
            let Some(index) = module.get_export_index(export.name()) else {
                continue;
            };
            match export.name() {
                instrument::START_EXPORT => exports.start = Some(index),
                instrument::ITERATIONS_EXPORT => exports.iterations = Some(index),
                name if name.starts_with("__sandbox_") => {}
                name => {
                    if let ExternType::Func(ty) = export.ty() {
                        let func = ExportedFunc {
                            index,
                            params: ty.params().collect(),
                            results: ty.results().collect(),
                        };
                        exports.functions.insert(name.into(), func);
                    }
                }
            }
        }
        exports
    }
}

/// What a [`Prepared`] holds: a core module or a WASI 0.2 command component.
#[derive(Clone)]
pub(crate) enum Kind {
    Core {
        pre: CorePre,
        exports: Arc<CoreExports>,
    },
    Component(wasmtime_wasi::p2::bindings::CommandPre<ComponentState>),
}

/// A module (or component) ready to run: checked, compiled and pre-linked.
#[derive(Clone)]
pub struct Prepared {
    pub(crate) kind: Kind,
    sha256: Arc<str>,
    from: PreparedFrom,
    /// Size of its compiled code in memory, what the prepared-module cache counts.
    code_bytes: u64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("sha256", &self.sha256)
            .field("component", &self.is_component())
            .field("from", &self.from)
            .field("code_bytes", &self.code_bytes)
            .finish()
    }
}

impl Prepared {
    /// Hex sha256 of the original module bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether this is a WASI 0.2 component (run only as a command) rather than a core module.
    pub fn is_component(&self) -> bool {
        matches!(self.kind, Kind::Component(_))
    }

    /// Whether this preparation compiled, loaded from disk or hit the memory cache.
    pub fn from(&self) -> PreparedFrom {
        self.from
    }

    /// Size of the compiled code in memory (what counts against the prepared-module cache's
    /// byte bound).
    pub fn code_bytes(&self) -> u64 {
        self.code_bytes
    }
}

/// Size in bytes of a compiled image (`Module::image_range`, `Component::image_range`).
fn image_bytes(range: std::ops::Range<*const u8>) -> u64 {
    (range.end as usize).saturating_sub(range.start as usize) as u64
}

/// Stops the epoch ticker thread when the sandbox is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    linker: Linker<State>,
    /// Defines nothing: for modules without imports.
    pure_linker: Linker<Limiter>,
    component_linker: wasmtime::component::Linker<ComponentState>,
    /// The TLS client configuration of outgoing `https` (trust roots), shared by every run.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    disk: DiskCache,
    /// Prepared modules by cache key, bounded by count and code bytes (least recently used
    /// evicted first); the compiled code stays in `disk`.
    prepared: Mutex<Lru<String, Prepared>>,
    _ticker: Ticker,
}

/// The execution engine. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

fn engine_config(options: &SandboxOptions) -> wasmtime::Result<Config> {
    let limits = &options.limits;
    let instances = options.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // A component's core instances come from the same pool as core modules': a run of a
    // component takes up to MAX_CORE_INSTANCES_PER_COMPONENT slots, but memories stay capped at
    // MAX_MEMORIES_PER_MODULE per run, component or not.
    pool.total_core_instances(instances * MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_component_instances(instances)
        .total_stacks(instances)
        .total_memories(instances * MAX_MEMORIES_PER_MODULE)
        .total_tables(instances * MAX_TABLES_PER_COMPONENT)
        .max_memories_per_module(MAX_MEMORIES_PER_MODULE)
        .max_tables_per_module(MAX_TABLES_PER_MODULE)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_MODULE)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_memory_size(usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX))
        .table_elements(limits.max_table_size as usize);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .wasm_backtrace_max_frames(Some(BACKTRACE_FRAMES))
        // Exceptions, threads (shared memory) and stack switching, whose control flow or
        // sharing the instrumentation does not account for, stay off: this crate does not
        // enable wasmtime's `gc`, `threads` or `stack-switching` features, so such modules fail
        // validation.
        .wasm_multi_memory(true);
    Ok(config)
}

impl Sandbox {
    /// Builds the engine (pooling allocator, epoch ticker), the WASI linker and the caches.
    pub fn new(options: SandboxOptions) -> Result<Self, PrepareError> {
        let err = |e: wasmtime::Error| PrepareError::Compile(format!("{e:#}"));
        let engine = Engine::new(&engine_config(&options).map_err(err)?).map_err(err)?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut State| &mut s.wasi)
            .map_err(err)?;
        let pure_linker = Linker::<Limiter>::new(&engine);
        let component_linker = component::linker(&engine).map_err(err)?;
        let tls = http::client_config(&options.extra_tls_roots)
            .map_err(|e| PrepareError::Compile(format!("TLS trust roots: {e}")))?;
        let disk = DiskCache::open(&options.cache_dir)
            .map_err(|e| PrepareError::Compile(format!("cache dir: {e}")))?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| PrepareError::Compile(format!("epoch ticker: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                limits: options.limits,
                linker,
                pure_linker,
                component_linker,
                tls,
                disk,
                prepared: Mutex::new(Lru::new(
                    options.prepared_cache.max_entries,
                    options.prepared_cache.max_bytes,
                )),
                _ticker: ticker,
            }),
        })
    }

    /// The limits every run of this sandbox is held to.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    fn policy(&self) -> Policy {
        Policy {
            max_stack_depth: self.inner.limits.max_stack_depth,
            max_iterations: self.inner.limits.max_iterations,
        }
    }

    /// Validates `bytes` (binary or WAT), checks its declarations against the limits,
    /// instruments, compiles (or loads the precompiled artifact from disk) and pre-links it.
    ///
    /// A WASI 0.2 component is checked (the declarations of its core modules), instrumented
    /// (every core module inside it, as a core module is), compiled (or loaded from disk) and
    /// pre-linked as a `wasi:cli/command`.
    pub fn prepare(&self, bytes: &[u8]) -> Result<Prepared, PrepareError> {
        let bytes = wat::parse_bytes(bytes).map_err(|e| PrepareError::Invalid(e.to_string()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = cache::key(&sha256, self.policy(), &self.inner.engine);
        if let Some(p) = self.memory_lookup(&key) {
            return Ok(p);
        }
        let prepared = if wasmparser::Parser::is_component(&bytes) {
            self.prepare_component(&bytes, &key, sha256)?
        } else {
            self.prepare_core(&bytes, &key, sha256)?
        };
        let bytes = prepared.code_bytes;
        self.inner
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, prepared.clone(), bytes);
        Ok(prepared)
    }

    /// The module whose original bytes have sha256 `sha256` (hex), if it is in the
    /// prepared-module cache (now its most recently used entry); otherwise `prepare` it.
    pub fn cached(&self, sha256: &str) -> Option<Prepared> {
        self.memory_lookup(&cache::key(sha256, self.policy(), &self.inner.engine))
    }

    fn memory_lookup(&self, key: &str) -> Option<Prepared> {
        let mut cache = self
            .inner
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.get(key).map(|p| Prepared {
            from: PreparedFrom::Memory,
            ..p.clone()
        })
    }

    /// How many prepared modules the memory cache holds, and their code bytes.
    pub fn cache_usage(&self) -> (usize, u64) {
        let cache = self
            .inner
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (cache.len(), cache.bytes())
    }

    fn prepare_component(
        &self,
        bytes: &[u8],
        key: &str,
        sha256: String,
    ) -> Result<Prepared, PrepareError> {
        let engine = &self.inner.engine;
        // Checked even when the compiled artifact is on disk: it is cheap, and the limits may
        // have changed since it was cached.
        component::check_limits(bytes, &self.inner.limits)?;
        let (component, from) = match self.inner.disk.load_component(engine, key) {
            Some(c) => (c, PreparedFrom::DiskCache),
            None => {
                let instrumented = component::instrument_component(engine, bytes, self.policy())?;
                (
                    component::compile(engine, &instrumented)?,
                    PreparedFrom::Compiled,
                )
            }
        };
        let pre = component::link(&self.inner.component_linker, &component)?;
        if from == PreparedFrom::Compiled {
            self.inner.disk.store(key, component.serialize());
        }
        Ok(Prepared {
            kind: Kind::Component(pre),
            sha256: sha256.into(),
            from,
            code_bytes: image_bytes(component.image_range()),
        })
    }

    fn prepare_core(
        &self,
        bytes: &[u8],
        key: &str,
        sha256: String,
    ) -> Result<Prepared, PrepareError> {
        let (module, from) = match self.inner.disk.load(&self.inner.engine, key) {
            Some(m) => (m, PreparedFrom::DiskCache),
            None => (self.compile(bytes)?, PreparedFrom::Compiled),
        };
        if from == PreparedFrom::Compiled {
            self.inner.disk.store(key, module.serialize());
        }
        // Decided from the compiled module (the one instantiated), not from the bytes.
        let pre = if module.imports().len() == 0 {
            let err = |e: wasmtime::Error| PrepareError::Compile(format!("{e:#}"));
            CorePre::Pure(
                self.inner
                    .pure_linker
                    .instantiate_pre(&module)
                    .map_err(err)?,
            )
        } else {
            CorePre::Wasi(self.link(&module)?)
        };
        let exports = Arc::new(CoreExports::of(&module));
        Ok(Prepared {
            kind: Kind::Core { pre, exports },
            sha256: sha256.into(),
            from,
            code_bytes: image_bytes(module.image_range()),
        })
    }

    fn compile(&self, bytes: &[u8]) -> Result<Module, PrepareError> {
        Module::validate(&self.inner.engine, bytes)
            .map_err(|e| PrepareError::Invalid(format!("{e:#}")))?;
        let limits = &self.inner.limits;
        let decl = instrument::declarations(bytes)?;
        decl.check_globals_and_tables(limits)?;
        if decl.memory_initial_bytes > limits.max_memory_bytes {
            return Err(PrepareError::MemoryLimit {
                initial_bytes: decl.memory_initial_bytes,
                limit: limits.max_memory_bytes,
            });
        }
        let instrumented = instrument::instrument(bytes, self.policy(), instrument::Target::Core)?;
        Module::new(&self.inner.engine, &instrumented)
            .map_err(|e| PrepareError::Compile(format!("{e:#}")))
    }

    fn link(&self, module: &Module) -> Result<InstancePre<State>, PrepareError> {
        for import in module.imports() {
            let known = import.module() == "wasi_snapshot_preview1"
                && matches!(import.ty(), wasmtime::ExternType::Func(_));
            if !known {
                return Err(PrepareError::BlockedImport {
                    module: import.module().to_owned(),
                    name: import.name().to_owned(),
                });
            }
        }
        self.inner.linker.instantiate_pre(module).map_err(|e| {
            let first = module.imports().find(|i| {
                e.to_string()
                    .contains(&format!("`{}::{}`", i.module(), i.name()))
            });
            match first {
                Some(i) => PrepareError::BlockedImport {
                    module: i.module().to_owned(),
                    name: i.name().to_owned(),
                },
                None => PrepareError::Compile(format!("{e:#}")),
            }
        })
    }
}
