//! bottle's own builtins, through the evaluator: derivations and their
//! string context, TOML/YAML rendering and parsing, and secret references.

use bottle::eval::{Evaluator, Value};

fn eval_json(expr: &str) -> Result<serde_json::Value, String> {
    let mut ev = Evaluator::new(Vec::new());
    let v = ev.eval_source("test", expr).map_err(|e| e.message())?;
    let mut out = String::new();
    let mut ctx = bottle::eval::Context::default();
    let span = bottle::syntax::Span::new(bottle::syntax::FileId(u32::MAX), 0, 0);
    ev.to_json(&v, span, &mut out, &mut ctx)
        .map_err(|e| e.message())?;
    Ok(serde_json::from_str(&out).unwrap())
}

fn eval_string(expr: &str) -> (String, Vec<String>) {
    let mut ev = Evaluator::new(Vec::new());
    match ev
        .eval_source("test", expr)
        .unwrap_or_else(|e| panic!("{}", e.message()))
    {
        Value::String(s) => (
            s.text.to_string(),
            s.context.iter().map(|p| p.to_string()).collect(),
        ),
        other => panic!("not a string: {}", other.describe()),
    }
}

#[test]
fn write_text_is_a_derivation_that_interpolates_to_its_guest_path() {
    let v = eval_json(r#"builtins.writeText "hello.txt" "hi""#).unwrap();
    assert_eq!(
        v,
        serde_json::json!(v.as_str().unwrap()),
        "toJSON of a derivation is its outPath, as in Nix"
    );
    let path = v.as_str().unwrap();
    assert!(
        path.starts_with("/bottle/store/") && path.ends_with("-hello.txt"),
        "{path}"
    );

    let (text, context) =
        eval_string(r#"let f = builtins.writeText "hello.txt" "hi"; in "run ${f} now""#);
    assert_eq!(text, format!("run {path} now"));
    assert_eq!(
        context,
        [path.to_string()],
        "interpolation records the dependency"
    );

    let attrs =
        eval_json(r#"let f = builtins.writeText "a" "x"; in { inherit (f) type name kind; }"#)
            .unwrap();
    assert_eq!(
        attrs,
        serde_json::json!({ "type": "derivation", "name": "a", "kind": "file" })
    );
}

#[test]
fn a_file_mentioning_another_depends_on_it() {
    let mut ev = Evaluator::new(Vec::new());
    let v = ev
        .eval_source(
            "test",
            r#"let inner = builtins.writeText "inner" "x"; outer = builtins.writeText "outer" "see ${inner}"; in "${outer}""#,
        )
        .unwrap_or_else(|e| panic!("{}", e.message()));
    let Value::String(s) = v else {
        panic!("not a string")
    };
    let path = s.context.iter().next().unwrap().to_string();
    let outer = ev.derivation_at(&path).unwrap();
    assert_eq!(outer.deps().len(), 1);
    assert_eq!(outer.deps()[0].name(), "inner");
    assert!(
        Evaluator::new(Vec::new()).derivation_at(&path).is_none(),
        "an evaluation's derivations belong to it, not to the process"
    );
}

#[test]
fn write_text_refuses_names_that_are_not_file_names() {
    let err = eval_json(r#"builtins.writeText "a/b" "x""#).unwrap_err();
    assert!(err.contains("cannot hold"), "{err}");
}

#[test]
fn toml_and_yaml_render_canonically_and_yaml_parses() {
    let (toml, _) = eval_string(r#"builtins.toTOML { b = 1; a = { c = "x"; }; }"#);
    assert_eq!(toml, "b = 1\n\n[a]\nc = \"x\"\n");
    let (yaml, _) = eval_string(r#"builtins.toYAML { b = [ 1 2 ]; a = true; }"#);
    assert_eq!(yaml, "a: true\nb:\n- 1\n- 2\n");
    let v = eval_json(r#"builtins.fromYAML "a: 1\nb: [x, y]\n""#).unwrap();
    assert_eq!(v, serde_json::json!({ "a": 1, "b": ["x", "y"] }));
    assert!(eval_json("builtins.toTOML [ 1 ]")
        .unwrap_err()
        .contains("needs a set"));
}

#[test]
fn secrets_are_references_with_exactly_one_source() {
    assert_eq!(
        eval_json(r#"builtins.secret { env = "API_KEY"; }"#).unwrap(),
        serde_json::json!({ "type": "secret", "env": "API_KEY" })
    );
    assert!(eval_json(r#"builtins.secret { env = "A"; file = "/x"; }"#).is_err());
    assert!(eval_json(r#"builtins.secret { file = "relative"; }"#)
        .unwrap_err()
        .contains("absolute"));
    assert!(eval_json(r#"builtins.secret { env = "not a name"; }"#).is_err());
}
