//! The policy compiled for matching: which route (if any) lets a request to
//! host:port out, and whether a method and path are allowed on it. Pure
//! functions over strings, so the decisions are easy to test and fuzz; the
//! network side lives in `proxy.rs`.

use super::policy::{Policy, Route};
use std::net::IpAddr;

/// A route's host: the one type that both reads a host pattern (for the
/// recipe checker and for the policy at load) and matches requests with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`: that name only.
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not the apex);
    /// holds the suffix with its leading dot.
    Suffix(String),
    /// An IP literal: requests naming that address.
    Address(IpAddr),
}

/// Why a host pattern can never match, with the pattern to use instead when
/// there is an obvious one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPatternError {
    pub message: String,
    pub help: String,
}

impl std::fmt::Display for HostPatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostPatternError {}

fn refused(message: impl Into<String>, help: impl Into<String>) -> HostPatternError {
    HostPatternError {
        message: message.into(),
        help: help.into(),
    }
}

impl HostPattern {
    /// Read a host pattern: an exact DNS name, `*.` followed by a DNS name
    /// (any subdomain of it, not the name itself), or an IP literal. Case, a
    /// trailing dot and IPv6 brackets do not matter (see [`normalize_host`]).
    /// A pattern that could never match a request (a URL, a port, a `*`
    /// elsewhere, an empty label) is refused with the fix, since a silently
    /// dead route is a bug the user only finds when the agent is denied.
    pub fn parse(text: &str) -> Result<HostPattern, HostPatternError> {
        if text.is_empty() {
            return Err(refused(
                "an empty host matches nothing",
                "write a host name such as `api.example.com`",
            ));
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            let host = rest.split(['/', ':']).next().unwrap_or(rest);
            return Err(refused(
                format!("`{text}` is a URL, and routes match host names, so it can never match"),
                format!("write `host = \"{host}\";` and put the port in `ports` (`{scheme}` is implied by the port)"),
            ));
        }
        let host = normalize_host(text);
        if let Some(ip) = parse_ip(&host) {
            return Ok(HostPattern::Address(ip));
        }
        if let Some((name, port)) = text.rsplit_once(':') {
            if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') {
                return Err(refused(
                    format!("`{text}` includes a port, and host patterns never do, so it can never match"),
                    format!("write `host = \"{name}\"; ports = [ {port} ];`"),
                ));
            }
        }
        if text.contains('/') {
            let name = text.split('/').next().unwrap_or_default();
            return Err(refused(
                format!("`{text}` includes a path, and host patterns never do, so it can never match"),
                format!("write `host = \"{name}\";` and put the path in `paths` (with `inspect = true`)"),
            ));
        }
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host.as_str()),
        };
        if name.contains('*') {
            return Err(refused(
                format!("`{text}` has a `*` that is not a leading `*.`, so it can never match"),
                "a wildcard is only allowed as `*.example.com`, meaning any subdomain of example.com",
            ));
        }
        if name.len() > 253 {
            return Err(refused(
                format!("`{text}` is longer than a DNS name can be (253 characters)"),
                "shorten it",
            ));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(refused(
                    format!(
                        "`{text}` has an empty label (two dots in a row, or a dot at the start)"
                    ),
                    "DNS names are labels separated by single dots, e.g. `api.example.com`",
                ));
            }
            if label.len() > 63 {
                return Err(refused(
                    format!("`{text}` has a label longer than 63 characters"),
                    "no DNS name has one",
                ));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(refused(
                    format!(
                        "`{text}` has `{bad}`, which no DNS name contains, so it can never match"
                    ),
                    "host names use letters, digits, `-` and dots",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(refused(
                    format!("`{text}` has a label that starts or ends with `-`"),
                    "no DNS name has one",
                ));
            }
        }
        if wildcard && !name.contains('.') {
            return Err(refused(
                format!("`{text}` would allow every host under the top-level domain `{name}`"),
                "name the domain you mean, e.g. `*.example.com`",
            ));
        }
        Ok(if wildcard {
            HostPattern::Suffix(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_string())
        })
    }

    /// Does this pattern admit `host` (already normalized)?
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => name == host,
            // The labels a wildcard admits must be a well-formed DNS name, so
            // `a..b.`, `-.`, `_x.` or `a:b.` never reach a resolver.
            HostPattern::Suffix(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str()) && is_dns_name(host)
            }
            HostPattern::Address(ip) => parse_ip(host) == Some(*ip),
        }
    }
}

/// The pattern's one canonical spelling: lowercase, no trailing dot, no
/// brackets; what a recipe should write, so one route has one hash.
impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Suffix(suffix) => write!(f, "*{suffix}"),
            HostPattern::Address(ip) => write!(f, "{ip}"),
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

