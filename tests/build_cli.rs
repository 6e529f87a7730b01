//! `bottle build` and friends, run as the real binary on real recipes:
//! reproducible hashes and bytes, secrets kept out of the store, concurrent
//! and interrupted builds, golden hashes of the examples, and diagnostics.

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn bottle() -> Command {
    let mut cmd = Command::cargo_bin("bottle").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BOTTLE_STORE")
        .env_remove("BOTTLE_PATH")
        .env("NO_COLOR", "1")
        // The claude-code example's Debian tree and npm package are fetched
        // once for all tests (see docs/store.md, BOTTLE_CACHE).
        .env(
            "BOTTLE_CACHE",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/bottle-cache"),
        )
        .timeout(std::time::Duration::from_secs(900));
    cmd
}

fn build_json(recipe: &Path, store: &Path, extra: &[&str]) -> serde_json::Value {
    let out = bottle()
        .arg("build")
        .arg(recipe)
        .arg("--json")
        .arg("--store")
        .arg(store)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file under a store path (following the bottle's links), by relative name → bytes.
fn contents(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = if rel.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            path.join(&rel)
        };
        // A link that leads nowhere on the host (an image tree's absolute
        // links) is compared by its target; the bottle's own links are followed.
        if fs::metadata(&full).is_err() {
            let target = fs::read_link(&full).unwrap();
            out.insert(
                rel.display().to_string(),
                target.as_os_str().as_encoded_bytes().to_vec(),
            );
        } else if full.is_dir() {
            for e in fs::read_dir(&full).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        } else {
            // By hash: root images are hundreds of megabytes.
            let hash = blake3::hash(&fs::read(&full).unwrap());
            out.insert(rel.display().to_string(), hash.as_bytes().to_vec());
        }
    }
    out
}

fn base(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// tests/recipes/model-api.bottle with attributes reordered, different
/// whitespace and comments.
const MODEL_API_REORDERED: &str = r#"
# Same bottle, written differently.
let   lib = import <bottle/lib.bottle> ;
    e = lib.egress;
in lib.bottle {
  egress.routes = e.anthropic ++ e.npm ++ e.pypi ++ e.crates-io ++ e.github-readonly;
  secrets = { anthropic = builtins.secret { env = "ANTHROPIC_API_KEY"; }; };
  env.TERM = "xterm-256color";
  memory = 4096; cpus = 4;   /* order of keys is irrelevant */
  agent = { env.ANTHROPIC_API_KEY = "bottle-injects-this-on-egress"; command = [ "sh" ]; };
  image.busybox = true;
  name = "model-api";
}
"#;

#[test]
fn same_recipe_same_hashes_and_bytes_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let reordered = dir.path().join("reordered.bottle");
    fs::write(&reordered, MODEL_API_REORDERED).unwrap();

    let a_store = dir.path().join("a/store");
    let a = build_json(Path::new("tests/recipes/model-api.bottle"), &a_store, &[]);

    let b_store = dir.path().join("elsewhere/b-store");
    let out = bottle()
        .args(["build", "--json"])
        .arg(&reordered)
        .env("HOME", dir.path().join("other-home"))
        .env("XDG_DATA_HOME", dir.path().join("xdg-data"))
        .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
        .env("ANTHROPIC_API_KEY", "a-different-value")
        .env("TERM", "dumb")
        .env("LANG", "C")
        .env("BOTTLE_STORE", &b_store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(
        base(a["path"].as_str().unwrap()),
        base(b["path"].as_str().unwrap())
    );
    let names = |v: &serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v["built"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| base(p.as_str().unwrap()))
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&a), names(&b));
    assert_eq!(names(&a).len(), 5);
    // The stdlib's presets make a policy the egress sidecar accepts.
    let egress = Path::new(a["outputs"]["egress.yaml"].as_str().unwrap());
    bottle::sidecar::egress::policy::Policy::load(egress).unwrap();
    for name in names(&a) {
        assert_eq!(
            contents(&a_store.join(&name)),
            contents(&b_store.join(&name)),
            "{name} differs"
        );
    }
}

#[test]
fn a_secrets_value_never_reaches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let value = format!("sk-ant-test-{}", std::process::id());
    let out = bottle()
        .args(["build", "tests/recipes/model-api.bottle", "--store"])
        .arg(&store)
        .env("ANTHROPIC_API_KEY", &value)
        .env("OPENAI_API_KEY_HEADER", &value)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&value));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&value));
    let mut checked = 0;
    let mut stack = vec![store.clone()];
    while let Some(p) = stack.pop() {
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            let bytes = fs::read(&p).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&value),
                "{} holds the secret",
                p.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 14,
        "outputs and records were checked ({checked})"
    );
    // The reference is there: the egress policy knows where to read it.
    let egress = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-egress.yaml"))
        .unwrap();
    assert!(fs::read_to_string(egress)
        .unwrap()
        .contains("env: ANTHROPIC_API_KEY"));
}

