//! `bottle repl`: evaluate expressions one line at a time, as `nix repl`
//! does. On a terminal it edits lines with rustyline (completion of names
//! in scope, builtins and attributes; history in the user's state
//! directory); with standard input not a terminal it reads expressions line
//! by line and prints their values, for scripts and tests.

use crate::eval::{EvalError, EvalResult, Evaluator, Thunk, Value};
use crate::syntax::ast::Expr;
use crate::syntax::{FileId, Span};
use clap::Args;
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

/// Evaluate expressions interactively.
///
/// Type an expression to see its value, `NAME = EXPR` to bind a name.
/// Commands: `:l FILE` loads a file's attributes into scope, `:p EXPR`
/// prints a value completely, `:t EXPR` its type, `:?` help, `:q` quits.
/// With standard input not a terminal, each line (or each complete
/// multi-line expression) is evaluated and its value printed.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle repl\n  bottle repl examples/fleet.bottle\n  echo '1 + 2' | bottle repl"
)]
pub struct ReplArgs {
    /// Files to load first, as with `:l FILE`.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Add to the search path for `<...>` lookups: `DIR` or `PREFIX=DIR`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
}

const HELP: &str = "\
Type an expression to print its value; NAME = EXPR binds NAME.
  :l FILE   load FILE; a set's attributes come into scope (also :load)
  :p EXPR   print EXPR's value completely (also :print)
  :t EXPR   print EXPR's type (also :type)
  :?        this help (also :help)
  :q        quit (also :quit, or Ctrl-D)
Tab completes names in scope, builtins and attributes (`lib.fetchers.<TAB>`).";

const NOWHERE: Span = Span {
    file: FileId(u32::MAX),
    start: 0,
    end: 0,
};

pub fn run(args: ReplArgs) -> miette::Result<ExitCode> {
    let search_path = super::search_path(&args.include);
    let interactive = std::io::stdin().is_terminal();
    crate::eval::run_with_stack(move || {
        let session = Rc::new(RefCell::new(Session::new(search_path)));
        let mut failed = false;
        for file in &args.files {
            let out = session.borrow_mut().load(file);
            failed |= show(out);
        }
        if interactive {
            interactive_loop(session)?;
            Ok(ExitCode::SUCCESS)
        } else {
            failed |= script_loop(&session);
            Ok(if failed {
                ExitCode::from(super::EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            })
        }
    })
}

/// What one input line did.
pub enum Outcome {
    /// A value or a message for standard output.
    Print(String),
    Error(miette::Report),
    Nothing,
    Quit,
}

/// Print an outcome; true if it was an error.
fn show(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Print(text) => {
            let _ = writeln!(std::io::stdout(), "{text}");
            false
        }
        Outcome::Error(report) => {
            crate::diagnostics::print(report);
            true
        }
        Outcome::Nothing | Outcome::Quit => false,
    }
}

/// Lines from a pipe: each complete input evaluated in turn; an
/// incomplete one (an open bracket) continues on the next line.
fn script_loop(session: &Rc<RefCell<Session>>) -> bool {
    let mut failed = false;
    let mut pending = String::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if incomplete(&pending) {
            continue;
        }
        let input = std::mem::take(&mut pending);
        match session.borrow_mut().handle(&input) {
            Outcome::Quit => return failed,
            other => failed |= show(other),
        }
    }
    if !pending.trim().is_empty() {
        failed |= show(session.borrow_mut().handle(&pending));
    }
    failed
}

fn interactive_loop(session: Rc<RefCell<Session>>) -> miette::Result<()> {
    use rustyline::error::ReadlineError;
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::with_config(config).map_err(|e| {
            miette::miette!(
                help = "pipe expressions in instead: `echo '1 + 2' | bottle repl`",
                "cannot set up the terminal: {e}"
            )
        })?;
    editor.set_helper(Some(ReplHelper {
        session: session.clone(),
    }));
    let history = history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!("bottle repl; :? for help, :q to quit");
    loop {
        match editor.readline("bottle> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                if let Some(path) = &history {
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = editor.save_history(path);
                }
                let outcome = session.borrow_mut().handle(&line);
                if let Outcome::Quit = outcome {
                    break;
                }
                show(outcome);
            }
            // Ctrl-C drops the line, as shells do.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(miette::miette!("reading a line: {e}")),
        }
    }
    Ok(())
}

/// `$XDG_STATE_HOME/bottle/repl-history`, else `~/.local/state/bottle/repl-history`.
pub fn history_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("bottle/repl-history"))
}

/// True when `text` is the start of an expression that goes on: it fails
/// to parse only at its very end (an open bracket, a `let` without `in`).
pub fn incomplete(text: &str) -> bool {
    let body = match binding(text) {
        Some((_, body)) => body,
        None if text.trim_start().starts_with(':') => return false,
        None => text,
    };
    if body.trim().is_empty() {
        return false;
    }
    match crate::syntax::parse(FileId(u32::MAX), body) {
        Ok(_) => false,
        Err(e) => e.span.start as usize >= body.trim_end().len(),
    }
}

