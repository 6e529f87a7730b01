//! `bottle check`: evaluate recipes and check every bottle in them against
//! the schema, reporting every problem of every file at once; nothing is
//! built. `--json` gives the same findings to scripts (and to `bottle lsp`,
//! which runs it on the text being edited).

use crate::eval::{EvalError, Evaluator, Value};
use crate::schema::{CheckError, Node, SetChecker};
use crate::syntax::{SourceMap, Span};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Check recipes without building anything: every evaluation and schema
/// error of every bottle, in every file given.
///
/// Exits 0 when every file is a valid recipe, 1 when any has a problem.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle check examples/*.bottle\n  bottle check examples/fleet.bottle -A reviewer-3\n  bottle check --json recipe.bottle | jq '.files[].errors[].message'\n  cat recipe.bottle | bottle check --stdin-path recipe.bottle -"
)]
pub struct CheckArgs {
    /// The recipe files; `-` reads one from standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Check only this attribute path of each recipe, e.g. `-A dev`.
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attr: Option<String>,
    /// Print the findings as JSON (one object; `ok` is true when all passed).
    #[arg(long)]
    pub json: bool,
    /// With `-`: the path the text on standard input stands for, which
    /// relative paths in it resolve against [default: ./stdin.bottle].
    #[arg(long, value_name = "PATH")]
    pub stdin_path: Option<PathBuf>,
    /// Add to the search path for `<...>` lookups: `DIR` or `PREFIX=DIR`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
}

/// What went wrong: the syntax, the evaluation, or the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    Syntax,
    Eval,
    Schema,
}

/// One finding of a file.
pub struct Problem {
    pub kind: ProblemKind,
    /// The report as a person sees it.
    pub report: miette::Report,
    pub message: String,
    pub help: Option<String>,
    /// The attribute path of the value (schema errors), e.g. `dev.agent.user`.
    pub path: String,
    pub span: Option<Span>,
}

/// The findings of one file.
pub struct FileFindings {
    pub file: String,
    /// The names of the bottles that passed.
    pub bottles: Vec<String>,
    pub problems: Vec<Problem>,
}

pub fn run(args: CheckArgs) -> miette::Result<ExitCode> {
    let search_path = super::search_path(&args.include);
    let stdin_text = if args.files.iter().any(|f| f.as_os_str() == "-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
            miette::miette!(
                help = "pipe a recipe in, or give a file",
                "cannot read standard input: {e}"
            )
        })?;
        Some(text)
    } else {
        None
    };
    let CheckArgs {
        files,
        attr,
        json,
        stdin_path,
        ..
    } = args;
    crate::eval::run_with_stack(move || {
        let mut ev = Evaluator::new(search_path);
        let mut found = Vec::new();
        for file in &files {
            let input = if file.as_os_str() == "-" {
                let path = stdin_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("stdin.bottle"));
                Input::Text(path, stdin_text.clone().unwrap_or_default())
            } else {
                Input::File(file.clone())
            };
            found.push(check_input(&mut ev, input, attr.as_deref()));
        }
        let failed = found.iter().any(|f| !f.problems.is_empty());
        if json {
            let value = findings_json(&ev.sources, &found);
            use std::io::Write;
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&value).expect("JSON values serialize")
            );
        } else {
            print_findings(found);
        }
        std::mem::forget(ev);
        Ok(if failed {
            ExitCode::from(super::EXIT_FAILURE)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// A recipe on disk, or text standing for a path (from stdin, or an editor).
pub enum Input {
    File(PathBuf),
    Text(PathBuf, String),
}

/// Evaluate one recipe and check it, leniently: an error in one bottle (or
/// one field of it) does not hide the others.
pub fn check_input(ev: &mut Evaluator, input: Input, attr: Option<&str>) -> FileFindings {
    let name = match &input {
        Input::File(p) | Input::Text(p, _) => p.display().to_string(),
    };
    let mut out = FileFindings {
        file: name,
        bottles: Vec::new(),
        problems: Vec::new(),
    };
    let value = match top_value(ev, input, attr) {
        Ok(v) => v,
        Err((kind, e)) => {
            out.problems.push(eval_problem(&ev.sources, kind, &e));
            return out;
        }
    };
    let mut failed = crate::schema::node::Failures::default();
    let checked = match &value {
        // A set of bottles, as `bottle build` reads it.
        Value::Attrs(attrs) if !attrs.is_empty() && attrs.get("name").is_none() => {
            let mut set = SetChecker::default();
            for a in attrs.iter() {
                let at = match attr {
                    Some(prefix) => format!("{prefix}.{}", a.name),
                    None => a.name.to_string(),
                };
                match ev.force(&a.value) {
                    Ok(v) => {
                        let node = Node::from_value_lenient(ev, &v, a.span, &at, &mut failed);
                        set.add(&at, &node);
                    }
                    Err(e) => failed.errors.push((at, e)),
                }
            }
            set.finish()
        }
        _ => {
            let node = Node::from_value_lenient(ev, &value, None, "", &mut failed);
            crate::schema::check_all(&node, None)
        }
    };
    for (at, e) in &failed.errors {
        let mut problem = eval_problem(&ev.sources, ProblemKind::Eval, e);
        problem.path = at.clone();
        out.problems.push(problem);
    }
    match checked {
        Ok(bottles) => out.bottles = bottles.into_iter().map(|b| b.name).collect(),
        Err(errors) => {
            let errors: Vec<CheckError> = errors
                .into_iter()
                // Said better by the evaluation error at the same place.
                .filter(|e| !e.message.ends_with(crate::schema::node::FAILED))
                .collect();
            for e in errors {
                out.problems.push(Problem {
                    kind: ProblemKind::Schema,
                    report: e.report(&ev.sources),
                    message: e.to_string(),
                    help: e.help.clone(),
                    path: e.path.clone(),
                    // A secret's place is given by line and column only.
                    span: e.span.filter(|_| !e.sensitive),
                });
            }
        }
    }
    // In the order they appear in the recipe, as a reader goes through it.
    out.problems
        .sort_by_key(|p| p.span.map_or((u32::MAX, u32::MAX), |s| (s.file.0, s.start)));
    out
}

/// The recipe's value (auto-called, `-A` selected). Syntax and scope errors
/// are told apart from evaluation errors here, where the text is parsed.
fn top_value(
    ev: &mut Evaluator,
    input: Input,
    attr: Option<&str>,
) -> Result<Value, (ProblemKind, EvalError)> {
    let (path, text) = match input {
        Input::File(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                let nowhere = Span::new(crate::syntax::FileId(u32::MAX), 0, 0);
                let err =
                    EvalError::fatal(format!("cannot read `{}`: {e}", path.display()), nowhere)
                        .with_help("check the file name");
                (ProblemKind::Eval, err)
            })?;
            (path, text)
        }
        Input::Text(path, text) => (path, text),
    };
    let abs = std::path::absolute(&path).unwrap_or(path);
    let syntax = |e: crate::syntax::SyntaxError| (ProblemKind::Syntax, EvalError::from(e));
    let file = ev
        .sources
        .add(abs.display().to_string(), Some(abs), text.as_str().into());
    let expr = crate::syntax::parse(file, &text).map_err(syntax)?;
    let (names, _) = crate::eval::builtins::globals();
    crate::syntax::scope::resolve(&expr, &names).map_err(syntax)?;
    let eval = |e| (ProblemKind::Eval, e);
    let env = ev.globals().clone();
    let value = ev.eval(&expr, &env).map_err(eval)?;
    let mut value = ev.auto_call(value).map_err(eval)?;
    if let Some(attr) = attr {
        value = ev.select_path(value, attr).map_err(eval)?;
        value = ev.auto_call(value).map_err(eval)?;
    }
    Ok(value)
}

