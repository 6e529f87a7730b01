//! The store end to end from typed bottles (written as JSON): builds are
//! cached, reproducible, atomic under concurrency, verifiable and collectable,
//! and the rendered configs parse with the tools' own rules.

use bottle::schema::Bottle;
use bottle::store::{Status, Store};
use serde_json::json;
use std::fs;
use std::sync::Arc;

fn claude_like() -> serde_json::Value {
    json!({
        "name": "claude",
        "agent": { "command": ["claude", "--dangerously-skip-permissions"], "env": { "ANTHROPIC_API_KEY": "bottle-placeholder" } },
        "image": { "oci": "docker.io/library/node:22-slim" },
        "cpus": 4,
        "memory": 4096,
        "env": { "TERM": "xterm-256color" },
        "secrets": { "anthropic": { "env": "ANTHROPIC_API_KEY" } },
        "egress": { "routes": [
            { "host": "api.anthropic.com", "ports": [443], "inspect": true, "methods": ["GET", "POST"], "paths": ["/v1/*"],
              "headers": [ { "name": "x-api-key", "secret": "anthropic" } ] },
            { "host": "registry.npmjs.org", "ports": [443] },
            { "host": "*.github.com", "ports": [443, 80] }
        ] },
        "git": { "origin": { "url": "https://github.com/example/repo.git", "push": ["refs/heads/agent/*"] } },
        "sidecars": { "supervise": true },
        "files": { "/home/agent/.claude/settings.json": { "text": "{\"theme\": \"dark\"}\n" } }
    })
}

/// A bottle in the typed (serde) form: lowering is tested for every feature,
/// including those the checker refuses until `bottle run` realizes them.
fn bottle(v: serde_json::Value) -> Bottle {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn build(
    store: &Store,
    b: &Bottle,
) -> (Arc<bottle::store::Derivation>, bottle::store::BuildReport) {
    let drv = bottle::lower::lower(b);
    let report = store
        .build(std::slice::from_ref(&drv), &bottle::lower::render)
        .unwrap();
    (drv, report)
}

#[test]
fn build_then_rebuild_is_all_cache_hits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let b = bottle(claude_like());
    let (drv, first) = build(&store, &b);
    assert_eq!(
        first.with(Status::Built).count(),
        7,
        "smolfile, gvproxy, ports, egress, git-gate, one file, bottle"
    );
    let (_, second) = build(&store, &b);
    assert_eq!(second.with(Status::Built).count(), 0);
    assert_eq!(second.with(Status::Cached).count(), 7);

    let out = store.path_of(&drv);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "claude");
    let ports: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("ports.json")).unwrap()).unwrap();
    assert_eq!(ports, json!({ "egress": 3128, "git-gate": 3129 }));
    for link in [
        "smolfile.toml",
        "gvproxy.yaml",
        "ports.json",
        "egress.yaml",
        "git-gate.toml",
    ] {
        assert!(fs::read(out.join(link)).is_ok(), "{link} does not resolve");
        assert!(
            fs::read_link(out.join(link)).unwrap().starts_with(".."),
            "links are relative"
        );
    }
    assert!(store.verify().unwrap().problems.is_empty());
}

/// The derivation a recipe expression makes, through the evaluator (whose
/// registry maps a string's context back to derivations).
fn derivation_of(expr: &str) -> Arc<bottle::store::Derivation> {
    let mut ev = bottle::eval::Evaluator::new(Vec::new());
    let v = ev
        .eval_source("test", expr)
        .unwrap_or_else(|e| panic!("{}", e.message()));
    match bottle::schema::Node::from_value(&mut ev, &v, None)
        .unwrap_or_else(|e| panic!("{}", e.message()))
        .value
    {
        bottle::schema::NodeValue::Derivation(d) => d,
        other => panic!("not a derivation: {other:?}"),
    }
}