/// `NAME = EXPR` (not `==`): the name and the expression.
fn binding(text: &str) -> Option<(&str, &str)> {
    let t = text.trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-')))
        .unwrap_or(t.len());
    let (name, rest) = t.split_at(end);
    let first = name.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?;
    if rest.starts_with('=') {
        return None;
    }
    Some((name, rest))
}

/// The REPL's state: an evaluator and the names bound so far, which form
/// one frame with the builtins' top-level names (later names shadow).
pub struct Session {
    pub ev: Evaluator,
    names: Vec<Rc<str>>,
    values: Vec<Thunk>,
    global_names: Vec<&'static str>,
    global_slots: Vec<Thunk>,
}

impl Session {
    pub fn new(search_path: Vec<crate::eval::SearchPathEntry>) -> Session {
        let (global_names, env) = crate::eval::builtins::globals();
        let global_slots = env.slots.borrow().to_vec();
        Session {
            ev: Evaluator::new(search_path),
            names: Vec::new(),
            values: Vec::new(),
            global_names,
            global_slots,
        }
    }

    /// Every name in scope: the top-level builtins and the bound names.
    pub fn scope_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .global_names
            .iter()
            .map(|n| n.to_string())
            .chain(self.names.iter().map(|n| n.to_string()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn frame(&self) -> (Vec<&str>, Rc<crate::eval::Env>) {
        let names = self
            .global_names
            .iter()
            .copied()
            .chain(self.names.iter().map(|n| &**n))
            .collect();
        let slots = self
            .global_slots
            .iter()
            .chain(self.values.iter())
            .cloned()
            .collect();
        let env = Rc::new(crate::eval::Env {
            slots: RefCell::new(slots),
            with: None,
            parent: None,
        });
        (names, env)
    }

    /// Parse `text` in the REPL's scope; relative paths resolve against the
    /// current directory.
    fn parse(&mut self, text: &str) -> EvalResult<(Rc<Expr>, Rc<crate::eval::Env>)> {
        let file = self.ev.sources.add("«repl»".into(), None, text.into());
        let expr = crate::syntax::parse(file, text)?;
        let (names, env) = self.frame();
        crate::syntax::scope::resolve(&expr, &names)?;
        Ok((Rc::new(expr), env))
    }

    pub fn eval(&mut self, text: &str) -> EvalResult<Value> {
        let (expr, env) = self.parse(text)?;
        self.ev.eval(&expr, &env)
    }

    fn bind(&mut self, name: &str, value: Thunk) {
        // A name bound again replaces the old one, as in `nix repl`.
        if let Some(i) = self.names.iter().position(|n| &**n == name) {
            self.names.remove(i);
            self.values.remove(i);
        }
        self.names.push(name.into());
        self.values.push(value);
    }

    /// `:l FILE`: evaluate FILE (calling it if it is a function with
    /// defaults); a set's attributes come into scope.
    pub fn load(&mut self, path: &Path) -> Outcome {
        let loaded = self.ev.eval_file(path).and_then(|v| self.ev.auto_call(v));
        match loaded {
            Ok(Value::Attrs(attrs)) => {
                for a in attrs.iter() {
                    self.bind(&a.name, a.value.clone());
                }
                Outcome::Print(format!(
                    "Added {} variables from {}",
                    attrs.len(),
                    path.display()
                ))
            }
            Ok(other) => Outcome::Error(miette::miette!(
                help = "bind it to a name instead: `NAME = import ./file.bottle`",
                "`{}` is {}, not an attribute set: nothing to add to the scope",
                path.display(),
                other.describe()
            )),
            Err(e) => Outcome::Error(self.report(&e)),
        }
    }

    fn report(&self, e: &EvalError) -> miette::Report {
        crate::diagnostics::eval_report(&self.ev.sources, e)
    }

    /// Run one input: a command, a binding or an expression.
    pub fn handle(&mut self, input: &str) -> Outcome {
        let line = input.trim();
        if line.is_empty() {
            return Outcome::Nothing;
        }
        if let Some(command) = line.strip_prefix(':') {
            let (word, rest) = command
                .split_once(char::is_whitespace)
                .map_or((command, ""), |(w, r)| (w, r.trim()));
            let needs = |what: &str| {
                Outcome::Error(miette::miette!(
                    help = "type :? for the commands",
                    ":{word} needs {what}"
                ))
            };
            return match word {
                "q" | "quit" => Outcome::Quit,
                "?" | "help" => Outcome::Print(HELP.into()),
                "l" | "load" if rest.is_empty() => needs("a file"),
                "l" | "load" => self.load(Path::new(rest)),
                "p" | "print" if rest.is_empty() => needs("an expression"),
                "p" | "print" => self.strict(rest),
                "t" | "type" if rest.is_empty() => needs("an expression"),
                "t" | "type" => match self.eval(rest) {
                    Ok(v) => Outcome::Print(v.describe().into()),
                    Err(e) => Outcome::Error(self.report(&e)),
                },
                _ => Outcome::Error(miette::miette!(
                    help = "type :? for the commands",
                    "unknown command `:{word}`"
                )),
            };
        }
        if let Some((name, body)) = binding(line) {
            return match self.parse(body) {
                Ok((expr, env)) => {
                    self.bind(name, Thunk::new(expr, env));
                    Outcome::Nothing
                }
                Err(e) => Outcome::Error(self.report(&e)),
            };
        }
        match self.eval(line).and_then(|v| self.shallow(&v)) {
            Ok(text) => Outcome::Print(text),
            Err(e) => Outcome::Error(self.report(&e)),
        }
    }

    /// `:p`: the value forced completely, in Nix syntax.
    fn strict(&mut self, text: &str) -> Outcome {
        let printed = self.eval(text).and_then(|v| {
            let mut out = String::new();
            self.ev.to_nix(&v, NOWHERE, &mut out)?;
            Ok(out)
        });
        match printed {
            Ok(text) => Outcome::Print(text),
            Err(e) => Outcome::Error(self.report(&e)),
        }
    }

    /// A value as `nix repl` shows it: the value and its direct parts are
    /// forced, deeper sets and lists are `{ ... }` and `[ ... ]`.
    fn shallow(&mut self, v: &Value) -> EvalResult<String> {
        let mut out = String::new();
        match v {
            Value::Attrs(attrs) => {
                out.push('{');
                for a in attrs.iter() {
                    out.push(' ');
                    out.push_str(&crate::lsp::analysis::attr_name(&a.name));
                    out.push_str(" = ");
                    out.push_str(&self.part(&a.value));
                    out.push(';');
                }
                out.push_str(" }");
            }
            Value::List(items) => {
                out.push('[');
                for t in items.iter() {
                    out.push(' ');
                    out.push_str(&self.part(t));
                }
                out.push_str(" ]");
            }
            _ => self.ev.to_nix(v, NOWHERE, &mut out)?,
        }
        Ok(out)
    }

    fn part(&mut self, t: &Thunk) -> String {
        match self.ev.force(t) {
            Ok(Value::Attrs(a)) if a.is_empty() => "{ }".into(),
            Ok(Value::Attrs(_)) => "{ ... }".into(),
            Ok(Value::List(l)) if l.is_empty() => "[ ]".into(),
            Ok(Value::List(_)) => "[ ... ]".into(),
            Ok(v) => {
                let mut out = String::new();
                match self.ev.to_nix(&v, NOWHERE, &mut out) {
                    Ok(()) => out,
                    Err(e) => format!("«error: {}»", e.message()),
                }
            }
            Err(e) => format!("«error: {}»", e.message()),
        }
    }

    /// Completions of the word that ends at `pos`: attributes after a dot
    /// (`lib.fetchers.np`), else names in scope, else REPL commands.
    pub fn complete(&mut self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-' | '.' | ':' | '?'))
            })
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if start == 0 && word.starts_with(':') {
            let commands = [
                ":l", ":load", ":p", ":print", ":t", ":type", ":q", ":quit", ":?", ":help",
            ];
            return (
                0,
                commands
                    .iter()
                    .filter(|c| c.starts_with(word))
                    .map(|c| c.to_string())
                    .collect(),
            );
        }
        let word = word.trim_start_matches(':');
        let start = pos - word.len();
        match word.rsplit_once('.') {
            Some((target, partial)) => {
                let Ok(Value::Attrs(attrs)) = self.eval(target) else {
                    return (start, Vec::new());
                };
                let from = pos - partial.len();
                let names = attrs
                    .names()
                    .filter(|n| n.starts_with(partial))
                    .map(crate::lsp::analysis::attr_name)
                    .collect();
                (from, names)
            }
            None => (
                start,
                self.scope_names()
                    .into_iter()
                    .filter(|n| n.starts_with(word))
                    .collect(),
            ),
        }
    }
}

/// rustyline's view of the session: completion and multi-line input.
struct ReplHelper {
    session: Rc<RefCell<Session>>,
}

impl rustyline::completion::Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.session.borrow_mut().complete(line, pos))
    }
}

impl rustyline::hint::Hinter for ReplHelper {
    type Hint = String;
}

impl rustyline::highlight::Highlighter for ReplHelper {}

impl rustyline::validate::Validator for ReplHelper {
    fn validate(
        &self,
        ctx: &mut rustyline::validate::ValidationContext<'_>,
    ) -> rustyline::Result<rustyline::validate::ValidationResult> {
        Ok(if incomplete(ctx.input()) {
            rustyline::validate::ValidationResult::Incomplete
        } else {
            rustyline::validate::ValidationResult::Valid(None)
        })
    }
}

impl rustyline::Helper for ReplHelper {}
