//! Text → tokens, with `grammar/bottle.pest`. The parser reads the tokens
//! without comments; `bottle fmt` reads them with their comments. Not for
//! structure: that is `parser.rs`.

use super::parser::SyntaxError;
use super::span::{FileId, Span};
use pest::Parser as _;

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
}

/// One token: its kind and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: u32,
    pub end: u32,
}

impl Token {
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start as usize..self.end as usize]
    }
}

/// Split `text` into tokens, comments included, in order. The last token is
/// always `Eof`.
pub fn tokens(file: FileId, text: &str) -> Result<Vec<Token>, SyntaxError> {
    let pairs = Grammar::parse(Rule::file, text).map_err(|e| lex_error(file, text, e))?;
    // About one token per four bytes in typical recipes.
    let mut out = Vec::with_capacity(text.len() / 4 + 1);
    for p in pairs {
        let rule = p.as_rule();
        if rule == Rule::EOI {
            continue;
        }
        let span = p.as_span();
        let s = span.as_str();
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
        out.push(Token {
            kind,
            start: span.start() as u32,
            end: span.end() as u32,
        });
    }
    out.push(Token {
        kind: Tok::Eof,
        start: text.len() as u32,
        end: text.len() as u32,
    });
    Ok(out)
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
fn lex_error(file: FileId, text: &str, err: pest::error::Error<Rule>) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match err.location {
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
    } else if positives.contains(&Rule::comment) && text[..pos].contains("/*") {
        ("`*/` to close the comment", None)
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
