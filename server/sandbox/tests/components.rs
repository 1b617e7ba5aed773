//! WASI 0.2 command components, built in the test: preview 1 programs (WAT) adapted with
//! `wit-component` and the preview 1 command adapter released with wasmtime 48, and a guest that
//! imports `wasi:sockets` directly (a core module whose imports follow the canonical ABI, with
//! its WIT world embedded, encoded by `wit-component`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use common::{Fixture, WASI_IMPORTS, adapt, code, fixture, fixture_with, limits, read_file_module};
use sandbox::{
    Capabilities, Invocation, PreparedFrom, RunReport, Sandbox, SandboxError, SandboxOptions,
};

async fn run_component(
    f: &Fixture,
    component: &[u8],
    env: &[(&str, &str)],
    caps: &Capabilities,
) -> Result<RunReport, SandboxError> {
    let prepared = f.sandbox.prepare(component).unwrap();
    assert!(prepared.is_component());
    let invocation = Invocation::Command {
        args: vec!["a".into(), "bc".into()],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        stdin: b"input".to_vec(),
    };
    f.sandbox.run(&prepared, &invocation, caps).await
}

/// Prints "hello\n", then its stdin, then exits 0.
fn hello() -> String {
    format!(
        r#"(module {WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.const 64))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    )
}

#[tokio::test]
async fn a_hello_world_component_prints_to_stdout_and_exits_zero() {
    let f = fixture();
    let r = run_component(&f, &adapt(&hello()), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hello\ninput");
    assert!(!r.stdout_truncated);
    assert!(r.peak_memory_bytes >= 65536, "{r:?}");
    assert!(r.duration > Duration::ZERO);
}

#[tokio::test]
async fn output_beyond_the_cap_is_dropped_and_flagged() {
    let wat = format!(
        r#"(module {WASI_IMPORTS}
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 1000))
    (loop $l
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))))"#
    );
    let r = run_component(&fixture(), &adapt(&wat), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.stderr.len(), common::limits().max_output_bytes);
    assert!(r.stderr_truncated);
    assert!(!r.stdout_truncated);
}

#[tokio::test]
async fn a_preview1_nonzero_exit_is_one_through_the_adapter() {
    // The preview 1 adapter maps `proc_exit(n)` for any n != 0 to `wasi:cli/exit.exit(err)`.
    let wat = format!(
        r#"(module {WASI_IMPORTS} (memory (export "memory") 1)
        (func (export "_start") (call $proc_exit (i32.const 3))))"#
    );
    let r = run_component(&fixture(), &adapt(&wat), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(1));
}

/// A hand-written component that calls `wasi:cli/exit.exit-with-code(3)` from `wasi:cli/run`.
const EXIT_3: &str = include_str!("fixtures/exit3.wat");

#[tokio::test]
async fn an_exit_code_from_exit_with_code_is_reported() {
    let r = run_component(&fixture(), EXIT_3.as_bytes(), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(3));
}

/// Exits 0 when it sees no environment variable, 1 otherwise.
const ENV_COUNT: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (call $proc_exit (i32.load (i32.const 0)))))"#;

#[tokio::test]
async fn without_the_grant_a_component_sees_no_environment() {
    // The host's environment is never passed.
    assert!(std::env::vars().next().is_some());
    let f = fixture();
    let r = run_component(&f, &adapt(ENV_COUNT), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    let denied = run_component(
        &f,
        &adapt(ENV_COUNT),
        &[("K", "v")],
        &Capabilities::default(),
    )
    .await;
    assert_eq!(code(denied), "sandbox.capability_denied");
    let caps = Capabilities {
        environment_access: true,
        ..Capabilities::default()
    };
    let r = run_component(&f, &adapt(ENV_COUNT), &[("K", "v")], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(1));
}

/// WASI errnos the guest sees (wasi_snapshot_preview1).
const EBADF: u8 = 8;
const EPERM: u8 = 63;

/// Opens `path` relative to the first preopen (fd 3) and writes the errno (one byte) to stdout.
fn open_errno(path: &str) -> String {
    format!(
        r#"(module {WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 256) "{path}")
  (func (export "_start")
    (i32.store8 (i32.const 100) (call $path_open (i32.const 3) (i32.const 1) (i32.const 256)
      (i32.const {len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 8) (i32.const 100))
    (i32.store (i32.const 12) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 20)))))"#,
        len = path.len()
    )
}

#[tokio::test]
async fn a_file_outside_the_preopens_is_refused_and_one_inside_is_read() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("data.txt"), "inside").unwrap();
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "outside").unwrap();
    let caps = Capabilities {
        file_access: true,
        allowed_paths: vec![allowed.clone()],
        ..Capabilities::default()
    };
    let f = fixture();

    let r = run_component(&f, &adapt(&read_file_module("data.txt")), &[], &caps)
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_slice()),
        (Some(0), &b"inside"[..]),
        "{r:?}"
    );
    let r = run_component(&f, &adapt(&open_errno("data.txt")), &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.stdout, [0], "{r:?}");

    for outside in [
        "../secret.txt".to_string(),
        secret.to_string_lossy().into_owned(),
    ] {
        let r = run_component(&f, &adapt(&open_errno(&outside)), &[], &caps)
            .await
            .unwrap();
        assert_eq!(r.stdout, [EPERM], "{outside}: {r:?}");
        let r = run_component(&f, &adapt(&read_file_module(&outside)), &[], &caps)
            .await
            .unwrap();
        assert_eq!(
            (r.exit_code, r.stdout.len()),
            (Some(1), 0),
            "{outside}: {r:?}"
        );
    }

    let none = Capabilities::default();
    let r = run_component(&f, &adapt(&open_errno("data.txt")), &[], &none)
        .await
        .unwrap();
    assert_eq!(r.stdout, [EBADF], "{r:?}");
}

