//! `bottle lsp` driven by an LSP client over its standard input and output,
//! as an editor drives it: initialize, open a document, diagnostics as it
//! changes, completion, hover, go to definition, shutdown and exit.

use lsp_types::notification::{
    DidChangeTextDocument, DidOpenTextDocument, Exit, Initialized, Notification, PublishDiagnostics,
};
use lsp_types::request::{Completion, GotoDefinition, HoverRequest, Initialize, Request, Shutdown};
use lsp_types::{
    CompletionResponse, Diagnostic, GotoDefinitionResponse, Hover, HoverContents, Position,
    PublishDiagnosticsParams, Url,
};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A minimal LSP client: JSON-RPC with `Content-Length` framing.
struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Notifications seen while waiting for something else.
    seen: Vec<Value>,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("bottle"))
            .arg("lsp")
            .env_remove("BOTTLE_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, incoming) = channel();
        std::thread::spawn(move || loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("Content-Length: ") {
                    length = n.parse::<usize>().ok();
                }
            }
            let mut body = vec![0; length.expect("every message has a length")];
            if stdout.read_exact(&mut body).is_err() {
                return;
            }
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        });
        Client {
            child,
            stdin,
            incoming,
            next_id: 1,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify<N: Notification>(&mut self, params: N::Params) {
        self.send(json!({ "jsonrpc": "2.0", "method": N::METHOD, "params": params }));
    }

    fn next(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        self.incoming.recv_timeout(left).unwrap_or_else(|_| {
            panic!("no message from the server in time; seen: {:#?}", self.seen)
        })
    }

    fn request<R: Request>(&mut self, params: R::Params) -> R::Result {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": R::METHOD, "params": params }));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.next(deadline);
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{m}");
                return serde_json::from_value(m["result"].clone()).unwrap();
            }
            self.seen.push(m);
        }
    }

    /// Wait for diagnostics of `uri` that `pred` accepts.
    fn diagnostics(&mut self, uri: &Url, pred: impl Fn(&[Diagnostic]) -> bool) -> Vec<Diagnostic> {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ones that arrived while waiting for a response count too.
        let mut pending: Vec<Value> = std::mem::take(&mut self.seen);
        loop {
            for m in pending.drain(..) {
                if m["method"] == PublishDiagnostics::METHOD {
                    let p: PublishDiagnosticsParams =
                        serde_json::from_value(m["params"].clone()).unwrap();
                    if &p.uri == uri && pred(&p.diagnostics) {
                        return p.diagnostics;
                    }
                }
            }
            pending.push(self.next(deadline));
        }
    }
}

