//! Real modules from npm packages (see `thirdparty/README.md`) must not be flagged: no high or
//! critical finding and no quarantine under the spec's policy.

use std::path::Path;

use analysis::{Policy, Report, Severity, Verdict, analyze};

fn analyse(file: &str) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/thirdparty")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    analyze(&bytes, &Policy::default()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn assert_not_flagged(file: &str) -> Report {
    let report = analyse(file);
    let serious: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::High)
        .collect();
    assert!(serious.is_empty(), "{file}: {serious:#?}");
    assert_ne!(report.verdict, Verdict::Quarantined, "{file}");
    assert!(!report.suspicious, "{file}");
    assert!(!report.exports.is_empty(), "{file}: exports were read");
    report
}

#[test]
fn lz4_wasm_built_with_rust_is_not_flagged() {
    let report = assert_not_flagged("lz4_wasm_bg.wasm");
    // Its `loop {}` for an impossible path is reported, but only as the low halt idiom.
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.message.contains("halt idiom"))
    );
}

#[test]
fn the_squoosh_png_codec_built_with_rust_is_not_flagged() {
    assert_not_flagged("squoosh_png_bg.wasm");
}

#[test]
fn web_tree_sitter_built_with_emscripten_is_not_flagged() {
    assert_not_flagged("web-tree-sitter.wasm");
}

#[test]
fn the_tree_sitter_javascript_side_module_is_not_flagged() {
    let report = assert_not_flagged("tree-sitter-javascript.wasm");
    assert!(report.imports.iter().any(|i| i == "env.memory"));
}

#[test]
fn sql_js_built_with_emscripten_is_not_flagged() {
    assert_not_flagged("sql-wasm.wasm");
}

#[test]
fn unlisted_imports_of_real_modules_put_them_in_review_not_quarantine() {
    // wasm-bindgen's `wbg.*` imports are in neither list of the spec's policy: medium findings,
    // capped at score 7, below the high threshold of 8.
    let report = analyse("squoosh_png_bg.wasm");
    assert_eq!(report.verdict, Verdict::Review);
    assert_eq!(report.risk_score, 7);
    let mut policy = Policy::default();
    policy.allowed_imports.push("wbg.*".into());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/thirdparty/squoosh_png_bg.wasm");
    let bytes = std::fs::read(path).unwrap_or_default();
    let report = analyze(&bytes, &policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (report.risk_score, report.verdict),
        (0, Verdict::Active),
        "{:#?}",
        report.findings
    );
}
