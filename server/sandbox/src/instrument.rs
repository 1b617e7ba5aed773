//! Instrumentation, done once per module at prepare time.
//!
//! Two mutable globals are appended after the module's own (so no index of the module changes)
//! and, in a core module the host runs directly, exported under reserved names:
//! - `depth` (i32): incremented at every function entry, checked against `max_stack_depth`,
//!   decremented at every exit. Each body is wrapped in a block whose end is the only exit:
//!   `return` becomes a `br` to that block, a branch to the function label already lands there,
//!   and tail calls decrement before jumping. (Exceptions are disabled in the engine, so no
//!   frame is left without passing through the decrement.)
//! - `iterations` (i64): the total of loop iterations of the run, for the report.
//!
//! When a limit is hit the instrumentation calls one of two functions appended after the
//! module's own, `__sandbox_depth_limit` and `__sandbox_iteration_limit` (so named in the name
//! section), whose body is `unreachable`. The host tells its own traps from the module's by the
//! youngest frame of the trap's backtrace (`limit_trap`), which works the same for a component's
//! inner modules, whose globals the host cannot reach. The name section is rewritten so that
//! only these two functions carry a `__sandbox_` name: a module naming its own function so has
//! that name dropped, and cannot make its own trap pass for a limit.
//!
//! Each loop gets an i64 local counting its iterations: incremented at the loop header (which
//! runs once per iteration) and checked there against `max_iterations`, reset when the loop is
//! entered. The run's total is kept off the hot path: a counter is added to the `iterations`
//! global when its loop is re-entered (before the reset) and, for all loops of the function,
//! at the function's exit (locals start at zero in each activation, so each iteration is added
//! once). Runs that trap report no total.

use std::collections::HashSet;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder, utils};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, CustomSection, DataCountSection, ExportKind, ExportSection,
    Function, GlobalSection, GlobalType, Instruction, Module, NameMap, NameSection, StartSection,
    ValType,
};
use wasmparser::{
    FunctionBody, KnownCustom, NameSectionReader, Operator, Parser, Payload, TypeRef,
};

use crate::error::PrepareError;

/// Bumped whenever the instrumentation changes, so cached artifacts are not reused.
pub(crate) const VERSION: u32 = 4;
/// Export names (and function names) starting with this are reserved for the instrumentation.
pub(crate) const RESERVED_PREFIX: &str = "__sandbox_";
pub(crate) const DEPTH_EXPORT: &str = "__sandbox_depth";
pub(crate) const ITERATIONS_EXPORT: &str = "__sandbox_iterations";
/// A core module's start function, exported instead of run by instantiation, so the host calls
/// it as it calls any export (a component's inner modules keep their start function).
pub(crate) const START_EXPORT: &str = "__sandbox_start";
/// The name-section names of the functions the instrumentation traps in.
pub(crate) const DEPTH_LIMIT_FUNC: &str = "__sandbox_depth_limit";
pub(crate) const ITERATION_LIMIT_FUNC: &str = "__sandbox_iteration_limit";

/// Which limit an instrumentation trap reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitTrap {
    Depth,
    Iterations,
}

/// The limit behind a trap, if the youngest wasm frame of its backtrace is one of the functions
/// the instrumentation traps in (only those carry these names after instrumentation).
pub(crate) fn limit_trap(e: &wasmtime::Error) -> Option<LimitTrap> {
    let frame = e
        .downcast_ref::<wasmtime::WasmBacktrace>()?
        .frames()
        .first()?;
    match frame.func_name()? {
        DEPTH_LIMIT_FUNC => Some(LimitTrap::Depth),
        ITERATION_LIMIT_FUNC => Some(LimitTrap::Iterations),
        _ => None,
    }
}

/// What the instrumented module is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A core module the host instantiates and calls: the counters and the start function are
    /// exported (the start section removed).
    Core,
    /// A core module inside a component: nothing is exported and the start section stays, so
    /// the component's instantiation and aliases are unchanged.
    ComponentInner,
}

