//! keepalived.conf lexer: words, quoted strings, braces and line ends, each with its position.
//!
//! keepalived's grammar is line based (a keyword takes the rest of its line as arguments), so
//! line ends are tokens too. Comments (`#`, `!`) run to the end of the line outside quotes.
//! A trailing `\` joins nothing: keepalived continues only `$NAME=` definitions (the
//! preprocessor's business) and glues the `\` of any other line to the word before it.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use super::diag::{Diagnostic, Pos};
use super::preprocess::is_blank;
pub use super::preprocess::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    /// A `"..."` string; `text` holds it without the quotes.
    Quoted,
    Open,
    Close,
    /// The end of a line; `text` holds the whole line.
    Newline,
}

/// A token; its text borrows the line it was read from, unless it had to be built (a quoted
/// string, a word glued to a trailing `\`): a file's words cost no allocation each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: TokenKind,
    pub text: Cow<'a, str>,
    pub pos: Pos,
}

impl Token<'_> {
    /// The same token, its text its own.
    pub fn into_owned(self) -> Token<'static> {
        Token {
            kind: self.kind,
            text: Cow::Owned(self.text.into_owned()),
            pos: self.pos,
        }
    }

    /// A word or a quoted string (something a keyword can take as argument).
    pub fn is_value(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::Quoted)
    }
}

/// Split `text` (the contents of `file`) into tokens, without preprocessing (comments are
/// handled here). Never fails: problems such as an unterminated quote become diagnostics.
pub fn lex(text: &str, file: &Arc<Path>) -> (Vec<Token<'static>>, Vec<Diagnostic>) {
    let lines: Vec<Line> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| Line {
            file: file.clone(),
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            text: l.strip_suffix('\r').unwrap_or(l).to_string(),
        })
        .collect();
    let (toks, diags) = lex_impl(&lines, true);
    (toks.into_iter().map(Token::into_owned).collect(), diags)
}

/// Tokens of preprocessed lines (comments already removed).
pub fn lex_lines(lines: &[Line]) -> (Vec<Token<'_>>, Vec<Diagnostic>) {
    lex_impl(lines, false)
}

fn lex_impl(lines: &[Line], comments: bool) -> (Vec<Token<'_>>, Vec<Diagnostic>) {
    let mut toks = Vec::with_capacity(lines.len() * 4);
    let mut diags = Vec::new();
    // One buffer for every line's characters.
    let mut chars = Vec::new();
    for (idx, l) in lines.iter().enumerate() {
        // The line itself ends it, for the statements that read it raw (`Node::raw`).
        let mut text = Cow::Borrowed(l.text.as_str());
        // keepalived's `decomment`: a `\` ending the line loses the blanks before it. The
        // line is then another string: its tokens are copied out of it.
        if let Some(body) = l.text.strip_suffix('\\') {
            let glued = format!("{}\\", body.trim_end_matches(is_blank));
            let mut own = Vec::new();
            lex_line(
                &glued,
                &l.file,
                l.line,
                comments,
                &mut chars,
                (&mut own, &mut diags),
            );
            toks.extend(own.into_iter().map(|t| t.into_owned()));
            text = Cow::Owned(glued);
        } else {
            let out = (&mut toks, &mut diags);
            lex_line(&l.text, &l.file, l.line, comments, &mut chars, out);
        }
        if idx + 1 < lines.len() {
            let col = u32::try_from(l.text.chars().count() + 1).unwrap_or(u32::MAX);
            toks.push(Token {
                kind: TokenKind::Newline,
                text,
                pos: Pos::new(&l.file, l.line, col),
            });
        }
    }
    if let Some(last) = toks.last() {
        if last.kind != TokenKind::Newline {
            let mut end = last.pos.clone();
            end.col += 1;
            let text = lines.last().map_or("", |l| l.text.as_str());
            toks.push(Token {
                kind: TokenKind::Newline,
                text: Cow::Borrowed(text),
                pos: end,
            });
        }
    }
    (toks, diags)
}

