//! One run: a fresh `Store` with its limiter, deadline and WASI context, then a call or a command.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::ResourceTable;
use wasmtime::{
    Extern, Func, Instance, InstancePre, ModuleExport, Store, Trap, UpdateDeadline, Val, ValType,
};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::component::{self, ComponentState};
use crate::engine::{CoreExports, CorePre, EPOCH_TICK, Kind};
use crate::error::{SandboxError, Violation};
use crate::http::HttpHooks;
use crate::instrument::{self, LimitTrap};
use crate::limiter::Limiter;
use crate::lookup::LookupPolicy;
use crate::network::NetworkPolicy;
use crate::output::CappedOutput;
use crate::wasi::{self, Denials, Io};
use crate::{Capabilities, Prepared, Sandbox};

/// A typed wasm value, as `{"type":"i32","value":2}` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Value {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl Value {
    fn to_val(self) -> Val {
        match self {
            Value::I32(v) => Val::I32(v),
            Value::I64(v) => Val::I64(v),
            Value::F32(v) => Val::F32(v.to_bits()),
            Value::F64(v) => Val::F64(v.to_bits()),
        }
    }

    fn from_val(v: &Val) -> Option<Self> {
        Some(match v {
            Val::I32(v) => Value::I32(*v),
            Val::I64(v) => Value::I64(*v),
            Val::F32(v) => Value::F32(f32::from_bits(*v)),
            Val::F64(v) => Value::F64(f64::from_bits(*v)),
            _ => return None,
        })
    }

    fn ty_name(self) -> &'static str {
        match self {
            Value::I32(_) => "i32",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
        }
    }

    fn matches(self, ty: &ValType) -> bool {
        matches!(
            (self, ty),
            (Value::I32(_), ValType::I32)
                | (Value::I64(_), ValType::I64)
                | (Value::F32(_), ValType::F32)
                | (Value::F64(_), ValType::F64)
        )
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub enum Invocation {
    /// Call an exported function with typed arguments.
    Call { function: String, args: Vec<Value> },
    /// Run a WASI preview 1 command (`_start`). `args` follow `argv[0]` (`"module"`); `env`
    /// needs `environment_access`.
    Command {
        args: Vec<String>,
        env: BTreeMap<String, String>,
        stdin: Vec<u8>,
    },
}

/// The outcome of a successful run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    /// Results of a `Call` (empty for a command).
    pub results: Vec<Value>,
    /// Exit code of a `Command` (`None` for a call).
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// Wall-clock time of instantiation and execution.
    pub duration: Duration,
    /// Loop iterations executed, as counted by the instrumentation. Always 0 for a component:
    /// its counters live in inner core instances the host cannot read (its loops are still
    /// limited by `max_iterations`).
    pub iterations: u64,
    /// Largest total size the instance's memories reached.
    pub peak_memory_bytes: u64,
}

/// The store data of a run.
pub(crate) struct State {
    pub(crate) wasi: WasiP1Ctx,
    limiter: Limiter,
}

pub(crate) enum Done {
    Results(Vec<Value>),
    Exit(i32),
}

impl Sandbox {
    /// Runs `prepared` once under this sandbox's limits and the given capabilities.
    ///
    /// A core module that imports nothing runs on the calling thread (without a fiber),
    /// so that thread needs wasm's stack allowance (1 MiB) free on top of what the caller uses;
    /// the server's runtime threads have 8 MiB.
    ///
    /// A component runs only as a command (`Invocation::Command`, through `wasi:cli/run`).
    pub async fn run(
        &self,
        prepared: &Prepared,
        invocation: &Invocation,
        capabilities: &Capabilities,
    ) -> Result<RunReport, SandboxError> {
        let started = Instant::now();
        let hosted = match &prepared.kind {
            Kind::Core {
                pre: CorePre::Pure(pre),
                exports,
            } => {
                return self
                    .run_pure(pre, exports, invocation, capabilities, started)
                    .await;
            }
            Kind::Core {
                pre: CorePre::Wasi(pre),
                exports,
            } => Hosted::Core(pre, exports),
            Kind::Component(pre) => Hosted::Component(pre),
        };
        // Boxed: its state (WASI context, component tables, output buffers) is large, and
        // would otherwise make every run's future, pure ones included, as large to move.
        Box::pin(self.run_hosted(hosted, invocation, capabilities, started)).await
    }

