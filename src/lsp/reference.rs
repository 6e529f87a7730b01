//! One-line documentation of every builtin and every recipe field, in one
//! table each: what `bottle lsp` shows on hover and offers with completions.
//! The long form is in docs/language.md (builtins) and docs/recipes.md
//! (fields); tests hold these tables to `builtins` and
//! [`crate::schema::field_paths`], so a new builtin or field without a line
//! here fails them.

/// `(name, usage, what it does)` for each builtin.
pub const BUILTINS: &[(&str, &str, &str)] = &[
    ("abort", "abort msg", "Stop evaluation with an error `tryEval` cannot catch."),
    ("add", "add a b", "`a + b` for numbers."),
    ("addErrorContext", "addErrorContext msg v", "Return `v`; `msg` is added to an error that evaluating it raises."),
    ("all", "all pred list", "Whether `pred` holds for every element of `list`."),
    ("any", "any pred list", "Whether `pred` holds for some element of `list`."),
    ("attrNames", "attrNames set", "The names of `set`'s attributes, sorted."),
    ("attrValues", "attrValues set", "The values of `set`'s attributes, in the order of their sorted names."),
    ("baseNameOf", "baseNameOf s", "The last component of a path or string (`baseNameOf \"/a/b.c\"` is `\"b.c\"`)."),
    ("bitAnd", "bitAnd a b", "Bitwise AND of two integers."),
    ("bitOr", "bitOr a b", "Bitwise OR of two integers."),
    ("bitXor", "bitXor a b", "Bitwise XOR of two integers."),
    ("builtins", "builtins", "The set of every builtin (`builtins.map`, `builtins ? name`)."),
    ("catAttrs", "catAttrs name sets", "The values of attribute `name` in each set of the list `sets` that has it."),
    ("ceil", "ceil x", "The smallest integer not less than the number `x`."),
    ("compareVersions", "compareVersions a b", "-1, 0 or 1 as version string `a` is older than, the same as or newer than `b`."),
    ("concatLists", "concatLists lists", "One list of the elements of every list in `lists`."),
    ("concatMap", "concatMap f list", "`concatLists (map f list)`."),
    ("concatStringsSep", "concatStringsSep sep strings", "The strings joined with `sep` between them."),
    ("deepSeq", "deepSeq a b", "Force `a` completely (every element and attribute), then return `b`."),
    ("dirOf", "dirOf s", "The directory part of a path or string (`dirOf ./a/b` is `./a`)."),
    ("div", "div a b", "`a / b`; integer division truncates toward zero."),
    ("elem", "elem x list", "Whether `x` is equal to an element of `list`."),
    ("elemAt", "elemAt list n", "The element of `list` at index `n` (from 0)."),
    ("false", "false", "The Boolean false."),
    ("fetchTarball", "fetchTarball { url; sha256; }", "Not available: evaluation is pure; use `lib.fetchers` to fetch by hash."),
    ("fetchurl", "fetchurl { url; sha256; }", "Not available: evaluation is pure; use `lib.fetchers` to fetch by hash."),
    ("filter", "filter pred list", "The elements of `list` for which `pred` is true, in order."),
    ("floor", "floor x", "The largest integer not greater than the number `x`."),
    ("foldl'", "foldl' op init list", "Fold `list` from the left: `op (op (op init x0) x1) …`, strict in the accumulator."),
    ("fromJSON", "fromJSON s", "The value a JSON text stands for."),
    ("fromTOML", "fromTOML s", "The value a TOML document stands for (dates and times are an error)."),
    ("fromYAML", "fromYAML s", "The value a YAML document stands for (bottle's own builtin)."),
    ("functionArgs", "functionArgs f", "A function's formal arguments: name → whether it has a default."),
    ("genList", "genList f n", "The list `[ (f 0) (f 1) … (f (n - 1)) ]`."),
    ("genericClosure", "genericClosure { startSet; operator; }", "Every item reachable from `startSet` by `operator`, each `key` once."),
    ("getAttr", "getAttr name set", "The attribute `name` of `set` (`set.${name}`)."),
    ("groupBy", "groupBy f list", "A set of lists: each element under the name `f` gives it."),
    ("hasAttr", "hasAttr name set", "Whether `set` has attribute `name` (`set ? ${name}`)."),
    ("hasContext", "hasContext s", "Whether the string `s` mentions derivations (its context)."),
    ("hashString", "hashString type s", "The hex hash of `s`; `type` is `md5`, `sha1`, `sha256` or `sha512`."),
    ("head", "head list", "The first element of `list`."),
    ("import", "import path", "Evaluate the file at `path` (relative to this file; `<bottle/…>` is the stdlib)."),
    ("intersectAttrs", "intersectAttrs a b", "The attributes of `b` whose names are also in `a`."),
    ("isAttrs", "isAttrs v", "Whether `v` is an attribute set."),
    ("isBool", "isBool v", "Whether `v` is a Boolean."),
    ("isFloat", "isFloat v", "Whether `v` is a float."),
    ("isFunction", "isFunction v", "Whether `v` is a function."),
    ("isInt", "isInt v", "Whether `v` is an integer."),
    ("isList", "isList v", "Whether `v` is a list."),
    ("isNull", "isNull v", "Whether `v` is null."),
    ("isPath", "isPath v", "Whether `v` is a path."),
    ("isString", "isString v", "Whether `v` is a string."),
    ("langVersion", "langVersion", "The Nix language version bottle's dialect follows (6)."),
    ("length", "length list", "The number of elements of `list`."),
    ("lessThan", "lessThan a b", "`a < b`."),
    ("lockNpm", "lockNpm { name; version; }", "The `{ version; integrity; }` that `bottle.lock` pins for an npm package version or dist-tag (looked up and written when missing)."),
    ("listToAttrs", "listToAttrs list", "A set from a list of `{ name; value; }` (the first of a name wins)."),
    ("map", "map f list", "The list of `f` applied to each element of `list`."),
    ("mapAttrs", "mapAttrs f set", "`set` with each value `v` of name `n` replaced by `f n v`."),
    ("match", "match regex s", "The capture groups if the POSIX extended `regex` matches all of `s`, else null."),
    ("mul", "mul a b", "`a * b`."),
    ("null", "null", "The null value."),
    ("parseDrvName", "parseDrvName s", "`{ name; version; }`: a package name split at the first `-` followed by a non-letter."),
    ("partition", "partition pred list", "`{ right; wrong; }`: the elements for which `pred` holds, and the rest."),
    ("pathExists", "pathExists path", "Whether a file or directory exists at `path`."),
    ("readDir", "readDir path", "A directory's entries: name → `\"regular\"`, `\"directory\"`, `\"symlink\"` or `\"unknown\"`."),
    ("readFile", "readFile path", "The contents of the file at `path`, as a string."),
    ("removeAttrs", "removeAttrs set names", "`set` without the attributes named in the list `names`."),
    ("replaceStrings", "replaceStrings from to s", "`s` with each string of `from` replaced by the one at the same place in `to`."),
    ("secret", "secret { env = \"NAME\"; } or secret { file = \"/path\"; }", "A reference to a secret read on the host at run time; its value never enters evaluation (bottle's own builtin)."),
    ("seq", "seq a b", "Force `a` to its outermost constructor, then return `b`."),
    ("sort", "sort less list", "`list` sorted by the comparison `less a b` (stable)."),
    ("split", "split regex s", "`s` split at matches of `regex`: strings, with the lists of captures between them."),
    ("splitVersion", "splitVersion s", "The components of a version string (`\"1.2a\"` → `[ \"1\" \"2\" \"a\" ]`)."),
    ("stringLength", "stringLength s", "The length of `s` in bytes."),
    ("sub", "sub a b", "`a - b`."),
    ("substring", "substring start len s", "`len` bytes of `s` from byte `start` (fewer at the end)."),
    ("tail", "tail list", "`list` without its first element."),
    ("throw", "throw msg", "Stop evaluation with error `msg`; `tryEval` catches it."),
    ("toJSON", "toJSON v", "`v` as a JSON text."),
    ("toString", "toString v", "`v` as a string (`true` → `\"1\"`, a list joined with spaces, a set by `__toString` or `outPath`)."),
    ("toTOML", "toTOML set", "`set` as a TOML document (bottle's own builtin)."),
    ("toYAML", "toYAML v", "`v` as a YAML document (bottle's own builtin)."),
    ("trace", "trace msg v", "Print `msg` on standard error, return `v`."),
    ("true", "true", "The Boolean true."),
    ("tryEval", "tryEval v", "`{ success = true; value = v; }`, or `{ success = false; value = false; }` if `v` throws or fails an assertion."),
    ("typeOf", "typeOf v", "The type of `v`: `\"int\"`, `\"string\"`, `\"set\"`, `\"lambda\"`, …"),
    ("unsafeDiscardStringContext", "unsafeDiscardStringContext s", "`s` without the derivations it mentions."),
    ("writeText", "writeText name text", "A file derivation holding `text`; interpolating it gives its store path and records the dependency (bottle's own builtin)."),
    ("zipAttrsWith", "zipAttrsWith f sets", "A set: each name in `sets` → `f name [ values of that name ]`."),
];

