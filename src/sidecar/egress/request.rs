//! Reading the first request head a client sends to the proxy, and parsing
//! the request target (`host:port` for CONNECT, `http://host:port/path` for
//! absolute-form). This is the code that sees untrusted bytes first, so it is
//! bounded (head size), total (every input is a value or an error) and fuzzed
//! (`tests/egress_fuzz.rs`).

use super::rules::normalize_host;

/// The most headers a request head may carry.
pub const MAX_HEADERS: usize = 100;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// Length of the head in bytes, including the blank line.
    pub len: usize,
}

/// What became of the bytes read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadParse {
    Complete(Head),
    /// Need more bytes.
    Partial,
    Malformed(String),
}

/// Parse a request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> HeadParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let (Some(method), Some(target), Some(_)) = (req.method, req.path, req.version) else {
                return HeadParse::Malformed("incomplete request line".into());
            };
            HeadParse::Complete(Head {
                method: method.to_string(),
                target: target.to_string(),
                len,
            })
        }
        Ok(httparse::Status::Partial) => HeadParse::Partial,
        Err(err) => HeadParse::Malformed(err.to_string()),
    }
}

/// Where a request wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Normalized host: lowercase, no trailing dot, no IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Origin-form path and query, for absolute-form requests.
    pub path: Option<String>,
}

/// Parse a CONNECT target: `host:port` or `[v6]:port`; the port is required.
pub fn parse_authority(authority: &str) -> Result<Target, String> {
    let (host, port) = split_host_port(authority)?;
    let port = port.ok_or_else(|| format!("CONNECT target `{authority}` has no port"))?;
    Ok(Target {
        host,
        port,
        path: None,
    })
}

/// Parse an absolute-form target `http://host[:port]/path?query`. Only `http`
/// is accepted: HTTPS goes through CONNECT.
pub fn parse_absolute(target: &str) -> Result<Target, String> {
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(format!(
            "`{}` is not an absolute URL; send requests to a proxy as http://host/path",
            clip(target)
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "scheme `{}` is not proxied as a plain request; use CONNECT for https",
            clip(scheme)
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("user information in the URL is not allowed".into());
    }
    let (host, port) = split_host_port(authority)?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('/') => p.split('#').next().unwrap_or(p).to_string(),
        p => format!("/{}", p.split('#').next().unwrap_or(p)),
    };
    Ok(Target {
        host,
        port: port.unwrap_or(80),
        path: Some(path),
    })
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{}` has an unclosed `[`", clip(authority)))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{}` is not an IPv6 address", clip(v6)));
        }
        match after {
            "" => (v6, None),
            p => (
                v6,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("junk after `]` in `{}`", clip(authority)))?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the request names no host".into());
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid || host.len() > 253 {
        return Err(format!("`{}` is not a host name", clip(host)));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("`{}` is not a port", clip(p))),
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            Ok(_) => return Err(format!("`{}` is not a port", clip(p))),
        },
    };
    // `.` and `..` normalize to nothing: still no host.
    let host = normalize_host(host);
    if host.is_empty() {
        return Err("the request names no host".into());
    }
    Ok((host, port))
}

/// Untrusted text echoed in an error is shortened so a hostile client cannot
/// make the proxy write big replies or log lines.
fn clip(text: &str) -> String {
    let mut end = text.len().min(80);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let clipped = &text[..end];
    clipped
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        assert_eq!(
            parse_head(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\nrest"),
            HeadParse::Complete(Head {
                method: "CONNECT".into(),
                target: "a.test:443".into(),
                len: 49
            })
        );
        assert_eq!(
            parse_head(b"GET http://a.test/ HTTP/1.1\r\nHo"),
            HeadParse::Partial
        );
        assert!(matches!(
            parse_head(b"\x00\x01garbage\r\n\r\n"),
            HeadParse::Malformed(_)
        ));
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_authority("A.Test.:443").unwrap(),
            Target {
                host: "a.test".into(),
                port: 443,
                path: None
            }
        );
        assert_eq!(parse_authority("[::1]:8443").unwrap().host, "::1");
        assert!(parse_authority("a.test").is_err());
        assert!(parse_authority("a.test:0").is_err());
        assert!(parse_authority("a.test:+80").is_err());
        let t = parse_absolute("http://a.test:8080/v1/x?y=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_deref()),
            ("a.test", 8080, Some("/v1/x?y=1"))
        );
        assert_eq!(
            parse_absolute("http://a.test").unwrap().path.as_deref(),
            Some("/")
        );
        assert!(parse_absolute("https://a.test/").is_err());
        assert!(parse_absolute("/relative").is_err());
        assert!(parse_absolute("http://user@a.test/").is_err());
    }
}
