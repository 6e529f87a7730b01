//! The recipe author's tools, run as the real binary: `bottle check`,
//! `bottle repl` (through a pipe and through a real terminal in tmux),
//! `bottle completions` and `bottle man`. `bottle lsp` has its own file
//! (tests/lsp.rs).

use assert_cmd::Command;
use std::path::Path;
use std::time::{Duration, Instant};

fn bottle() -> Command {
    let mut cmd = Command::cargo_bin("bottle").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BOTTLE_PATH")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(60));
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Three bottles with five problems between them (one a throw in a field,
/// one a whole bottle that throws), and a file with a syntax error.
const BROKEN: &str = r#"let lib = import <bottle/lib.bottle>; in
{
  a = lib.bottle { name = "a"; agent.command = [ "sh" ]; image.busybox = true; cpus = 999; agent.usr = "x"; };
  b = { name = "B b"; agent.command = [ "sh" ]; image.busybox = true; memory = throw "no memory for b"; };
  c = throw "c is broken";
  d = lib.bottle { name = "d"; agent.command = [ "sh" ]; image.busybox = true; };
}
"#;

#[test]
fn check_reports_every_problem_of_every_bottle_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.bottle", BROKEN);
    let syntax = write(dir.path(), "syntax.bottle", "{ x = ; }\n");
    let out = bottle()
        .arg("check")
        .arg(&broken)
        .arg(&syntax)
        .arg("examples/minimal.bottle")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "cpus 999 is out of range",
        "unknown field `usr`",
        "did you mean `user`?",
        "`B b` is not a valid bottle name",
        "no memory for b",
        "c is broken",
        "unexpected `;`",
        "examples/minimal.bottle: ok, bottle `minimal`",
        "6 problems in 3 files; nothing was built",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}

#[test]
fn check_json_gives_each_problem_with_its_kind_path_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.bottle", BROKEN);
    let out = bottle()
        .args(["check", "--json"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let file = &report["files"][0];
    let errors = file["errors"].as_array().unwrap();
    let summary: Vec<(String, String, u64)> = errors
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
                e["span"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = |kind: &str, path: &str, line: u64| {
        assert!(
            summary.contains(&(kind.into(), path.into(), line)),
            "no {kind} error at {path} line {line}: {summary:?}"
        )
    };
    expect("schema", "a.cpus", 3);
    expect("schema", "a.agent.usr", 3);
    expect("schema", "b.name", 4);
    expect("eval", "b.memory", 4);
    expect("eval", "c", 5);
    assert_eq!(errors.len(), 5, "{summary:?}");
    // The bottle that is fine is still checked; it is not among the errors.
    assert!(!summary.iter().any(|(_, p, _)| p.starts_with('d')));
    let span = &errors[0]["span"];
    assert_eq!(span["file"], broken.display().to_string());
    assert!(span["start"].as_u64().unwrap() < span["end"].as_u64().unwrap());
}

#[test]
fn check_passes_every_example_and_reads_standard_input() {
    let examples: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bottle"))
        .collect();
    let out = bottle().arg("check").args(&examples).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "part.bottle", "{ busybox = true; }");
    let recipe = r#"{ name = "piped"; agent.command = [ "sh" ]; image = import ./part.bottle; }"#;
    let out = bottle()
        .args(["check", "--json", "--stdin-path"])
        .arg(dir.path().join("recipe.bottle"))
        .arg("-")
        .write_stdin(recipe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"][0]["bottles"], serde_json::json!(["piped"]));
}

#[test]
fn repl_reads_lines_and_prints_values_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "lib.bottle",
        "{ greeting = \"hi\"; twice = x: x * 2; }",
    );
    let input = "1 + 2\n\
                 x = { a = 1; b = [ 1 2 ]; c = { d = 1; }; }\n\
                 x\n\
                 :p x\n\
                 :t x\n\
                 :l lib.bottle\n\
                 twice 21\n\
                 let\n  y = 3;\nin y * greeting\n\
                 [ 1\n2 ]\n\
                 :q\n\
                 999\n";
    let out = bottle()
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .arg("repl")
        .write_stdin(input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "3",
            "{ a = 1; b = [ ... ]; c = { ... }; }",
            "{ a = 1; b = [ 1 2 ]; c = { d = 1; }; }",
            "a set",
            "Added 2 variables from lib.bottle",
            "42",
            "[ 1 2 ]",
        ],
        "stderr:\n{stderr}"
    );
    // The multi-line `let` multiplied a string: an error, and exit 1.
    assert!(
        stderr.contains("cannot multiply") || stderr.contains("string"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1));
    // No history without a terminal.
    assert!(!dir.path().join("state/bottle/repl-history").exists());
}

