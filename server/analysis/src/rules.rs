//! Turning what the pass saw into findings, rule by rule, with the policy's severities.

use std::collections::HashMap;

use wasmparser::{MemoryType, NameMap, TableType};

use crate::body::{BodyFact, Source};
use crate::policy::{Policy, Rule, Severity, matches_pattern};
use crate::report::{Finding, Location, RuleId};

/// Placeholder in messages replaced by "function N" or "function N (`name`)" at the end.
const FUNC: &str = "{func}";

/// Defined functions needed before the empty-body pattern is considered.
pub const EMPTY_BODY_MIN_FUNCTIONS: u32 = 10_000;
/// Share of empty bodies (percent) that makes the pattern match.
pub const EMPTY_BODY_PERCENT: u64 = 90;

/// Import names (after leading underscores are stripped) that end the process.
const TERMINATORS: &[&str] = &["exit", "abort", "proc_exit", "exit_group"];
/// Import names (after leading underscores are stripped) that start another process.
const SPAWNERS: &[&str] = &[
    "spawn",
    "posix_spawn",
    "posix_spawnp",
    "proc_spawn",
    "process_spawn",
    "fork",
    "vfork",
    "execve",
    "execv",
    "execvp",
    "execvpe",
    "execl",
    "execlp",
    "system",
    "popen",
    "createprocess",
    "createprocessa",
    "createprocessw",
    "winexec",
    "shellexecute",
];

/// Facts about one core module (top-level or nested in a component).
#[derive(Default)]
pub struct ModuleFacts {
    pub first_finding: usize,
    pub imported_funcs: u32,
    pub memories: u32,
    pub tables: u32,
    pub globals: u32,
    pub globals_offset: Option<usize>,
    pub start: Option<(u32, usize)>,
    pub grows_in_loop: Vec<u32>,
    pub defined_funcs: u32,
    pub empty_bodies: u32,
    pub embedded_wasm: Option<usize>,
    pub terminates: bool,
    pub spawns: bool,
    /// The start function's name, from the name section.
    pub start_name: Option<String>,
    /// Indices of exported functions (the export section precedes the code).
    pub exported_funcs: Vec<u32>,
}

impl ModuleFacts {
    pub fn new(first_finding: usize) -> Self {
        ModuleFacts {
            first_finding,
            ..Self::default()
        }
    }

    pub fn note_import_name(&mut self, name: &str) {
        let name = name.trim_start_matches('_').to_ascii_lowercase();
        self.terminates |= TERMINATORS.contains(&name.as_str());
        self.spawns |= SPAWNERS.contains(&name.as_str());
    }
}

/// Collects findings under a policy.
pub struct Findings<'p> {
    policy: &'p Policy,
    list: Vec<Finding>,
    suspicious: bool,
}

fn at(offset: usize) -> Location {
    Location {
        offset: Some(offset),
        ..Location::default()
    }
}

fn in_func(function: u32, offset: usize) -> Location {
    Location {
        function: Some(function),
        offset: Some(offset),
        function_name: None,
    }
}