#[tokio::test]
async fn an_infinite_loop_component_without_the_iteration_policy_ends_with_a_timeout() {
    let f = fixture_with(sandbox::Limits {
        max_iterations: None,
        max_execution_time: Duration::from_millis(300),
        ..limits()
    });
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;
    let r = run_component(&f, &adapt(wat), &[], &Capabilities::default()).await;
    assert_eq!(code(r), "sandbox.timeout");
}

#[tokio::test]
async fn a_memory_bomb_component_ends_with_the_memory_limit() {
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "_start") (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))"#;
    let r = run_component(&fixture(), &adapt(wat), &[], &Capabilities::default()).await;
    assert_eq!(code(r), "sandbox.memory_limit");
}

#[tokio::test]
async fn unbounded_recursion_in_a_component_is_a_stack_overflow() {
    let wat = r#"(module (memory (export "memory") 1)
      (func $f (call $f))
      (func (export "_start") (call $f)))"#;
    let r = run_component(&fixture(), &adapt(wat), &[], &Capabilities::default()).await;
    assert_eq!(code(r), "sandbox.stack_overflow");
}

#[tokio::test]
async fn a_component_whose_initial_memory_is_over_the_limit_is_refused_at_prepare() {
    let wat = r#"(module (memory (export "memory") 100) (func (export "_start")))"#;
    let err = fixture().sandbox.prepare(&adapt(wat)).unwrap_err();
    assert_eq!(err.code(), "sandbox.memory_limit", "{err}");
}

#[tokio::test]
async fn a_component_is_cached_in_memory_and_on_disk() {
    let component = adapt(&hello());
    let f = fixture();
    assert_eq!(
        f.sandbox.prepare(&component).unwrap().from(),
        PreparedFrom::Compiled
    );
    assert_eq!(
        f.sandbox.prepare(&component).unwrap().from(),
        PreparedFrom::Memory
    );
    let restarted = Sandbox::new(SandboxOptions {
        limits: limits(),
        cache_dir: f.cache.path().join("cache"),
        max_instances: 4,
        extra_tls_roots: Vec::new(),
        prepared_cache: Default::default(),
    })
    .unwrap();
    let p = restarted.prepare(&component).unwrap();
    assert_eq!(p.from(), PreparedFrom::DiskCache);
    let invocation = Invocation::Command {
        args: vec![],
        env: BTreeMap::new(),
        stdin: vec![],
    };
    let r = restarted
        .run(&p, &invocation, &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.stdout, b"hello\n");
}

#[tokio::test]
async fn a_component_cannot_be_called_like_a_module() {
    let f = fixture();
    let p = f.sandbox.prepare(&adapt(&hello())).unwrap();
    let call = Invocation::Call {
        function: "_start".into(),
        args: vec![],
    };
    assert_eq!(
        code(f.sandbox.run(&p, &call, &Capabilities::default()).await),
        "sandbox.invalid_invocation"
    );
}

/// A hand-written component (no adapter, no imports) whose `wasi:cli/run` returns `err`.
const RUN_ERR: &str = r#"(component
  (core module $m (func (export "run") (result i32) (i32.const 1)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))"#;

#[tokio::test]
async fn a_run_returning_err_exits_with_one() {
    let r = run_component(
        &fixture(),
        RUN_ERR.as_bytes(),
        &[],
        &Capabilities::default(),
    )
    .await
    .unwrap();
    assert_eq!((r.exit_code, r.stdout.len()), (Some(1), 0));
}

#[tokio::test]
async fn a_component_importing_an_interface_the_sandbox_lacks_is_refused_naming_it() {
    let wat =
        r#"(component (import "wasi:keyvalue/store@0.2.0" (instance (export "open" (func)))))"#;
    let err = fixture().sandbox.prepare(wat.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "sandbox.blocked_import", "{err}");
    assert!(
        err.to_string().contains("wasi:keyvalue/store@0.2.0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_without_wasi_cli_run_is_not_a_command() {
    let err = fixture().sandbox.prepare(b"(component)").unwrap_err();
    assert_eq!(err.code(), "sandbox.invalid_module", "{err}");
}

/// Exits 0 if the wall clock reads the Unix epoch, 1 otherwise.
const CLOCK: &str = r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $now (i32.const 0) (i64.const 1) (i32.const 0)))
    (call $proc_exit (i64.ne (i64.load (i32.const 0)) (i64.const 0)))))"#;

#[tokio::test]
async fn without_system_calls_a_component_sees_a_frozen_clock() {
    let f = fixture();
    let r = run_component(&f, &adapt(CLOCK), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0));
    let sys = Capabilities {
        system_calls: true,
        ..Capabilities::default()
    };
    let r = run_component(&f, &adapt(CLOCK), &[], &sys).await.unwrap();
    assert_eq!(r.exit_code, Some(1));
}

