//! Golden diagnostics: what a user sees for each kind of recipe error.
//! Each case runs the real `bottle eval` and pins its stderr (colour off).

use std::process::Command;

fn eval_error(name: &str, source: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{name}.bottle"));
    std::fs::write(&file, source).expect("write recipe");
    let out = Command::new(env!("CARGO_BIN_EXE_bottle"))
        .arg("eval")
        .arg(&file)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .current_dir(dir.path())
        .output()
        .expect("run bottle");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a recipe error exits 1; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    stderr.replace(&dir.path().display().to_string(), "$DIR")
}

macro_rules! golden {
    ($name:ident, $src:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(eval_error(stringify!($name), $src));
        }
    };
}

golden!(syntax_missing_semicolon, "{\n  a = 1\n  b = 2;\n}\n");
golden!(syntax_let_without_in, "let x = 1;\nx\n");
golden!(syntax_unclosed_string, "{ a = \"abc; }\n");
golden!(undefined_variable_suggests, "let memory = 512; in memroy\n");
golden!(
    missing_attribute_suggests,
    "let cfg = { cpus = 2; memory = 512; }; in cfg.memroy\n"
);
golden!(type_error_names_both_types, "let n = \"2\"; in 1 + n\n");
golden!(
    type_error_in_builtin_shows_origin,
    "let xs = { a = 1; }; in builtins.length xs\n"
);
golden!(infinite_recursion, "let a = b; b = a; in a\n");
golden!(throw_with_trace, "let check = x: if x > 2 then throw \"too many cpus: ${toString x}\" else x;\nin map check [ 1 2 3 ]\n");
golden!(assert_failed, "let cpus = 0; in assert cpus > 0; cpus\n");
golden!(abort_message, "abort \"recipe is not finished\"\n");
golden!(
    duplicate_attribute,
    "{\n  name = \"a\";\n  name = \"b\";\n}\n"
);
golden!(
    unexpected_argument,
    "let f = { cpus, memory }: cpus; in f { cpus = 1; memroy = 2; }\n"
);
golden!(
    missing_argument,
    "let f = { cpus, memory }: cpus; in f { cpus = 1; }\n"
);
golden!(integer_overflow, "9223372036854775807 + 1\n");
golden!(division_by_zero, "let d = 0; in 10 / d\n");
golden!(runaway_recursion, "let f = x: f (x + 1); in f 0\n");
golden!(call_non_function, "let x = 3; in x 4\n");
golden!(import_missing_file, "import ./missing.bottle\n");
