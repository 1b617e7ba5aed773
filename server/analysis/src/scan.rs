//! The single pass: parse, validate and collect facts payload by payload; function bodies are
//! validated and scanned operator by operator with the same reader.

use wasmparser::{
    CompositeInnerType, Encoding, FuncToValidate, FuncValidatorAllocations, FunctionBody,
    KnownCustom, Name, OperatorsReader, OperatorsReaderAllocations, Parser, Payload, TypeRef, ValidPayload, Validator, ValidatorResources,
    WasmModuleResources,
};

use crate::InvalidModule;
use crate::body::BodyScan;
use crate::report::{Finding, ModuleKind};
use crate::rules::{Findings, ModuleFacts};

/// What the pass learned, before scoring.
pub struct Scanned {
    pub kind: ModuleKind,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub findings: Vec<Finding>,
    pub suspicious: bool,
}

enum Ctx {
    Core(ModuleFacts),
    Component,
}

struct Pass<'p> {
    validator: Validator,
    stack: Vec<Ctx>,
    kind: ModuleKind,
    imports: Vec<String>,
    exports: Vec<String>,
    out: Findings<'p>,
    body: BodyScan,
    allocs: Option<FuncValidatorAllocations>,
    op_allocs: OperatorsReaderAllocations,
}

pub fn run(bytes: &[u8], out: Findings<'_>) -> Result<Scanned, InvalidModule> {
    if bytes.is_empty() {
        return Err(InvalidModule {
            message: "the module is empty: expected the `\\0asm` magic number and a version".into(),
            offset: Some(0),
        });
    }
    let features = crate::wasmtime_default_features();
    let mut parser = Parser::new(0);
    parser.set_features(features);
    let mut pass = Pass {
        validator: Validator::new_with_features(features),
        stack: Vec::new(),
        kind: ModuleKind::Core,
        imports: Vec::new(),
        exports: Vec::new(),
        out,
        body: BodyScan::default(),
        allocs: Some(FuncValidatorAllocations::default()),
        op_allocs: OperatorsReaderAllocations::default(),
    };
    for payload in parser.parse_all(bytes) {
        pass.payload(&payload?)?;
    }
    let (findings, suspicious) = pass.out.finish();
    Ok(Scanned {
        kind: pass.kind,
        imports: pass.imports,
        exports: pass.exports,
        findings,
        suspicious,
    })
}

