//! `cargo bench -p sandbox --bench component_prepare`
//!
//! The cost of preparing a WASI 0.2 command component from scratch (check, instrument, compile,
//! pre-link; nothing cached): a preview 1 "hello" program adapted with `wit-component` and the
//! preview 1 command adapter of wasmtime 48, the shape of most uploaded components. Each round
//! prepares it once in a fresh `Sandbox` with an empty cache directory (creating the sandbox is
//! not timed). Prints the median and the spread, then, for attribution, the median time of
//! instrumenting its inner core modules alone (`sandbox::instrument` on each, i.e. the core-module
//! instrumentation, without their validation and the re-encoding of the component around them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use sandbox::{Limits, PreparedFrom, Sandbox, SandboxOptions};
use wasmparser::{Parser, Payload};

const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

const ROUNDS: usize = 21;

fn main() {
    let component = common::adapt(HELLO);
    let mut samples: Vec<Duration> = (0..ROUNDS + 1)
        .map(|_| {
            let cache = tempfile::tempdir().unwrap();
            let sandbox = Sandbox::new(SandboxOptions {
                limits: Limits::default(),
                cache_dir: cache.path().join("cache"),
                max_instances: 4,
                extra_tls_roots: Vec::new(),
                prepared_cache: Default::default(),
            })
            .unwrap();
            let t = Instant::now();
            let prepared = sandbox.prepare(&component).unwrap();
            let elapsed = t.elapsed();
            assert_eq!(prepared.from(), PreparedFrom::Compiled);
            elapsed
        })
        .collect();
    samples.remove(0); // warm-up
    samples.sort();
    println!(
        "prepare of an adapted hello component ({} bytes): median {:?}, min {:?}, max {:?} over {ROUNDS} rounds",
        component.len(),
        samples[ROUNDS / 2],
        samples[0],
        samples[ROUNDS - 1],
    );

    let modules: Vec<&[u8]> = Parser::new(0)
        .parse_all(&component)
        .filter_map(|p| match p.unwrap() {
            Payload::ModuleSection {
                unchecked_range, ..
            } => Some(&component[unchecked_range]),
            _ => None,
        })
        .collect();
    let limits = Limits::default();
    let mut instrument: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            let bytes: usize = modules
                .iter()
                .map(|m| sandbox::instrument(m, &limits).unwrap().len())
                .sum();
            let elapsed = t.elapsed();
            assert!(bytes > 0);
            elapsed
        })
        .collect();
    instrument.sort();
    let original: usize = modules.iter().map(|m| m.len()).sum();
    let instrumented: usize = modules
        .iter()
        .map(|m| sandbox::instrument(m, &limits).unwrap().len())
        .sum();
    println!(
        "of which instrumenting its {} core modules ({original} -> {instrumented} bytes): median {:?}",
        modules.len(),
        instrument[ROUNDS / 2],
    );
}
