//! The SSRF guard: a route names a host, but DNS decides the address. An
//! address that reaches the host itself (loopback, or any address of its own
//! interfaces), its LAN, a cloud metadata service, or any other IANA
//! special-purpose range is refused unless the route names it (as its host
//! or in `addresses`).

use super::rules::{CompiledRoute, HostPattern};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The addresses of this host's own interfaces, read once when the sidecar
/// starts: a name resolving to one of them would reach a service listening
/// on the host, whatever range the address is in.
#[derive(Debug, Clone, Default)]
pub struct HostAddresses {
    addrs: Vec<(IpAddr, String)>,
}

impl HostAddresses {
    /// Every address of every interface (`getifaddrs`). A host where that
    /// fails has no addresses the guard can name; loopback and private
    /// ranges are still refused by kind.
    pub fn read() -> HostAddresses {
        let mut addrs = Vec::new();
        if let Ok(interfaces) = nix::ifaddrs::getifaddrs() {
            for interface in interfaces {
                let Some(address) = interface.address else {
                    continue;
                };
                let ip = if let Some(v4) = address.as_sockaddr_in() {
                    IpAddr::V4(v4.ip())
                } else if let Some(v6) = address.as_sockaddr_in6() {
                    IpAddr::V6(v6.ip())
                } else {
                    continue;
                };
                if !addrs.iter().any(|(known, _)| *known == ip) {
                    addrs.push((ip, interface.interface_name));
                }
            }
        }
        HostAddresses { addrs }
    }

    /// The interface `ip` belongs to, if it is one of this host's addresses
    /// (an IPv4-mapped form counts as the IPv4 address).
    pub fn interface_of(&self, ip: IpAddr) -> Option<&str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.addrs
            .iter()
            .find(|(known, _)| *known == ip)
            .map(|(_, name)| name.as_str())
    }

    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs.iter().map(|(ip, _)| *ip)
    }
}

/// Which kind of special-purpose address `ip` is (IANA's IPv4 and IPv6
/// special-purpose registries, plus the metadata address), or `None` for an
/// ordinary public one. Addresses that carry an IPv4 address (IPv4-mapped,
/// NAT64, 6to4) are judged by that address.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([169, 254, 169, 254], 32, "metadata"),
        ([0, 0, 0, 0], 8, "unspecified (\"this network\")"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "CGNAT (shared)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignment"),
        ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
        ([192, 31, 196, 0], 24, "AS112"),
        ([192, 52, 193, 0], 24, "AMT"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private"),
        ([192, 175, 48, 0], 24, "AS112 direct delegation"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
        ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let embedded = |shift: u32| Ipv4Addr::from((bits >> shift) as u32);
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d)
    // reach the IPv4 address; so does the well-known NAT64 prefix.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return v4_kind(embedded(0));
    }
    // 6to4 carries the IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return v4_kind(embedded(80)).map(|_| "6to4 over a special-purpose IPv4 address");
    }
    const RANGES: &[([u16; 8], u32, &str)] = &[
        ([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible (deprecated)"),
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local NAT64"),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
        ([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "dummy prefix"),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo"),
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            "IETF protocol assignment",
        ),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "segment routing (SRv6)"),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "private (unique local)"),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v6(ip, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

/// Keep the addresses `route` may connect to; `Err` explains the refusal.
/// A route whose host is an IP literal names its address, so it passes; so
/// does an address the route lists in `addresses`.
pub fn screen(
    route: &CompiledRoute,
    host: &str,
    addrs: Vec<SocketAddr>,
    own: &HostAddresses,
) -> Result<Vec<SocketAddr>, String> {
    if matches!(route.host, HostPattern::Address(_)) {
        return Ok(addrs);
    }
    let mut refused = None;
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| {
            let ip = addr.ip();
            if route.route.addresses.contains(&ip) {
                return true;
            }
            // Loopback says the most about itself; any other address of the
            // host's own interfaces is named as such, whatever its range.
            let kind = internal_kind(ip);
            let why = match own.interface_of(ip) {
                Some(_) if kind == Some("loopback") => Some("a loopback address".to_string()),
                Some(interface) => Some(format!("an address of this host (on {interface})")),
                None => kind.map(|kind| format!("a {kind} address")),
            };
            match why {
                None => true,
                Some(why) => {
                    refused.get_or_insert((ip, why));
                    false
                }
            }
        })
        .collect();
    match (kept.is_empty(), refused) {
        (false, _) => Ok(kept),
        (true, Some((ip, why))) => Err(format!(
            "{host} resolves to {ip}, {why}; a route must list it in `addresses` to allow it"
        )),
        (true, None) => Err(format!("{host} resolves to no address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let kind = |s: &str| internal_kind(s.parse().unwrap());
        assert_eq!(kind("127.0.0.1"), Some("loopback"));
        assert_eq!(kind("10.1.2.3"), Some("private"));
        assert_eq!(kind("192.168.127.1"), Some("private"));
        assert_eq!(kind("169.254.169.254"), Some("metadata"));
        assert_eq!(kind("169.254.1.1"), Some("link-local"));
        assert_eq!(kind("100.100.1.1"), Some("CGNAT (shared)"));
        assert_eq!(kind("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(kind("64:ff9b::a9fe:a9fe"), Some("metadata"));
        assert_eq!(kind("fd12::1"), Some("private (unique local)"));
        assert_eq!(kind("93.184.216.34"), None);
        assert_eq!(kind("2606:2800:220:1::1"), None);
    }

    #[test]
    fn every_special_purpose_range_is_refused() {
        let kind = |s: &str| internal_kind(s.parse().unwrap());
        for special in [
            "0.1.2.3",
            "192.0.0.170",
            "192.0.2.7",
            "198.51.100.7",
            "203.0.113.7",
            "198.18.0.1",
            "198.19.255.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.88.99.1",
            "::",
            "::1",
            "::7f00:1",
            "::ffff:0:7f00:1",
            "::ffff:203.0.113.9",
            "64:ff9b::c000:207",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "2002:7f00:1::1",
            "2002:c000:0201::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "fc00::1",
        ] {
            assert!(kind(special).is_some(), "{special} passed the guard");
        }
        for public in [
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2a00:1450:4001::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(kind(public), None, "{public} refused");
        }
    }

    #[test]
    fn the_hosts_own_addresses_are_found() {
        let own = HostAddresses::read();
        assert!(
            own.interface_of("127.0.0.1".parse().unwrap()).is_some(),
            "loopback is an interface address: {own:?}"
        );
        assert!(own
            .interface_of("::ffff:127.0.0.1".parse().unwrap())
            .is_some());
        assert!(own.interface_of("203.0.113.250".parse().unwrap()).is_none());
    }
}
