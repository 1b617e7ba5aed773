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

/// IPv4 ranges a guest reaches only through an entry naming the exact address: the IANA IPv4
/// Special-Purpose Address Registry (RFC 6890 and its updates), multicast and the reserved
/// class E space with the limited broadcast address.
const RESTRICTED_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network" (RFC 791)
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space, CGNAT (RFC 6598); 100.100.100.200
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments (DS-Lite, NAT64 discovery…)
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation TEST-NET-1
    (Ipv4Addr::new(192, 31, 196, 0), 24), // AS112-v4
    (Ipv4Addr::new(192, 52, 193, 0), 24), // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private (RFC 1918)
    (Ipv4Addr::new(192, 175, 48, 0), 24), // direct delegation AS112 service
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking (RFC 2544)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, with 255.255.255.255 (limited broadcast)
];

/// IPv6 ranges a guest reaches only through an entry naming the exact address: the IANA IPv6
/// Special-Purpose Address Registry, multicast, the deprecated site-local and IPv4-compatible
/// ranges. IPv4-mapped addresses (`::ffff:0:0/96`) are judged as the IPv4 address they carry.
const RESTRICTED_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // IPv4-compatible (deprecated), :: and ::1
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96), // IPv4-translated (RFC 2765)
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // IPv4/IPv6 translation (NAT64)
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use IPv4/IPv6 translation
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64), // dummy IPv6 prefix (RFC 9780)
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments (Teredo…)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48), // direct delegation AS112
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16), // segment routing SIDs (RFC 9602)
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local, fd00:ec2::254
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

fn restricted_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    RESTRICTED_V4.iter().any(|&(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        ip & mask == u32::from(net) & mask
    })
}

fn restricted_v6(ip: Ipv6Addr) -> bool {
    let ip = u128::from(ip);
    RESTRICTED_V6.iter().any(|&(net, len)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        ip & mask == u128::from(net) & mask
    })
}

