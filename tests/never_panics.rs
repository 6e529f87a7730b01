//! Property: the parser and evaluator never panic, whatever the input. Every
//! input ends in a value or an error with a report.

use bottle::eval::{run_with_stack, Evaluator};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "let",
    "in",
    "rec",
    "with",
    "inherit",
    "if",
    "then",
    "else",
    "assert",
    "or",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ";",
    ":",
    "=",
    ".",
    ",",
    "?",
    "@",
    "...",
    "+",
    "-",
    "*",
    "/",
    "++",
    "//",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "->",
    "!",
    "x",
    "y",
    "f",
    "a.b",
    "1",
    "0",
    "2.5",
    "\"s\"",
    "\"${x}\"",
    "''ind ${y} ''",
    "./p",
    "<bottle/x>",
    "builtins",
    "map",
    "throw \"t\"",
    "abort \"a\"",
    "import",
    "true",
    "null",
    "x: x",
    "{ a ? 1, ... }: a",
    "builtins.sort",
    "builtins.genList",
    "builtins.foldl'",
    "toString",
    "9223372036854775807",
    "\n",
    "#c\n",
    "/*c*/",
];

fn program() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.join(" ")),
        "\\PC{0,60}",
        prop::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

#[test]
fn parser_and_evaluator_never_panic() {
    run_with_stack(|| {
        let config = ProptestConfig {
            cases: 3000,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(src in program())| {
            let mut ev = Evaluator::default();
            match ev.eval_source("fuzz", &src) {
                Ok(v) => {
                    let mut out = String::new();
                    let span = bottle::syntax::Span::new(bottle::syntax::FileId(u32::MAX), 0, 0);
                    let _ = ev.to_nix(&v, span, &mut out);
                }
                Err(e) => {
                    // Rendering the report must not panic either.
                    let _ = format!("{:?}", bottle::diagnostics::eval_report(&ev.sources, &e));
                }
            }
        });
    });
}
