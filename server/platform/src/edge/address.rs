//! Whose request it is: the socket's peer, or, when that peer is a trusted proxy
//! (rate_limit.yml `trusted_proxies`, an addition to the spec; none by default), the address the
//! proxies name in `X-Forwarded-For`.
//!
//! The header is read from the right: each hop appends the address it received from, so the
//! rightmost entry that is not itself a trusted proxy is the client. Entries left of it could be
//! written by anyone and are ignored; a header from an untrusted peer is ignored entirely.

use std::net::IpAddr;

use ipnet::IpNet;

/// The most `X-Forwarded-For` entries read (a longer header is read from its right end).
const MAX_HOPS: usize = 16;

/// The client address of a request from `peer` carrying `forwarded_for` (every
/// `X-Forwarded-For` header value, in order).
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    if !contains(trusted, peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .rev()
        .flat_map(|v| v.rsplit(','))
        .take(MAX_HOPS)
        .collect();
    let mut client = peer;
    for hop in hops {
        let Some(ip) = parse_hop(hop) else {
            // A malformed entry: nothing left of it can be trusted.
            break;
        };
        client = ip;
        if !contains(trusted, ip) {
            break;
        }
    }
    client
}

/// An IPv4 address mapped into IPv6 is the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    // `[2001:db8::1]:443` and `192.0.2.1:443` carry ports some proxies add.
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Whether `ip` falls in one of `nets`.
pub fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_s_forwarded_for_is_ignored() {
        let got = client_address(ip("198.51.100.7"), ["203.0.113.1"].into_iter(), &[]);
        assert_eq!(got, ip("198.51.100.7"));
        let got = client_address(
            ip("198.51.100.7"),
            ["203.0.113.1"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_left_of_it_do_not_count() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = client_address(
            ip("10.0.0.2"),
            ["1.2.3.4, 203.0.113.9", "10.0.0.5"].into_iter(),
            &trusted,
        );
        assert_eq!(got, ip("203.0.113.9"));
        let got = client_address(ip("10.0.0.2"), ["203.0.113.9:5555"].into_iter(), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
        let got = client_address(ip("10.0.0.2"), ["[2001:db8::1]:443"].into_iter(), &trusted);
        assert_eq!(got, ip("2001:db8::1"));
        // A garbled entry stops the walk at the last good hop.
        let got = client_address(ip("10.0.0.2"), ["203.0.113.9, bogus"].into_iter(), &trusted);
        assert_eq!(got, ip("10.0.0.2"));
        // No header: the proxy itself.
        let got = client_address(ip("10.0.0.2"), std::iter::empty(), &trusted);
        assert_eq!(got, ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        assert_eq!(canonical(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert!(contains(&nets(&["192.0.2.0/24"]), ip("::ffff:192.0.2.1")));
    }
}