/// A name as the guest asked for it, compared without case and without one trailing dot.
fn normalized_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
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

    /// Whether `network_access` is granted at all.
    pub fn granted(&self) -> bool {
        self.granted
    }

    /// Whether the guest may resolve `name` (`wasi:sockets/ip-name-lookup`): only with the
    /// grant, and only a name an `allowed_hosts` entry names (any port; case and one trailing
    /// dot ignored) or an IP literal (which resolves to itself without a query). Anything else
    /// is refused before a query is sent, so names cannot carry data out through DNS.
    pub fn permits_lookup(&self, name: &str) -> bool {
        if !self.granted {
            return false;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalized_name(name);
        self.entries.iter().any(
            |entry| matches!(&entry.host, Host::Name(listed) if normalized_name(listed) == name),
        )
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

    /// Each special-purpose range: its first and last address are restricted, and the addresses
    /// just outside it are not (left out where the neighbour is another restricted range).
    #[test]
    fn every_special_purpose_range_is_restricted_up_to_its_boundaries() {
        let v4: &[(&str, &str, &[&str])] = &[
            ("0.0.0.0", "0.255.255.255", &["1.0.0.0"]),
            ("10.0.0.0", "10.255.255.255", &["9.255.255.255", "11.0.0.0"]),
            (
                "100.64.0.0",
                "100.127.255.255",
                &["100.63.255.255", "100.128.0.0"],
            ),
            (
                "127.0.0.0",
                "127.255.255.255",
                &["126.255.255.255", "128.0.0.0"],
            ),
            (
                "169.254.0.0",
                "169.254.255.255",
                &["169.253.255.255", "169.255.0.0"],
            ),
            (
                "172.16.0.0",
                "172.31.255.255",
                &["172.15.255.255", "172.32.0.0"],
            ),
            (
                "192.0.0.0",
                "192.0.0.255",
                &["191.255.255.255", "192.0.1.0"],
            ),
            ("192.0.2.0", "192.0.2.255", &["192.0.1.255", "192.0.3.0"]),
            (
                "192.31.196.0",
                "192.31.196.255",
                &["192.31.195.255", "192.31.197.0"],
            ),
            (
                "192.52.193.0",
                "192.52.193.255",
                &["192.52.192.255", "192.52.194.0"],
            ),
            (
                "192.88.99.0",
                "192.88.99.255",
                &["192.88.98.255", "192.88.100.0"],
            ),
            (
                "192.168.0.0",
                "192.168.255.255",
                &["192.167.255.255", "192.169.0.0"],
            ),
            (
                "192.175.48.0",
                "192.175.48.255",
                &["192.175.47.255", "192.175.49.0"],
            ),
            (
                "198.18.0.0",
                "198.19.255.255",
                &["198.17.255.255", "198.20.0.0"],
            ),
            (
                "198.51.100.0",
                "198.51.100.255",
                &["198.51.99.255", "198.51.101.0"],
            ),
            (
                "203.0.113.0",
                "203.0.113.255",
                &["203.0.112.255", "203.0.114.0"],
            ),
            ("224.0.0.0", "239.255.255.255", &["223.255.255.255"]),
            ("240.0.0.0", "255.255.255.255", &[]),
        ];
        let v6: &[(&str, &str, &[&str])] = &[
            ("::", "::ffff:ffff", &["::1:0:0"]),
            (
                "::ffff:0:0:0",
                "::ffff:0:ffff:ffff",
                &["::fffe:ffff:ffff:ffff", "::ffff:1:0:0"],
            ),
            (
                "64:ff9b::",
                "64:ff9b::ffff:ffff",
                &["64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "64:ff9b::1:0:0"],
            ),
            (
                "64:ff9b:1::",
                "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
                &["64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "64:ff9b:2::"],
            ),
            (
                "100::",
                "100::ffff:ffff:ffff:ffff",
                &["ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
            ),
            (
                "100:0:0:1::",
                "100:0:0:1:ffff:ffff:ffff:ffff",
                &["100:0:0:2::"],
            ),
            (
                "2001::",
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"],
            ),
            (
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                &["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"],
            ),
            (
                "2002::",
                "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"],
            ),
            (
                "2620:4f:8000::",
                "2620:4f:8000:ffff:ffff:ffff:ffff:ffff",
                &["2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::"],
            ),
            (
                "3fff::",
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"],
            ),
            (
                "5f00::",
                "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f01::"],
            ),
            (
                "fc00::",
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"],
            ),
            (
                "fe80::",
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
            ),
            ("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
        ];
        for (first, last, outside) in v4.iter().chain(v6) {
            for inside in [first, last] {
                assert!(
                    is_restricted(inside.parse().unwrap()),
                    "{inside} ({first} range)"
                );
            }
            for out in *outside {
                assert!(
                    !is_restricted(out.parse().unwrap()),
                    "{out} ({first} range)"
                );
            }
        }
        // IPv4 ranges hold for IPv4-mapped IPv6 addresses too.
        for (first, last, outside) in v4 {
            for inside in [first, last] {
                assert!(
                    is_restricted(format!("::ffff:{inside}").parse().unwrap()),
                    "{inside}"
                );
            }
            for out in *outside {
                assert!(
                    !is_restricted(format!("::ffff:{out}").parse().unwrap()),
                    "{out}"
                );
            }
        }
    }

    #[test]
    fn only_listed_names_and_ip_literals_may_be_looked_up() {
        let caps = |granted: bool| crate::Capabilities {
            network_access: granted,
            allowed_hosts: vec![
                "API.company.com:443".into(),
                "localhost".into(),
                "10.0.0.1".into(),
            ],
            ..crate::Capabilities::default()
        };
        let policy = NetworkPolicy::new(&caps(true));
        for name in [
            "api.company.com",
            "Api.Company.Com.",
            "localhost",
            "93.184.216.34",
            "::1",
            "[::1]",
        ] {
            assert!(policy.permits_lookup(name), "{name}");
        }
        for name in [
            "data.company.com",
            "secret-data.attacker.example",
            "x.api.company.com",
            "company.com",
            "api.company.com:443",
            "",
        ] {
            assert!(!policy.permits_lookup(name), "{name}");
        }
        assert!(!NetworkPolicy::new(&caps(false)).permits_lookup("api.company.com"));
    }
}
