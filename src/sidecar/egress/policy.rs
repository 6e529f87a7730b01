//! The `egress.yaml` contract between `bottle build` (which renders it) and the
//! egress sidecar (which enforces it): the serde types, and the checks that
//! make a bad policy fail at load time with a message that says what to fix.
//! It holds secret *references* only; values are read by `secrets.rs` at start.
//! The format is documented for humans in `docs/egress.md`.

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The only policy format version this sidecar understands.
pub const POLICY_VERSION: u32 = 1;

/// One bottle's egress policy: the routes it may use and the secrets they inject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    /// The bottle's name, written into every audit line.
    pub bottle: String,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    /// What happens to a request no route allows: denied (the default), or
    /// held while a person is asked, as on an `approve` route.
    #[serde(default, skip_serializing_if = "Unmatched::is_deny")]
    pub default: Unmatched,
    /// A CA (PEM file) to verify inspected upstreams with instead of the
    /// system roots; meant for tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<PathBuf>,
}

/// The policy's answer for a request no route allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    #[default]
    Deny,
    Ask,
}

impl Unmatched {
    pub fn is_deny(&self) -> bool {
        *self == Unmatched::Deny
    }
}

/// One allowed destination: a host pattern and its ports, with optional
/// method/path rules and header injection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `api.example.com`, `*.example.com`, or an IP literal, as
    /// [`super::rules::HostPattern::parse`] reads it (the recipe checker
    /// reads it the same way).
    pub host: String,
    pub ports: Vec<u16>,
    /// Terminate TLS with the bottle's CA so methods, paths and headers apply
    /// to HTTPS too.
    #[serde(default)]
    pub inspect: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Glob patterns on the request path; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderInjection>,
    /// Private or loopback addresses this route may resolve to (SSRF exemption).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// Hold each new connection on this route until a person allows it
    /// (`bottle supervise`, `bottle approve`); denied after a timeout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve: bool,
}

/// A header the proxy sets on requests of a route, its value taken from a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderInjection {
    pub name: String,
    /// A key of the policy's `secrets`.
    pub secret: String,
}

/// Where a secret's value lives on the host: an environment variable or a file.
/// Exactly one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// The secret in the host environment variable `var`.
    pub fn env(var: impl Into<String>) -> SecretRef {
        SecretRef {
            env: Some(var.into()),
            file: None,
        }
    }

    /// The secret in the host file `path`.
    pub fn file(path: impl Into<PathBuf>) -> SecretRef {
        SecretRef {
            env: None,
            file: Some(path.into()),
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum PolicyError {
    #[error("cannot read the egress policy {}", path.display())]
    #[diagnostic(code(egress::policy::read), help("check the path given with --policy"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the egress policy is not valid: {message}")]
    #[diagnostic(
        code(egress::policy::syntax),
        help("see docs/egress.md for the egress.yaml format")
    )]
    Syntax {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        at: Option<SourceSpan>,
    },
    #[error("egress policy: {message}")]
    #[diagnostic(code(egress::policy::invalid))]
    Invalid {
        message: String,
        #[help]
        help: String,
    },
}

