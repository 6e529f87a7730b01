//! `gvproxy.yaml`: the virtual network in gvproxy's config-file schema
//! (`GvproxyConfig` with its `stack`, as `gvproxy -config` reads it): the
//! subnet, the gateway's IP and MAC, a static DHCP lease for the guest's
//! MAC, a DNS zone `internal.` that answers only `proxy.internal`, and the
//! sidecars' address as a gateway virtual IP NATed to the namespace's
//! loopback, where the realizer relays each sidecar port (see `ports.json`)
//! to its Unix socket. No socket paths: those vary per run and are added by
//! the realizer (`realize::gvproxy`), which reads this file back as the
//! network's one source.

use super::network::{Mac, Network, Subnet, PROXY_HOST};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GvproxyConfig {
    #[serde(rename = "log-level")]
    pub log_level: String,
    pub stack: Stack,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stack {
    pub mtu: u16,
    pub subnet: Subnet,
    #[serde(rename = "gatewayIP")]
    pub gateway_ip: Ipv4Addr,
    pub gateway_mac_address: Mac,
    pub dns: Vec<Zone>,
    pub nat: BTreeMap<Ipv4Addr, Ipv4Addr>,
    #[serde(rename = "gatewayVirtualIPs")]
    pub gateway_virtual_ips: Vec<Ipv4Addr>,
    pub dhcp_static_leases: BTreeMap<Ipv4Addr, Mac>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// The zone, with a trailing dot (`internal.`).
    pub name: String,
    pub records: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The label within the zone (`proxy`).
    pub name: String,
    pub ip: Ipv4Addr,
}

impl GvproxyConfig {
    /// The configuration that serves `net`.
    pub fn for_network(net: &Network) -> GvproxyConfig {
        let (label, zone) = PROXY_HOST
            .split_once('.')
            .expect("PROXY_HOST is a two-label name");
        GvproxyConfig {
            log_level: "info".to_string(),
            stack: Stack {
                mtu: net.mtu,
                subnet: net.subnet,
                gateway_ip: net.gateway,
                gateway_mac_address: net.gateway_mac,
                dns: vec![Zone {
                    name: format!("{zone}."),
                    records: vec![Record {
                        name: label.to_string(),
                        ip: net.sidecar_host,
                    }],
                }],
                nat: BTreeMap::from([(net.sidecar_host, Ipv4Addr::LOCALHOST)]),
                gateway_virtual_ips: vec![net.sidecar_host],
                dhcp_static_leases: BTreeMap::from([(net.guest, net.guest_mac)]),
            },
        }
    }

    /// Read a stored `gvproxy.yaml`.
    pub fn load(path: &Path) -> Result<GvproxyConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The network this configuration serves, as the guest sees it.
    pub fn network(&self) -> Result<Network, String> {
        let stack = &self.stack;
        let [(&guest, &guest_mac)] = stack.dhcp_static_leases.iter().collect::<Vec<_>>()[..] else {
            return Err("it must lease exactly one address (the guest's)".into());
        };
        let (label, zone) = PROXY_HOST
            .split_once('.')
            .expect("PROXY_HOST is a two-label name");
        let sidecar_host = stack
            .dns
            .iter()
            .filter(|z| z.name.trim_end_matches('.') == zone)
            .flat_map(|z| &z.records)
            .find(|r| r.name == label)
            .map(|r| r.ip)
            .ok_or_else(|| format!("it has no DNS record for {PROXY_HOST}"))?;
        if stack.nat.get(&sidecar_host) != Some(&Ipv4Addr::LOCALHOST) {
            return Err(format!(
                "{PROXY_HOST} ({sidecar_host}) must be NATed to 127.0.0.1, where the sidecars are relayed"
            ));
        }
        for ip in [guest, sidecar_host, stack.gateway_ip] {
            if !stack.subnet.contains(ip) {
                return Err(format!("{ip} is outside the subnet {}", stack.subnet));
            }
        }
        Ok(Network {
            subnet: stack.subnet,
            gateway: stack.gateway_ip,
            gateway_mac: stack.gateway_mac_address,
            guest,
            guest_mac,
            sidecar_host,
            mtu: stack.mtu,
        })
    }
}

pub fn lower() -> Arc<Derivation> {
    let doc = GvproxyConfig::for_network(&Network::standard());
    let inputs = serde_json::to_value(&doc).expect("the gvproxy config is plain data");
    Derivation::new(Kind::GvproxyConfig, "gvproxy.yaml", inputs, [])
        .expect("the gvproxy config is plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let doc: GvproxyConfig = serde_json::from_value(drv.inputs().clone())
        .map_err(|e| RenderError(format!("gvproxy inputs: {e}")))?;
    let text = serde_yaml::to_string(&doc).map_err(|e| RenderError(e.to_string()))?;
    Ok(Output::File(
        format!("# Generated by bottle: gvproxy's configuration (gvproxy -config).\n{text}")
            .into_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_config_gives_back_its_network() {
        let net = Network::standard();
        let config = GvproxyConfig::for_network(&net);
        let yaml = serde_yaml::to_string(&config).unwrap();
        let read: GvproxyConfig = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(read.network().unwrap(), net);
    }
}