    /// A run that may make host calls: WASI preview 1 or a component.
    async fn run_hosted(
        &self,
        hosted: Hosted<'_>,
        invocation: &Invocation,
        capabilities: &Capabilities,
        started: Instant,
    ) -> Result<RunReport, SandboxError> {
        let limits = &self.inner.limits;
        let (stdout, stderr) = (
            CappedOutput::new(limits.max_output_bytes),
            CappedOutput::new(limits.max_output_bytes),
        );
        let denials = Denials::default();
        let no_env = BTreeMap::new();
        let (args, env, stdin) = match invocation {
            Invocation::Command { args, env, stdin } => (args.as_slice(), env, stdin.as_slice()),
            Invocation::Call { .. } => (&[][..], &no_env, &[][..]),
        };
        let timeout = SandboxError::Timeout {
            limit_ms: limits.max_execution_time.as_millis(),
        };
        let (outcome, iterations, peak_memory_bytes) =
            match hosted {
                Hosted::Core(pre, exports) => {
                    let (out, err) = (stdout.clone(), stderr.clone());
                    let io = Io {
                        args,
                        env,
                        stdin: stdin.to_vec(),
                        stdout: out,
                        stderr: err,
                    };
                    let mut builder = wasi::builder(capabilities, io, &denials)?;
                    let limiter = Limiter::new(limits.max_memory_bytes, limits.max_table_size);
                    let state = State {
                        wasi: builder.build_p1(),
                        limiter,
                    };
                    let mut store = self.store(state, started, |s| &mut s.limiter);
                    let mut instance = None;
                    let pre = Instantiate::Async(pre);
                    let work = execute(&mut store, pre, exports, invocation, &mut instance);
                    let outcome =
                        match tokio::time::timeout(limits.max_execution_time + EPOCH_TICK, work)
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => Err(wasmtime::Error::new(Violation(timeout))),
                        };
                    let outcome = outcome.map_err(|e| classify(e, limits));
                    let iterations = read_global(&mut store, instance, exports.iterations.as_ref());
                    (outcome, iterations as u64, store.data().limiter.peak_memory)
                }
                Hosted::Component(pre) => {
                    let (out, err) = (stdout.clone(), stderr.clone());
                    let io = Io {
                        args,
                        env,
                        stdin: stdin.to_vec(),
                        stdout: out,
                        stderr: err,
                    };
                    let mut builder = wasi::builder(capabilities, io, &denials)?;
                    let limiter =
                        Limiter::for_component(limits.max_memory_bytes, limits.max_table_size);
                    let policy = NetworkPolicy::new(capabilities);
                    let lookup = LookupPolicy {
                        policy: policy.clone(),
                        denials: denials.clone(),
                    };
                    let http_hooks =
                        HttpHooks::new(policy, denials.clone(), self.inner.tls.clone());
                    let state = ComponentState {
                        ctx: builder.build(),
                        table: ResourceTable::new(),
                        limiter,
                        http: WasiHttpCtx::new(),
                        http_hooks,
                        lookup,
                    };
                    let mut store = self.store(state, started, |s| &mut s.limiter);
                    let work = component::execute(&mut store, pre, invocation);
                    let outcome =
                        match tokio::time::timeout(limits.max_execution_time + EPOCH_TICK, work)
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => Err(wasmtime::Error::new(Violation(timeout))),
                        };
                    let outcome = outcome.map_err(|e| classify(e, limits));
                    (outcome, 0, store.data().limiter.peak_memory)
                }
            };
        let duration = started.elapsed();
        if let Some(denied) = denials.first() {
            return Err(denied);
        }
        let done = outcome?;
        Ok(report(
            done,
            duration,
            iterations,
            peak_memory_bytes,
            stdout.take(),
            stderr.take(),
        ))
    }

    /// A run of a core module that imports nothing: it can make no host call, so all of it is
    /// wasm, where the epoch deadline (checked at function entries and loop headers) ends it;
    /// neither a WASI context, captured output nor a tokio timer is needed. A refused grant is
    /// still refused.
    ///
    /// Such a run is a pure function of its arguments (a fresh instance that can reach nothing
    /// outside itself), so it first runs directly on this thread, without a fiber, until the
    /// next epoch tick at most. Most calls end well before; one still running is abandoned and
    /// restarted from scratch on a fiber, where it yields to the executor every tick until its
    /// deadline. The restarted run keeps the original deadline, so it has lost the time of the
    /// first attempt (a tick at most): a run needing nearly all of `max_execution_time` may time
    /// out where one uninterrupted run would not, as the deadline's granularity is a tick anyway.
    async fn run_pure(
        &self,
        pre: &InstancePre<Limiter>,
        exports: &CoreExports,
        invocation: &Invocation,
        capabilities: &Capabilities,
        started: Instant,
    ) -> Result<RunReport, SandboxError> {
        if let Invocation::Command { env, .. } = invocation {
            wasi::check_env(capabilities, env)?;
        }
        let (outcome, iterations, peak_memory_bytes) =
            match self.run_pure_direct(pre, exports, invocation, started) {
                Some(ran) => ran,
                None => {
                    self.run_pure_on_fiber(pre, exports, invocation, started)
                        .await
                }
            };
        let done = outcome?;
        let no_output = (Vec::new(), false);
        Ok(report(
            done,
            started.elapsed(),
            iterations,
            peak_memory_bytes,
            no_output.clone(),
            no_output,
        ))
    }

    /// A pure run without a fiber; `None` when the first epoch tick came before it ended.
    fn run_pure_direct(
        &self,
        pre: &InstancePre<Limiter>,
        exports: &CoreExports,
        invocation: &Invocation,
        started: Instant,
    ) -> Option<(Result<Done, SandboxError>, u64, u64)> {
        let limits = &self.inner.limits;
        let limiter = Limiter::new(limits.max_memory_bytes, limits.max_table_size);
        let mut store = Store::new(&self.inner.engine, limiter);
        store.limiter(|s| s);
        let deadline = deadline(started, limits.max_execution_time);
        let limit_ms = limits.max_execution_time.as_millis();
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(Violation(SandboxError::Timeout {
                    limit_ms,
                })))
            } else {
                Err(wasmtime::Error::new(NeedsFiber))
            }
        });
        store.set_epoch_deadline(1);
        let mut instance = None;
        let outcome = execute_direct(&mut store, pre, exports, invocation, &mut instance);
        if outcome.as_ref().is_err_and(|e| e.is::<NeedsFiber>()) {
            return None;
        }
        let outcome = outcome.map_err(|e| classify(e, limits));
        let iterations = read_global(&mut store, instance, exports.iterations.as_ref());
        Some((outcome, iterations as u64, store.data().peak_memory))
    }

    /// A pure run on a fiber, yielding every epoch tick until its deadline.
    async fn run_pure_on_fiber(
        &self,
        pre: &InstancePre<Limiter>,
        exports: &CoreExports,
        invocation: &Invocation,
        started: Instant,
    ) -> (Result<Done, SandboxError>, u64, u64) {
        let limits = &self.inner.limits;
        let limiter = Limiter::new(limits.max_memory_bytes, limits.max_table_size);
        let mut store = self.store(limiter, started, |s| s);
        let mut instance = None;
        let pre = Instantiate::Sync(pre);
        let outcome = execute(&mut store, pre, exports, invocation, &mut instance).await;
        let outcome = outcome.map_err(|e| classify(e, limits));
        let iterations = read_global(&mut store, instance, exports.iterations.as_ref());
        (outcome, iterations as u64, store.data().peak_memory)
    }

    /// A fresh store with the run's limiter and its deadline: past the deadline the next epoch
    /// check traps; before it, wasm yields to the executor every tick so the tokio timeout
    /// around the run (which covers host calls) can also fire.
    fn store<T: 'static>(
        &self,
        data: T,
        started: Instant,
        limiter: fn(&mut T) -> &mut Limiter,
    ) -> Store<T> {
        let limits = &self.inner.limits;
        let mut store = Store::new(&self.inner.engine, data);
        store.limiter(move |s| limiter(s));
        let deadline = deadline(started, limits.max_execution_time);
        let on_epoch = SandboxError::Timeout {
            limit_ms: limits.max_execution_time.as_millis(),
        };
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(Violation(on_epoch.clone())))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        store
    }
}