/// Lex one line (its trailing `\`, if any, already glued) into `toks` and `diags`; `chars` is
/// scratch space (each character with its byte offset). Every token borrows the line.
///
/// keepalived's `alloc_strvec`: only a `"` quotes, up to the next `"` (no escapes: a script
/// line is split again, by its own rules, from the statement's raw text, [`crate::tree::Node::raw`]);
/// a `"` ends the word before it. A `'` and a `\` are characters like any other here.
fn lex_line<'a>(
    line: &'a str,
    file: &Arc<Path>,
    line_no: u32,
    comments: bool,
    chars: &mut Vec<(usize, char)>,
    (toks, diags): (&mut Vec<Token<'a>>, &mut Vec<Diagnostic>),
) {
    let col = |i: usize| u32::try_from(i + 1).unwrap_or(u32::MAX);
    if line.is_ascii() && !line.contains('"') {
        return lex_plain(line, file, line_no, comments, toks);
    }
    chars.clear();
    chars.extend(line.char_indices());
    // The word being read: where it starts (character, byte).
    let mut word: Option<(usize, usize)> = None;
    let flush = |word: &mut Option<(usize, usize)>, end: usize, toks: &mut Vec<Token<'a>>| {
        if let Some((at, from)) = word.take() {
            toks.push(Token {
                kind: TokenKind::Word,
                text: Cow::Borrowed(&line[from..end]),
                pos: Pos::new(file, line_no, col(at)),
            });
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '#' | '!' if comments => {
                flush(&mut word, at, toks);
                return;
            }
            c if is_blank(c) => flush(&mut word, at, toks),
            '{' | '}' => {
                flush(&mut word, at, toks);
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                toks.push(Token {
                    kind,
                    text: Cow::Borrowed(&line[at..at + 1]),
                    pos: Pos::new(file, line_no, col(i)),
                });
            }
            '"' => {
                flush(&mut word, at, toks);
                let Some(close) = chars[i + 1..].iter().position(|&(_, c)| c == '"') else {
                    // keepalived reports it, keeps the words before it and drops the rest of
                    // the line (`-t` counts it).
                    diags.push(
                        Diagnostic::warning(
                            &Pos::new(file, line_no, col(i)),
                            format!("Unmatched quote: '{}'", line.trim_matches(is_blank)),
                        )
                        .with_help("close the string with `\"` on the same line"),
                    );
                    return;
                };
                let end = i + 1 + close;
                toks.push(Token {
                    kind: TokenKind::Quoted,
                    text: Cow::Borrowed(&line[at + 1..chars[end].0]),
                    pos: Pos::new(file, line_no, col(i)),
                });
                i = end;
            }
            _ => {
                word.get_or_insert((i, at));
            }
        }
        i += 1;
    }
    flush(&mut word, line.len(), toks);
}