impl Policy {
    /// Read and check an `egress.yaml` file.
    pub fn load(path: &Path) -> miette::Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text, &path.display().to_string())?)
    }

    /// Parse and check a policy given as YAML text.
    pub fn from_yaml(text: &str) -> miette::Result<Policy> {
        Ok(Self::parse(text, "egress.yaml")?)
    }

    fn parse(text: &str, name: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = serde_yaml::from_str(text).map_err(|err| {
            let at = err.location().map(|loc| SourceSpan::from((loc.index(), 1)));
            PolicyError::Syntax {
                message: err.to_string(),
                src: NamedSource::new(name, text.to_string()),
                at,
            }
        })?;
        policy.check()?;
        Ok(policy)
    }

    /// The checks serde cannot express: everything a route refers to exists
    /// and every value is usable.
    pub fn check(&self) -> Result<(), PolicyError> {
        let invalid = |message: String, help: &str| PolicyError::Invalid {
            message,
            help: help.to_string(),
        };
        if self.version != POLICY_VERSION {
            return Err(invalid(
                format!("version {} is not supported", self.version),
                "this bottle understands `version: 1`; rebuild the bottle",
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            route.check().map_err(|err| {
                let help = match &err {
                    RouteError::NeedsInspect { .. } => {
                        "add `inspect: true` so the proxy terminates TLS and sees each request, or drop the rule".to_string()
                    }
                    RouteError::Invalid { help, .. } => help.clone(),
                };
                invalid(format!("{at} ({}): {err}", route.host), &help)
            })?;
            for header in &route.headers {
                if !self.secrets.contains_key(&header.secret) {
                    let known = self.secrets.keys().map(String::as_str);
                    let help = match crate::suggest::did_you_mean(&header.secret, known) {
                        Some(hint) => hint,
                        None => format!(
                            "declare it under `secrets:`, e.g. `{}: {{ env: NAME }}`",
                            header.secret
                        ),
                    };
                    return Err(invalid(
                        format!(
                            "{at} ({}): header `{}` uses secret `{}`, which is not declared",
                            route.host, header.name, header.secret
                        ),
                        &help,
                    ));
                }
            }
        }
        for (name, secret) in &self.secrets {
            match (&secret.env, &secret.file) {
                (Some(env), None) if !env.is_empty() => {}
                (None, Some(file)) if !file.as_os_str().is_empty() => {}
                _ => {
                    return Err(invalid(
                        format!("secret `{name}` must name exactly one of `env` or `file`"),
                        "write `{ env: NAME }` or `{ file: /path }`",
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A field of a route, named as `egress.yaml` and recipes spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteField {
    Host,
    Ports,
    Methods,
    Paths,
    Headers,
}

impl RouteField {
    /// The field's key: `host`, `ports`, `methods`, `paths`, `headers`.
    pub fn key(self) -> &'static str {
        match self {
            RouteField::Host => "host",
            RouteField::Ports => "ports",
            RouteField::Methods => "methods",
            RouteField::Paths => "paths",
            RouteField::Headers => "headers",
        }
    }
}

impl std::fmt::Display for RouteField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.key())
    }
}

/// What is wrong with one route, and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A rule only an inspected route can keep. Without `inspect` the route
    /// is reached by an opaque CONNECT tunnel, inside which any method and
    /// path reach the upstream; a secret header would have to travel in
    /// clear. The fix is always the same: `inspect: true` (recipes:
    /// `inspect = true;`).
    #[error("{}", needs_inspect_message(*.field))]
    NeedsInspect { field: RouteField },
    /// A value the proxy cannot use.
    #[error("{message}")]
    Invalid {
        field: RouteField,
        message: String,
        help: String,
    },
}

fn needs_inspect_message(field: RouteField) -> String {
    match field {
        RouteField::Headers => "`headers` need an inspected route: a secret header only ever travels over TLS the proxy verified".to_string(),
        field => format!("{field} can only be enforced on an inspected route: inside an opaque CONNECT tunnel any method and path reach the upstream"),
    }
}

impl RouteError {
    /// The field at fault.
    pub fn field(&self) -> RouteField {
        match self {
            RouteError::NeedsInspect { field } | RouteError::Invalid { field, .. } => *field,
        }
    }
}

impl Route {
    /// The checks on one route that its types cannot express. The one place
    /// the rule "method, path and header rules need `inspect`" lives: the
    /// sidecar applies it when a policy loads, and the recipe checker calls
    /// it so a recipe is refused at the rule's span. That rule is checked
    /// first.
    pub fn check(&self) -> Result<(), RouteError> {
        if !self.inspect {
            let field = if self.methods.is_some() {
                Some(RouteField::Methods)
            } else if self.paths.is_some() {
                Some(RouteField::Paths)
            } else if !self.headers.is_empty() {
                Some(RouteField::Headers)
            } else {
                None
            };
            if let Some(field) = field {
                return Err(RouteError::NeedsInspect { field });
            }
        }
        let invalid = |field, message: String, help: &str| RouteError::Invalid {
            field,
            message,
            help: help.to_string(),
        };
        super::rules::HostPattern::parse(&self.host)
            .map_err(|why| invalid(RouteField::Host, why.message, &why.help))?;
        if self.ports.is_empty() {
            return Err(invalid(
                RouteField::Ports,
                "lists no ports".into(),
                "add e.g. `ports: [443]`",
            ));
        }
        if self.ports.contains(&0) {
            return Err(invalid(
                RouteField::Ports,
                "allows port 0".into(),
                "ports are 1 to 65535",
            ));
        }
        for method in self.methods.iter().flatten() {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(invalid(
                    RouteField::Methods,
                    format!("`{method}` is not an HTTP method"),
                    "write methods like GET, POST, PUT",
                ));
            }
        }
        for path in self.paths.iter().flatten() {
            if !path.starts_with('/') && path != "*" {
                return Err(invalid(
                    RouteField::Paths,
                    format!("path pattern `{path}` does not start with /"),
                    "path patterns look like `/v1/*`",
                ));
            }
        }
        for header in &self.headers {
            if hyper::header::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
                return Err(invalid(
                    RouteField::Headers,
                    format!("`{}` is not a header name", header.name),
                    "header names are tokens like `x-api-key` or `authorization`",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(yaml: &str) -> String {
        match Policy::from_yaml(yaml) {
            Ok(_) => panic!("policy should have been rejected"),
            Err(report) => format!("{report:?}"),
        }
    }

    #[test]
    fn full_example_loads() {
        let p = Policy::from_yaml(
            "version: 1\nbottle: b\nroutes:\n  - host: api.anthropic.com\n    ports: [443]\n    inspect: true\n    methods: [GET, POST]\n    paths: [\"/v1/*\"]\n    headers:\n      - name: x-api-key\n        secret: anthropic\n    addresses: [127.0.0.1]\nsecrets:\n  anthropic: { env: ANTHROPIC_API_KEY }\n",
        )
        .unwrap();
        assert_eq!(p.routes[0].headers[0].secret, "anthropic");
        assert_eq!(
            p.routes[0].addresses,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn rejects_what_the_contract_forbids() {
        assert!(error_of(
            "version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [443]\n    colour: red\n"
        )
        .contains("colour"));
        assert!(
            error_of("version: 1\nbottle: b\nroutes:\n  - host: ''\n    ports: [443]\n")
                .contains("empty host")
        );
        assert!(
            error_of("version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [0]\n")
                .contains("port 0")
        );
        let undeclared = error_of("version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [443]\n    inspect: true\n    headers: [{name: x-k, secret: anthropc}]\nsecrets:\n  anthropic: { env: K }\n");
        assert!(
            undeclared.contains("not declared") && undeclared.contains("did you mean `anthropic`")
        );
        assert!(
            error_of("version: 1\nbottle: b\nsecrets:\n  k: { env: A, file: /b }\n")
                .contains("exactly one")
        );
        assert!(error_of("version: 2\nbottle: b\n").contains("version 2"));
    }

    #[test]
    fn rules_an_opaque_tunnel_cannot_enforce_are_refused() {
        for (rule, field) in [
            ("methods: [GET]", RouteField::Methods),
            ("paths: ['/v1/*']", RouteField::Paths),
            ("headers: [{name: x-k, secret: k}]", RouteField::Headers),
        ] {
            let yaml = format!("version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [443]\n    {rule}\nsecrets:\n  k: {{ env: K }}\n");
            let text = error_of(&yaml);
            assert!(text.contains("inspected route"), "{text}");
            assert!(text.contains("add `inspect: true`"), "{text}");
            let policy: Policy = serde_yaml::from_str(&yaml).unwrap();
            assert_eq!(
                policy.routes[0].check(),
                Err(RouteError::NeedsInspect { field })
            );
            assert!(Policy::from_yaml(
                &yaml.replace("ports: [443]", "ports: [443]\n    inspect: true")
            )
            .is_ok());
        }
        let bad_port = Route {
            host: "a.test".into(),
            ports: vec![0],
            inspect: false,
            methods: None,
            paths: None,
            headers: vec![],
            addresses: vec![],
            approve: false,
        };
        assert_eq!(bad_port.check().unwrap_err().field(), RouteField::Ports);
    }
}
