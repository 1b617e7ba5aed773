//! The single pass: parse, validate and collect facts payload by payload; function bodies are
//! validated and scanned operator by operator with the same reader.

use wasmparser::{Encoding, KnownCustom, Name, Parser, Payload, TypeRef, ValidPayload, Validator};

use crate::InvalidModule;
use crate::funcs::Pending;
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

struct Pass<'a, 'p> {
    validator: Validator,
    stack: Vec<Ctx>,
    kind: ModuleKind,
    imports: Vec<String>,
    exports: Vec<String>,
    out: Findings<'p>,
    /// Bodies of the current code section, checked together when it ends.
    pending: Vec<Pending<'a>>,
    threads: usize,
}

pub fn run(bytes: &[u8], out: Findings<'_>, threads: usize) -> Result<Scanned, InvalidModule> {
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
        pending: Vec::new(),
        threads,
    };
    for payload in parser.parse_all(bytes) {
        pass.payload(&payload?)?;
    }
    pass.flush()?;
    let (findings, suspicious) = pass.out.finish();
    Ok(Scanned {
        kind: pass.kind,
        imports: pass.imports,
        exports: pass.exports,
        findings,
        suspicious,
    })
}

impl<'a> Pass<'a, '_> {
    fn top_level(&self) -> bool {
        self.stack.len() == 1
    }

    fn core(&mut self) -> Option<&mut ModuleFacts> {
        match self.stack.last_mut() {
            Some(Ctx::Core(m)) => Some(m),
            _ => None,
        }
    }

    fn payload(&mut self, payload: &Payload<'a>) -> Result<(), InvalidModule> {
        let valid = self.validator.payload(payload)?;
        if let ValidPayload::Func(func, body) = valid {
            self.pending.push((func, body));
            return Ok(());
        }
        self.flush()?;
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
                    let Some(Ctx::Core(m)) = self.stack.last_mut() else {
                        continue;
                    };
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
                        let Ok(Name::Function(map)) = name else {
                            continue;
                        };
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

    /// Check the bodies collected so far (a whole code section) and record what they yielded.
    fn flush(&mut self) -> Result<(), InvalidModule> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let outcomes = crate::funcs::check(std::mem::take(&mut self.pending), self.threads)?;
        let Some(Ctx::Core(m)) = self.stack.last_mut() else {
            return Ok(());
        };
        for o in outcomes {
            m.defined_funcs += 1;
            m.empty_bodies += u32::from(o.empty);
            if o.grows_in_loop {
                m.grows_in_loop.push(o.index);
            }
            if !o.facts.is_empty() {
                let exported = m.exported_funcs.contains(&o.index);
                self.out.body_facts(o.index, exported, &o.facts);
            }
        }
        Ok(())
    }
}

impl From<wasmparser::BinaryReaderError> for InvalidModule {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        InvalidModule {
            message: e.message().to_string(),
            offset: Some(e.offset()),
        }
    }
}