// ---- wasi:sockets ----

/// The parts of WASI 0.2 the socket guest uses, as in wasmtime-wasi 48's WIT (trimmed to the
/// items the guest names; types are identical, so the host's implementation satisfies them).
const WIT_IO: &str = r#"package wasi:io@0.2.0;
interface poll {
  resource pollable {
    block: func();
  }
}
interface streams {
  resource input-stream;
  resource output-stream;
}"#;

const WIT_SOCKETS: &str = r#"package wasi:sockets@0.2.0;
interface network {
  resource network;
  enum error-code {
    unknown, access-denied, not-supported, invalid-argument, out-of-memory, timeout,
    concurrency-conflict, not-in-progress, would-block, invalid-state, new-socket-limit,
    address-not-bindable, address-in-use, remote-unreachable, connection-refused,
    connection-reset, connection-aborted, datagram-too-large, name-unresolvable,
    temporary-resolver-failure, permanent-resolver-failure,
  }
  enum ip-address-family { ipv4, ipv6 }
  type ipv4-address = tuple<u8, u8, u8, u8>;
  type ipv6-address = tuple<u16, u16, u16, u16, u16, u16, u16, u16>;
  record ipv4-socket-address { port: u16, address: ipv4-address }
  record ipv6-socket-address { port: u16, flow-info: u32, address: ipv6-address, scope-id: u32 }
  variant ip-socket-address { ipv4(ipv4-socket-address), ipv6(ipv6-socket-address) }
}
interface instance-network {
  use network.{network};
  instance-network: func() -> network;
}
interface tcp {
  use wasi:io/streams@0.2.0.{input-stream, output-stream};
  use wasi:io/poll@0.2.0.{pollable};
  use network.{network, error-code, ip-socket-address};
  resource tcp-socket {
    start-connect: func(network: borrow<network>, remote-address: ip-socket-address) -> result<_, error-code>;
    finish-connect: func() -> result<tuple<input-stream, output-stream>, error-code>;
    subscribe: func() -> pollable;
  }
}
interface ip-name-lookup {
  use network.{network, error-code};
  resource resolve-address-stream;
  resolve-addresses: func(network: borrow<network>, name: string) -> result<resolve-address-stream, error-code>;
}
interface tcp-create-socket {
  use network.{error-code, ip-address-family};
  use tcp.{tcp-socket};
  create-tcp-socket: func(address-family: ip-address-family) -> result<tcp-socket, error-code>;
}"#;

const WIT_CLI: &str = r#"package wasi:cli@0.2.0;
interface run {
  run: func() -> result;
}
interface exit {
  exit-with-code: func(status-code: u8);
}"#;

const WIT_WORLD: &str = r#"package sandbox:test;
world connect {
  import wasi:sockets/instance-network@0.2.0;
  import wasi:sockets/tcp-create-socket@0.2.0;
  import wasi:sockets/tcp@0.2.0;
  import wasi:io/poll@0.2.0;
  export wasi:cli/run@0.2.0;
}
world http-get {
  import wasi:http/types@0.2.0;
  import wasi:http/outgoing-handler@0.2.0;
  import wasi:io/poll@0.2.0;
  import wasi:cli/exit@0.2.0;
  export wasi:cli/run@0.2.0;
}
world lookup {
  import wasi:sockets/instance-network@0.2.0;
  import wasi:sockets/ip-name-lookup@0.2.0;
  import wasi:cli/exit@0.2.0;
  export wasi:cli/run@0.2.0;
}"#;

