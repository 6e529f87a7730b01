//! The language server (`bottle lsp`): the Language Server Protocol over
//! standard input and output, for editing recipes.
//!
//! - Diagnostics as you type: syntax and scope errors at once, from the
//!   parser; evaluation and schema errors a moment later, from
//!   `bottle check --json` run on the editor's text in a child process (so
//!   a recipe that loops or recurses away costs a killed child, not the
//!   server).
//! - Completion of schema fields inside a bottle's sets, of names in scope
//!   and builtins, and of attributes (`lib.fetchers.`).
//! - Hover docs for builtins and schema fields ([`reference`]), and for
//!   bindings, the comment written above their definition.
//! - Go to definition of `let` bindings, function arguments, attributes
//!   (through imports) and imported files.
//!
//! Questions that evaluate run on their own thread with a time limit.

pub mod analysis;
pub mod reference;

use crate::eval::SearchPathEntry;
use analysis::At;
use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionResponse, Diagnostic,
    DiagnosticSeverity, Documentation, GotoDefinitionResponse, Hover, HoverContents,
    HoverProviderCapability, Location, MarkupContent, MarkupKind, OneOf, Position,
    PublishDiagnosticsParams, Range, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, Url,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long after the last keystroke evaluation diagnostics are computed.
const SETTLE: Duration = Duration::from_millis(200);
/// How long `bottle check` may take on a document before it is killed.
const CHECK_LIMIT: Duration = Duration::from_secs(10);
/// How long a completion, hover or definition may evaluate.
const ANSWER_LIMIT: Duration = Duration::from_secs(3);

/// Serve one client on standard input and output until it exits.
pub fn serve(includes: Vec<String>) -> miette::Result<()> {
    let (connection, io_threads) = Connection::stdio();
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    };
    let caps = serde_json::to_value(capabilities).expect("capabilities serialize");
    connection
        .initialize(caps)
        .map_err(|e| miette::miette!("the editor's LSP handshake failed: {e}"))?;
    let mut server = Server {
        search_path: crate::cli::search_path(&includes),
        includes,
        docs: HashMap::new(),
        pending: HashMap::new(),
    };
    server.run(&connection)?;
    drop(connection);
    io_threads
        .join()
        .map_err(|e| miette::miette!("LSP input/output: {e}"))?;
    Ok(())
}

struct Document {
    path: PathBuf,
    text: String,
    version: i32,
    /// The diagnostics shown are syntax errors.
    syntax_shown: bool,
}

struct Server {
    includes: Vec<String>,
    search_path: Vec<SearchPathEntry>,
    docs: HashMap<Url, Document>,
    /// Documents whose evaluation diagnostics are due, and since when.
    pending: HashMap<Url, Instant>,
}

impl Server {
    fn run(&mut self, conn: &Connection) -> miette::Result<()> {
        loop {
            let message = match self.pending.values().min() {
                None => conn.receiver.recv().ok(),
                Some(since) => {
                    let wait = (*since + SETTLE).saturating_duration_since(Instant::now());
                    match conn.receiver.recv_timeout(wait) {
                        Ok(m) => Some(m),
                        Err(crossbeam_timeout) if crossbeam_timeout.is_timeout() => {
                            self.check_due(conn);
                            continue;
                        }
                        Err(_) => None,
                    }
                }
            };
            let Some(message) = message else {
                return Ok(());
            };
            match message {
                Message::Request(req) => {
                    if conn
                        .handle_shutdown(&req)
                        .map_err(|e| miette::miette!("LSP shutdown: {e}"))?
                    {
                        return Ok(());
                    }
                    let response = self.request(req);
                    let _ = conn.sender.send(Message::Response(response));
                }
                Message::Notification(n) => self.notification(conn, n),
                Message::Response(_) => {}
            }
        }
    }

