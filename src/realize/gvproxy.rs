//! gvproxy, the guest's user-mode network (DHCP, DNS, NAT): its command line,
//! the configuration bottle renders for it, and how that configuration is
//! applied. gvproxy 0.8.8 and later read a config file (`-config`); older
//! ones, like Debian trixie's 0.8.1, get flags and then DNS records through
//! the HTTP API on their `-listen` Unix socket (`POST /services/dns/add`).
//!
//! What gvproxy cannot be told — that the guest may reach nothing but the
//! sidecars, and not its HTTP API on the gateway's port 80 — is enforced
//! around it: by its network namespace (`netns`) and by the frame filter
//! between it and the VM (`firewall`).
use super::plan::Network;
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A gvproxy version as `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parse `gvproxy -version` output (`gvproxy version v0.8.1`).
    pub fn parse(text: &str) -> Option<Version> {
        let word = text.split_whitespace().find(|w| {
            w.trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit())
        })?;
        let mut numbers = word
            .trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(|n| n.parse::<u32>().ok());
        Some(Version(
            numbers.next()??,
            numbers.next()??,
            numbers.next().flatten().unwrap_or(0),
        ))
    }

    /// The first version with `-config`.
    pub fn takes_config_file(self) -> bool {
        self >= Version(0, 8, 8)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The sockets of one gvproxy.
pub struct Sockets {
    /// Its HTTP API (`-listen`).
    pub api: PathBuf,
    /// Where the VM side (bottle's frame filter) connects (`-listen-qemu`).
    pub qemu: PathBuf,
}

/// The DNS zone that names the sidecars: `proxy.internal` → the host address.
pub fn sidecar_zone(network: &Network) -> serde_json::Value {
    let (label, zone) = network
        .sidecar_name
        .split_once('.')
        .unwrap_or((&network.sidecar_name, ""));
    json!({ "Name": format!("{zone}."), "Records": [{ "Name": label, "IP": network.host.to_string() }] })
}

/// The config file for gvproxy versions that read one (gvproxy's own schema).
pub fn config_file(network: &Network, sockets: &Sockets) -> String {
    let (label, zone) = network
        .sidecar_name
        .split_once('.')
        .unwrap_or((&network.sidecar_name, ""));
    let value = json!({
        "listen": [format!("unix://{}", sockets.api.display())],
        "interfaces": { "qemu": format!("unix://{}", sockets.qemu.display()) },
        "stack": {
            "mtu": 1500,
            "subnet": network.subnet,
            "gatewayIP": network.gateway.to_string(),
            "gatewayMacAddress": "5a:94:ef:e4:0c:dd",
            "dns": [{ "name": format!("{zone}."), "records": [{ "name": label, "ip": network.host.to_string() }] }],
            "nat": { network.host.to_string(): "127.0.0.1" },
            "gatewayVirtualIPs": [network.host.to_string()],
        },
    });
    serde_yaml::to_string(&value).expect("a JSON value always renders as YAML")
}

/// gvproxy's arguments for `version`.
pub fn args(
    version: Version,
    network: &Network,
    sockets: &Sockets,
    config: &Path,
) -> Vec<OsString> {
    if version.takes_config_file() {
        std::fs::write(config, config_file(network, sockets)).ok();
        return vec!["-config".into(), config.into()];
    }
    let mut api = OsString::from("unix://");
    api.push(&sockets.api);
    let mut qemu = OsString::from("unix://");
    qemu.push(&sockets.qemu);
    // -ssh-port -1: no host-side forward into the guest.
    vec![
        "-listen".into(),
        api,
        "-listen-qemu".into(),
        qemu,
        "-ssh-port".into(),
        "-1".into(),
    ]
}

/// Apply what flags cannot carry: the sidecar DNS zone, through the API.
pub async fn apply(version: Version, network: &Network, sockets: &Sockets) -> Result<(), String> {
    if version.takes_config_file() {
        return Ok(());
    }
    let body = sidecar_zone(network).to_string();
    let response = post(&sockets.api, "/services/dns/add", &body).await?;
    if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
        return Err(format!(
            "gvproxy refused the DNS zone: {}",
            response.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}

/// One HTTP/1.1 request over gvproxy's Unix socket; the raw response.
async fn post(socket: &Path, path: &str, body: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: gvproxy\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(format!(
            "talking to gvproxy's API at {}: {e}",
            socket.display()
        )),
        Err(_) => Err(format!(
            "gvproxy's API at {} did not answer within 5 s",
            socket.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            Version::parse("gvproxy version v0.8.1"),
            Some(Version(0, 8, 1))
        );
        assert!(!Version(0, 8, 1).takes_config_file());
        assert!(Version::parse("gvproxy version v0.8.9-dev")
            .unwrap()
            .takes_config_file());
    }

    #[test]
    fn the_sidecar_zone_names_proxy_internal() {
        let zone = sidecar_zone(&Network::default());
        assert_eq!(zone["Name"], "internal.");
        assert_eq!(zone["Records"][0]["Name"], "proxy");
        assert_eq!(zone["Records"][0]["IP"], "192.168.127.254");
    }
}
