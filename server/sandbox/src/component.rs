//! WASI 0.2 command components: the checks applied at `prepare`, the store data and the run.
//!
//! A component is validated and compiled by wasmtime and pre-linked against the WASI 0.2
//! (`wasi:cli/command`) implementation of wasmtime-wasi. Its inner core modules are checked
//! against the declared-size limits (globals and initial tables per module, initial memory summed
//! over all of them) and each is instrumented as a core module is (`instrument.rs`, without the
//! exports: the host cannot reach a component's inner globals), so `max_stack_depth` and
//! `max_iterations` hold per core instance and a limit trap is recognised by its backtrace.
//! Memory, tables, the deadline, output caps and capabilities apply as for core modules.
//! Outgoing `wasi:http` requests go through the run's network policy (see `http.rs`).

use std::ops::Range;

use wasm_encoder::reencode::{self, Reencode, ReencodeComponent};
use wasm_encoder::{ComponentSectionId, RawSection};
use wasmparser::{Parser, Payload};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::{Command, CommandPre};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::error::{PrepareError, SandboxError, Violation};
use crate::http::HttpHooks;
use crate::instrument;
use crate::limiter::Limiter;
use crate::lookup::{self, LookupPolicy};
use crate::run::Done;
use crate::{Invocation, Limits};

/// The store data of a component run.
pub(crate) struct ComponentState {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: HttpHooks,
    /// Which names `wasi:sockets/ip-name-lookup` may resolve (see `lookup.rs`).
    pub(crate) lookup: LookupPolicy,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// The WASI 0.2 linker: every `wasi:cli/command` interface (`exit-with-code`, which the
/// preview 1 adapter uses for exit codes other than 0 and 1, is stable since 0.2.12), and
/// `wasi:http/types` with `wasi:http/outgoing-handler` (checked per request, see `http.rs`);
/// `wasi:sockets/ip-name-lookup` resolves only names listed in `allowed_hosts` (`lookup.rs`).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // Name lookups only for listed names (wasmtime-wasi has no per-name hook).
    lookup::shadow(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// The byte ranges of every core module inside `bytes` (at any nesting depth).
fn core_modules(bytes: &[u8]) -> Result<Vec<Range<usize>>, PrepareError> {
    let mut modules = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::ModuleSection {
            unchecked_range, ..
        } = payload.map_err(|e| PrepareError::Invalid(e.to_string()))?
        {
            modules.push(unchecked_range);
        }
    }
    Ok(modules)
}

/// Checks the declarations of the component's core modules against `limits`.
pub(crate) fn check_limits(bytes: &[u8], limits: &Limits) -> Result<(), PrepareError> {
    let mut memory_initial_bytes = 0u64;
    for range in core_modules(bytes)? {
        let module = bytes.get(range).ok_or_else(|| {
            PrepareError::Invalid("a core module lies outside the component".into())
        })?;
        let decl = instrument::declarations(module)?;
        decl.check_globals_and_tables(limits)?;
        memory_initial_bytes = memory_initial_bytes.saturating_add(decl.memory_initial_bytes);
    }
    if memory_initial_bytes > limits.max_memory_bytes {
        return Err(PrepareError::MemoryLimit {
            initial_bytes: memory_initial_bytes,
            limit: limits.max_memory_bytes,
        });
    }
    Ok(())
}

/// Re-encodes a component with every core module in it (at any nesting depth) instrumented
/// for `policy`; everything else is copied unchanged, so no index of the component moves.
struct Instrumenter<'a> {
    engine: &'a Engine,
    policy: instrument::Policy,
}

impl Reencode for Instrumenter<'_> {
    type Error = PrepareError;
}

impl ReencodeComponent for Instrumenter<'_> {
    fn parse_component_submodule(
        &mut self,
        component: &mut wasm_encoder::Component,
        _parser: Parser,
        module: &[u8],
    ) -> Result<(), reencode::Error<PrepareError>> {
        // The instrumentation expects a valid module; wasmtime validates the whole component
        // (with the instrumented modules) when compiling it.
        wasmtime::Module::validate(self.engine, module)
            .map_err(|e| reencode::Error::UserError(PrepareError::Invalid(format!("{e:#}"))))?;
        let instrumented =
            instrument::instrument(module, self.policy, instrument::Target::ComponentInner)
                .map_err(reencode::Error::UserError)?;
        component.section(&RawSection {
            id: ComponentSectionId::CoreModule as u8,
            data: &instrumented,
        });
        Ok(())
    }
}

/// Instruments every core module of the component `bytes` (see [`Instrumenter`]).
pub(crate) fn instrument_component(
    engine: &Engine,
    bytes: &[u8],
    policy: instrument::Policy,
) -> Result<Vec<u8>, PrepareError> {
    let mut component = wasm_encoder::Component::new();
    Instrumenter { engine, policy }
        .parse_component(&mut component, Parser::new(0), bytes)
        .map_err(|e| match e {
            reencode::Error::UserError(e) => e,
            reencode::Error::ParseError(e) => PrepareError::Invalid(e.to_string()),
            other => PrepareError::Invalid(other.to_string()),
        })?;
    Ok(component.finish())
}

/// Validates and compiles a component (its limits are checked by [`check_limits`]).
pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, PrepareError> {
    Component::new(engine, bytes).map_err(|e| PrepareError::Invalid(format!("{e:#}")))
}

/// Pre-links `component` as a `wasi:cli/command`: every import must be a WASI 0.2 interface the
/// sandbox provides, and it must export `wasi:cli/run`.
pub(crate) fn link(
    linker: &Linker<ComponentState>,
    component: &Component,
) -> Result<CommandPre<ComponentState>, PrepareError> {
    let engine = component.engine();
    let ty = component.component_type();
    let pre: InstancePre<ComponentState> = linker.instantiate_pre(component).map_err(|e| {
        let text = format!("{e:#}");
        let first = ty
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .find(|name| text.contains(name.as_str()));
        match first {
            Some(name) => PrepareError::BlockedImport {
                module: name,
                name: "*".into(),
            },
            None => PrepareError::Compile(text),
        }
    })?;
    CommandPre::new(pre).map_err(|e| {
        PrepareError::Invalid(format!(
            "the component is not a WASI command (no `wasi:cli/run`): {e:#}"
        ))
    })
}

/// Instantiates the command and runs `wasi:cli/run`.
pub(crate) async fn execute(
    store: &mut Store<ComponentState>,
    pre: &CommandPre<ComponentState>,
    invocation: &Invocation,
) -> wasmtime::Result<Done> {
    if let Invocation::Call { .. } = invocation {
        return Err(wasmtime::Error::new(Violation(
            SandboxError::InvalidInvocation(
                "a component runs only as a command (`wasi:cli/run`)".into(),
            ),
        )));
    }
    let command: Command = pre.instantiate_async(&mut *store).await?;
    match command.wasi_cli_run().call_run(&mut *store).await {
        Ok(Ok(())) => Ok(Done::Exit(0)),
        Ok(Err(())) => Ok(Done::Exit(1)),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(Done::Exit(exit.0)),
            None => Err(e),
        },
    }
}
