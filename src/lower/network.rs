//! The guest network, as addresses: the subnet, the gateway (DHCP and DNS)
//! and its MAC, the guest's address and MAC (a static DHCP lease), and the
//! address behind which the sidecars listen, which the guest knows as
//! `proxy.internal`.
//!
//! Every bottle gets the same plan, the one gvproxy serves without a config
//! file (192.168.127.0/24): each run has its own gvproxy in a network
//! namespace of its own, so two bottles never share a network and a
//! per-bottle subnet would isolate nothing. It is still stored (in
//! `gvproxy.yaml`) and read back by the realizer, so the addresses a VM gets
//! are the ones its store path names.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The DNS name the guest reaches every sidecar by.
pub const PROXY_HOST: &str = "proxy.internal";

/// Addresses of a bottle's network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub gateway_mac: Mac,
    pub guest: Ipv4Addr,
    pub guest_mac: Mac,
    /// The address `proxy.internal` resolves to: where sidecar ports listen.
    pub sidecar_host: Ipv4Addr,
    pub mtu: u16,
}

impl Network {
    /// The network of every bottle (gvproxy's own defaults).
    pub fn standard() -> Network {
        Network {
            subnet: Subnet {
                address: Ipv4Addr::new(192, 168, 127, 0),
                prefix: 24,
            },
            gateway: Ipv4Addr::new(192, 168, 127, 1),
            gateway_mac: Mac([0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xdd]),
            guest: Ipv4Addr::new(192, 168, 127, 2),
            guest_mac: Mac([0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee]),
            sidecar_host: Ipv4Addr::new(192, 168, 127, 254),
            mtu: 1500,
        }
    }
}

/// An IPv4 network in CIDR notation (`192.168.127.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subnet {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.address) & mask
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(text: &str) -> Result<Subnet, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a subnet (ADDRESS/PREFIX)"))?;
        let address = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IPv4 address"))?;
        let prefix = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`{prefix}` is not a prefix length (0–32)"))?;
        Ok(Subnet { address, prefix })
    }
}

/// An Ethernet address (`5a:94:ef:e4:0c:ee`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(text: &str) -> Result<Mac, String> {
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("`{text}` is not a MAC address"))?;
        let bytes: [u8; 6] = bytes
            .try_into()
            .map_err(|_| format!("`{text}` is not a MAC address"))?;
        Ok(Mac(bytes))
    }
}

/// Both are written as their text form, so stored files read naturally.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_text!(Subnet);
serde_as_text!(Mac);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_as_text() {
        let net = Network::standard();
        let json = serde_json::to_string(&net).unwrap();
        assert!(json.contains("\"192.168.127.0/24\"") && json.contains("\"5a:94:ef:e4:0c:ee\""));
        assert_eq!(serde_json::from_str::<Network>(&json).unwrap(), net);
        assert!(net.subnet.contains(net.guest) && net.subnet.contains(net.sidecar_host));
        assert!(!net.subnet.contains(Ipv4Addr::new(10, 0, 2, 2)));
        assert!("5a:94:ef:e4:0c".parse::<Mac>().is_err());
        assert!("1.2.3.0/33".parse::<Subnet>().is_err());
    }
}