/// `(field path, what it is)` for each field of a bottle, in
/// [`crate::schema::field_paths`]'s spelling, and the sets that hold them.
pub const FIELDS: &[(&str, &str)] = &[
    ("name", "The bottle's name: a slug of lowercase letters, digits and `-`, at most 63 characters. Required."),
    ("agent", "The program the bottle runs: `{ command; user; workdir; env; }`. Required."),
    ("agent.command", "The program the bottle runs and its arguments, a list of strings. Required."),
    ("agent.user", "The guest user the agent runs as. Default `\"agent\"`."),
    ("agent.workdir", "The absolute guest directory the agent starts in. Default `\"/work\"`."),
    ("agent.env", "The agent's environment, over the bottle's `env`: a set of strings."),
    ("image", "The guest's filesystem: `{ busybox = true; }`, `{ oci = \"…@sha256:…\"; }`, `{ dir = ./rootfs; }`, `{ oci-layout = ./img; }`, `{ oci-archive = ./img.tar; }` or `{ debian = { … }; }`. Required."),
    ("image.busybox", "`true`: a minimal root filesystem assembled from the host's static busybox."),
    ("image.dir", "A directory on the host, taken by content, as the guest's root."),
    ("image.oci-layout", "An OCI image layout directory (`index.json`, `blobs/`)."),
    ("image.oci-archive", "An OCI image layout packed in a tar."),
    ("image.oci", "An OCI image reference: by digest, or by tag (pinned to a digest in `bottle.lock`), pulled when the bottle is built."),
    ("image.username", "With `oci`: the user name for the registry's basic or token authentication."),
    ("image.credentials", "With `oci`: the registry password or token, by secret reference (`builtins.secret { … }`); never stored."),
    ("image.mirror", "With `oci`: a registry host to pull through instead of the reference's own (no credentials are sent to it)."),
    ("image.tag", "With `oci-layout` or `oci-archive`: which image of several, by tag."),
    ("image.debian", "A Debian tree that mmdebstrap installs: `{ suite; packages; mirror; }`."),
    ("image.debian.suite", "The Debian suite, e.g. `\"bookworm\"`."),
    ("image.debian.packages", "The packages to install (with their dependencies), a list of strings."),
    ("image.debian.mirror", "The Debian mirror. Default `\"http://deb.debian.org/debian\"`."),
    ("cpus", "Virtual CPUs, 1–64. Default 2."),
    ("memory", "Guest memory in MiB, at least 128. Default 2048."),
    ("env", "The guest environment: a set of strings (ints and bools are written as text)."),
    ("secrets", "Secrets by name, as references: `secrets.NAME = builtins.secret { env = \"VAR\"; };`. Values never enter the recipe."),
    ("secrets.<name>.env", "The host environment variable the secret is read from when the bottle runs."),
    ("secrets.<name>.file", "The absolute host file the secret is read from when the bottle runs."),
    ("secrets.<name>.type", "`\"secret\"`: set by `builtins.secret`."),
    ("egress", "What the guest may reach: `{ routes; default; }`. Everything else is denied."),
    ("egress.default", "What happens to a request no route allows: `\"deny\"` (the default) or `\"ask\"` (a person decides)."),
    ("egress.routes", "The only destinations the guest may reach: a list of routes `{ host; ports; inspect; … }`."),
    ("egress.routes[].host", "`api.example.com` (exactly), `*.example.com` (any subdomain) or an IP literal. Required."),
    ("egress.routes[].ports", "The ports allowed, 1–65535. Default `[ 443 ]`."),
    ("egress.routes[].inspect", "Terminate TLS with the bottle's own CA so `methods`, `paths` and `headers` can be enforced. Default false."),
    ("egress.routes[].methods", "The HTTP methods allowed (uppercase); needs `inspect`. Default any."),
    ("egress.routes[].paths", "Path patterns allowed, starting with `/`; `*` matches any run of characters; needs `inspect`. Default any."),
    ("egress.routes[].headers", "Headers the proxy sets from secrets: a list of `{ name; secret; }`; needs `inspect`."),
    ("egress.routes[].headers[].name", "The header to set, e.g. `\"x-api-key\"`."),
    ("egress.routes[].headers[].secret", "The entry of `secrets` whose value the header gets."),
    ("egress.routes[].addresses", "The IP addresses the proxy connects to for this host, instead of asking a resolver."),
    ("egress.routes[].approve", "Hold each new connection until a person allows it (`bottle supervise`). Default false."),
    ("git", "Upstream git remotes by name, reached through the git gate; `git.user` is the agent's identity."),
    ("git.<remote>.url", "An `https://` or `http://` URL, or a repository on the host (`./.`). Required."),
    ("git.<remote>.fetch", "Ref patterns the agent may fetch; `true` (the default) is every branch and tag, `false` none."),
    ("git.<remote>.push", "Ref patterns the agent may push, e.g. `[ \"refs/heads/claude/*\" ]`. Default none."),
    ("git.<remote>.force", "Allow non-fast-forward pushes to allowed refs. Default false."),
    ("git.<remote>.delete", "Allow deleting allowed refs. Default false."),
    ("git.<remote>.push-ask", "A push to a ref outside `push` asks a person (`bottle supervise`) instead of being refused. Default false."),
    ("git.<remote>.checkout", "The branch checked out in the agent's workdir. Default the upstream's HEAD."),
    ("git.<remote>.credentials", "The upstream's password or token, a secret reference resolved on the host."),
    ("git.<remote>.username", "The user name sent with `credentials`. Default `\"x-access-token\"`."),
    ("git.user", "The name and email the agent commits with: `{ name; email; }`."),
    ("git.user.name", "The agent's git user name."),
    ("git.user.email", "The agent's git email."),
    ("sidecars", "Optional sidecars: `{ supervise = true; }`."),
    ("sidecars.supervise", "A person in the loop: requests to undeclared hosts are asked about. Default false."),
    ("sidecars.egress", "The egress proxy; always on."),
    ("sidecars.git-gate", "The git gate; on when `git` names a remote."),
    ("files", "Extra guest files: absolute guest path → string, derivation or host path."),
    ("type", "`\"bottle\"`: set by `lib.bottle`; ignored."),
];

