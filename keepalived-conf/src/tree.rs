//! Keyword tree: `keyword args… [{ children… }]`, generic over keepalived's vocabulary.
//! (`include` and the rest of the line preprocessing happen before, in `preprocess`.)

use std::borrow::Cow;
use std::sync::Arc;

use super::diag::{Diagnostic, Diags, Pos};
use super::lexer::{Token, TokenKind};

/// Nesting beyond this is refused (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = 32;

/// One statement; its words borrow the lines they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    pub keyword: Token<'a>,
    pub args: Vec<Token<'a>>,
    pub children: Children<'a>,
    /// Position of the `{` when the statement has a block.
    pub block: Option<Pos>,
    /// Position of the matching `}` (keepalived reports some block errors there).
    pub close: Option<Pos>,
    /// The line the keyword is on (after preprocessing).
    pub line: Cow<'a, str>,
}

impl Node<'_> {
    pub fn name(&self) -> &str {
        &self.keyword.text
    }
    pub fn pos(&self) -> &Pos {
        &self.keyword.pos
    }

    /// The statement as keepalived's handlers see its raw line (`buf_extern`): from the keyword
    /// to the first `{` or `}` outside a `"…"` (keepalived reads what follows one as another
    /// line), or to the end of the line. Script lines are split again from it, by their own
    /// rules ([`checks::script::words`]).
    pub fn raw(&self) -> &str {
        let col = self.keyword.pos.col.saturating_sub(1) as usize;
        let from = self
            .line
            .char_indices()
            .nth(col)
            .map_or(self.line.len(), |(b, _)| b);
        let rest = &self.line[from..];
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match c {
                '"' => {
                    quoted = !quoted;
                    false
                }
                '{' | '}' => !quoted,
                _ => false,
            })
            .map_or(rest.len(), |(b, _)| b);
        rest[..end].trim_end_matches([' ', '\t'])
    }

    /// Whether the raw line has more than the keyword: it has words the lexer could not read
    /// (after an unterminated `"`), for the statements split from their raw line.
    pub fn has_raw_value(&self) -> bool {
        self.raw()
            .get(self.keyword.text.len()..)
            .is_some_and(|v| !v.trim().is_empty())
    }
}

/// The statements of a block, shared: the model builder hands a block's lines on to the
/// block around it (keepalived's reading of a stray `{`) without copying them, and a
/// statement without a block has none allocated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children<'a>(Option<Arc<[Node<'a>]>>);