    fn notification(&mut self, conn: &Connection, n: Notification) {
        use lsp_types::notification::{
            DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument,
        };
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                else {
                    return;
                };
                let doc = p.text_document;
                self.update(conn, doc.uri, doc.text, doc.version);
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                else {
                    return;
                };
                // Full sync: the last change is the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    self.update(
                        conn,
                        p.text_document.uri,
                        change.text,
                        p.text_document.version,
                    );
                }
            }
            DidCloseTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                else {
                    return;
                };
                self.docs.remove(&p.text_document.uri);
                self.pending.remove(&p.text_document.uri);
                publish(conn, p.text_document.uri, Vec::new(), None);
            }
            _ => {}
        }
    }

    /// New text: syntax diagnostics now, evaluation ones once typing settles.
    fn update(&mut self, conn: &Connection, uri: Url, text: String, version: i32) {
        let path = uri
            .to_file_path()
            .unwrap_or_else(|_| PathBuf::from(uri.path()));
        let syntax = syntax_diagnostics(&text);
        let clean = syntax.is_empty();
        // A clean parse keeps the evaluation diagnostics shown until the
        // check of the new text replaces them (no flicker while typing);
        // syntax errors shown before are cleared at once.
        let shown = self.docs.get(&uri).is_some_and(|d| d.syntax_shown);
        if !clean || shown {
            publish(conn, uri.clone(), syntax, Some(version));
        }
        self.docs.insert(
            uri.clone(),
            Document {
                path,
                text,
                version,
                syntax_shown: !clean,
            },
        );
        if clean {
            self.pending.insert(uri, Instant::now());
        } else {
            self.pending.remove(&uri);
        }
    }

    fn check_due(&mut self, conn: &Connection) {
        let now = Instant::now();
        let due: Vec<Url> = self
            .pending
            .iter()
            .filter(|(_, since)| now >= **since + SETTLE)
            .map(|(u, _)| u.clone())
            .collect();
        for uri in due {
            self.pending.remove(&uri);
            let Some(doc) = self.docs.get(&uri) else {
                continue;
            };
            let diagnostics = check_diagnostics(&self.includes, doc);
            publish(conn, uri, diagnostics, Some(doc.version));
        }
    }

    fn request(&mut self, req: Request) -> Response {
        use lsp_types::request::{Completion, GotoDefinition, HoverRequest};
        let id = req.id.clone();
        let result = match req.method.as_str() {
            Completion::METHOD => self
                .position_params(&req, |p: lsp_types::CompletionParams| {
                    p.text_document_position
                })
                .map(|(doc, offset)| {
                    let items = bounded(move |sp| complete(sp, &doc, offset), &self.search_path)
                        .unwrap_or_default();
                    serde_json::to_value(CompletionResponse::Array(items))
                }),
            HoverRequest::METHOD => self
                .position_params(&req, |p: lsp_types::HoverParams| {
                    p.text_document_position_params
                })
                .map(|(doc, offset)| {
                    let hover =
                        bounded(move |sp| hover(sp, &doc, offset), &self.search_path).flatten();
                    serde_json::to_value(hover)
                }),
            GotoDefinition::METHOD => self
                .position_params(&req, |p: lsp_types::GotoDefinitionParams| {
                    p.text_document_position_params
                })
                .map(|(doc, offset)| {
                    let place = bounded(move |sp| definition(sp, &doc, offset), &self.search_path)
                        .flatten();
                    serde_json::to_value(place.map(GotoDefinitionResponse::Scalar))
                }),
            _ => {
                return Response::new_err(
                    id,
                    lsp_server::ErrorCode::MethodNotFound as i32,
                    format!("bottle lsp does not answer `{}`", req.method),
                )
            }
        };
        match result {
            Some(Ok(value)) => Response::new_ok(id, value),
            _ => null_response(id),
        }
    }

    /// The document and byte offset a positional request is about.
    fn position_params<P: serde::de::DeserializeOwned>(
        &self,
        req: &Request,
        pick: impl FnOnce(P) -> lsp_types::TextDocumentPositionParams,
    ) -> Option<(Snapshot, usize)> {
        let params: P = serde_json::from_value(req.params.clone()).ok()?;
        let at = pick(params);
        let doc = self.docs.get(&at.text_document.uri)?;
        let offset = offset_of(&doc.text, at.position);
        Some((
            Snapshot {
                path: doc.path.clone(),
                text: doc.text.clone(),
            },
            offset,
        ))
    }
}

fn null_response(id: RequestId) -> Response {
    Response::new_ok(id, serde_json::Value::Null)
}

