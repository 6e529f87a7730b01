//! The frame filter between the VM's network card and gvproxy: every
//! Ethernet frame the guest sends passes through here, and only these leave:
//! ARP, DHCP, DNS to the gateway, and TCP to the sidecar address on a
//! declared sidecar port. Everything else — gvproxy's HTTP API on the
//! gateway's port 80 (which stock gvproxy serves to the guest and no flag
//! turns off), other gateway ports, any other address, IPv6, fragments — is
//! dropped before gvproxy sees it.
//!
//! Both sides speak qemu's stream framing: a 4-byte big-endian length, then
//! the frame. qemu connects to bottle's socket; bottle connects to gvproxy's.
use std::collections::BTreeSet;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::UnixStream;

/// What the guest may send.
#[derive(Debug, Clone)]
pub struct Rules {
    pub gateway: Ipv4Addr,
    /// The sidecar address and the ports open on it.
    pub host: Ipv4Addr,
    pub ports: BTreeSet<u16>,
}

/// A frame's fate.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop(&'static str),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const TCP: u8 = 6;
const UDP: u8 = 17;

impl Rules {
    /// Judge one Ethernet frame sent by the guest.
    pub fn judge(&self, frame: &[u8]) -> Verdict {
        if frame.len() < 14 {
            return Verdict::Drop("runt frame");
        }
        match u16::from_be_bytes([frame[12], frame[13]]) {
            ETHERTYPE_ARP => Verdict::Pass,
            ETHERTYPE_IPV4 => self.judge_ipv4(&frame[14..]),
            _ => Verdict::Drop("not IPv4 or ARP"),
        }
    }

    fn judge_ipv4(&self, packet: &[u8]) -> Verdict {
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return Verdict::Drop("bad IPv4 header");
        }
        let header = usize::from(packet[0] & 0x0f) * 4;
        if header < 20 || packet.len() < header + 4 {
            return Verdict::Drop("bad IPv4 header");
        }
        let fragment = u16::from_be_bytes([packet[6], packet[7]]);
        if fragment & 0x3fff != 0 {
            return Verdict::Drop("IPv4 fragment");
        }
        let protocol = packet[9];
        let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let port = u16::from_be_bytes([packet[header + 2], packet[header + 3]]);
        match protocol {
            // DHCP, sent before the guest has an address.
            UDP if port == 67
                && (destination == Ipv4Addr::BROADCAST || destination == self.gateway) =>
            {
                Verdict::Pass
            }
            UDP | TCP if destination == self.gateway && port == 53 => Verdict::Pass,
            TCP if destination == self.host && self.ports.contains(&port) => Verdict::Pass,
            TCP if destination == self.gateway => {
                Verdict::Drop("TCP to the gateway (gvproxy's API)")
            }
            _ => Verdict::Drop("not a sidecar port"),
        }
    }
}

/// How many dropped frames are described in the run's log (then only counted).
const LOGGED_DROPS: u64 = 50;

/// A short description of a frame for the log: protocol, destination, port.
pub fn describe(frame: &[u8]) -> String {
    if frame.len() < 14 + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return format!(
            "ethertype {:#06x}",
            frame
                .get(12..14)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0)
        );
    }
    let ip = &frame[14..];
    let header = usize::from(ip[0] & 0x0f) * 4;
    let destination = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let port = ip
        .get(header + 2..header + 4)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .unwrap_or(0);
    match ip[9] {
        TCP => format!("TCP {destination}:{port}"),
        UDP => format!("UDP {destination}:{port}"),
        other => format!("IP protocol {other} to {destination}"),
    }
}

