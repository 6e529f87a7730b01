//! The SSRF guard: a route names a host, but DNS decides the address. An
//! address that reaches the host itself, its LAN or a cloud metadata service
//! is refused unless the route names it (as its host or in `addresses`).

use super::rules::CompiledRoute;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Which kind of internal address `ip` is, or `None` for a public one.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[..6] == [0, 0, 0, 0, 0, 0] {
                // NAT64 and IPv4-compatible forms carry an IPv4 address.
                let v4 = Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                );
                v4_kind(v4)
            } else {
                None
            }
        }
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("CGNAT")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// Keep the addresses `route` may connect to; `Err` explains the refusal.
/// A route whose host is an IP literal names its address, so it passes.
pub fn screen(
    route: &CompiledRoute,
    host: &str,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, String> {
    if matches!(route.host, super::rules::HostPattern::Address(_)) {
        return Ok(addrs);
    }
    let mut refused = None;
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| match internal_kind(addr.ip()) {
            None => true,
            Some(_) if route.route.addresses.contains(&addr.ip()) => true,
            Some(kind) => {
                refused.get_or_insert((addr.ip(), kind));
                false
            }
        })
        .collect();
    match (kept.is_empty(), refused) {
        (false, _) => Ok(kept),
        (true, Some((ip, kind))) => Err(format!(
            "{host} resolves to {ip}, a {kind} address; a route must list it in `addresses` to allow it"
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
        assert_eq!(kind("100.100.1.1"), Some("CGNAT"));
        assert_eq!(kind("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(kind("64:ff9b::a9fe:a9fe"), Some("metadata"));
        assert_eq!(kind("fd12::1"), Some("private"));
        assert_eq!(kind("93.184.216.34"), None);
        assert_eq!(kind("2606:2800:220:1::1"), None);
    }
}
