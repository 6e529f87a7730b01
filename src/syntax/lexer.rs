//! Text → tokens, with `grammar/bottle.pest`. The parser reads the tokens
//! without comments; `bottle fmt` reads them with their comments. Not for
//! structure: that is `parser.rs`.

use super::parser::{SyntaxError, MAX_NESTING};
use super::span::{FileId, Span};
use pest::Parser as _;
use std::sync::mpsc::Receiver;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/bottle.pest"]
struct Grammar;

/// What a token is. Keywords and each operator get their own kind, so the
/// parser compares kinds, never text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tok {
    Ident,
    Int,
    Float,
    Path,
    SearchPath,
    StrOpen,
    StrText,
    StrClose,
    IndOpen,
    IndText,
    IndEscape,
    IndClose,
    /// `${`
    InterpOpen,
    /// The `}` that closes `${`.
    InterpClose,
    Comment,
    // keywords
    Let,
    In,
    With,
    Assert,
    If,
    Then,
    Else,
    Rec,
    Inherit,
    Or,
    // punctuation
    Assign,
    Semi,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    LParen,
    RParen,
    Colon,
    Comma,
    Question,
    At,
    Ellipsis,
    Dot,
    // operators
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    OrOr,
    Implies,
    Plus,
    Minus,
    Star,
    Slash,
    Concat,
    Update,
    /// The end of the file (the parser's last token).
    Eof,
    /// Where the lexer could not go on (the parser's last token then; it
    /// reports the lexer's error).
    Error,
}

/// One token: its kind and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: u32,
    pub end: u32,
}

impl Tok {
    /// Is this the last token the parser gets (`Eof` or `Error`)?
    pub fn is_last(self) -> bool {
        matches!(self, Tok::Eof | Tok::Error)
    }

    /// Can a token of this kind begin an operand of an application (`f x`)?
    /// `let` can too, in the old `let { … }` form, which takes the next token
    /// to tell.
    pub fn starts_operand(self) -> bool {
        matches!(
            self,
            Tok::Ident
                | Tok::Int
                | Tok::Float
                | Tok::Path
                | Tok::SearchPath
                | Tok::StrOpen
                | Tok::IndOpen
                | Tok::LParen
                | Tok::LBrack
                | Tok::LBrace
                | Tok::Rec
        )
    }
}

impl Token {
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start as usize..self.end as usize]
    }
}

/// Files larger than this are lexed in pieces of about this size.
const PIECE: usize = 1 << 18;

/// Split `text` into tokens, comments included, in order. The last token is
/// always `Eof`.
pub fn tokens(file: FileId, text: &str) -> Result<Vec<Token>, SyntaxError> {
    read(file, text, Comments::Keep, |runs| {
        let mut out = token_buffer(text.len());
        while let Some(run) = runs.next_run()? {
            out.extend_from_slice(&run);
        }
        out.push(runs.eof());
        Ok(out)
    })
}

/// Whether a reader of the tokens wants the comments among them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Comments {
    Keep,
    Drop,
}

/// Lex `text` while `reader` reads its tokens, run by run (`Runs::next_run`).
/// A big file is cut into pieces (line starts outside strings and comments,
/// from `scan`) that threads lex ahead of the reader, in parallel, so
/// reading the first pieces overlaps lexing the last, and pest's own queue
/// of pairs stays small. Such a line start is always between tokens, so the
/// pieces' tokens are the file's.
pub fn read<'t, T>(
    file: FileId,
    text: &'t str,
    comments: Comments,
    reader: impl FnOnce(&mut Runs<'t>) -> Result<T, SyntaxError>,
) -> Result<T, SyntaxError> {
    let cuts = scan(file, text)?;
    let pieces: Vec<(usize, usize)> = std::iter::once(0)
        .chain(cuts.iter().copied())
        .zip(cuts.iter().copied().chain(std::iter::once(text.len())))
        .collect();
    std::thread::scope(|scope| {
        let mut runs = Runs {
            file,
            text,
            comments,
            next: 0,
            lexers: Vec::new(),
            pieces,
        };
        if runs.pieces.len() > 1 {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let count = threads.min(runs.pieces.len());
            runs.lexers = (0..count)
                .map(|first| runs.spawn_lexer(scope, first, count))
                .collect();
        }
        // Dropping `runs` hangs up on the lexers, which then stop.
        reader(&mut runs)
    })
}