/// What the instrumentation enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub max_stack_depth: u32,
    pub max_iterations: Option<u64>,
}

/// The declarations of a module that the limits look at.
#[derive(Debug, Default)]
pub(crate) struct Declarations {
    pub globals: u32,
    /// Initial size of each defined table.
    pub table_initials: Vec<u64>,
    /// Sum of the initial sizes of the defined memories, in bytes.
    pub memory_initial_bytes: u64,
    pub exports: HashSet<String>,
    /// Whether the module imports anything (async host functions need async instantiation).
    pub imports: bool,
    /// The start function, if any.
    pub start: Option<u32>,
}

impl Declarations {
    /// Checks the globals and each table's initial size against `limits` (the memories are summed
    /// by the caller: over one module, or over every core module of a component).
    pub(crate) fn check_globals_and_tables(
        &self,
        limits: &crate::Limits,
    ) -> Result<(), crate::PrepareError> {
        if self.globals > limits.max_globals {
            return Err(crate::PrepareError::GlobalsLimit {
                declared: self.globals,
                limit: limits.max_globals,
            });
        }
        for (index, initial) in self.table_initials.iter().enumerate() {
            if *initial > u64::from(limits.max_table_size) {
                return Err(crate::PrepareError::TableLimit {
                    index: index as u32,
                    initial: *initial,
                    limit: limits.max_table_size,
                });
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Scan {
    decl: Declarations,
    /// (param count, results) per type index; `None` for non-function types.
    types: Vec<Option<(u32, Vec<wasmparser::ValType>)>>,
    defined_func_types: Vec<u32>,
    imported_globals: u32,
    imported_funcs: u32,
}

fn invalid(e: impl std::fmt::Display) -> PrepareError {
    PrepareError::Invalid(e.to_string())
}

fn scan(bytes: &[u8]) -> Result<Scan, PrepareError> {
    let mut s = Scan::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(r) => {
                for group in r {
                    for sub in group.map_err(invalid)?.into_types() {
                        s.types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some((f.params().len() as u32, f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::StartSection { func, .. } => s.decl.start = Some(func),
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    s.decl.imports = true;
                    match import.map_err(invalid)?.ty {
                        TypeRef::Global(_) => s.imported_globals += 1,
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => s.imported_funcs += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for ty in r {
                    s.defined_func_types.push(ty.map_err(invalid)?);
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    s.decl.table_initials.push(t.map_err(invalid)?.ty.initial);
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m.map_err(invalid)?;
                    let page = 1u64 << m.page_size_log2.unwrap_or(16);
                    s.decl.memory_initial_bytes = s
                        .decl
                        .memory_initial_bytes
                        .saturating_add(m.initial.saturating_mul(page));
                }
            }
            Payload::GlobalSection(r) => s.decl.globals += r.count(),
            Payload::ExportSection(r) => {
                for e in r {
                    s.decl.exports.insert(e.map_err(invalid)?.name.to_owned());
                }
            }
            _ => {}
        }
    }
    s.decl.globals += s.imported_globals;
    Ok(s)
}

/// Reads the declarations the limits are checked against (the module is already validated).
pub(crate) fn declarations(bytes: &[u8]) -> Result<Declarations, PrepareError> {
    scan(bytes).map(|s| s.decl)
}

/// Returns the instrumented module (`bytes` must be a valid core module).
pub(crate) fn instrument(
    bytes: &[u8],
    policy: Policy,
    target: Target,
) -> Result<Vec<u8>, PrepareError> {
    let scan = scan(bytes)?;
    let mut reserved: Vec<&String> = scan
        .decl
        .exports
        .iter()
        .filter(|name| name.starts_with(RESERVED_PREFIX))
        .collect();
    reserved.sort();
    if let Some(name) = reserved.first() {
        return Err(PrepareError::Invalid(format!(
            "the export name `{name}` is reserved (`{RESERVED_PREFIX}*`)"
        )));
    }
    Emitter::new(scan, policy, target).run(bytes)
}

/// The in-order sections we add to or create.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Stage {
    Start,
    Globals,
    Exports,
}

struct Emitter {
    scan: Scan,
    policy: Policy,
    target: Target,
    module: Module,
    re: RoundtripReencoder,
    stage: Stage,
    /// Result types that need a new `[] -> [results]` type for the wrapper block, in order.
    extra_types: Vec<Vec<wasmparser::ValType>>,
    code: Option<CodeSection>,
    next_func: usize,
    depth: u32,
    iterations: u32,
    /// The `[] -> []` type of the two trap functions, added after `extra_types`.
    trap_type: u32,
    depth_limit: u32,
    iteration_limit: u32,
}

fn compile_err(e: impl std::fmt::Display) -> PrepareError {
    PrepareError::Compile(e.to_string())
}

impl Emitter {
    fn new(scan: Scan, policy: Policy, target: Target) -> Self {
        let first = scan.decl.globals;
        let mut extra_types: Vec<Vec<wasmparser::ValType>> = Vec::new();
        for ty in &scan.defined_func_types {
            if let Some(Some((_, results))) = scan.types.get(*ty as usize)
                && results.len() > 1
                && !extra_types.contains(results)
            {
                extra_types.push(results.clone());
            }
        }
        let trap_type = (scan.types.len() + extra_types.len()) as u32;
        let depth_limit = scan.imported_funcs + scan.defined_func_types.len() as u32;
        Self {
            scan,
            policy,
            target,
            module: Module::new(),
            re: RoundtripReencoder,
            stage: Stage::Start,
            extra_types,
            code: None,
            next_func: 0,
            depth: first,
            iterations: first + 1,
            trap_type,
            depth_limit,
            iteration_limit: depth_limit + 1,
        }
    }

    /// Whether the module has code, hence the trap functions (and the sections holding them:
    /// a module with a defined function has a type, a function and a code section).
    fn has_code(&self) -> bool {
        !self.scan.defined_func_types.is_empty()
    }

    fn run(mut self, bytes: &[u8]) -> Result<Vec<u8>, PrepareError> {
        let mut names: Vec<NameSectionReader<'_>> = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(invalid)?;
            if !matches!(payload, Payload::CodeSectionEntry(_)) {
                self.flush_code();
            }
            match payload {
                Payload::Version { .. } => {}
                Payload::TypeSection(r) => {
                    let mut s = wasm_encoder::TypeSection::new();
                    utils::parse_type_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    for results in &self.extra_types {
                        let results: Vec<ValType> = results
                            .iter()
                            .map(|t| self.re.val_type(*t))
                            .collect::<Result<_, _>>()
                            .map_err(compile_err)?;
                        s.ty().function([], results);
                    }
                    if self.has_code() {
                        s.ty().function([], []);
                    }
                    self.module.section(&s);
                }
                Payload::ImportSection(r) => {
                    let mut s = wasm_encoder::ImportSection::new();
                    utils::parse_import_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.module.section(&s);
                }
                Payload::FunctionSection(r) => {
                    let mut s = wasm_encoder::FunctionSection::new();
                    utils::parse_function_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    if self.has_code() {
                        s.function(self.trap_type);
                        s.function(self.trap_type);
                    }
                    self.module.section(&s);
                }
                Payload::TableSection(r) => {
                    let mut s = wasm_encoder::TableSection::new();
                    utils::parse_table_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.module.section(&s);
                }
                Payload::MemorySection(r) => {
                    let mut s = wasm_encoder::MemorySection::new();
                    utils::parse_memory_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.module.section(&s);
                }
                Payload::TagSection(r) => {
                    let mut s = wasm_encoder::TagSection::new();
                    utils::parse_tag_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.module.section(&s);
                }
                Payload::GlobalSection(r) => {
                    let mut s = GlobalSection::new();
                    utils::parse_global_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.add_globals(&mut s);
                    self.module.section(&s);
                    self.stage = Stage::Globals;
                }
                Payload::ExportSection(r) => {
                    self.reach(Stage::Globals);
                    let mut s = ExportSection::new();
                    utils::parse_export_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.add_exports(&mut s);
                    self.module.section(&s);
                    self.stage = Stage::Exports;
                }
                Payload::StartSection { func, .. } => {
                    self.reach(Stage::Exports);
                    if self.target == Target::ComponentInner {
                        // Function indices are unchanged: the trap functions come last.
                        self.module.section(&StartSection {
                            function_index: func,
                        });
                    }
                }
                Payload::ElementSection(r) => {
                    self.reach(Stage::Exports);
                    let mut s = wasm_encoder::ElementSection::new();
                    utils::parse_element_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.module.section(&s);
                }
                Payload::DataCountSection { count, .. } => {
                    self.reach(Stage::Exports);
                    self.module.section(&DataCountSection { count });
                }
                Payload::CodeSectionStart { .. } => {
                    self.reach(Stage::Exports);
                    self.code = Some(CodeSection::new());
                }
                Payload::CodeSectionEntry(body) => {
                    let f = self.function(&body)?;
                    if let Some(code) = &mut self.code {
                        code.function(&f);
                    }
                }
                Payload::DataSection(r) => {
                    self.reach(Stage::Exports);
                    let mut s = wasm_encoder::DataSection::new();
                    utils::parse_data_section(&mut self.re, &mut s, r).map_err(compile_err)?;
                    self.module.section(&s);
                }
                Payload::CustomSection(c) => match c.as_known() {
                    // Rewritten and emitted at the end.
                    KnownCustom::Name(reader) => names.push(reader),
                    _ => {
                        self.module.section(&CustomSection {
                            name: c.name().into(),
                            data: c.data().into(),
                        });
                    }
                },
                Payload::End(_) => self.reach(Stage::Exports),
                other => {
                    return Err(PrepareError::Invalid(format!(
                        "unsupported section in a core module: {other:?}"
                    )));
                }
            }
        }
        if self.has_code() || !names.is_empty() {
            let names = self.name_section(&names);
            self.module.section(&names);
        }
        Ok(self.module.finish())
    }

    /// One name section: the module's names (all of its name sections, merged), except function
    /// names starting with [`RESERVED_PREFIX`] or naming no function of the original module,
    /// plus the names of the two trap functions. A name section that does not parse is dropped
    /// (names are only for backtraces).
    fn name_section(&mut self, originals: &[NameSectionReader<'_>]) -> CustomSection<'static> {
        let original_funcs = self.depth_limit;
        let mut names = NameSection::new();
        let mut functions = NameMap::new();
        let mut rest = NameSection::new();
        let parsed: Result<(), PrepareError> = (|| {
            let mut module_name = None;
            for reader in originals {
                for subsection in reader.clone() {
                    match subsection.map_err(invalid)? {
                        wasmparser::Name::Module { name, .. } => module_name = Some(name),
                        wasmparser::Name::Function(map) => {
                            for naming in map {
                                let naming = naming.map_err(invalid)?;
                                if naming.index < original_funcs
                                    && !naming.name.starts_with(RESERVED_PREFIX)
                                {
                                    functions.append(naming.index, naming.name);
                                }
                            }
                        }
                        other => {
                            utils::parse_custom_name_subsection(&mut self.re, &mut rest, other)
                                .map_err(compile_err)?;
                        }
                    }
                }
            }
            if let Some(name) = module_name {
                names.module(name);
            }
            Ok(())
        })();
        if parsed.is_err() {
            names = NameSection::new();
            functions = NameMap::new();
            rest = NameSection::new();
        }
        if self.has_code() {
            functions.append(self.depth_limit, DEPTH_LIMIT_FUNC);
            functions.append(self.iteration_limit, ITERATION_LIMIT_FUNC);
        }
        names.functions(&functions);
        // The other subsections follow the module and function names, in their order.
        let mut data = names.as_custom().data.into_owned();
        data.extend_from_slice(&rest.as_custom().data);
        CustomSection {
            name: "name".into(),
            data: data.into(),
        }
    }

    fn flush_code(&mut self) {
        if let Some(mut code) = self.code.take() {
            if self.has_code() {
                // The two trap functions, in the order of the function section.
                for _ in 0..2 {
                    let mut f = Function::new([]);
                    f.instruction(&Instruction::Unreachable);
                    f.instruction(&Instruction::End);
                    code.function(&f);
                }
            }
            self.module.section(&code);
        }
    }

    /// Emits the sections we must add if the module did not have them.
    fn reach(&mut self, stage: Stage) {
        if self.stage < Stage::Globals && stage >= Stage::Globals {
            let mut s = GlobalSection::new();
            self.add_globals(&mut s);
            self.module.section(&s);
            self.stage = Stage::Globals;
        }
        if self.stage < Stage::Exports && stage >= Stage::Exports {
            if self.target == Target::Core {
                let mut s = ExportSection::new();
                self.add_exports(&mut s);
                self.module.section(&s);
            }
            self.stage = Stage::Exports;
        }
    }

    fn add_globals(&self, s: &mut GlobalSection) {
        let ty = |val_type| GlobalType {
            val_type,
            mutable: true,
            shared: false,
        };
        s.global(ty(ValType::I32), &ConstExpr::i32_const(0));
        s.global(ty(ValType::I64), &ConstExpr::i64_const(0));
    }

    fn add_exports(&self, s: &mut ExportSection) {
        if self.target != Target::Core {
            return;
        }
        s.export(DEPTH_EXPORT, ExportKind::Global, self.depth);
        s.export(ITERATIONS_EXPORT, ExportKind::Global, self.iterations);
        if let Some(start) = self.scan.decl.start {
            s.export(START_EXPORT, ExportKind::Func, start);
        }
    }

    fn wrapper_block(
        &mut self,
        results: &[wasmparser::ValType],
    ) -> Result<BlockType, PrepareError> {
        Ok(match results {
            [] => BlockType::Empty,
            [one] => BlockType::Result(self.re.val_type(*one).map_err(compile_err)?),
            many => {
                let pos = self.extra_types.iter().position(|r| r == many).unwrap_or(0);
                BlockType::FunctionType((self.scan.types.len() + pos) as u32)
            }
        })
    }

    fn function(&mut self, body: &FunctionBody<'_>) -> Result<Function, PrepareError> {
        let ty = self.scan.defined_func_types.get(self.next_func).copied();
        self.next_func += 1;
        let (params, results) = ty
            .and_then(|t| self.scan.types.get(t as usize).cloned().flatten())
            .ok_or_else(|| PrepareError::Invalid("function without a function type".into()))?;
        let mut locals = Vec::new();
        let mut first_counter = params;
        for local in body.get_locals_reader().map_err(invalid)? {
            let (count, ty) = local.map_err(invalid)?;
            locals.push((count, self.re.val_type(ty).map_err(compile_err)?));
            first_counter += count;
        }
        let mut loops = 0u32;
        for op in body.get_operators_reader().map_err(invalid)? {
            if matches!(op.map_err(invalid)?, Operator::Loop { .. }) {
                loops += 1;
            }
        }
        if loops > 0 {
            locals.push((loops, ValType::I64));
        }
        let counters = first_counter..first_counter + loops;
        let wrapper = self.wrapper_block(&results)?;
        let mut f = Function::new(locals);
        self.enter(&mut f);
        f.instruction(&Instruction::Block(wrapper));
        let mut open = 0u32;
        let mut next_loop = first_counter;
        let mut reader = body.get_operators_reader().map_err(invalid)?;
        while !reader.eof() {
            let op = reader.read().map_err(invalid)?;
            match op {
                Operator::Block { .. } | Operator::If { .. } | Operator::TryTable { .. } => {
                    open += 1;
                    f.instruction(&self.re.instruction(op).map_err(compile_err)?);
                }
                Operator::Loop { .. } => {
                    open += 1;
                    let counter = next_loop;
                    next_loop += 1;
                    self.flush(&mut f, counter..counter + 1);
                    f.instruction(&Instruction::I64Const(0));
                    f.instruction(&Instruction::LocalSet(counter));
                    f.instruction(&self.re.instruction(op).map_err(compile_err)?);
                    self.loop_header(&mut f, counter);
                }
                Operator::End if open == 0 => {
                    f.instruction(&Instruction::End);
                    self.flush(&mut f, counters.clone());
                    self.leave(&mut f);
                    f.instruction(&Instruction::End);
                }
                Operator::End => {
                    open -= 1;
                    f.instruction(&Instruction::End);
                }
                Operator::Return => {
                    f.instruction(&Instruction::Br(open));
                }
                Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::ReturnCallRef { .. } => {
                    self.flush(&mut f, counters.clone());
                    self.leave(&mut f);
                    f.instruction(&self.re.instruction(op).map_err(compile_err)?);
                }
                Operator::Try { .. } | Operator::Delegate { .. } | Operator::Rethrow { .. } => {
                    return Err(PrepareError::Invalid(
                        "legacy exception handling is not supported".into(),
                    ));
                }
                _ => {
                    f.instruction(&self.re.instruction(op).map_err(compile_err)?);
                }
            }
        }
        Ok(f)
    }

    /// With the condition on the stack: if it holds, calls the trap function `trap`.
    fn trap_if(&self, f: &mut Function, trap: u32) {
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::Call(trap));
        f.instruction(&Instruction::End);
    }

    fn enter(&self, f: &mut Function) {
        f.instruction(&Instruction::GlobalGet(self.depth));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Add);
        f.instruction(&Instruction::GlobalSet(self.depth));
        f.instruction(&Instruction::GlobalGet(self.depth));
        f.instruction(&Instruction::I32Const(i32::from_ne_bytes(
            self.policy.max_stack_depth.to_ne_bytes(),
        )));
        f.instruction(&Instruction::I32GtU);
        self.trap_if(f, self.depth_limit);
    }

    fn leave(&self, f: &mut Function) {
        f.instruction(&Instruction::GlobalGet(self.depth));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::GlobalSet(self.depth));
    }

    /// Adds the loop counters in `locals` to the run's total.
    fn flush(&self, f: &mut Function, locals: std::ops::Range<u32>) {
        if locals.is_empty() {
            return;
        }
        f.instruction(&Instruction::GlobalGet(self.iterations));
        for local in locals {
            f.instruction(&Instruction::LocalGet(local));
            f.instruction(&Instruction::I64Add);
        }
        f.instruction(&Instruction::GlobalSet(self.iterations));
    }

    fn loop_header(&self, f: &mut Function, counter: u32) {
        f.instruction(&Instruction::LocalGet(counter));
        f.instruction(&Instruction::I64Const(1));
        f.instruction(&Instruction::I64Add);
        if let Some(max) = self.policy.max_iterations {
            f.instruction(&Instruction::LocalTee(counter));
            f.instruction(&Instruction::I64Const(i64::from_ne_bytes(
                max.to_ne_bytes(),
            )));
            f.instruction(&Instruction::I64GtU);
            self.trap_if(f, self.iteration_limit);
        } else {
            f.instruction(&Instruction::LocalSet(counter));
        }
    }
}
