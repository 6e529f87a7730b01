//! The differential fuzzer: random well-formed Nix expressions (see `lang_fuzz/gen.rs`)
//! evaluated by bottle's evaluator and by `nix-instantiate --eval --strict --json`; each
//! must give the same JSON text, or fail in both. A disagreement is shrunk to a small
//! expression and reported with both outcomes, ready to become a case in `tests/lang/`.
//!
//! Every expression is evaluated wrapped as
//! `(r: if r.success then r.value else "caught") (builtins.tryEval (builtins.toJSON E))`,
//! so a catchable error (`throw`, `assert`) is a value ("caught") and only the
//! uncatchable ones fail. Many expressions go to one `nix-instantiate` call (one
//! argument each; Nix prints each result in turn and stops at the first that fails, and
//! the run resumes after it).
//!
//! `fuzz_agrees_with_nix` is a bounded run with a fixed seed (part of the suite; skipped
//! with a message when `nix-instantiate` is missing). `fuzz_long` is the open-ended run
//! behind `scripts/fuzz-lang` (`BOTTLE_FUZZ_SECONDS`, `BOTTLE_FUZZ_SEED`,
//! `BOTTLE_FUZZ_OUT` for where shrunk cases are written; `BOTTLE_FUZZ_TRACE=1` prints each
//! expression before bottle evaluates it, to find one that crashes the process).

#[path = "lang_fuzz/gen.rs"]
mod gen;

use bottle::eval::{Context, Evaluator};
use bottle::syntax::{FileId, Span};
use gen::{Gen, Node};
use std::process::Command;
use std::time::{Duration, Instant};

/// What one evaluation gave.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// The JSON text of the wrapped result.
    Value(String),
    /// An uncatchable error, with (the start of) its message.
    Fails(String),
}

impl Outcome {
    /// "value", "caught" (a catchable error) or "fails": what shrinking keeps fixed.
    fn class(&self) -> &'static str {
        match self {
            Outcome::Value(t) if t == "caught" => "caught",
            Outcome::Value(_) => "value",
            Outcome::Fails(_) => "fails",
        }
    }

    fn show(&self) -> String {
        match self {
            Outcome::Value(t) => t.clone(),
            Outcome::Fails(m) => format!("error: {m}"),
        }
    }
}

fn agree(nix: &Outcome, bottle: &Outcome) -> bool {
    match (nix, bottle) {
        (Outcome::Value(a), Outcome::Value(b)) => a == b,
        (Outcome::Fails(_), Outcome::Fails(_)) => true,
        _ => false,
    }
}

/// Differences bottle has on purpose (docs/language.md, "Differences from Nix").
fn known_difference(expr: &str, nix: &Outcome, bottle: &Outcome) -> Option<&'static str> {
    match bottle {
        // Nix 2.8 wraps around; bottle reports the overflow.
        Outcome::Fails(m) if m.contains("integer overflow") => Some("integer overflow"),
        // Nix's strings are bytes: cutting, splitting or replacing inside a multi-byte
        // UTF-8 character gives invalid UTF-8, which bottle's strings never hold.
        _ if matches!(nix, Outcome::Value(t) if t.contains('\u{fffd}')) => {
            Some("a multi-byte character cut in two")
        }
        // … or Nix's fromJSON rejects what Nix's substring made of one …
        Outcome::Value(_) if matches!(nix, Outcome::Fails(m) if m.contains("UTF-8")) => {
            Some("a multi-byte character cut in two")
        }
        // … which also shows in counts: an empty regex match between the bytes of one.
        // (The generator spells non-ASCII characters directly or as JSON escapes.)
        _ if (!expr.is_ascii() || expr.contains(r"\\u00e9") || expr.contains(r"\\ud83d"))
            && [
                "builtins.split",
                "builtins.substring",
                "builtins.replaceStrings",
            ]
            .iter()
            .any(|f| expr.contains(f)) =>
        {
            Some("a multi-byte character cut in two")
        }
        _ => None,
    }
}

/// The expression as evaluated on both sides: its value fully forced and turned into
/// JSON text *during evaluation*, so Nix never fails half-way through printing (its
/// printer closes open brackets when it fails, which would look like a value).
///
/// `toJSON` forces a set's attributes in name order in both; `deepSeq` would not do
/// here, as Nix forces those in the order of its symbol table (see `known_difference`).
fn wrap(expr: &str) -> String {
    format!(
        "((r: if r.success then r.value else \"caught\") \
         (builtins.tryEval (builtins.toJSON ({expr}))))"
    )
}