/// A command component that opens a TCP connection to `ip:port` through `wasi:sockets` and
/// exits 0 once connected, 1 if any step fails (the canonical ABI lowering of each import is
/// spelled out: flat parameters, and a return pointer for results wider than one value).
fn connect_component(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let [a, b, c, d] = ip.octets();
    let wat = format!(
        r#"(module
  (import "wasi:sockets/instance-network@0.2.0" "instance-network" (func $instance_network (result i32)))
  (import "wasi:sockets/tcp-create-socket@0.2.0" "create-tcp-socket" (func $create (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.0" "[method]tcp-socket.start-connect"
    (func $start_connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.0" "[method]tcp-socket.finish-connect" (func $finish_connect (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.0" "[method]tcp-socket.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (memory (export "memory") 1)
  (func (export "wasi:cli/run@0.2.0#run") (result i32) (local $net i32) (local $sock i32) (local $p i32)
    (local.set $net (call $instance_network))
    ;; create-tcp-socket(ipv4) -> result<tcp-socket, error-code> at 16
    (call $create (i32.const 0) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then (return (i32.const 1))))
    (local.set $sock (i32.load (i32.const 20)))
    ;; start-connect(sock, net, ipv4{{port, (a, b, c, d)}}) -> result<_, error-code> at 32
    (call $start_connect (local.get $sock) (local.get $net)
      (i32.const 0) (i32.const {port}) (i32.const {a}) (i32.const {b}) (i32.const {c}) (i32.const {d})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 32))
    (if (i32.load8_u (i32.const 32)) (then (return (i32.const 1))))
    ;; finish-connect until it stops saying would-block (8); result at 48
    (loop $wait
      (local.set $p (call $subscribe (local.get $sock)))
      (call $block (local.get $p))
      (call $drop_pollable (local.get $p))
      (call $finish_connect (local.get $sock) (i32.const 48))
      (if (i32.load8_u (i32.const 48))
        (then
          (br_if $wait (i32.eq (i32.load8_u (i32.const 52)) (i32.const 8)))
          (return (i32.const 1)))))
    (i32.const 0)))"#
    );
    encode(&wat, "connect")
}

/// The core module `wat` with the WIT `world` embedded, encoded as a component.
fn encode(wat: &str, world: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    resolve.push_source("io.wit", WIT_IO).unwrap();
    resolve.push_source("sockets.wit", WIT_SOCKETS).unwrap();
    resolve.push_source("cli.wit", WIT_CLI).unwrap();
    resolve.push_source("http.wit", WIT_HTTP).unwrap();
    let pkg = resolve.push_source("world.wit", WIT_WORLD).unwrap();
    let world = resolve.select_world(&[pkg], Some(world)).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// A command component that resolves `name` with `ip-name-lookup` and exits 0 if that
/// succeeded, or with 10 + the `error-code` if it failed.
fn lookup_component(name: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "wasi:sockets/instance-network@0.2.0" "instance-network" (func $instance_network (result i32)))
  (import "wasi:sockets/ip-name-lookup@0.2.0" "resolve-addresses" (func $resolve (param i32 i32 i32 i32)))
  (import "wasi:cli/exit@0.2.0" "exit-with-code" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "{name}")
  (func (export "wasi:cli/run@0.2.0#run") (result i32)
    (call $resolve (call $instance_network) (i32.const 256) (i32.const {len}) (i32.const 16))
    (if (i32.load8_u (i32.const 16))
      (then (call $exit (i32.add (i32.const 10) (i32.load8_u (i32.const 20))))))
    (i32.const 0)))"#,
        len = name.len()
    );
    encode(&wat, "lookup")
}

#[tokio::test]
async fn name_lookup_is_available_only_with_network_access() {
    const PERMANENT_RESOLVER_FAILURE: i32 = 20;
    let f = fixture();
    let component = lookup_component("127.0.0.1");
    let r = run_component(&f, &component, &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(10 + PERMANENT_RESOLVER_FAILURE), "{r:?}");
    let r = run_component(&f, &component, &[], &network(&[]))
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}

#[tokio::test]
async fn a_name_not_in_allowed_hosts_is_refused_before_it_is_resolved() {
    let f = fixture();
    let caps = network(&["93.184.216.34".into(), "api.company.com:443".into()]);
    // `localhost` resolves everywhere: refused all the same, so the refusal comes before any
    // resolution; a name under `.invalid` (RFC 6761) stands for data carried out in a query.
    for name in ["localhost", "c2VjcmV0.exfil.invalid"] {
        let r = run_component(&f, &lookup_component(name), &[], &caps).await;
        assert_denied(r, &format!("look up the name \"{name}\""));
    }
}

#[tokio::test]
async fn a_name_listed_in_allowed_hosts_is_resolved() {
    let f = fixture();
    for listed in ["localhost", "LocalHost:8080"] {
        let r = run_component(
            &f,
            &lookup_component("localhost"),
            &[],
            &network(&[listed.into()]),
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, Some(0), "{listed}: {r:?}");
    }
}