/// What a run with host calls instantiates: a core module linked with WASI preview 1, or a
/// component.
enum Hosted<'a> {
    Core(&'a InstancePre<State>, &'a CoreExports),
    Component(&'a wasmtime_wasi::p2::bindings::CommandPre<ComponentState>),
}

/// When a run started at `started` must end; a limit too large to add is capped at a year (and
/// should one year not fit either, the run ends at once rather than never).
fn deadline(started: Instant, limit: Duration) -> Instant {
    started
        .checked_add(limit)
        .or_else(|| started.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(started)
}

/// The report of a run that ended normally.
fn report(
    done: Done,
    duration: Duration,
    iterations: u64,
    peak_memory_bytes: u64,
    (stdout, stdout_truncated): (Vec<u8>, bool),
    (stderr, stderr_truncated): (Vec<u8>, bool),
) -> RunReport {
    let (results, exit_code) = match done {
        Done::Results(r) => (r, None),
        Done::Exit(code) => (Vec::new(), Some(code)),
    };
    RunReport {
        results,
        exit_code,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        duration,
        iterations,
        peak_memory_bytes,
    }
}

/// Ends a direct run at its first epoch tick, to be restarted on a fiber.
#[derive(Debug, thiserror::Error)]
#[error("the run outlasted one epoch tick without a fiber")]
struct NeedsFiber;

/// How a core module is instantiated: without imports instantiation runs no code (the start
/// function is called afterwards) and can skip the fiber.
enum Instantiate<'a, T: 'static> {
    Sync(&'a InstancePre<T>),
    Async(&'a InstancePre<T>),
}

async fn execute<T: Send + 'static>(
    store: &mut Store<T>,
    pre: Instantiate<'_, T>,
    exports: &CoreExports,
    invocation: &Invocation,
    slot: &mut Option<Instance>,
) -> wasmtime::Result<Done> {
    let instance = match pre {
        Instantiate::Sync(pre) => pre.instantiate(&mut *store)?,
        Instantiate::Async(pre) => pre.instantiate_async(&mut *store).await?,
    };
    *slot = Some(instance);
    if let Some(start) = exports
        .start
        .as_ref()
        .and_then(|e| export_func(store, instance, e))
    {
        start.call_async(&mut *store, &[], &mut []).await?;
    }
    match invocation {
        Invocation::Call { function, args } => {
            let (func, args, mut results) = resolve_call(store, instance, exports, function, args)?;
            func.call_async(&mut *store, &args, &mut results).await?;
            Ok(Done::Results(
                results.iter().filter_map(Value::from_val).collect(),
            ))
        }
        Invocation::Command { .. } => {
            let start = command_start(store, instance)?;
            exit_status(start.call_async(&mut *store, ()).await)
        }
    }
}

/// [`execute`] without a fiber, for a module that imports nothing.
fn execute_direct(
    store: &mut Store<Limiter>,
    pre: &InstancePre<Limiter>,
    exports: &CoreExports,
    invocation: &Invocation,
    slot: &mut Option<Instance>,
) -> wasmtime::Result<Done> {
    let instance = pre.instantiate(&mut *store)?;
    *slot = Some(instance);
    if let Some(start) = exports
        .start
        .as_ref()
        .and_then(|e| export_func(store, instance, e))
    {
        start.call(&mut *store, &[], &mut [])?;
    }
    match invocation {
        Invocation::Call { function, args } => {
            let (func, args, mut results) = resolve_call(store, instance, exports, function, args)?;
            func.call(&mut *store, &args, &mut results)?;
            Ok(Done::Results(
                results.iter().filter_map(Value::from_val).collect(),
            ))
        }
        Invocation::Command { .. } => {
            let start = command_start(store, instance)?;
            exit_status(start.call(&mut *store, ()))
        }
    }
}

/// The exported function a `Call` names, its arguments checked against its type, and room for
/// its results.
fn resolve_call<T: 'static>(
    store: &mut Store<T>,
    instance: Instance,
    exports: &CoreExports,
    function: &str,
    args: &[Value],
) -> wasmtime::Result<(Func, Vec<Val>, Vec<Val>)> {
    let no_such = || invalid(format!("the module exports no function `{function}`"));
    let exported = exports.functions.get(function).ok_or_else(no_such)?;
    let func = export_func(store, instance, &exported.index).ok_or_else(no_such)?;
    let params = &exported.params;
    if params.len() != args.len() || !args.iter().zip(params.iter()).all(|(a, p)| a.matches(p)) {
        let given: Vec<&str> = args.iter().map(|a| a.ty_name()).collect();
        return Err(invalid(format!(
            "`{function}` takes ({}) but was given ({})",
            params
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            given.join(", ")
        )));
    }
    let results = &exported.results;
    if let Some(bad) = results
        .iter()
        .find(|t| !matches!(t, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64))
    {
        return Err(invalid(format!(
            "`{function}` returns an unsupported type {bad}"
        )));
    }
    let results = results.iter().map(|_| Val::I32(0)).collect();
    Ok((func, args.iter().map(|a| a.to_val()).collect(), results))
}

/// A command's `_start`.
fn command_start<T: 'static>(
    store: &mut Store<T>,
    instance: Instance,
) -> wasmtime::Result<wasmtime::TypedFunc<(), ()>> {
    instance
        .get_typed_func::<(), ()>(&mut *store, "_start")
        .map_err(|_| invalid("the module is not a WASI command (no `_start`)".into()))
}

