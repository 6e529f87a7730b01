//! Builtins on strings: slicing, replacing, regular expressions, versions,
//! hashes and path-like names.

use super::Builtin;
use crate::eval::{Context, EvalError, EvalResult, Evaluator, NixString, Thunk, Value};
use crate::syntax::Span;
use std::rc::Rc;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "toString",
        arity: 1,
        run: to_string,
    },
    Builtin {
        name: "stringLength",
        arity: 1,
        run: string_length,
    },
    Builtin {
        name: "substring",
        arity: 3,
        run: substring,
    },
    Builtin {
        name: "replaceStrings",
        arity: 3,
        run: replace_strings,
    },
    Builtin {
        name: "split",
        arity: 2,
        run: split,
    },
    Builtin {
        name: "match",
        arity: 2,
        run: regex_match,
    },
    Builtin {
        name: "concatStringsSep",
        arity: 2,
        run: concat_strings_sep,
    },
    Builtin {
        name: "splitVersion",
        arity: 1,
        run: split_version,
    },
    Builtin {
        name: "parseDrvName",
        arity: 1,
        run: parse_drv_name,
    },
    Builtin {
        name: "compareVersions",
        arity: 2,
        run: compare_versions,
    },
    Builtin {
        name: "hashString",
        arity: 2,
        run: hash_string,
    },
    Builtin {
        name: "baseNameOf",
        arity: 1,
        run: base_name_of,
    },
    Builtin {
        name: "dirOf",
        arity: 1,
        run: dir_of,
    },
    Builtin {
        name: "unsafeDiscardStringContext",
        arity: 1,
        run: discard_context,
    },
    Builtin {
        name: "hasContext",
        arity: 1,
        run: has_context,
    },
];

fn to_string(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    Ok(Value::String(ev.coerce_to_string(&v, span, true)?))
}

fn string_length(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    Ok(Value::Int(
        ev.force_coerced(&args[0], span)?.text.len() as i64
    ))
}

/// The nearest char boundary at or before `i`, so byte offsets from Nix
/// programs never split a UTF-8 sequence.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn substring(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let start = ev.force_int(&args[0], span)?;
    let len = ev.force_int(&args[1], span)?;
    let s = ev.force_coerced(&args[2], span)?;
    if start < 0 {
        return Err(EvalError::fatal(
            "negative start position in `substring`",
            span,
        ));
    }
    let text = &*s.text;
    let from = floor_boundary(text, start as usize);
    let to = if len < 0 {
        text.len()
    } else {
        floor_boundary(text, (start as usize).saturating_add(len as usize))
    };
    Ok(Value::String(NixString::with_context(
        &text[from..to.max(from)],
        s.context.clone(),
    )))
}

fn replace_strings(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let from = ev.force_list(&args[0], span)?;
    let to = ev.force_list(&args[1], span)?;
    let s = ev.force_coerced(&args[2], span)?;
    if from.len() != to.len() {
        return Err(EvalError::fatal(
            "`from` and `to` arguments to `replaceStrings` have different lengths",
            span,
        ));
    }
    let mut pats = Vec::with_capacity(from.len());
    for t in from.iter() {
        pats.push(ev.force_string(t, span)?);
    }
    let mut reps: Vec<Option<NixString>> = vec![None; to.len()];
    let text = &*s.text;
    let mut out = String::with_capacity(text.len());
    let mut ctx = s.context.clone();
    let mut p = 0;
    while p <= text.len() {
        let mut found = false;
        for (i, pat) in pats.iter().enumerate() {
            if text[p..].starts_with(&*pat.text) {
                found = true;
                if reps[i].is_none() {
                    reps[i] = Some(ev.force_coerced(&to[i], span)?);
                }
                let rep = reps[i].as_ref().expect("set just above");
                out.push_str(&rep.text);
                ctx.extend(&rep.context);
                if pat.text.is_empty() {
                    match text[p..].chars().next() {
                        Some(c) => {
                            out.push(c);
                            p += c.len_utf8();
                        }
                        None => p += 1,
                    }
                } else {
                    p += pat.text.len();
                }
                break;
            }
        }
        if !found {
            match text[p..].chars().next() {
                Some(c) => {
                    out.push(c);
                    p += c.len_utf8();
                }
                None => p += 1,
            }
        }
    }
    Ok(Value::String(NixString::with_context(out, ctx)))
}