/// A listener on 127.0.0.1 and the number of connections it accepted so far.
struct Listener {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn listener() -> Listener {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            if stream.is_ok() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    Listener { port, accepted }
}

fn network(hosts: &[String]) -> Capabilities {
    Capabilities {
        network_access: true,
        allowed_hosts: hosts.to_vec(),
        ..Capabilities::default()
    }
}

fn assert_denied(r: Result<RunReport, SandboxError>, address: &str) {
    match r {
        Err(
            e @ SandboxError::CapabilityDenied {
                capability: "network_access",
                ..
            },
        ) => {
            assert_eq!(e.code(), "sandbox.capability_denied");
            assert!(e.to_string().contains(address), "{e}");
        }
        other => panic!("expected a network_access denial for {address}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_socket_connect_without_network_access_is_refused() {
    let l = listener();
    let f = fixture();
    let r = run_component(
        &f,
        &connect_component(Ipv4Addr::LOCALHOST, l.port),
        &[],
        &Capabilities::default(),
    )
    .await;
    assert_denied(r, &format!("127.0.0.1:{}", l.port));
    assert_eq!(l.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_socket_connect_to_a_host_not_allowed_is_refused() {
    let l = listener();
    let f = fixture();
    let component = connect_component(Ipv4Addr::LOCALHOST, l.port);
    // Granted, but loopback is not listed (a public host is; another port of loopback is).
    let caps = network(&[
        "93.184.216.34".into(),
        format!("127.0.0.1:{}", l.port.wrapping_add(1)),
    ]);
    assert_denied(
        run_component(&f, &component, &[], &caps).await,
        &format!("127.0.0.1:{}", l.port),
    );
    assert_eq!(l.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_socket_connect_to_an_explicitly_allowed_address_connects() {
    let l = listener();
    let f = fixture();
    let caps = network(&[format!("127.0.0.1:{}", l.port)]);
    let r = run_component(
        &f,
        &connect_component(Ipv4Addr::LOCALHOST, l.port),
        &[],
        &caps,
    )
    .await
    .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    for _ in 0..100 {
        if l.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the listener accepted no connection");
}

#[tokio::test]
async fn a_socket_connect_to_the_metadata_address_is_refused() {
    let f = fixture();
    let component = connect_component(Ipv4Addr::new(169, 254, 169, 254), 80);
    let caps = network(&["metadata.google.internal".into(), "93.184.216.34".into()]);
    assert_denied(
        run_component(&f, &component, &[], &caps).await,
        "169.254.169.254:80",
    );
    assert_denied(
        run_component(&f, &component, &[], &Capabilities::default()).await,
        "169.254.169.254:80",
    );
}

// ---- wasi:http ----

/// The parts of `wasi:http@0.2.0` the HTTP guest uses (types as in wasmtime-wasi-http 48).
const WIT_HTTP: &str = r#"package wasi:http@0.2.0;
interface types {
  use wasi:io/poll@0.2.0.{pollable};
  variant scheme { HTTP, HTTPS, other(string) }
  record DNS-error-payload { rcode: option<string>, info-code: option<u16> }
  record TLS-alert-received-payload { alert-id: option<u8>, alert-message: option<string> }
  record field-size-payload { field-name: option<string>, field-size: option<u32> }
  variant error-code {
    DNS-timeout, DNS-error(DNS-error-payload), destination-not-found, destination-unavailable,
    destination-IP-prohibited, destination-IP-unroutable, connection-refused,
    connection-terminated, connection-timeout, connection-read-timeout,
    connection-write-timeout, connection-limit-reached, TLS-protocol-error,
    TLS-certificate-error, TLS-alert-received(TLS-alert-received-payload), HTTP-request-denied,
    HTTP-request-length-required, HTTP-request-body-size(option<u64>),
    HTTP-request-method-invalid, HTTP-request-URI-invalid, HTTP-request-URI-too-long,
    HTTP-request-header-section-size(option<u32>),
    HTTP-request-header-size(option<field-size-payload>),
    HTTP-request-trailer-section-size(option<u32>), HTTP-request-trailer-size(field-size-payload),
    HTTP-response-incomplete, HTTP-response-header-section-size(option<u32>),
    HTTP-response-header-size(field-size-payload), HTTP-response-body-size(option<u64>),
    HTTP-response-trailer-section-size(option<u32>),
    HTTP-response-trailer-size(field-size-payload), HTTP-response-transfer-coding(option<string>),
    HTTP-response-content-coding(option<string>), HTTP-response-timeout, HTTP-upgrade-failed,
    HTTP-protocol-error, loop-detected, configuration-error, internal-error(option<string>),
  }
  resource fields {
    constructor();
  }
  type headers = fields;
  resource outgoing-request {
    constructor(headers: headers);
    set-path-with-query: func(path-with-query: option<string>) -> result;
    set-scheme: func(scheme: option<scheme>) -> result;
    set-authority: func(authority: option<string>) -> result;
  }
  resource request-options;
  resource incoming-response {
    status: func() -> u16;
  }
  resource future-incoming-response {
    subscribe: func() -> pollable;
    get: func() -> option<result<result<incoming-response, error-code>>>;
  }
}
interface outgoing-handler {
  use types.{outgoing-request, request-options, future-incoming-response, error-code};
  handle: func(request: outgoing-request, options: option<request-options>) -> result<future-incoming-response, error-code>;
}"#;

/// A command component that sends `GET {scheme}://{authority}/` (`scheme` is `http` or `https`)
/// through `wasi:http` and exits 0 on
/// status 200, 3 on another status, 2 if the response future failed, or 10 + the `error-code`
/// the request failed with.
fn http_get_component(scheme: &str, authority: &str) -> Vec<u8> {
    let scheme = u8::from(scheme == "https");
    let wat = format!(
        r#"(module
  (import "wasi:http/types@0.2.0" "[constructor]fields" (func $fields (result i32)))
  (import "wasi:http/types@0.2.0" "[constructor]outgoing-request" (func $request (param i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-request.set-scheme"
    (func $set_scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-request.set-authority"
    (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-request.set-path-with-query"
    (func $set_path (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]future-incoming-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]future-incoming-response.get" (func $get (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]incoming-response.status" (func $status (param i32) (result i32)))
  (import "wasi:http/outgoing-handler@0.2.0" "handle" (func $handle (param i32 i32 i32 i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:cli/exit@0.2.0" "exit-with-code" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "/")
  (data (i32.const 512) "{authority}")
  ;; strings in an error-code are lifted into guest memory: a bump allocator from 4096
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "wasi:cli/run@0.2.0#run") (result i32) (local $req i32) (local $fut i32) (local $p i32)
    (local.set $req (call $request (call $fields)))
    ;; some(HTTP) or some(HTTPS)
    (if (call $set_scheme (local.get $req) (i32.const 1) (i32.const {scheme}) (i32.const 0) (i32.const 0))
      (then (call $exit (i32.const 4))))
    (if (call $set_authority (local.get $req) (i32.const 1) (i32.const 512) (i32.const {len}))
      (then (call $exit (i32.const 5))))
    (if (call $set_path (local.get $req) (i32.const 1) (i32.const 256) (i32.const 1))
      (then (call $exit (i32.const 6))))
    ;; handle(req, none) -> result<future-incoming-response, error-code> at 16 (payload at 24)
    (call $handle (local.get $req) (i32.const 0) (i32.const 0) (i32.const 16))
    (if (i32.load8_u (i32.const 16))
      (then (call $exit (i32.add (i32.const 10) (i32.load8_u (i32.const 24))))))
    (local.set $fut (i32.load (i32.const 24)))
    ;; get -> option<result<result<incoming-response, error-code>>> at 64: the option at 64,
    ;; the outer result at 72, the inner result at 80, its payload at 88
    (loop $wait
      (local.set $p (call $subscribe (local.get $fut)))
      (call $block (local.get $p))
      (call $drop_pollable (local.get $p))
      (call $get (local.get $fut) (i32.const 64))
      (br_if $wait (i32.eqz (i32.load8_u (i32.const 64)))))
    (if (i32.load8_u (i32.const 72)) (then (call $exit (i32.const 2))))
    (if (i32.load8_u (i32.const 80))
      (then (call $exit (i32.add (i32.const 10) (i32.load8_u (i32.const 88))))))
    (if (i32.ne (call $status (i32.load (i32.const 88))) (i32.const 200))
      (then (call $exit (i32.const 3))))
    (i32.const 0)))"#,
        len = authority.len()
    );
    encode(&wat, "http-get")
}

/// A tiny HTTP server on 127.0.0.1 answering every request with `200 OK`, and the number of
/// requests it answered.
fn http_server() -> Listener {
    use std::io::{Read, Write};
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for mut stream in l.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    Listener { port, accepted }
}

#[tokio::test]
async fn an_http_request_without_network_access_is_refused() {
    let s = http_server();
    let component = http_get_component("http", &format!("127.0.0.1:{}", s.port));
    let r = run_component(&fixture(), &component, &[], &Capabilities::default()).await;
    assert_denied(r, &format!("127.0.0.1:{}", s.port));
    assert_eq!(s.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_http_request_to_a_host_not_allowed_is_refused() {
    let s = http_server();
    let component = http_get_component("http", &format!("127.0.0.1:{}", s.port));
    let caps = network(&[
        "93.184.216.34".into(),
        format!("127.0.0.1:{}", s.port.wrapping_add(1)),
    ]);
    let r = run_component(&fixture(), &component, &[], &caps).await;
    assert_denied(r, &format!("127.0.0.1:{}", s.port));
    assert_eq!(s.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_http_request_to_an_allowed_address_gets_its_response() {
    let s = http_server();
    let component = http_get_component("http", &format!("127.0.0.1:{}", s.port));
    let caps = network(&[format!("127.0.0.1:{}", s.port)]);
    let r = run_component(&fixture(), &component, &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(s.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The machine's host name, if it resolves to loopback addresses only (it usually does); the
/// tests using it are skipped otherwise.
fn loopback_host_name(port: u16) -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_string();
    let resolves_to_loopback = (name.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.all(|a| a.ip().is_loopback()))
        .unwrap_or(false);
    if name.is_empty() || name == "localhost" || !resolves_to_loopback {
        eprintln!("skipped: {name:?} does not resolve to loopback only");
        return None;
    }
    Some(name)
}

#[tokio::test]
async fn an_http_host_name_resolving_to_loopback_is_refused_unless_the_address_is_listed() {
    let s = http_server();
    let Some(name) = loopback_host_name(s.port) else {
        return;
    };
    let component = http_get_component("http", &format!("{name}:{}", s.port));
    let f = fixture();
    let r = run_component(
        &f,
        &component,
        &[],
        &network(&[format!("{name}:{}", s.port)]),
    )
    .await;
    assert_denied(r, &format!("{name}:{}", s.port));
    assert_eq!(s.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Listing the name and the address it resolves to lets the request through.
    let caps = network(&[
        format!("{name}:{}", s.port),
        format!("127.0.0.1:{}", s.port),
    ]);
    let r = run_component(&f, &component, &[], &caps).await.unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
}

// ---- wasi:http over TLS ----

/// `error-code` cases of `wasi:http` (the guest exits with 10 + the case).
const TLS_CERTIFICATE_ERROR: i32 = 13;

/// What a [`TlsServer`] saw of the last request it answered.
#[derive(Clone, Debug)]
struct Seen {
    /// The server name the client sent (SNI), if any.
    sni: Option<String>,
    /// The request line and headers.
    head: String,
}

/// A TLS server on 127.0.0.1 answering every request with `200 OK`; its certificate is signed by
/// a test CA (`ca`, which nothing trusts by default).
struct TlsServer {
    port: u16,
    ca: sandbox::CertificateDer<'static>,
    /// TCP connections accepted, whether or not the handshake then succeeded.
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The last request answered.
    seen: std::sync::Arc<std::sync::Mutex<Option<Seen>>>,
}

impl TlsServer {
    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .clone()
            .expect("no request answered")
    }
}

/// Starts a [`TlsServer`] whose certificate names each of `names` (DNS names or IPs).
fn tls_server(names: &[&str]) -> TlsServer {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sandbox test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let config = Arc::new(config);

    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (count, last) = (accepted.clone(), seen.clone());
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (config, last) = (config.clone(), last.clone());
            // A thread per connection: a failed handshake does not hold up the next one.
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let sni = tls.conn.server_name().map(str::to_owned);
                let head = String::from_utf8_lossy(&request).into_owned();
                *last.lock().unwrap() = Some(Seen { sni, head });
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    TlsServer {
        port,
        ca: ca.der().clone(),
        accepted,
        seen,
    }
}

/// A sandbox trusting `ca` for outgoing HTTPS besides the default roots.
fn fixture_trusting(ca: &sandbox::CertificateDer<'static>) -> Fixture {
    let cache = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        limits: limits(),
        cache_dir: cache.path().join("cache"),
        max_instances: 4,
        extra_tls_roots: vec![ca.clone()],
        prepared_cache: Default::default(),
    })
    .unwrap();
    Fixture { sandbox, cache }
}

#[tokio::test]
async fn https_to_a_host_name_connects_to_the_checked_address_and_verifies_the_name() {
    let s = tls_server(&["localhost"]);
    let component = http_get_component("https", &format!("localhost:{}", s.port));
    let caps = network(&[format!("localhost:{}", s.port), "127.0.0.1".into()]);
    let r = run_component(&fixture_trusting(&s.ca), &component, &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(s.accepted(), 1);
    let Seen { sni, head } = s.seen();
    assert_eq!(sni.as_deref(), Some("localhost"));
    // The request line has only the path; `Host` has the authority the guest gave.
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    let host = format!("host: localhost:{}\r\n", s.port);
    assert!(head.to_ascii_lowercase().contains(&host), "{head}");
}

#[tokio::test]
async fn https_without_the_test_ca_fails_in_the_guest_with_a_certificate_error() {
    let s = tls_server(&["localhost"]);
    let component = http_get_component("https", &format!("localhost:{}", s.port));
    let caps = network(&[format!("localhost:{}", s.port), "127.0.0.1".into()]);
    // Not a `capability_denied`: the request was allowed, the certificate is not trusted.
    let r = run_component(&fixture(), &component, &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(10 + TLS_CERTIFICATE_ERROR), "{r:?}");
    assert_eq!(s.accepted(), 1);
    assert!(s.seen.lock().unwrap().is_none());
}

#[tokio::test]
async fn https_to_an_ip_literal_is_verified_against_the_ip() {
    // A certificate naming only `localhost` is not valid for 127.0.0.1 ...
    let s = tls_server(&["localhost"]);
    let component = http_get_component("https", &format!("127.0.0.1:{}", s.port));
    let caps = network(&[format!("127.0.0.1:{}", s.port)]);
    let r = run_component(&fixture_trusting(&s.ca), &component, &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(10 + TLS_CERTIFICATE_ERROR), "{r:?}");
    assert_eq!(s.accepted(), 1);
    // ... one naming the IP is, and the IP is not sent as SNI.
    let s = tls_server(&["localhost", "127.0.0.1"]);
    let component = http_get_component("https", &format!("127.0.0.1:{}", s.port));
    let caps = network(&[format!("127.0.0.1:{}", s.port)]);
    let r = run_component(&fixture_trusting(&s.ca), &component, &[], &caps)
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(s.seen().sni, None);
}

#[tokio::test]
async fn an_https_host_name_resolving_to_loopback_is_refused_unless_the_address_is_listed() {
    let Some(name) = loopback_host_name(0) else {
        return;
    };
    let s = tls_server(&[name.as_str()]);
    let component = http_get_component("https", &format!("{name}:{}", s.port));
    let f = fixture_trusting(&s.ca);
    let r = run_component(
        &f,
        &component,
        &[],
        &network(&[format!("{name}:{}", s.port)]),
    )
    .await;
    assert_denied(r, &format!("{name}:{}", s.port));
    assert_eq!(s.accepted(), 0);
    // Listing the address too lets the request through, verified against the name.
    let caps = network(&[
        format!("{name}:{}", s.port),
        format!("127.0.0.1:{}", s.port),
    ]);
    let r = run_component(&f, &component, &[], &caps).await.unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(s.seen().sni.as_deref(), Some(name.as_str()));
}

#[tokio::test]
async fn an_http_request_to_a_server_that_never_answers_ends_with_the_timeout() {
    // The server accepts and then holds the connection without a response.
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in l.incoming().flatten() {
            held.push(stream);
        }
    });
    let f = fixture_with(sandbox::Limits {
        max_execution_time: Duration::from_millis(500),
        ..limits()
    });
    let component = http_get_component("http", &format!("127.0.0.1:{port}"));
    let started = std::time::Instant::now();
    let r = run_component(
        &f,
        &component,
        &[],
        &network(&[format!("127.0.0.1:{port}")]),
    )
    .await;
    assert_eq!(code(r), "sandbox.timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A preview 1 command whose `_start` runs a loop of exactly `n` iterations.
fn count_loop(n: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {n}))))))"#
    )
}

#[tokio::test]
async fn a_component_loop_of_exactly_max_iterations_completes_and_one_more_fails() {
    let f = fixture();
    let r = run_component(&f, &adapt(&count_loop(1000)), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let r = run_component(&f, &adapt(&count_loop(1001)), &[], &Capabilities::default()).await;
    assert_eq!(r.unwrap_err(), SandboxError::IterationLimit { limit: 1000 });
}

#[tokio::test]
async fn an_infinite_loop_component_ends_with_the_iteration_limit_before_the_deadline() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;
    let r = run_component(&fixture(), &adapt(wat), &[], &Capabilities::default()).await;
    assert_eq!(r.unwrap_err(), SandboxError::IterationLimit { limit: 1000 });
}

/// A preview 1 command whose `_start` calls `$depth(n)`, which recurses `n` frames deep: with
/// `_start`, a chain of `n + 1` frames in the program's module.
fn recursion(n: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
  (func $depth (param $n i32) (result i32)
    (if (i32.le_u (local.get $n) (i32.const 1)) (then (return (i32.const 1))))
    (i32.add (i32.const 1) (call $depth (i32.sub (local.get $n) (i32.const 1)))))
  (func (export "_start") (drop (call $depth (i32.const {n})))))"#
    )
}

#[tokio::test]
async fn component_recursion_of_exactly_max_stack_depth_succeeds_and_one_deeper_fails() {
    let f = fixture();
    // max_stack_depth is 50: `_start` and 49 frames of `$depth`.
    let r = run_component(&f, &adapt(&recursion(49)), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let r = run_component(&f, &adapt(&recursion(50)), &[], &Capabilities::default()).await;
    assert_eq!(r.unwrap_err(), SandboxError::StackOverflow { limit: 50 });
}

#[tokio::test]
async fn the_component_depth_limit_is_the_configured_one_not_the_native_guard() {
    // Far below what wasmtime's 1 MiB native stack would allow: the exact boundary can only come
    // from the instrumented counter.
    let f = fixture_with(sandbox::Limits {
        max_stack_depth: 3,
        ..limits()
    });
    let ok = run_component(&f, &adapt(&recursion(2)), &[], &Capabilities::default())
        .await
        .unwrap();
    assert_eq!(ok.exit_code, Some(0), "{ok:?}");
    let r = run_component(&f, &adapt(&recursion(3)), &[], &Capabilities::default()).await;
    assert_eq!(r.unwrap_err(), SandboxError::StackOverflow { limit: 3 });
}

#[tokio::test]
async fn a_component_own_unreachable_is_a_plain_trap() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
    let r = run_component(&fixture(), &adapt(wat), &[], &Capabilities::default()).await;
    let err = r.unwrap_err();
    assert_eq!(err.code(), "sandbox.trap", "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

/// A hand-written component (no adapter) whose `run` traps in a function it names after the
/// instrumentation's trap functions (in the name section, through the WAT names).
const FORGED_LIMIT_NAMES: &str = r#"(component
  (core module $m
    (func $__sandbox_depth_limit unreachable)
    (func $__sandbox_iteration_limit (call $__sandbox_depth_limit))
    (func (export "run") (result i32) (call $__sandbox_iteration_limit) (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))"#;

#[tokio::test]
async fn a_component_naming_its_functions_like_the_instrumentation_gets_a_plain_trap() {
    let r = run_component(
        &fixture(),
        FORGED_LIMIT_NAMES.as_bytes(),
        &[],
        &Capabilities::default(),
    )
    .await;
    assert_eq!(code(r), "sandbox.trap");
}

/// A hand-written component whose inner module has a start function: `run` returns `ok` only if
/// it ran (the instrumentation keeps a component's start sections).
const START_RAN: &str = r#"(component
  (core module $m
    (global $failed (mut i32) (i32.const 1))
    (func $start (global.set $failed (i32.const 0)))
    (start $start)
    (func (export "run") (result i32) (global.get $failed)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))"#;

#[tokio::test]
async fn an_inner_module_start_function_still_runs_at_instantiation() {
    let r = run_component(
        &fixture(),
        START_RAN.as_bytes(),
        &[],
        &Capabilities::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.exit_code, Some(0));
}

/// A hand-written component whose inner module loops forever in its start function.
const START_LOOPS: &str = r#"(component
  (core module $m
    (func $start (loop $l (br $l)))
    (start $start)
    (func (export "run") (result i32) (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_instance)))"#;

#[tokio::test]
async fn an_inner_start_function_looping_forever_ends_with_the_iteration_limit() {
    let r = run_component(
        &fixture(),
        START_LOOPS.as_bytes(),
        &[],
        &Capabilities::default(),
    )
    .await;
    assert_eq!(r.unwrap_err(), SandboxError::IterationLimit { limit: 1000 });
}

#[tokio::test]
async fn a_truncated_component_or_an_invalid_inner_module_is_refused_at_prepare() {
    let f = fixture();
    let whole = adapt(&hello());
    for len in [whole.len() / 3, whole.len() / 2, whole.len() - 1] {
        let err = f.sandbox.prepare(&whole[..len]).unwrap_err();
        assert_eq!(err.code(), "sandbox.invalid_module", "{len}: {err}");
    }
    // The body leaves nothing on the stack for its i32 result.
    let invalid = r#"(component (core module (func (result i32))))"#;
    let err = f.sandbox.prepare(invalid.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "sandbox.invalid_module", "{err}");
}