fn publish(conn: &Connection, uri: Url, diagnostics: Vec<Diagnostic>, version: Option<i32>) {
    use lsp_types::notification::PublishDiagnostics;
    let params = PublishDiagnosticsParams {
        uri,
        diagnostics,
        version,
    };
    let _ = conn.sender.send(Message::Notification(Notification::new(
        PublishDiagnostics::METHOD.into(),
        params,
    )));
}

/// A document's text and path, handed to a thread that answers about it.
struct Snapshot {
    path: PathBuf,
    text: String,
}

/// Run `f` on its own thread (with the evaluator's stack) for at most
/// [`ANSWER_LIMIT`]; a question whose evaluation runs away gets no answer
/// (the thread ends with its evaluation).
fn bounded<T: Send + 'static>(
    f: impl FnOnce(Vec<SearchPathEntry>) -> T + Send + 'static,
    search_path: &[SearchPathEntry],
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    let search_path = search_path.to_vec();
    std::thread::Builder::new()
        .name("lsp-answer".into())
        .stack_size(crate::eval::EVAL_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(f(search_path));
        })
        .ok()?;
    rx.recv_timeout(ANSWER_LIMIT).ok()
}

// ── positions ───────────────────────────────────────────────────────────────

/// The byte offset of an LSP position (UTF-16 columns).
pub fn offset_of(text: &str, pos: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..pos.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= pos.character as usize {
            return line_start + i;
        }
        units += c.len_utf16();
    }
    line_end
}

/// The LSP position of a byte offset.
pub fn position_of(text: &str, offset: usize) -> Position {
    let offset = analysis::floor_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = before[line_start..].chars().map(char::len_utf16).sum();
    Position::new(line as u32, character as u32)
}

fn range_of(text: &str, start: usize, end: usize) -> Range {
    Range::new(position_of(text, start), position_of(text, end))
}

// ── diagnostics ─────────────────────────────────────────────────────────────

fn diagnostic(range: Range, message: String, help: Option<&str>) -> Diagnostic {
    let message = match help {
        Some(h) => format!("{message}\nhelp: {h}"),
        None => message,
    };
    Diagnostic {
        range,
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some("bottle".into()),
        message,
        ..Diagnostic::default()
    }
}

/// Parse and scope errors, straight from the parser.
fn syntax_diagnostics(text: &str) -> Vec<Diagnostic> {
    let checked = crate::syntax::parse(crate::syntax::FileId(0), text).and_then(|expr| {
        let (names, _) = crate::eval::builtins::globals();
        crate::syntax::scope::resolve(&expr, &names)
    });
    match checked {
        Ok(()) => Vec::new(),
        Err(e) => vec![diagnostic(
            range_of(text, e.span.start as usize, e.span.end as usize),
            e.message,
            e.help.as_deref(),
        )],
    }
}

/// Evaluation and schema errors, from `bottle check --json` on the text.
fn check_diagnostics(includes: &[String], doc: &Document) -> Vec<Diagnostic> {
    let Some(report) = run_check(includes, doc) else {
        return Vec::new();
    };
    let recipe = looks_like_recipe(&doc.text);
    let mut out = Vec::new();
    let errors = report["files"][0]["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for e in errors {
        if e["kind"] == "schema" && !recipe {
            continue;
        }
        let message = e["message"].as_str().unwrap_or("error").to_string();
        let help = e["help"].as_str();
        let span = &e["span"];
        let here = span["file"].as_str().map(Path::new) == Some(doc.path.as_path());
        let diag = match (span.is_object(), here) {
            (true, true) => {
                let start = span["start"].as_u64().unwrap_or(0) as usize;
                let end = span["end"].as_u64().unwrap_or(0) as usize;
                diagnostic(range_of(&doc.text, start, end), message, help)
            }
            // In an imported file: at the top, saying where.
            (true, false) => diagnostic(
                Range::default(),
                format!(
                    "{}:{}:{}: {message}",
                    span["file"].as_str().unwrap_or("?"),
                    span["line"],
                    span["column"]
                ),
                help,
            ),
            (false, _) => diagnostic(Range::default(), message, help),
        };
        out.push(diag);
    }
    out
}

