//! The hostile corpus: each module tries to escape a limit or a capability, and each test
//! asserts the exact outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{WASI_IMPORTS, code, fixture, fixture_with, limits, read_file_module};
use sandbox::{Capabilities, Limits, NetworkPolicy, SandboxError, Value};

const COUNT_LOOP: &str = r#"(module
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))"#;

const INFINITE_LOOP: &str = r#"(module (func (export "spin") (loop $l (br $l))))"#;

const RECURSION: &str = r#"(module
  (func $depth (export "depth") (param $n i32) (result i32)
    (if (i32.le_u (local.get $n) (i32.const 1)) (then (return (i32.const 1))))
    (i32.add (i32.const 1) (call $depth (i32.sub (local.get $n) (i32.const 1))))))"#;

#[tokio::test]
async fn an_infinite_loop_ends_with_the_iteration_limit() {
    assert_eq!(
        code(fixture().call(INFINITE_LOOP, "spin", &[]).await),
        "sandbox.iteration_limit"
    );
}

#[tokio::test]
async fn an_infinite_loop_without_the_iteration_policy_ends_with_a_timeout() {
    let f = fixture_with(Limits {
        max_iterations: None,
        max_execution_time: Duration::from_millis(300),
        ..limits()
    });
    assert_eq!(
        code(f.call(INFINITE_LOOP, "spin", &[]).await),
        "sandbox.timeout"
    );
}

#[tokio::test]
async fn a_loop_of_exactly_max_iterations_completes() {
    let report = fixture()
        .call(COUNT_LOOP, "count", &[Value::I32(1000)])
        .await
        .unwrap();
    assert_eq!(report.results, vec![Value::I32(1000)]);
    assert_eq!(report.iterations, 1000);
}

#[tokio::test]
async fn a_loop_of_one_more_than_max_iterations_fails() {
    let r = fixture()
        .call(COUNT_LOOP, "count", &[Value::I32(1001)])
        .await;
    assert_eq!(code(r), "sandbox.iteration_limit");
}

#[tokio::test]
async fn recursion_of_exactly_max_stack_depth_succeeds() {
    let report = fixture()
        .call(RECURSION, "depth", &[Value::I32(50)])
        .await
        .unwrap();
    assert_eq!(report.results, vec![Value::I32(50)]);
}

#[tokio::test]
async fn recursion_one_deeper_than_max_stack_depth_fails() {
    let r = fixture().call(RECURSION, "depth", &[Value::I32(51)]).await;
    assert_eq!(code(r), "sandbox.stack_overflow");
}

#[tokio::test]
async fn unbounded_recursion_ends_with_a_stack_overflow() {
    let wat = r#"(module (func $r (export "r") (call $r)))"#;
    assert_eq!(
        code(fixture().call(wat, "r", &[]).await),
        "sandbox.stack_overflow"
    );
}

#[tokio::test]
async fn exhausting_the_native_stack_is_a_stack_overflow_even_under_a_high_depth_limit() {
    let f = fixture_with(Limits {
        max_stack_depth: u32::MAX,
        ..limits()
    });
    let wat = r#"(module (func $r (export "r") (param i64 i64 i64 i64) (result i64)
        (i64.add (local.get 0) (call $r (local.get 0) (local.get 1) (local.get 2) (local.get 3)))))"#;
    let zero = Value::I64(0);
    assert_eq!(
        code(f.call(wat, "r", &[zero, zero, zero, zero]).await),
        "sandbox.stack_overflow"
    );
}

#[tokio::test]
async fn a_memory_grow_bomb_ends_with_the_memory_limit() {
    let wat = r#"(module (memory 1)
      (func (export "bomb") (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))"#;
    assert_eq!(
        code(fixture().call(wat, "bomb", &[]).await),
        "sandbox.memory_limit"
    );
}

#[tokio::test]
async fn growth_is_limited_over_all_memories_together() {
    let wat = r#"(module (memory $a 2) (memory $b 2)
      (func (export "grow") (result i32) (memory.grow $b (i32.const 1))))"#;
    assert_eq!(
        code(fixture().call(wat, "grow", &[]).await),
        "sandbox.memory_limit"
    );
}