/// A command's exit: returning from `_start` is 0, `proc_exit(n)` is n.
fn exit_status(ran: wasmtime::Result<()>) -> wasmtime::Result<Done> {
    match ran {
        Ok(()) => Ok(Done::Exit(0)),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(Done::Exit(exit.0)),
            None => Err(e),
        },
    }
}

fn export_func<T: 'static>(
    store: &mut Store<T>,
    instance: Instance,
    export: &ModuleExport,
) -> Option<Func> {
    instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
}

fn invalid(message: String) -> wasmtime::Error {
    wasmtime::Error::new(Violation(SandboxError::InvalidInvocation(message)))
}

fn read_global<T: 'static>(
    store: &mut Store<T>,
    instance: Option<Instance>,
    export: Option<&ModuleExport>,
) -> i64 {
    let global = instance
        .zip(export)
        .and_then(|(i, e)| i.get_module_export(&mut *store, e))
        .and_then(Extern::into_global);
    match global.map(|g| g.get(&mut *store)) {
        Some(Val::I32(v)) => i64::from(v),
        Some(Val::I64(v)) => v,
        _ => 0,
    }
}

/// Maps wasmtime's error of a failed run (a core module's or a component's) to its exact
/// [`SandboxError`]. The instrumentation's own traps are told from the module's by the function
/// they happen in (see [`instrument::limit_trap`]), not by state the module could write.
fn classify(e: wasmtime::Error, limits: &crate::Limits) -> SandboxError {
    if let Some(Violation(v)) = e.downcast_ref::<Violation>() {
        return v.clone();
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => match instrument::limit_trap(&e) {
            Some(LimitTrap::Iterations) => SandboxError::IterationLimit {
                limit: limits.max_iterations.unwrap_or(u64::MAX),
            },
            Some(LimitTrap::Depth) => SandboxError::StackOverflow {
                limit: limits.max_stack_depth,
            },
            None => SandboxError::Trap(format!("{e:#}")),
        },
        Some(Trap::StackOverflow) => SandboxError::StackOverflow {
            limit: limits.max_stack_depth,
        },
        Some(Trap::Interrupt) => SandboxError::Timeout {
            limit_ms: limits.max_execution_time.as_millis(),
        },
        _ => SandboxError::Trap(format!("{e:#}")),
    }
}
