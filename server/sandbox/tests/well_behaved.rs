//! Well-behaved modules get correct results, and preparation is cached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WASI_IMPORTS, fixture, read_file_module};
use sandbox::{Capabilities, PreparedFrom, Sandbox, SandboxOptions, Value};

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#;

#[tokio::test]
async fn add_of_two_and_three_is_five() {
    let report = fixture()
        .call(ADD, "add", &[Value::I32(2), Value::I32(3)])
        .await
        .unwrap();
    assert_eq!(report.results, vec![Value::I32(5)]);
    assert_eq!(report.exit_code, None);
}

#[tokio::test]
async fn every_value_type_round_trips() {
    let wat = r#"(module (func (export "id") (param i64 f32 f64) (result f64 f32 i64)
        (local.get 2) (local.get 1) (local.get 0)))"#;
    let r = fixture()
        .call(
            wat,
            "id",
            &[Value::I64(-7), Value::F32(1.5), Value::F64(2.25)],
        )
        .await
        .unwrap();
    assert_eq!(
        r.results,
        vec![Value::F64(2.25), Value::F32(1.5), Value::I64(-7)]
    );
}

/// Early returns, branches to the function label, multiple results, a tail call, and a loop
/// (`sum(n)` = 1 + … + n, wrapping, with n + 1 loop iterations).
const BRANCHES_AND_SUM: &str = r#"(module
  (func $pick (param $x i32) (result i32 i32)
    (block $out
      (if (i32.eqz (local.get $x)) (then (return (i32.const 10) (i32.const 20))))
      (br_if $out (i32.eq (local.get $x) (i32.const 1))))
    (if (i32.eq (local.get $x) (i32.const 2)) (then (i32.const 1) (i32.const 2) (br 1)))
    (i32.const 3) (i32.const 4))
  (func $tail (param i32) (result i32 i32) (return_call $pick (local.get 0)))
  (func (export "f") (param i32) (result i32)
    (call $tail (local.get 0)) (i32.add (i32.mul (i32.const 100))))
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $acc)))"#;

#[tokio::test]
async fn instrumentation_keeps_early_returns_branches_and_multiple_results_intact() {
    let wat = BRANCHES_AND_SUM;
    let f = fixture();
    for (x, expected) in [(0, 2010), (1, 403), (2, 201), (3, 403)] {
        let r = f.call(wat, "f", &[Value::I32(x)]).await.unwrap();
        assert_eq!(r.results, vec![Value::I32(expected)], "f({x})");
    }
    let r = f.call(wat, "sum", &[Value::I32(100)]).await.unwrap();
    assert_eq!(r.results, vec![Value::I32(5050)]);
}

#[tokio::test]
async fn a_chain_of_tail_calls_does_not_count_as_depth() {
    let wat = r#"(module (func $down (export "down") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n)) (then (i32.const 7))
          (else (return_call $down (i32.sub (local.get $n) (i32.const 1)))))))"#;
    let r = fixture()
        .call(wat, "down", &[Value::I32(500)])
        .await
        .unwrap();
    assert_eq!(r.results, vec![Value::I32(7)]);
}

const ECHO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "hello\n")
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 8) (local.get $ptr))
    (i32.store (i32.const 12) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))))
  (func (export "_start")
    (call $print (i32.const 512) (i32.const 6))
    (drop (call $args_sizes (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (call $print (i32.const 2048) (i32.load (i32.const 4)))
    (drop (call $env_sizes (i32.const 0) (i32.const 4)))
    (drop (call $env_get (i32.const 1024) (i32.const 4096)))
    (call $print (i32.const 4096) (i32.load (i32.const 4)))))"#;

#[tokio::test]
async fn a_wasi_hello_world_prints_its_args_and_granted_environment() {
    let caps = Capabilities {
        environment_access: true,
        ..Capabilities::default()
    };
    let r = fixture()
        .command(ECHO, &["a", "bc"], &[("GREETING", "hi")], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        "hello\nmodule\0a\0bc\0GREETING=hi\0"
    );
    assert!(!r.stdout_truncated);
    assert!(r.peak_memory_bytes >= 65536);
}

#[tokio::test]
async fn a_command_exit_code_is_reported() {
    let wat = format!(
        r#"(module {WASI_IMPORTS} (memory (export "memory") 1)
        (func (export "_start") (call $proc_exit (i32.const 3))))"#
    );
    let r = fixture()
        .command(&wat, &[], &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(3));
}

#[tokio::test]
async fn a_file_inside_an_allowed_path_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), "inside").unwrap();
    let caps = Capabilities {
        file_access: true,
        allowed_paths: vec![dir.path().to_path_buf()],
        ..Capabilities::default()
    };
    let r = fixture()
        .command(&read_file_module("data.txt"), &[], &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.stdout, b"inside");
}