/// `bottle check --json` on the document's text, killed past [`CHECK_LIMIT`].
fn run_check(includes: &[String], doc: &Document) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().ok()?;
    let mut cmd = Command::new(exe);
    cmd.arg("check")
        .arg("--json")
        .arg("--stdin-path")
        .arg(&doc.path);
    for i in includes {
        cmd.arg("-I").arg(i);
    }
    if let Some(dir) = doc.path.parent().filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let text = doc.text.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + CHECK_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let _ = writer.join();
    let out = reader.join().ok()?;
    serde_json::from_str(&out).ok()
}

/// Whether schema errors mean anything for this file: it writes a bottle
/// (a set with `agent` or `image`) or calls `bottle`. A library file's
/// value is not a bottle and is not checked as one.
fn looks_like_recipe(text: &str) -> bool {
    fn any(e: &crate::syntax::ast::Expr) -> bool {
        use crate::syntax::ast::{ExprKind, StrPart};
        match &e.kind {
            ExprKind::Attrs(set) | ExprKind::Let(set, _) => {
                (matches!(e.kind, ExprKind::Attrs(_))
                    && (set.find("agent").is_some() || set.find("image").is_some()))
                    || set.statics.iter().any(|a| any(&a.value))
                    || set.dynamics.iter().any(|d| any(&d.value))
                    || matches!(&e.kind, ExprKind::Let(_, body) if any(body))
            }
            ExprKind::Apply { func, arg } => analysis::makes_bottle(func) || any(func) || any(arg),
            ExprKind::List(items) => items.iter().any(|i| any(i)),
            ExprKind::Select {
                target, default, ..
            } => any(target) || default.as_ref().is_some_and(|d| any(d)),
            ExprKind::Lambda(l) => any(&l.body),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => any(cond) || any(then) || any(otherwise),
            ExprKind::Assert { body, .. } => any(body),
            ExprKind::With { body, .. } => any(body),
            ExprKind::Binary(_, l, r) => any(l) || any(r),
            ExprKind::Unary(_, inner) => any(inner),
            ExprKind::Str(parts) => parts.iter().any(|p| match p {
                StrPart::Interpolation(e) => any(e),
                StrPart::Literal(_) => false,
            }),
            _ => false,
        }
    }
    crate::syntax::parse(crate::syntax::FileId(0), text).is_ok_and(|e| any(&e))
}

// ── answers ─────────────────────────────────────────────────────────────────

fn markdown(text: String) -> Documentation {
    Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value: text,
    })
}

fn builtin_markdown(name: &str) -> Option<String> {
    let (usage, doc) = reference::builtin(name)?;
    Some(format!("```nix\nbuiltins.{usage}\n```\n{doc}"))
}