/// A builtin's usage and description.
pub fn builtin(name: &str) -> Option<(&'static str, &'static str)> {
    BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, usage, doc)| (*usage, *doc))
}

/// The description of the field at `path` (`egress.routes[].host`); the
/// name of a remote or secret matches `<remote>` or `<name>`.
pub fn field(path: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(p, _)| path_matches(p, path))
        .map(|(_, doc)| *doc)
}

/// Whether a field pattern (`git.<remote>.url`) matches a concrete path
/// (`git.origin.url`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), path.split('.').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (a.starts_with('<') && a.ends_with('>')))
}

#[cfg(test)]
mod tests {
    use crate::eval::Value;

    #[test]
    fn every_builtin_has_a_line() {
        let (_, env) = crate::eval::builtins::globals();
        let Value::Attrs(builtins) = env.slots.borrow()[0].value().expect("builtins is ready")
        else {
            panic!("the first global is the builtins set");
        };
        let missing: Vec<&str> = builtins
            .names()
            .filter(|n| super::builtin(n).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "builtins with no line in reference::BUILTINS: {missing:?}"
        );
    }

    #[test]
    fn every_field_has_a_line() {
        let missing: Vec<String> = crate::schema::field_paths()
            .into_iter()
            .filter(|f| !super::FIELDS.iter().any(|(p, _)| p == f))
            .collect();
        assert!(
            missing.is_empty(),
            "fields with no line in reference::FIELDS: {missing:?}"
        );
    }

    #[test]
    fn a_remote_or_secret_name_matches_its_pattern() {
        assert!(super::field("git.origin.url").is_some());
        assert!(super::field("secrets.anthropic.env").is_some());
        assert!(super::field("egress.routes[].headers[].secret").is_some());
        assert!(super::field("agent.nope").is_none());
    }
}