#[test]
fn derivations_a_bottle_mentions_are_built_and_in_its_guest_store() {
    let run = derivation_of(
        r##"let helper = builtins.writeText "helper.sh" "echo helping\n"; in
           builtins.writeText "run.sh" "#!/bin/sh\n. ${helper}\n""##,
    );
    let mut b = bottle(json!({
        "name": "composed",
        "agent": { "command": ["sh", run.guest_path()] },
        "image": "busybox",
    }));
    b.refs = vec![run.clone()];
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let (drv, _) = build(&store, &b);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(store.path_of(&drv).join("manifest.json")).unwrap())
            .unwrap();
    let mut guest_store: Vec<&str> = manifest["guest_store"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    guest_store.sort();
    let helper = run.deps()[0].store_name();
    let run_name = run.store_name();
    let mut expected = vec![helper.as_str(), run_name.as_str()];
    expected.sort();
    assert_eq!(
        guest_store, expected,
        "a file mentioned by another is in the guest too"
    );
    let text = fs::read_to_string(store.path_of(&run)).unwrap();
    assert!(text.contains(&format!("/bottle/store/{helper}")), "{text}");
}

#[test]
fn the_smolfile_parses_with_smolvms_own_parser() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (drv, _) = build(&store, &bottle(claude_like()));
    let text = fs::read_to_string(store.path_of(&drv).join("smolfile.toml")).unwrap();
    let smol = smolfile::parse(&text).unwrap_or_else(|e| panic!("smolvm rejects it: {e}\n{text}"));
    assert_eq!(
        smol.image.as_deref(),
        Some("docker.io/library/node:22-slim")
    );
    assert_eq!(
        smol.entrypoint,
        ["claude", "--dangerously-skip-permissions"]
    );
    assert_eq!(smol.cpus, Some(4));
    assert_eq!(smol.memory, Some(4096));
    assert_eq!(smol.net_backend.as_deref(), Some("virtio-net"));
    assert!(smol
        .env
        .contains(&"HTTPS_PROXY=http://proxy.internal:3128".to_string()));
    assert!(smol.env.contains(&"TERM=xterm-256color".to_string()));
    let network = smol.network.expect("egress hosts are listed");
    assert!(network
        .allow_host_patterns
        .contains(&"*.github.com".to_string()));
}

/// gvproxy's config-file schema (`GvproxyConfig` and `types.Configuration`
/// in containers/gvisor-tap-vsock), field by field, as yaml tags.
const GVPROXY_TOP: &[&str] = &[
    "listen",
    "log-level",
    "stack",
    "interfaces",
    "forwards",
    "pid-file",
    "log-file",
    "services",
    "ec2-metadata-access",
    "notification",
];
const GVPROXY_STACK: &[&str] = &[
    "debug",
    "capture-file",
    "mtu",
    "subnet",
    "gatewayIP",
    "gatewayMacAddress",
    "dns",
    "dnsSearchDomains",
    "forwards",
    "nat",
    "gatewayVirtualIPs",
    "dhcpStaticLeases",
    "vpnKitUUIDMacAddresses",
    "ec2MetadataAccess",
    "blockAllOutbound",
];
const GVPROXY_ZONE: &[&str] = &["name", "records", "defaultIP"];
const GVPROXY_RECORD: &[&str] = &["name", "ip", "regexp"];

fn keys(v: &serde_yaml::Value) -> Vec<String> {
    v.as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn gvproxy_yaml_matches_gvproxys_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (drv, _) = build(&store, &bottle(claude_like()));
    let text = fs::read_to_string(store.path_of(&drv).join("gvproxy.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for k in keys(&doc) {
        assert!(
            GVPROXY_TOP.contains(&k.as_str()),
            "gvproxy has no top-level field {k}"
        );
    }
    let stack = &doc["stack"];
    for k in keys(stack) {
        assert!(
            GVPROXY_STACK.contains(&k.as_str()),
            "gvproxy's stack has no field {k}"
        );
    }
    for zone in stack["dns"].as_sequence().unwrap() {
        keys(zone)
            .iter()
            .for_each(|k| assert!(GVPROXY_ZONE.contains(&k.as_str()), "zone field {k}"));
        for record in zone["records"].as_sequence().unwrap() {
            keys(record)
                .iter()
                .for_each(|k| assert!(GVPROXY_RECORD.contains(&k.as_str()), "record field {k}"));
        }
    }
    let subnet = stack["subnet"].as_str().unwrap();
    let prefix = subnet.strip_suffix(".0/24").unwrap();
    assert_eq!(stack["gatewayIP"].as_str().unwrap(), format!("{prefix}.1"));
    assert_eq!(stack["dns"][0]["name"], "internal.");
    assert_eq!(stack["dns"][0]["records"][0]["name"], "proxy");
    assert_eq!(
        stack["dns"][0]["records"][0]["ip"].as_str().unwrap(),
        format!("{prefix}.254")
    );
    assert!(stack["dhcpStaticLeases"][format!("{prefix}.2").as_str()].is_string());
}

#[test]
fn egress_yaml_follows_the_sidecar_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (drv, _) = build(&store, &bottle(claude_like()));
    let doc: serde_yaml::Value =
        serde_yaml::from_slice(&fs::read(store.path_of(&drv).join("egress.yaml")).unwrap())
            .unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["bottle"], "claude");
    let api = &doc["routes"][0];
    assert_eq!(api["host"], "api.anthropic.com");
    assert_eq!(api["ports"][0], 443);
    assert_eq!(api["inspect"], true);
    assert_eq!(api["headers"][0]["name"], "x-api-key");
    assert_eq!(api["headers"][0]["secret"], "anthropic");
    assert_eq!(doc["secrets"]["anthropic"]["env"], "ANTHROPIC_API_KEY");
    assert!(
        doc["routes"][1].get("methods").is_none(),
        "absent optional fields stay absent"
    );
}

