//! The outbound-address check behind `network_access` (wasmtime-wasi's socket address hook).
//!
//! An address is allowed only if it matches an `allowed_hosts` entry (and its port, when the
//! entry names one). Loopback, private (RFC 1918, CGNAT, ULA), link-local, unspecified,
//! multicast and cloud metadata addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200) are
//! allowed only through an entry naming that exact IP (or `localhost` for loopback): a host
//! name that resolves to one of them is refused, which also defeats DNS rebinding.
//!
//! Outbound only: listening and accepting are always refused. Binding is allowed only to the
//! unspecified address with port 0 (the implicit ephemeral bind wasmtime-wasi checks before
//! every connect), so the connect check that follows names the real destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasmtime_wasi::sockets::SocketAddrUse;

use crate::error::SandboxError;

#[derive(Clone, Debug)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

#[derive(Clone, Debug)]
struct Entry {
    host: Host,
    port: Option<u16>,
}

/// The network grant of one run.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    granted: bool,
    entries: Vec<Entry>,
}

fn parse_entry(s: &str) -> Entry {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Entry {
            host: Host::Ip(addr.ip()),
            port: Some(addr.port()),
        };
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Entry {
            host: Host::Ip(ip),
            port: None,
        };
    }
    match s.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => Entry {
            host: Host::Name(name.to_ascii_lowercase()),
            port: port.parse().ok(),
        },
        _ => Entry {
            host: Host::Name(s.to_ascii_lowercase()),
            port: None,
        },
    }
}

/// Whether `ip` is an address a guest must not reach unless that exact address is listed.
pub(crate) fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => restricted_v4(v4),
            None => restricted_v6(v6),
        },
    }
}

fn restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || (a == 100 && (64..128).contains(&b)) // CGNAT, includes 100.100.100.200
        || a == 0
}

fn restricted_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254
        || (first & 0xffc0) == 0xfe80 // link-local
}

impl NetworkPolicy {
    /// The policy for `capabilities` (`network_access` and `allowed_hosts`).
    pub fn new(capabilities: &crate::Capabilities) -> Self {
        Self {
            granted: capabilities.network_access,
            entries: capabilities
                .allowed_hosts
                .iter()
                .map(|h| parse_entry(h))
                .collect(),
        }
    }

    /// The socket address hook: decides one use of `addr` by the guest.
    pub async fn permit(&self, addr: SocketAddr, use_: SocketAddrUse) -> Result<(), SandboxError> {
        let denied = |what: &str| SandboxError::CapabilityDenied {
            capability: "network_access",
            detail: format!("to {what} {addr}"),
        };
        match use_ {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                if addr.ip().is_unspecified() && addr.port() == 0 {
                    Ok(())
                } else {
                    Err(denied("bind"))
                }
            }
            SocketAddrUse::TcpListen => Err(denied("listen on")),
            SocketAddrUse::TcpAccept => Err(denied("accept from")),
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                self.check(addr).await
            }
        }
    }

    /// Whether the authority `host:port` of an outgoing HTTP request is listed: a name entry
    /// equal to `host` (`localhost` also matches a loopback IP), or an IP entry equal to it, with
    /// the entry's port (if any) equal to `port`. Every address `host` resolves to must then
    /// also pass [`NetworkPolicy::check`] before anything connects.
    pub fn permits_authority(&self, host: &str, port: u16) -> bool {
        if !self.granted {
            return false;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| {
            if entry.port.is_some_and(|p| p != port) {
                return false;
            }
            match (&entry.host, ip) {
                (Host::Ip(listed), Some(ip)) => *listed == ip,
                (Host::Name(name), Some(ip)) => name == "localhost" && ip.is_loopback(),
                (Host::Name(name), None) => *name == host,
                (Host::Ip(_), None) => false,
            }
        })
    }

    /// Checks one outbound destination; resolves the listed host names to compare.
    pub async fn check(&self, addr: SocketAddr) -> Result<(), SandboxError> {
        let denied = || SandboxError::CapabilityDenied {
            capability: "network_access",
            detail: format!("to {addr}"),
        };
        if !self.granted {
            return Err(denied());
        }
        let restricted = is_restricted(addr.ip());
        for entry in &self.entries {
            if entry.port.is_some_and(|p| p != addr.port()) {
                continue;
            }
            match &entry.host {
                Host::Ip(ip) if *ip == addr.ip() => return Ok(()),
                Host::Ip(_) => {}
                Host::Name(name) if name == "localhost" => {
                    if addr.ip().is_loopback() {
                        return Ok(());
                    }
                }
                Host::Name(name) => {
                    if restricted {
                        continue;
                    }
                    let Ok(resolved) = tokio::net::lookup_host((name.as_str(), addr.port())).await
                    else {
                        continue;
                    };
                    if resolved.into_iter().any(|r| r.ip() == addr.ip()) {
                        return Ok(());
                    }
                }
            }
        }
        Err(denied())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_private_and_loopback_addresses_are_restricted() {
        for ip in [
            "169.254.169.254",
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "fd00:ec2::254",
            "::1",
            "fe80::1",
            "100.100.100.200",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_restricted(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!is_restricted(ip.parse().unwrap()), "{ip}");
        }
    }
}