impl<'p> Findings<'p> {
    pub fn new(policy: &'p Policy, size: u64) -> Self {
        let mut this = Findings {
            policy,
            list: Vec::new(),
            suspicious: false,
        };
        if size > policy.max_module_bytes {
            this.suspicious(
                format!(
                    "The module is {size} bytes, over the {} bytes allowed before an upload is \
                     treated as suspicious; it is quarantined until an administrator reviews it. \
                     Strip debug sections (e.g. `wasm-opt --strip-debug`) or split the module.",
                    policy.max_module_bytes
                ),
                Location::default(),
            );
        }
        this
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    fn severity(&self, rule: Rule) -> Option<Severity> {
        self.policy.setting(rule).map(|s| s.severity)
    }

    fn push(&mut self, rule: RuleId, severity: Severity, message: String, location: Location) {
        self.list.push(Finding {
            rule,
            severity,
            message,
            location,
        });
    }

    fn suspicious(&mut self, message: String, location: Location) {
        self.suspicious = true;
        self.push(
            RuleId::SuspiciousModuleUpload,
            Severity::Critical,
            message,
            location,
        );
    }

    /// check_import_restrictions. A blocked import is at least high, whatever the rule's
    /// severity; an import in neither list gets the rule's severity (medium in the spec).
    pub fn import(&mut self, name: &str, offset: usize) {
        let Some(severity) = self.severity(Rule::CheckImportRestrictions) else {
            return;
        };
        let rule = RuleId::CheckImportRestrictions;
        let policy = self.policy;
        if let Some(p) = policy
            .blocked_imports
            .iter()
            .find(|p| matches_pattern(p, name))
        {
            let message = format!(
                "Import `{name}` is blocked by the pattern `{p}` in blocked_imports: rebuild the \
                 module without it, or ask an administrator to remove the pattern if the module \
                 really needs it."
            );
            self.push(rule, severity.max(Severity::High), message, at(offset));
        } else if !policy
            .allowed_imports
            .iter()
            .any(|p| matches_pattern(p, name))
        {
            let message = format!(
                "Import `{name}` is in neither allowed_imports nor blocked_imports: if the module \
                 needs it, an administrator can add it (or a pattern such as `{}.*`) to \
                 allowed_imports; otherwise rebuild the module without it.",
                name.split(['.', ':', '/']).next().unwrap_or(name)
            );
            self.push(rule, severity, message, at(offset));
        }
    }

    /// detect_unsafe_operations: a declared minimum over the limit gets the rule's severity (the
    /// module cannot be instantiated in the sandbox); a maximum over it is low (growth stops at
    /// the sandbox limit anyway).
    pub fn memory(&mut self, m: &mut ModuleFacts, ty: &MemoryType, offset: usize) {
        let index = m.memories;
        m.memories += 1;
        let Some(severity) = self.severity(Rule::DetectUnsafeOperations) else {
            return;
        };
        let limit = self.policy.limits.max_memory_bytes;
        let page = 1u128 << ty.page_size_log2.unwrap_or(16).min(64);
        let min = u128::from(ty.initial) * page;
        let rule = RuleId::DetectUnsafeOperations;
        if min > u128::from(limit) {
            let message = format!(
                "Memory {index} declares an initial size of {min} bytes, more than the sandbox \
                 limit of {limit} bytes, so it cannot be instantiated: lower the initial memory \
                 (e.g. the linker's --initial-memory) or ask for a higher max_memory."
            );
            self.push(rule, severity, message, at(offset));
        } else if let Some(max) = ty.maximum.map(|max| u128::from(max) * page)
            && max > u128::from(limit)
        {
            let message = format!(
                "Memory {index} declares a maximum of {max} bytes, above the sandbox limit of \
                 {limit} bytes: growth past the limit will fail at run time. Lower the maximum \
                 (e.g. the linker's --max-memory) to match."
            );
            self.push(rule, Severity::Low, message, at(offset));
        }
    }

    /// detect_unsafe_operations for tables, as for memories.
    pub fn table(&mut self, m: &mut ModuleFacts, ty: &TableType, offset: usize) {
        let index = m.tables;
        m.tables += 1;
        let Some(severity) = self.severity(Rule::DetectUnsafeOperations) else {
            return;
        };
        let limit = self.policy.limits.max_table_size;
        let rule = RuleId::DetectUnsafeOperations;
        if ty.initial > limit {
            let message = format!(
                "Table {index} declares {} initial elements, more than the sandbox limit of \
                 {limit}, so it cannot be instantiated: reduce the number of indirectly called \
                 functions or ask for a higher max_table_size.",
                ty.initial
            );
            self.push(rule, severity, message, at(offset));
        } else if let Some(max) = ty.maximum
            && max > limit
        {
            let message = format!(
                "Table {index} declares a maximum of {max} elements, above the sandbox limit of \
                 {limit}: growth past the limit will fail at run time. Lower the maximum to match."
            );
            self.push(rule, Severity::Low, message, at(offset));
        }
    }

    /// Findings from one function body.
    pub fn body_facts(&mut self, func: u32, exported: bool, facts: &[BodyFact]) {
        for fact in facts {
            match *fact {
                BodyFact::InescapableLoop { offset } => {
                    let Some(sev) = self.severity(Rule::DetectInfiniteLoops) else {
                        continue;
                    };
                    let message = format!(
                        "The loop at offset {offset:#x} in {FUNC} has no branch, return or trap \
                         that leaves it, so once entered it runs until the execution time limit \
                         stops it: add an exit condition (a `br_if` to an enclosing block, or a \
                         return)."
                    );
                    self.push(
                        RuleId::DetectInfiniteLoops,
                        sev,
                        message,
                        in_func(func, offset),
                    );
                }
                BodyFact::HaltLoop { offset } => {
                    if self.severity(Rule::DetectInfiniteLoops).is_none() {
                        continue;
                    }
                    let message = format!(
                        "The loop at offset {offset:#x} in {FUNC} is the compilers' halt idiom (an \
                         empty `loop br 0 end` followed by `unreachable`, e.g. Rust's `loop {{}}` \
                         on a path the compiler considers impossible): if it is ever reached it \
                         spins until the execution time limit. Usually harmless; rebuild with \
                         panic=abort or a trapping handler to remove it."
                    );
                    let loc = in_func(func, offset);
                    self.push(RuleId::DetectInfiniteLoops, Severity::Low, message, loc);
                }
                BodyFact::UnboundedRecursion { offset } => {
                    let Some(sev) = self.severity(Rule::DetectInfiniteLoops) else {
                        continue;
                    };
                    let message = format!(
                        "{FUNC} calls itself on every path and has no path that returns without \
                         calling itself again, so it recurses until the stack limit traps: add \
                         a base case that returns."
                    );
                    self.push(
                        RuleId::DetectInfiniteLoops,
                        sev,
                        message,
                        in_func(func, offset),
                    );
                }
                BodyFact::GrowFromInput {
                    offset,
                    table,
                    source,
                } => {
                    let Some(sev) = self.severity(Rule::DetectUnsafeOperations) else {
                        continue;
                    };
                    // Only the host can pick an exported function's inputs directly; inside the
                    // module, callers (allocators, Go's stack-passed arguments) usually bound it.
                    let (sev, who) = if exported {
                        (sev, "the host calls this exported function with")
                    } else {
                        (sev.min(Severity::Medium), "the module's callers pass in")
                    };
                    let (what, op) = if table {
                        ("table", "table.grow")
                    } else {
                        ("memory", "memory.grow")
                    };
                    let from = match source {
                        Source::Param(i) => format!("its parameter {i}"),
                        Source::Load => "a value loaded from memory".to_string(),
                    };
                    let message = format!(
                        "{FUNC} passes {from} straight to `{op}` with no comparison anywhere \
                         before it, so whatever {who} decides how much the {what} grows (up to \
                         the sandbox limit): clamp the requested size before growing."
                    );
                    self.push(
                        RuleId::DetectUnsafeOperations,
                        sev,
                        message,
                        in_func(func, offset),
                    );
                }
                BodyFact::GrowInLoopDropped { offset } => {
                    let Some(sev) = self.severity(Rule::DetectMemoryLeaks) else {
                        continue;
                    };
                    let message = format!(
                        "{FUNC} grows memory inside a loop and drops the result of `memory.grow` \
                         (the address of the new pages), so nothing can use the pages it adds: \
                         each iteration leaks memory. Keep the returned address and reuse the \
                         region, or grow once outside the loop."
                    );
                    self.push(
                        RuleId::DetectMemoryLeaks,
                        sev,
                        message,
                        in_func(func, offset),
                    );
                }
            }
        }
    }

    /// detect_unsafe_operations, low: a start function (reported when the start section is
    /// read, so that the name section can still name it).
    pub fn start(&mut self, func: u32, offset: usize) {
        if self.severity(Rule::DetectUnsafeOperations).is_none() {
            return;
        }
        let message = format!(
            "The module has a start function ({FUNC}) that runs as soon as it is \
             instantiated, before any export is called: check that it only initialises \
             state, or export it (e.g. as `_initialize`) so the host calls it explicitly."
        );
        self.push(
            RuleId::DetectUnsafeOperations,
            Severity::Low,
            message,
            in_func(func, offset),
        );
    }

    /// Checks made once a core module is complete: globals, the start function and the
    /// suspicious patterns.
    pub fn module_end(&mut self, m: &ModuleFacts, end: usize) {
        if let Some(severity) = self.severity(Rule::DetectUnsafeOperations) {
            let max = self.policy.limits.max_globals;
            if m.globals > max {
                let message = format!(
                    "The module has {} globals, more than the sandbox's max_globals of {max}: \
                     it will be refused at instantiation. Merge globals into linear memory or \
                     ask for a higher limit.",
                    m.globals
                );
                self.push(
                    RuleId::DetectUnsafeOperations,
                    severity,
                    message,
                    at(m.globals_offset.unwrap_or(end)),
                );
            }
        }
        if self.policy.suspicious_patterns {
            self.patterns(m);
        }
    }

    /// ids.yml `contains_suspicious_patterns`, see the crate docs.
    fn patterns(&mut self, m: &ModuleFacts) {
        if m.terminates && m.spawns {
            let message = "The module imports both a process-exit function and a \
                process-spawning function (exec, spawn, system, fork…), a combination ordinary \
                sandboxed modules do not need: it is quarantined; remove those imports."
                .to_string();
            self.suspicious(message, Location::default());
        }
        if let Some((func, offset)) = m.start
            && m.grows_in_loop.contains(&func)
        {
            let message = format!(
                "The start function ({FUNC}) grows memory inside a loop, so merely \
                 instantiating the module consumes memory: it is quarantined; move the growth \
                 out of the start function and bound it."
            );
            let location = Location {
                function_name: m.start_name.clone(),
                ..in_func(func, offset)
            };
            self.suspicious(message, location);
        }
        if let Some(offset) = m.embedded_wasm {
            let message = "A data segment starts with the WebAssembly magic number: the module \
                carries another module hidden in its data, which the analysis cannot see into. \
                It is quarantined; ship the inner module separately (or as a component)."
                .to_string();
            self.suspicious(message, at(offset));
        }
        let defined = m.defined_funcs;
        if defined >= EMPTY_BODY_MIN_FUNCTIONS
            && u64::from(m.empty_bodies) * 100 >= u64::from(defined) * EMPTY_BODY_PERCENT
        {
            let message = format!(
                "{} of the module's {defined} functions have empty bodies, a padding pattern \
                 used to hide code or slow analysis: it is quarantined; rebuild the module \
                 with dead functions removed (e.g. `wasm-opt -O`).",
                m.empty_bodies
            );
            self.suspicious(message, Location::default());
        }
    }

    /// Attach names from a name section to the findings of the module whose findings start
    /// at `first`.
    pub fn name_functions(&mut self, m: &mut ModuleFacts, map: NameMap<'_>) {
        let first = m.first_finding;
        if let Some((start, _)) = m.start {
            let named = map.clone().into_iter().flatten().find(|n| n.index == start);
            m.start_name = named.map(|n| n.name.to_string());
        }
        let mut wanted: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, f) in self.list.iter().enumerate().skip(first) {
            if let Some(func) = f.location.function {
                wanted.entry(func).or_default().push(i);
            }
        }
        if wanted.is_empty() {
            return;
        }
        for naming in map.into_iter().flatten() {
            for &i in wanted
                .get(&naming.index)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(f) = self.list.get_mut(i) {
                    f.location.function_name = Some(naming.name.to_string());
                }
            }
        }
    }

    /// The findings with function labels filled in, and whether the module is suspicious.
    pub fn finish(mut self) -> (Vec<Finding>, bool) {
        for f in &mut self.list {
            if let Some(func) = f.location.function {
                let label = match &f.location.function_name {
                    Some(name) => format!("function {func} (`{name}`)"),
                    None => format!("function {func}"),
                };
                f.message = f.message.replace(FUNC, &label);
                if let Some(first) = f.message.get(..1)
                    && first == "f"
                {
                    f.message.replace_range(..1, "F");
                }
            }
        }
        (self.list, self.suspicious)
    }
}