fn regex(
    ev: &mut Evaluator,
    pattern: &str,
    span: Span,
    anchored: bool,
) -> EvalResult<regex::Regex> {
    // `(?s)`: in POSIX regular expressions `.` also matches a newline.
    let key = if anchored {
        format!("(?s)^(?:{pattern})$")
    } else {
        format!("(?s){pattern}")
    };
    if let Some(re) = ev.regex_cache.get(&key) {
        return Ok(re.clone());
    }
    // Nix's regular expressions are POSIX extended: Perl's `\d`, `\w`, … are errors there.
    if let Some(i) = pattern
        .find('\\')
        .filter(|&i| pattern[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic()))
    {
        return Err(EvalError::fatal(format!("invalid regular expression `{pattern}`"), span).with_help(format!(
            "`{}` is not POSIX extended syntax; use a bracket class such as `[0-9]` or `[[:alpha:]]`",
            &pattern[i..i + 2]
        )));
    }
    let re = regex::Regex::new(&key).map_err(|e| {
        EvalError::fatal(format!("invalid regular expression `{pattern}`"), span)
            .with_help(e.to_string())
    })?;
    ev.regex_cache.insert(key, re.clone());
    Ok(re)
}

fn captures(caps: &regex::Captures) -> Vec<Thunk> {
    caps.iter()
        .skip(1)
        .map(|m| Thunk::Ready(m.map_or(Value::Null, |m| Value::string(m.as_str()))))
        .collect()
}

fn regex_match(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let pattern = ev.force_string(&args[0], span)?;
    let s = ev.force_coerced(&args[1], span)?;
    let re = regex(ev, &pattern.text, span, true)?;
    Ok(match re.captures(&s.text) {
        Some(caps) => Value::list(captures(&caps)),
        None => Value::Null,
    })
}

fn split(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let pattern = ev.force_string(&args[0], span)?;
    let s = ev.force_coerced(&args[1], span)?;
    let re = regex(ev, &pattern.text, span, false)?;
    let text = &*s.text;
    let mut out = Vec::new();
    let mut last = 0;
    // Like C++'s regex iterator (what Nix uses): an empty match right after a non-empty
    // one counts (`split "(a)*" "a"` is `[ "" [ "a" ] "" [ null ] "" ]`); after an
    // empty match the search moves on by one character.
    let mut pos = 0;
    while pos <= text.len() {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let m = caps.get(0).expect("regex: group 0 is the whole match");
        out.push(Thunk::Ready(Value::string(&text[last..m.start()])));
        out.push(Thunk::Ready(Value::list(captures(&caps))));
        last = m.end();
        pos = if m.is_empty() {
            m.end() + text[m.end()..].chars().next().map_or(1, char::len_utf8)
        } else {
            m.end()
        };
    }
    out.push(Thunk::Ready(Value::string(&text[last..])));
    Ok(Value::list(out))
}

fn concat_strings_sep(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let sep = ev.force_string(&args[0], span)?;
    let list = ev.force_list(&args[1], span)?;
    let mut out = String::new();
    let mut ctx = sep.context.clone();
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep.text);
        }
        let s = ev.force_coerced(t, span)?;
        out.push_str(&s.text);
        ctx.extend(&s.context);
    }
    Ok(Value::String(NixString::with_context(out, ctx)))
}

/// The next component of a version string, as Nix's `nextComponent`.
fn next_component<'a>(s: &'a str, pos: &mut usize) -> &'a str {
    let b = s.as_bytes();
    while *pos < b.len() && (b[*pos] == b'.' || b[*pos] == b'-') {
        *pos += 1;
    }
    let start = *pos;
    if *pos < b.len() && b[*pos].is_ascii_digit() {
        while *pos < b.len() && b[*pos].is_ascii_digit() {
            *pos += 1;
        }
    } else {
        while *pos < b.len() && !b[*pos].is_ascii_digit() && b[*pos] != b'.' && b[*pos] != b'-' {
            *pos += 1;
        }
    }
    &s[start..*pos]
}

fn split_version(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_coerced(&args[0], span)?;
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < s.text.len() {
        let c = next_component(&s.text, &mut pos);
        if c.is_empty() {
            break;
        }
        out.push(Thunk::Ready(Value::string(c)));
    }
    Ok(Value::list(out))
}