/// Relay frames between qemu (`vm`) and gvproxy until either side closes,
/// judging every frame the guest sends.
/// The first dropped frames are described in `log` (the run's bottle.log).
pub async fn serve(vm: UnixStream, gvproxy: &Path, rules: Rules, log: &Path) -> io::Result<()> {
    let net = UnixStream::connect(gvproxy).await?;
    let (vm_read, vm_write) = vm.into_split();
    let (net_read, net_write) = net.into_split();
    let outbound = async {
        let mut from = BufReader::with_capacity(64 * 1024, vm_read);
        let mut to = net_write;
        let mut frame = vec![0u8; 65536];
        let mut dropped = 0u64;
        loop {
            let Some(len) = read_frame(&mut from, &mut frame).await? else {
                return Ok(());
            };
            match rules.judge(&frame[..len]) {
                Verdict::Pass => {
                    to.write_all(&(len as u32).to_be_bytes()).await?;
                    to.write_all(&frame[..len]).await?;
                }
                Verdict::Drop(reason) => {
                    dropped += 1;
                    if dropped <= LOGGED_DROPS {
                        let line =
                            format!("firewall: dropped {} ({reason})\n", describe(&frame[..len]));
                        let _ = append(log, &line);
                    }
                }
            }
        }
    };
    let inbound = async {
        let mut from = BufReader::with_capacity(64 * 1024, net_read);
        let mut to = BufWriter::with_capacity(64 * 1024, vm_write);
        let mut frame = vec![0u8; 65536];
        loop {
            let Some(len) = read_frame(&mut from, &mut frame).await? else {
                return Ok(());
            };
            to.write_all(&(len as u32).to_be_bytes()).await?;
            to.write_all(&frame[..len]).await?;
            // Flush when nothing more is waiting, so frames are batched but never held.
            if from.buffer().is_empty() {
                to.flush().await?;
            }
        }
    };
    tokio::select! {
        r = outbound => r,
        r = inbound => r,
    }
}

fn append(path: &Path, line: &str) -> io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// Read one length-prefixed frame; `None` at a clean end of stream.
async fn read_frame<R: AsyncReadExt + Unpin>(
    from: &mut R,
    frame: &mut [u8],
) -> io::Result<Option<usize>> {
    let mut length = [0u8; 4];
    match from.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(length) as usize;
    if len > frame.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {len}-byte frame is too large"),
        ));
    }
    from.read_exact(&mut frame[..len]).await?;
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            gateway: Ipv4Addr::new(192, 168, 127, 1),
            host: Ipv4Addr::new(192, 168, 127, 254),
            ports: [3128].into(),
        }
    }

    fn ipv4(protocol: u8, destination: [u8; 4], port: u16) -> Vec<u8> {
        let mut frame = vec![0u8; 14 + 20 + 8];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame[14] = 0x45;
        frame[14 + 9] = protocol;
        frame[14 + 16..14 + 20].copy_from_slice(&destination);
        frame[14 + 22..14 + 24].copy_from_slice(&port.to_be_bytes());
        frame
    }

    #[test]
    fn sidecar_port_dns_and_dhcp_pass() {
        let r = rules();
        assert_eq!(
            r.judge(&ipv4(TCP, [192, 168, 127, 254], 3128)),
            Verdict::Pass
        );
        assert_eq!(r.judge(&ipv4(UDP, [192, 168, 127, 1], 53)), Verdict::Pass);
        assert_eq!(r.judge(&ipv4(UDP, [255, 255, 255, 255], 67)), Verdict::Pass);
    }

    #[test]
    fn gvproxy_api_other_ports_and_addresses_drop() {
        let r = rules();
        assert!(matches!(
            r.judge(&ipv4(TCP, [192, 168, 127, 1], 80)),
            Verdict::Drop(_)
        ));
        assert!(matches!(
            r.judge(&ipv4(TCP, [192, 168, 127, 254], 22)),
            Verdict::Drop(_)
        ));
        assert!(matches!(
            r.judge(&ipv4(TCP, [10, 0, 0, 1], 3128)),
            Verdict::Drop(_)
        ));
        assert!(matches!(
            r.judge(&ipv4(UDP, [1, 1, 1, 1], 53)),
            Verdict::Drop(_)
        ));
        assert!(matches!(
            r.judge(&ipv4(1, [192, 168, 127, 254], 0)),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn drops_are_described_by_destination() {
        assert_eq!(
            describe(&ipv4(TCP, [192, 168, 127, 1], 80)),
            "TCP 192.168.127.1:80"
        );
    }

    #[test]
    fn fragments_and_ipv6_drop() {
        let r = rules();
        let mut fragment = ipv4(TCP, [192, 168, 127, 254], 3128);
        fragment[14 + 6] = 0x20; // more fragments
        assert!(matches!(r.judge(&fragment), Verdict::Drop(_)));
        let mut v6 = vec![0u8; 60];
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert!(matches!(r.judge(&v6), Verdict::Drop(_)));
    }
}
