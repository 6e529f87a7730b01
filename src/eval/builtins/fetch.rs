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
];

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
