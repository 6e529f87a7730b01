//! The checker: an evaluated [`Node`] tree in, a typed [`Bottle`] out, or
//! every problem found, each at the span of the value that caused it.
//!
//! Checks go beyond types where a wrong value would fail silently later: a
//! host pattern that can never match, a port out of range, a method the
//! proxy cannot see without inspection, a header naming an unknown secret,
//! and above all a secret written inline: secrets are references, and a
//! value here would be hashed into the store.
//!
//! It also refuses what `bottle run` on this version cannot realize (the
//! minimums of a VM that boots, and the features listed in
//! [`super::unrealized`]), so a bottle that builds is a bottle that runs.

use super::node::{Node, NodeValue, Span};
use super::unrealized::{not_yet, Feature};
use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// One problem with a recipe's value.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckError {
    /// The recipe span of the offending value, when known.
    pub span: Option<Span>,
    /// Where in the value, e.g. `egress.routes[0].ports[1]`.
    pub path: String,
    pub message: String,
    pub help: Option<String>,
    /// The offending text may be a secret: point at it by line and column,
    /// never quote the source line.
    pub sensitive: bool,
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

/// Turn check errors into one report: every error but the last is printed
/// as it is found, the last is returned (the CLI prints it and exits 1).
pub fn check_report(sources: &crate::syntax::SourceMap, errors: Vec<CheckError>) -> miette::Report {
    let count = errors.len();
    let mut errors = errors;
    // In the order they appear in the recipe, as a reader goes through it.
    errors.sort_by_key(|e| e.span.map_or((u32::MAX, u32::MAX), |s| (s.file.0, s.start)));
    let mut reports: Vec<miette::Report> = errors.into_iter().map(|e| e.report(sources)).collect();
    if count <= 1 {
        return reports
            .pop()
            .unwrap_or_else(|| miette::miette!("the recipe is not a valid bottle"));
    }
    for r in reports {
        crate::diagnostics::print(r);
    }
    miette::miette!("{count} problems in the recipe")
}

impl CheckError {
    /// The error as a diagnostic at its recipe span; a sensitive one by
    /// line and column only, without quoting the source.
    pub fn report(&self, sources: &crate::syntax::SourceMap) -> miette::Report {
        let nowhere = Span::new(crate::syntax::FileId(u32::MAX), 0, 0);
        let span = self.span.unwrap_or(nowhere);
        if self.sensitive {
            let message = match self.span.filter(|s| s.file != nowhere.file) {
                Some(s) => {
                    // The file's base name keeps the message short; the
                    // line and column find the spot.
                    let src = sources.get(s.file);
                    let (line, col) = src.line_col(s.start);
                    let file = std::path::Path::new(&src.name)
                        .file_name()
                        .map_or_else(|| src.name.clone(), |n| n.to_string_lossy().into_owned());
                    format!("{self} (at {file}:{line}:{col})")
                }
                None => self.to_string(),
            };
            let d = crate::diagnostics::RecipeDiagnostic::at(sources, nowhere, message, "")
                .with_help(self.help.clone());
            return miette::Report::new(d);
        }
        let label = if self.path.is_empty() {
            "this value"
        } else {
            "defined here"
        };
        let d = crate::diagnostics::RecipeDiagnostic::at(sources, span, self.to_string(), label)
            .with_help(self.help.clone());
        miette::Report::new(d)
    }
}

/// Check a value that should be one bottle.
pub fn check(node: &Node) -> Result<Bottle, Vec<CheckError>> {
    let mut cx = Checker::default();
    let bottle = cx.bottle(node, "");
    match bottle {
        Some(b) if cx.errors.is_empty() => Ok(b),
        _ => Err(cx.errors),
    }
}

/// Check a recipe's value: one bottle (it has a `name`), or an attribute set
/// of bottles. `attr` (`-A a.b`) first selects a part of the value.
pub fn check_all(node: &Node, attr: Option<&str>) -> Result<Vec<Bottle>, Vec<CheckError>> {
    let mut node = node;
    let mut path = String::new();
    for key in attr
        .into_iter()
        .flat_map(|a| a.split('.'))
        .filter(|k| !k.is_empty())
    {
        let NodeValue::Attrs(map) = &node.value else {
            return Err(vec![error(
                node,
                &path,
                format!(
                    "-A {key}: this is {}, not an attribute set",
                    node.type_name()
                ),
                None,
            )]);
        };
        match map.get(key) {
            Some(next) => node = next,
            None => {
                let help = crate::suggest::did_you_mean(key, map.keys().map(String::as_str))
                    .or_else(|| Some(format!("the recipe has: {}", list_keys(map.keys()))));
                return Err(vec![error(
                    node,
                    &path,
                    format!("the recipe has no attribute `{key}`"),
                    help,
                )]);
            }
        }
        path = join(&path, key);
    }
    let NodeValue::Attrs(map) = &node.value else {
        let mut cx = Checker::default();
        cx.bottle(node, &path);
        return Err(cx.errors);
    };
    if map.contains_key("name") {
        let mut cx = Checker::default();
        return match cx.bottle(node, &path) {
            Some(b) if cx.errors.is_empty() => Ok(vec![b]),
            _ => Err(cx.errors),
        };
    }
    // A set of bottles, built in key order.
    let mut set = SetChecker::default();
    for (key, value) in map {
        set.add(&join(&path, key), value);
    }
    if map.is_empty() {
        set.cx.push(
            node,
            &path,
            "the recipe's value is an empty attribute set, not a bottle".into(),
            Some("a bottle has at least `name`, `agent` and `image`".into()),
        );
    }
    set.finish()
}

/// Checks the bottles of a set one at a time, so a caller can make each
/// bottle's node tree, check it and drop it before making the next (a
/// thousand-bottle fleet never holds a thousand trees).
#[derive(Default)]
pub struct SetChecker {
    cx: Checker,
    names: BTreeMap<String, String>,
    bottles: Vec<Bottle>,
}

impl SetChecker {
    /// Check the bottle at attribute path `at`.
    pub fn add(&mut self, at: &str, value: &Node) {
        if let Some(b) = self.cx.bottle(value, at) {
            if let Some(first) = self.names.insert(b.name.clone(), at.to_string()) {
                self.cx.push(
                    value,
                    at,
                    format!("two bottles are named `{}` (`{first}` and `{at}`)", b.name),
                    Some("bottle names identify running bottles; make them unique".into()),
                );
            }
            self.bottles.push(b);
        }
    }

