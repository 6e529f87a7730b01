//! Egress host patterns: an exact DNS name, `*.` followed by a DNS name (any
//! subdomain of it, not the name itself), or an IP literal. A pattern that
//! could never match a request (a URL, a port, a `*` elsewhere, an empty
//! label) is refused with the fix, since a silently dead route is a bug the
//! user only finds when the agent is denied.

use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.suffix`: matches `a.suffix`, `a.b.suffix`, never `suffix` itself.
    Subdomains(String),
    Ip(IpAddr),
}

/// Why a host pattern can never match, with the pattern to use instead when
/// there is an obvious one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPatternError {
    pub message: String,
    pub help: String,
}

fn err(message: impl Into<String>, help: impl Into<String>) -> HostPatternError {
    HostPatternError {
        message: message.into(),
        help: help.into(),
    }
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, HostPatternError> {
        if text.is_empty() {
            return Err(err(
                "an empty host matches nothing",
                "write a host name such as `api.example.com`",
            ));
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            let host = rest.split(['/', ':']).next().unwrap_or(rest);
            return Err(err(
                format!("`{text}` is a URL, and routes match host names, so it can never match"),
                format!("write `host = \"{host}\";` and put the port in `ports` (`{scheme}` is implied by the port)"),
            ));
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(HostPattern::Ip(ip));
        }
        if let Some((host, port)) = text.rsplit_once(':') {
            if port.chars().all(|c| c.is_ascii_digit()) && !host.contains(':') {
                return Err(err(
                    format!("`{text}` includes a port, and host patterns never do, so it can never match"),
                    format!("write `host = \"{host}\"; ports = [ {port} ];`"),
                ));
            }
        }
        if text.contains('/') {
            let host = text.split('/').next().unwrap_or_default();
            return Err(err(
                format!("`{text}` includes a path, and host patterns never do, so it can never match"),
                format!("write `host = \"{host}\";` and put the path in `paths` (with `inspect = true`)"),
            ));
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.contains('*') {
            return Err(err(
                format!("`{text}` has a `*` that is not a leading `*.`, so it can never match"),
                "a wildcard is only allowed as `*.example.com`, meaning any subdomain of example.com",
            ));
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            let lower = text.to_ascii_lowercase();
            return Err(err(
                format!("`{text}` has capital letters; write host patterns in lowercase, the one spelling the policy and its hash use"),
                format!("write `{lower}`"),
            ));
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.len() > 253 {
            return Err(err(
                format!("`{text}` is longer than a DNS name can be (253 characters)"),
                "shorten it",
            ));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(err(
                    format!(
                        "`{text}` has an empty label (two dots in a row, or a dot at the start)"
                    ),
                    "DNS names are labels separated by single dots, e.g. `api.example.com`",
                ));
            }
            if label.len() > 63 {
                return Err(err(
                    format!("`{text}` has a label longer than 63 characters"),
                    "no DNS name has one",
                ));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(err(
                    format!(
                        "`{text}` has `{bad}`, which no DNS name contains, so it can never match"
                    ),
                    "host names use letters, digits, `-` and dots",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(err(
                    format!("`{text}` has a label that starts or ends with `-`"),
                    "no DNS name has one",
                ));
            }
        }
        if wildcard && !name.contains('.') {
            return Err(err(
                format!("`{text}` would allow every host under the top-level domain `{name}`"),
                "name the domain you mean, e.g. `*.example.com`",
            ));
        }
        Ok(if wildcard {
            HostPattern::Subdomains(name.to_string())
        } else {
            HostPattern::Exact(name.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_wildcards_and_ips() {
        assert_eq!(
            HostPattern::parse("api.anthropic.com"),
            Ok(HostPattern::Exact("api.anthropic.com".into()))
        );
        assert_eq!(
            HostPattern::parse("*.github.com"),
            Ok(HostPattern::Subdomains("github.com".into()))
        );
        assert!(matches!(
            HostPattern::parse("127.0.0.1"),
            Ok(HostPattern::Ip(_))
        ));
        assert!(matches!(HostPattern::parse("::1"), Ok(HostPattern::Ip(_))));
        assert!(matches!(
            HostPattern::parse("[::1]"),
            Ok(HostPattern::Ip(_))
        ));
    }

    #[test]
    fn refuses_patterns_that_never_match() {
        for bad in [
            "",
            "https://api.example.com/v1",
            "api.example.com:443",
            "api.*.com",
            "*example.com",
            "API.example.com",
            "a..b",
            "example.com/x",
            "*.com",
            "exa mple.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
