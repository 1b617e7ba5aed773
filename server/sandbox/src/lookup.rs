//! `wasi:sockets/ip-name-lookup` limited to the names of `allowed_hosts`.
//!
//! wasmtime-wasi resolves any name once lookups are allowed and has no per-name hook, so a guest
//! granted `network_access` could carry data out in DNS queries for names of its choosing
//! (`<secret>.attacker.example`). The component linker therefore shadows that interface with
//! this one: a name no `allowed_hosts` entry names is refused before anything is resolved (the
//! guest sees `access-denied`, the refusal is recorded and the run ends in
//! `sandbox.capability_denied`); a listed name or an IP literal (which resolves to itself, no
//! query) goes to wasmtime-wasi's own implementation, as does everything without the grant
//! (which it refuses with `permanent-resolver-failure`, as before).

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, HostNetwork, IpAddress, Network,
};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use crate::component::ComponentState;
use crate::error::SandboxError;
use crate::network::NetworkPolicy;
use crate::wasi::Denials;

/// Longest name quoted in a refusal (a DNS name has at most 253 characters).
const MAX_NAME_SHOWN: usize = 253;

/// The lookup policy of one component run (kept in its store data).
pub(crate) struct LookupPolicy {
    pub(crate) policy: NetworkPolicy,
    pub(crate) denials: Denials,
}

/// wasmtime-wasi's socket view of a run, with the run's lookup policy.
pub(crate) struct GuardedLookup<'a> {
    sockets: WasiSocketsCtxView<'a>,
    lookup: &'a LookupPolicy,
}

struct Guarded;

impl HasData for Guarded {
    type Data<'a> = GuardedLookup<'a>;
}

fn view(state: &mut ComponentState) -> GuardedLookup<'_> {
    GuardedLookup {
        sockets: WasiSocketsCtxView {
            ctx: state.ctx.sockets(),
            table: &mut state.table,
        },
        lookup: &state.lookup,
    }
}

/// Replaces wasmtime-wasi's `wasi:sockets/ip-name-lookup` in `linker` (which already has it).
pub(crate) fn shadow(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = ip_name_lookup::add_to_linker::<ComponentState, Guarded>(linker, view);
    linker.allow_shadowing(false);
    result
}

impl Host for GuardedLookup<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let granted = self.lookup.policy.granted();
        if granted && !self.lookup.policy.permits_lookup(&name) {
            let shown: String = name.chars().take(MAX_NAME_SHOWN).collect();
            self.lookup.denials.push(SandboxError::CapabilityDenied {
                capability: "network_access",
                detail: format!("to look up the name \"{}\"", shown.escape_debug()),
            });
            return Err(ErrorCode::AccessDenied.into());
        }
        self.sockets.resolve_addresses(network, name)
    }
}

/// The error conversions `ip-name-lookup` relies on, as wasmtime-wasi does them.
impl network::Host for GuardedLookup<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, err)
    }
}

impl HostNetwork for GuardedLookup<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        HostNetwork::drop(&mut self.sockets, this)
    }
}

impl HostResolveAddressStream for GuardedLookup<'_> {
    fn resolve_next_address(
        &mut self,
        resource: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        self.sockets.resolve_next_address(resource)
    }

    fn subscribe(
        &mut self,
        resource: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.sockets, resource)
    }

    fn drop(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.sockets, resource)
    }
}