#[tokio::test]
async fn a_table_grow_bomb_ends_with_the_table_limit() {
    let wat = r#"(module (table 1 funcref)
      (func (export "bomb")
        (loop $l (br_if $l (i32.ne (table.grow (ref.null func) (i32.const 10)) (i32.const -1))))))"#;
    assert_eq!(
        code(fixture().call(wat, "bomb", &[]).await),
        "sandbox.table_limit"
    );
}

#[tokio::test]
async fn a_module_with_too_many_globals_is_refused() {
    let globals = "(global i32 (i32.const 0))".repeat(11);
    let err = fixture()
        .sandbox
        .prepare(format!("(module {globals})").as_bytes())
        .unwrap_err();
    assert_eq!(err.code(), "sandbox.globals_limit");
}

#[tokio::test]
async fn a_module_with_a_huge_initial_memory_is_refused() {
    let err = fixture()
        .sandbox
        .prepare(b"(module (memory 100))")
        .unwrap_err();
    assert_eq!(err.code(), "sandbox.memory_limit");
}

#[tokio::test]
async fn a_module_with_a_huge_initial_table_is_refused() {
    let err = fixture()
        .sandbox
        .prepare(b"(module (table 5000 funcref))")
        .unwrap_err();
    assert_eq!(err.code(), "sandbox.table_limit");
}

#[tokio::test]
async fn a_module_importing_an_unknown_function_is_refused_naming_the_import() {
    let wat = r#"(module (import "env" "exit" (func (param i32))))"#;
    let err = fixture().sandbox.prepare(wat.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "sandbox.blocked_import");
    assert!(err.to_string().contains("env::exit"), "{err}");
}

#[tokio::test]
async fn a_module_importing_host_memory_is_refused() {
    let wat = r#"(module (import "env" "memory" (memory 1)))"#;
    assert_eq!(
        fixture()
            .sandbox
            .prepare(wat.as_bytes())
            .unwrap_err()
            .code(),
        "sandbox.blocked_import"
    );
}

/// WASI errnos the guest sees (wasi_snapshot_preview1).
const EBADF: i32 = 8;
const ENOENT: i32 = 44;
const EPERM: i32 = 63;

fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("data.txt"), "inside").unwrap();
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "outside").unwrap();
    (root, allowed, secret)
}

fn files(allowed: &std::path::Path) -> Capabilities {
    Capabilities {
        file_access: true,
        allowed_paths: vec![allowed.to_path_buf()],
        ..Capabilities::default()
    }
}

#[tokio::test]
async fn without_file_access_no_directory_is_visible() {
    let (_root, _allowed, _secret) = dirs();
    let r = fixture()
        .command(
            &read_file_module("data.txt"),
            &[],
            &[],
            &Capabilities::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(EBADF));
}

#[tokio::test]
async fn an_absolute_path_outside_the_allowed_paths_cannot_be_read() {
    let (_root, allowed, secret) = dirs();
    let module = read_file_module(&secret.to_string_lossy());
    let r = fixture()
        .command(&module, &[], &[], &files(&allowed))
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(EPERM), "{r:?}");
    assert!(r.stdout.is_empty());
}

#[tokio::test]
async fn a_path_traversal_out_of_an_allowed_path_is_refused() {
    let (_root, allowed, _secret) = dirs();
    let r = fixture()
        .command(
            &read_file_module("../secret.txt"),
            &[],
            &[],
            &files(&allowed),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(EPERM), "{r:?}");
    assert!(r.stdout.is_empty());
}

fn assert_file_access_denied(r: Result<sandbox::RunReport, SandboxError>, reason: &str) {
    match r {
        Err(
            e @ SandboxError::CapabilityDenied {
                capability: "file_access",
                ..
            },
        ) => {
            assert_eq!(e.code(), "sandbox.capability_denied");
            assert!(e.to_string().contains(reason), "{e}");
        }
        other => panic!("expected a file_access denial ({reason}), got {other:?}"),
    }
}

