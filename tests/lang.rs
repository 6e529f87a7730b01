//! The differential language corpus: every `tests/lang/NAME.nix` must evaluate under
//! `bottle eval --json` to exactly the text Nix printed for it (`NAME.exp.json`, made by
//! `tests/lang/regen` with `nix-instantiate --eval --strict --json`), and every
//! `tests/lang/fail/NAME.nix` must be rejected with exit code 1 and a diagnostic.
//!
//! Each test collects every mismatch before failing, so one run lists all the cases the
//! evaluator gets wrong. `BOTTLE_LANG_FILTER=substring` restricts the run to matching cases.
//! When `nix-instantiate` is installed, one more test checks that the stored expectations
//! still agree with Nix, so the corpus cannot drift from its oracle.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A hanging evaluation fails its case instead of hanging the suite.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang")
}

/// Case files (relative to the corpus dir) in `sub`, sorted, filtered by `BOTTLE_LANG_FILTER`.
fn cases(sub: &str) -> Vec<String> {
    let filter = std::env::var("BOTTLE_LANG_FILTER").unwrap_or_default();
    let dir = corpus_dir().join(sub);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".nix"))
        .map(|name| {
            if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            }
        })
        .filter(|name| name.contains(&filter))
        .collect();
    names.sort();
    names
}