fn complete(
    search_path: Vec<SearchPathEntry>,
    doc: &Snapshot,
    offset: usize,
) -> Vec<CompletionItem> {
    let Some(expr) = analysis::parse_at(&doc.text, offset) else {
        return Vec::new();
    };
    let found = analysis::look(&expr, offset);
    let field_items = |parent: &[String]| -> Vec<CompletionItem> {
        analysis::fields_under(parent)
            .into_iter()
            .map(|(name, text)| CompletionItem {
                label: name.to_string(),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some("bottle field".into()),
                documentation: Some(markdown(text.to_string())),
                ..CompletionItem::default()
            })
            .collect()
    };
    match &found.at {
        At::Key {
            field: Some(field), ..
        } => field_items(&field[..field.len() - 1]),
        At::Key { field: None, .. } => Vec::new(),
        At::Nothing => match &found.field {
            Some(field) => field_items(field),
            None => Vec::new(),
        },
        At::Select { target, keys, .. } => {
            let mut resolver = analysis::Resolver::new(search_path, &doc.path, &doc.text);
            let is_builtins = matches!(&target.kind, crate::syntax::ast::ExprKind::Var(v) if &*v.name == "builtins")
                && keys.len() == 1
                && !found.binders.iter().any(|b| &*b.name == "builtins");
            let Some(mut r) = resolver.resolve(target, &found.binders, 0) else {
                return Vec::new();
            };
            for k in &keys[..keys.len() - 1] {
                let Some(next) = resolver.select(r, k, &found.binders, 0) else {
                    return Vec::new();
                };
                r = next;
            }
            resolver
                .attributes(&r)
                .into_iter()
                .map(|(name, place)| {
                    let doc_text = if is_builtins {
                        builtin_markdown(&name)
                    } else {
                        place.as_ref().and_then(|p| place_comment(p, doc))
                    };
                    CompletionItem {
                        label: analysis::attr_name(&name),
                        kind: Some(if is_builtins {
                            CompletionItemKind::FUNCTION
                        } else {
                            CompletionItemKind::PROPERTY
                        }),
                        documentation: doc_text.map(markdown),
                        ..CompletionItem::default()
                    }
                })
                .collect()
        }
        At::Var(..) => {
            let mut items: Vec<CompletionItem> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for b in found.binders.iter().rev() {
                if seen.insert(b.name.to_string()) {
                    items.push(CompletionItem {
                        label: b.name.to_string(),
                        kind: Some(CompletionItemKind::VARIABLE),
                        documentation: comment_at(&doc.text, b.span.start as usize).map(markdown),
                        ..CompletionItem::default()
                    });
                }
            }
            // Names a `with` brings in, innermost first.
            let mut resolver = analysis::Resolver::new(search_path, &doc.path, &doc.text);
            for (scope, n) in found.withs.iter().rev() {
                let Some(r) = resolver.resolve(scope, &found.binders[..*n], 0) else {
                    continue;
                };
                for (name, place) in resolver.attributes(&r) {
                    if seen.insert(name.clone()) {
                        items.push(CompletionItem {
                            label: analysis::attr_name(&name),
                            kind: Some(CompletionItemKind::VARIABLE),
                            documentation: place
                                .as_ref()
                                .and_then(|p| place_comment(p, doc))
                                .map(markdown),
                            ..CompletionItem::default()
                        });
                    }
                }
            }
            let (globals, _) = crate::eval::builtins::globals();
            for g in globals {
                if seen.insert(g.to_string()) {
                    items.push(CompletionItem {
                        label: g.to_string(),
                        kind: Some(CompletionItemKind::FUNCTION),
                        documentation: builtin_markdown(g).map(markdown),
                        ..CompletionItem::default()
                    });
                }
            }
            items
        }
        At::Path(..) | At::SearchPath(..) => Vec::new(),
    }
}

/// The comment above a place, reading its file when it is not the document.
fn place_comment(place: &analysis::Place, doc: &Snapshot) -> Option<String> {
    if place.path == doc.path {
        return comment_at(&doc.text, place.start);
    }
    let text = std::fs::read_to_string(&place.path).ok()?;
    comment_at(&text, place.start)
}

fn comment_at(text: &str, offset: usize) -> Option<String> {
    analysis::comment_above(text, offset)
}

fn hover(search_path: Vec<SearchPathEntry>, doc: &Snapshot, offset: usize) -> Option<Hover> {
    let expr = analysis::parse_at(&doc.text, offset)?;
    let found = analysis::look(&expr, offset);
    let (text, range) = match &found.at {
        At::Var(name, span) => {
            let range = range_of(&doc.text, span.start as usize, span.end as usize);
            match found.binders.iter().rev().find(|b| b.name == *name) {
                Some(b) => {
                    let comment = comment_at(&doc.text, b.span.start as usize).unwrap_or_default();
                    (format!("`{name}`\n\n{comment}"), range)
                }
                None => match with_place(search_path, doc, &found, name) {
                    Some(place) => {
                        let comment = place_comment(&place, doc).unwrap_or_default();
                        (format!("`{name}`\n\n{comment}"), range)
                    }
                    None => (builtin_markdown(name)?, range),
                },
            }
        }
        At::Select {
            target,
            keys,
            key_span,
        } => {
            let range = range_of(&doc.text, key_span.start as usize, key_span.end as usize);
            let name = keys.last()?;
            let is_builtins = matches!(&target.kind, crate::syntax::ast::ExprKind::Var(v) if &*v.name == "builtins")
                && keys.len() == 1;
            if is_builtins {
                (builtin_markdown(name)?, range)
            } else {
                let place = attribute_place(search_path, doc, &found, target, keys)?;
                let comment = place_comment(&place, doc)?;
                (format!("`{name}`\n\n{comment}"), range)
            }
        }
        At::Key {
            span,
            field: Some(field),
            ..
        } => {
            let doc_text = reference::field(&field.join("."))?;
            (
                format!("`{}` (bottle field)\n\n{doc_text}", field.join(".")),
                range_of(&doc.text, span.start as usize, span.end as usize),
            )
        }
        At::Path(_, span) | At::SearchPath(_, span) => {
            let file = analysis::imported_file(&found.at, &doc.path, &search_path)?;
            (
                format!("`{}`", file.display()),
                range_of(&doc.text, span.start as usize, span.end as usize),
            )
        }
        At::Key { field: None, .. } | At::Nothing => return None,
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: Some(range),
    })
}