#[tokio::test]
async fn an_allowed_path_that_is_a_symlink_is_refused_and_nothing_behind_it_is_read() {
    // Another local user pre-creates the shipped preopen as a link into the service's data.
    let (root, _allowed, _secret) = dirs();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("jwt_secret"), "secret").unwrap();
    let preopen = root.path().join("wasm-data");
    std::os::unix::fs::symlink(&data, &preopen).unwrap();
    let r = fixture()
        .command(&read_file_module("jwt_secret"), &[], &[], &files(&preopen))
        .await;
    assert_file_access_denied(r, "is a symbolic link");
}

#[tokio::test]
async fn an_allowed_path_swapped_for_a_symlink_after_a_run_is_refused_at_the_next_run() {
    let (root, allowed, _secret) = dirs();
    let f = fixture();
    let module = read_file_module("data.txt");
    let r = f
        .command(&module, &[], &[], &files(&allowed))
        .await
        .unwrap();
    assert_eq!(r.stdout, b"inside");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("data.txt"), "redirected").unwrap();
    std::fs::rename(&allowed, root.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &allowed).unwrap();
    let r = f.command(&module, &[], &[], &files(&allowed)).await;
    assert_file_access_denied(r, "is a symbolic link");
}

#[tokio::test]
async fn an_allowed_path_owned_by_another_user_is_refused() {
    let (_root, allowed, _secret) = dirs();
    if std::os::unix::fs::chown(&allowed, Some(65534), Some(65534)).is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and can chown"
        );
        eprintln!("notice: not root, cannot give the directory to uid 65534; skipped");
        return;
    }
    let r = fixture()
        .command(&read_file_module("data.txt"), &[], &[], &files(&allowed))
        .await;
    assert_file_access_denied(r, "is owned by uid 65534");
}

#[tokio::test]
async fn a_symlink_escaping_an_allowed_path_is_refused() {
    let (_root, allowed, secret) = dirs();
    std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
    let r = fixture()
        .command(&read_file_module("link"), &[], &[], &files(&allowed))
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(EPERM), "{r:?}");
    assert!(r.stdout.is_empty());
}

#[tokio::test]
async fn a_missing_file_inside_an_allowed_path_is_just_not_found() {
    let (_root, allowed, _secret) = dirs();
    let r = fixture()
        .command(&read_file_module("nope.txt"), &[], &[], &files(&allowed))
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(ENOENT));
}

fn network(hosts: &[&str]) -> NetworkPolicy {
    NetworkPolicy::new(&Capabilities {
        network_access: true,
        allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..Capabilities::default()
    })
}

#[tokio::test]
async fn network_without_the_grant_is_denied_naming_the_capability_and_address() {
    let policy = NetworkPolicy::new(&Capabilities::default());
    let err = policy
        .check("93.184.216.34:443".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sandbox.capability_denied");
    assert_eq!(
        err.to_string(),
        "network_access to 93.184.216.34:443 is not granted"
    );
}

#[tokio::test]
async fn network_to_a_host_not_listed_is_denied() {
    let err = network(&["203.0.113.7"])
        .check("198.51.100.1:80".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sandbox.capability_denied");
}

#[tokio::test]
async fn network_to_loopback_is_denied_unless_listed_exactly() {
    let addr = "127.0.0.1:80".parse().unwrap();
    let err = network(&["api.company.invalid"])
        .check(addr)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "network_access to 127.0.0.1:80 is not granted"
    );
    assert!(network(&["127.0.0.1:80"]).check(addr).await.is_ok());
    assert!(network(&["127.0.0.1:81"]).check(addr).await.is_err());
}

#[tokio::test]
async fn network_to_the_metadata_address_is_denied_unless_listed_exactly() {
    for addr in ["169.254.169.254:80", "[fd00:ec2::254]:80"] {
        let addr = addr.parse().unwrap();
        let err = network(&["localhost", "10.0.0.0"])
            .check(addr)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "sandbox.capability_denied");
    }
    assert!(
        network(&["169.254.169.254"])
            .check("169.254.169.254:80".parse().unwrap())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_listed_public_address_is_allowed() {
    assert!(
        network(&["203.0.113.7"])
            .check("203.0.113.7:443".parse().unwrap())
            .await
            .is_ok()
    );
}

const ENV_COUNT: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (call $exit (i32.load (i32.const 0)))))"#;

