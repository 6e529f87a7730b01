//! `bottle fmt`: one layout for recipes, from the token stream of `lexer.rs`
//! (comments included), so only the whitespace between tokens ever changes.
//!
//! The style, close to nixpkgs' formatters: two-space indentation; a set,
//! `let`, list or function argument set that was written on several lines,
//! holds a comment, or does not fit in `WIDTH` columns gets one binding or
//! element per line; others stay on one line (`{ a = 1; }`, `[ ]`). Other line breaks are kept as
//! written (at most one blank line in a row), re-indented. Strings and `${…}`
//! are kept byte for byte. Formatting twice changes nothing.
//!
//! Not for meaning: the file is parsed first (syntax errors are reported),
//! and the output is checked to hold exactly the tokens of the input.

use super::lexer::{self, Tok, Token};
use super::parser::{self, SyntaxError};
use super::span::{FileId, Span};

/// The widest a one-line set or list may make a line.
pub const WIDTH: usize = 100;

/// Format one file's text.
pub fn format(file: FileId, text: &str) -> Result<String, SyntaxError> {
    parser::parse(file, text)?;
    let tokens = lexer::tokens(file, text)?;
    let atoms = atoms(text, &tokens);
    let out = Printer::new(text, &atoms).print();
    // The one guarantee that matters: the same tokens, in the same order.
    let again = lexer::tokens(file, &out).ok();
    let same = again.as_ref().is_some_and(|t| {
        t.len() == tokens.len()
            && t.iter()
                .zip(&tokens)
                .all(|(a, b)| a.kind == b.kind && same_text(a.text(&out), b.text(text), a.kind))
    });
    if !same {
        return Err(SyntaxError {
            span: Span::new(file, 0, 0),
            message: "bottle fmt would change this file's tokens; it was left as it is".into(),
            help: Some("this is a bug in `bottle fmt`; please report it with the file".into()),
            labels: Vec::new(),
        });
    }
    Ok(out)
}

fn same_text(a: &str, b: &str, kind: Tok) -> bool {
    if kind == Tok::Comment {
        a.trim_end() == b.trim_end()
    } else {
        a == b
    }
}

/// A unit of layout: one token, or a whole string or `${…}` kept verbatim.
#[derive(Clone, Copy, Debug)]
struct Atom {
    kind: Tok,
    start: usize,
    end: usize,
}

fn atoms(text: &str, tokens: &[Token]) -> Vec<Atom> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        if t.kind == Tok::Eof {
            break;
        }
        match t.kind {
            Tok::StrOpen | Tok::IndOpen | Tok::InterpOpen => {}
            _ => {
                let mut end = t.end as usize;
                if t.kind == Tok::Comment {
                    end = t.start as usize + t.text(text).trim_end().len();
                }
                out.push(Atom {
                    kind: t.kind,
                    start: t.start as usize,
                    end,
                });
                i += 1;
                continue;
            }
        };
        // Up to the matching close, counting nested strings and interpolations.
        let mut depth = 0usize;
        let mut j = i;
        loop {
            let k = tokens[j].kind;
            if matches!(k, Tok::StrOpen | Tok::IndOpen | Tok::InterpOpen) {
                depth += 1;
            } else if matches!(k, Tok::StrClose | Tok::IndClose | Tok::InterpClose) {
                depth -= 1;
            }
            if depth == 0 || k == Tok::Eof {
                break;
            }
            j += 1;
        }
        out.push(Atom {
            kind: t.kind,
            start: t.start as usize,
            end: tokens[j].end as usize,
        });
        i = j + 1;
    }
    out
}

fn ends_operand(k: Tok) -> bool {
    matches!(
        k,
        Tok::Ident
            | Tok::Int
            | Tok::Float
            | Tok::Path
            | Tok::SearchPath
            | Tok::StrOpen
            | Tok::IndOpen
            | Tok::InterpOpen
            | Tok::RParen
            | Tok::RBrack
            | Tok::RBrace
    )
}

