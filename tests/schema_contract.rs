//! The contract between `bottle build` and `bottle run`, field by field:
//! every field the checker accepts either makes a bottle that `bottle run`
//! on this version realizes, or is refused by `bottle build` with a
//! diagnostic. Never "builds, then fails at run".
//!
//! The table below has a case for every field path the checker knows
//! (`bottle::schema::field_paths`), so a new field fails this test until it
//! says which side it is on. A feature listed in `schema/unrealized.rs` has a
//! refused case with that table's message; when the feature is realized and
//! its line deleted there, its case here turns into `Runs`.
//!
//! `Runs` is checked against the realizer short of a boot (the plan it reads
//! from the stored outputs, the image it assembles, the policy the egress
//! sidecar loads, the git gate's mirrors fetched), and once for real: one
//! bottle setting every field that runs, at the smallest VM the checker
//! allows, booted with `bottle run`. That bottle has one image (busybox:
//! the other kinds are alternatives, booted in tests/images.rs) and no git
//! remotes (the guest's checkout needs git, which busybox lacks; the gate
//! is booted in tests/git_gate.rs).

use assert_cmd::Command;
use bottle::lower::bottle::{Manifest, ManifestImage};
use bottle::realize::{Plan, SidecarKind};
use bottle::sidecar::egress::policy::Policy;
use bottle::sidecar::git_gate::{GateOptions, GitGate};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug)]
enum Outcome {
    /// `bottle build` succeeds and the realizer accepts what it stored.
    Runs,
    /// `bottle build` fails, and its diagnostic says this.
    Refused(&'static str),
}
use Outcome::{Refused, Runs};

struct Case {
    /// The field paths (as `field_paths` spells them) this case sets.
    fields: &'static [&'static str],
    /// Attribute lines added to the base bottle.
    set: &'static str,
    outcome: Outcome,
}

/// The base every case extends: the smallest bottle that runs. A case that
/// sets `image` replaces the base's.
const BASE: &str = r#"name = "contract"; agent.command = [ "sh" "-c" "true" ];"#;
const BASE_IMAGE: &str = "image.busybox = true;";