/// Where a name that no binding defines comes from: the innermost `with`
/// around it whose scope has it.
fn with_place(
    search_path: Vec<SearchPathEntry>,
    doc: &Snapshot,
    found: &analysis::Found,
    name: &str,
) -> Option<analysis::Place> {
    let mut resolver = analysis::Resolver::new(search_path, &doc.path, &doc.text);
    found.withs.iter().rev().find_map(|(scope, n)| {
        let r = resolver.resolve(scope, &found.binders[..*n], 0)?;
        resolver
            .attributes(&r)
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, place)| place)
    })
}

/// Where `target.keys…` was defined.
fn attribute_place(
    search_path: Vec<SearchPathEntry>,
    doc: &Snapshot,
    found: &analysis::Found,
    target: &crate::syntax::ast::Expr,
    keys: &[crate::syntax::ast::Name],
) -> Option<analysis::Place> {
    let mut resolver = analysis::Resolver::new(search_path, &doc.path, &doc.text);
    let mut r = resolver.resolve(target, &found.binders, 0)?;
    for k in &keys[..keys.len() - 1] {
        r = resolver.select(r, k, &found.binders, 0)?;
    }
    let last = keys.last()?;
    resolver
        .attributes(&r)
        .into_iter()
        .find(|(n, _)| n == &**last)
        .and_then(|(_, place)| place)
}

fn definition(
    search_path: Vec<SearchPathEntry>,
    doc: &Snapshot,
    offset: usize,
) -> Option<Location> {
    let expr = analysis::parse_at(&doc.text, offset)?;
    let found = analysis::look(&expr, offset);
    let place = match &found.at {
        At::Var(name, _) => match found.binders.iter().rev().find(|b| b.name == *name) {
            Some(b) => analysis::Place {
                path: doc.path.clone(),
                start: b.span.start as usize,
                end: b.span.end as usize,
            },
            None => with_place(search_path, doc, &found, name)?,
        },
        At::Select { target, keys, .. } => attribute_place(search_path, doc, &found, target, keys)?,
        At::Path(..) | At::SearchPath(..) => analysis::Place {
            path: analysis::imported_file(&found.at, &doc.path, &search_path)?,
            start: 0,
            end: 0,
        },
        At::Key { .. } | At::Nothing => return None,
    };
    let text = if place.path == doc.path {
        doc.text.clone()
    } else {
        std::fs::read_to_string(&place.path).unwrap_or_default()
    };
    Some(Location {
        uri: Url::from_file_path(&place.path).ok()?,
        range: range_of(&text, place.start, place.end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every question at every place of the examples and the stdlib (and a
    /// text with multi-byte characters) gets an answer or none, never a panic.
    #[test]
    fn answers_anywhere_never_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<PathBuf> = ["examples", "stdlib", "stdlib/agents"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bottle"))
            .collect();
        files.sort();
        let mut docs: Vec<Snapshot> = files
            .into_iter()
            .map(|path| Snapshot {
                text: std::fs::read_to_string(&path).unwrap(),
                path,
            })
            .collect();
        docs.push(Snapshot {
            path: root.join("examples/unicode.bottle"),
            text: "let é = \"ü\"; in { name = é; ag".into(),
        });
        let search_path = crate::cli::search_path(&[]);
        for doc in &docs {
            let _ = syntax_diagnostics(&doc.text);
            let _ = looks_like_recipe(&doc.text);
            let offsets: Vec<usize> = (0..=doc.text.len())
                .filter(|i| doc.text.is_char_boundary(*i))
                .step_by(13)
                .collect();
            for offset in offsets {
                let _ = complete(search_path.clone(), doc, offset);
                let _ = hover(search_path.clone(), doc, offset);
                let _ = definition(search_path.clone(), doc, offset);
                let pos = position_of(&doc.text, offset);
                assert_eq!(offset_of(&doc.text, pos), offset, "{}", doc.path.display());
            }
        }
    }
}
