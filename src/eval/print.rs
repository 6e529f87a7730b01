//! Rendering values: JSON exactly as Nix writes it (`--json`, `builtins.toJSON`)
//! and the readable Nix-style form `bottle eval` prints by default.

use super::{Attrs, Context, EvalError, EvalResult, Evaluator, Thunk, Value, MAX_CALLS};
use crate::syntax::Span;
use std::fmt::Write;
use std::rc::Rc;

impl Evaluator {
    /// Force `v` completely and write it as JSON the way Nix does: sets with
    /// `__toString` or `outPath` become strings, keys are sorted, floats use
    /// C++'s default stream format, functions are an error.
    pub fn to_json(
        &mut self,
        v: &Value,
        span: Span,
        out: &mut String,
        ctx: &mut Context,
    ) -> EvalResult<()> {
        // Lists and sets being written, innermost last: a work list instead
        // of recursion, so a value nested a million levels deep prints.
        let mut open: Vec<Open> = Vec::new();
        let mut next = Some(v.clone());
        loop {
            if let Some(v) = next.take() {
                match v {
                    Value::Null => out.push_str("null"),
                    Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    Value::Int(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Value::Float(f) => out.push_str(&format_float_g(f)),
                    Value::String(s) => {
                        ctx.extend(&s.context);
                        json_string(&s.text, out);
                    }
                    Value::Path(p) => json_string(&p.to_string_lossy(), out),
                    Value::List(items) => {
                        out.push('[');
                        open.push(Open::List(items, 0));
                    }
                    Value::Attrs(attrs) => {
                        if attrs.get("__toString").is_some() {
                            let s = self.coerce_to_string(&Value::Attrs(attrs), span, false)?;
                            ctx.extend(&s.context);
                            json_string(&s.text, out);
                        } else if let Some(p) = attrs.get("outPath") {
                            let p = p.value.clone();
                            next = Some(self.force(&p)?);
                            continue;
                        } else {
                            out.push('{');
                            open.push(Open::Attrs(attrs, 0));
                        }
                    }
                    Value::Lambda(_) | Value::Builtin(_) => {
                        return Err(EvalError::fatal("cannot convert a function to JSON", span)
                            .with_help(
                                "apply the function, or select the attribute you want to print",
                            ))
                    }
                }
                check_nesting(open.len(), span)?;
            }
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match top {
                Open::List(items, i) => {
                    if *i == items.len() {
                        out.push(']');
                        open.pop();
                        continue;
                    }
                    if *i > 0 {
                        out.push(',');
                    }
                    *i += 1;
                    next = Some(self.force(&items[*i - 1])?);
                }
                Open::Attrs(attrs, i) => {
                    if *i == attrs.len() {
                        out.push('}');
                        open.pop();
                        continue;
                    }
                    if *i > 0 {
                        out.push(',');
                    }
                    let a = attrs.entry(*i);
                    *i += 1;
                    json_string(&a.name, out);
                    out.push(':');
                    next = Some(self.force(&a.value)?);
                }
            }
        }
    }

    /// Force `v` completely and render it as Nix would print it.
    pub fn to_nix(&mut self, v: &Value, span: Span, out: &mut String) -> EvalResult<()> {
        let mut open: Vec<Open> = Vec::new();
        let mut next = Some(v.clone());
        loop {
            if let Some(v) = next.take() {
                match v {
                    Value::Null => out.push_str("null"),
                    Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    Value::Int(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Value::Float(f) => out.push_str(&format_float_g(f)),
                    Value::String(s) => nix_string(&s.text, out),
                    Value::Path(p) => out.push_str(&p.to_string_lossy()),
                    Value::List(items) => {
                        out.push('[');
                        open.push(Open::List(items, 0));
                    }
                    Value::Attrs(attrs) => {
                        out.push('{');
                        open.push(Open::Attrs(attrs, 0));
                    }
                    Value::Lambda(_) => out.push_str("<LAMBDA>"),
                    Value::Builtin(b) => out.push_str(if b.args.is_empty() {
                        "<PRIMOP>"
                    } else {
                        "<PRIMOP-APP>"
                    }),
                }
                check_nesting(open.len(), span)?;
            }
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match top {
                Open::List(items, i) => {
                    if *i == items.len() {
                        out.push_str(" ]");
                        open.pop();
                        continue;
                    }
                    out.push(' ');
                    *i += 1;
                    next = Some(self.force(&items[*i - 1])?);
                }
                Open::Attrs(attrs, i) => {
                    if *i > 0 {
                        out.push(';');
                    }
                    if *i == attrs.len() {
                        out.push_str(" }");
                        open.pop();
                        continue;
                    }
                    let a = attrs.entry(*i);
                    *i += 1;
                    out.push(' ');
                    if is_identifier(&a.name) {
                        out.push_str(&a.name);
                    } else {
                        nix_string(&a.name, out);
                    }
                    out.push_str(" = ");
                    next = Some(self.force(&a.value)?);
                }
            }
        }
    }
}

/// A list or set being printed, and the index of its next element.
enum Open {
    List(Rc<Vec<Thunk>>, usize),
    Attrs(Rc<Attrs>, usize),
}

/// A value nested deeper than any finite program makes contains itself
/// (`let x = { a = x; }; in x`): end with an error, in bounded memory.
fn check_nesting(depth: usize, span: Span) -> EvalResult<()> {
    if depth > MAX_CALLS {
        return Err(EvalError::fatal(
            "stack overflow: the value is nested too deeply to print",
            span,
        )
        .with_help(format!(
            "more than {MAX_CALLS} levels of lists and sets; does the value contain itself?"
        )));
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !matches!(
            s,
            "if" | "then" | "else" | "assert" | "with" | "let" | "in" | "rec" | "inherit" | "or"
        )
}

/// A JSON string literal with Nix's escapes (control characters as `\uXXXX`).
pub fn json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn nix_string(s: &str, out: &mut String) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// C++'s default `ostream << double`: `%g` with 6 significant digits.
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    const PRECISION: i32 = 6;
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, f);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` output has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{f:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::format_float_g;

    #[test]
    fn floats_print_like_cpp_streams() {
        for (f, s) in [
            (0.1, "0.1"),
            (1.0, "1"),
            (1e20, "1e+20"),
            (123456789.123, "1.23457e+08"),
            (0.1 + 0.2, "0.3"),
            (1.5e-7, "1.5e-07"),
            (100.0, "100"),
            (1234567.0, "1.23457e+06"),
            (1.0 / 3.0, "0.333333"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.7, "123457"),
            (999999.5, "1e+06"),
        ] {
            assert_eq!(format_float_g(f), s, "{f}");
        }
    }
}
