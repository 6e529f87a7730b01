//! gvproxy, the guest's user-mode network (DHCP, DNS, NAT), started from
//! the bottle's stored `gvproxy.yaml`. gvproxy 0.8.8 and later read a config
//! file (`-config`): the realizer gives them the stored one plus this run's
//! sockets. Older ones, like Debian trixie's 0.8.1, get a translation: flags
//! (`-mtu`, `-debug`) and then the DNS zones through the HTTP API on their
//! `-listen` socket (`POST /services/dns/add`); the addresses they cannot be
//! told must equal their built-in network, and [`Translation::unapplied`]
//! names every stored setting that does not (`bottle doctor`, `bottle run
//! --verbose`), so a run never silently differs from its store path.
//!
//! What gvproxy cannot be told — that the guest may reach nothing but the
//! sidecars, and not its HTTP API on the gateway's port 80 — is enforced
//! around it: by its network namespace (`netns`) and by the frame filter
//! between it and the VM (`firewall`).
use crate::lower::gvproxy::{GvproxyConfig, Zone};
use crate::lower::network::Network;
use serde::Serialize;
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

/// How a stored configuration is given to one installed gvproxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Translation {
    pub args: Vec<String>,
    /// A config file to write before starting it (versions with `-config`).
    pub config_file: Option<(PathBuf, String)>,
    /// Calls to its API once it listens, in order.
    pub api_calls: Vec<ApiCall>,
    /// Stored settings this gvproxy cannot apply.
    pub unapplied: Vec<Unapplied>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCall {
    pub path: String,
    pub body: serde_json::Value,
}

/// A stored setting the installed gvproxy would not honour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unapplied {
    pub setting: String,
    pub stored: String,
    /// What this gvproxy uses instead.
    pub instead: String,
}

impl std::fmt::Display for Unapplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: stored {}, this gvproxy uses {}",
            self.setting, self.stored, self.instead
        )
    }
}

/// Give `config` to a gvproxy of `version` listening on `sockets`;
/// `config_path` is where a config file would go.
pub fn translate(
    version: Version,
    config: &GvproxyConfig,
    sockets: &Sockets,
    config_path: &Path,
) -> Translation {
    let unix = |p: &Path| format!("unix://{}", p.display());
    if version.takes_config_file() {
        let mut file = serde_json::to_value(config).expect("the gvproxy config is plain data");
        file["listen"] = serde_json::json!([unix(&sockets.api)]);
        file["interfaces"] = serde_json::json!({ "qemu": unix(&sockets.qemu) });
        let text = serde_yaml::to_string(&file).expect("a JSON value always renders as YAML");
        return Translation {
            args: vec!["-config".into(), config_path.display().to_string()],
            config_file: Some((config_path.to_path_buf(), text)),
            api_calls: Vec::new(),
            unapplied: Vec::new(),
        };
    }
    // -ssh-port -1: no host-side forward into the guest.
    let mut args = vec![
        "-listen".to_string(),
        unix(&sockets.api),
        "-listen-qemu".into(),
        unix(&sockets.qemu),
        "-ssh-port".into(),
        "-1".into(),
        "-mtu".into(),
        config.stack.mtu.to_string(),
    ];
    if config.log_level == "debug" {
        args.push("-debug".into());
    }
    let api_calls = config.stack.dns.iter().map(dns_zone).collect();
    Translation {
        args,
        config_file: None,
        api_calls,
        unapplied: unapplied_by_flags(config),
    }
}

/// The API's form of a DNS zone (gvproxy's Go field names).
fn dns_zone(zone: &Zone) -> ApiCall {
    let records: Vec<_> = zone
        .records
        .iter()
        .map(|r| serde_json::json!({ "Name": r.name, "IP": r.ip.to_string() }))
        .collect();
    ApiCall {
        path: "/services/dns/add".into(),
        body: serde_json::json!({ "Name": zone.name, "Records": records }),
    }
}