/// Is `host` (normalized) a well-formed DNS name: at most 253 characters,
/// labels of 1 to 63 letters, digits and inner hyphens?
pub fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The headers some frameworks (Rails, Laravel, Spring's filter, Express
/// middleware, ...) read as the request's real method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

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
            if let Some(segment) = dot_segment(path) {
                return Err(format!(
                    "path {path} has the segment `{segment}`, which servers read as `.` or `..`"
                ));
            }
            let bare = path.split(['?', '#']).next().unwrap_or(path);
            if !globs.iter().any(|g| g.matches(bare)) {
                let listed: Vec<&str> = globs.iter().map(|g| g.pattern.as_str()).collect();
                return Err(format!("path {bare} matches none of {}", listed.join(", ")));
            }
        }
        Ok(())
    }

    /// Whether a method-override header (`name: value`, see
    /// [`METHOD_OVERRIDE_HEADERS`]) is allowed: on a route with method rules
    /// every method it names must be one of them, since the upstream may
    /// act on it instead of the request's own method.
    pub fn admits_override(&self, name: &str, value: &[u8]) -> Result<(), String> {
        let Some(methods) = &self.methods else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(value);
        for named in text.split(',').map(str::trim) {
            let upper = named.to_ascii_uppercase();
            if !methods.contains(&upper) {
                let shown: String = named.chars().take(40).collect();
                return Err(format!(
                    "header {name} names method `{shown}`, which is not in {}",
                    methods.join(", ")
                ));
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
                host: HostPattern::parse(&route.host)
                    .expect("Policy::check parsed every route's host"),
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

/// The first segment of `path` that an upstream could resolve as `.` or
/// `..`, if any; path rules refuse such paths, since the upstream would
/// serve a resource the rules never saw. Besides plain `.` and `..` this
/// catches their percent-encoded forms (also double-encoded), backslash and
/// encoded-slash separators, and dot segments with matrix parameters
/// (`..;`, `.;x=1`, `..;/`), which Tomcat, Jetty and Spring strip before
/// resolving the path.
fn dot_segment(path: &str) -> Option<String> {
    let bare = path.split(['?', '#']).next().unwrap_or(path);
    // Decode until nothing changes, so `%252e` is seen as `.` too.
    let mut decoded = bare.as_bytes().to_vec();
    for _ in 0..4 {
        let next = percent_decode(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    let decoded = String::from_utf8_lossy(&decoded).replace('\\', "/");
    decoded
        .split('/')
        .find(|segment| {
            // A matrix parameter (`;...`) is not part of the segment's name.
            let name = segment.split(';').next().unwrap_or(segment);
            // Some servers also ignore trailing NULs and whitespace.
            let name = name.trim_end_matches(['\0', ' ', '\t']);
            name == "." || name == ".."
        })
        .map(str::to_string)
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("API.Example.com.").unwrap();
        assert!(exact.matches(&normalize_host("api.example.COM.")));
        assert!(!exact.matches("x.api.example.com"));
        assert_eq!(exact.to_string(), "api.example.com");
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("a.example.com") && wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com") && !wild.matches("badexample.com"));
        assert_eq!(wild.to_string(), "*.example.com");
        let ip = HostPattern::parse("::1").unwrap();
        assert!(ip.matches(&normalize_host("[::1]")));
        assert_eq!(HostPattern::parse("[::1]"), Ok(ip));
        assert!(matches!(
            HostPattern::parse("127.0.0.1"),
            Ok(HostPattern::Address(_))
        ));
    }

    #[test]
    fn host_patterns_that_never_match_are_refused() {
        for bad in [
            "",
            "https://api.example.com/v1",
            "api.example.com:443",
            "api.*.com",
            "*example.com",
            "a..b",
            ".",
            "example.com/x",
            "*.com",
            "exa mple.com",
            "-a.example.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} was accepted");
        }
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
        for path in [
            "/v1/../admin",
            "/v1/%2E%2e/admin",
            "/v1/..;/admin",
            "/v1/.;/admin",
            "/v1/..;jsessionid=x/admin",
            "/v1/.;a=b/x",
            "/v1/%2e%2e%3b/admin",
            "/v1/%2e%2e;/admin",
            "/v1/%252e%252e/admin",
            "/v1%2f..%2fadmin",
            "/v1\\..\\admin",
            "/v1/..%00/admin",
            "/v1/..",
        ] {
            assert!(dot_segment(path).is_some(), "{path} passed");
        }
        for path in [
            "/v1/file.txt?x=../y",
            "/v1/...",
            "/v1/..a",
            "/v1/a;b=..",
            "/v1/.well-known",
            "/v1/%zz",
            "/v1/%2",
        ] {
            assert_eq!(dot_segment(path), None, "{path} refused");
        }
    }

    #[test]
    fn method_overrides_must_name_allowed_methods() {
        let policy = Policy::from_yaml(
            "version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [443]\n    inspect: true\n    methods: [GET, post]\n  - host: b.test\n    ports: [443]\n",
        )
        .unwrap();
        let table = RouteTable::new(&policy);
        let ruled = table.find("a.test", 443).unwrap();
        assert!(ruled
            .admits_override("x-http-method-override", b"post")
            .is_ok());
        assert!(ruled.admits_override("x-http-method", b"GET, POST").is_ok());
        let err = ruled
            .admits_override("x-method-override", b"DELETE")
            .unwrap_err();
        assert!(err.contains("`DELETE`"), "{err}");
        assert!(ruled.admits_override("x-http-method", b"GET, PUT").is_err());
        assert!(ruled.admits_override("x-http-method", b"").is_err());
        let open = table.find("b.test", 443).unwrap();
        assert!(open.admits_override("x-http-method", b"DELETE").is_ok());
    }

    #[test]
    fn wildcards_admit_well_formed_names_only() {
        let wild = HostPattern::parse("*.wild.test").unwrap();
        assert!(wild.matches("a.wild.test") && wild.matches("a-b.c.wild.test"));
        for bad in [
            "a..b.wild.test",
            "-.wild.test",
            "a-.wild.test",
            "a_b.wild.test",
            "a:b.wild.test",
            ".wild.test",
        ] {
            assert!(!wild.matches(bad), "{bad} matched");
        }
        assert!(!wild.matches(&format!("{}.wild.test", "a".repeat(64))));
    }
}
