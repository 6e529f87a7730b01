//! The bottle's private network, derived from its name alone: a /24 in
//! 10.100.0.0–10.199.255.0 (clear of Docker's 172.17–31 and 192.168.65,
//! home LANs' 192.168.0/1 and the common 10.0.x), the gateway at `.1`, the
//! guest at `.2` by static DHCP lease, and the sidecars behind `.254`,
//! which the guest knows as `proxy.internal`. The same name always gives
//! the same addresses, on any machine, so they can live in derivations.

use serde::{Deserialize, Serialize};

/// Addresses of one bottle's network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// CIDR, e.g. `10.142.7.0/24`.
    pub subnet: String,
    pub gateway_ip: String,
    pub gateway_mac: String,
    pub guest_ip: String,
    pub guest_mac: String,
    /// The address `proxy.internal` resolves to: where sidecar ports listen.
    pub proxy_ip: String,
}

/// The DNS name the guest reaches every sidecar by.
pub const PROXY_HOST: &str = "proxy.internal";

impl Network {
    pub fn for_bottle(name: &str) -> Network {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"bottle-network-v1\0");
        hasher.update(name.as_bytes());
        let h = hasher.finalize();
        let h = h.as_bytes();
        let (b, c) = (100 + h[0] % 100, h[1]);
        let mac = |bytes: &[u8]| {
            // 0x5a: locally administered, unicast, as gvproxy's own default is.
            format!(
                "5a:94:ef:{:02x}:{:02x}:{:02x}",
                bytes[0], bytes[1], bytes[2]
            )
        };
        let gateway_mac = mac(&h[2..5]);
        let mut guest = [h[5], h[6], h[7]];
        if guest == [h[2], h[3], h[4]] {
            guest[2] ^= 1;
        }
        Network {
            subnet: format!("10.{b}.{c}.0/24"),
            gateway_ip: format!("10.{b}.{c}.1"),
            gateway_mac,
            guest_ip: format!("10.{b}.{c}.2"),
            guest_mac: mac(&guest),
            proxy_ip: format!("10.{b}.{c}.254"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_clear_of_busy_ranges() {
        assert_eq!(Network::for_bottle("a"), Network::for_bottle("a"));
        for i in 0..2000 {
            let n = Network::for_bottle(&format!("bottle-{i}"));
            let second: u8 = n.subnet.split('.').nth(1).unwrap().parse().unwrap();
            assert!((100..200).contains(&second), "{}", n.subnet);
            assert!(n.subnet.starts_with("10."));
            assert_ne!(n.gateway_mac, n.guest_mac);
        }
    }
}