/// `builtins.parseDrvName "hello-2.10"` is `{ name = "hello"; version = "2.10"; }`:
/// the name ends at the first `-` followed by something other than a letter.
fn parse_drv_name(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_coerced(&args[0], span)?;
    let text = &*s.text;
    let bytes = text.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && i + 1 < bytes.len() && !bytes[i + 1].is_ascii_alphabetic());
    let (name, version) = match cut {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    Ok(Value::Attrs(crate::eval::Attrs::from_sorted(vec![
        crate::eval::Attr {
            name: "name".into(),
            value: Thunk::Ready(Value::string(name)),
            span: None,
        },
        crate::eval::Attr {
            name: "version".into(),
            value: Thunk::Ready(Value::string(version)),
            span: None,
        },
    ])))
}

fn component_less(a: &str, b: &str) -> bool {
    // A component is a number when it fits Nix's C `int`; a longer run of digits
    // compares as text, as in Nix.
    let num = |s: &str| s.bytes().all(|c| c.is_ascii_digit()) && s.parse::<i32>().is_ok();
    if a == b {
        return false;
    }
    let (an, bn) = (num(a), num(b));
    if an && bn {
        let parse = |s: &str| s.parse::<i32>().unwrap_or(i32::MAX);
        parse(a) < parse(b)
    } else if (a.is_empty() && bn) || (a == "pre" && b != "pre") {
        true
    } else if b == "pre" {
        false
    } else if bn {
        true
    } else if an {
        false
    } else {
        a < b
    }
}

pub fn compare_version_strings(a: &str, b: &str) -> i64 {
    let (mut p1, mut p2) = (0, 0);
    while p1 < a.len() || p2 < b.len() {
        let c1 = next_component(a, &mut p1);
        let c2 = next_component(b, &mut p2);
        if component_less(c1, c2) {
            return -1;
        }
        if component_less(c2, c1) {
            return 1;
        }
    }
    0
}

fn compare_versions(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let a = ev.force_coerced(&args[0], span)?;
    let b = ev.force_coerced(&args[1], span)?;
    Ok(Value::Int(compare_version_strings(&a.text, &b.text)))
}

fn hash_string(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    use sha2::Digest;
    let algo = ev.force_string(&args[0], span)?;
    let s = ev.force_coerced(&args[1], span)?;
    let bytes = s.text.as_bytes();
    let digest: Vec<u8> = match &*algo.text {
        "md5" => md5::Md5::digest(bytes).to_vec(),
        "sha1" => sha1::Sha1::digest(bytes).to_vec(),
        "sha256" => sha2::Sha256::digest(bytes).to_vec(),
        "sha512" => sha2::Sha512::digest(bytes).to_vec(),
        other => {
            return Err(
                EvalError::fatal(format!("unknown hash algorithm `{other}`"), span)
                    .with_help("use one of `md5`, `sha1`, `sha256`, `sha512`"),
            )
        }
    };
    Ok(Value::string(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    ))
}

fn base_name_of(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_coerced(&args[0], span)?;
    let p = &*s.text;
    if p.is_empty() {
        return Ok(Value::string(""));
    }
    let mut last = p.len() - 1;
    if p.as_bytes()[last] == b'/' && last > 0 {
        last -= 1;
    }
    let start = p[..=last].rfind('/').map_or(0, |i| i + 1);
    Ok(Value::String(NixString::with_context(
        &p[start..=last],
        s.context.clone(),
    )))
}

fn dir_of(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let is_path = matches!(v, Value::Path(_));
    let s = ev.coerce_to_string(&v, span, false)?;
    let dir = match s.text.rfind('/') {
        None => ".",
        Some(0) => "/",
        Some(i) => &s.text[..i],
    };
    if is_path {
        return Ok(Value::Path(Rc::new(dir.into())));
    }
    Ok(Value::String(NixString::with_context(
        dir,
        s.context.clone(),
    )))
}

fn discard_context(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_coerced(&args[0], span)?;
    Ok(Value::String(NixString::with_context(
        s.text,
        Context::default(),
    )))
}

fn has_context(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_string(&args[0], span)?;
    Ok(Value::Bool(!s.context.is_empty()))
}