/// `let` counts here: its old `let { … }` form is an operand, and a space
/// before it is right either way.
fn starts_operand(k: Tok) -> bool {
    k.starts_operand() || k == Tok::Let
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Group {
    Set,
    Formals,
    List,
    Let,
    Paren,
}

/// The structure found by matching brackets: for each opening atom, its
/// group kind and the index of its closing atom; for each group, whether it
/// must be laid out one item per line.
struct Groups {
    kind: Vec<Option<Group>>,
    close: Vec<usize>,
    broken: Vec<bool>,
    /// The width of the group on one line, from its opener to its closer.
    flat_width: Vec<usize>,
}

struct Printer<'a> {
    text: &'a str,
    atoms: &'a [Atom],
    groups: Groups,
    out: String,
}

/// A group being printed: where it opened and how.
struct Frame {
    group: Group,
    /// The indentation of the line its opener is on.
    base: usize,
    broken: bool,
    /// `with`/`assert` whose `;` is still to come (it ends no binding).
    pending_semis: usize,
    /// The next atom starts an item (after the opener, a `;` or a `,`).
    at_item_start: bool,
    /// The indentation of the line the current item (or the body of a
    /// function, `let`, `with` or `assert` in it) started on.
    item_indent: usize,
    /// The current item's body started on a line of its own.
    in_body: bool,
}