const CASES: &[Case] = &[
    Case {
        fields: &["name", "agent.command", "image.busybox"],
        set: "",
        outcome: Runs,
    },
    Case {
        fields: &["agent.user"],
        set: r#"agent.user = "dev";"#,
        outcome: Runs,
    },
    Case {
        fields: &["agent.workdir"],
        set: r#"agent.workdir = "/home/dev/src";"#,
        outcome: Runs,
    },
    Case {
        fields: &["agent.env", "env"],
        set: r#"agent.env.MODE = "review"; env = { LANG = "C.UTF-8"; DEBUG = true; JOBS = 2; };"#,
        outcome: Runs,
    },
    Case {
        fields: &["agent.env"],
        set: r#"agent.env.SCRIPT = "${builtins.writeText "run.sh" "true"}";"#,
        outcome: Refused("this mentions a derivation, whose output this version of `bottle run` cannot place in the guest yet"),
    },
    Case {
        fields: &["cpus"],
        set: "cpus = 1;",
        outcome: Runs,
    },
    Case {
        fields: &["cpus"],
        set: "cpus = 0;",
        outcome: Refused("cpus 0 is out of range"),
    },
    Case {
        fields: &["memory"],
        set: "memory = 128;",
        outcome: Runs,
    },
    Case {
        fields: &["memory"],
        set: "memory = 127;",
        outcome: Refused("127 MiB is less memory than bottle's guest needs to boot"),
    },
    Case {
        fields: &["image.oci"],
        set: r#"image.oci = "docker.io/library/alpine:3";"#,
        outcome: Refused("an OCI image named by tag alone is not pinned, so bottle does not pull it"),
    },
    Case {
        fields: &["image.oci"],
        set: r#"image = "docker.io/library/alpine:3";"#,
        outcome: Refused("an OCI image named by tag alone is not pinned, so bottle does not pull it"),
    },
    // A reference pinned by digest runs too, but is pulled from a registry at
    // build time; tests/images.rs covers that with a registry on loopback.
    Case {
        fields: &["image.dir"],
        set: r#"image.dir = ./rootfs; files."/etc/motd" = "hello\n";"#,
        outcome: Runs,
    },
    Case {
        fields: &["image.dir"],
        set: "image.dir = ./no-such-rootfs;",
        outcome: Refused("no-such-rootfs: No such file or directory"),
    },
    Case {
        fields: &["image.oci-layout", "image.tag"],
        set: r#"image = { oci-layout = ./layout; tag = "t"; };"#,
        outcome: Runs,
    },
    Case {
        fields: &["image.oci-archive"],
        set: "image.oci-archive = ./image.tar;",
        outcome: Runs,
    },
    Case {
        fields: &["image.oci-archive"],
        set: "image.oci-archive = ./layout;",
        outcome: Refused("is not an OCI archive (a tar file)"),
    },
    // A Debian image runs, but building one runs mmdebstrap against the
    // mirror (network, minutes); tests/images.rs boots one. Here the
    // checker's diagnostic for a name that is no package stands in.
    Case {
        fields: &[
            "image.debian.suite",
            "image.debian.packages",
            "image.debian.mirror",
        ],
        set: r#"image.debian = { suite = "bookworm"; packages = [ "git" "no such package" ]; mirror = "http://deb.debian.org/debian"; };"#,
        outcome: Refused("`no such package` is not a Debian suite or package name"),
    },
    Case {
        fields: &["secrets.<name>.env", "secrets.<name>.type"],
        set: r#"secrets.key = builtins.secret { env = "CONTRACT_KEY"; };"#,
        outcome: Runs,
    },
    Case {
        fields: &["secrets.<name>.file"],
        set: r#"secrets.key = builtins.secret { file = "/run/keys/contract"; };"#,
        outcome: Runs,
    },
    Case {
        fields: &[
            "egress.routes[].host",
            "egress.routes[].ports",
            "egress.routes[].inspect",
            "egress.routes[].methods",
            "egress.routes[].paths",
            "egress.routes[].headers[].name",
            "egress.routes[].headers[].secret",
        ],
        set: r#"
          secrets.key = builtins.secret { env = "CONTRACT_KEY"; };
          egress.routes = [ {
            host = "api.example.com"; ports = [ 443 8443 ]; inspect = true;
            methods = [ "GET" "POST" ]; paths = [ "/v1/*" ];
            headers = [ { name = "x-api-key"; secret = "key"; } ];
          } ];"#,
        outcome: Runs,
    },
    Case {
        fields: &["egress.routes[].host", "egress.routes[].addresses"],
        set: r#"egress.routes = [
            { host = "*.example.com"; }
            { host = "git.internal.example"; ports = [ 80 ]; addresses = [ "10.1.2.3" ]; }
            { host = "10.9.8.7"; ports = [ 8080 ]; }
          ];"#,
        outcome: Runs,
    },
    Case {
        fields: &["egress.default"],
        set: r#"egress.default = "ask";"#,
        outcome: Runs,
    },
    Case {
        fields: &["egress.default"],
        set: r#"egress.default = "allow";"#,
        outcome: Refused("is not a default for undeclared hosts"),
    },
    Case {
        fields: &["egress.routes[].approve"],
        set: r#"egress.routes = [ { host = "registry.npmjs.org"; approve = true; } ];"#,
        outcome: Runs,
    },
    Case {
        fields: &["egress.routes[].host"],
        set: r#"egress.routes = [ { host = "API.example.com"; } ];"#,
        outcome: Refused("has capital letters"),
    },
    Case {
        fields: &[
            "git.<remote>.url",
            "git.<remote>.fetch",
            "git.<remote>.push",
            "git.<remote>.force",
            "git.<remote>.delete",
            "git.<remote>.push-ask",
            "git.<remote>.checkout",
            "git.<remote>.credentials",
            "git.<remote>.username",
            "git.user.name",
            "git.user.email",
        ],
        set: r#"git.origin = {
            url = ./upstream; fetch = [ "refs/heads/*" ]; push = [ "refs/heads/agent/*" ];
            force = true; delete = true; push-ask = true; checkout = "main";
            credentials = builtins.secret { file = "/dev/null"; }; username = "contract";
          };
          git.user = { name = "Contract"; email = "contract@example.com"; };"#,
        outcome: Runs,
    },
    Case {
        fields: &["git.<remote>.url", "git.<remote>.fetch"],
        set: r#"git.origin.url = ./upstream; git.mirror = { url = ./upstream; fetch = false; };"#,
        outcome: Runs,
    },
    Case {
        fields: &["git.<remote>.url"],
        set: r#"git.origin.url = "git@github.com:example/project.git";"#,
        outcome: Refused("is not a git remote the gate can reach"),
    },
    Case {
        fields: &["sidecars.supervise"],
        set: "sidecars.supervise = false;",
        outcome: Runs,
    },
    Case {
        fields: &["sidecars.supervise"],
        set: "sidecars.supervise = true;",
        outcome: Runs,
    },
    Case {
        fields: &["sidecars.egress"],
        set: "sidecars.egress = true;",
        outcome: Runs,
    },
    Case {
        fields: &["sidecars.egress"],
        set: "sidecars.egress = false;",
        outcome: Refused("the egress sidecar cannot be turned off"),
    },
    Case {
        fields: &["sidecars.git-gate"],
        set: "sidecars.git-gate = true;",
        outcome: Refused("the git gate runs exactly when `git` names remotes"),
    },
    Case {
        fields: &["files"],
        set: r#"files."/etc/motd" = "hello\n";"#,
        outcome: Runs,
    },
    Case {
        fields: &["type"],
        set: r#"type = "bottle";"#,
        outcome: Runs,
    },
];