#[test]
fn a_changed_route_changes_only_what_depends_on_it() {
    let a = bottle::lower::lower(&bottle(claude_like()));
    let mut v = claude_like();
    v["egress"]["routes"][1]["host"] = json!("registry.yarnpkg.com");
    let b = bottle::lower::lower(&bottle(v));
    let names = |d: &Arc<bottle::store::Derivation>| -> std::collections::BTreeMap<String, String> {
        d.closure()
            .iter()
            .map(|d| (d.name().to_string(), d.hash().to_string()))
            .collect()
    };
    let (na, nb) = (names(&a), names(&b));
    let changed: Vec<&String> = na.keys().filter(|k| na[*k] != nb[*k]).collect();
    assert_eq!(changed, ["claude", "egress.yaml", "smolfile.toml"]);
}

#[test]
fn eight_concurrent_builds_make_one_path_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let b = bottle(claude_like());
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let store = Store::open(&root).unwrap();
                    let (drv, _) = build(&store, &b);
                    store.path_of(&drv)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    let store = Store::open(&root).unwrap();
    assert!(store.verify().unwrap().problems.is_empty());
    assert!(
        fs::read_dir(root.join(".tmp")).unwrap().next().is_none(),
        "no temporary left behind"
    );
}

#[test]
fn verify_finds_tampering_and_gc_keeps_only_rooted_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let (kept, _) = build(&store, &bottle(claude_like()));
    let mut other = claude_like();
    other["name"] = json!("other");
    let (dropped, _) = build(&store, &bottle(other));

    let link = dir.path().join("result");
    store.link_result(&link, &store.path_of(&kept)).unwrap();

    // Tamper with one output of the dropped bottle.
    let egress = store.path_of(&dropped).join("egress.yaml");
    let target = fs::canonicalize(&egress).unwrap();
    fs::remove_file(&target).unwrap();
    fs::write(&target, "routes: [{host: evil.example}]\n").unwrap();
    let problems = store.verify().unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].to_string().starts_with("tampered:"));

    let report = store.gc().unwrap();
    assert!(report.removed.iter().any(|n| n.ends_with("-other")));
    assert!(store.path_of(&kept).exists());
    assert!(!store.path_of(&dropped).exists());
    for d in kept.closure() {
        assert!(
            store.path_of(&d).exists(),
            "{} was collected though rooted",
            d.name()
        );
    }
    assert!(store.verify().unwrap().problems.is_empty());

    // Removing the result link lets the bottle go.
    fs::remove_file(&link).unwrap();
    let report = store.gc().unwrap();
    assert_eq!(report.stale_roots.len(), 1);
    assert!(!store.path_of(&kept).exists());
}

#[test]
fn a_killed_build_leaves_no_visible_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // What a build killed between writing and renaming leaves: a temporary.
    fs::create_dir(
        dir.path()
            .join(".tmp/0000000000000000000000000000000-x.999999.0"),
    )
    .unwrap();
    let problems = store.verify().unwrap().problems;
    assert!(
        matches!(
            problems.as_slice(),
            [bottle::store::Problem::Partial { .. }]
        ),
        "{problems:?}"
    );
    assert_eq!(store.gc().unwrap().partial, 1);
    assert!(store.verify().unwrap().problems.is_empty());
}