#[tokio::test]
async fn environment_passed_without_the_grant_is_denied() {
    let r = fixture()
        .command(ENV_COUNT, &[], &[("SECRET", "x")], &Capabilities::default())
        .await;
    let err = r.unwrap_err();
    assert_eq!(err.code(), "sandbox.capability_denied");
    assert!(err.to_string().starts_with("environment_access"), "{err}");
}

#[tokio::test]
async fn a_module_sees_no_environment_without_the_grant() {
    // The host process has variables (PATH …); none of them reach the guest.
    let r = fixture()
        .command(ENV_COUNT, &[], &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
}

#[tokio::test]
async fn a_host_call_sleeping_past_the_deadline_ends_with_a_timeout() {
    // poll_oneoff with one relative monotonic-clock subscription of 60 s.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i32.store8 (i32.const 8) (i32.const 0))
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const 60000000000))
        (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))))"#;
    for system_calls in [false, true] {
        let f = fixture_with(Limits {
            max_execution_time: Duration::from_millis(300),
            ..limits()
        });
        let caps = Capabilities {
            system_calls,
            ..Capabilities::default()
        };
        assert_eq!(
            code(f.command(wat, &[], &[], &caps).await),
            "sandbox.timeout"
        );
    }
}

#[tokio::test]
async fn an_output_flood_is_truncated_and_flagged() {
    let wat = format!(
        r#"(module {WASI_IMPORTS}
      (memory (export "memory") 1)
      (func (export "_start") (local $i i32)
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 100))
        (loop $l
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))))"#
    );
    let r = fixture()
        .command(&wat, &[], &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert_eq!((r.stdout.len(), r.stdout_truncated), (1024, true));
    assert_eq!((r.stderr.len(), r.stderr_truncated), (1024, true));
}

