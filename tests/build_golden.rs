//! Golden files for every rendered config of a representative bottle, and its
//! pinned hashes: a change to a renderer or to the hash encoding shows up
//! here as a diff to review, never by accident.
//!
//! The bottle is written in the typed (serde) form, not checked from a
//! recipe: it uses features the checker refuses until `bottle run` realizes
//! them (OCI images, git remotes, supervise, files), and their lowering is
//! pinned here all the same.

use bottle::schema::Bottle;
use bottle::store::Store;
use serde_json::json;
use std::fs;

fn representative() -> serde_json::Value {
    json!({
        "name": "golden",
        "agent": { "command": ["claude"], "user": "dev", "workdir": "/home/dev/src", "env": { "ANTHROPIC_API_KEY": "placeholder" } },
        "image": { "oci": "docker.io/library/node:22-bookworm-slim" },
        "cpus": 2,
        "memory": 3072,
        "env": { "LANG": "C.UTF-8" },
        "secrets": { "anthropic": { "env": "ANTHROPIC_API_KEY" }, "deploy": { "file": "/run/keys/deploy" } },
        "egress": { "routes": [
            { "host": "api.anthropic.com", "ports": [443], "inspect": true, "methods": ["POST"], "paths": ["/v1/messages"],
              "headers": [ { "name": "x-api-key", "secret": "anthropic" } ] },
            { "host": "*.githubusercontent.com", "ports": [443] },
            { "host": "10.1.2.3", "ports": [8080], "addresses": ["10.1.2.3"] }
        ] },
        "git": { "origin": { "url": "https://github.com/example/repo.git", "push": ["refs/heads/agent/*"] },
                 "vendor": { "url": "https://github.com/example/vendor.git", "fetch": ["refs/heads/*", "refs/tags/*"] } },
        "sidecars": { "supervise": true },
        "files": { "/etc/motd": { "text": "hello from bottle\n" } }
    })
}

#[test]
fn rendered_configs_are_golden() {
    let bottle: Bottle = serde_json::from_value(representative()).unwrap();
    let drv = bottle::lower::lower(&bottle);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .build(std::slice::from_ref(&drv), &bottle::lower::render)
        .unwrap();
    let out = store.path_of(&drv);
    for file in [
        "smolfile.toml",
        "gvproxy.yaml",
        "ports.json",
        "egress.yaml",
        "git-gate.toml",
        "manifest.json",
    ] {
        let text = fs::read_to_string(out.join(file)).unwrap();
        insta::assert_snapshot!(file, text);
    }
    let hashes: Vec<String> = drv.closure().iter().map(|d| d.store_name()).collect();
    insta::assert_snapshot!("store-names", hashes.join("\n"));
}