/// A tmux server of the test's own (`-L`), ended when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("bottle-tools-{}", std::process::id()),
        };
        let status = std::process::Command::new("tmux")
            .args(["-L", &tmux.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "30", command])
            .status()
            .expect("tmux is installed (scripts/setup)");
        assert!(status.success());
        tmux
    }

    fn screen(&self) -> String {
        let output = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "send-keys"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait until the screen shows `text` (`count` times).
    fn wait_for(&self, text: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= count {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` never showed; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn repl_on_a_terminal_completes_names_and_attributes_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let exe = assert_cmd::cargo::cargo_bin("bottle");
    let command = format!(
        "cd '{}' && NO_COLOR=1 XDG_STATE_HOME='{}' '{}' repl; echo repl-ended; sleep 30",
        dir.path().display(),
        dir.path().join("state").display(),
        exe.display()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("bottle>", 1);
    tmux.keys(&["-l", "lib = import <bottle/lib.bottle>"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("bottle>", 2);
    // An attribute path completes one key at a time…
    tmux.keys(&["-l", "lib.fe"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for("lib.fetchers", 1);
    tmux.keys(&["-l", ".n"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for("lib.fetchers.npm", 1);
    tmux.keys(&["C-u"]);
    // …a builtin's name…
    tmux.keys(&["-l", "builtins.attrNa"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for("builtins.attrNames", 1);
    tmux.keys(&["-l", " lib"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "[ \"agents\" \"bottle\" \"egress\" \"fetchers\" \"fleet\" ]",
        1,
    );
    // …and several candidates are listed.
    tmux.keys(&["-l", "lib."]);
    tmux.keys(&["Tab", "Tab"]);
    tmux.wait_for("fleet", 2);
    tmux.keys(&["C-u"]);
    // An open bracket continues on the next line.
    tmux.keys(&["-l", "[ 1"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["-l", "2 ]"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("[ 1 2 ]", 1);
    tmux.keys(&["-l", ":q"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("repl-ended", 1);
    let history = std::fs::read_to_string(dir.path().join("state/bottle/repl-history")).unwrap();
    assert!(
        history.contains("lib = import <bottle/lib.bottle>"),
        "{history}"
    );
    assert!(history.contains("builtins.attrNames lib"), "{history}");
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = bottle().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for command in ["check", "repl", "lsp", "build", "run"] {
            assert!(script.contains(command), "{shell} completes no `{command}`");
        }
    }
    // bash can load what it is given.
    let script = bottle()
        .args(["completions", "bash"])
        .output()
        .unwrap()
        .stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bottle.bash", &String::from_utf8_lossy(&script));
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p bottle", file.display()))
        .status()
        .unwrap();
    assert!(status.success());

    let out = bottle().arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH bottle"),
        "{page}"
    );

    let mandir = dir.path().join("man1");
    let out = bottle()
        .args(["man", "--out"])
        .arg(&mandir)
        .output()
        .unwrap();
    assert!(out.status.success());
    for page in [
        "bottle.1",
        "bottle-check.1",
        "bottle-repl.1",
        "bottle-lsp.1",
        "bottle-run.1",
    ] {
        let text = std::fs::read_to_string(mandir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let check = std::fs::read_to_string(mandir.join("bottle-check.1")).unwrap();
    assert!(check.contains("stdin\\-path"), "{check}");
}

/// What a person sees from `bottle check`, pinned: every problem in recipe
/// order with its place and help, then the count.
#[test]
fn check_output_golden() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "broken.bottle", BROKEN);
    let out = bottle()
        .current_dir(dir.path())
        .env("COLUMNS", "100")
        .args(["check", "broken.bottle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "$DIR");
    insta::assert_snapshot!(stderr);
}