/// [`lex_line`] of an ASCII line without quotes (most lines): a byte is a character, so
/// columns are byte offsets and every word is a slice of the line.
fn lex_plain<'a>(
    line: &'a str,
    file: &Arc<Path>,
    line_no: u32,
    comments: bool,
    toks: &mut Vec<Token<'a>>,
) {
    let col = |i: usize| u32::try_from(i + 1).unwrap_or(u32::MAX);
    let mut start = None;
    let flush = |start: &mut Option<usize>, end: usize, toks: &mut Vec<Token<'a>>| {
        if let Some(s) = start.take() {
            toks.push(Token {
                kind: TokenKind::Word,
                text: Cow::Borrowed(&line[s..end]),
                pos: Pos::new(file, line_no, col(s)),
            });
        }
    };
    for (i, &c) in line.as_bytes().iter().enumerate() {
        match c {
            b'#' | b'!' if comments => {
                flush(&mut start, i, toks);
                return;
            }
            c if is_blank(char::from(c)) => flush(&mut start, i, toks),
            b'{' | b'}' => {
                flush(&mut start, i, toks);
                let kind = if c == b'{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                toks.push(Token {
                    kind,
                    text: Cow::Borrowed(&line[i..i + 1]),
                    pos: Pos::new(file, line_no, col(i)),
                });
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    flush(&mut start, line.len(), toks);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lx(s: &str) -> Vec<(TokenKind, String, u32, u32)> {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (t, d) = lex(s, &f);
        assert!(d.is_empty(), "{d:?}");
        // A line end holds its line (see `line_ends_hold_their_line`).
        t.into_iter()
            .map(|t| match t.kind {
                Newline => (t.kind, String::new(), t.pos.line, t.pos.col),
                _ => (t.kind, t.text.into_owned(), t.pos.line, t.pos.col),
            })
            .collect()
    }

    use TokenKind::*;

    /// The tokens that are values (kind and text).
    fn values(t: &[(TokenKind, String, u32, u32)]) -> Vec<(TokenKind, &str)> {
        t.iter()
            .filter(|t| t.0 != Newline)
            .map(|t| (t.0, t.1.as_str()))
            .collect()
    }

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
        let words = values(&t);
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
    fn trailing_backslash_is_glued_not_a_continuation() {
        let t = lx("a b \\\n  c");
        assert_eq!(
            t,
            vec![
                (Word, "a".into(), 1, 1),
                (Word, "b\\".into(), 1, 3),
                (Newline, "".into(), 1, 6),
                (Word, "c".into(), 2, 3),
                (Newline, "".into(), 2, 4),
            ]
        );
    }

    #[test]
    fn only_keepalived_white_space_separates_words() {
        let t = lx("priority\u{a0}100\u{3000}x\ty");
        let words: Vec<&str> = t.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(words, ["priority\u{a0}100\u{3000}x", "y", ""]);
    }

    /// Columns count characters, whichever way the line is read (with quotes or without).
    #[test]
    fn columns_count_characters() {
        for src in ["\u{e9}t\u{e9} a{ b", "\u{e9}t\u{e9} a{ \"b\""] {
            let got: Vec<(String, u32)> = lx(src).into_iter().map(|t| (t.1, t.3)).collect();
            let want = [("\u{e9}t\u{e9}", 1), ("a", 5), ("{", 6), ("b", 8), ("", 9)];
            let want: Vec<(String, u32)> = want.iter().map(|(w, c)| (w.to_string(), *c)).collect();
            assert_eq!(got, want, "{src}");
        }
    }

    #[test]
    fn unterminated_quote_is_reported() {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (t, d) = lex("a \"oops { x\nb", &f);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].col), (1, 3));
        assert_eq!(d[0].message, "Unmatched quote: 'a \"oops { x'");
        // keepalived counts it and runs: the words before it are kept, the rest of the line
        // dropped, the next one read.
        assert!(!d[0].is_error());
        let words: Vec<&str> = t
            .iter()
            .filter(|t| t.kind != Newline)
            .map(|t| &*t.text)
            .collect();
        assert_eq!(words, ["a", "b"]);
    }

    /// keepalived's `alloc_strvec`: only `"` quotes, with no escapes, and a `"` ends the word
    /// before it; `'` and `\\` are characters like any other.
    #[test]
    fn only_double_quotes_quote() {
        let t = lx("auth_type 'PASS' a\"b c\"d \"x\\\"  'y z'");
        let words = values(&t);
        assert_eq!(
            words,
            [
                (Word, "auth_type"),
                (Word, "'PASS'"),
                (Word, "a"),
                (Quoted, "b c"),
                (Word, "d"),
                (Quoted, "x\\"),
                (Word, "'y"),
                (Word, "z'"),
            ]
        );
    }

    /// Each line end holds its line, for the statements read from their raw line.
    #[test]
    fn line_ends_hold_their_line() {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (t, _) = lex("a 'b c'\n\nd \\", &f);
        let lines: Vec<&str> = t
            .iter()
            .filter(|t| t.kind == Newline)
            .map(|t| &*t.text)
            .collect();
        assert_eq!(lines, ["a 'b c'", "", "d \\"]);
    }
}