impl<'a> Printer<'a> {
    fn new(text: &'a str, atoms: &'a [Atom]) -> Printer<'a> {
        let groups = find_groups(text, atoms);
        Printer {
            text,
            atoms,
            groups,
            out: String::with_capacity(text.len() + text.len() / 8),
        }
    }

    fn atom_text(&self, i: usize) -> &'a str {
        let a = self.atoms[i];
        &self.text[a.start..a.end]
    }

    /// Newlines in the source between atom `i - 1` and atom `i`.
    fn newlines_before(&self, i: usize) -> usize {
        if i == 0 {
            return 0;
        }
        self.text[self.atoms[i - 1].end..self.atoms[i].start]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
    }

    fn column(&self) -> usize {
        let line = self.out.rsplit('\n').next().unwrap_or("");
        line.chars().count()
    }

    fn print(mut self) -> String {
        let mut frames = vec![Frame {
            group: Group::Paren,
            base: 0,
            broken: true,
            pending_semis: 0,
            at_item_start: true,
            item_indent: 0,
            in_body: false,
        }];
        // The last non-comment atom printed.
        let mut prev_code: Option<Tok> = None;
        let mut line_indent = 0usize;
        for i in 0..self.atoms.len() {
            let a = self.atoms[i];
            let frame = frames
                .last()
                .expect("printer: the file's frame is never closed");
            let closes = match a.kind {
                Tok::RBrace | Tok::RBrack | Tok::RParen | Tok::In => {
                    frames.len() > 1 && self.closes_frame(frame.group, a.kind)
                }
                _ => false,
            };
            // Where this atom goes: on a new line, and how far in, or after a space.
            let source_newlines = self.newlines_before(i);
            let prev_atom = (i > 0).then(|| self.atoms[i - 1].kind);
            let top = frames.len() == 1;
            let in_items = frame.group != Group::Paren;
            let new_item = frame.broken && frame.at_item_start && in_items;
            let after_line_comment =
                prev_atom == Some(Tok::Comment) && self.atom_text(i - 1).starts_with('#');
            // A comment on the line of the token before it stays there.
            let trailing_comment = a.kind == Tok::Comment && source_newlines == 0;
            let newline = i > 0
                && (after_line_comment
                    || closes && frame.broken && in_items
                    || new_item && !trailing_comment
                    || source_newlines > 0);
            let mut body_start = false;
            if newline {
                let indent = if closes {
                    frame.base
                } else if top && frame.at_item_start {
                    0
                } else if frame.at_item_start && in_items || !top && !in_items {
                    // An item of a set, list or `let`, or a line in parentheses.
                    frame.base + 2
                } else if matches!(prev_code, Some(Tok::Colon | Tok::In | Tok::Semi)) {
                    // The body of a function, `let`, `with` or `assert`: one
                    // step in from its item, or level with the body it is in.
                    body_start = true;
                    if frame.in_body {
                        line_indent
                    } else {
                        line_indent.max(frame.item_indent + if top { 0 } else { 2 })
                    }
                } else {
                    frame.item_indent + 2
                };
                let blank = source_newlines >= 2 && i > 0 && !closes_after_open(prev_atom, a.kind);
                while self.out.ends_with(' ') {
                    self.out.pop();
                }
                self.out.push('\n');
                if blank {
                    self.out.push('\n');
                }
                for _ in 0..indent {
                    self.out.push(' ');
                }
                line_indent = indent;
            } else if i > 0 && self.space_between(i) {
                self.out.push(' ');
            }
            let frame = frames.last_mut().expect("printer: a frame");
            if frame.at_item_start && a.kind != Tok::Comment {
                frame.at_item_start = false;
                frame.in_body = false;
                frame.item_indent = line_indent;
            } else if body_start {
                // Lines that continue the body are indented from it.
                frame.in_body = true;
                frame.item_indent = line_indent;
            }
            self.out.push_str(self.atom_text(i));
            if closes {
                frames.pop();
            } else if let Some(group) = self.groups.kind[i] {
                let mut broken = self.groups.broken[i];
                if !broken && group != Group::Paren {
                    broken = self.column() + self.groups.flat_width[i] > WIDTH;
                }
                frames.push(Frame {
                    group,
                    base: line_indent,
                    broken,
                    pending_semis: 0,
                    at_item_start: group != Group::Paren,
                    item_indent: line_indent + 2,
                    in_body: false,
                });
            }
            let frame = frames.last_mut().expect("printer: a frame");
            match a.kind {
                Tok::With | Tok::Assert => frame.pending_semis += 1,
                Tok::Semi if frame.pending_semis > 0 => frame.pending_semis -= 1,
                Tok::Semi if matches!(frame.group, Group::Set | Group::Let) => {
                    frame.at_item_start = true
                }
                Tok::Comma if frame.group == Group::Formals => frame.at_item_start = true,
                _ => {}
            }
            if frame.group == Group::List && a.kind != Tok::Comment {
                // The next atom starts an element when this one ends an operand
                // and the next starts one (not `.x`, not `or`).
                let next = self.atoms[i + 1..].iter().find(|n| n.kind != Tok::Comment);
                if let Some(n) = next {
                    if ends_operand(a.kind) && starts_operand(n.kind) {
                        frame.at_item_start = true;
                    }
                }
            }
            if a.kind != Tok::Comment {
                prev_code = Some(a.kind);
            }
        }
        while self.out.ends_with(' ') || self.out.ends_with('\n') {
            self.out.pop();
        }
        self.out.push('\n');
        self.out
    }

    fn closes_frame(&self, group: Group, close: Tok) -> bool {
        matches!(
            (group, close),
            (Group::Set | Group::Formals, Tok::RBrace)
                | (Group::List, Tok::RBrack)
                | (Group::Paren, Tok::RParen)
                | (Group::Let, Tok::In)
        )
    }

    /// Whether atoms `i - 1` and `i`, on one line, are separated by a space.
    fn space_between(&self, i: usize) -> bool {
        let prev = self.atoms[i - 1].kind;
        let next = self.atoms[i].kind;
        if prev == Tok::Comment || next == Tok::Comment {
            return true;
        }
        match (prev, next) {
            (Tok::LParen, _) | (_, Tok::RParen) => false,
            (_, Tok::Semi | Tok::Comma | Tok::Colon) => false,
            (Tok::Dot, _) | (_, Tok::Dot) => false,
            (Tok::At, _) | (_, Tok::At) => false,
            (Tok::Not, _) => false,
            (Tok::Minus, _) => {
                // A prefix minus sticks to its operand.
                self.atoms[..i - 1]
                    .iter()
                    .rev()
                    .find(|a| a.kind != Tok::Comment)
                    .is_some_and(|a| ends_operand(a.kind))
            }
            _ => true,
        }
    }
}

