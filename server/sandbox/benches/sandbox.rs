//! `cargo bench -p sandbox --bench sandbox`
//!
//! 1. Instantiate-and-call of a trivial export through `Sandbox::run` against plain wasmtime
//!    (`Module::new` once; `Linker::instantiate` + call per iteration), as a ratio.
//! 2. The cost of the instrumentation: a loop-heavy function, instrumented vs not, both on a
//!    plain engine, and through the full sandbox (instrumentation + epoch checks).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use sandbox::{Capabilities, Invocation, Limits, Sandbox, SandboxOptions, Value};
use wasmtime::{Engine, Linker, Module, Store};

const TRIVIAL: &str = r#"(module (func (export "answer") (result i32) (i32.const 42)))"#;
const LOOPY: &str = r#"(module (func (export "sum") (param $n i32) (result i32) (local $acc i32)
  (block $done (loop $l
    (br_if $done (i32.eqz (local.get $n)))
    (local.set $acc (i32.add (local.get $acc) (i32.xor (local.get $n) (local.get $acc))))
    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
    (br $l)))
  (local.get $acc)))"#;
const LOOP_N: i32 = 1_000_000;

/// Median time per iteration over `rounds` rounds of `iters` iterations.
fn measure(rounds: usize, iters: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters {
        f();
    }
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters
        })
        .collect();
    samples.sort();
    samples[rounds / 2]
}

fn plain_call(engine: &Engine, module: &Module, name: &str, arg: Option<i32>) -> Duration {
    let linker = Linker::new(engine);
    let iters = if arg.is_some() { 5 } else { 2000 };
    measure(11, iters, || {
        let mut store = Store::new(engine, ());
        let instance = linker.instantiate(&mut store, module).unwrap();
        let r = match arg {
            None => instance.get_typed_func::<(), i32>(&mut store, name).unwrap().call(&mut store, ()),
            Some(a) => instance.get_typed_func::<i32, i32>(&mut store, name).unwrap().call(&mut store, a),
        };
        black_box(r.unwrap());
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let limits = Limits { max_iterations: Some(10 * LOOP_N as u64), ..Limits::default() };
    let sandbox = Sandbox::new(SandboxOptions {
        limits: limits.clone(),
        cache_dir: cache.path().to_path_buf(),
        max_instances: 16,
        extra_tls_roots: Vec::new(),
    })
    .unwrap();
    let caps = Capabilities::default();
    let run = |wat: &str, name: &str, args: Vec<Value>, iters: u32| {
        let prepared = sandbox.prepare(wat.as_bytes()).unwrap();
        measure(11, iters, || {
            let inv = Invocation::Call { function: name.into(), args: args.clone() };
            black_box(rt.block_on(sandbox.run(&prepared, inv, &caps)).unwrap());
        })
    };

    let engine = Engine::default();
    let trivial = Module::new(&engine, TRIVIAL).unwrap();
    let plain = plain_call(&engine, &trivial, "answer", None);
    let through_sandbox = run(TRIVIAL, "answer", vec![], 2000);
    println!("instantiate+call trivial export: plain wasmtime {plain:?}, sandbox {through_sandbox:?}, ratio {:.2}x",
        through_sandbox.as_secs_f64() / plain.as_secs_f64());

    // Attribution: plain wasmtime with the sandbox's engine features (pooling, epochs) and an
    // async call on a fiber, no WASI, no limiter, no timeout.
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true).allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    let pooled = Engine::new(&config).unwrap();
    let pooled_trivial = Module::new(&pooled, TRIVIAL).unwrap();
    let pooled_linker = Linker::new(&pooled);
    let async_plain = measure(11, 2000, || {
        let mut store = Store::new(&pooled, ());
        store.set_epoch_deadline(1_000_000);
        let instance = pooled_linker.instantiate(&mut store, &pooled_trivial).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "answer").unwrap();
        black_box(rt.block_on(f.call_async(&mut store, ())).unwrap());
    });
    println!("of which plain wasmtime on a pooling+epoch engine with call_async via block_on: {async_plain:?}");
    let wasi_ctx = measure(11, 2000, || {
        black_box(wasmtime_wasi::WasiCtxBuilder::new().build_p1());
    });
    println!("of which building an empty WASI preview 1 context: {wasi_ctx:?}");

    let loopy = Module::new(&engine, LOOPY).unwrap();
    let instrumented_bytes = sandbox::instrument(LOOPY.as_bytes(), &limits).unwrap();
    let instrumented = Module::new(&engine, &instrumented_bytes).unwrap();
    let base = plain_call(&engine, &loopy, "sum", Some(LOOP_N));
    let inst = plain_call(&engine, &instrumented, "sum", Some(LOOP_N));
    let full = run(LOOPY, "sum", vec![Value::I32(LOOP_N)], 5);
    println!("loop of {LOOP_N} iterations: plain {base:?}, instrumented {inst:?} ({:.2}x), full sandbox {full:?} ({:.2}x)",
        inst.as_secs_f64() / base.as_secs_f64(), full.as_secs_f64() / base.as_secs_f64());
}