fn eval_problem(sources: &SourceMap, kind: ProblemKind, e: &EvalError) -> Problem {
    Problem {
        kind,
        report: crate::diagnostics::eval_report(sources, e),
        message: e.message(),
        help: e.inner().help.clone(),
        path: String::new(),
        span: Some(e.span()).filter(|s| s.file.0 != u32::MAX),
    }
}

fn print_findings(found: Vec<FileFindings>) {
    let files = found.len();
    let mut problems = 0;
    for f in found {
        if f.problems.is_empty() {
            let n = f.bottles.len();
            let what = if n == 1 {
                format!("bottle `{}`", f.bottles[0])
            } else {
                format!("{n} bottles")
            };
            eprintln!("{}: ok, {what}", f.file);
            continue;
        }
        problems += f.problems.len();
        for p in f.problems {
            crate::diagnostics::print(p.report);
        }
    }
    if problems > 0 {
        let s = if problems == 1 { "" } else { "s" };
        let in_files = if files == 1 {
            String::new()
        } else {
            format!(" in {files} files")
        };
        eprintln!("{problems} problem{s}{in_files}; nothing was built");
    }
}

/// The findings as JSON: `{ ok, files: [ { file, ok, bottles, errors } ] }`,
/// each error with its kind, message, help, attribute path and place.
pub fn findings_json(sources: &SourceMap, found: &[FileFindings]) -> serde_json::Value {
    let files: Vec<serde_json::Value> = found
        .iter()
        .map(|f| {
            let errors: Vec<serde_json::Value> = f
                .problems
                .iter()
                .map(|p| problem_json(sources, p))
                .collect();
            serde_json::json!({
                "file": f.file,
                "ok": f.problems.is_empty(),
                "bottles": f.bottles,
                "errors": errors,
            })
        })
        .collect();
    serde_json::json!({
        "ok": found.iter().all(|f| f.problems.is_empty()),
        "files": files,
    })
}

fn problem_json(sources: &SourceMap, p: &Problem) -> serde_json::Value {
    let kind = match p.kind {
        ProblemKind::Syntax => "syntax",
        ProblemKind::Eval => "eval",
        ProblemKind::Schema => "schema",
    };
    let place = p.span.map(|s| {
        let src = sources.get(s.file);
        let (line, column) = src.line_col(s.start);
        let (end_line, end_column) = src.line_col(s.end);
        serde_json::json!({
            "file": src.path.as_deref().map_or_else(|| src.name.clone(), |p: &Path| p.display().to_string()),
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "start": s.start,
            "end": s.end,
        })
    });
    serde_json::json!({
        "kind": kind,
        "message": p.message,
        "help": p.help,
        "path": p.path,
        "span": place,
    })
}