/// The tokens of a file, one piece at a time, in order.
pub struct Runs<'t> {
    file: FileId,
    text: &'t str,
    comments: Comments,
    /// Byte ranges of the pieces; `next` is the first not yet handed out.
    pieces: Vec<(usize, usize)>,
    next: usize,
    /// Lexer threads: the one at `i % len` lexes piece `i`, and sends its
    /// tokens, or `None` if the piece does not lex on its own.
    lexers: Vec<Receiver<Option<Vec<Token>>>>,
}

/// How many lexed pieces a lexer thread may hold that no one has read yet.
const PIECES_AHEAD: usize = 4;

impl<'t> Runs<'t> {
    fn spawn_lexer<'scope>(
        &self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        first: usize,
        stride: usize,
    ) -> Receiver<Option<Vec<Token>>>
    where
        't: 'scope,
    {
        let (send, receive) = std::sync::mpsc::sync_channel(PIECES_AHEAD);
        let (text, comments) = (self.text, self.comments);
        let pieces: Vec<(usize, usize)> = self
            .pieces
            .iter()
            .copied()
            .skip(first)
            .step_by(stride)
            .collect();
        // Its stack is as deep as the evaluator's: the lexer recurses into `${ … }`.
        let spawned = std::thread::Builder::new()
            .name("lex".into())
            .stack_size(LEX_STACK_BYTES)
            .spawn_scoped(scope, move || {
                for (start, end) in pieces {
                    let mut toks = token_buffer(end - start);
                    let lexed = lex(&text[start..end], start, comments, &mut toks).is_ok();
                    // A failed send: the reader has stopped reading.
                    if send.send(lexed.then_some(toks)).is_err() || !lexed {
                        return;
                    }
                }
            });
        if spawned.is_err() {
            // No thread, so no sender: the reader lexes the rest itself.
            return std::sync::mpsc::sync_channel(1).1;
        }
        receive
    }

    /// The next piece's tokens, or `None` after the last. A piece that does
    /// not lex on its own (a cut the scan got wrong, or an error in it) is
    /// lexed here with the rest of the file as one piece, which reports the
    /// error where the whole file would.
    pub fn next_run(&mut self) -> Result<Option<Vec<Token>>, SyntaxError> {
        let Some(&(start, _)) = self.pieces.get(self.next) else {
            return Ok(None);
        };
        if !self.lexers.is_empty() {
            let lexer = &self.lexers[self.next % self.lexers.len()];
            if let Ok(Some(toks)) = lexer.recv() {
                self.next += 1;
                return Ok(Some(toks));
            }
        }
        self.next = self.pieces.len();
        self.lexers.clear();
        let mut toks = token_buffer(self.text.len() - start);
        lex(&self.text[start..], start, self.comments, &mut toks)
            .map_err(|e| lex_error(self.file, self.text, start, e))?;
        Ok(Some(toks))
    }

    /// The token after the last: `Eof`, at the end of the text.
    pub fn eof(&self) -> Token {
        eof(self.text)
    }
}

/// `Eof`, at the end of `text`.
fn eof(text: &str) -> Token {
    let end = text.len() as u32;
    Token {
        kind: Tok::Eof,
        start: end,
        end,
    }
}

/// Room for the tokens of `bytes` bytes: about one per four in typical recipes.
fn token_buffer(bytes: usize) -> Vec<Token> {
    Vec::with_capacity(bytes / 4 + 1)
}

/// The stack of a lexing thread: `scan` bounds how deep the lexer recurses.
const LEX_STACK_BYTES: usize = 64 << 20;

