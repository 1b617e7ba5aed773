//! The policy decides which rules run, their severities, patterns, limits and thresholds.

use analysis::{Policy, Rule, RuleId, Severity, Verdict, analyze};

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
}

const SPIN: &str = r#"(module (func (export "spin") (loop $l (nop) (br $l))))"#;
const WASI: &str = r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#;

fn set(policy: &mut Policy, rule: Rule, severity: Severity, enabled: bool) {
    for s in policy.rules.iter_mut().filter(|s| s.rule == rule) {
        s.severity = severity;
        s.enabled = enabled;
    }
}

#[test]
fn a_disabled_rule_produces_no_findings() {
    let mut policy = Policy::default();
    set(
        &mut policy,
        Rule::DetectInfiniteLoops,
        Severity::High,
        false,
    );
    let report = analyze(&wasm(SPIN), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!((report.risk_score, report.verdict), (0, Verdict::Active));
}

#[test]
fn a_rule_missing_from_the_policy_is_off() {
    let mut policy = Policy::default();
    policy
        .rules
        .retain(|s| s.rule != Rule::CheckImportRestrictions);
    let report = analyze(&wasm(WASI), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.findings.is_empty());
}

#[test]
fn a_rule_takes_its_severity_from_the_policy() {
    let mut policy = Policy::default();
    set(
        &mut policy,
        Rule::DetectInfiniteLoops,
        Severity::Critical,
        true,
    );
    let report = analyze(&wasm(SPIN), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.findings[0].severity, Severity::Critical);
    assert_eq!(report.risk_score, 10);
}

#[test]
fn a_blocked_import_stays_high_even_when_the_rule_is_low() {
    let mut policy = Policy::default();
    set(
        &mut policy,
        Rule::CheckImportRestrictions,
        Severity::Low,
        true,
    );
    let report = analyze(&wasm(r#"(module (import "env" "abort" (func)))"#), &policy)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.findings[0].severity, Severity::High);
}

#[test]
fn a_wildcard_pattern_allows_a_whole_import_module() {
    let mut policy = Policy::default();
    policy
        .allowed_imports
        .push("wasi_snapshot_preview1.*".into());
    let report = analyze(&wasm(WASI), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn a_blocked_pattern_wins_over_an_allowed_one() {
    let mut policy = Policy::default();
    policy
        .allowed_imports
        .push("wasi_snapshot_preview1.*".into());
    policy.blocked_imports.push("*.fd_write".into());
    let report = analyze(&wasm(WASI), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.findings[0].rule, RuleId::CheckImportRestrictions);
    assert_eq!(report.findings[0].severity, Severity::High);
    assert!(report.findings[0].message.contains("`*.fd_write`"));
}

#[test]
fn thresholds_come_from_the_policy() {
    let mut policy = Policy {
        medium_risk_threshold: 6,
        ..Policy::default()
    };
    let report = analyze(&wasm(WASI), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.risk_score, report.verdict), (5, Verdict::Active));
    policy.high_risk_threshold = 5;
    let report = analyze(&wasm(WASI), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Quarantined);
}

#[test]
fn limits_come_from_the_policy() {
    let mut policy = Policy::default();
    policy.limits.max_memory_bytes = 65_536;
    policy.limits.max_table_size = 1;
    policy.limits.max_globals = 0;
    let module = wasm("(module (memory 2) (table 2 funcref) (global i32 (i32.const 0)))");
    let report = analyze(&module, &policy).unwrap_or_else(|e| panic!("{e}"));
    let messages: Vec<_> = report.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(report.findings.len(), 3, "{messages:?}");
    assert!(report.findings.iter().all(|f| f.severity == Severity::High));
}

#[test]
fn a_module_over_the_size_limit_is_suspicious_and_quarantined() {
    let policy = Policy {
        max_module_bytes: 10,
        ..Policy::default()
    };
    let report = analyze(&wasm("(module (memory 1))"), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.suspicious);
    assert_eq!(report.findings[0].rule, RuleId::SuspiciousModuleUpload);
    assert!(report.findings[0].message.contains("over the 10 bytes"));
    assert_eq!(
        (report.risk_score, report.verdict),
        (10, Verdict::Quarantined)
    );
}

#[test]
fn thousands_of_empty_functions_are_a_suspicious_padding_pattern() {
    let padded = format!("(module {})", "(func)".repeat(10_000));
    let report = analyze(&wasm(&padded), &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.suspicious);
    assert!(
        report.findings[0]
            .message
            .contains("10000 of the module's 10000 functions")
    );
    let fewer = format!("(module {})", "(func)".repeat(9_999));
    let report = analyze(&wasm(&fewer), &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.suspicious);
}

#[test]
fn suspicious_patterns_apply_even_when_every_rule_is_disabled() {
    let mut policy = Policy::default();
    policy.rules.clear();
    let module = wasm(r#"(module (memory 1) (data (i32.const 0) "\00asm\01\00\00\00"))"#);
    let report = analyze(&module, &policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.suspicious);
    assert_eq!(report.verdict, Verdict::Quarantined);
}
