//! Instrumentation, done once per module at prepare time.
//!
//! Three mutable globals are appended after the module's own (so no index of the module
//! changes) and exported under reserved names for the host to read:
//! - `depth` (i32): incremented at every function entry, checked against `max_stack_depth`,
//!   decremented at every exit. Each body is wrapped in a block whose end is the only exit:
//!   `return` becomes a `br` to that block, a branch to the function label already lands there,
//!   and tail calls decrement before jumping. (Exceptions are disabled in the engine, so no
//!   frame is left without passing through the decrement.)
//! - `iterations` (i64): the total of loop iterations of the run, for the report.
//! - `reason` (i32): set just before the instrumentation traps with `unreachable`, so the host
//!   tells its own traps from the module's.
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
    Function, GlobalSection, GlobalType, Instruction, Module, ValType,
};
use wasmparser::{FunctionBody, Operator, Parser, Payload, TypeRef};

use crate::error::PrepareError;

/// Bumped whenever the instrumentation changes, so cached artifacts are not reused.
pub(crate) const VERSION: u32 = 3;
pub(crate) const DEPTH_EXPORT: &str = "__sandbox_depth";
pub(crate) const ITERATIONS_EXPORT: &str = "__sandbox_iterations";
pub(crate) const REASON_EXPORT: &str = "__sandbox_reason";
/// The module's start function, exported instead of run by instantiation, so the host calls
/// it and can still read `reason` if it traps.
pub(crate) const START_EXPORT: &str = "__sandbox_start";
pub(crate) const REASON_ITERATIONS: i32 = 1;
pub(crate) const REASON_DEPTH: i32 = 2;

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
    pub(crate) fn check_globals_and_tables(&self, limits: &crate::Limits) -> Result<(), crate::PrepareError> {
        if self.globals > limits.max_globals {
            return Err(crate::PrepareError::GlobalsLimit { declared: self.globals, limit: limits.max_globals });
        }
        for (index, initial) in self.table_initials.iter().enumerate() {
            if *initial > u64::from(limits.max_table_size) {
                return Err(crate::PrepareError::TableLimit { index: index as u32, initial: *initial, limit: limits.max_table_size });
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
                    if let TypeRef::Global(_) = import.map_err(invalid)?.ty {
                        s.imported_globals += 1;
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
                    s.decl.memory_initial_bytes =
                        s.decl.memory_initial_bytes.saturating_add(m.initial.saturating_mul(page));
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

/// Returns the instrumented module.
pub(crate) fn instrument(bytes: &[u8], policy: Policy) -> Result<Vec<u8>, PrepareError> {
    let scan = scan(bytes)?;
    for reserved in [DEPTH_EXPORT, ITERATIONS_EXPORT, REASON_EXPORT, START_EXPORT] {
        if scan.decl.exports.contains(reserved) {
            return Err(PrepareError::Invalid(format!("the export name `{reserved}` is reserved")));
        }
    }
    Emitter::new(scan, policy).run(bytes)
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
    module: Module,
    re: RoundtripReencoder,
    stage: Stage,
    /// Result types that need a new `[] -> [results]` type for the wrapper block, in order.
    extra_types: Vec<Vec<wasmparser::ValType>>,
    code: Option<CodeSection>,
    next_func: usize,
    depth: u32,
    iterations: u32,
    reason: u32,
}

fn compile_err(e: impl std::fmt::Display) -> PrepareError {
    PrepareError::Compile(e.to_string())
}

impl Emitter {
    fn new(scan: Scan, policy: Policy) -> Self {
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
        Self {
            scan,
            policy,
            module: Module::new(),
            re: RoundtripReencoder,
            stage: Stage::Start,
            extra_types,
            code: None,
            next_func: 0,
            depth: first,
            iterations: first + 1,
            reason: first + 2,
        }
    }

    fn run(mut self, bytes: &[u8]) -> Result<Vec<u8>, PrepareError> {
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
                Payload::StartSection { .. } => self.reach(Stage::Exports),
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
                Payload::CustomSection(c) => {
                    self.module.section(&CustomSection {
                        name: c.name().into(),
                        data: c.data().into(),
                    });
                }
                Payload::End(_) => self.reach(Stage::Exports),
                other => {
                    return Err(PrepareError::Invalid(format!(
                        "unsupported section in a core module: {other:?}"
                    )));
                }
            }
        }
        Ok(self.module.finish())
    }

    fn flush_code(&mut self) {
        if let Some(code) = self.code.take() {
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
            let mut s = ExportSection::new();
            self.add_exports(&mut s);
            self.module.section(&s);
            self.stage = Stage::Exports;
        }
    }

    fn add_globals(&self, s: &mut GlobalSection) {
        let ty = |val_type| GlobalType { val_type, mutable: true, shared: false };
        s.global(ty(ValType::I32), &ConstExpr::i32_const(0));
        s.global(ty(ValType::I64), &ConstExpr::i64_const(0));
        s.global(ty(ValType::I32), &ConstExpr::i32_const(0));
    }

    fn add_exports(&self, s: &mut ExportSection) {
        s.export(DEPTH_EXPORT, ExportKind::Global, self.depth);
        s.export(ITERATIONS_EXPORT, ExportKind::Global, self.iterations);
        s.export(REASON_EXPORT, ExportKind::Global, self.reason);
        if let Some(start) = self.scan.decl.start {
            s.export(START_EXPORT, ExportKind::Func, start);
        }
    }

    fn wrapper_block(&mut self, results: &[wasmparser::ValType]) -> Result<BlockType, PrepareError> {
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
                    return Err(PrepareError::Invalid("legacy exception handling is not supported".into()));
                }
                _ => {
                    f.instruction(&self.re.instruction(op).map_err(compile_err)?);
                }
            }
        }
        Ok(f)
    }

    fn trap_with(&self, f: &mut Function, reason: i32) {
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::I32Const(reason));
        f.instruction(&Instruction::GlobalSet(self.reason));
        f.instruction(&Instruction::Unreachable);
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
        self.trap_with(f, REASON_DEPTH);
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
            f.instruction(&Instruction::I64Const(i64::from_ne_bytes(max.to_ne_bytes())));
            f.instruction(&Instruction::I64GtU);
            self.trap_with(f, REASON_ITERATIONS);
        } else {
            f.instruction(&Instruction::LocalSet(counter));
        }
    }
}
