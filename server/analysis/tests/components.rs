//! WASI 0.2 components are accepted and analysed: validation, imports (network interfaces
//! flagged), size and the rules of their inner core modules.

use analysis::{ModuleKind, Policy, RuleId, Verdict, analyze, is_network_import};

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A command component importing sockets, an HTTP handler interface and the environment.
const NETWORKED: &str = r#"(component
  (import "wasi:cli/environment@0.2.0" (instance))
  (import "wasi:sockets/tcp@0.2.0" (instance))
  (import "wasi:http/outgoing-handler@0.2.0" (instance))
  (core module $m (func (export "run") (result i32) (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))"#;

#[test]
fn a_component_is_accepted_with_its_imports_and_exports() {
    let mut policy = Policy::default();
    policy.allowed_imports.push("wasi:*".into());
    let report = analyze(&wasm(NETWORKED), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.kind, ModuleKind::Component);
    assert_eq!(
        report.imports,
        [
            "wasi:cli/environment@0.2.0",
            "wasi:sockets/tcp@0.2.0",
            "wasi:http/outgoing-handler@0.2.0"
        ]
    );
    assert_eq!(report.exports, ["wasi:cli/run@0.2.0"]);
    assert_eq!(
        report.network_imports,
        ["wasi:sockets/tcp@0.2.0", "wasi:http/outgoing-handler@0.2.0"]
    );
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.verdict, Verdict::Active);
}

#[test]
fn a_component_import_outside_the_allowed_list_is_a_finding() {
    let report = analyze(&wasm(NETWORKED), &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    let imports: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == RuleId::CheckImportRestrictions)
        .collect();
    assert_eq!(imports.len(), 3, "{:?}", report.findings);
}

#[test]
fn the_rules_run_in_a_component_s_inner_modules() {
    let spin = r#"(component (core module (func (export "spin") (loop $l (br $l)))))"#;
    let report = analyze(&wasm(spin), &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == RuleId::DetectInfiniteLoops),
        "{:?}",
        report.findings
    );
}

#[test]
fn an_invalid_component_is_refused() {
    // An inner core function that declares a result and returns none: ill-typed.
    let bad = wasm(r#"(component (core module (func (result i32))))"#);
    match analyze(&bad, &Policy::default()) {
        Err(err) => assert!(err.offset.is_some(), "{err}"),
        Ok(report) => panic!("an ill-typed component was accepted: {report:?}"),
    }
    let mut truncated = wasm(NETWORKED);
    truncated.truncate(truncated.len() - 3);
    assert!(analyze(&truncated, &Policy::default()).is_err());
}

#[test]
fn a_component_over_the_size_limit_is_suspicious() {
    let policy = Policy {
        max_module_bytes: 16,
        ..Policy::default()
    };
    let report = analyze(&wasm(NETWORKED), &policy).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.suspicious);
    assert_eq!(report.verdict, Verdict::Quarantined);
}

#[test]
fn only_sockets_and_http_interfaces_are_network_imports() {
    assert!(is_network_import("wasi:sockets/ip-name-lookup@0.2.3"));
    assert!(is_network_import("wasi:http/types@0.2.0"));
    assert!(!is_network_import("wasi:cli/environment@0.2.0"));
    assert!(!is_network_import("wasi_snapshot_preview1.sock_accept"));
}