/// What a gvproxy without a config file cannot be told: every address
/// setting that differs from its built-in network (which is
/// [`Network::standard`], so a bottle of this version always applies).
fn unapplied_by_flags(config: &GvproxyConfig) -> Vec<Unapplied> {
    let stored = &config.stack;
    let builtin = GvproxyConfig::for_network(&Network::standard()).stack;
    let mut out = Vec::new();
    let mut compare = |setting: &str, stored: String, instead: String| {
        if stored != instead {
            out.push(Unapplied {
                setting: setting.into(),
                stored,
                instead,
            });
        }
    };
    let show = |v: &dyn std::fmt::Debug| format!("{v:?}");
    compare(
        "stack.subnet",
        stored.subnet.to_string(),
        builtin.subnet.to_string(),
    );
    compare(
        "stack.gatewayIP",
        stored.gateway_ip.to_string(),
        builtin.gateway_ip.to_string(),
    );
    compare(
        "stack.gatewayMacAddress",
        stored.gateway_mac_address.to_string(),
        builtin.gateway_mac_address.to_string(),
    );
    compare(
        "stack.dhcpStaticLeases",
        show(&stored.dhcp_static_leases),
        show(&builtin.dhcp_static_leases),
    );
    compare("stack.nat", show(&stored.nat), show(&builtin.nat));
    compare(
        "stack.gatewayVirtualIPs",
        show(&stored.gateway_virtual_ips),
        show(&builtin.gateway_virtual_ips),
    );
    if !matches!(config.log_level.as_str(), "info" | "debug") {
        compare("log-level", config.log_level.clone(), "info".into());
    }
    out
}

/// Make the API calls of a translation, in order.
pub async fn apply(translation: &Translation, sockets: &Sockets) -> Result<(), String> {
    for call in &translation.api_calls {
        let response = post(&sockets.api, &call.path, &call.body.to_string()).await?;
        if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
            return Err(format!(
                "gvproxy refused {} {}: {}",
                call.path,
                call.body,
                response.lines().next().unwrap_or("")
            ));
        }
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

    fn sockets() -> Sockets {
        Sockets {
            api: "/run/api.sock".into(),
            qemu: "/run/qemu.sock".into(),
        }
    }

    #[test]
    fn the_standard_network_applies_fully_with_flags_and_the_api() {
        let config = GvproxyConfig::for_network(&Network::standard());
        let t = translate(
            Version(0, 8, 1),
            &config,
            &sockets(),
            Path::new("/run/g.yaml"),
        );
        assert!(t.unapplied.is_empty(), "{:?}", t.unapplied);
        assert!(t.config_file.is_none());
        assert_eq!(t.api_calls.len(), 1);
        assert_eq!(t.api_calls[0].body["Name"], "internal.");
        assert_eq!(t.api_calls[0].body["Records"][0]["Name"], "proxy");
        assert_eq!(t.api_calls[0].body["Records"][0]["IP"], "192.168.127.254");
    }

    #[test]
    fn other_addresses_are_named_as_unapplied() {
        let mut net = Network::standard();
        net.subnet = "10.1.2.0/24".parse().unwrap();
        net.gateway = "10.1.2.1".parse().unwrap();
        let config = GvproxyConfig::for_network(&net);
        let t = translate(
            Version(0, 8, 1),
            &config,
            &sockets(),
            Path::new("/run/g.yaml"),
        );
        let settings: Vec<_> = t.unapplied.iter().map(|u| u.setting.as_str()).collect();
        assert_eq!(settings, ["stack.subnet", "stack.gatewayIP"]);
        let later = translate(
            Version(0, 8, 8),
            &config,
            &sockets(),
            Path::new("/run/g.yaml"),
        );
        assert!(later.unapplied.is_empty());
        assert!(later.config_file.unwrap().1.contains("10.1.2.0/24"));
    }
}