fn at(text: &str, needle: &str, delta: usize) -> Position {
    let i = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` in the text"))
        + delta;
    let line = text[..i].matches('\n').count();
    let col = i - text[..i].rfind('\n').map_or(0, |n| n + 1);
    Position::new(line as u32, col as u32)
}

fn position_params(uri: &Url, pos: Position) -> lsp_types::TextDocumentPositionParams {
    lsp_types::TextDocumentPositionParams {
        text_document: lsp_types::TextDocumentIdentifier { uri: uri.clone() },
        position: pos,
    }
}

fn labels(r: Option<CompletionResponse>) -> Vec<String> {
    match r {
        Some(CompletionResponse::Array(items)) => items.into_iter().map(|i| i.label).collect(),
        Some(CompletionResponse::List(list)) => list.items.into_iter().map(|i| i.label).collect(),
        None => Vec::new(),
    }
}

fn hover_text(h: Option<Hover>) -> String {
    match h.map(|h| h.contents) {
        Some(HoverContents::Markup(m)) => m.value,
        other => format!("{other:?}"),
    }
}

fn stdlib(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("stdlib")
        .join(file)
}

const RECIPE: &str = r#"let
  lib = import <bottle/lib.bottle>;
  # Doubles a number.
  twice = x: x * 2;
  routes = import ./routes.bottle;
in
lib.bottle {
  name = "demo";
  uses = [ lib.agents.claude-code ];
  cpus = twice 2;
  env.JSON = builtins.toJSON routes.ok;
  egress.routes = [ { host = "example.com"; } ];
  
}
"#;

#[test]
fn an_editor_session() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("routes.bottle"),
        "{\n  # A fine value.\n  ok = 1;\n}\n",
    )
    .unwrap();
    let path = dir.path().join("recipe.bottle");
    std::fs::write(&path, RECIPE).unwrap();
    let uri = Url::from_file_path(&path).unwrap();

    let mut client = Client::start();
    #[allow(deprecated)]
    let init = lsp_types::InitializeParams {
        root_uri: Some(Url::from_directory_path(dir.path()).unwrap()),
        ..Default::default()
    };
    let result = client.request::<Initialize>(init);
    let caps = result.capabilities;
    assert!(caps.hover_provider.is_some() && caps.definition_provider.is_some());
    assert!(caps.completion_provider.is_some());
    client.notify::<Initialized>(lsp_types::InitializedParams {});

    // A syntax error is reported as soon as the text arrives.
    let broken = RECIPE.replace("cpus = twice 2;", "cpus = ;");
    client.notify::<DidOpenTextDocument>(lsp_types::DidOpenTextDocumentParams {
        text_document: lsp_types::TextDocumentItem::new(
            uri.clone(),
            "nix".into(),
            1,
            broken.clone(),
        ),
    });
    let diags = client.diagnostics(&uri, |d| !d.is_empty());
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        diags[0].message.contains("expected an expression"),
        "{diags:?}"
    );
    assert_eq!(diags[0].range.start, at(&broken, "cpus = ;", 7));

    // Typing on: a schema error and an evaluation error, at their places.
    let wrong = RECIPE
        .replace("cpus = twice 2;", "cpus = twice 200;")
        .replace("routes.ok", "(throw \"no json\")");
    client.notify::<DidChangeTextDocument>(lsp_types::DidChangeTextDocumentParams {
        text_document: lsp_types::VersionedTextDocumentIdentifier::new(uri.clone(), 2),
        content_changes: vec![lsp_types::TextDocumentContentChangeEvent {
            range: None,
            range_length: None,
            text: wrong.clone(),
        }],
    });
    let diags = client.diagnostics(&uri, |d| d.len() >= 2);
    let cpus = diags
        .iter()
        .find(|d| d.message.contains("cpus 400 is out of range"))
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(cpus.range.start.line, at(&wrong, "cpus =", 0).line);
    assert!(cpus.message.contains("help: use a value from 1 to 64"));
    let thrown = diags
        .iter()
        .find(|d| d.message.contains("no json"))
        .unwrap();
    assert_eq!(thrown.range.start, at(&wrong, "throw \"no json\"", 0));

    // Fixed: the diagnostics clear.
    client.notify::<DidChangeTextDocument>(lsp_types::DidChangeTextDocumentParams {
        text_document: lsp_types::VersionedTextDocumentIdentifier::new(uri.clone(), 3),
        content_changes: vec![lsp_types::TextDocumentContentChangeEvent {
            range: None,
            range_length: None,
            text: RECIPE.into(),
        }],
    });
    client.diagnostics(&uri, |d| d.is_empty());
    // Settled: the check of the good text has run (nothing more to report).
    std::thread::sleep(Duration::from_millis(600));

    // Completion: the bottle's fields in its set…
    let fields = labels(client.request::<Completion>(lsp_types::CompletionParams {
        text_document_position: position_params(&uri, at(RECIPE, "  \n}", 2)),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
        context: None,
    }));
    for f in ["agent", "image", "memory", "egress", "secrets"] {
        assert!(fields.contains(&f.to_string()), "{fields:?}");
    }
    // …a route's fields in a route…
    let route = labels(client.request::<Completion>(lsp_types::CompletionParams {
        text_document_position: position_params(&uri, at(RECIPE, "host =", 0)),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
        context: None,
    }));
    assert!(
        route.contains(&"inspect".to_string()) && route.contains(&"ports".to_string()),
        "{route:?}"
    );
    // …stdlib attributes after a dot…
    let agents = labels(client.request::<Completion>(lsp_types::CompletionParams {
        text_document_position: position_params(&uri, at(RECIPE, "agents.claude", 7)),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
        context: None,
    }));
    assert_eq!(agents, ["claude-code", "codex"]);
    // …and names in scope with the builtins.
    let names = labels(client.request::<Completion>(lsp_types::CompletionParams {
        text_document_position: position_params(&uri, at(RECIPE, "twice 2", 0)),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
        context: None,
    }));
    for n in ["twice", "lib", "routes", "builtins", "map", "import"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }

    // Hover: a builtin, a schema field, a binding's comment.
    let hover = |client: &mut Client, needle: &str, delta: usize| {
        hover_text(client.request::<HoverRequest>(lsp_types::HoverParams {
            text_document_position_params: position_params(&uri, at(RECIPE, needle, delta)),
            work_done_progress_params: Default::default(),
        }))
    };
    let to_json = hover(&mut client, "toJSON", 1);
    assert!(
        to_json.contains("builtins.toJSON v") && to_json.contains("as a JSON text"),
        "{to_json}"
    );
    let cpus = hover(&mut client, "cpus", 1);
    assert!(cpus.contains("Virtual CPUs"), "{cpus}");
    let host = hover(&mut client, "host", 1);
    assert!(
        host.contains("egress.routes[].host") && host.contains("*.example.com"),
        "{host}"
    );
    let twice = hover(&mut client, "twice 2", 1);
    assert!(twice.contains("Doubles a number."), "{twice}");
    let bottle_fn = hover(&mut client, "bottle {", 1);
    assert!(
        bottle_fn.contains("A bottle from the layers in `uses`"),
        "{bottle_fn}"
    );

    // Go to definition: a let binding, an attribute in another file through
    // an import, an attribute in the stdlib, an imported file.
    let definition = |client: &mut Client, needle: &str, delta: usize| match client
        .request::<GotoDefinition>(lsp_types::GotoDefinitionParams {
            text_document_position_params: position_params(&uri, at(RECIPE, needle, delta)),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        }) {
        Some(GotoDefinitionResponse::Scalar(l)) => l,
        other => panic!("no single location for `{needle}`: {other:?}"),
    };
    let l = definition(&mut client, "twice 2", 0);
    assert_eq!(
        (l.uri.clone(), l.range.start),
        (uri.clone(), at(RECIPE, "twice = x", 0))
    );
    let l = definition(&mut client, "routes.ok", 8);
    assert_eq!(
        l.uri,
        Url::from_file_path(dir.path().join("routes.bottle")).unwrap()
    );
    assert_eq!(l.range.start, Position::new(2, 2));
    let l = definition(&mut client, "claude-code ]", 2);
    assert_eq!(l.uri, Url::from_file_path(stdlib("lib.bottle")).unwrap());
    let lib_text = std::fs::read_to_string(stdlib("lib.bottle")).unwrap();
    assert_eq!(l.range.start, at(&lib_text, "claude-code = import", 0));
    let l = definition(&mut client, "<bottle/lib", 3);
    assert_eq!(l.uri, Url::from_file_path(stdlib("lib.bottle")).unwrap());
    let l = definition(&mut client, "./routes", 3);
    assert_eq!(
        l.uri,
        Url::from_file_path(dir.path().join("routes.bottle")).unwrap()
    );

    // Names a `with` brings into scope complete, and lead to their definition.
    let with_path = dir.path().join("with.bottle");
    let with_uri = Url::from_file_path(&with_path).unwrap();
    let with_text = "let lib = import <bottle/lib.bottle>; in\nwith lib; fleet\n";
    client.notify::<DidOpenTextDocument>(lsp_types::DidOpenTextDocumentParams {
        text_document: lsp_types::TextDocumentItem::new(
            with_uri.clone(),
            "nix".into(),
            1,
            with_text.into(),
        ),
    });
    let names = labels(client.request::<Completion>(lsp_types::CompletionParams {
        text_document_position: position_params(&with_uri, at(with_text, "fleet", 2)),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
        context: None,
    }));
    for n in ["fleet", "agents", "fetchers", "lib", "builtins"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    match client.request::<GotoDefinition>(lsp_types::GotoDefinitionParams {
        text_document_position_params: position_params(&with_uri, at(with_text, "fleet", 2)),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
    }) {
        Some(GotoDefinitionResponse::Scalar(l)) => {
            assert_eq!(l.uri, Url::from_file_path(stdlib("lib.bottle")).unwrap());
            assert_eq!(l.range.start, at(&lib_text, "fleet = count", 0));
        }
        other => panic!("no definition of `fleet`: {other:?}"),
    }

    client.request::<Shutdown>(());
    client.notify::<Exit>(());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = client.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "bottle lsp did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Neovim's built-in LSP client (headless) as the editor: the recipe as
/// saved has an error, typing the fix clears it, and completion, hover and
/// go to definition answer. The script is tests/lsp/neovim.lua.
#[test]
fn neovim_as_the_editor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routes.bottle"), "{ ok = 1; }\n").unwrap();
    let text = RECIPE
        .replace("cpus = twice 2;", "cpus = 400;\n  memory = twice 1024;")
        .replace("  \n}", "  ## fields go here\n}")
        .replace("lib.bottle {", "lib.bottle { x = null;");
    let recipe = dir.path().join("recipe.bottle");
    std::fs::write(&recipe, &text).unwrap();
    let out = dir.path().join("seen.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp/neovim.lua");
    let mut child = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-u", "NONE", "-S"])
        .arg(&script)
        .env("BOTTLE", assert_cmd::cargo::cargo_bin("bottle"))
        .env("RECIPE", &recipe)
        .env("OUT", &out)
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("neovim is installed (scripts/setup)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "nvim did not finish; it saw: {:?}",
                std::fs::read_to_string(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("the script wrote what it saw"))
            .unwrap();
    let first = seen["first"].as_array().unwrap();
    let messages: Vec<&str> = first
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("cpus 400 is out of range")),
        "{seen:#}"
    );
    assert!(
        messages.iter().any(|m| m.contains("unknown field `x`")),
        "{seen:#}"
    );
    let cpus = first
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("cpus 400"))
        .unwrap();
    assert_eq!(cpus["line"], at(&text, "cpus = 400", 0).line);
    // The fix for cpus was typed; `x` is still unknown.
    let fixed: Vec<&str> = seen["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(!fixed.iter().any(|m| m.contains("cpus 400")), "{seen:#}");
    assert!(
        fixed.iter().any(|m| m.contains("unknown field `x`")),
        "{seen:#}"
    );
    let completion: Vec<&str> = seen["completion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        completion.contains(&"memory") && completion.contains(&"egress"),
        "{seen:#}"
    );
    assert_eq!(seen["agents"], json!(["claude-code", "codex"]), "{seen:#}");
    assert!(
        seen["hover"].as_str().unwrap().contains("as a JSON text"),
        "{seen:#}"
    );
    let def = &seen["definition"];
    assert_eq!(def["uri"], Url::from_file_path(&recipe).unwrap().as_str());
    assert_eq!(
        def["range"]["start"]["line"],
        at(&text, "twice = x", 0).line
    );
}