impl<'a> std::ops::Deref for Children<'a> {
    type Target = [Node<'a>];
    fn deref(&self) -> &[Node<'a>] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl<'a> From<Vec<Node<'a>>> for Children<'a> {
    fn from(nodes: Vec<Node<'a>>) -> Self {
        Self((!nodes.is_empty()).then(|| nodes.into()))
    }
}

impl<'c, 'a> IntoIterator for &'c Children<'a> {
    type Item = &'c Node<'a>;
    type IntoIter = std::slice::Iter<'c, Node<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Build the statement tree from a token stream. The tokens' text moves into the nodes
/// (no copy per word).
pub fn parse<'a>(tokens: Vec<Token<'a>>, diags: &mut Diags) -> Vec<Node<'a>> {
    parse_file(tokens, diags).0
}

/// [`parse`], with where each `}` at the top level stands (each after the statements before
/// it): they close nothing in the tree, but keepalived reads them where they are, and one
/// closes a block written without its `{` before it.
pub fn parse_file<'a>(
    mut tokens: Vec<Token<'a>>,
    diags: &mut Diags,
) -> (Vec<Node<'a>>, Vec<(usize, Pos)>) {
    let mut p = Parser {
        toks: &mut tokens,
        i: 0,
        stray: Vec::new(),
    };
    let nodes = p.block(0, None, diags);
    (nodes, p.stray)
}

struct Parser<'t, 'a> {
    toks: &'t mut [Token<'a>],
    i: usize,
    /// The `}`s at the top level: how many statements precede each, and where it is.
    stray: Vec<(usize, Pos)>,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.i)
    }

    /// The token at `i`, its text moved out (each is taken once; only kinds and positions
    /// are looked at again).
    fn take(&mut self, i: usize) -> Token<'a> {
        let t = &mut self.toks[i];
        Token {
            kind: t.kind,
            text: std::mem::take(&mut t.text),
            pos: t.pos.clone(),
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek().is_some_and(|t| t.kind == TokenKind::Newline) {
            self.i += 1;
        }
    }

    /// Statements until the matching `}` (or the end at depth 0).
    fn block(&mut self, depth: usize, open: Option<&Pos>, diags: &mut Diags) -> Vec<Node<'a>> {
        let mut nodes = Vec::new();
        loop {
            self.skip_newlines();
            // A stray `}` or `{` is reported (keepalived's `-t` fails) and dropped, and the
            // file still runs, as keepalived runs it: the tree is the one keepalived reads.
            // A block still open at the end of the file is closed there, as keepalived closes
            // it, and reported; a `{` keepalived reads as stray (after a keyword that takes no
            // block) is dropped later, where the keywords are known, with its lines read one
            // level up. (A reload refuses such a file: see [`crate::Report::unbalanced`].)
            let Some(t) = self.peek().is_some().then(|| self.take(self.i)) else {
                if let Some(pos) = open {
                    diags.push(Diagnostic::warning(pos, crate::diag::UNBALANCED).with_help(
                        "add the matching `}`, or remove a `{` after a keyword that takes no block",
                    ));
                }
                return nodes;
            };
            self.i += 1;
            match t.kind {
                TokenKind::Close if depth > 0 => return nodes,
                TokenKind::Close => {
                    diags.push(Diagnostic::warning(&t.pos, "Extra '}' found"));
                    self.stray.push((nodes.len(), t.pos.clone()));
                }
                TokenKind::Open => {
                    diags.push(Diagnostic::warning(&t.pos, "Unexpected '{' - ignoring"));
                }
                TokenKind::Newline => {}
                TokenKind::Word | TokenKind::Quoted => nodes.push(self.statement(t, depth, diags)),
            }
        }
    }

    fn statement(&mut self, keyword: Token<'a>, depth: usize, diags: &mut Diags) -> Node<'a> {
        let mut args = Vec::new();
        while self.peek().is_some_and(Token::is_value) {
            args.push(self.take(self.i));
            self.i += 1;
        }
        // `{` on the same line, or alone on a following line.
        let save = self.i;
        let line = self.toks[save..]
            .iter()
            .find(|t| t.kind == TokenKind::Newline)
            .map(|t| t.text.clone())
            .unwrap_or_default();
        self.skip_newlines();
        let mut node = Node {
            keyword,
            args,
            children: Children::default(),
            block: None,
            close: None,
            line,
        };
        match self.peek() {
            Some(t) if t.kind == TokenKind::Open => {
                let pos = t.pos.clone();
                self.i += 1;
                if depth + 1 >= MAX_DEPTH {
                    diags.push(Diagnostic::error(&pos, "blocks nested too deeply"));
                    self.i = self.toks.len();
                } else {
                    node.children = self.block(depth + 1, Some(&pos), diags).into();
                    node.close = self
                        .toks
                        .get(self.i.wrapping_sub(1))
                        .filter(|t| t.kind == TokenKind::Close)
                        .map(|t| t.pos.clone());
                }
                node.block = Some(pos);
            }
            _ => self.i = save,
        }
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;
    use std::path::Path;

    fn tree(s: &str) -> (Vec<Node<'static>>, Diags) {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (t, _) = lex(s, &f);
        let mut d = Diags::default();
        (parse(t, &mut d), d)
    }

    fn shape(n: &[Node]) -> String {
        n.iter()
            .map(|n| {
                let args: Vec<&str> = n.args.iter().map(|a| &*a.text).collect();
                let mut s = format!("{}({})", n.name(), args.join(","));
                if n.block.is_some() {
                    s += &format!("{{{}}}", shape(&n.children));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn brace_layouts_give_the_same_tree() {
        let want = "v(X){state(MASTER);vip(){a(dev,e)}};g(){}";
        for src in [
            "v X { state MASTER\n vip { a dev e } }\ng {}",
            "v X\n{\n state MASTER\n vip\n {\n a dev e\n }\n}\ng\n{\n}\n",
            "v X {\n state MASTER\n vip {\n  a dev e\n }\n}\ng { }",
        ] {
            let (n, d) = tree(src);
            assert!(d.list().is_empty(), "{src}: {:?}", d.list());
            assert_eq!(shape(&n), want, "{src}");
        }
    }

    #[test]
    fn unbalanced_braces() {
        let (n, d) = tree("a {\n b\n");
        assert_eq!(d.list().len(), 1);
        assert_eq!((d.list()[0].line, d.list()[0].col), (1, 3));
        assert_eq!(shape(&n), "a(){b()}");
        let (n, d) = tree("a\n}\nb");
        assert_eq!(d.list().len(), 1);
        assert_eq!(d.list()[0].line, 2);
        assert_eq!(shape(&n), "a();b()");
        // A stray `{` is dropped, not taken as a block that swallows the rest of the file.
        let (n, d) = tree("{\na {\n b\n}\nc");
        assert_eq!(d.list().len(), 1);
        assert_eq!(d.list()[0].line, 1);
        assert_eq!(shape(&n), "a(){b()};c()");
    }

    /// keepalived reports a stray brace and still runs the file: not a refusal.
    #[test]
    fn stray_braces_do_not_refuse_the_file() {
        for src in ["a\n}\n", "{\na\n", "a { b }\n}\n}\n", "{\na { b }\n}\n"] {
            let (_, d) = tree(src);
            assert!(!d.list().is_empty(), "{src:?} is reported");
            assert!(
                d.list().iter().all(|x| !x.is_error()),
                "{src:?}: {:?}",
                d.list()
            );
            assert!(d.list().iter().all(|x| x.keepalived_flags()), "{src:?}");
        }
    }
}
