//! The policy compiled for matching: which route (if any) lets a request to
//! host:port out, and whether a method and path are allowed on it. Pure
//! functions over strings, so the decisions are easy to test and fuzz; the
//! network side lives in `proxy.rs`.

use super::policy::{Policy, Route};
use std::net::IpAddr;

/// How a route's host is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`: that name only.
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not the apex).
    Suffix(String),
    /// An IP literal: requests naming that address.
    Address(IpAddr),
}

impl HostPattern {
    pub fn parse(host: &str) -> HostPattern {
        let host = normalize_host(host);
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return HostPattern::Address(ip);
        }
        match host.strip_prefix("*.") {
            Some(rest) => HostPattern::Suffix(format!(".{rest}")),
            None => HostPattern::Exact(host),
        }
    }

    /// Does this pattern admit `host` (already normalized)?
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => name == host,
            HostPattern::Suffix(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            HostPattern::Address(ip) => parse_ip(host) == Some(*ip),
        }
    }
}

/// Lowercase, without the trailing dot of a fully qualified name, and
/// without the brackets around an IPv6 literal.
pub fn normalize_host(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.to_ascii_lowercase()
}

/// The address a normalized host names, when it is an IP literal.
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

/// A route ready for matching.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Position in the policy, for audit lines and messages.
    pub index: usize,
    pub host: HostPattern,
    pub ports: Vec<u16>,
    pub inspect: bool,
    pub methods: Option<Vec<String>>,
    pub paths: Option<Vec<Glob>>,
    pub route: Route,
}

impl CompiledRoute {
    /// How audit lines and denials name this route.
    pub fn label(&self) -> String {
        format!("routes[{}] {}", self.index, self.route.host)
    }

    /// Whether `method` and `path` pass this route's rules; `Err` says which rule refused.
    pub fn admits(&self, method: &str, path: &str) -> Result<(), String> {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == method) {
                return Err(format!("method {method} is not in {}", methods.join(", ")));
            }
        }
        if let Some(globs) = &self.paths {
            if has_dot_segment(path) {
                return Err(format!("path {path} has `.` or `..` segments"));
            }
            let bare = path.split(['?', '#']).next().unwrap_or(path);
            if !globs.iter().any(|g| g.matches(bare)) {
                let listed: Vec<&str> = globs.iter().map(|g| g.pattern.as_str()).collect();
                return Err(format!("path {bare} matches none of {}", listed.join(", ")));
            }
        }
        Ok(())
    }
}

/// All routes of a policy, in file order; the first route whose host and
/// port match decides.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
}

impl RouteTable {
    pub fn new(policy: &Policy) -> RouteTable {
        let routes = policy
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| CompiledRoute {
                index,
                host: HostPattern::parse(&route.host),
                ports: route.ports.clone(),
                inspect: route.inspect,
                methods: route
                    .methods
                    .as_ref()
                    .map(|ms| ms.iter().map(|m| m.to_ascii_uppercase()).collect()),
                paths: route
                    .paths
                    .as_ref()
                    .map(|ps| ps.iter().map(|p| Glob::new(p)).collect()),
                route: route.clone(),
            })
            .collect();
        RouteTable { routes }
    }

    /// The route that lets `host:port` out, if any. `host` is as the client
    /// wrote it; it is normalized here.
    pub fn find(&self, host: &str, port: u16) -> Option<&CompiledRoute> {
        let host = normalize_host(host);
        self.routes
            .iter()
            .find(|r| r.ports.contains(&port) && r.host.matches(&host))
    }

    /// Is there a route for this host on some other port? (Only to word a denial.)
    pub fn host_known(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.routes.iter().any(|r| r.host.matches(&host))
    }

    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }
}

/// A path pattern where `*` matches any run of characters (including `/`)
/// and everything else matches itself.
#[derive(Debug, Clone)]
pub struct Glob {
    pub pattern: String,
    parts: Vec<String>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.to_string(),
            parts: pattern.split('*').map(str::to_string).collect(),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let (first, rest) = self
            .parts
            .split_first()
            .expect("split yields at least one part");
        let Some(mut text) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return text.is_empty();
        };
        for part in middle {
            match text.find(part.as_str()) {
                Some(at) => text = &text[at + part.len()..],
                None => return false,
            }
        }
        text.len() >= last.len() && text.ends_with(last.as_str())
    }
}

/// A path with `.`/`..` segments (also percent-encoded) could mean a
/// different resource once the upstream normalizes it, so path rules refuse it.
fn has_dot_segment(path: &str) -> bool {
    let bare = path.split(['?', '#']).next().unwrap_or(path);
    let decoded = bare
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%5c", "/")
        .replace("%5C", "/")
        .replace('\\', "/");
    decoded.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("API.Example.com.");
        assert!(exact.matches(&normalize_host("api.example.COM.")));
        assert!(!exact.matches("x.api.example.com"));
        let wild = HostPattern::parse("*.example.com");
        assert!(wild.matches("a.example.com") && wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com") && !wild.matches("badexample.com"));
        let ip = HostPattern::parse("::1");
        assert!(ip.matches(&normalize_host("[::1]")));
    }

    #[test]
    fn globs() {
        let g = Glob::new("/v1/*");
        assert!(g.matches("/v1/messages") && g.matches("/v1/") && !g.matches("/v2/x"));
        let g = Glob::new("/a/*/c*");
        assert!(g.matches("/a/b/c") && g.matches("/a/b/x/cd") && !g.matches("/a/b/d"));
        assert!(Glob::new("/exact").matches("/exact") && !Glob::new("/exact").matches("/exactly"));
        assert!(Glob::new("*").matches(""));
    }

    #[test]
    fn dot_segments_are_refused_by_path_rules() {
        assert!(has_dot_segment("/v1/../admin"));
        assert!(has_dot_segment("/v1/%2E%2e/admin"));
        assert!(!has_dot_segment("/v1/file.txt?x=../y"));
    }
}
