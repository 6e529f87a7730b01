//! Fixed-output fetchers: `builtins.fetchurl { url; hash; name ? …; }` and
//! `builtins.fetchTarball { url; hash; name ? …; }`. Evaluation does not
//! touch the network: each makes a `fetch` derivation whose output path is a
//! string (with its context, as Nix's fetchers return), and the download
//! happens when the store builds it, checked against `hash` (SRI,
//! `sha256-…` or `sha512-…`).

use super::Builtin;
use crate::eval::{Context, EvalError, EvalResult, Evaluator, NixString, Thunk, Value};
use crate::image::fetch::{fetch, name_from_url, Sri};
use crate::store::derivation::check_name;
use crate::syntax::Span;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "fetchurl",
        arity: 1,
        run: fetchurl,
    },
    Builtin {
        name: "fetchTarball",
        arity: 1,
        run: fetch_tarball,
    },
    Builtin {
        name: "lockNpm",
        arity: 1,
        run: lock_npm,
    },
];

/// `builtins.lockNpm { name; version; }` → `{ version; integrity; }`: the
/// exact version (of a version or a dist-tag such as `latest`) and its
/// tarball's integrity, as `bottle.lock` beside the recipe pins them (asked
/// of the registry when the lock lacks them; see `image::lock`). What
/// `lib.fetchers.npm` uses when the recipe gives no `integrity`.
fn lock_npm(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let usage = "write `builtins.lockNpm { name = \"@scope/pkg\"; version = \"1.2.3\"; }`";
    let spec = ev.force_attrs(&args[0], span)?;
    let mut get = |key: &str| -> EvalResult<String> {
        let Some(attr) = spec.get(key) else {
            return Err(
                EvalError::fatal(format!("`builtins.lockNpm` needs `{key}`"), span)
                    .with_help(usage),
            );
        };
        let thunk = attr.value.clone();
        Ok(ev.force_string(&thunk, span)?.text.to_string())
    };
    let name = get("name")?;
    let version = get("version")?;
    let pin = crate::image::lock::npm(&name, &version).map_err(|e| {
        EvalError::fatal(format!("cannot pin the npm package {name}@{version}: {e}"), span)
            .with_help("check the name and version (`npm view NAME@VERSION version dist.integrity`) and that the registry is reachable; once `bottle.lock` pins it, evaluation does not ask")
    })?;
    Ok(Value::Attrs(crate::eval::Attrs::from_unsorted(vec![
        crate::eval::Attr {
            name: "version".into(),
            value: Thunk::Ready(Value::string(pin.version.as_str())),
            span: None,
        },
        crate::eval::Attr {
            name: "integrity".into(),
            value: Thunk::Ready(Value::string(pin.integrity.as_str())),
            span: None,
        },
    ])))
}

fn fetchurl(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    fetcher(ev, args, span, "fetchurl", false)
}

fn fetch_tarball(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    fetcher(ev, args, span, "fetchTarball", true)
}

fn fetcher(
    ev: &mut Evaluator,
    args: &[Thunk],
    span: Span,
    builtin: &str,
    unpack: bool,
) -> EvalResult<Value> {
    let usage = format!(
        "write `builtins.{builtin} {{ url = \"https://…\"; hash = \"sha256-…\"; }}`: \
         a fetch names the hash of what it gets, so the build is reproducible"
    );
    let spec = ev.force_attrs(&args[0], span)?;
    for name in spec.names() {
        if !["url", "hash", "name"].contains(&name) {
            let help = crate::suggest::did_you_mean(name, ["url", "hash", "name"])
                .unwrap_or_else(|| usage.clone());
            return Err(EvalError::fatal(
                format!("`builtins.{builtin}` has no argument `{name}`"),
                span,
            )
            .with_help(help));
        }
    }
    let field = |ev: &mut Evaluator, key: &str| -> EvalResult<Option<String>> {
        match spec.get(key) {
            Some(attr) => {
                let thunk = attr.value.clone();
                let s = ev.force_string(&thunk, span)?;
                if !s.context.is_empty() {
                    return Err(EvalError::fatal(
                        format!("the `{key}` of `builtins.{builtin}` cannot mention a derivation"),
                        span,
                    ));
                }
                Ok(Some(s.text.to_string()))
            }
            None => Ok(None),
        }
    };
    let url = field(ev, "url")?;
    let hash = field(ev, "hash")?;
    let name = field(ev, "name")?;
    let (Some(url), Some(hash)) = (url, hash) else {
        return Err(
            EvalError::fatal(format!("`builtins.{builtin}` needs `url` and `hash`"), span)
                .with_help(usage),
        );
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(
            EvalError::fatal(format!("`{url}` is not an http(s) URL"), span)
                .with_help("bottle fetches over http and https only"),
        );
    }
    let sri = Sri::parse(&hash).map_err(|e| {
        EvalError::fatal(e, span).with_help(
            "give the SRI hash of the file, e.g. from `nix hash file` or npm's `dist.integrity`",
        )
    })?;
    let name = name.unwrap_or_else(|| name_from_url(&url));
    if let Err(e) = check_name(&name) {
        return Err(EvalError::fatal(format!("`builtins.{builtin}`: {e}"), span)
            .with_help("give a `name` like `tool-1.0.tar.gz`"));
    }
    let drv = fetch(&name, &url, &sri, unpack)
        .map_err(|e| EvalError::fatal(format!("`builtins.{builtin}`: {e}"), span))?;
    ev.remember_derivation(&drv);
    let path = drv.guest_path();
    Ok(Value::String(NixString::with_context(
        path.as_str(),
        Context::single(path.as_str().into()),
    )))
}
