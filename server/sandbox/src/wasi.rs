//! Builds the WASI context of a run from its [`Capabilities`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{Deterministic, FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::Capabilities;
use crate::error::SandboxError;
use crate::network::NetworkPolicy;
use crate::output::CappedOutput;
use crate::preopen;

/// Capability refusals observed during a run (the guest saw an error; the run reports them).
#[derive(Clone, Debug, Default)]
pub(crate) struct Denials(Arc<Mutex<Vec<SandboxError>>>);

impl Denials {
    pub(crate) fn push(&self, e: SandboxError) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e);
    }

    pub(crate) fn first(&self) -> Option<SandboxError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .cloned()
    }
}

/// A clock stopped at the Unix epoch (wall) or at zero (monotonic), for runs without
/// `system_calls`.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// What the guest is given besides capabilities.
pub(crate) struct Io<'a> {
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub stdin: Vec<u8>,
    pub stdout: CappedOutput,
    pub stderr: CappedOutput,
}

/// The program name the guest sees as `argv[0]`.
pub(crate) const PROGRAM_NAME: &str = "module";

/// Environment variables need `environment_access`.
pub(crate) fn check_env(
    caps: &Capabilities,
    env: &BTreeMap<String, String>,
) -> Result<(), SandboxError> {
    if !env.is_empty() && !caps.environment_access {
        return Err(SandboxError::CapabilityDenied {
            capability: "environment_access",
            detail: format!("to {} variable(s)", env.len()),
        });
    }
    Ok(())
}

pub(crate) fn builder(
    caps: &Capabilities,
    io: Io<'_>,
    denials: &Denials,
) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = WasiCtxBuilder::new();
    b.stdin(MemoryInputPipe::new(io.stdin));
    b.stdout(io.stdout);
    b.stderr(io.stderr);
    b.arg(PROGRAM_NAME);
    b.args(io.args);
    check_env(caps, io.env)?;
    for (k, v) in io.env {
        b.env(k, v);
    }
    if caps.file_access {
        for path in &caps.allowed_paths {
            // Opened without following links and checked at every run (see `preopen.rs`); a
            // directory that no longer passes refuses the run.
            let denied = |reason: String| SandboxError::CapabilityDenied {
                capability: "file_access",
                detail: format!("to {}, because {reason},", path.display()),
            };
            let dir = preopen::open(path).map_err(|e| denied(e.to_string()))?;
            let guest = path.to_string_lossy();
            b.preopened_dir(dir.proc_path(), guest.as_ref(), FsPerms::ReadWrite)
                .map_err(|e| denied(e.to_string()))?;
        }
    }
    let policy = NetworkPolicy::new(caps);
    let seen = denials.clone();
    b.socket_addr_check(move |addr, use_| {
        let policy = policy.clone();
        let seen = seen.clone();
        Box::pin(async move {
            match policy.permit(addr, use_).await {
                Ok(()) => true,
                Err(e) => {
                    seen.push(e);
                    false
                }
            }
        })
    });
    // wasmtime-wasi refuses TCP and UDP unless allowed. They are allowed whatever the grant so
    // that every address a guest uses reaches the check above, which refuses all of them without
    // `network_access` and records the refusal (the run then ends in `capability_denied`).
    // Creating a socket is harmless; binding is limited to the ephemeral wildcard by the policy.
    b.allow_tcp(true);
    b.allow_udp(true);
    // Name lookup is available only with the grant, and then only for names listed in
    // `allowed_hosts` (the component linker's `ip-name-lookup` is `lookup.rs`, which checks the
    // name first; preview 1 has no sockets). Without the grant the guest gets
    // `permanent-resolver-failure` and nothing is recorded.
    b.allow_ip_name_lookup(caps.network_access);
    if !caps.system_calls {
        b.wall_clock(FrozenClock);
        b.monotonic_clock(FrozenClock);
        b.secure_random(Deterministic::new(vec![0]));
        b.insecure_random(Deterministic::new(vec![0]));
        b.insecure_random_seed(0);
    }
    Ok(b)
}
