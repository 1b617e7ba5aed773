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
            None => instance
                .get_typed_func::<(), i32>(&mut store, name)
                .unwrap()
                .call(&mut store, ()),
            Some(a) => instance
                .get_typed_func::<i32, i32>(&mut store, name)
                .unwrap()
                .call(&mut store, a),
        };
        black_box(r.unwrap());
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_iterations: Some(10 * LOOP_N as u64),
        ..Limits::default()
    };
    let sandbox = Sandbox::new(SandboxOptions {
        limits: limits.clone(),
        cache_dir: cache.path().to_path_buf(),
        max_instances: 16,
        extra_tls_roots: Vec::new(),
        prepared_cache: Default::default(),
    })
    .unwrap();
    let caps = Capabilities::default();
    // `Sandbox::run` is async and the server calls it from a task that is already running, so
    // each round runs inside one `block_on`, not one per call (which would add entering the
    // runtime to every call, a cost the server does not pay).
    let run = |wat: &str, name: &str, args: Vec<Value>, iters: u32| {
        let prepared = sandbox.prepare(wat.as_bytes()).unwrap();
        let inv = Invocation::Call {
            function: name.into(),
            args,
        };
        let round = |n: u32| {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(sandbox.run(&prepared, &inv, &caps).await.unwrap());
                }
            })
        };
        round(iters);
        let mut samples: Vec<Duration> = (0..11)
            .map(|_| {
                let t = Instant::now();
                round(iters);
                t.elapsed() / iters
            })
            .collect();
        samples.sort();
        samples[11 / 2]
    };

    // The headline ratio, measured interleaved: each round times 2000 plain calls and then
    // 2000 sandbox calls, so a change in the machine's speed during the run affects both; the
    // ratio is the median of the per-round ratios.
    let engine = Engine::default();
    let trivial = Module::new(&engine, TRIVIAL).unwrap();
    let plain_linker = Linker::new(&engine);
    let prepared = sandbox.prepare(TRIVIAL.as_bytes()).unwrap();
    let inv = Invocation::Call {
        function: "answer".into(),
        args: vec![],
    };
    let (mut plains, mut sandboxed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..22 {
        let t = Instant::now();
        for _ in 0..2000 {
            let mut store = Store::new(&engine, ());
            let instance = plain_linker.instantiate(&mut store, &trivial).unwrap();
            let f = instance
                .get_typed_func::<(), i32>(&mut store, "answer")
                .unwrap();
            black_box(f.call(&mut store, ()).unwrap());
        }
        let plain = t.elapsed() / 2000;
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..2000 {
                black_box(sandbox.run(&prepared, &inv, &caps).await.unwrap());
            }
        });
        let through = t.elapsed() / 2000;
        if round > 0 {
            // The first round warms up both.
            plains.push(plain);
            sandboxed.push(through);
            ratios.push(through.as_secs_f64() / plain.as_secs_f64());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    ratios.sort_by(f64::total_cmp);
    println!(
        "instantiate+call trivial export: plain wasmtime {:?}, sandbox {:?}, ratio {:.2}x (median of 21 interleaved rounds; rounds ranged {:.2}x-{:.2}x)",
        median(&mut plains),
        median(&mut sandboxed),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );

    // Attribution: plain wasmtime with the sandbox's engine features (pooling, epochs) and an
    // async call on a fiber, no WASI, no limiter, no timeout.
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    let pooled = Engine::new(&config).unwrap();
    let pooled_trivial = Module::new(&pooled, TRIVIAL).unwrap();
    let pooled_linker = Linker::new(&pooled);
    let async_plain = measure(11, 2000, || {
        let mut store = Store::new(&pooled, ());
        store.set_epoch_deadline(1_000_000);
        let instance = pooled_linker
            .instantiate(&mut store, &pooled_trivial)
            .unwrap();
        let f = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        black_box(rt.block_on(f.call_async(&mut store, ())).unwrap());
    });
    println!(
        "of which plain wasmtime on a pooling+epoch engine with call_async via block_on: {async_plain:?}"
    );
    let sync_pooled = measure(11, 2000, || {
        let mut store = Store::new(&pooled, ());
        store.set_epoch_deadline(1_000_000);
        let instance = pooled_linker
            .instantiate(&mut store, &pooled_trivial)
            .unwrap();
        let f = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        black_box(f.call(&mut store, ()).unwrap());
    });
    println!("of which plain wasmtime on a pooling+epoch engine, sync typed call: {sync_pooled:?}");
    let linker = Linker::new(&engine);
    let untyped = measure(11, 2000, || {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &trivial).unwrap();
        let f = instance.get_func(&mut store, "answer").unwrap();
        let mut results = vec![wasmtime::Val::I32(0)];
        f.call(&mut store, &[], &mut results).unwrap();
        black_box(results);
    });
    println!("of which plain wasmtime (default engine), untyped Func::call: {untyped:?}");
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
    println!(
        "loop of {LOOP_N} iterations: plain {base:?}, instrumented {inst:?} ({:.2}x), full sandbox {full:?} ({:.2}x)",
        inst.as_secs_f64() / base.as_secs_f64(),
        full.as_secs_f64() / base.as_secs_f64()
    );
}