const CLOCK: &str = r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "now") (result i64) (drop (call $now (i32.const 0) (i64.const 1) (i32.const 0))) (i64.load (i32.const 0)))
  (func (export "random") (result i64) (drop (call $random (i32.const 8) (i32.const 8))) (i64.load (i32.const 8))))"#;

#[tokio::test]
async fn without_system_calls_clocks_are_frozen_and_randomness_is_fixed() {
    let f = fixture();
    let p = f.sandbox.prepare(CLOCK.as_bytes()).unwrap();
    let none = Capabilities::default();
    let call = |name: &str| sandbox::Invocation::Call {
        function: name.into(),
        args: vec![],
    };
    assert_eq!(
        f.sandbox
            .run(&p, &call("now"), &none)
            .await
            .unwrap()
            .results,
        vec![Value::I64(0)]
    );
    assert_eq!(
        f.sandbox
            .run(&p, &call("random"), &none)
            .await
            .unwrap()
            .results,
        vec![Value::I64(0)]
    );
    let sys = Capabilities {
        system_calls: true,
        ..Capabilities::default()
    };
    let now = f.sandbox.run(&p, &call("now"), &sys).await.unwrap().results;
    assert!(
        matches!(now[..], [Value::I64(t)] if t > 1_600_000_000_000_000_000),
        "{now:?}"
    );
}

#[tokio::test]
async fn a_prepared_module_is_reused_in_memory_and_from_disk_after_a_restart() {
    let f = fixture();
    assert_eq!(
        f.sandbox.prepare(ADD.as_bytes()).unwrap().from(),
        PreparedFrom::Compiled
    );
    assert_eq!(
        f.sandbox.prepare(ADD.as_bytes()).unwrap().from(),
        PreparedFrom::Memory
    );
    let restarted = Sandbox::new(SandboxOptions {
        limits: common::limits(),
        cache_dir: f.cache.path().join("cache"),
        max_instances: 4,
        extra_tls_roots: Vec::new(),
        prepared_cache: Default::default(),
    })
    .unwrap();
    let p = restarted.prepare(ADD.as_bytes()).unwrap();
    assert_eq!(p.from(), PreparedFrom::DiskCache);
    let invocation = sandbox::Invocation::Call {
        function: "add".into(),
        args: vec![Value::I32(2), Value::I32(3)],
    };
    let r = restarted
        .run(&p, &invocation, &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.results, vec![Value::I32(5)]);
}

