//! `bottle supervise`: an interactive view of the requests a running bottle
//! holds for a person, answered with one key each.
use super::approve::connect;
use crate::realize::terminal::RawMode;
use crate::supervise::broker::Pending;
use crate::supervise::control::{Reply, Request};
use clap::Args;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::mpsc;

/// Watch a running bottle's held requests and answer them: o allow once,
/// r allow for this run, a allow always (writes approved.bottle beside the
/// recipe), d deny, m deny with a message, j/k or arrows to choose, q quit.
#[derive(Args)]
pub struct SuperviseArgs {
    /// The run's name (`bottle ps`).
    pub name: String,
}

enum Event {
    Pending(Vec<Pending>),
    Ended,
    Key(u8),
}

pub fn run(args: SuperviseArgs) -> miette::Result<ExitCode> {
    let mut watch = connect(&args.name)?;
    let mut control = connect(&args.name)?;
    watch
        .send(&Request::Watch)
        .map_err(|e| miette::miette!("the run `{}` did not answer: {e}", args.name))?;
    let (tx, events) = mpsc::channel();
    let from_run = tx.clone();
    std::thread::spawn(move || loop {
        match watch.receive() {
            Ok(Some(Reply::Pending(p))) => {
                if from_run.send(Event::Pending(p)).is_err() {
                    return;
                }
            }
            Ok(Some(_)) => {}
            _ => {
                let _ = from_run.send(Event::Ended);
                return;
            }
        }
    });
    let raw = RawMode::enter();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut byte = [0u8; 1];
        while let Ok(1) = stdin.read(&mut byte) {
            if tx.send(Event::Key(byte[0])).is_err() {
                return;
            }
        }
    });
    let mut view = View {
        name: args.name.clone(),
        pending: Vec::new(),
        chosen: 0,
        typing: None,
        status: String::new(),
    };
    let mut escape = 0u8;
    loop {
        view.draw();
        let Ok(event) = events.recv() else { break };
        match event {
            Event::Ended => {
                drop(raw);
                println!("\r\nbottle: the run `{}` has ended", args.name);
                return Ok(ExitCode::SUCCESS);
            }
            Event::Pending(p) => {
                view.pending = p;
                view.chosen = view.chosen.min(view.pending.len().saturating_sub(1));
            }
            Event::Key(key) => {
                // Arrow keys arrive as ESC [ A / ESC [ B.
                match (escape, key) {
                    (0, 0x1b) if view.typing.is_none() => {
                        escape = 1;
                        continue;
                    }
                    (1, b'[') => {
                        escape = 2;
                        continue;
                    }
                    (2, b'A') => {
                        escape = 0;
                        view.chosen = view.chosen.saturating_sub(1);
                        continue;
                    }
                    (2, b'B') => {
                        escape = 0;
                        view.chosen = (view.chosen + 1).min(view.pending.len().saturating_sub(1));
                        continue;
                    }
                    _ => escape = 0,
                }
                if let Some(text) = &mut view.typing {
                    match key {
                        b'\r' | b'\n' => {
                            let message = view.typing.take();
                            view.answer(&mut control, "deny", message);
                        }
                        0x1b | 0x03 => view.typing = None,
                        0x7f | 0x08 => {
                            text.pop();
                        }
                        k if k >= 0x20 => text.push(k as char),
                        _ => {}
                    }
                    continue;
                }
                match key {
                    b'q' | 0x03 | 0x04 => break,
                    b'k' => view.chosen = view.chosen.saturating_sub(1),
                    b'j' => {
                        view.chosen = (view.chosen + 1).min(view.pending.len().saturating_sub(1))
                    }
                    b'o' => view.answer(&mut control, "once", None),
                    b'r' => view.answer(&mut control, "run", None),
                    b'a' => view.answer(&mut control, "always", None),
                    b'd' => view.answer(&mut control, "deny", None),
                    b'm' if !view.pending.is_empty() => view.typing = Some(String::new()),
                    _ => {}
                }
            }
        }
    }
    drop(raw);
    println!();
    Ok(ExitCode::SUCCESS)
}

struct View {
    name: String,
    pending: Vec<Pending>,
    chosen: usize,
    /// The denial message being typed.
    typing: Option<String>,
    status: String,
}

impl View {
    fn answer(
        &mut self,
        control: &mut crate::supervise::control::Client,
        verdict: &str,
        message: Option<String>,
    ) {
        let Some(p) = self.pending.get(self.chosen) else {
            return;
        };
        let request = Request::Decide {
            id: p.id,
            verdict: verdict.into(),
            message,
        };
        self.status = match control.ask(&request) {
            Ok(Reply::Ok(p)) => format!("{verdict}: {}", p.subject()),
            Ok(Reply::Error(e)) => format!("not answered: {e}"),
            Ok(_) => "the run answered out of turn".into(),
            Err(e) => format!("the run did not answer: {e}"),
        };
    }

    fn draw(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut out = format!(
            "\x1b[H\x1b[2Jbottle supervise {}: {} waiting\r\n\r\n",
            self.name,
            self.pending.len()
        );
        if self.pending.is_empty() {
            out.push_str("  no request is waiting for a person\r\n");
        }
        for (i, p) in self.pending.iter().enumerate() {
            let mark = if i == self.chosen { '>' } else { ' ' };
            let request = match (&p.method, &p.path) {
                (Some(m), Some(path)) => format!(" {m} {path}"),
                (Some(m), None) => format!(" {m}"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "{mark} [{}] {}{request}  ({} waiting, asked {} s ago, {})\r\n",
                p.id,
                p.subject(),
                p.waiting,
                now.saturating_sub(p.asked),
                p.rule
            ));
        }
        out.push_str("\r\n  o allow once  r allow for this run  a allow always  d deny  m deny with a message  q quit\r\n");
        if let Some(text) = &self.typing {
            out.push_str(&format!(
                "  message to the agent (Enter sends, Esc cancels): {text}"
            ));
        } else if !self.status.is_empty() {
            out.push_str(&format!("  {}\r\n", self.status));
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }
}