/// What a process did: its exit code (None if killed by a signal or the timeout) and output.
struct Outcome {
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

/// Run `program args` in the corpus dir with a deadline. Output goes to files rather than
/// pipes so a large output cannot block the child while we poll it.
fn run(program: &str, args: &[&str]) -> Outcome {
    let out = tempfile::tempfile().expect("a temporary file for stdout");
    let err = tempfile::tempfile().expect("a temporary file for stderr");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(corpus_dir())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("a second handle on the stdout file"))
        .stderr(err.try_clone().expect("a second handle on the stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    let deadline = Instant::now() + CASE_TIMEOUT;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("waiting on the child") {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            // Only this child, which we started, is killed.
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let read = |mut file: fs::File| {
        use std::io::{Read, Seek, SeekFrom};
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .expect("rewinding an output file");
        file.read_to_end(&mut bytes)
            .expect("reading an output file");
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Outcome {
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Map `check` over `items` on a few threads, keeping the failures (in input order).
fn collect_failures(
    items: &[String],
    check: impl Fn(&str) -> Option<String> + Sync,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                if let Some(failure) = check(item) {
                    failures
                        .lock()
                        .expect("no worker panics while holding the lock")
                        .push((i, failure));
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("no worker panicked");
    failures.sort();
    failures.into_iter().map(|(_, f)| f).collect()
}

fn shorten(text: &str, limit: usize) -> String {
    let text = text.trim_end();
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

fn how_it_ended(outcome: &Outcome) -> String {
    if outcome.timed_out {
        format!("timed out after {}s", CASE_TIMEOUT.as_secs())
    } else {
        match outcome.code {
            Some(code) => format!("exit {code}"),
            None => "killed by a signal (stack overflow?)".to_owned(),
        }
    }
}

fn report(what: &str, total: usize, failures: &[String]) {
    if !failures.is_empty() {
        panic!(
            "{} of {total} {what} failed:\n\n{}\n",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// The stored expectation for `case` (`NAME.nix` → `NAME.exp.json`), without its final newline.
fn expectation(case: &str) -> Option<String> {
    let path = corpus_dir().join(case.replace(".nix", ".exp.json"));
    fs::read_to_string(path)
        .ok()
        .map(|text| text.trim_end().to_owned())
}

#[test]
fn corpus_evaluates_like_nix() {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    let names = cases("");
    let failures = collect_failures(&names, |case| {
        let Some(expected) = expectation(case) else {
            return Some(format!("{case}: no .exp.json (run tests/lang/regen)"));
        };
        let got = run(bottle, &["eval", "--json", case]);
        if got.code != Some(0) {
            return Some(format!(
                "{case}: {}, expected {}\n  stderr: {}",
                how_it_ended(&got),
                shorten(&expected, 300),
                shorten(&got.stderr, 600).replace('\n', "\n          ")
            ));
        }
        let text = got.stdout.trim_end();
        if text == expected {
            return None;
        }
        // Same value printed differently (float format, escapes) is still a mismatch, but
        // saying so points at the printer rather than the evaluator.
        let same_value = matches!(
            (serde_json::from_str::<serde_json::Value>(text), serde_json::from_str::<serde_json::Value>(&expected)),
            (Ok(a), Ok(b)) if a == b
        );
        Some(format!(
            "{case}:{}\n  expected: {}\n  got:      {}",
            if same_value {
                " same JSON value, different text"
            } else {
                ""
            },
            shorten(&expected, 400),
            shorten(text, 400)
        ))
    });
    report("corpus cases", names.len(), &failures);
}

#[test]
fn corpus_failures_are_rejected() {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    let names = cases("fail");
    let failures = collect_failures(&names, |case| {
        let got = run(bottle, &["eval", "--json", case]);
        let nix_says = fs::read_to_string(corpus_dir().join(case.replace(".nix", ".exp.err")))
            .map(|e| shorten(e.lines().next().unwrap_or(""), 200))
            .unwrap_or_default();
        if got.code == Some(1) && !got.stderr.trim().is_empty() {
            return None;
        }
        Some(format!(
            "{case}: {}, expected exit 1 with a diagnostic (Nix: {nix_says})\n  stdout: {}\n  stderr: {}",
            how_it_ended(&got),
            shorten(&got.stdout, 300),
            shorten(&got.stderr, 400).replace('\n', "\n          ")
        ))
    });
    report("fail/ cases", names.len(), &failures);
}

/// Every case has its expectation and every expectation its case; the corpus keeps its size.
#[test]
fn corpus_is_complete() {
    let mut problems = Vec::new();
    let names = cases("");
    for case in &names {
        match expectation(case) {
            None => problems.push(format!("{case}: missing .exp.json")),
            Some(text) if serde_json::from_str::<serde_json::Value>(&text).is_err() => {
                problems.push(format!("{case}: .exp.json is not JSON: {text}"))
            }
            Some(_) => {}
        }
    }
    for dir in ["", "fail"] {
        for entry in fs::read_dir(corpus_dir().join(dir)).expect("the corpus dir is readable") {
            let name = entry
                .expect("a readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            for ext in [".exp.json", ".exp.err"] {
                if let Some(stem) = name.strip_suffix(ext) {
                    if !corpus_dir().join(dir).join(format!("{stem}.nix")).exists() {
                        problems.push(format!("{dir}/{name}: no matching .nix case"));
                    }
                }
            }
        }
    }
    if std::env::var("BOTTLE_LANG_FILTER").is_err() {
        assert!(
            names.len() >= 200,
            "the corpus shrank to {} cases",
            names.len()
        );
        assert!(cases("fail").len() >= 40, "the fail/ corpus shrank");
    }
    assert!(
        problems.is_empty(),
        "corpus problems:\n{}",
        problems.join("\n")
    );
}

/// With Nix installed, the stored expectations must still be what Nix says.
#[test]
fn corpus_expectations_match_live_nix() {
    let nix = "nix-instantiate";
    if Command::new(nix).arg("--version").output().is_err() {
        eprintln!("nix-instantiate not found: checking against the stored expectations only");
        return;
    }
    let names: Vec<String> = cases("").into_iter().chain(cases("fail")).collect();
    let failures = collect_failures(&names, |case| {
        let got = run(nix, &["--eval", "--strict", "--json", case]);
        if case.starts_with("fail/") {
            return (got.code == Some(0))
                .then(|| format!("{case}: Nix now accepts it: {}", shorten(&got.stdout, 300)));
        }
        let expected = expectation(case).unwrap_or_default();
        if got.code == Some(0) && got.stdout.trim_end() == expected {
            return None;
        }
        Some(format!(
            "{case}: Nix {} now prints {}, stored {} (run tests/lang/regen)\n  stderr: {}",
            how_it_ended(&got),
            shorten(&got.stdout, 300),
            shorten(&expected, 300),
            shorten(&got.stderr, 300)
        ))
    });
    report(
        "expectations checked against nix-instantiate",
        names.len(),
        &failures,
    );
}

/// Recursion deeper than Nix 2.8 manages on its default 8 MB stack (so these cannot be
/// corpus cases with expectations from Nix): a million calls in tail position, deepSeq
/// over a million elements, and structures nested far deeper than any Rust stack would
/// allow if they were walked recursively (deepSeq, printing, equality, and dropping them).
/// They run on the debug build, so the sizes are chosen to finish in a few seconds.
#[test]
fn deep_recursion_evaluates() {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    let wrap_list = "wrap = n: x: if n == 0 then x else wrap (n - 1) [ x ];";
    let wrap_set = "wrap = n: x: if n == 0 then x else wrap (n - 1) { a = x; };";
    let cases: Vec<(String, &str)> = vec![
        (
            "let loop = n: acc: if n == 0 then acc else loop (n - 1) (acc + 1); in loop 1000000 0"
                .into(),
            "1000000",
        ),
        (
            // Mutual recursion in tail position, and a formals argument.
            "let even = { n }: if n == 0 then true else odd (n - 1); \
             odd = n: if n == 0 then false else even { n = n - 1; }; in even { n = 300001; }"
                .into(),
            "false",
        ),
        (
            "let xs = builtins.genList (i: i * 2) 1000000; in builtins.deepSeq xs (builtins.length xs)"
                .into(),
            "1000000",
        ),
        (
            format!("let {wrap_list} in builtins.deepSeq (wrap 200000 0) \"deep\""),
            "\"deep\"",
        ),
        (
            format!("let {wrap_set} in wrap 200000 1 == wrap 200000 1"),
            "true",
        ),
        (
            format!(
                "let {wrap_list} in builtins.stringLength (builtins.toJSON (wrap 200000 7))"
            ),
            "400001",
        ),
    ];
    let names: Vec<String> = (0..cases.len()).map(|i| i.to_string()).collect();
    let failures = collect_failures(&names, |i| {
        let (expr, expected) = &cases[i.parse::<usize>().expect("an index")];
        let got = run(bottle, &["eval", "--json", "-E", expr]);
        if got.code == Some(0) && got.stdout.trim_end() == *expected {
            return None;
        }
        Some(format!(
            "{expr}\n  {}, expected {expected}, got {}\n  stderr: {}",
            how_it_ended(&got),
            shorten(&got.stdout, 200),
            shorten(&got.stderr, 600).replace('\n', "\n          ")
        ))
    });
    report("deep recursion cases", cases.len(), &failures);
}

/// A deeply nested value is printed without recursion too (the Nix-style printer).
#[test]
fn deep_structure_prints() {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    let expr =
        "let wrap = n: x: if n == 0 then x else wrap (n - 1) { a = [ x ]; }; in wrap 100000 1";
    let got = run(bottle, &["eval", "-E", expr]);
    assert_eq!(got.code, Some(0), "{}", shorten(&got.stderr, 600));
    let text = got.stdout.trim_end();
    assert!(
        text.starts_with("{ a = [ { a = [ { a = ["),
        "{}",
        shorten(text, 100)
    );
    assert!(
        text.contains("{ a = [ { a = [ 1 ]; } ]; }"),
        "{}",
        shorten(text, 100)
    );
    assert!(text.ends_with("]; } ]; } ]; }"), "{}", shorten(text, 100));
    assert_eq!(text.matches("{ a = [ ").count(), 100000);
}

/// Runaway recursion still ends, quickly and with a diagnostic, whatever its shape.
#[test]
fn runaway_recursion_ends_in_an_error() {
    let bottle = env!("CARGO_BIN_EXE_bottle");
    let cases = [
        ("let f = x: f x + 1; in f 0", "stack overflow"),
        ("let f = x: 1 + f x; in f 0", "stack overflow"),
        ("let x = x + 1; in x", "infinite recursion"),
        ("let xs = [ (builtins.head xs) ]; in builtins.deepSeq xs 1", "infinite recursion"),
        // A lazy accumulator that is not plain arithmetic on numbers stays a chain of
        // thunks; forcing it nests, and a runaway one is stopped.
        (
            "let loop = n: acc: if n == 0 then builtins.length acc else loop (n - 1) (acc ++ [ n ]); in loop 1000000 []",
            "stack overflow",
        ),
    ];
    let names: Vec<String> = (0..cases.len()).map(|i| i.to_string()).collect();
    let failures = collect_failures(&names, |i| {
        let (expr, expected) = cases[i.parse::<usize>().expect("an index")];
        let started = Instant::now();
        let got = run(bottle, &["eval", "-E", expr]);
        let took = started.elapsed();
        if got.code == Some(1) && got.stderr.contains(expected) && !got.stderr.contains("panicked")
        {
            return None;
        }
        Some(format!(
            "{expr}\n  {} after {took:?}, expected exit 1 with `{expected}`\n  stderr: {}",
            how_it_ended(&got),
            shorten(&got.stderr, 600).replace('\n', "\n          ")
        ))
    });
    report("runaway recursion cases", cases.len(), &failures);
}