impl Pass<'_> {
    fn top_level(&self) -> bool {
        self.stack.len() == 1
    }

    fn core(&mut self) -> Option<&mut ModuleFacts> {
        match self.stack.last_mut() {
            Some(Ctx::Core(m)) => Some(m),
            _ => None,
        }
    }

    fn payload(&mut self, payload: &Payload<'_>) -> Result<(), InvalidModule> {
        let valid = self.validator.payload(payload)?;
        if let ValidPayload::Func(func, body) = valid {
            return self.function(func, &body);
        }
        match payload {
            Payload::Version { encoding, .. } => {
                if self.stack.is_empty() && *encoding == Encoding::Component {
                    self.kind = ModuleKind::Component;
                }
                self.stack.push(match encoding {
                    Encoding::Module => Ctx::Core(ModuleFacts::new(self.out.len())),
                    Encoding::Component => Ctx::Component,
                });
            }
            Payload::ImportSection(reader) => {
                let top = self.top_level();
                for item in reader.clone().into_imports_with_offsets() {
                    let (offset, import) = item?;
                    let name = format!("{}.{}", import.module, import.name);
                    if top {
                        self.out.import(&name, offset);
                    }
                    let Some(Ctx::Core(m)) = self.stack.last_mut() else { continue };
                    m.note_import_name(import.name);
                    match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => m.imported_funcs += 1,
                        TypeRef::Global(_) => m.globals += 1,
                        TypeRef::Memory(ty) => self.out.memory(m, &ty, offset),
                        TypeRef::Table(ty) => self.out.table(m, &ty, offset),
                        TypeRef::Tag(_) => {}
                    }
                    if top {
                        self.imports.push(name);
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for item in reader.clone().into_iter_with_offsets() {
                    let (offset, ty) = item?;
                    if let Some(Ctx::Core(m)) = self.stack.last_mut() {
                        self.out.memory(m, &ty, offset);
                    }
                }
            }
            Payload::TableSection(reader) => {
                for item in reader.clone().into_iter_with_offsets() {
                    let (offset, table) = item?;
                    if let Some(Ctx::Core(m)) = self.stack.last_mut() {
                        self.out.table(m, &table.ty, offset);
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                let (count, offset) = (reader.count(), reader.range().start);
                if let Some(m) = self.core() {
                    m.globals += count;
                    m.globals_offset.get_or_insert(offset);
                }
            }
            Payload::ExportSection(reader) => {
                let top = self.top_level();
                for export in reader.clone() {
                    let export = export?;
                    if top {
                        self.exports.push(export.name.to_string());
                    }
                    if export.kind == wasmparser::ExternalKind::Func
                        && let Some(m) = self.core()
                    {
                        m.exported_funcs.push(export.index);
                    }
                }
            }
            Payload::StartSection { func, range } => {
                let at = (*func, range.start);
                if let Some(m) = self.core() {
                    m.start = Some(at);
                    self.out.start(at.0, at.1);
                }
            }
            Payload::DataSection(reader) => {
                for data in reader.clone() {
                    let data = data?;
                    if data.data.starts_with(b"\0asm")
                        && let Some(m) = self.core()
                    {
                        m.embedded_wasm.get_or_insert(data.range.start);
                    }
                }
            }
            Payload::CustomSection(reader) => {
                if let KnownCustom::Name(names) = reader.as_known() {
                    for name in names {
                        // A malformed name section is not a validation error; ignore it.
                        let Ok(Name::Function(map)) = name else { continue };
                        if let Some(Ctx::Core(m)) = self.stack.last_mut() {
                            self.out.name_functions(m, map);
                        }
                    }
                }
            }
            Payload::ComponentImportSection(reader) if self.top_level() => {
                for item in reader.clone().into_iter_with_offsets() {
                    let (offset, import) = item?;
                    let name = import.name.name.to_string();
                    self.out.import(&name, offset);
                    self.imports.push(name);
                }
            }
            Payload::ComponentExportSection(reader) if self.top_level() => {
                for export in reader.clone() {
                    self.exports.push(export?.name.name.to_string());
                }
            }
            Payload::End(offset) => {
                if let Some(Ctx::Core(m)) = self.stack.pop() {
                    self.out.module_end(&m, *offset);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn function(
        &mut self,
        func: FuncToValidate<ValidatorResources>,
        body: &FunctionBody<'_>,
    ) -> Result<(), InvalidModule> {
        let index = func.index;
        let params = match func.resources.sub_type_at(func.ty).map(|t| &t.composite_type.inner) {
            Some(CompositeInnerType::Func(f)) => u32::try_from(f.params().len()).unwrap_or(0),
            _ => 0,
        };
        let mut fv = func.into_validator(self.allocs.take().unwrap_or_default());
        let mut locals = body.get_locals_reader()?;
        for _ in 0..locals.get_count() {
            let offset = locals.original_position();
            let (count, ty) = locals.read()?;
            fv.define_locals(offset, count, ty)?;
        }
        let mut reader = locals.get_binary_reader();
        reader.set_features(*fv.features());
        let mut ops = OperatorsReader::new_with_allocs(reader, std::mem::take(&mut self.op_allocs));
        let start = ops.original_position();
        self.body.reset(index, params, start);
        let mut len = 0usize;
        while !ops.eof() {
            let (op, offset) = ops.read_with_offset()?;
            fv.op(offset, &op)?;
            self.body.op(offset, &op);
            len += 1;
        }
        ops.finish()?;
        self.op_allocs = ops.into_allocations();
        self.body.finish();
        self.allocs = Some(fv.into_allocations());
        let Some(Ctx::Core(m)) = self.stack.last_mut() else { return Ok(()) };
        m.defined_funcs += 1;
        if len == 1 && locals_empty(body) {
            m.empty_bodies += 1;
        }
        if self.body.grows_in_loop {
            m.grows_in_loop.push(index);
        }
        let exported = !self.body.facts.is_empty() && m.exported_funcs.contains(&index);
        self.out.body_facts(index, exported, &self.body.facts);
        Ok(())
    }
}

fn locals_empty(body: &FunctionBody<'_>) -> bool {
    body.get_locals_reader().map(|l| l.get_count() == 0).unwrap_or(false)
}

impl From<wasmparser::BinaryReaderError> for InvalidModule {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        InvalidModule { message: e.message().to_string(), offset: Some(e.offset()) }
    }
}
