//! Bytes that are not a valid module are refused with the parser's reason and offset.

use analysis::{InvalidModule, Policy, analyze};

fn refuse(bytes: &[u8]) -> InvalidModule {
    match analyze(bytes, &Policy::default()) {
        Ok(report) => panic!("accepted: {report:?}"),
        Err(e) => e,
    }
}

#[test]
fn empty_input_is_refused_as_empty() {
    let e = refuse(&[]);
    assert!(e.message.contains("empty"), "{e}");
    assert_eq!(e.offset, Some(0));
}

#[test]
fn garbage_is_refused_for_its_magic_number() {
    let e = refuse(b"MZ\x90\x00 this is not WebAssembly at all");
    assert!(e.message.contains("magic header not detected"), "{e}");
    assert_eq!(e.offset, Some(0));
    assert!(e.to_string().contains("at byte offset 0x0"), "{e}");
}

#[test]
fn a_valid_module_cut_short_is_refused_as_truncated() {
    let bytes =
        wat::parse_str(r#"(module (memory 1) (func (export "f") (result i32) (i32.const 7)))"#)
            .unwrap_or_default();
    assert!(analyze(&bytes, &Policy::default()).is_ok());
    let cut = bytes.len() - 3;
    let e = refuse(&bytes[..cut]);
    assert!(e.message.contains("unexpected end"), "{e}");
    assert!(e.offset.is_some_and(|o| o <= cut && o > 8), "{e:?}");
}

#[test]
fn a_module_with_a_type_error_is_refused_at_the_bad_instruction() {
    let bytes = wat::parse_str("(module (func (result i32) (i64.const 0)))").unwrap_or_default();
    let e = refuse(&bytes);
    assert!(e.message.contains("type mismatch"), "{e}");
    // The error points into the code section, at or after the function's body.
    let offset = e.offset.unwrap_or_default();
    assert!(offset > 8 && offset <= bytes.len(), "{e:?}");
}

#[test]
fn a_proposal_wasmtime_leaves_off_by_default_is_refused() {
    // Stack switching (`cont` types) is not in wasmtime 48's default features.
    let bytes = wat::parse_str("(module (type $f (func)) (type $c (cont $f)))").unwrap_or_default();
    let e = refuse(&bytes);
    assert!(e.message.contains("stack switching"), "{e}");
}

#[test]
fn the_error_message_names_reason_and_offset() {
    let e = InvalidModule {
        message: "type mismatch".into(),
        offset: Some(0x2a),
    };
    assert_eq!(
        e.to_string(),
        "invalid WebAssembly: type mismatch (at byte offset 0x2a)"
    );
}

#[test]
fn simd_tail_calls_and_exceptions_that_wasmtime_enables_are_accepted() {
    let bytes = wat::parse_str(
        r#"(module
             (tag $e)
             (func $lane (export "lane") (result i32)
               (i32x4.extract_lane 1 (v128.const i32x4 1 2 3 4)))
             (func $tail (result i32) (return_call $lane))
             (func $throws (throw $e)))"#,
    )
    .unwrap_or_default();
    let report = analyze(&bytes, &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn an_invalid_simd_instruction_is_refused() {
    let bytes = wat::parse_str(
        "(module (func (result i64) (i32x4.extract_lane 1 (v128.const i32x4 1 2 3 4))))",
    )
    .unwrap_or_default();
    assert!(refuse(&bytes).message.contains("type mismatch"));
}
