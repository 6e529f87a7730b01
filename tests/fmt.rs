//! `bottle fmt` never changes what a file means, formats each file once and
//! for all, and the stdlib and examples are kept formatted.

use assert_cmd::Command;
use bottle::syntax::{format::format, parse, FileId};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.bottle` and `.nix` file under the given directories of the repository.
fn corpus(dirs: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a readable directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "bottle" || e == "nix")
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(&root().join(d), &mut out);
    }
    out.sort();
    out
}

/// The parsed expression with its source positions taken out (and the
/// attribute index, whose order is a hash map's), for comparing meaning.
fn shape(text: &str) -> Option<String> {
    let expr = parse(FileId(0), text).ok()?;
    let debug = format!("{expr:?}");
    let spans = regex::Regex::new(r"Span \{ file: FileId\(\d+\), start: \d+, end: \d+ \}")
        .expect("a valid regex");
    let index =
        regex::Regex::new(r#"index: \{("(?:[^"\\]|\\.)*": \d+(, )?)*\}"#).expect("a valid regex");
    Some(
        index
            .replace_all(&spans.replace_all(&debug, "_"), "_")
            .into_owned(),
    )
}

#[test]
fn formatting_keeps_meaning_and_is_idempotent() {
    let files = corpus(&["stdlib", "examples", "tests/lang", "tests/recipes"]);
    assert!(
        files.len() > 100,
        "the corpus was found ({} files)",
        files.len()
    );
    let mut failures = Vec::new();
    let mut formatted_count = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("a readable file");
        let Some(before) = shape(&text) else {
            // Cases that are syntax errors on purpose (tests/lang/fail).
            assert!(
                format(FileId(0), &text).is_err(),
                "{}: fmt accepts what the parser rejects",
                path.display()
            );
            continue;
        };
        let once = match format(FileId(0), &text) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{}: {}", path.display(), e.message));
                continue;
            }
        };
        formatted_count += 1;
        if shape(&once).as_deref() != Some(before.as_str()) {
            failures.push(format!(
                "{}: the formatted file parses differently",
                path.display()
            ));
        }
        let twice = format(FileId(0), &once).expect("formatted text formats again");
        if twice != once {
            failures.push(format!(
                "{}: formatting twice changes the file:\n--- once\n{once}\n--- twice\n{twice}",
                path.display()
            ));
        }
        let comments = |t: &str| {
            bottle::syntax::lexer::tokens(FileId(0), t)
                .expect("lexes")
                .iter()
                .filter(|k| k.kind == bottle::syntax::lexer::Tok::Comment)
                .map(|k| k.text(t).trim_end().to_string())
                .collect::<Vec<_>>()
        };
        if comments(&text) != comments(&once) {
            failures.push(format!("{}: comments changed", path.display()));
        }
    }
    assert!(
        formatted_count > 100,
        "{formatted_count} files were formatted"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stdlib_and_examples_are_formatted() {
    Command::cargo_bin("bottle")
        .expect("the bottle binary")
        .current_dir(root())
        .args(["fmt", "--check", "stdlib", "examples"])
        .assert()
        .success();
}

#[test]
fn check_lists_unformatted_files_and_fmt_fixes_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("r.bottle");
    let messy =
        "# a recipe\n{   name=\"x\";\n      tags = [\"a\"   \"b\"];   # kept\n\n\n  n = -  1;}\n";
    std::fs::write(&file, messy).expect("writes");
    let out = Command::cargo_bin("bottle")
        .expect("the bottle binary")
        .args(["fmt", "--check"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("r.bottle"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).expect("reads"), messy);

    Command::cargo_bin("bottle")
        .expect("the bottle binary")
        .arg("fmt")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&file).expect("reads"),
        "# a recipe\n{\n  name = \"x\";\n  tags = [ \"a\" \"b\" ]; # kept\n\n  n = -1;\n}\n"
    );
}

#[test]
fn short_sets_stay_on_one_line_and_long_ones_break() {
    let short = "{ a = { b = 1; c = [ 1 2 ]; }; }\n";
    assert_eq!(format(FileId(0), short).expect("formats"), short);
    let long = format!(
        "{{ a = {{ {} }}; }}\n",
        (0..30)
            .map(|i| format!("x{i} = {i};"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = format(FileId(0), &long).expect("formats");
    assert!(
        out.starts_with("{\n  a = {\n    x0 = 0;\n    x1 = 1;\n"),
        "{out}"
    );
    assert_eq!(format(FileId(0), &out).expect("formats"), out);
}

#[test]
fn syntax_errors_are_diagnostics() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("bad.bottle");
    std::fs::write(&file, "{ a = 1 }\n").expect("writes");
    let out = Command::cargo_bin("bottle")
        .expect("the bottle binary")
        .arg("fmt")
        .arg(&file)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unexpected `}`, expected `;`"), "{stderr}");
    assert!(stderr.contains("bad.bottle:1:9"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
}
