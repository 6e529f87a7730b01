//! Hash stability as properties: the hash of derivation inputs depends on
//! their content, never on the order attributes were written in; and the
//! hash a recipe gets does not depend on which evaluator produced its value
//! (bottle's own, or Nix's `nix-instantiate` as an oracle).

use bottle::store::derivation::Derivation;
use bottle::store::Kind;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9 /*.:-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The same value with every object's keys inserted in reverse order.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter().rev() {
                out.insert(k.clone(), reversed(v));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

proptest! {
    #[test]
    fn attribute_order_never_changes_a_hash(inputs in json_value()) {
        let a = Derivation::new(Kind::File, "x", inputs.clone(), []).unwrap();
        let b = Derivation::new(Kind::File, "x", reversed(&inputs), []).unwrap();
        prop_assert_eq!(a.hash(), b.hash());
    }

    #[test]
    fn different_inputs_give_different_hashes(a in json_value(), b in json_value()) {
        prop_assume!(a != b);
        let da = Derivation::new(Kind::File, "x", a, []).unwrap();
        let db = Derivation::new(Kind::File, "x", b, []).unwrap();
        prop_assert_ne!(da.hash(), db.hash());
    }
}

#[test]
fn nix_and_bottle_evaluate_minimal_to_the_same_hash() {
    let root = env!("CARGO_MANIFEST_DIR");
    let nix = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(format!("{root}/examples/minimal.bottle"))
        .output();
    let Some(nix) = nix.ok().filter(|o| o.status.success()) else {
        eprintln!("skipped: nix-instantiate is not installed (scripts/setup installs nix-bin)");
        return;
    };
    let value: Value = serde_json::from_slice(&nix.stdout).unwrap();
    let bottle = bottle::schema::check(&bottle::schema::Node::from_json(&value)).unwrap();
    let by_nix = bottle::lower::lower(&bottle).store_name();

    let out = assert_cmd::Command::cargo_bin("bottle")
        .unwrap()
        .args(["build", "--dry-run", "--json", "--store"])
        .arg(tempfile::tempdir().unwrap().path())
        .arg(format!("{root}/examples/minimal.bottle"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let built: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        built["path"].as_str().unwrap().ends_with(&by_nix),
        "{by_nix} vs {}",
        built["path"]
    );
}
