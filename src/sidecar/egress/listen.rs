//! Where the proxy listens: a Unix socket in the run directory (what `bottle
//! run` uses, relayed into the guest by gvproxy) or a TCP address (tests,
//! benchmarks, running the sidecar by hand).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use tokio::net::{TcpListener, UnixListener};

/// A listening address: `unix:/path/to/socket` or `HOST:PORT`.
///
/// ```
/// use bottle::sidecar::egress::Listen;
/// assert_eq!("unix:/run/e.sock".parse::<Listen>().unwrap(), Listen::Unix("/run/e.sock".into()));
/// assert_eq!("127.0.0.1:3128".parse::<Listen>().unwrap(), Listen::Tcp(([127, 0, 0, 1], 3128).into()));
/// assert!("nonsense".parse::<Listen>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(
                    "`unix:` needs a socket path, e.g. unix:/run/bottle/egress.sock".into(),
                );
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Listen::Tcp(addr));
        }
        // HOST:PORT with a name (e.g. localhost:3128): the first address it resolves to.
        use std::net::ToSocketAddrs;
        text.to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .map(Listen::Tcp)
            .ok_or_else(|| {
                format!("`{text}` is neither unix:/path nor HOST:PORT like 127.0.0.1:3128")
            })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(addr) => write!(f, "{addr}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Bind `listen`. A Unix socket file left behind by a dead sidecar (nobody
    /// accepts on it) is replaced; a live one is an error.
    pub async fn bind(listen: &Listen) -> std::io::Result<Listener> {
        match listen {
            Listen::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            Listen::Unix(path) => {
                if path.exists() && tokio::net::UnixStream::connect(path).await.is_err() {
                    std::fs::remove_file(path)?;
                }
                Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
            }
        }
    }

    /// Where it actually listens (the real port when bound to port 0).
    pub fn local(&self) -> Listen {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => Listen::Tcp(addr),
                Err(_) => Listen::Tcp(SocketAddr::from(([0, 0, 0, 0], 0))),
            },
            Listener::Unix(_, path) => Listen::Unix(path.clone()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
