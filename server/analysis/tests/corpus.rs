//! Every WAT file in `tests/corpus/` analysed under the default (spec) policy, with its exact
//! findings (rule, severity, function, message substring), score and verdict.

use std::path::Path;

use analysis::{ModuleKind, Policy, Report, RuleId, Severity, Verdict, analyze};

use RuleId::*;
use Severity::*;

/// (rule, severity, function index, a substring of the message)
type Expected = (RuleId, Severity, Option<u32>, &'static str);

struct Case {
    file: &'static str,
    score: u8,
    verdict: Verdict,
    findings: &'static [Expected],
}

const fn case(
    file: &'static str,
    score: u8,
    verdict: Verdict,
    findings: &'static [Expected],
) -> Case {
    Case {
        file,
        score,
        verdict,
        findings,
    }
}

const ACTIVE: Verdict = Verdict::Active;
const REVIEW: Verdict = Verdict::Review;
const QUARANTINED: Verdict = Verdict::Quarantined;

const CASES: &[Case] = &[
    case("clean_add.wat", 0, ACTIVE, &[]),
    case("clean_counting_loop.wat", 0, ACTIVE, &[]),
    case("recursion_with_base_case.wat", 0, ACTIVE, &[]),
    case("grow_checked.wat", 0, ACTIVE, &[]),
    case("grow_in_loop_used.wat", 0, ACTIVE, &[]),
    case("component_clean.wat", 0, ACTIVE, &[]),
    case(
        "import_blocked.wat",
        8,
        QUARANTINED,
        &[(
            CheckImportRestrictions,
            High,
            None,
            "Import `env.exit` is blocked by the pattern `env.exit`",
        )],
    ),
    case(
        "import_unlisted.wat",
        5,
        REVIEW,
        &[(
            CheckImportRestrictions,
            Medium,
            None,
            "Import `wasi_snapshot_preview1.fd_write` is in neither allowed_imports nor blocked_imports",
        )],
    ),
    case(
        "infinite_loop.wat",
        8,
        QUARANTINED,
        &[(
            DetectInfiniteLoops,
            High,
            Some(0),
            "in function 0 (`spin`) has no branch, return or trap that leaves it",
        )],
    ),
    case(
        "infinite_loop_br_table.wat",
        8,
        QUARANTINED,
        &[(
            DetectInfiniteLoops,
            High,
            Some(1),
            "in function 1 (`dispatch`) has no branch",
        )],
    ),
    case(
        "halt_idiom.wat",
        2,
        ACTIVE,
        &[(DetectInfiniteLoops, Low, Some(0), "halt idiom")],
    ),
    case(
        "recursion.wat",
        9,
        QUARANTINED,
        &[
            (CheckImportRestrictions, Medium, None, "Import `host.log`"),
            (
                DetectInfiniteLoops,
                High,
                Some(1),
                "Function 1 (`forever`) calls itself on every path",
            ),
        ],
    ),
    case(
        "grow_from_param_export.wat",
        8,
        QUARANTINED,
        &[(
            DetectUnsafeOperations,
            High,
            Some(0),
            "passes its parameter 0 straight to `memory.grow`",
        )],
    ),
    case(
        "grow_from_load_internal.wat",
        5,
        REVIEW,
        &[(
            DetectUnsafeOperations,
            Medium,
            Some(0),
            "passes a value loaded from memory straight to `memory.grow`",
        )],
    ),
    case(
        "table_grow_from_param.wat",
        8,
        QUARANTINED,
        &[(
            DetectUnsafeOperations,
            High,
            Some(0),
            "straight to `table.grow`",
        )],
    ),
    case(
        "start_function.wat",
        2,
        ACTIVE,
        &[(
            DetectUnsafeOperations,
            Low,
            Some(0),
            "has a start function (function 0 (`init`))",
        )],
    ),
    case(
        "memory_too_big.wat",
        8,
        QUARANTINED,
        &[(
            DetectUnsafeOperations,
            High,
            None,
            "initial size of 131072000 bytes",
        )],
    ),
    case(
        "memory_max_too_big.wat",
        2,
        ACTIVE,
        &[(
            DetectUnsafeOperations,
            Low,
            None,
            "maximum of 4294967296 bytes",
        )],
    ),
    case(
        "table_too_big.wat",
        8,
        QUARANTINED,
        &[(
            DetectUnsafeOperations,
            High,
            None,
            "declares 1001 initial elements",
        )],
    ),
    case(
        "too_many_globals.wat",
        8,
        QUARANTINED,
        &[(
            DetectUnsafeOperations,
            High,
            None,
            "has 101 globals, more than the sandbox's max_globals of 100",
        )],
    ),
    case(
        "memory_leak.wat",
        5,
        REVIEW,
        &[(
            DetectMemoryLeaks,
            Medium,
            Some(0),
            "drops the result of `memory.grow`",
        )],
    ),
    case(
        "suspicious_exit_and_spawn.wat",
        10,
        QUARANTINED,
        &[
            (CheckImportRestrictions, Medium, None, "`wasi.proc_exit`"),
            (CheckImportRestrictions, Medium, None, "`env.system`"),
            (
                SuspiciousModuleUpload,
                Critical,
                None,
                "process-exit function and a process-spawning function",
            ),
        ],
    ),
    case(
        "suspicious_start_grows.wat",
        10,
        QUARANTINED,
        &[
            (DetectUnsafeOperations, Low, Some(0), "has a start function"),
            (
                SuspiciousModuleUpload,
                Critical,
                Some(0),
                "start function (function 0 (`bomb`)) grows memory inside a loop",
            ),
        ],
    ),
    case(
        "suspicious_embedded_module.wat",
        10,
        QUARANTINED,
        &[(
            SuspiciousModuleUpload,
            Critical,
            None,
            "starts with the WebAssembly magic number",
        )],
    ),
    case(
        "component_infinite_loop.wat",
        8,
        QUARANTINED,
        &[(
            DetectInfiniteLoops,
            High,
            Some(0),
            "has no branch, return or trap",
        )],
    ),
];

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn analyse_file(file: &str) -> Report {
    let path = corpus_dir().join(file);
    let bytes = wat::parse_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    analyze(&bytes, &Policy::default()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn mismatch(case: &Case, report: &Report) -> Option<String> {
    let got: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.rule, f.severity, f.location.function, f.message.as_str()))
        .collect();
    let same = got.len() == case.findings.len()
        && got
            .iter()
            .zip(case.findings)
            .all(|(g, e)| (g.0, g.1, g.2) == (e.0, e.1, e.2) && g.3.contains(e.3));
    if same && report.risk_score == case.score && report.verdict == case.verdict {
        return None;
    }
    Some(format!(
        "{}: expected score {} {:?} with {:#?}\n   got score {} {:?} with {:#?}",
        case.file, case.score, case.verdict, case.findings, report.risk_score, report.verdict, got
    ))
}

#[test]
fn every_corpus_module_has_exactly_its_expected_findings_score_and_verdict() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| mismatch(case, &analyse_file(case.file)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_wat_file_in_the_corpus_has_an_expectation() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap_or_else(|e| panic!("{e}")) {
        let name = entry
            .unwrap_or_else(|e| panic!("{e}"))
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".wat") && !CASES.iter().any(|c| c.file == name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "corpus files without expectations: {missing:?}"
    );
}

#[test]
fn suspicious_findings_mark_the_report_suspicious_and_others_do_not() {
    for case in CASES {
        let report = analyse_file(case.file);
        let expected = case.findings.iter().any(|f| f.0 == SuspiciousModuleUpload);
        assert_eq!(report.suspicious, expected, "{}", case.file);
    }
}

#[test]
fn function_names_come_from_the_name_section() {
    let report = analyse_file("infinite_loop.wat");
    assert_eq!(
        report.findings[0].location.function_name.as_deref(),
        Some("spin")
    );
    let report = analyse_file("memory_too_big.wat");
    assert_eq!(report.findings[0].location.function_name, None);
}

#[test]
fn a_loop_finding_points_at_the_loop_instruction() {
    let bytes = wat::parse_file(corpus_dir().join("infinite_loop.wat")).unwrap_or_default();
    let report = analyze(&bytes, &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    let offset = report.findings[0].location.offset.unwrap_or_default();
    assert_eq!(bytes[offset], 0x03, "0x03 is the `loop` opcode");
}

#[test]
fn the_report_lists_kind_imports_exports_and_size() {
    let report = analyse_file("import_unlisted.wat");
    assert_eq!(report.kind, ModuleKind::Core);
    assert_eq!(
        report.imports,
        ["wasi_snapshot_preview1.fd_write", "env.memory"]
    );
    let report = analyse_file("clean_counting_loop.wat");
    assert_eq!(report.exports, ["sum", "find", "until"]);
    assert!(report.size_bytes > 8);
    assert_eq!(
        analyse_file("component_clean.wat").kind,
        ModuleKind::Component
    );
}

#[test]
fn a_report_serializes_with_snake_case_rule_ids() {
    let json = serde_json::to_value(analyse_file("memory_leak.wat")).unwrap_or_default();
    assert_eq!(json["findings"][0]["rule"], "detect_memory_leaks");
    assert_eq!(json["findings"][0]["severity"], "medium");
    assert_eq!(json["verdict"], "review");
    assert_eq!(json["kind"], "core");
}
