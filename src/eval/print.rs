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
        self.write_value(v, span, out, &mut Json { ctx })
    }

    /// Force `v` completely and render it as Nix would print it.
    pub fn to_nix(&mut self, v: &Value, span: Span, out: &mut String) -> EvalResult<()> {
        self.write_value(v, span, out, &mut Nix)
    }

    /// Force `v` completely and write it in `style`. Lists and sets being
    /// written are a work list, not recursion, so a value nested a million
    /// levels deep prints.
    fn write_value(
        &mut self,
        v: &Value,
        span: Span,
        out: &mut String,
        style: &mut impl Style,
    ) -> EvalResult<()> {
        let mut open: Vec<Open> = Vec::new();
        let mut next = Some(v.clone());
        loop {
            if let Some(v) = next.take() {
                match v {
                    Value::List(items) => {
                        out.push('[');
                        open.push(Open::List(items, 0));
                    }
                    Value::Attrs(attrs) => match style.set(self, attrs, span, out)? {
                        SetAs::Set(attrs) => {
                            out.push('{');
                            open.push(Open::Attrs(attrs, 0));
                        }
                        SetAs::Written => {}
                        SetAs::Value(v) => {
                            next = Some(v);
                            continue;
                        }
                    },
                    Value::Null => out.push_str("null"),
                    Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    Value::Int(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Value::Float(f) => out.push_str(&format_float_g(f)),
                    other => style.leaf(other, span, out)?,
                }
                check_nesting(open.len(), span)?;
            }
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match top {
                Open::List(items, i) => {
                    if *i == items.len() {
                        style.list_close(out);
                        open.pop();
                        continue;
                    }
                    style.item(*i, out);
                    *i += 1;
                    next = Some(self.force(&items[*i - 1])?);
                }
                Open::Attrs(attrs, i) => {
                    if *i == attrs.len() {
                        style.set_close(*i, out);
                        open.pop();
                        continue;
                    }
                    let a = attrs.entry(*i);
                    style.attr(*i, &a.name, out);
                    *i += 1;
                    next = Some(self.force(&a.value)?);
                }
            }
        }
    }
}

/// What a style makes of a set.
enum SetAs {
    /// Its attributes, written in order.
    Set(Attrs),
    /// Already written (as a string).
    Written,
    /// Another value in its place.
    Value(Value),
}

/// What differs between the two ways of writing a value: strings, paths,
/// functions, how a set is taken, and the separators. Numbers, `null`,
/// Booleans and the brackets are written the same.
trait Style {
    /// A string, a path or a function.
    fn leaf(&mut self, v: Value, span: Span, out: &mut String) -> EvalResult<()>;
    fn set(
        &mut self,
        ev: &mut Evaluator,
        attrs: Attrs,
        span: Span,
        out: &mut String,
    ) -> EvalResult<SetAs>;
    /// Before the `i`th element of a list.
    fn item(&mut self, i: usize, out: &mut String);
    fn list_close(&mut self, out: &mut String);
    /// Before the value of the `i`th attribute, called `name`.
    fn attr(&mut self, i: usize, name: &str, out: &mut String);
    /// After the last of `n` attributes.
    fn set_close(&mut self, n: usize, out: &mut String);
}

/// JSON as Nix writes it, collecting the strings' contexts.
struct Json<'c> {
    ctx: &'c mut Context,
}

impl Style for Json<'_> {
    fn leaf(&mut self, v: Value, span: Span, out: &mut String) -> EvalResult<()> {
        match v {
            Value::String(s) => {
                self.ctx.extend(&s.context);
                json_string(&s.text, out);
            }
            Value::Path(p) => json_string(&p.to_string_lossy(), out),
            _ => {
                return Err(EvalError::fatal("cannot convert a function to JSON", span)
                    .with_help("apply the function, or select the attribute you want to print"))
            }
        }
        Ok(())
    }

    fn set(
        &mut self,
        ev: &mut Evaluator,
        attrs: Attrs,
        span: Span,
        out: &mut String,
    ) -> EvalResult<SetAs> {
        if attrs.get("__toString").is_some() {
            let s = ev.coerce_to_string(&Value::Attrs(attrs), span, false)?;
            self.ctx.extend(&s.context);
            json_string(&s.text, out);
            return Ok(SetAs::Written);
        }
        if let Some(p) = attrs.get("outPath") {
            let p = p.value.clone();
            return Ok(SetAs::Value(ev.force(&p)?));
        }
        Ok(SetAs::Set(attrs))
    }

    fn item(&mut self, i: usize, out: &mut String) {
        if i > 0 {
            out.push(',');
        }
    }

    fn list_close(&mut self, out: &mut String) {
        out.push(']');
    }

    fn attr(&mut self, i: usize, name: &str, out: &mut String) {
        if i > 0 {
            out.push(',');
        }
        json_string(name, out);
        out.push(':');
    }

    fn set_close(&mut self, _: usize, out: &mut String) {
        out.push('}');
    }
}

/// The readable form `nix-instantiate --eval` prints.
struct Nix;

impl Style for Nix {
    fn leaf(&mut self, v: Value, _: Span, out: &mut String) -> EvalResult<()> {
        match v {
            Value::String(s) => nix_string(&s.text, out),
            Value::Path(p) => out.push_str(&p.to_string_lossy()),
            Value::Builtin(b) if !b.args.is_empty() => out.push_str("<PRIMOP-APP>"),
            Value::Builtin(_) => out.push_str("<PRIMOP>"),
            _ => out.push_str("<LAMBDA>"),
        }
        Ok(())
    }

    fn set(&mut self, _: &mut Evaluator, a: Attrs, _: Span, _: &mut String) -> EvalResult<SetAs> {
        Ok(SetAs::Set(a))
    }

    fn item(&mut self, _: usize, out: &mut String) {
        out.push(' ');
    }

    fn list_close(&mut self, out: &mut String) {
        out.push_str(" ]");
    }

    fn attr(&mut self, i: usize, name: &str, out: &mut String) {
        if i > 0 {
            out.push(';');
        }
        out.push(' ');
        if is_identifier(name) {
            out.push_str(name);
        } else {
            nix_string(name, out);
        }
        out.push_str(" = ");
    }

    fn set_close(&mut self, n: usize, out: &mut String) {
        if n > 0 {
            out.push(';');
        }
        out.push_str(" }");
    }
}

/// A list or set being printed, and the index of its next element.
enum Open {
    List(Rc<[Thunk]>, usize),
    Attrs(Attrs, usize),
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