#[tokio::test]
async fn an_evicted_module_is_prepared_again_from_the_disk_cache_and_still_runs() {
    let cache = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        limits: common::limits(),
        cache_dir: cache.path().join("cache"),
        max_instances: 4,
        extra_tls_roots: Vec::new(),
        prepared_cache: sandbox::PreparedCacheLimits {
            max_entries: 1,
            max_bytes: u64::MAX,
        },
    })
    .unwrap();
    let other = r#"(module (func (export "one") (result i32) i32.const 1))"#;
    let add = sandbox.prepare(ADD.as_bytes()).unwrap();
    assert_eq!(add.from(), PreparedFrom::Compiled);
    assert!(add.code_bytes() > 0);
    assert_eq!(sandbox.cache_usage(), (1, add.code_bytes()));
    assert!(sandbox.cached(add.sha256()).is_some());
    sandbox.prepare(other.as_bytes()).unwrap();
    assert_eq!(sandbox.cache_usage().0, 1, "the count bound holds");
    assert!(sandbox.cached(add.sha256()).is_none(), "add was evicted");
    let again = sandbox.prepare(ADD.as_bytes()).unwrap();
    assert_eq!(again.from(), PreparedFrom::DiskCache);
    let invocation = sandbox::Invocation::Call {
        function: "add".into(),
        args: vec![Value::I32(2), Value::I32(3)],
    };
    let r = sandbox
        .run(&again, &invocation, &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.results, vec![Value::I32(5)]);
    // A byte bound below one module's code keeps nothing in memory; runs still work.
    let tight = Sandbox::new(SandboxOptions {
        limits: common::limits(),
        cache_dir: cache.path().join("cache"),
        max_instances: 4,
        extra_tls_roots: Vec::new(),
        prepared_cache: sandbox::PreparedCacheLimits {
            max_entries: 10,
            max_bytes: add.code_bytes() - 1,
        },
    })
    .unwrap();
    let p = tight.prepare(ADD.as_bytes()).unwrap();
    assert_eq!(p.from(), PreparedFrom::DiskCache);
    assert_eq!(tight.cache_usage(), (0, 0));
    assert_eq!(
        tight.prepare(ADD.as_bytes()).unwrap().from(),
        PreparedFrom::DiskCache
    );
}

#[tokio::test]
async fn a_corrupt_cache_file_is_recompiled_not_loaded() {
    let f = fixture();
    f.sandbox.prepare(ADD.as_bytes()).unwrap();
    let dir = f.cache.path().join("cache");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let restarted = Sandbox::new(SandboxOptions {
        limits: common::limits(),
        cache_dir: dir,
        max_instances: 4,
        extra_tls_roots: Vec::new(),
        prepared_cache: Default::default(),
    })
    .unwrap();
    assert_eq!(
        restarted.prepare(ADD.as_bytes()).unwrap().from(),
        PreparedFrom::Compiled
    );
}

#[tokio::test]
async fn the_cache_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let mode = std::fs::metadata(f.cache.path().join("cache"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn the_report_counts_every_loop_iteration_of_the_run() {
    // inner(20) is entered 10 times by outer's loop: 10 + 10 * 20 iterations, plus a second
    // call of inner(5) from the export itself.
    let wat = r#"(module
      (func $inner (param $n i32) (local $i i32)
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
      (func (export "outer") (local $j i32)
        (loop $l (call $inner (i32.const 20))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $j) (i32.const 10))))
        (call $inner (i32.const 5))))"#;
    let r = fixture().call(wat, "outer", &[]).await.unwrap();
    assert_eq!(r.iterations, 10 + 10 * 20 + 5);
}

#[tokio::test]
async fn a_call_outlasting_an_epoch_tick_restarts_on_a_fiber_with_the_same_outcome() {
    // A module that imports nothing first runs without a fiber, until the first epoch tick
    // (10 ms); one still running then is abandoned and run again from scratch on a fiber. The
    // restarted run must give exactly what one uninterrupted run gives.
    let wat = BRANCHES_AND_SUM;
    let f = common::fixture_with(sandbox::Limits {
        max_iterations: Some(200_000_000),
        ..common::limits()
    });
    let small = f.call(wat, "sum", &[Value::I32(100)]).await.unwrap();
    assert_eq!(
        (small.results.clone(), small.iterations),
        (vec![Value::I32(5050)], 101)
    );
    let n: i32 = 100_000_000;
    let big = f.call(wat, "sum", &[Value::I32(n)]).await.unwrap();
    let expected = (1..=n).fold(0i32, |acc, k| acc.wrapping_add(k));
    assert!(
        big.duration > std::time::Duration::from_millis(20),
        "the run spans epoch ticks: {:?}",
        big.duration
    );
    assert_eq!(big.results, vec![Value::I32(expected)]);
    assert_eq!(
        big.iterations,
        u64::try_from(n).unwrap() + 1,
        "counted once, by the run that finished"
    );
}