    pub fn finish(self) -> Result<Vec<Bottle>, Vec<CheckError>> {
        if self.cx.errors.is_empty() {
            Ok(self.bottles)
        } else {
            Err(self.cx.errors)
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn list_keys<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    keys.map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn error(node: &Node, path: &str, message: String, help: Option<String>) -> CheckError {
    CheckError {
        span: node.span,
        path: path.to_string(),
        message,
        help,
        sensitive: false,
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<CheckError>,
    refs: Vec<Arc<Derivation>>,
}

/// The fields of one attribute set being checked; unknown ones are
/// reported when it is finished.
struct Fields<'a> {
    node: &'a Node,
    map: &'a BTreeMap<String, Node>,
    path: String,
    used: BTreeSet<&'static str>,
}

impl<'a> Fields<'a> {
    fn get(&mut self, key: &'static str) -> Option<(&'a Node, String)> {
        self.used.insert(key);
        self.map.get(key).map(|n| (n, join(&self.path, key)))
    }

    fn finish(self, cx: &mut Checker, known: &[&'static str]) {
        for (key, value) in self.map {
            if known.contains(&key.as_str()) {
                continue;
            }
            let help = match crate::suggest::did_you_mean(key, known.iter().copied()) {
                Some(hint) => hint,
                None => format!(
                    "known fields here: {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            cx.push(
                value,
                &join(&self.path, key),
                format!("unknown field `{key}`"),
                Some(help),
            );
        }
    }
}

fn is_secret_ref(node: &Node) -> bool {
    matches!(&node.value, NodeValue::Attrs(m) if matches!(m.get("type").map(|t| &t.value), Some(NodeValue::Str(s, _)) if s == "secret"))
}

/// Well-known credential formats, by their fixed prefixes: a string in a
/// recipe that matches one is almost surely a pasted secret. Checked on every
/// string the bottle keeps, since all of them end up in the store.
fn looks_like_credential(text: &str) -> Option<&'static str> {
    static PATTERNS: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> =
        std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        [
            (r"\bsk-ant-[A-Za-z0-9_-]{20,}", "an Anthropic API key"),
            (r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}", "an OpenAI API key"),
            (r"\bgh[pousr]_[A-Za-z0-9]{30,}", "a GitHub token"),
            (r"\bgithub_pat_[A-Za-z0-9_]{40,}", "a GitHub token"),
            (r"\bxox[abpr]-[A-Za-z0-9-]{10,}", "a Slack token"),
            (r"\bAKIA[0-9A-Z]{16}\b", "an AWS access key"),
            (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a private key"),
        ]
        .into_iter()
        .map(|(p, kind)| {
            (
                regex::Regex::new(p).expect("credential patterns are valid regexes"),
                kind,
            )
        })
        .collect()
    });
    patterns
        .iter()
        .find(|(re, _)| re.is_match(text))
        .map(|(_, kind)| *kind)
}

/// The fields the checker accepts, level by level: what `finish` reports
/// unknown fields against, and what [`field_paths`] lists.
mod fields {
    pub const BOTTLE: &[&str] = &[
        "name", "agent", "image", "cpus", "memory", "env", "secrets", "egress", "git", "sidecars",
        "files", "type",
    ];
    pub const AGENT: &[&str] = &["command", "user", "workdir", "env"];
    pub const IMAGE: &[&str] = &[
        "oci",
        "busybox",
        "dir",
        "oci-layout",
        "oci-archive",
        "tag",
        "debian",
    ];
    pub const DEBIAN: &[&str] = &["suite", "packages", "mirror"];
    pub const SECRET: &[&str] = &["env", "file", "type"];
    pub const EGRESS: &[&str] = &["routes", "default"];
    pub const ROUTE: &[&str] = &[
        "host",
        "ports",
        "inspect",
        "methods",
        "paths",
        "headers",
        "addresses",
        "approve",
    ];
    pub const HEADER: &[&str] = &["name", "secret"];
    pub const REMOTE: &[&str] = &[
        "url",
        "fetch",
        "push",
        "force",
        "delete",
        "push-ask",
        "checkout",
        "credentials",
        "username",
    ];
    pub const GIT_USER: &[&str] = &["name", "email"];
    pub const SIDECARS: &[&str] = &["supervise", "egress", "git-gate"];
}

/// Every field path a recipe may set, e.g. `agent.user`,
/// `egress.routes[].headers[].secret`, `git.<remote>.push`: what the
/// checker accepts, for tests that hold each field to the contract that it
/// either runs or is refused at build time.
pub fn field_paths() -> Vec<String> {
    let under = |prefix: &str, names: &[&str]| -> Vec<String> {
        names.iter().map(|n| format!("{prefix}{n}")).collect()
    };
    let mut out = Vec::new();
    for top in fields::BOTTLE {
        match *top {
            "agent" => out.extend(under("agent.", fields::AGENT)),
            "image" => {
                for f in fields::IMAGE {
                    match *f {
                        "debian" => out.extend(under("image.debian.", fields::DEBIAN)),
                        _ => out.push(format!("image.{f}")),
                    }
                }
            }
            "secrets" => out.extend(under("secrets.<name>.", fields::SECRET)),
            "egress" => {
                for f in fields::EGRESS.iter().filter(|f| **f != "routes") {
                    out.push(format!("egress.{f}"));
                }
                for f in fields::ROUTE {
                    match *f {
                        "headers" => {
                            out.extend(under("egress.routes[].headers[].", fields::HEADER))
                        }
                        _ => out.push(format!("egress.routes[].{f}")),
                    }
                }
            }
            "git" => {
                out.extend(under("git.<remote>.", fields::REMOTE));
                out.extend(under("git.user.", fields::GIT_USER));
            }
            "sidecars" => out.extend(under("sidecars.", fields::SIDECARS)),
            other => out.push(other.to_string()),
        }
    }
    out
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

impl Checker {
    fn push(&mut self, node: &Node, path: &str, message: String, help: Option<String>) {
        self.errors.push(error(node, path, message, help));
    }

    /// Refuse `feature` at `node` if this version of `bottle run` cannot
    /// realize it (see [`super::unrealized`]).
    fn not_yet(&mut self, feature: Feature, node: &Node, path: &str) {
        if let Some(refusal) = not_yet(feature) {
            self.push(
                node,
                path,
                refusal.message.to_string(),
                Some(refusal.help.to_string()),
            );
        }
    }

    fn expected(&mut self, node: &Node, path: &str, what: &str) {
        let message = format!("expected {what}, found {}", node.type_name());
        self.push(node, path, message, None);
    }

    fn attrs<'a>(&mut self, node: &'a Node, path: &str) -> Option<Fields<'a>> {
        match &node.value {
            NodeValue::Attrs(map) => Some(Fields {
                node,
                map,
                path: path.to_string(),
                used: BTreeSet::new(),
            }),
            _ => {
                self.expected(node, path, "an attribute set");
                None
            }
        }
    }

    fn required<'a>(
        &mut self,
        fields: &mut Fields<'a>,
        key: &'static str,
        what: &str,
    ) -> Option<(&'a Node, String)> {
        let found = fields.get(key);
        if found.is_none() {
            let path = fields.path.clone();
            self.push(
                fields.node,
                &path,
                format!("missing field `{key}`"),
                Some(format!("add `{key} = {what};`")),
            );
        }
        found
    }

    /// A string; a derivation coerces to its guest store path, as it would
    /// when interpolated, and either way the derivations it mentions are kept.
    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        self.string_or_store_path(node, path, false)
    }