#[tokio::test]
async fn an_ordinary_trap_is_reported_with_wasmtime_message() {
    let wat = r#"(module (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0))))"#;
    let err = fixture()
        .call(wat, "div", &[Value::I32(0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sandbox.trap");
    assert!(err.to_string().contains("divide by zero"), "{err}");
}

#[tokio::test]
async fn the_module_own_unreachable_is_a_plain_trap() {
    let wat = r#"(module (func (export "u") unreachable))"#;
    assert_eq!(code(fixture().call(wat, "u", &[]).await), "sandbox.trap");
}

#[tokio::test]
async fn exporting_a_reserved_instrumentation_name_is_refused() {
    let wat = r#"(module (global (export "__sandbox_reason") (mut i32) (i32.const 0)))"#;
    assert_eq!(
        fixture()
            .sandbox
            .prepare(wat.as_bytes())
            .unwrap_err()
            .code(),
        "sandbox.invalid_module"
    );
}

#[tokio::test]
async fn calling_a_missing_export_or_with_wrong_arguments_is_an_invalid_invocation() {
    let f = fixture();
    let add = r#"(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#;
    assert_eq!(
        code(f.call(add, "sub", &[]).await),
        "sandbox.invalid_invocation"
    );
    assert_eq!(
        code(f.call(add, "__sandbox_start", &[]).await),
        "sandbox.invalid_invocation"
    );
    assert_eq!(
        code(f.call(add, "add", &[Value::I32(1)]).await),
        "sandbox.invalid_invocation"
    );
    assert_eq!(
        code(f.call(add, "add", &[Value::I32(1), Value::F64(2.0)]).await),
        "sandbox.invalid_invocation"
    );
}

#[tokio::test]
async fn a_failed_run_leaves_the_sandbox_serving_the_next_runs() {
    let f = fixture();
    let bomb = r#"(module (memory 1) (func (export "bomb") (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))"#;
    // More failing runs than the pool has instance slots: slots must be given back.
    for _ in 0..10 {
        assert_eq!(
            code(f.call(bomb, "bomb", &[]).await),
            "sandbox.memory_limit"
        );
        assert_eq!(
            code(f.call(INFINITE_LOOP, "spin", &[]).await),
            "sandbox.iteration_limit"
        );
    }
    let report = f.call(RECURSION, "depth", &[Value::I32(10)]).await.unwrap();
    assert_eq!(report.results, vec![Value::I32(10)]);
}

#[tokio::test]
async fn only_the_implicit_ephemeral_bind_is_allowed_and_listening_is_denied() {
    use wasmtime_wasi::sockets::SocketAddrUse;
    let none = NetworkPolicy::new(&Capabilities::default());
    assert!(
        none.permit("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind)
            .await
            .is_ok()
    );
    let connect = none
        .permit("127.0.0.1:80".parse().unwrap(), SocketAddrUse::TcpConnect)
        .await;
    assert_eq!(
        connect.unwrap_err().to_string(),
        "network_access to 127.0.0.1:80 is not granted"
    );
    let open = network(&["0.0.0.0"]);
    let listen = open
        .permit("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpListen)
        .await;
    assert_eq!(listen.unwrap_err().code(), "sandbox.capability_denied");
    let bind = open
        .permit("0.0.0.0:8080".parse().unwrap(), SocketAddrUse::TcpBind)
        .await;
    assert_eq!(bind.unwrap_err().code(), "sandbox.capability_denied");
}

#[tokio::test]
async fn modules_using_exceptions_or_shared_memory_are_refused() {
    let f = fixture();
    let throw = r#"(module (tag $e) (func (export "t") (throw $e)))"#;
    assert_eq!(
        f.sandbox.prepare(throw.as_bytes()).unwrap_err().code(),
        "sandbox.invalid_module"
    );
    let shared = r#"(module (memory 1 1 shared))"#;
    assert_eq!(
        f.sandbox.prepare(shared.as_bytes()).unwrap_err().code(),
        "sandbox.invalid_module"
    );
}

#[tokio::test]
async fn a_start_function_looping_forever_ends_with_the_iteration_limit() {
    let wat = r#"(module (func $s (loop $l (br $l))) (start $s) (func (export "f")))"#;
    assert_eq!(
        code(fixture().call(wat, "f", &[]).await),
        "sandbox.iteration_limit"
    );
}

#[tokio::test]
async fn a_start_function_runs_before_the_call() {
    let wat = r#"(module (global $g (mut i32) (i32.const 0))
      (func $s (global.set $g (i32.const 41))) (start $s)
      (func (export "f") (result i32) (i32.add (global.get $g) (i32.const 1))))"#;
    assert_eq!(
        fixture().call(wat, "f", &[]).await.unwrap().results,
        vec![Value::I32(42)]
    );
}

#[tokio::test]
async fn environment_passed_without_the_grant_is_denied_for_a_module_without_imports() {
    // Such a module runs without a WASI context; the refusal must not depend on it.
    let pure = r#"(module (func (export "_start")))"#;
    let r = fixture()
        .command(pure, &[], &[("SECRET", "x")], &Capabilities::default())
        .await;
    let err = r.unwrap_err();
    assert_eq!(err.code(), "sandbox.capability_denied");
    assert!(err.to_string().starts_with("environment_access"), "{err}");
}

#[tokio::test]
async fn naming_a_function_like_the_instrumentation_does_not_turn_a_trap_into_a_limit() {
    // The WAT names go to the name section; the instrumentation drops `__sandbox_*` names there,
    // so the module's own `unreachable` stays a plain trap.
    let wat = r#"(module
      (func $__sandbox_depth_limit unreachable)
      (func $__sandbox_iteration_limit (export "i") (call $__sandbox_depth_limit)))"#;
    assert_eq!(code(fixture().call(wat, "i", &[]).await), "sandbox.trap");
}