#[test]
fn eight_concurrent_processes_build_one_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let bin = assert_cmd::cargo::cargo_bin("bottle");
    let children: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(&bin)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "examples/fleet.bottle", "--store"])
                .arg(&store)
                .env(
                    "BOTTLE_CACHE",
                    concat!(env!("CARGO_TARGET_TMPDIR"), "/bottle-cache"),
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            o.stdout, outputs[0].stdout,
            "every build names the same paths"
        );
    }
    let verify = bottle()
        .args(["store", "verify", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_killed_build_leaves_only_whole_paths() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("fleet.bottle");
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.bottle"))
            .unwrap();
    fs::write(&recipe, text.replace("count = 12;", "count = 60;")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("bottle");
    // Kill as soon as the first path appears, and a little later: both midway.
    for (round, extra_ms) in [0u64, 20].into_iter().enumerate() {
        let store = dir.path().join(format!("store-{round}"));
        let mut child = std::process::Command::new(&bin)
            .args(["build"])
            .arg(&recipe)
            .arg("--store")
            .arg(&store)
            .env(
                "BOTTLE_CACHE",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/bottle-cache"),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let started = || {
            fs::read_dir(&store)
                .map(|d| {
                    d.flatten()
                        .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
                })
                .unwrap_or(false)
        };
        while !started()
            && std::time::Instant::now() < deadline
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(extra_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the build finished before it could be killed"
        );

        // Whatever is visible is whole: only leftovers in .tmp/ may be reported.
        let out = bottle()
            .args(["store", "verify", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        for line in report.lines() {
            assert!(line.starts_with("partial: .tmp/"), "round {round}: {line}");
        }
        // A rebuild completes it, and gc clears the debris.
        bottle()
            .arg("build")
            .arg(&recipe)
            .arg("--store")
            .arg(&store)
            .assert()
            .success();
        bottle()
            .arg("gc")
            .arg("--store")
            .arg(&store)
            .assert()
            .success();
        bottle()
            .args(["store", "verify", "--store"])
            .arg(&store)
            .assert()
            .success();
    }
}

#[test]
fn examples_have_golden_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for example in ["minimal", "fleet"] {
        let out = bottle()
            .args(["build", "--dry-run", "--json", "--store"])
            .arg(dir.path())
            .arg(format!("examples/{example}.bottle"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let results = if v.is_array() {
            v.as_array().unwrap().clone()
        } else {
            vec![v]
        };
        for r in results {
            lines.push(format!("{example}: {}", base(r["path"].as_str().unwrap())));
        }
    }
    insta::assert_snapshot!("example-hashes", lines.join("\n"));
}

#[test]
fn result_links_are_gc_roots_and_show_derivation_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let link = dir.path().join("result");
    bottle()
        .args(["build", "examples/minimal.bottle", "-o"])
        .arg(&link)
        .arg("--store")
        .arg(&store)
        .assert()
        .success();
    bottle()
        .args(["build", "tests/recipes/model-api.bottle", "--store"])
        .arg(&store)
        .assert()
        .success();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(link.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "minimal");

    let out = bottle()
        .args(["show-derivation"])
        .arg(&link)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (name, record) = shown.as_object().unwrap().iter().next().unwrap();
    assert!(name.ends_with("-minimal"));
    assert_eq!(record["kind"], "bottle");

    bottle()
        .arg("gc")
        .arg("--store")
        .arg(&store)
        .assert()
        .success();
    assert!(
        link.join("manifest.json").exists(),
        "the linked bottle survives gc"
    );
    let left: Vec<String> = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|n| n.ends_with("-model-api")),
        "the unrooted bottle is collected"
    );
}

#[test]
#[ignore = "bottle run cannot place store paths mentioned in text in the guest yet, so the checker refuses them (src/schema/unrealized.rs); un-ignore when that line goes"]
fn file_derivations_compose_through_string_context() {
    let dir = tempfile::tempdir().unwrap();
    let v = build_json(Path::new("tests/recipes/files.bottle"), dir.path(), &[]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(Path::new(v["path"].as_str().unwrap()).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let guest_store: Vec<&str> = manifest["guest_store"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        guest_store.iter().any(|n| n.ends_with("-helper.sh")),
        "a file mentioned by another file is in the guest"
    );
    assert!(guest_store.iter().any(|n| n.ends_with("-run.sh")));
    let run = manifest["files"]["/home/agent/run.sh"].as_str().unwrap();
    let text = fs::read_to_string(dir.path().join(run)).unwrap();
    let helper = guest_store
        .iter()
        .find(|n| n.ends_with("-helper.sh"))
        .unwrap();
    assert!(text.contains(&format!("/bottle/store/{helper}")), "{text}");
    let toml = manifest["files"]["/home/agent/tool.toml"].as_str().unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join(toml)).unwrap(),
        "size = 3\ntheme = \"dark\"\n"
    );
    let note = manifest["files"]["/etc/note"].as_str().unwrap();
    assert!(
        note.ends_with("-note"),
        "a host file is copied by content: {note}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join(note)).unwrap(),
        "a note from the host\n"
    );
    let smolfile: toml::Value = toml::from_str(
        &fs::read_to_string(Path::new(v["path"].as_str().unwrap()).join("smolfile.toml")).unwrap(),
    )
    .unwrap();
    let command = &smolfile["entrypoint"];
    assert_eq!(
        command[1].as_str().unwrap(),
        format!(
            "/bottle/store/{}",
            guest_store.iter().find(|n| n.ends_with("-run.sh")).unwrap()
        )
    );
}

#[test]
fn bad_recipes_get_diagnostics_at_their_spans() {
    for name in [
        "unknown-field",
        "inline-secret",
        "dead-route",
        "header-secret",
        "wrong-type",
        "not-yet",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = bottle()
            .args(["build", "--store"])
            .arg(dir.path())
            .arg(format!("tests/recipes/{name}.bottle"))
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains("ghp_this_would"),
            "a diagnostic never echoes a secret, not even its source line"
        );
        let stderr = stderr.replace(env!("CARGO_MANIFEST_DIR"), "[root]");
        insta::assert_snapshot!(format!("diagnostic-{name}"), stderr);
        assert!(
            fs::read_dir(dir.path())
                .map(|d| d
                    .filter_map(|e| e.ok())
                    .all(|e| e.file_name().to_string_lossy().starts_with('.')))
                .unwrap_or(true),
            "nothing is built from a bad recipe"
        );
    }
}