/// Append the tokens of `text`, which starts at byte `offset` of the file.
fn lex(
    text: &str,
    offset: usize,
    comments: Comments,
    out: &mut Vec<Token>,
) -> Result<(), pest::error::Error<Rule>> {
    let pairs = Grammar::parse(Rule::file, text)?;
    let offset = offset as u32;
    for p in pairs.flatten() {
        let rule = p.as_rule();
        // The loops' own pairs (see the grammar), around the tokens.
        if matches!(
            rule,
            Rule::file | Rule::interpolation | Rule::brace_group | Rule::EOI
        ) || (rule == Rule::comment && comments == Comments::Drop)
        {
            continue;
        }
        let span = p.as_span();
        let s = span.as_str();
        let (start, end) = (span.start() as u32 + offset, span.end() as u32 + offset);
        if rule == Rule::plain_string {
            out.push(Token {
                kind: Tok::StrOpen,
                start,
                end: start + 1,
            });
            if end - start > 2 {
                out.push(Token {
                    kind: Tok::StrText,
                    start: start + 1,
                    end: end - 1,
                });
            }
            out.push(Token {
                kind: Tok::StrClose,
                start: end - 1,
                end,
            });
            continue;
        }
        let kind = match rule {
            Rule::identifier => keyword(s).unwrap_or(Tok::Ident),
            Rule::punctuation | Rule::operator => punctuation(s),
            Rule::integer => Tok::Int,
            Rule::float => Tok::Float,
            Rule::path => Tok::Path,
            Rule::search_path => Tok::SearchPath,
            Rule::string_open => Tok::StrOpen,
            Rule::string_text => Tok::StrText,
            Rule::string_close => Tok::StrClose,
            Rule::indented_open => Tok::IndOpen,
            Rule::indented_text => Tok::IndText,
            Rule::indented_escape => Tok::IndEscape,
            Rule::indented_close => Tok::IndClose,
            Rule::interpolation_open => Tok::InterpOpen,
            Rule::interpolation_close => Tok::InterpClose,
            Rule::brace_open => Tok::LBrace,
            Rule::brace_close => Tok::RBrace,
            Rule::comment => Tok::Comment,
            other => unreachable!("grammar: {other:?} is not a token"),
        };
        out.push(Token { kind, start, end });
    }
    Ok(())
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        "let" => Tok::Let,
        "in" => Tok::In,
        "with" => Tok::With,
        "assert" => Tok::Assert,
        "if" => Tok::If,
        "then" => Tok::Then,
        "else" => Tok::Else,
        "rec" => Tok::Rec,
        "inherit" => Tok::Inherit,
        "or" => Tok::Or,
        _ => return None,
    })
}

fn punctuation(s: &str) -> Tok {
    match s {
        "=" => Tok::Assign,
        ";" => Tok::Semi,
        "{" => Tok::LBrace,
        "}" => Tok::RBrace,
        "[" => Tok::LBrack,
        "]" => Tok::RBrack,
        "(" => Tok::LParen,
        ")" => Tok::RParen,
        ":" => Tok::Colon,
        "," => Tok::Comma,
        "?" => Tok::Question,
        "@" => Tok::At,
        "..." => Tok::Ellipsis,
        "." => Tok::Dot,
        "!" => Tok::Not,
        "==" => Tok::Eq,
        "!=" => Tok::Ne,
        "<" => Tok::Lt,
        "<=" => Tok::Le,
        ">" => Tok::Gt,
        ">=" => Tok::Ge,
        "&&" => Tok::And,
        "||" => Tok::OrOr,
        "->" => Tok::Implies,
        "+" => Tok::Plus,
        "-" => Tok::Minus,
        "*" => Tok::Star,
        "/" => Tok::Slash,
        "++" => Tok::Concat,
        "//" => Tok::Update,
        other => unreachable!("grammar: `{other}` is not punctuation"),
    }
}

/// A token the lexer could not read: an unclosed string, a stray character.
/// `err` is from lexing `text[offset..]`.
fn lex_error(
    file: FileId,
    text: &str,
    offset: usize,
    err: pest::error::Error<Rule>,
) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = offset
        + match err.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let (found, len) = super::parser::describe_found(&text[pos.min(text.len())..]);
    let span = Span::new(file, pos, (pos + len).min(text.len()));
    let positives = match err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let (wanted, help) = if positives.contains(&Rule::string_close) {
        ("`\"` to close the string", None)
    } else if positives.contains(&Rule::indented_close) {
        ("`''` to close the indented string", None)
    } else if positives.contains(&Rule::interpolation_close) {
        ("`}` to close the `${`", None)
    } else if text[pos..].starts_with("/*") {
        ("`*/` to close this comment, further on", None)
    } else {
        (
            "a name, a number, a string, a path or an operator",
            Some("this character has no meaning in a recipe outside a string or comment"),
        )
    };
    let help = help.map(String::from).or_else(|| {
        (found == "end of input")
            .then(|| "the file ends early: is a closing bracket, quote or `;` missing?".into())
    });
    SyntaxError {
        span,
        message: format!("unexpected {found}, expected {wanted}"),
        help,
        labels: Vec::new(),
    }
}

