//! What `bottle run` hands qemu, gvproxy, the frame filter and the guest is a
//! pure function of the stored bottle: pinned here with golden files, and
//! shown to move only where a recipe change should move it.

use bottle::realize::gvproxy::Version;
use bottle::realize::launch::{launch, Facts};
use bottle::realize::vmm::Accel;
use bottle::realize::Plan;
use bottle::schema::{check, Node};
use bottle::store::Store;
use serde_json::{json, Value};
use std::path::Path;

/// Build `recipe` (as JSON) into a fresh store; its launch, with the store
/// directory written as `<store>`.
fn launch_of(recipe: &Value) -> Value {
    let bottle = check(&Node::from_json(recipe)).unwrap();
    let drv = bottle::lower::lower(&bottle);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .build(std::slice::from_ref(&drv), &bottle::lower::render)
        .unwrap();
    let plan = Plan::load(store.root(), &store.path_of(&drv)).unwrap();
    let facts = Facts {
        run_dir: Path::new("/run/bottle/golden"),
        kernel: Path::new("/var/lib/bottle/kit/kernel/vmlinuz"),
        accel: Accel::Tcg,
        gvproxy: Version(0, 8, 1),
        guest_params: vec!["bottle.tty=0".into()],
        ca_certificates: vec!["-----BEGIN CERTIFICATE-----".into()],
        root_disk: None,
    };
    let text = launch(&plan, &facts).describe().to_string();
    let root = store.root().display().to_string();
    serde_json::from_str(&text.replace(&root, "<store>")).unwrap()
}

fn recipe() -> Value {
    json!({
        "name": "golden",
        "image": { "busybox": true },
        "agent": { "command": ["sh", "-c", "echo hi"], "user": "dev", "workdir": "/home/dev/src", "env": { "EDITOR": "vi" } },
        "cpus": 2,
        "memory": 1024,
        "env": { "LANG": "C.UTF-8" },
        "egress": { "routes": [ { "host": "example.com", "ports": [443] } ] }
    })
}

#[test]
fn the_launch_is_golden() {
    insta::assert_yaml_snapshot!("busybox-agent", launch_of(&recipe()));
    let mut minimal =
        json!({ "name": "tiny", "image": { "busybox": true }, "agent": { "command": ["true"] } });
    minimal["memory"] = json!(128);
    insta::assert_yaml_snapshot!("defaults", launch_of(&minimal));
}

/// The top-level keys of `a` and `b` whose values differ.
fn differing(a: &Value, b: &Value) -> Vec<String> {
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    a.keys().filter(|k| a[*k] != b[*k]).cloned().collect()
}

#[test]
fn a_route_moves_only_the_egress_policy() {
    let before = launch_of(&recipe());
    let mut changed = recipe();
    changed["egress"]["routes"][0]["host"] = json!("example.org");
    let after = launch_of(&changed);
    assert_eq!(differing(&before, &after), ["sidecars"]);
    assert_ne!(
        before["sidecars"][0]["policy"],
        after["sidecars"][0]["policy"]
    );
    assert_eq!(
        before["sidecars"][0]["guest_port"],
        after["sidecars"][0]["guest_port"]
    );
}

#[test]
fn memory_moves_only_the_vmm_arguments() {
    let before = launch_of(&recipe());
    let mut changed = recipe();
    changed["memory"] = json!(2048);
    let after = launch_of(&changed);
    assert_eq!(differing(&before, &after), ["qemu"]);
    let args = |v: &Value| -> Vec<String> { serde_json::from_value(v["qemu"].clone()).unwrap() };
    let (a, b) = (args(&before), args(&after));
    let moved: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert_eq!(moved, [(&"1024M".to_string(), &"2048M".to_string())]);
}
