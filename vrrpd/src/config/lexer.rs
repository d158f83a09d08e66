//! keepalived.conf lexer: words, quoted strings, braces and line ends, each with its position.
//!
//! keepalived's grammar is line based (a keyword takes the rest of its line as arguments), so
//! line ends are tokens too. Comments (`#`, `!`) run to the end of the line outside quotes;
//! a trailing `\` joins the next line.

use std::path::Path;
use std::sync::Arc;

use super::diag::{Diagnostic, Pos};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    /// A `"..."` string; `text` holds it without the quotes.
    Quoted,
    Open,
    Close,
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub text: String,
    pub pos: Pos,
}

impl Token {
    /// A word or a quoted string (something a keyword can take as argument).
    pub fn is_value(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::Quoted)
    }
}

/// Split `text` (the contents of `file`) into tokens. Never fails: problems such as an
/// unterminated quote become diagnostics and lexing goes on.
pub fn lex(text: &str, file: &Arc<Path>) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut toks = Vec::new();
    let mut diags = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    for (idx, raw) in lines.iter().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let continued = lex_line(line, file, line_no, &mut toks, &mut diags);
        if !continued && idx + 1 < lines.len() {
            let col = u32::try_from(line.chars().count() + 1).unwrap_or(u32::MAX);
            toks.push(Token {
                kind: TokenKind::Newline,
                text: String::new(),
                pos: Pos::new(file, line_no, col),
            });
        }
    }
    let end = Pos::new(file, u32::try_from(lines.len()).unwrap_or(u32::MAX), 1);
    if toks.last().is_some_and(|t| t.kind != TokenKind::Newline) {
        toks.push(Token {
            kind: TokenKind::Newline,
            text: String::new(),
            pos: end,
        });
    }
    (toks, diags)
}

/// Lex one physical line; returns true when it ends with a `\` continuation.
fn lex_line(
    line: &str,
    file: &Arc<Path>,
    line_no: u32,
    toks: &mut Vec<Token>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut word = String::new();
    let mut word_col = 0u32;
    let col = |i: usize| u32::try_from(i + 1).unwrap_or(u32::MAX);
    let flush = |word: &mut String, word_col: u32, toks: &mut Vec<Token>| {
        if !word.is_empty() {
            toks.push(Token {
                kind: TokenKind::Word,
                text: std::mem::take(word),
                pos: Pos::new(file, line_no, word_col),
            });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' | '!' => break,
            '\\' if chars[i + 1..].iter().all(|c| c.is_whitespace()) => {
                flush(&mut word, word_col, toks);
                return true;
            }
            c if c.is_whitespace() => flush(&mut word, word_col, toks),
            '{' | '}' => {
                flush(&mut word, word_col, toks);
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                toks.push(Token {
                    kind,
                    text: c.to_string(),
                    pos: Pos::new(file, line_no, col(i)),
                });
            }
            '"' => {
                flush(&mut word, word_col, toks);
                let start = i;
                let rest = &chars[i + 1..];
                match rest.iter().position(|&c| c == '"') {
                    Some(len) => {
                        toks.push(Token {
                            kind: TokenKind::Quoted,
                            text: rest[..len].iter().collect(),
                            pos: Pos::new(file, line_no, col(start)),
                        });
                        i += len + 1;
                    }
                    None => {
                        diags.push(
                            Diagnostic::error(
                                &Pos::new(file, line_no, col(start)),
                                "unterminated quoted string",
                            )
                            .with_help("close the string with `\"` on the same line"),
                        );
                        toks.push(Token {
                            kind: TokenKind::Quoted,
                            text: rest.iter().collect(),
                            pos: Pos::new(file, line_no, col(start)),
                        });
                        return false;
                    }
                }
            }
            c => {
                if word.is_empty() {
                    word_col = col(i);
                }
                word.push(c);
            }
        }
        i += 1;
    }
    flush(&mut word, word_col, toks);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lx(s: &str) -> Vec<(TokenKind, String, u32, u32)> {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (t, d) = lex(s, &f);
        assert!(d.is_empty(), "{d:?}");
        t.into_iter()
            .map(|t| (t.kind, t.text, t.pos.line, t.pos.col))
            .collect()
    }

    use TokenKind::*;

    #[test]
    fn positions_and_words() {
        assert_eq!(
            lx("global_defs {\n  router_id  r1\n}\n"),
            vec![
                (Word, "global_defs".into(), 1, 1),
                (Open, "{".into(), 1, 13),
                (Newline, "".into(), 1, 14),
                (Word, "router_id".into(), 2, 3),
                (Word, "r1".into(), 2, 14),
                (Newline, "".into(), 2, 16),
                (Close, "}".into(), 3, 1),
                (Newline, "".into(), 3, 2),
            ]
        );
    }

    #[test]
    fn comments_and_quotes() {
        let t = lx("a \"x # y ! z\" # comment\n! whole line\nb c!d");
        let words: Vec<_> = t
            .iter()
            .filter(|t| t.0 != Newline)
            .map(|t| (t.0, t.1.as_str()))
            .collect();
        assert_eq!(
            words,
            vec![(Word, "a"), (Quoted, "x # y ! z"), (Word, "b"), (Word, "c")]
        );
        assert_eq!(t[1].3, 3, "quoted token column is its opening quote");
    }

    #[test]
    fn braces_anywhere() {
        let t = lx("vrrp_instance X{state MASTER}\nvirtual_ipaddress\n{\n}");
        let kinds: Vec<_> = t.iter().map(|t| t.0).collect();
        assert_eq!(
            kinds,
            vec![
                Word, Word, Open, Word, Word, Close, Newline, Word, Newline, Open, Newline, Close,
                Newline
            ]
        );
        assert_eq!((t[2].2, t[2].3), (1, 16));
    }

    #[test]
    fn continuation() {
        let t = lx("a b \\\n  c\nd");
        assert_eq!(
            t,
            vec![
                (Word, "a".into(), 1, 1),
                (Word, "b".into(), 1, 3),
                (Word, "c".into(), 2, 3),
                (Newline, "".into(), 2, 4),
                (Word, "d".into(), 3, 1),
                (Newline, "".into(), 3, 1),
            ]
        );
    }

    #[test]
    fn unterminated_quote_is_reported() {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (_, d) = lex("a \"oops\nb", &f);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].col), (1, 3));
    }
}