/// Refuse text nested deeper than `MAX_NESTING` (brackets, strings and
/// `${ … }` inside them) before the lexer and parser recurse into it, and
/// find where a big file can be cut into pieces to lex: line starts, about
/// `PIECE` bytes apart, outside strings and comments. (This scan is simpler
/// than the grammar; a cut it gets wrong makes a piece fail to lex, and then
/// the file is lexed whole.)
fn scan(file: FileId, text: &str) -> Result<Vec<usize>, SyntaxError> {
    #[derive(PartialEq)]
    enum Open {
        Bracket,
        Interpolation,
        Str,
        Indented,
    }
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut stack: Vec<Open> = Vec::new();
    let mut cuts = Vec::new();
    let mut next_cut = PIECE;
    let mut i = 0usize;
    while i < bytes.len() {
        if i >= next_cut
            && bytes[i - 1] == b'\n'
            && !stack
                .iter()
                .any(|o| matches!(o, Open::Str | Open::Indented | Open::Interpolation))
        {
            cuts.push(i);
            next_cut = i + PIECE;
        }
        let before = stack.len();
        match (stack.last(), bytes[i]) {
            (Some(Open::Str), b'\\') => i += 1,
            (Some(Open::Str), b'"') => {
                stack.pop();
            }
            (Some(Open::Indented), b'\'') if at(i + 1) == b'\'' => match at(i + 2) {
                b'$' | b'\'' => i += 2,
                b'\\' => i += 3,
                _ => {
                    stack.pop();
                    i += 1;
                }
            },
            (Some(Open::Str | Open::Indented), b'$') if at(i + 1) == b'{' => {
                stack.push(Open::Interpolation);
                i += 1;
            }
            (Some(Open::Str | Open::Indented), _) => {}
            (_, b'#') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            (_, b'/') if at(i + 1) == b'*' => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && at(i + 1) == b'/') {
                    i += 1;
                }
                i += 1;
            }
            (_, b'"') => stack.push(Open::Str),
            (_, b'\'') if at(i + 1) == b'\'' && (i == 0 || !is_name_byte(bytes[i - 1])) => {
                stack.push(Open::Indented);
                i += 1;
            }
            (_, b'$') if at(i + 1) == b'{' => {
                stack.push(Open::Interpolation);
                i += 1;
            }
            (_, b'(' | b'[' | b'{') => stack.push(Open::Bracket),
            (_, b')' | b']' | b'}') => {
                stack.pop();
            }
            _ => {}
        }
        if stack.len() > before && stack.len() > MAX_NESTING {
            return Err(SyntaxError {
                span: Span::new(file, i, (i + 1).min(text.len())),
                message: format!("expressions are nested more than {MAX_NESTING} levels deep"),
                help: Some("split the expression into named `let` bindings".into()),
                labels: Vec::new(),
            });
        }
        i += 1;
    }
    Ok(cuts)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'\'' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        lex(text, 0, Comments::Keep, &mut out).expect("lexes");
        out.push(eof(text));
        out
    }

    /// A file big enough to be lexed in pieces, with strings and comments
    /// that run across piece boundaries.
    fn big(with: &str) -> String {
        let mut s = String::from("[\n");
        while s.len() < 5 * PIECE {
            s.push_str("  { a = \"x\\\"${toString 1}\"; b = ./p/q; c = 1.5e3; } # note\n");
            s.push_str(with);
        }
        s.push_str("]\n");
        s
    }

    #[test]
    fn pieces_lex_as_the_whole_file() {
        let text = big("  ''\n    multi ${ \"line\" }\n  ''\n");
        let cuts = scan(FileId(0), &text).expect("scans");
        assert!(cuts.len() > 2, "{cuts:?}");
        assert_eq!(tokens(FileId(0), &text).expect("lexes"), whole(&text));
    }

    #[test]
    fn a_string_or_comment_across_a_boundary_is_lexed_whole() {
        for filler in ["  /* a\n  long\n  comment */\n", "  \"a\nlong\nstring\"\n"] {
            let lines: String = std::iter::repeat_n(filler, PIECE / filler.len() + 2).collect();
            let text = format!("[\n{lines}]\n");
            assert_eq!(tokens(FileId(0), &text).expect("lexes"), whole(&text));
        }
    }

    #[test]
    fn plain_strings_are_three_tokens() {
        let text = r#""" "a\"b" "c${d}""#;
        let kinds: Vec<Tok> = whole(text).iter().map(|t| t.kind).collect();
        use Tok::*;
        assert_eq!(
            kinds,
            [
                StrOpen,
                StrClose,
                StrOpen,
                StrText,
                StrClose,
                StrOpen,
                StrText,
                InterpOpen,
                Ident,
                InterpClose,
                StrClose,
                Eof
            ]
        );
    }

    #[test]
    fn an_error_in_a_later_piece_is_reported_where_it_is() {
        let mut text = big("");
        let at = text.len() - 2;
        text.insert(at, '`');
        let err = tokens(FileId(0), &text).expect_err("an error");
        assert_eq!(err.span.start as usize, at, "{}", err.message);
    }

    #[test]
    fn an_unclosed_comment_is_an_error() {
        let err = tokens(FileId(0), "1 /* 2").expect_err("an error");
        assert!(err.message.contains("`*/`"), "{}", err.message);
    }
}