    /// As [`Checker::string`]; with `store_path_ok` a string naming a
    /// derivation's output is accepted (`files` places such outputs).
    fn string_or_store_path(
        &mut self,
        node: &Node,
        path: &str,
        store_path_ok: bool,
    ) -> Option<String> {
        match &node.value {
            NodeValue::Str(s, context) => {
                if let Some(kind) = looks_like_credential(s) {
                    self.push(
                        node,
                        path,
                        format!("this string looks like {kind}; a secret written here would be hashed into the store"),
                        Some("keep the value on the host: declare `secrets.NAME = builtins.secret { env = \"VAR\"; };` and let a route inject it".into()),
                    );
                    if let Some(e) = self.errors.last_mut() {
                        e.sensitive = true;
                    }
                    return None;
                }
                self.refs.extend(context.iter().cloned());
                let placed = store_path_ok
                    && !s.contains(char::is_whitespace)
                    && crate::lower::image::owner_of(&self.refs, s).is_some();
                if !context.is_empty() && !placed {
                    self.not_yet(Feature::StorePaths, node, path);
                }
                Some(s.clone())
            }
            NodeValue::Derivation(d) => {
                if !store_path_ok {
                    self.not_yet(Feature::StorePaths, node, path);
                }
                self.refs.push(d.clone());
                Some(d.guest_path())
            }
            _ if is_secret_ref(node) => {
                self.push(
                    node,
                    path,
                    "a secret cannot be used as a plain value here".into(),
                    Some("secrets reach the guest only as headers the egress proxy adds: list it in `secrets` and name it in a route's `headers`".into()),
                );
                None
            }
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    fn int(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match node.value {
            NodeValue::Int(i) if range.contains(&i) => Some(i),
            NodeValue::Int(i) => {
                self.push(
                    node,
                    path,
                    format!("{what} {i} is out of range"),
                    Some(format!(
                        "use a value from {} to {}",
                        range.start(),
                        range.end()
                    )),
                );
                None
            }
            _ => {
                self.expected(node, path, "an int");
                None
            }
        }
    }

    fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                self.expected(node, path, "a bool");
                None
            }
        }
    }

    fn list<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        what: &str,
    ) -> Option<Vec<(&'a Node, String)>> {
        match &node.value {
            NodeValue::List(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n, format!("{path}[{i}]")))
                    .collect(),
            ),
            _ => {
                self.expected(node, path, &format!("a list of {what}"));
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = self.list(node, path, "strings")?;
        let out: Vec<Option<String>> = items.into_iter().map(|(n, p)| self.string(n, &p)).collect();
        out.into_iter().collect()
    }

    fn env(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let NodeValue::Attrs(map) = &node.value else {
            self.expected(node, path, "an attribute set of strings");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in map {
            let at = join(path, key);
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.push(
                    value,
                    &at,
                    format!("`{key}` is not an environment variable name"),
                    Some("use letters, digits and `_`, not starting with a digit".into()),
                );
                ok = false;
            }
            match value.value {
                // Numbers and bools are common in env and mean their text.
                NodeValue::Int(i) => {
                    out.insert(key.clone(), i.to_string());
                }
                NodeValue::Bool(b) => {
                    out.insert(key.clone(), if b { "1" } else { "" }.to_string());
                }
                _ => match self.string(value, &at) {
                    Some(s) => {
                        out.insert(key.clone(), s);
                    }
                    None => ok = false,
                },
            }
        }
        ok.then_some(out)
    }

    fn bottle(&mut self, node: &Node, path: &str) -> Option<Bottle> {
        let mut f = self.attrs(node, path)?;
        let errors_before = self.errors.len();
        self.refs.clear();

        let name = self
            .required(&mut f, "name", "\"my-bottle\"")
            .and_then(|(n, p)| {
                let name = self.string(n, &p)?;
                let valid = !name.is_empty()
                    && name.len() <= 63
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !name.starts_with('-')
                    && !name.ends_with('-');
                if !valid {
                    let slug: String = name
                        .to_ascii_lowercase()
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                        .collect::<String>()
                        .trim_matches('-')
                        .chars()
                        .take(63)
                        .collect();
                    let help = if slug.is_empty() {
                        "use lowercase letters, digits and `-`".to_string()
                    } else {
                        format!("use lowercase letters, digits and `-`, e.g. `\"{slug}\"`")
                    };
                    self.push(
                        n,
                        &p,
                        format!("`{name}` is not a valid bottle name"),
                        Some(help),
                    );
                    return None;
                }
                Some(name)
            });
        let agent = self
            .required(&mut f, "agent", "{ command = [ \"…\" ]; }")
            .and_then(|(n, p)| self.agent(n, &p));
        let image = self
            .required(&mut f, "image", "{ busybox = true; }")
            .and_then(|(n, p)| {
                let image = self.image(n, &p)?;
                if matches!(&image, Image::Oci(r) if !r.contains("@sha256:")) {
                    self.not_yet(Feature::OciTag, n, &p);
                }
                Some(image)
            });
        let cpus = match f.get("cpus") {
            Some((n, p)) => self
                .int(n, &p, "cpus", MIN_CPUS.into()..=MAX_CPUS.into())
                .map(|i| i as u32),
            None => Some(DEFAULT_CPUS),
        };
        let memory = match f.get("memory") {
            Some((n, p)) => match n.value {
                NodeValue::Int(i) if (0..MIN_MEMORY.into()).contains(&i) => {
                    self.push(
                        n,
                        &p,
                        format!("{i} MiB is less memory than bottle's guest needs to boot"),
                        Some(format!("give at least `memory = {MIN_MEMORY};` (MiB)")),
                    );
                    None
                }
                _ => self
                    .int(n, &p, "memory (MiB)", MIN_MEMORY.into()..=MAX_MEMORY.into())
                    .map(|i| i as u32),
            },
            None => Some(DEFAULT_MEMORY),
        };
        let env = match f.get("env") {
            Some((n, p)) => self.env(n, &p),
            None => Some(BTreeMap::new()),
        };
        let secrets = match f.get("secrets") {
            Some((n, p)) => self.secrets(n, &p),
            None => Some(BTreeMap::new()),
        };
        // `egress.default` as written, if it is.
        let default_given = f.get("egress").is_some_and(
            |(n, _)| matches!(&n.value, NodeValue::Attrs(map) if map.contains_key("default")),
        );
        let egress = match f.get("egress") {
            Some((n, p)) => self.egress(n, &p, secrets.as_ref()),
            None => Some(Egress::default()),
        };
        let (git, git_user) = match f.get("git") {
            Some((n, p)) => match self.git(n, &p) {
                Some((remotes, user)) => (Some(remotes), Some(user)),
                None => (None, None),
            },
            None => (Some(BTreeMap::new()), Some(None)),
        };
        let sidecars = match f.get("sidecars") {
            Some((n, p)) => self.sidecars(n, &p),
            None => Some(Sidecars::default()),
        };
        let files = match f.get("files") {
            Some((n, p)) => self.files(n, &p),
            None => Some(BTreeMap::new()),
        };
        // `type` is how `lib.bottle` marks a bottle; it carries no data.
        f.get("type");
        f.finish(self, fields::BOTTLE);

        if self.errors.len() > errors_before {
            return None;
        }
        let mut refs = std::mem::take(&mut self.refs);
        refs.sort_by_key(|d| d.hash());
        refs.dedup_by_key(|d| d.hash());
        // A supervised bottle asks a person about undeclared hosts, unless
        // the recipe says otherwise.
        let mut egress = egress?;
        if sidecars.as_ref().is_some_and(|s| s.supervise) && !default_given {
            egress.default = crate::sidecar::egress::policy::Unmatched::Ask;
        }
        Some(Bottle {
            name: name?,
            agent: agent?,
            image: image?,
            cpus: cpus?,
            memory: memory?,
            env: env?,
            secrets: secrets?,
            egress,
            git: git?,
            git_user: git_user?,
            sidecars: sidecars?,
            files: files?,
            refs,
        })
    }

    fn agent(&mut self, node: &Node, path: &str) -> Option<Agent> {
        let mut f = self.attrs(node, path)?;
        let command = self.required(&mut f, "command", "[ \"claude\" ]").and_then(|(n, p)| {
            let command = self.strings(n, &p)?;
            if command.is_empty() {
                self.push(n, &p, "the agent's command is empty".into(), Some("give the program to run and its arguments, e.g. `[ \"sh\" \"-c\" \"…\" ]`".into()));
                return None;
            }
            Some(command)
        });
        let user = match f.get("user") {
            Some((n, p)) => self.string(n, &p).and_then(|u| {
                let valid = u
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && u.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    })
                    && u.len() <= 32;
                if !valid {
                    self.push(
                        n,
                        &p,
                        format!("`{u}` is not a user name"),
                        Some("use lowercase letters, digits, `_` and `-`, e.g. `\"agent\"`".into()),
                    );
                }
                valid.then_some(u)
            }),
            None => Some(DEFAULT_USER.to_string()),
        };
        let workdir = match f.get("workdir") {
            Some((n, p)) => self.guest_path(n, &p),
            None => Some(DEFAULT_WORKDIR.to_string()),
        };
        let env = match f.get("env") {
            Some((n, p)) => self.env(n, &p),
            None => Some(BTreeMap::new()),
        };
        f.finish(self, fields::AGENT);
        Some(Agent {
            command: command?,
            user: user?,
            workdir: workdir?,
            env: env?,
        })
    }

    fn guest_path(&mut self, node: &Node, path: &str) -> Option<String> {
        let p = self.string(node, path)?;
        let normal = p.starts_with('/')
            && !p
                .split('/')
                .skip(1)
                .any(|c| c.is_empty() || c == "." || c == "..")
            && !p.contains('\0');
        if !normal && p != "/" {
            self.push(node, path, format!("`{p}` is not an absolute, normalized guest path"), Some("write it like `/home/agent/work`: starting with `/`, no `.`, `..` or `//`, no trailing `/`".into()));
            return None;
        }
        Some(p)
    }

    /// `{ dir = ./rootfs; }` and `{ debian = { suite; packages; mirror; }; }`.
    fn image_source(&mut self, node: &Node, path: &str) -> Option<Image> {
        let mut f = self.attrs(node, path)?;
        for format in ["oci-layout", "oci-archive"] {
            let Some((n, p)) = f.get(format) else {
                continue;
            };
            let reference = f.get("tag").and_then(|(n, p)| self.string(n, &p));
            let image = match &n.value {
                NodeValue::Path(file) => match crate::image::tree::hash_tree(file) {
                    Ok(tree) if (format == "oci-layout") == file.is_dir() => {
                        Some(Image::OciLocal {
                            format: format.to_string(),
                            path: file.clone(),
                            tree,
                            reference,
                        })
                    }
                    Ok(_) => {
                        let want = if format == "oci-layout" {
                            "an OCI image layout directory"
                        } else {
                            "an OCI archive (a tar file)"
                        };
                        self.push(n, &p, format!("{} is not {want}", file.display()), Some("`oci-layout` names a directory with `index.json`; `oci-archive` a `.tar` of one".into()));
                        None
                    }
                    Err(e) => {
                        self.push(
                            n,
                            &p,
                            format!("cannot read {}: {e}", file.display()),
                            Some("every file of the image must be readable by bottle".into()),
                        );
                        None
                    }
                },
                _ => {
                    self.expected(n, &p, "a path such as `./image`");
                    None
                }
            };
            f.finish(self, &[format, "tag"]); // of fields::IMAGE
            return image;
        }
        let image = match (f.get("dir"), f.get("debian")) {
            (Some((n, p)), None) => {
                match &n.value {
                    NodeValue::Path(dir) => {
                        match crate::image::tree::hash_tree(dir) {
                            Ok(tree) if dir.is_dir() => Some(Image::Dir {
                                path: dir.clone(),
                                tree,
                            }),
                            Ok(_) => {
                                self.push(n, &p, format!("{} is not a directory", dir.display()), Some("`dir` names the root file system's directory, e.g. `./rootfs`".into()));
                                None
                            }
                            Err(e) => {
                                self.push(n, &p, format!("cannot read {}: {e}", dir.display()), Some("every file in an image directory must be readable by bottle".into()));
                                None
                            }
                        }
                    }
                    _ => {
                        self.expected(n, &p, "a path such as `./rootfs`");
                        None
                    }
                }
            }
            (None, Some((n, p))) => {
                let mut d = self.attrs(n, &p)?;
                let suite_given = d.map.contains_key("suite");
                let suite = d.get("suite").and_then(|(n, p)| self.string(n, &p));
                let packages = match d.get("packages") {
                    Some((n, p)) => self.strings(n, &p),
                    None => Some(Vec::new()),
                };
                let mirror = match d.get("mirror") {
                    Some((n, p)) => self.string(n, &p),
                    None => Some(crate::image::debian::DEFAULT_MIRROR.to_string()),
                };
                d.finish(self, fields::DEBIAN);
                let name_ok = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-._:=~".contains(c))
                };
                match (suite, packages, mirror) {
                    (Some(suite), Some(packages), Some(mirror)) => {
                        if let Some(bad) = std::iter::once(&suite)
                            .chain(&packages)
                            .find(|s| !name_ok(s))
                        {
                            self.push(n, &p, format!("`{bad}` is not a Debian suite or package name"), Some("e.g. `debian = { suite = \"bookworm\"; packages = [ \"git\" ]; };`".into()));
                            None
                        } else {
                            Some(Image::Debian {
                                suite,
                                packages,
                                mirror,
                            })
                        }
                    }
                    _ => {
                        if !suite_given {
                            self.push(
                                n,
                                &p,
                                "a Debian image needs `suite`".into(),
                                Some("e.g. `suite = \"bookworm\";`".into()),
                            );
                        }
                        None
                    }
                }
            }
            _ => {
                self.push(
                    node,
                    path,
                    "an image is exactly one of `oci`, `busybox`, `dir`, `debian`, `oci-layout` or `oci-archive`".into(),
                    Some("e.g. `image = { dir = ./rootfs; };`".into()),
                );
                None
            }
        };
        f.finish(self, &["dir", "debian"]);
        image
    }

    fn image(&mut self, node: &Node, path: &str) -> Option<Image> {
        let oci = |cx: &mut Checker, n: &Node, p: &str| -> Option<Image> {
            let r = cx.string(n, p)?;
            if r.is_empty() || r.chars().any(|c| c.is_whitespace()) || r.contains("://") {
                cx.push(
                    n,
                    p,
                    format!("`{r}` is not an OCI image reference"),
                    Some("write it like `docker.io/library/node:22-slim`".into()),
                );
                return None;
            }
            Some(Image::Oci(r))
        };
        match &node.value {
            NodeValue::Str(..) => oci(self, node, path),
            NodeValue::Attrs(map)
                if ["dir", "debian", "oci-layout", "oci-archive"]
                    .iter()
                    .any(|k| map.contains_key(*k)) =>
            {
                self.image_source(node, path)
            }
            NodeValue::Attrs(_) => {
                let mut f = self.attrs(node, path)?;
                let image = match (f.get("oci"), f.get("busybox")) {
                    (Some((n, p)), None) => oci(self, n, &p),
                    (None, Some((n, p))) => match self.bool(n, &p)? {
                        true => Some(Image::Busybox),
                        false => {
                            self.push(
                                n,
                                &p,
                                "`busybox = false` names no image".into(),
                                Some("give `oci = \"…\";` instead".into()),
                            );
                            None
                        }
                    },
                    _ => {
                        self.push(node, path, "an image is exactly one of `oci` or `busybox`".into(), Some("e.g. `image = { oci = \"docker.io/library/alpine:3\"; };` or `image = { busybox = true; };`".into()));
                        None
                    }
                };
                f.finish(self, fields::IMAGE);
                image
            }
            _ => {
                self.expected(
                    node,
                    path,
                    "an OCI reference string or `{ oci = …; }` / `{ busybox = true; }`",
                );
                None
            }
        }
    }

    fn secrets(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, SecretRef>> {
        let NodeValue::Attrs(map) = &node.value else {
            self.expected(node, path, "an attribute set of secret references");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in map {
            let at = join(path, key);
            match self.secret(value, &at, key) {
                Some(s) => {
                    out.insert(key.clone(), s);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn secret(&mut self, node: &Node, path: &str, key: &str) -> Option<SecretRef> {
        let NodeValue::Attrs(_) = &node.value else {
            // Never echo the value: it may be the secret itself.
            let var = key.to_ascii_uppercase().replace('-', "_");
            self.push(
                node,
                path,
                format!("secret `{key}` is written inline as {}; secrets must be references", node.type_name()),
                Some(format!("a value here would be hashed into the store; write `{key} = builtins.secret {{ env = \"{var}\"; }};` (or `{{ file = \"/path\"; }}`) and keep the value on the host")),
            );
            if let Some(e) = self.errors.last_mut() {
                e.sensitive = true;
            }
            return None;
        };
        let mut f = self.attrs(node, path)?;
        f.get("type");
        let secret = match (f.get("env"), f.get("file")) {
            (Some((n, p)), None) => self.string(n, &p).map(|env| SecretRef {
                env: Some(env),
                file: None,
            }),
            (None, Some((n, p))) => self.string(n, &p).and_then(|file| {
                if !file.starts_with('/') {
                    self.push(
                        n,
                        &p,
                        format!("`{file}` is not an absolute host path"),
                        Some(
                            "secret files are read on the host at run time; give the full path"
                                .into(),
                        ),
                    );
                    return None;
                }
                Some(SecretRef {
                    env: None,
                    file: Some(file.into()),
                })
            }),
            _ => {
                self.push(
                    node,
                    path,
                    format!("secret `{key}` must name exactly one of `env` or `file`"),
                    Some(format!(
                        "e.g. `builtins.secret {{ env = \"{}\"; }}`",
                        key.to_ascii_uppercase()
                    )),
                );
                None
            }
        };
        f.finish(self, fields::SECRET);
        secret
    }

    fn egress(
        &mut self,
        node: &Node,
        path: &str,
        secrets: Option<&BTreeMap<String, SecretRef>>,
    ) -> Option<Egress> {
        let mut f = self.attrs(node, path)?;
        let routes = match f.get("routes") {
            Some((n, p)) => {
                let items = self.list(n, &p, "routes")?;
                let routes: Vec<Option<Route>> = items
                    .into_iter()
                    .map(|(n, p)| self.route(n, &p, secrets))
                    .collect();
                routes.into_iter().collect()
            }
            None => Some(Vec::new()),
        };
        use crate::sidecar::egress::policy::Unmatched;
        let default = match f.get("default") {
            Some((n, p)) => self.string(n, &p).and_then(|d| match d.as_str() {
                "deny" => Some(Unmatched::Deny),
                "ask" => Some(Unmatched::Ask),
                other => {
                    self.push(
                        n,
                        &p,
                        format!("`{other}` is not a default for undeclared hosts"),
                        Some(
                            "write `\"deny\"` (the default) or `\"ask\"` (a person decides)".into(),
                        ),
                    );
                    None
                }
            }),
            None => Some(Unmatched::Deny),
        };
        f.finish(self, fields::EGRESS);
        Some(Egress {
            routes: routes?,
            default: default?,
        })
    }

    fn route(
        &mut self,
        node: &Node,
        path: &str,
        secrets: Option<&BTreeMap<String, SecretRef>>,
    ) -> Option<Route> {
        let mut f = self.attrs(node, path)?;
        let host = self
            .required(&mut f, "host", "\"api.example.com\"")
            .and_then(|(n, p)| {
                let host = self.string(n, &p)?;
                // Checked by parsing into the pattern the egress sidecar
                // matches with; then only its one spelling is accepted, so
                // one route has one policy and one hash.
                let pattern = match HostPattern::parse(&host) {
                    Ok(pattern) => pattern,
                    Err(e) => {
                        self.push(n, &p, e.message, Some(e.help));
                        return None;
                    }
                };
                let canonical = pattern.to_string();
                if canonical != host {
                    let message = if host.chars().any(|c| c.is_ascii_uppercase()) {
                        format!("`{host}` has capital letters; write host patterns in lowercase, the one spelling the policy and its hash use")
                    } else {
                        format!("`{host}` is not written the one way the policy and its hash use")
                    };
                    self.push(n, &p, message, Some(format!("write `{canonical}`")));
                    return None;
                }
                Some(host)
            });
        let ports = match f.get("ports") {
            Some((n, p)) => self.list(n, &p, "ports").and_then(|items| {
                if items.is_empty() {
                    self.push(
                        n,
                        &p,
                        "a route with no ports can never match".into(),
                        Some("leave `ports` out for `[ 443 ]`, or list the ports".into()),
                    );
                    return None;
                }
                let ports: Vec<Option<u16>> = items
                    .into_iter()
                    .map(|(n, p)| self.int(n, &p, "port", 1..=65535).map(|i| i as u16))
                    .collect();
                ports.into_iter().collect()
            }),
            None => Some(DEFAULT_PORTS.to_vec()),
        };
        let inspect = match f.get("inspect") {
            Some((n, p)) => self.bool(n, &p),
            None => Some(false),
        };
        let methods = match f.get("methods") {
            Some((n, p)) => self.list(n, &p, "methods").and_then(|items| {
                let methods: Vec<Option<String>> = items
                    .into_iter()
                    .map(|(n, p)| {
                        let m = self.string(n, &p)?;
                        if METHODS.contains(&m.as_str()) {
                            return Some(m);
                        }
                        let upper = m.to_ascii_uppercase();
                        let help = if METHODS.contains(&upper.as_str()) {
                            format!("methods are uppercase: `\"{upper}\"`")
                        } else {
                            match crate::suggest::closest(&upper, METHODS.iter().copied()).first() {
                                Some(s) => format!("did you mean `\"{s}\"`?"),
                                None => format!("one of {}", METHODS.join(", ")),
                            }
                        };
                        self.push(n, &p, format!("`{m}` is not an HTTP method"), Some(help));
                        None
                    })
                    .collect();
                methods.into_iter().collect::<Option<Vec<_>>>()
            }),
            None => None,
        };
        let paths = match f.get("paths") {
            Some((n, p)) => self.strings(n, &p).and_then(|paths| {
                if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
                    self.push(
                        n,
                        &p,
                        format!(
                            "path pattern `{bad}` does not start with `/`, so it can never match"
                        ),
                        Some(format!("write `\"/{}\"`", bad.trim_start_matches('/'))),
                    );
                    return None;
                }
                Some(paths)
            }),
            None => None,
        };
        let headers = match f.get("headers") {
            Some((n, p)) => self.list(n, &p, "headers").and_then(|items| {
                let headers: Vec<Option<HeaderInjection>> = items
                    .into_iter()
                    .map(|(n, p)| self.header(n, &p, secrets))
                    .collect();
                headers.into_iter().collect::<Option<Vec<_>>>()
            }),
            None => Some(Vec::new()),
        };
        let addresses = match f.get("addresses") {
            Some((n, p)) => self.strings(n, &p).and_then(|addrs| {
                let mut out = Vec::with_capacity(addrs.len());
                for a in &addrs {
                    match a.parse::<std::net::IpAddr>() {
                        Ok(ip) => out.push(ip),
                        Err(_) => {
                            let help = match a.split_once('/') {
                                Some((ip, _)) => format!(
                                    "list addresses one by one (the proxy exempts exact addresses), e.g. `\"{ip}\"`"
                                ),
                                None => "write an IP address, e.g. `\"10.1.2.3\"` or `\"::1\"`".to_string(),
                            };
                            self.push(n, &p, format!("`{a}` is not an IP address"), Some(help));
                            return None;
                        }
                    }
                }
                Some(out)
            }),
            None => Some(Vec::new()),
        };
        // The proxy's own rule, in one place: what an opaque tunnel cannot
        // enforce needs `inspect`. A field present but invalid still counts.
        use crate::sidecar::egress::policy as egress_policy;
        let given = |f: &mut Fields, key| f.get(key).is_some().then(Vec::new);
        let rule = egress_policy::Route {
            host: host.clone().unwrap_or_default(),
            ports: ports.clone().unwrap_or_default(),
            inspect: inspect.unwrap_or(true),
            methods: methods.clone().or_else(|| given(&mut f, "methods")),
            paths: paths.clone().or_else(|| given(&mut f, "paths")),
            headers: match &headers {
                Some(hs) => hs.clone(),
                None => given(&mut f, "headers")
                    .map(|_| {
                        vec![egress_policy::HeaderInjection {
                            name: String::new(),
                            secret: String::new(),
                        }]
                    })
                    .unwrap_or_default(),
            },
            addresses: Vec::new(),
            approve: false,
        };
        if let Err(err @ egress_policy::RouteError::NeedsInspect { field }) = rule.check() {
            if let Some((n, p)) = f.get(field.key()) {
                self.push(
                    n,
                    &p,
                    err.to_string(),
                    Some(
                        "add `inspect = true;` so the proxy terminates TLS and sees requests"
                            .into(),
                    ),
                );
            }
        }
        let approve = match f.get("approve") {
            Some((n, p)) => self.bool(n, &p),
            None => Some(false),
        };
        f.finish(self, fields::ROUTE);
        Some(Route {
            host: host?,
            ports: ports?,
            inspect: inspect?,
            methods,
            paths,
            headers: headers?,
            addresses: addresses?,
            approve: approve?,
        })
    }

    fn header(
        &mut self,
        node: &Node,
        path: &str,
        secrets: Option<&BTreeMap<String, SecretRef>>,
    ) -> Option<HeaderInjection> {
        let mut f = self.attrs(node, path)?;
        let name = self
            .required(&mut f, "name", "\"authorization\"")
            .and_then(|(n, p)| {
                let name = self.string(n, &p)?;
                let token = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
                if !token {
                    self.push(
                        n,
                        &p,
                        format!("`{name}` is not an HTTP header name"),
                        Some(
                            "header names are letters, digits and `-`, e.g. `\"x-api-key\"`".into(),
                        ),
                    );
                    return None;
                }
                Some(name)
            });
        let secret = self.required(&mut f, "secret", "\"name-in-secrets\"").and_then(|(n, p)| {
            if is_secret_ref(n) {
                self.push(n, &p, "`secret` names an entry of the bottle's `secrets`, not the reference itself".into(), Some("declare it in `secrets.NAME = builtins.secret { … };` and write `secret = \"NAME\";` here".into()));
                return None;
            }
            let secret = self.string(n, &p)?;
            if let Some(secrets) = secrets {
                if !secrets.contains_key(&secret) {
                    let help = match crate::suggest::did_you_mean(&secret, secrets.keys().map(String::as_str)) {
                        Some(hint) => hint,
                        None if secrets.is_empty() => format!("declare it: `secrets.{secret} = builtins.secret {{ env = \"…\"; }};`"),
                        None => format!("declared secrets: {}", list_keys(secrets.keys())),
                    };
                    self.push(n, &p, format!("no secret named `{secret}`"), Some(help));
                    return None;
                }
            }
            Some(secret)
        });
        f.finish(self, fields::HEADER);
        Some(HeaderInjection {
            name: name?,
            secret: secret?,
        })
    }

    /// The remotes, and the agent's identity from `git.user`.
    #[allow(clippy::type_complexity)]
    fn git(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<(BTreeMap<String, Remote>, Option<GitUser>)> {
        let NodeValue::Attrs(map) = &node.value else {
            self.expected(
                node,
                path,
                "an attribute set of remotes (`git.origin = { url = …; };`)",
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        let mut user = None;
        for (key, value) in map {
            let at = join(path, key);
            if key == "user" {
                user = self.git_user(value, &at);
                ok &= user.is_some();
                continue;
            }
            let valid = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !key.starts_with('.');
            if !valid {
                self.push(
                    value,
                    &at,
                    format!("`{key}` cannot be a remote name (it becomes part of a URL)"),
                    Some("use letters, digits, `-`, `_` and `.`".into()),
                );
                ok = false;
                continue;
            }
            match self.remote(value, &at) {
                Some(r) => {
                    out.insert(key.clone(), r);
                }
                None => ok = false,
            }
        }
        ok.then_some((out, user))
    }

    /// A list of full ref names, each with at most one `*`.
    fn ref_patterns(&mut self, n: &Node, p: &str, what: &str) -> Option<Vec<String>> {
        let pats = self.strings(n, p)?;
        for pat in &pats {
            let ok = pat.starts_with("refs/")
                && pat.matches('*').count() <= 1
                && !pat.contains("..")
                && !pat.ends_with('/');
            if !ok {
                let help = if pat.starts_with("refs/") {
                    "at most one `*`, no `..`, no trailing `/`".to_string()
                } else {
                    format!("{what} patterns are full ref names: `\"refs/heads/{pat}\"`")
                };
                self.push(n, p, format!("`{pat}` is not a ref pattern"), Some(help));
                return None;
            }
        }
        Some(pats)
    }

    fn git_user(&mut self, node: &Node, path: &str) -> Option<GitUser> {
        let mut f = self.attrs(node, path)?;
        let name = self
            .required(&mut f, "name", "\"Agent\"")
            .and_then(|(n, p)| self.string(n, &p));
        let email = self
            .required(&mut f, "email", "\"agent@example.com\"")
            .and_then(|(n, p)| self.string(n, &p));
        f.finish(self, &["name", "email"]);
        Some(GitUser {
            name: name?,
            email: email?,
        })
    }

    fn remote(&mut self, node: &Node, path: &str) -> Option<Remote> {
        let mut f = self.attrs(node, path)?;
        let url = self
            .required(&mut f, "url", "\"https://github.com/owner/repo.git\"")
            .and_then(|(n, p)| {
                // A repository on the host: a path literal (`./.`) or an absolute path.
                if let NodeValue::Path(path) = &n.value {
                    return Some(path.display().to_string());
                }
                let url = self.string(n, &p)?;
                let known = ["https://", "http://", "/"]
                    .iter()
                    .any(|s| url.starts_with(s));
                if !known {
                    self.push(
                        n,
                        &p,
                        format!("`{url}` is not a git remote the gate can reach"),
                        Some("write an https URL (`\"https://github.com/owner/repo.git\"`) or a repository on the host (`./.` or an absolute path)".into()),
                    );
                    return None;
                }
                Some(url)
            });
        // `true` (the default) is every branch and tag, `false` none.
        let fetch = match f.get("fetch") {
            Some((n, p)) => match &n.value {
                NodeValue::Bool(true) => Some(all_refs()),
                NodeValue::Bool(false) => Some(Vec::new()),
                _ => self.ref_patterns(n, &p, "fetch"),
            },
            None => Some(all_refs()),
        };
        let push = match f.get("push") {
            Some((n, p)) => self.ref_patterns(n, &p, "push"),
            None => Some(Vec::new()),
        };
        let force = match f.get("force") {
            Some((n, p)) => self.bool(n, &p),
            None => Some(false),
        };
        let delete = match f.get("delete") {
            Some((n, p)) => self.bool(n, &p),
            None => Some(false),
        };
        let push_ask = match f.get("push-ask") {
            Some((n, p)) => self.bool(n, &p),
            None => Some(false),
        };
        let checkout = match f.get("checkout") {
            Some((n, p)) => self.string(n, &p).map(Some),
            None => Some(None),
        };
        let username = match f.get("username") {
            Some((n, p)) => self.string(n, &p).map(Some),
            None => Some(None),
        };
        let credentials = match f.get("credentials") {
            Some((n, p)) => self.secret(n, &p, "credentials").map(Some),
            None => Some(None),
        };
        f.finish(self, fields::REMOTE);
        Some(Remote {
            url: url?,
            fetch: fetch?,
            push: push?,
            force: force?,
            delete: delete?,
            push_ask: push_ask?,
            checkout: checkout?,
            credentials: credentials?,
            username: username?,
        })
    }

    fn sidecars(&mut self, node: &Node, path: &str) -> Option<Sidecars> {
        let mut f = self.attrs(node, path)?;
        let supervise = match f.get("supervise") {
            Some((n, p)) => self.bool(n, &p),
            None => Some(false),
        };
        if let Some((n, p)) = f.get("egress") {
            if !matches!(n.value, NodeValue::Bool(true)) {
                self.push(n, &p, "the egress sidecar cannot be turned off".into(), Some("it is the bottle's only way out; to allow nothing, leave `egress.routes` empty".into()));
            }
        }
        if let Some((n, p)) = f.get("git-gate") {
            self.push(
                n,
                &p,
                "the git gate runs exactly when `git` names remotes".into(),
                Some("add or remove remotes in `git` instead".into()),
            );
        }
        f.finish(self, fields::SIDECARS);
        Some(Sidecars {
            supervise: supervise?,
        })
    }

    fn files(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, GuestFile>> {
        let NodeValue::Attrs(map) = &node.value else {
            self.expected(
                node,
                path,
                "an attribute set of guest path → text or derivation",
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in map {
            let at = format!("{path}.\"{key}\"");
            let key_node = Node::new(NodeValue::Str(key.clone(), Vec::new()), value.span);
            let Some(guest) = self.guest_path(&key_node, &at) else {
                ok = false;
                continue;
            };
            let file = match &value.value {
                NodeValue::Derivation(d) => {
                    self.refs.push(d.clone());
                    Some(GuestFile::Store(d.guest_path()))
                }
                // A host file's content, like Nix copying a path: the text is
                // what gets hashed, never where the file happened to be.
                NodeValue::Path(p) => match std::fs::read_to_string(p) {
                    Ok(text) => Some(GuestFile::Text(text)),
                    Err(e) => {
                        self.push(
                            value,
                            &at,
                            format!("cannot read {}: {e}", p.display()),
                            Some("a path in `files` must name a readable UTF-8 text file".into()),
                        );
                        None
                    }
                },
                // A string that is a store path, or a path inside one
                // (`"${pkg}/bin/tool"`), places that output, not its name as text.
                _ => self.string_or_store_path(value, &at, true).map(|s| {
                    match crate::lower::image::owner_of(&self.refs, &s) {
                        Some(_) if !s.contains(char::is_whitespace) => GuestFile::Store(s),
                        _ => GuestFile::Text(s),
                    }
                }),
            };
            match file {
                Some(file) => {
                    out.insert(guest, file);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> serde_json::Value {
        json!({
            "name": "demo",
            "agent": { "command": ["sh"] },
            "image": { "busybox": true },
            "egress": { "routes": [ { "host": "example.com" } ] }
        })
    }

    fn errors(v: serde_json::Value) -> Vec<CheckError> {
        check(&Node::from_json(&v)).unwrap_err()
    }

    #[test]
    fn a_minimal_bottle_gets_defaults() {
        let b = check(&Node::from_json(&minimal())).unwrap();
        assert_eq!(b.cpus, DEFAULT_CPUS);
        assert_eq!(b.agent.user, "agent");
        assert_eq!(b.egress.routes[0].ports, vec![443]);
        assert_eq!(b.image, Image::Busybox);
    }

    #[test]
    fn typed_json_and_checked_value_agree() {
        let checked = check(&Node::from_json(&minimal())).unwrap();
        // The serde form spells the image as the enum does.
        let mut v = minimal();
        v["image"] = json!("busybox");
        // The serde form is the egress policy's, where a route lists its ports.
        v["egress"]["routes"][0]["ports"] = json!(DEFAULT_PORTS);
        let parsed: Bottle = serde_json::from_value(v).unwrap();
        assert_eq!(checked, parsed);
    }

    #[test]
    fn unknown_fields_suggest_the_known_one() {
        let mut v = minimal();
        v["memroy"] = json!(1024);
        let e = errors(v);
        assert_eq!(e[0].message, "unknown field `memroy`");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `memory`?"));
    }

    #[test]
    fn inline_secrets_are_refused_without_echoing_them() {
        let mut v = minimal();
        v["secrets"] = json!({ "anthropic": "sk-ant-very-secret" });
        let e = errors(v);
        assert!(e[0].message.contains("inline"));
        assert!(!format!("{e:?}").contains("sk-ant-very-secret"));
    }

    #[test]
    fn pasted_credentials_are_refused_without_echoing_them() {
        let token = format!("ghp_{}", "a1B2".repeat(9));
        let mut v = minimal();
        v["env"] = json!({ "GITHUB_TOKEN": token });
        let e = errors(v);
        assert!(e[0].message.contains("a GitHub token"), "{e:?}");
        assert!(e[0].sensitive);
        assert!(!format!("{e:?}").contains(&token));
        let mut v = minimal();
        v["env"] = json!({ "NOTE": "ask sk-ant-api03-abcdefghijklmnopqrstuvwxyz for help" });
        assert!(errors(v)[0].message.contains("Anthropic"));
        // Ordinary strings, placeholders included, pass.
        let mut v = minimal();
        v["env"] = json!({
            "ANTHROPIC_API_KEY": "bottle-injects-this-on-egress",
            "PATH": "/usr/bin:/bin",
            "TASK": "task-generate-documentation-for-everything-in-the-repo",
        });
        assert!(check(&Node::from_json(&v)).is_ok());
    }

    #[test]
    fn ports_out_of_range_and_dead_hosts_are_reported() {
        let mut v = minimal();
        v["egress"]["routes"] = json!([{ "host": "https://x.com/a", "ports": [0, 70000] }]);
        let e = errors(v);
        assert_eq!(e.len(), 3, "{e:#?}");
        assert_eq!(e[1].path, "egress.routes[0].ports[0]");
    }

    #[test]
    fn a_host_is_read_by_the_sidecars_parser_and_has_one_spelling() {
        for (host, help) in [
            ("API.example.com", "write `api.example.com`"),
            ("example.com.", "write `example.com`"),
            ("[::1]", "write `::1`"),
        ] {
            let mut v = minimal();
            v["egress"]["routes"] = json!([{ "host": host }]);
            let e = errors(v);
            assert_eq!(e[0].path, "egress.routes[0].host");
            assert_eq!(e[0].help.as_deref(), Some(help), "{host}");
        }
        let mut v = minimal();
        v["egress"]["routes"] = json!([{ "host": "*.example.com", "addresses": ["10.0.0.1"] }]);
        let b = check(&Node::from_json(&v)).unwrap();
        assert_eq!(
            HostPattern::parse(&b.egress.routes[0].host),
            Ok(HostPattern::Suffix(".example.com".into()))
        );
        assert_eq!(
            b.egress.routes[0].addresses,
            ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn what_bottle_run_cannot_realize_is_refused_where_it_is_asked_for() {
        let mut v = minimal();
        v["image"] = json!("docker.io/library/alpine:3");
        v["memory"] = json!(MIN_MEMORY - 1);
        v["cpus"] = json!(0);
        let e = errors(v);
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["image", "cpus", "memory"], "{e:#?}");
        assert!(e.iter().all(|e| e.help.is_some()));
        let mut v = minimal();
        v["memory"] = json!(MIN_MEMORY);
        v["cpus"] = json!(MIN_CPUS);
        assert!(check(&Node::from_json(&v)).is_ok());
    }

    #[test]
    fn header_secrets_must_exist_and_need_inspection() {
        let mut v = minimal();
        v["secrets"] = json!({ "anthropic": { "env": "ANTHROPIC_API_KEY" } });
        v["egress"]["routes"] = json!([{ "host": "api.anthropic.com", "headers": [ { "name": "x-api-key", "secret": "antropic" } ] }]);
        let e = errors(v);
        assert!(e.iter().any(|e| e.message.contains("inspected route")));
        assert!(e
            .iter()
            .any(|e| e.help.as_deref() == Some("did you mean `anthropic`?")));
    }

    #[test]
    fn a_set_of_bottles_is_checked_in_key_order() {
        let mut a = minimal();
        a["name"] = json!("a");
        let mut b = minimal();
        b["name"] = json!("b");
        let all = check_all(&Node::from_json(&json!({ "y": b, "x": a })), None).unwrap();
        assert_eq!(
            all.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let one = check_all(&Node::from_json(&json!({ "x": minimal() })), Some("x")).unwrap();
        assert_eq!(one.len(), 1);
        let missing =
            check_all(&Node::from_json(&json!({ "x": minimal() })), Some("y")).unwrap_err();
        assert!(missing[0].message.contains("no attribute `y`"));
    }
}