/// The JSON text inside the printed string (what `builtins.toJSON` made).
fn unwrap(printed: &str) -> String {
    serde_json::from_str::<String>(printed.trim()).unwrap_or_else(|_| printed.trim().to_owned())
}

/// How expressions are sent: wrapped (see [`wrap`]), or as they are, to compare the
/// printers of `--json` themselves (for expressions known to have a value; inside a
/// list, so that results printed one after another stay apart).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Wrapped,
    Printed,
}

impl Mode {
    fn wrap(self, expr: &str) -> String {
        match self {
            Mode::Wrapped => wrap(expr),
            Mode::Printed => format!("[ ({expr}) ]"),
        }
    }

    fn unwrap(self, printed: &str) -> String {
        match self {
            Mode::Wrapped => unwrap(printed),
            Mode::Printed => printed.trim().to_owned(),
        }
    }
}

fn nix_available() -> bool {
    Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Evaluate every expression with `nix-instantiate`, as few calls as possible.
/// Returns the outcomes and the number of calls made.
fn nix_eval(exprs: &[String], mode: Mode) -> (Vec<Outcome>, usize) {
    let mut outcomes = Vec::with_capacity(exprs.len());
    let mut calls = 0;
    let dir = std::env::temp_dir();
    while outcomes.len() < exprs.len() {
        let rest = &exprs[outcomes.len()..];
        calls += 1;
        let out = Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json", "-E"])
            .args(rest.iter().map(|e| mode.wrap(e)))
            .current_dir(&dir)
            .env("NIX_PATH", "")
            .output()
            .expect("running nix-instantiate");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut stream =
            serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>();
        let mut start = 0;
        let mut done = 0;
        while let Some(Ok(_)) = stream.next() {
            let end = stream.byte_offset();
            outcomes.push(Outcome::Value(mode.unwrap(&stdout[start..end])));
            start = end;
            done += 1;
            if done == rest.len() {
                break;
            }
        }
        if done < rest.len() {
            assert!(
                !out.status.success(),
                "nix-instantiate succeeded but printed {done} of {} results:\n{stdout}",
                rest.len()
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let message = stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("(no message)")
                .to_owned();
            if message.contains("stack overflow") && rest.len() > 1 {
                // Seen with many large arguments at once (they share the main stack):
                // ask again about this expression alone.
                let (alone, more) = nix_eval(&rest[done..done + 1], mode);
                calls += more;
                outcomes.extend(alone);
                continue;
            }
            outcomes.push(Outcome::Fails(message));
        }
    }
    (outcomes, calls)
}

/// Evaluate every expression with bottle's evaluator (on a thread with the
/// evaluator's large stack), a fresh evaluator each.
fn bottle_eval(exprs: &[String], mode: Mode) -> Vec<Outcome> {
    let exprs: Vec<String> = exprs.iter().map(|e| mode.wrap(e)).collect();
    let dir = std::env::temp_dir();
    // To find an expression that crashes the process: each is printed before it runs.
    let trace = std::env::var_os("BOTTLE_FUZZ_TRACE").is_some();
    bottle::eval::run_with_stack(move || {
        exprs
            .iter()
            .map(|text| {
                if trace {
                    eprintln!("fuzz: {text}");
                }
                let run = std::panic::AssertUnwindSafe(|| {
                    let mut ev = Evaluator::new(Vec::new());
                    let v = ev.eval_source("«fuzz»", text)?;
                    let mut out = String::new();
                    let span = Span::new(FileId(u32::MAX), 0, 0);
                    ev.to_json(&v, span, &mut out, &mut Context::default())?;
                    Ok::<_, bottle::eval::EvalError>(out)
                });
                // Relative paths resolve against the current directory, as in Nix's -E.
                let _ = std::env::set_current_dir(&dir);
                match std::panic::catch_unwind(run) {
                    Ok(Ok(out)) => Outcome::Value(mode.unwrap(&out)),
                    Ok(Err(e)) => Outcome::Fails(e.message()),
                    Err(panic) => Outcome::Fails(format!(
                        "PANIC in bottle: {}",
                        panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                }
            })
            .collect()
    })
}

struct Finding {
    /// How many generated expressions shrank to this one.
    seen: usize,
    original: String,
    shrunk: String,
    nix: Outcome,
    bottle: Outcome,
}

#[derive(Default)]
struct Stats {
    checked: usize,
    nix_calls: usize,
    /// Expressions whose value was also compared as printed by `--json`.
    printed: usize,
    /// Time spent in bottle's evaluator and in nix-instantiate (shrinking included).
    bottle_time: Duration,
    nix_time: Duration,
    known: Vec<(&'static str, String)>,
    classes: std::collections::BTreeMap<String, usize>,
}

/// Shrink a disagreeing expression: greedily take the smallest variant that still
/// disagrees in the same way (same outcome classes on both sides).
fn shrink(
    node: Node,
    nix: Outcome,
    bottle: Outcome,
    stats: &mut Stats,
) -> (Node, Outcome, Outcome) {
    let signature = (nix.class(), bottle.class());
    let (mut best, mut best_nix, mut best_bottle) = (node, nix, bottle);
    for _round in 0..40 {
        let mut candidates = best.shrink_candidates();
        candidates.truncate(150);
        if candidates.is_empty() {
            break;
        }
        let texts: Vec<String> = candidates.iter().map(Node::render).collect();
        let b = bottle_eval(&texts, Mode::Wrapped);
        // Only candidates bottle still gets "wrong" in the same way go to Nix.
        let keep: Vec<usize> = (0..texts.len())
            .filter(|&i| b[i].class() == signature.1)
            .collect();
        let ask: Vec<String> = keep.iter().map(|&i| texts[i].clone()).collect();
        let (n, calls) = nix_eval(&ask, Mode::Wrapped);
        stats.nix_calls += calls;
        let found = keep.iter().zip(n).find(|(&i, n)| {
            n.class() == signature.0
                && !agree(n, &b[i])
                && known_difference(&texts[i], n, &b[i]).is_none()
        });
        match found {
            Some((&i, n)) => {
                best = candidates[i].clone();
                best_nix = n;
                best_bottle = b[i].clone();
            }
            None => break,
        }
    }
    (best, best_nix, best_bottle)
}

/// Generate and check expressions until `count` are checked or `deadline` passes.
fn fuzz(seed: u64, count: usize, deadline: Option<Instant>, batch: usize) -> (Vec<Finding>, Stats) {
    let mut g = Gen::new(seed);
    let mut stats = Stats::default();
    let mut findings: Vec<Finding> = Vec::new();
    while stats.checked < count && deadline.is_none_or(|d| Instant::now() < d) {
        let nodes: Vec<Node> = (0..batch).map(|_| g.expression()).collect();
        let texts: Vec<String> = nodes.iter().map(Node::render).collect();
        let t0 = Instant::now();
        let b = bottle_eval(&texts, Mode::Wrapped);
        let t1 = Instant::now();
        let (n, calls) = nix_eval(&texts, Mode::Wrapped);
        stats.bottle_time += t1 - t0;
        stats.nix_time += t1.elapsed();
        stats.nix_calls += calls;
        stats.checked += texts.len();
        for i in 0..texts.len() {
            *stats
                .classes
                .entry(format!("nix {} / bottle {}", n[i].class(), b[i].class()))
                .or_default() += 1;
            if agree(&n[i], &b[i]) {
                continue;
            }
            if let Some(why) = known_difference(&texts[i], &n[i], &b[i]) {
                stats.known.push((why, texts[i].clone()));
                continue;
            }
            let (small, sn, sb) = shrink(nodes[i].clone(), n[i].clone(), b[i].clone(), &mut stats);
            let shrunk = small.render();
            if let Some(f) = findings.iter_mut().find(|f| f.shrunk == shrunk) {
                f.seen += 1;
                continue;
            }
            findings.push(Finding {
                seen: 1,
                original: texts[i].clone(),
                shrunk,
                nix: sn,
                bottle: sb,
            });
        }
        // Where both agree on a value, the `--json` printers must agree too.
        let valued: Vec<String> = (0..texts.len())
            .filter(|&i| n[i].class() == "value" && agree(&n[i], &b[i]))
            // `inf` and `nan` are not JSON: printed raw they would end the stream.
            .filter(|&i| {
                matches!(&n[i], Outcome::Value(t) if serde_json::from_str::<serde_json::Value>(t).is_ok())
            })
            .map(|i| texts[i].clone())
            .collect();
        let t0 = Instant::now();
        let bp = bottle_eval(&valued, Mode::Printed);
        let t1 = Instant::now();
        let (np, calls) = nix_eval(&valued, Mode::Printed);
        stats.bottle_time += t1 - t0;
        stats.nix_time += t1.elapsed();
        stats.nix_calls += calls;
        stats.printed += valued.len();
        for i in 0..valued.len() {
            if agree(&np[i], &bp[i]) || known_difference(&valued[i], &np[i], &bp[i]).is_some() {
                continue;
            }
            findings.push(Finding {
                seen: 1,
                original: valued[i].clone(),
                shrunk: format!("(printed by --json, not shrunk) {}", valued[i]),
                nix: np[i].clone(),
                bottle: bp[i].clone(),
            });
        }
    }
    (findings, stats)
}

fn summary(findings: &[Finding], stats: &Stats, elapsed: Duration) -> String {
    let mut out = format!(
        "{} expressions in {:.1}s ({:.0}/s), {} nix-instantiate calls, {} disagreements ({} distinct after shrinking), {} known differences\n",
        stats.checked,
        elapsed.as_secs_f64(),
        stats.checked as f64 / elapsed.as_secs_f64(),
        stats.nix_calls,
        findings.iter().map(|f| f.seen).sum::<usize>(),
        findings.len(),
        stats.known.len()
    );
    out.push_str(&format!(
        "  {} values also compared as printed by --json\n",
        stats.printed
    ));
    out.push_str(&format!(
        "  time in bottle's evaluator {:.1}s, in nix-instantiate {:.1}s\n",
        stats.bottle_time.as_secs_f64(),
        stats.nix_time.as_secs_f64()
    ));
    for (class, n) in &stats.classes {
        out.push_str(&format!("  {class}: {n}\n"));
    }
    let mut known: std::collections::BTreeMap<&str, usize> = Default::default();
    for (why, _) in &stats.known {
        *known.entry(why).or_default() += 1;
    }
    for (why, n) in known {
        out.push_str(&format!("  known difference, {why}: {n}\n"));
    }
    for f in findings {
        out.push_str(&format!(
            "\n  shrunk:   {} ({}×)\n  nix:      {}\n  bottle:   {}\n  original: {}\n",
            f.shrunk,
            f.seen,
            f.nix.show(),
            f.bottle.show(),
            f.original
        ));
    }
    out
}

#[test]
fn fuzz_agrees_with_nix() {
    if !nix_available() {
        eprintln!("skipping the differential fuzzer: nix-instantiate is not installed (scripts/setup installs nix-bin)");
        return;
    }
    let start = Instant::now();
    let (findings, stats) = fuzz(14, 1000, None, 125);
    let report = summary(&findings, &stats, start.elapsed());
    eprintln!("{report}");
    assert!(
        findings.is_empty(),
        "bottle and nix-instantiate disagree:\n{report}"
    );
    // The generator must keep making expressions that evaluate to something.
    let values = stats
        .classes
        .get("nix value / bottle value")
        .copied()
        .unwrap_or(0);
    assert!(
        values * 2 > stats.checked,
        "too few generated expressions have a value ({values} of {})",
        stats.checked
    );
}

/// The open-ended run behind `scripts/fuzz-lang`.
#[test]
#[ignore = "long; run by scripts/fuzz-lang"]
fn fuzz_long() {
    assert!(nix_available(), "nix-instantiate is not installed");
    let seconds: u64 = std::env::var("BOTTLE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("BOTTLE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    let batch: usize = std::env::var("BOTTLE_FUZZ_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let start = Instant::now();
    let (findings, stats) = fuzz(
        seed,
        usize::MAX,
        Some(start + Duration::from_secs(seconds)),
        batch,
    );
    let report = summary(&findings, &stats, start.elapsed());
    println!("seed {seed}\n{report}");
    if let Ok(dir) = std::env::var("BOTTLE_FUZZ_OUT") {
        std::fs::create_dir_all(&dir).expect("creating BOTTLE_FUZZ_OUT");
        for (i, f) in findings.iter().enumerate() {
            let path = std::path::Path::new(&dir).join(format!("seed{seed}-{i}.nix"));
            let text = format!(
                "# nix:    {}\n# bottle: {}\n{}\n",
                f.nix.show().replace('\n', " "),
                f.bottle.show().replace('\n', " "),
                f.shrunk
            );
            std::fs::write(&path, text).expect("writing a shrunk case");
        }
        println!("shrunk cases written to {dir}");
    }
    assert!(findings.is_empty(), "{} disagreements", findings.len());
}
