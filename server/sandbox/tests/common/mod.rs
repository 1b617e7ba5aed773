//! Helpers shared by the sandbox integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use sandbox::{
    Capabilities, Invocation, Limits, RunReport, Sandbox, SandboxError, SandboxOptions, Value,
};
use tempfile::TempDir;

/// Small limits so the tests are fast: 4 pages of memory, depth 50, 1000 iterations.
pub fn limits() -> Limits {
    Limits {
        max_memory_bytes: 4 * 65536,
        max_execution_time: Duration::from_secs(5),
        max_stack_depth: 50,
        max_table_size: 100,
        max_globals: 10,
        max_iterations: Some(1000),
        max_output_bytes: 1024,
    }
}

pub struct Fixture {
    pub sandbox: Sandbox,
    pub cache: TempDir,
}

pub fn fixture_with(limits: Limits) -> Fixture {
    let cache = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        limits,
        cache_dir: cache.path().join("cache"),
        max_instances: 4,
        extra_tls_roots: Vec::new(),
        prepared_cache: Default::default(),
    })
    .unwrap();
    Fixture { sandbox, cache }
}

pub fn fixture() -> Fixture {
    fixture_with(limits())
}

impl Fixture {
    pub async fn call(
        &self,
        wat: &str,
        function: &str,
        args: &[Value],
    ) -> Result<RunReport, SandboxError> {
        let prepared = self.sandbox.prepare(wat.as_bytes()).unwrap();
        let invocation = Invocation::Call {
            function: function.into(),
            args: args.to_vec(),
        };
        self.sandbox
            .run(&prepared, &invocation, &Capabilities::default())
            .await
    }

    pub async fn command(
        &self,
        wat: &str,
        args: &[&str],
        env: &[(&str, &str)],
        caps: &Capabilities,
    ) -> Result<RunReport, SandboxError> {
        let prepared = self.sandbox.prepare(wat.as_bytes()).unwrap();
        let invocation = Invocation::Command {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            stdin: Vec::new(),
        };
        self.sandbox.run(&prepared, &invocation, caps).await
    }
}

/// The error code of a run that must fail.
pub fn code(r: Result<RunReport, SandboxError>) -> &'static str {
    match r {
        Ok(report) => panic!("expected an error, got {report:?}"),
        Err(e) => e.code(),
    }
}

/// Imports of the WASI functions the command modules below use.
pub const WASI_IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"#;

/// A command that opens `path` relative to the first preopen (fd 3), copies it to stdout and
/// exits 0, or exits with the WASI errno of the failing call.
pub fn read_file_module(path: &str) -> String {
    format!(
        r#"(module {WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 256) "{path}")
  (func (export "_start") (local $errno i32) (local $fd i32)
    (local.set $errno (call $path_open (i32.const 3) (i32.const 1) (i32.const 256) (i32.const {len})
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
    (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
    (local.set $fd (i32.load (i32.const 0)))
    ;; iovec at 8: buffer 1024, 512 bytes; nread at 16
    (i32.store (i32.const 8) (i32.const 1024))
    (i32.store (i32.const 12) (i32.const 512))
    (local.set $errno (call $fd_read (local.get $fd) (i32.const 8) (i32.const 1) (i32.const 16)))
    (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
    (i32.store (i32.const 12) (i32.load (i32.const 16)))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 20)))))"#,
        len = path.len()
    )
}

/// A preview 1 command (WAT) as a WASI 0.2 command component, through wasmtime 48's preview 1
/// command adapter.
pub fn adapt(wat: &str) -> Vec<u8> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    };
    let module = wat::parse_str(wat).unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        )
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}