fn recipe(case: &Case) -> String {
    let image = if case.set.trim_start().starts_with("image") {
        ""
    } else {
        BASE_IMAGE
    };
    format!("{{ {BASE} {image} {} }}\n", case.set)
}

/// What the realizer says of a built bottle, short of booting it: the plan
/// it reads from the stored outputs (with that plan's own checks), the root
/// it assembles (busybox, with the bottle's files) or the erofs root image
/// bottle built, the egress policy as the sidecar loads it, and the git
/// gate's mirrors, created and fetched from their upstreams as at the start
/// of a run.
fn realizer_accepts(store: &Path, bottle_dir: &Path) -> Result<(), String> {
    let plan = Plan::load(store, bottle_dir).map_err(|e| format!("{e:?}"))?;
    let manifest = Manifest::load(bottle_dir).map_err(|e| format!("{e:?}"))?;
    match &plan.image {
        ManifestImage::Busybox => {
            let root = tempfile::tempdir().unwrap();
            bottle::realize::image::busybox_rootfs(root.path(), &plan.user)
                .and_then(|()| {
                    bottle::realize::image::place_files(root.path(), store, &manifest.files)
                })
                .map_err(|e| format!("{e:?}"))?;
        }
        ManifestImage::Root(name) => {
            // The disk `bottle run` attaches: an erofs image (its superblock
            // magic, little-endian, at byte 1024).
            let bytes = std::fs::read(store.join(name)).map_err(|e| format!("{name}: {e}"))?;
            if bytes.get(1024..1028) != Some(&0xE0F5_E1E2u32.to_le_bytes()[..]) {
                return Err(format!("the root image {name} is not an erofs image"));
            }
        }
        other => return Err(format!("bottle run cannot assemble {other:?}")),
    }
    let policy = manifest
        .output(store, "egress.yaml")
        .ok_or("the bottle has no egress policy")?;
    Policy::load(&policy).map_err(|e| format!("{e:?}"))?;
    for sidecar in &plan.sidecars {
        if let SidecarKind::GitGate { gate, .. } = &sidecar.kind {
            let state = tempfile::tempdir().unwrap();
            let options = GateOptions {
                state_dir: state.path().join("git-gate"),
                audit: state.path().join("git-gate-audit.jsonl"),
                hook_program: assert_cmd::cargo::cargo_bin("bottle"),
                ask: None,
            };
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(GitGate::prepare(gate, options))
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    Ok(())
}

/// What the cases' paths name, written beside their recipes: a small root
/// tree (`./rootfs`), a repository with a commit on `main` (`./upstream`),
/// and an OCI image made with umoci, as a layout (`./layout`, tag `t`) and
/// packed into an archive by skopeo (`./image.tar`).
fn write_fixtures(dir: &Path) {
    let script = r#"set -e
mkdir -p rootfs/etc rootfs/bin
echo contract > rootfs/etc/hostname
git init --quiet -b main upstream
echo hello > upstream/README
git -C upstream add README
git -C upstream -c user.name=t -c user.email=t@example.com commit --quiet -m init
umoci init --layout layout
umoci new --image layout:t
skopeo --insecure-policy copy --quiet oci:layout:t oci-archive:image.tar
"#;
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cannot write the fixtures: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A diagnostic's text with miette's line wrapping undone.
fn unwrapped(report: &str) -> String {
    report
        .lines()
        .map(|l| l.trim_start().trim_start_matches('│').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_field_runs_or_is_refused_at_build_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_fixtures(dir.path());
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let file = dir.path().join(format!("case-{i}.bottle"));
        std::fs::write(&file, recipe(case)).unwrap();
        let out = Command::cargo_bin("bottle")
            .unwrap()
            .args(["build", "--json", "--store"])
            .arg(&store)
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("case {i} ({}): {}", case.fields.join(", "), case.set.trim());
        match (&case.outcome, out.status.success()) {
            (Runs, true) => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let path = Path::new(v["path"].as_str().unwrap());
                if let Err(why) = realizer_accepts(&store, path) {
                    failures.push(format!(
                        "{what}\n  builds, but bottle run refuses it: {why}"
                    ));
                }
            }
            (Runs, false) => failures.push(format!("{what}\n  should build:\n{stderr}")),
            (Refused(message), false) => {
                if !unwrapped(&stderr).contains(message) || !stderr.contains("help:") {
                    failures.push(format!(
                        "{what}\n  refused, but not with `{message}` and a help line:\n{stderr}"
                    ));
                }
                if out.status.code() != Some(1) {
                    failures.push(format!("{what}\n  exit code {:?}", out.status.code()));
                }
            }
            (Refused(message), true) => {
                failures.push(format!("{what}\n  built, but should be refused: {message}"))
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_table_covers_every_field_the_checker_accepts() {
    let covered: BTreeSet<&str> = CASES
        .iter()
        .flat_map(|c| c.fields.iter().copied())
        .collect();
    let known: BTreeSet<String> = bottle::schema::field_paths().into_iter().collect();
    let missing: Vec<&String> = known
        .iter()
        .filter(|f| !covered.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "fields with no case (does each run, or is it refused at build time?): {missing:?}"
    );
    let stale: Vec<&&str> = covered.iter().filter(|f| !known.contains(**f)).collect();
    assert!(
        stale.is_empty(),
        "cases for fields the checker does not know: {stale:?}"
    );
}

#[test]
fn every_feature_not_yet_realized_has_a_refused_case() {
    for not_yet in bottle::schema::unrealized::NOT_YET_REALIZED {
        assert!(
            CASES
                .iter()
                .any(|c| matches!(c.outcome, Refused(m) if not_yet.message.contains(m))),
            "no case shows {:?} refused",
            not_yet.feature
        );
    }
}

/// Every field whose case `Runs`, at once, at the minimum cpus and memory.
const EVERYTHING_THAT_RUNS: &str = r#"{
  name = "contract-all";
  image.busybox = true;
  agent.command = [ "sh" "-c" "echo user=$(id -un) pwd=$(pwd) mode=$MODE lang=$LANG motd=$(cat /etc/motd)" ];
  agent.user = "dev";
  agent.workdir = "/home/dev/src";
  agent.env.MODE = "review";
  env.LANG = "C.UTF-8";
  cpus = 1;
  memory = 128;
  secrets.key = builtins.secret { env = "CONTRACT_KEY"; };
  secrets.deploy = builtins.secret { file = "/dev/null"; };
  egress.routes = [
    { host = "api.example.com"; ports = [ 443 8443 ]; inspect = true; methods = [ "GET" ];
      paths = [ "/v1/*" ]; headers = [ { name = "x-api-key"; secret = "key"; } ]; }
    { host = "*.example.org"; }
    { host = "git.internal.example"; ports = [ 80 ]; addresses = [ "10.1.2.3" ]; }
    { host = "10.9.8.7"; ports = [ 8080 ]; }
  ];
  sidecars = { supervise = false; egress = true; };
  files."/etc/motd" = "hello\n";
  type = "bottle";
}
"#;

/// A real boot (qemu under TCG here, a few seconds; needs the kit that
/// `scripts/setup` installs).
#[test]
fn a_bottle_with_every_field_that_runs_boots_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("all.bottle");
    std::fs::write(&recipe, EVERYTHING_THAT_RUNS).unwrap();
    let out = Command::cargo_bin("bottle")
        .unwrap()
        .arg("run")
        .arg(&recipe)
        .arg("--store")
        .arg(dir.path().join("store"))
        .env("BOTTLE_RUNTIME_DIR", dir.path().join("runs"))
        .env("CONTRACT_KEY", "contract-test-key")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("user=dev pwd=/home/dev/src mode=review lang=C.UTF-8 motd=hello"),
        "{stdout}"
    );
}