fn closes_after_open(prev: Option<Tok>, next: Tok) -> bool {
    matches!(
        prev,
        Some(Tok::LBrace | Tok::LBrack | Tok::LParen | Tok::Let)
    ) || matches!(next, Tok::RBrace | Tok::RBrack | Tok::RParen | Tok::In)
}

/// Match brackets and `let … in`, and decide which groups must break.
fn find_groups(text: &str, atoms: &[Atom]) -> Groups {
    let n = atoms.len();
    let mut groups = Groups {
        kind: vec![None; n],
        close: vec![0; n],
        broken: vec![false; n],
        flat_width: vec![0; n],
    };
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..n {
        let k = atoms[i].kind;
        let kind = match k {
            Tok::LBrace => Some(if formals_ahead(atoms, i) {
                Group::Formals
            } else {
                Group::Set
            }),
            Tok::LBrack => Some(Group::List),
            Tok::LParen => Some(Group::Paren),
            Tok::Let if atoms.get(i + 1).map(|a| a.kind) != Some(Tok::LBrace) => Some(Group::Let),
            _ => None,
        };
        if let Some(g) = kind {
            groups.kind[i] = Some(g);
            stack.push(i);
            continue;
        }
        let closes = match k {
            Tok::RBrace => Some(&[Group::Set, Group::Formals][..]),
            Tok::RBrack => Some(&[Group::List][..]),
            Tok::RParen => Some(&[Group::Paren][..]),
            Tok::In => Some(&[Group::Let][..]),
            _ => None,
        };
        if let (Some(kinds), Some(&open)) = (closes, stack.last()) {
            if groups.kind[open].is_some_and(|g| kinds.contains(&g)) {
                stack.pop();
                groups.close[open] = i;
            }
        }
    }
    // Innermost first (closers come in order), so children are decided first.
    let mut opens: Vec<usize> = (0..n)
        .filter(|&i| groups.kind[i].is_some() && groups.close[i] > i)
        .collect();
    opens.sort_by_key(|&i| groups.close[i]);
    for open in opens {
        let close = groups.close[open];
        let mut broken = false;
        let mut width = 0usize;
        let mut j = open;
        while j <= close {
            let a = atoms[j];
            let t = &text[a.start..a.end];
            // A multi-line string counts up to its first line break.
            width += t.split('\n').next().unwrap_or("").chars().count() + 1;
            if j > open {
                let gap = &text[atoms[j - 1].end..a.start];
                if gap.contains('\n') {
                    broken = true;
                }
            }
            if a.kind == Tok::Comment {
                broken = true;
            }
            if j > open && j < close && groups.kind[j].is_some() && groups.close[j] > j {
                if groups.broken[j] {
                    broken = true;
                }
                width += groups.flat_width[j];
                j = groups.close[j] + 1;
                continue;
            }
            j += 1;
        }
        let g = groups.kind[open].expect("printer: an opener");
        // Parentheses never break by themselves; a broken group inside them
        // still breaks the group around them, through its width.
        groups.broken[open] = broken && g != Group::Paren;
        groups.flat_width[open] = if broken { WIDTH * 2 } else { width };
    }
    groups
}

/// At `{`: are these a function's arguments (`{ a, b ? 1, ... }:`)?
fn formals_ahead(atoms: &[Atom], i: usize) -> bool {
    let code: Vec<Tok> = atoms[i + 1..]
        .iter()
        .filter(|a| a.kind != Tok::Comment)
        .take(3)
        .map(|a| a.kind)
        .collect();
    let at = |k: usize| code.get(k).copied().unwrap_or(Tok::Eof);
    match at(0) {
        Tok::Ellipsis => true,
        Tok::RBrace => matches!(at(1), Tok::Colon | Tok::At),
        Tok::Ident => match at(1) {
            Tok::Comma | Tok::Question => true,
            Tok::RBrace => matches!(at(2), Tok::Colon | Tok::At),
            _ => false,
        },
        _ => false,
    }
}
