//! The keyword registry: one row per keepalived keyword and block, saying what it takes, how
//! far vrrpd supports it and what it sets. A statement is parsed exactly once, by its row:
//! the row's [`Arg`] reads the value (with keepalived's ranges) and hands the typed, spanned
//! result to the setter. Nothing reads a keyword's words anywhere else, so a keyword cannot be
//! spelled twice or fall back to a default behind the user's back.
//!
//! # Adding a keyword
//!
//! Find the table of the block it belongs in (`build::global::TABLE` for `global_defs`,
//! `build::instance::TABLE` for `vrrp_instance`, `build::vs::VIRTUAL_SERVER`, ...) and add a
//! row:
//!
//! ```ignore
//! kw("lvs_sync_daemon", Status::Supported, Arg::Custom("INTERFACE VRRP_INSTANCE [id N] …", set_sync_daemon)),
//! ```
//!
//! - The name is keepalived's, exactly (the registry test compares every name with what
//!   keepalived 2.2.7 installs: a keyword keepalived does not know is refused unless it is
//!   marked [`Status::Extension`]).
//! - [`Arg`] picks the shape. A plain value (`Int`, `Secs`, `Ip`, `Word`, `Line`, `Choice`,
//!   `Bool`, `Flag`) is parsed and range-checked here, in keepalived's words, and a bad value is
//!   reported and skipped (the default stays), as keepalived does. `Unsigned` and `Timer` read
//!   as keepalived's `read_unsigned` and `read_timer` do ([`Num`]: its range, its handler's
//!   words, and the value a bad one leaves). `Block` and `Custom` get the statement and parse
//!   it themselves (a nested table, or a free-form line).
//! - [`Status`] says how far it is implemented; `Partial` and `Unsupported` carry the reason,
//!   which `docs/COMPATIBILITY.md` prints (regenerate it with `vrrpd --compat-table`).
//! - The setter stores the value in the block's draft; checks across keywords belong in the
//!   draft's `resolve`, where every value is known.

use std::net::IpAddr;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::diag::{
    ascii_mask, out_of_reach, suggest, suggest_masked, Diagnostic, Diags, Flag, Pos, Spanned,
};
use super::host::Host;
use super::lexer::Token;
use super::tree::{Children, Node};

/// Which of keepalived's sides a load reads. keepalived's VRRP process (`-P`) installs the
/// checker keywords inactive, so it skips `virtual_server` blocks unread, errors and all;
/// `-t` reads both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    pub vrrp: bool,
    pub checker: bool,
}

impl Default for Sides {
    fn default() -> Self {
        Self {
            vrrp: true,
            checker: true,
        }
    }
}

/// What a handler gets besides its statement: where messages go, the machine it asks about
/// interfaces, tables and scripts, and which sides are read. (`'a`: the lines the statements
/// borrow, which a stray block's queue holds on to.)
pub struct Cx<'h, 'a> {
    pub diags: Diags,
    pub host: &'h dyn Host,
    pub sides: Sides,
    /// The `bfd_instance` names the file defines: vrrpd has no BFD, but keepalived checks
    /// what refers to one ([`bfd_refs`]).
    pub bfd_instances: Vec<String>,
    /// Who scripts without a user of their own run as (decided at the first one).
    pub script_user: crate::script_user::DefaultUser,
    /// A block keyword written without its `{` (where): what comes after it is its block,
    /// read by the block it stands in (`Cx::give_block`).
    block_wanted: Option<(Pos, Take)>,
    /// What the statement just dispatched leaves to the block it stands in, to be read
    /// there next (see [`Item`]).
    pending: Vec<Item<'a>>,
    /// The suggestion for each unknown keyword met so far, by table (its address and length)
    /// and word: a file of a thousand unknown lines (a `~SEQ` of a typo) asks for a handful.
    suggestions: FxHashMap<(usize, usize), Suggestions>,
}

/// What "did you mean" knows of one keyword table.
struct Suggestions {
    /// Its names, each with its [`ascii_mask`].
    names: Box<[(&'static str, u128)]>,
    /// Every ASCII character its names use ([`ascii_mask`]).
    alphabet: u128,
    /// Its longest name, in bytes.
    longest: usize,
    /// The suggestion (or none) for each unknown word met so far.
    known: FxHashMap<Box<str>, Option<&'static str>>,
}

/// What a block reads, in order: a statement, or a `}` keepalived sees where the tree has
/// none. keepalived knows which keywords open a block only as it reads them: the `{` after
/// an unknown keyword (or after one that takes no block) is dropped, the lines inside are
/// read in the block around it, and the `}` then closes *that* block, whose remaining lines
/// are read one level up, and so on. The tree is generic, so the registry replays this.
#[derive(Debug, Clone)]
enum Item<'a> {
    /// The statements of a block from this index on.
    Rest(Children<'a>, usize),
    /// A `}` read where no block is open for it. A block the file ends in has none: the
    /// lines after one that closed it early end with the file, as in keepalived.
    Close(Pos),
}

impl<'h> Cx<'h, '_> {
    pub fn new(host: &'h dyn Host, sides: Sides) -> Self {
        Self {
            diags: Diags::default(),
            host,
            sides,
            bfd_instances: Vec::new(),
            script_user: Default::default(),
            block_wanted: None,
            pending: Vec::new(),
            suggestions: FxHashMap::default(),
        }
    }

    /// The keyword of `table` that `word` is a plausible typo of (see [`suggest`]).
    fn suggest_keyword<T>(&mut self, table: &[Keyword<T>], word: &str) -> Option<&'static str> {
        let key = (table.as_ptr() as usize, table.len());
        self.suggest_among(
            key,
            &|| table.iter().map(|k| (k.name, k.mask)).collect(),
            word,
        )
    }

    /// [`Self::suggest_keyword`] for any table: `names` lists its rows (with their masks) the
    /// first time one of its words is unknown.
    fn suggest_among(
        &mut self,
        key: (usize, usize),
        names: &dyn Fn() -> Box<[(&'static str, u128)]>,
        word: &str,
    ) -> Option<&'static str> {
        let words = self.suggestions.entry(key).or_insert_with(|| {
            let names = names();
            Suggestions {
                alphabet: names.iter().fold(0, |a, (_, m)| a | m),
                longest: names.iter().map(|(n, _)| n.len()).max().unwrap_or(0),
                names,
                known: FxHashMap::default(),
            }
        });
        if out_of_reach(word, words.alphabet, words.longest) {
            return None;
        }
        if let Some(s) = words.known.get(word) {
            return *s;
        }
        let s = suggest_masked(word, words.names.iter().copied());
        words.known.insert(word.into(), s);
        s
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn error_count(&self) -> usize {
        self.diags.error_count()
    }
}

/// An address as keepalived reads a socket address (its `inet_stosockaddr`): a range or a
/// prefix length after it is dropped, so `192.0.2.1/24` and `192.0.2.1-9` are `192.0.2.1`.
/// Real files write `unicast_src_ip 192.0.2.1/24`, and keepalived takes it. It cuts at the
/// first `-` if there is one, else at the `/`: `192.0.2.1/-1` is `192.0.2.1/`, no address.
pub fn sockaddr_ip(text: &str) -> Option<IpAddr> {
    let end = text
        .find('-')
        .or_else(|| text.find('/'))
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// The entries of a `track_bfd { NAME… }` block (vrrpd has no BFD): each naming no
/// `bfd_instance` of the file is reported on its line, as keepalived reports it.
pub fn bfd_refs(owner: &str, n: &Node, cx: &mut Cx) {
    for c in &n.children {
        if !cx.bfd_instances.iter().any(|b| b == c.name()) {
            cx.push(Diagnostic::warning(
                c.pos(),
                format!("({owner}) track bfd {} not found, ignoring...", c.name()),
            ));
        }
    }
}

/// How far a keyword is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Supported,
    /// Accepted and acted on, with the given limitation.
    Partial(&'static str),
    /// Known to keepalived but not implemented here: warned about and skipped (with its block).
    Unsupported(&'static str),
    /// Ours, not keepalived's (keepalived refuses it): what it does.
    Extension(&'static str),
}

/// What a keyword takes, and the setter receiving it once parsed.
pub enum Arg<T: 'static> {
    /// No value (`nopreempt`); words after it are ignored, as keepalived does.
    Flag(fn(&mut T, &Pos)),
    /// An optional BOOL (`on|off|true|false|yes|no`); absent means true.
    Bool(fn(&mut T, Spanned<bool>)),
    /// An integer in `min..=max`.
    Int(i64, i64, fn(&mut T, Spanned<i64>)),
    /// A time in seconds (fractions allowed) in `min..=max`.
    Secs(f64, f64, fn(&mut T, Spanned<Duration>)),
    /// An unsigned integer read as keepalived's `read_unsigned` reads it ([`Num`]).
    Unsigned(Num, fn(&mut T, Spanned<u64>)),
    /// A time read as keepalived's `read_timer` reads it ([`Num`], bounds in microseconds).
    Timer(Num, fn(&mut T, Spanned<Duration>)),
    /// An IP address.
    Ip(fn(&mut T, Spanned<IpAddr>)),
    /// One word or quoted string (the first; more are ignored).
    Word(fn(&mut T, Spanned<String>)),
    /// Every word of the line, joined by one space (`USER [GROUP]`, a regex).
    Line(fn(&mut T, Spanned<String>)),
    /// A command: its first word only, as keepalived takes it (a command with arguments is
    /// written in quotes); words after it are ignored, with a notice.
    Command(fn(&mut T, Spanned<String>)),
    /// One of these words.
    Choice(&'static [&'static str], fn(&mut T, Spanned<&'static str>)),
    /// A `{ … }` block; the handler dispatches its children over the table named here.
    Block(&'static str, for<'a> fn(&mut T, &Node<'a>, &mut Cx<'_, 'a>)),
    /// A `{ … }` block of entries, one per line (addresses, interfaces, names), named here;
    /// the handler reads its children as entries. keepalived reads such a block line by
    /// line up to the first `}` (`alloc_value_block`), so one written without its `{` takes
    /// the lines after it (`Stream::take_lines`).
    Items(&'static str, for<'a> fn(&mut T, &Node<'a>, &mut Cx<'_, 'a>)),
    /// A syntax of its own (written here for the documentation); the handler parses it.
    Custom(&'static str, for<'a> fn(&mut T, &Node<'a>, &mut Cx<'_, 'a>)),
    /// Nothing is read: the statement is skipped.
    Skip,
    /// Nothing is read: the statement and its block are skipped.
    SkipBlock,
}

impl<T> Arg<T> {
    /// The argument as the compatibility table shows it.
    pub fn syntax(&self) -> String {
        self.shape().syntax()
    }

    /// What the row reads, for [`read_value`].
    fn shape(&self) -> Shape {
        match self {
            Arg::Flag(_) => Shape::Flag,
            Arg::Bool(_) => Shape::Bool,
            Arg::Int(lo, hi, _) => Shape::Int(*lo, *hi),
            Arg::Secs(lo, hi, _) => Shape::Secs(*lo, *hi),
            Arg::Unsigned(num, _) => Shape::Unsigned(*num),
            Arg::Timer(num, _) => Shape::Timer(*num),
            Arg::Ip(_) => Shape::Ip,
            Arg::Word(_) => Shape::Word,
            Arg::Line(_) => Shape::Line,
            Arg::Command(_) => Shape::Command,
            Arg::Choice(words, _) => Shape::Choice(words),
            Arg::Block(ctx, _) => Shape::Block(ctx),
            Arg::Items(ctx, _) => Shape::Items(ctx),
            Arg::Custom(syntax, _) => Shape::Custom(syntax),
            Arg::Skip => Shape::Skip,
            Arg::SkipBlock => Shape::SkipBlock,
        }
    }
}

/// What keepalived does with a keyword written without the value it takes. Most of its
/// handlers read the value unchecked and keepalived stops reading there (`-t` exits 2); some
/// check first, log and go on without the line. Templates left unrendered
/// (`router_id {{ inventory_hostname }}`) and empty shell variables make such lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMissing {
    /// keepalived stops reading the file ([`missing_value`]); for a skipped row, the line
    /// is passed over as any skipped line.
    Default,
    /// keepalived logs this and ignores the line (`-t` counts it: exit 5).
    Warn(&'static str),
    /// keepalived stops reading the file, also for a row vrrpd skips.
    Abort,
    /// keepalived ignores the line without a word.
    Ignore,
}

/// One row: keepalived's name, the argument, the status.
pub struct Keyword<T: 'static> {
    pub name: &'static str,
    pub status: Status,
    pub arg: Arg<T>,
    /// keepalived's handling of the line without its value.
    pub when_missing: WhenMissing,
    /// The name's [`ascii_mask`], for "did you mean" (computed at compile time).
    mask: u128,
}

/// A row of a table.
pub const fn kw<T>(name: &'static str, status: Status, arg: Arg<T>) -> Keyword<T> {
    Keyword {
        name,
        status,
        arg,
        when_missing: WhenMissing::Default,
        mask: ascii_mask(name),
    }
}

/// `row`, whose line keepalived handles this way when the value is missing.
pub const fn when_missing<T>(w: WhenMissing, mut row: Keyword<T>) -> Keyword<T> {
    row.when_missing = w;
    row
}

/// `row`, whose line keepalived logs with `message` and ignores when the value is missing.
pub const fn missing<T>(message: &'static str, row: Keyword<T>) -> Keyword<T> {
    when_missing(WhenMissing::Warn(message), row)
}

/// A supported row.
pub const fn ok<T>(name: &'static str, arg: Arg<T>) -> Keyword<T> {
    kw(name, Status::Supported, arg)
}

/// A keyword keepalived knows that vrrpd does not act on: warned about and skipped. A `{`
/// after it is stray, as keepalived reads it (the keyword takes no block).
pub const fn skip<T>(name: &'static str, why: &'static str) -> Keyword<T> {
    kw(name, Status::Unsupported(why), Arg::Skip)
}

/// [`skip`] for a block keyword: the block goes with it.
pub const fn skip_block<T>(name: &'static str, why: &'static str) -> Keyword<T> {
    kw(name, Status::Unsupported(why), Arg::SkipBlock)
}

/// A keyword vrrpd does not act on whose value keepalived checks: checked as `arg` says
/// (whose setter does nothing), warned about and otherwise skipped.
pub const fn checked<T>(name: &'static str, why: &'static str, arg: Arg<T>) -> Keyword<T> {
    kw(name, Status::Unsupported(why), arg)
}

/// A row as the documentation and the registry test see it, whatever the draft type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowInfo {
    pub name: &'static str,
    pub syntax: String,
    pub status: Status,
}

/// A block's table with keepalived's name for the block (`vrrp_instance`, `HTTP_GET`, ...).
#[derive(Debug, Clone)]
pub struct Context {
    /// Where the block sits, as a path: `virtual_server/real_server/HTTP_GET/url`.
    pub path: &'static str,
    pub rows: Vec<RowInfo>,
}

impl Context {
    pub fn of<T>(path: &'static str, table: &[Keyword<T>]) -> Self {
        Self {
            path,
            rows: table
                .iter()
                .map(|k| RowInfo {
                    name: k.name,
                    syntax: k.arg.syntax(),
                    status: k.status,
                })
                .collect(),
        }
    }
}

const BOOL_WORDS: &[(&str, bool)] = &[
    ("on", true),
    ("true", true),
    ("yes", true),
    ("off", false),
    ("false", false),
    ("no", false),
];

/// Apply every statement of `node`'s block to `target` through `table`; `ctx` names the block
/// in messages.
pub fn dispatch_block<'a, T>(
    table: &[Keyword<T>],
    ctx: &str,
    target: &mut T,
    node: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
) {
    read_block(ctx, node, cx, &mut |n, cx| {
        dispatch(table, ctx, target, n, cx)
    });
}

/// [`dispatch_block`] for any table: `each` applies one statement.
fn read_block<'a>(ctx: &str, node: &Node<'a>, cx: &mut Cx<'_, 'a>, each: Each<'_, 'a>) {
    let outer = std::mem::take(&mut cx.pending);
    if let Some(rest) = read_items(ctx, &node.children, Some(&node.children), cx, each) {
        // A `}` ended this block early (keepalived's reading): the rest of its lines, then
        // its own `}`, belong to the block around it.
        cx.pending = rest;
        cx.pending.extend(node.close.clone().map(Item::Close));
    }
    let inner = std::mem::replace(&mut cx.pending, outer);
    cx.pending.extend(inner);
}

/// One statement applied through a table to its target: the only part of reading a block
/// that depends on the table, so the rest is compiled once.
type Each<'e, 'a> = &'e mut dyn FnMut(&Node<'a>, &mut Cx<'_, 'a>);

/// The top level's statements, read as [`dispatch_block`] reads a block's, with the `}`s
/// among them (`closes`: after how many statements, where): one closes a block written
/// without its `{` before it, and else is one more unknown keyword, as keepalived reads it.
pub fn dispatch_top<'a, T>(
    table: &[Keyword<T>],
    target: &mut T,
    nodes: &[Node<'a>],
    closes: &[(usize, Pos)],
    cx: &mut Cx<'_, 'a>,
) {
    let each: Each = &mut |n, cx| dispatch(table, TOP_LEVEL, target, n, cx);
    if closes.is_empty() {
        let _ = read_items(TOP_LEVEL, nodes, None, cx, each);
        return;
    }
    // The statements between the `}`s, each run a block of its own to queue.
    let mut from = 0;
    for (before, pos) in closes {
        if *before > from {
            cx.pending
                .push(Item::Rest(nodes[from..*before].to_vec().into(), 0));
        }
        cx.pending.push(Item::Close(pos.clone()));
        from = *before;
    }
    let _ = read_items(TOP_LEVEL, &nodes[from..], None, cx, each);
}

/// Read `nodes` (the statements of `shared`, when they are a block's) in the block `ctx`;
/// `Some(rest)` when a `}` ends the block before them. Only what a stray block leaves to be
/// read next is queued, and the nodes themselves are never copied.
fn read_items<'a>(
    ctx: &str,
    nodes: &[Node<'a>],
    shared: Option<&Children<'a>>,
    cx: &mut Cx<'_, 'a>,
    each: Each<'_, 'a>,
) -> Option<Vec<Item<'a>>> {
    // What the caller queued comes first (the top level's runs between its `}`s).
    let mut s = Stream {
        queue: std::mem::take(&mut cx.pending).into(),
        nodes,
        next: 0,
    };
    loop {
        match s.queue.pop_front() {
            None => {
                let node = nodes.get(s.next)?;
                s.next += 1;
                each(node, cx);
                cx.give_block(node, ctx, &mut s, each);
            }
            Some(Item::Rest(block, i)) => {
                if i + 1 < block.len() {
                    s.queue.push_front(Item::Rest(block.clone(), i + 1));
                }
                each(&block[i], cx);
                cx.give_block(&block[i], ctx, &mut s, each);
            }
            Some(Item::Close(pos)) if ctx == TOP_LEVEL => {
                cx.push(Diagnostic::warning(&pos, "Unknown keyword '}'"));
                continue;
            }
            Some(Item::Close(_)) => {
                let mut rest: Vec<Item> = s.queue.into();
                if s.next < nodes.len() {
                    // (Only the top level has no block to share, and its `}` is read above.)
                    let block = shared.cloned().unwrap_or_else(|| nodes.to_vec().into());
                    rest.push(Item::Rest(block, s.next));
                }
                return Some(rest);
            }
        }
        for i in std::mem::take(&mut cx.pending).into_iter().rev() {
            s.queue.push_front(i);
        }
    }
}

/// What is left to read in a block: what a stray block queued, then its statements from
/// `next`.
struct Stream<'n, 'a> {
    queue: std::collections::VecDeque<Item<'a>>,
    nodes: &'n [Node<'a>],
    next: usize,
}

impl<'a> Stream<'_, 'a> {
    /// The next statement (with its block) or `}`.
    fn next_line(&mut self) -> Option<Line<'a>> {
        Some(match self.queue.pop_front() {
            Some(Item::Rest(block, i)) => {
                if i + 1 < block.len() {
                    self.queue.push_front(Item::Rest(block.clone(), i + 1));
                }
                Line::Statement(block[i].clone())
            }
            Some(Item::Close(pos)) => Line::Close(pos),
            None => {
                let n = self.nodes.get(self.next)?;
                self.next += 1;
                Line::Statement(n.clone())
            }
        })
    }

    /// The statements up to the next `}` (consumed, and returned), each with its block.
    fn take_statements(&mut self) -> (Vec<Node<'a>>, Option<Pos>) {
        let mut statements = Vec::new();
        loop {
            match self.next_line() {
                Some(Line::Statement(n)) => statements.push(n),
                Some(Line::Close(pos)) => return (statements, Some(pos)),
                None => return (statements, None),
            }
        }
    }

    /// The lines up to the first `}` (consumed, and returned), each a statement of its own:
    /// a statement with a block is its line with a `{` word, then its block's lines, then its
    /// `}`, which ends the entries there. The rest of that block is read next, in the block
    /// around (its `}` then closes that one, as in keepalived). With no `}` before the
    /// block's end, its own `}` ends them and the block with them (keepalived would read on
    /// past it).
    fn take_lines(&mut self) -> (Vec<Node<'a>>, Option<Pos>) {
        let mut entries = Vec::new();
        loop {
            match self.next_line() {
                None => return (entries, None),
                Some(Line::Close(pos)) => return (entries, Some(pos)),
                Some(Line::Statement(mut n)) => {
                    if let Some(open) = n.block.take() {
                        if let Some(close) = n.close.take() {
                            self.queue.push_front(Item::Close(close));
                        }
                        let children = std::mem::take(&mut n.children);
                        if !children.is_empty() {
                            self.queue.push_front(Item::Rest(children, 0));
                        }
                        n.args.push(Token {
                            kind: crate::lexer::TokenKind::Open,
                            text: "{".into(),
                            pos: open,
                        });
                    }
                    entries.push(n);
                }
            }
        }
    }
}

/// What a block keyword written without its `{` takes as its block: keepalived reads on as
/// if the `{` were there, up to the next `}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// The statements after it, each with its own block (a block of keywords).
    Statements,
    /// The lines after it, each an entry (a block of entries); the words on its own line
    /// are kept for a named one (`virtual_server_group NAME`), dropped otherwise.
    Lines { named: bool },
}

/// What comes next in a block being read.
enum Line<'a> {
    Statement(Node<'a>),
    /// A `}`.
    Close(Pos),
}

impl<'a> Cx<'_, 'a> {
    /// When `node` is a block keyword written without its `{`, reads what comes after it in
    /// `s` as its block (keepalived's reading) and applies it with that.
    fn give_block(
        &mut self,
        node: &Node<'a>,
        ctx: &str,
        s: &mut Stream<'_, 'a>,
        each: Each<'_, 'a>,
    ) {
        let take = match self.block_wanted.take() {
            Some((at, take)) if at == *node.pos() => take,
            _ => return,
        };
        let (children, close) = match take {
            Take::Lines { .. } => s.take_lines(),
            Take::Statements => s.take_statements(),
        };
        if take == Take::Statements {
            // keepalived looks for the `{` on the next line, and reads that line on.
            let next_line = children.first().map(|c| c.pos()).or(close.as_ref());
            self.push(
                Diagnostic::warning(
                    next_line.unwrap_or(node.pos()),
                    "Missing '{' at beginning of configuration block",
                )
                .with_help(format!(
                    "keepalived reads the statements after `{}` as its block, up to the next `}}`",
                    node.name()
                )),
            );
        }
        if ctx == TOP_LEVEL && node.name() != "global_defs" {
            self.unknown_where_skipped(node, &children, close.as_ref());
        }
        let block = Node {
            keyword: node.keyword.clone(),
            // keepalived drops the words on the line of a block of entries.
            args: match take {
                Take::Lines { named: false } => Vec::new(),
                _ => node.args.clone(),
            },
            children: children.into(),
            block: Some(node.pos().clone()),
            close,
            line: node.line.clone(),
        };
        each(&block, self);
    }

    /// keepalived reads the file once per process and once first for `global_defs` alone;
    /// the passes a top-level block is not for skip it by its braces. One written without
    /// its `{` is not skipped there: each line of what it takes is an unknown top-level
    /// keyword to them (their `-t` names them all).
    fn unknown_where_skipped(&mut self, node: &Node, block: &[Node], close: Option<&Pos>) {
        fn lines<'n>(nodes: &'n [Node], out: &mut Vec<(&'n Pos, &'n str)>) {
            for n in nodes {
                out.push((n.pos(), n.name()));
                lines(&n.children, out);
                if let Some(c) = &n.close {
                    out.push((c, "}"));
                }
            }
        }
        let mut out = Vec::new();
        lines(block, &mut out);
        out.extend(close.map(|c| (c, "}")));
        for (pos, word) in out {
            self.push(
                Diagnostic::warning(
                    pos,
                    format!(
                        "Unknown keyword '{word}' to the keepalived passes that skip `{}`",
                        node.name()
                    ),
                )
                .with_help(format!(
                    "`{}` has no `{{`: keepalived's first pass (global_defs only) and its other process cannot skip its block",
                    node.name()
                )),
            );
        }
    }
}

/// [`dispatch_block`] for a block that is itself not supported: its rows' values are still
/// checked as keepalived checks them, but their own "not implemented" notices are left out
/// (the block's covers them).
pub fn dispatch_quiet<'a, T>(
    table: &[Keyword<T>],
    ctx: &str,
    target: &mut T,
    node: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
) {
    cx.diags.begin_quiet();
    dispatch_block(table, ctx, target, node, cx);
    cx.diags.end_quiet();
}

/// Apply one statement through the row named by its keyword.
pub fn dispatch<'a, T>(
    table: &[Keyword<T>],
    ctx: &str,
    target: &mut T,
    node: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
) {
    let Some(k) = table.iter().find(|k| k.name == node.name()) else {
        let suggestion = cx.suggest_keyword(table, node.name());
        unknown_keyword(ctx, node, suggestion, cx);
        return;
    };
    row_status(k.name, k.status, node, &mut cx.diags);
    apply(k, target, node, cx);
}

/// keepalived logs an unknown keyword and goes on; so does the daemon. `-t` fails (exit 5).
fn unknown_keyword<'a>(ctx: &str, node: &Node<'a>, suggestion: Option<&str>, cx: &mut Cx<'_, 'a>) {
    let mut d = Diagnostic::warning(
        node.pos(),
        format!("Unknown keyword '{}' in `{ctx}`; ignored", node.name()),
    );
    if let Some(s) = suggestion {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    cx.push(d);
    if let Some(open) = &node.block {
        stray_block(node, open, cx);
    }
}

/// vrrpd's notice for a row it implements only in part, or not at all.
fn row_status(name: &str, status: Status, node: &Node, diags: &mut Diags) {
    match status {
        Status::Partial(why) => diags.push(
            Diagnostic::notice(node.pos(), format!("`{name}` is only partly implemented"))
                .with_help(why),
        ),
        Status::Unsupported(why) => diags.push(
            Diagnostic::notice(
                node.pos(),
                format!("`{name}` is not implemented by vrrpd; ignored"),
            )
            .with_help(why),
        ),
        Status::Supported | Status::Extension(_) => {}
    }
}

/// The block of a keyword that takes none (unknown, or a plain value), read as keepalived
/// reads it: the `{` is unexpected, the lines inside are read in the block around it, and its
/// `}` closes that block (at the top level, it is one more unknown keyword).
fn stray_block<'a>(node: &Node<'a>, open: &Pos, cx: &mut Cx<'_, 'a>) {
    cx.push(Diagnostic::warning(open, "Unexpected '{' - ignoring"));
    let mut items = Vec::with_capacity(2);
    if !node.children.is_empty() {
        items.push(Item::Rest(node.children.clone(), 0));
    }
    items.extend(node.close.clone().map(Item::Close));
    cx.pending.splice(0..0, items);
}

/// The name [`dispatch`] gets for the top level.
pub const TOP_LEVEL: &str = "the top level";

/// keepalived's complaint about a keyword that needs a value and has none: it stops reading
/// the file there and exits (`-t` exits 2).
pub fn missing_value(node: &Node, diags: &mut Diags) {
    missing_word(node.pos(), node.name(), node.name(), 2, diags);
}

/// [`missing_value`] for any word of a line: keepalived names the line's first word
/// (`start`), the word before the missing one (`after`) and the missing one's position
/// (from 1), as its `null_strvec` does.
pub fn missing_word(pos: &Pos, start: &str, after: &str, position: usize, diags: &mut Diags) {
    diags.push(
        Diagnostic::error(
            pos,
            format!(
                "Configuration line starting `{start}` is missing a parameter after keyword `{after}` at word position {position}"
            ),
        )
        .flagged(Flag::Abort),
    );
}

/// A value keepalived reports and skips (the default stays).
pub fn bad_value(pos: &Pos, diags: &mut Diags, msg: impl Into<String>) {
    diags.push(Diagnostic::warning(pos, msg));
}

/// What a row reads, without its setter: reading a value is compiled once, not once for
/// every table.
#[derive(Clone, Copy)]
enum Shape {
    Flag,
    Bool,
    Int(i64, i64),
    Secs(f64, f64),
    Unsigned(Num),
    Timer(Num),
    Ip,
    /// A word, a line or a command (their setters take the same text).
    Word,
    Line,
    Command,
    Choice(&'static [&'static str]),
    /// A block of the table named here.
    Block(&'static str),
    /// A block of entries, one per line.
    Items(&'static str),
    /// A syntax of its own; it takes a block when the syntax shows one.
    Custom(&'static str),
    Skip,
    SkipBlock,
}

impl Shape {
    fn syntax(self) -> String {
        match self {
            Shape::Flag => String::new(),
            Shape::Bool => "[BOOL]".into(),
            Shape::Int(lo, hi) => format!("INTEGER {lo}..{hi}"),
            Shape::Secs(lo, hi) => format!("SECONDS {lo}..{hi}"),
            Shape::Unsigned(n) => format!("INTEGER {}..{}", n.lo, n.hi),
            Shape::Timer(n) => {
                // The bounds as short as they are written (`0.000001`, `4294.967295`).
                let short = |us| {
                    let t = secs_text(us);
                    t.trim_end_matches('0').trim_end_matches('.').to_string()
                };
                match n.hi {
                    TIMER_MAX => format!("SECONDS {}..", short(n.lo)),
                    hi => format!("SECONDS {}..{}", short(n.lo), short(hi)),
                }
            }
            Shape::Ip => "IP".into(),
            Shape::Word => "WORD".into(),
            Shape::Line => "WORDS…".into(),
            Shape::Command => "\"COMMAND\"".into(),
            Shape::Choice(words) => words.join("|"),
            Shape::Block(ctx) | Shape::Items(ctx) => format!("{{ {ctx} }}"),
            Shape::Custom(s) => s.into(),
            Shape::Skip | Shape::SkipBlock => "…".into(),
        }
    }
}

/// A statement's value as its row's [`Shape`] reads it, for the row's setter.
enum Value {
    Flag,
    Bool(Spanned<bool>),
    Int(Spanned<i64>),
    Secs(Spanned<Duration>),
    Unsigned(Spanned<u64>),
    Ip(Spanned<IpAddr>),
    Text(Spanned<String>),
    Choice(Spanned<&'static str>),
    /// The statement itself, for a block's or a syntax's handler.
    Node,
}

fn apply<'a, T>(row: &Keyword<T>, target: &mut T, node: &Node<'a>, cx: &mut Cx<'_, 'a>) {
    let Some(value) = read_value(row.arg.shape(), row.when_missing, node, cx) else {
        return;
    };
    match (&row.arg, value) {
        (Arg::Flag(set), Value::Flag) => set(target, node.pos()),
        (Arg::Bool(set), Value::Bool(v)) => set(target, v),
        (Arg::Int(.., set), Value::Int(v)) => set(target, v),
        (Arg::Secs(.., set) | Arg::Timer(_, set), Value::Secs(v)) => set(target, v),
        (Arg::Unsigned(_, set), Value::Unsigned(v)) => set(target, v),
        (Arg::Ip(set), Value::Ip(v)) => set(target, v),
        (Arg::Word(set) | Arg::Line(set) | Arg::Command(set), Value::Text(v)) => set(target, v),
        (Arg::Choice(_, set), Value::Choice(v)) => set(target, v),
        (Arg::Block(_, handle) | Arg::Items(_, handle) | Arg::Custom(_, handle), Value::Node) => {
            handle(target, node, cx)
        }
        // Each shape is answered with its own value.
        _ => {}
    }
}

/// Read `node`'s value as `shape` says, reporting what keepalived reports; `None` when there
/// is nothing to set.
fn read_value<'a>(
    shape: Shape,
    when_missing: WhenMissing,
    node: &Node<'a>,
    cx: &mut Cx<'_, 'a>,
) -> Option<Value> {
    // A `Custom` row takes a block when its syntax shows one.
    let takes_block = match shape {
        Shape::Block(_) | Shape::Items(_) | Shape::SkipBlock => true,
        Shape::Custom(syntax) => syntax.contains('{'),
        _ => false,
    };
    if !takes_block {
        if let Some(b) = &node.block {
            stray_block(node, b, cx);
        }
    }
    let diags = &mut cx.diags;
    let first = node.args.first();
    let needs_value = matches!(
        shape,
        Shape::Int(..)
            | Shape::Secs(..)
            | Shape::Unsigned(..)
            | Shape::Timer(..)
            | Shape::Ip
            | Shape::Word
            | Shape::Line
            | Shape::Command
            | Shape::Choice(..)
    );
    // A row that says how keepalived takes the line without a value (a `Custom` or skipped
    // one included) is answered that way before its handler sees it.
    let explicit = when_missing != WhenMissing::Default;
    // A script line is split from its raw line: one whose `"` is unterminated has words there
    // (keepalived reports the quote and leaves the script unset; nothing is missing).
    if first.is_none() && matches!(shape, Shape::Command) && node.has_raw_value() {
        script_line(node, diags);
        return None;
    }
    if first.is_none() && (needs_value || explicit && node.block.is_none()) {
        match when_missing {
            WhenMissing::Default | WhenMissing::Abort => missing_value(node, diags),
            WhenMissing::Warn(message) => diags.push(Diagnostic::warning(node.pos(), message)),
            WhenMissing::Ignore => {}
        }
        return None;
    }
    let at = first.map_or(node.pos(), |t| &t.pos);
    // A value keepalived reports and skips: nothing is set.
    let bad = |diags: &mut Diags, t: &Token, msg: String| {
        bad_value(&t.pos, diags, msg);
        None
    };
    match shape {
        Shape::Flag => Some(Value::Flag),
        Shape::Bool => match first {
            None => Some(Value::Bool(Spanned::new(true, at))),
            Some(t) => match BOOL_WORDS.iter().find(|(w, _)| t.text == *w) {
                Some((_, b)) => Some(Value::Bool(Spanned::new(*b, at))),
                None => bad(
                    diags,
                    t,
                    format!(
                        "invalid {} value '{}' - expected a BOOL",
                        node.name(),
                        t.text
                    ),
                ),
            },
        },
        Shape::Int(lo, hi) => {
            let t = first.expect("checked above");
            match parse_int(&t.text) {
                Some(v) if (lo..=hi).contains(&v) => Some(Value::Int(Spanned::new(v, at))),
                Some(_) => bad(
                    diags,
                    t,
                    format!("number '{}' outside range [{lo}, {hi}]", t.text),
                ),
                None => bad(diags, t, format!("invalid number '{}'", t.text)),
            }
        }
        Shape::Secs(lo, hi) => {
            let t = first.expect("checked above");
            match read_secs(t, diags) {
                Some(v) if (lo..=hi).contains(&v) => {
                    Some(Value::Secs(Spanned::new(Duration::from_secs_f64(v), at)))
                }
                Some(_) => bad(
                    diags,
                    t,
                    format!("{} '{}' outside range [{lo}, {hi}]", node.name(), t.text),
                ),
                None => bad(
                    diags,
                    t,
                    format!("{} '{}' is not a valid time", node.name(), t.text),
                ),
            }
        }
        Shape::Unsigned(num) => {
            let v = num.read(first.expect("checked above"), diags).kept?;
            Some(Value::Unsigned(Spanned::new(v, at)))
        }
        Shape::Timer(num) => {
            let t = first.expect("checked above");
            let read = read_timer(&t.text, num.lo, num.hi);
            num.report(&t.text, &read, &t.pos, diags);
            let v = read.kept?;
            Some(Value::Secs(Spanned::new(Duration::from_micros(v), at)))
        }
        Shape::Ip => {
            let t = first.expect("checked above");
            match sockaddr_ip(&t.text) {
                Some(ip) => Some(Value::Ip(Spanned::new(ip, at))),
                None => bad(
                    diags,
                    t,
                    format!("{}: invalid IP address '{}'", node.name(), t.text),
                ),
            }
        }
        Shape::Word => Some(Value::Text(Spanned::new(
            first.expect("checked above").text.to_string(),
            at,
        ))),
        Shape::Line => Some(Value::Text(Spanned::new(words(node), at))),
        Shape::Command => {
            let line = script_line(node, diags)?;
            if !line.rest.is_empty() {
                extra_command_words(node, &line, diags);
            }
            Some(Value::Text(Spanned::new(line.command, at)))
        }
        Shape::Choice(choices) => {
            let t = first.expect("checked above");
            match choices.iter().find(|c| **c == t.text) {
                Some(c) => Some(Value::Choice(Spanned::new(*c, at))),
                None => {
                    let mut d = Diagnostic::warning(
                        &t.pos,
                        format!(
                            "invalid {} '{}' (one of {}) - ignoring",
                            node.name(),
                            t.text,
                            choices.join(", ")
                        ),
                    );
                    if let Some(s) = suggest(&t.text, choices.iter().copied()) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    diags.push(d);
                    None
                }
            }
        }
        Shape::Block(_) if node.block.is_none() => {
            cx.block_wanted = Some((node.pos().clone(), Take::Statements));
            None
        }
        _ if entries(shape) && node.block.is_none() => {
            missing_items_block(node, diags);
            cx.block_wanted = Some((node.pos().clone(), Take::Lines { named: false }));
            None
        }
        _ if entries(shape) => {
            // keepalived drops the words before the `{` of a block of entries, and counts it.
            if let Some(a) = node.args.first() {
                diags.push(
                    Diagnostic::warning(node.pos(), extra_parameters(node, a))
                        .with_help("the words on the line of the `{` are dropped: put each entry on a line of its own inside the block"),
                );
            }
            Some(Value::Node)
        }
        // A named block (`vrrp_instance NAME`, `real_server IP PORT`): its words are its own.
        // A block of entries after a name (`virtual_server_group NAME`) is read as one.
        Shape::Custom(syntax) if syntax.contains('{') && node.block.is_none() => {
            let take = match syntax.contains("… }") {
                true => Take::Lines { named: true },
                false => Take::Statements,
            };
            cx.block_wanted = Some((node.pos().clone(), take));
            None
        }
        Shape::Block(_) | Shape::Items(_) | Shape::Custom(_) => Some(Value::Node),
        Shape::Skip | Shape::SkipBlock => None,
    }
}

/// A block of entries (keepalived's `alloc_value_block`): an `Items` row, or a custom one
/// whose syntax is `{ ENTRY… }` (`linkbeat_interfaces`, `track_bfd`, a sync group's `group`).
fn entries(shape: Shape) -> bool {
    match shape {
        Shape::Items(_) => true,
        Shape::Custom(syntax) => syntax.starts_with("{ ") && syntax.ends_with("… }"),
        _ => false,
    }
}

/// keepalived's words for the first word after a block of entries' keyword.
fn extra_parameters(node: &Node, word: &Token) -> String {
    format!(
        "Block {} has extra parameters {} ...",
        node.name(),
        word.text
    )
}

/// keepalived's words for a block of entries written without its `{`: it reads the lines after
/// it as its entries, up to the first `}`. Words after the keyword are an error (`-t` counts
/// it) and are dropped; a missing `{` alone is only logged.
fn missing_items_block(node: &Node, diags: &mut Diags) {
    let help = format!(
        "keepalived reads the lines after it as its entries, up to the next `}}`; write `{} {{` and one entry per line, then `}}`",
        node.name()
    );
    let d = match node.args.first() {
        Some(a) => Diagnostic::warning(node.pos(), extra_parameters(node, a)),
        None => Diagnostic::notice(
            node.pos(),
            format!("'{{' missing from beginning of block {}", node.name()),
        ),
    };
    diags.push(d.with_help(help));
}

/// keepalived runs a command line's first word (quotes group a command with its arguments)
/// and says nothing about the words after it: vrrpd says it, as a notice.
pub fn extra_command_words(node: &Node, line: &ScriptLine, diags: &mut Diags) {
    let at = node.args.get(1).map_or(node.pos(), |a| &a.pos);
    diags.push(
        Diagnostic::notice(
            at,
            format!(
                "keepalived runs only `{}` here: the words after it are ignored",
                line.command
            ),
        )
        .with_help("put the command and its arguments in double quotes"),
    );
}

/// A script statement (`script`, `misc_path`, `notify_master`, `quorum_up`, …) as keepalived
/// reads it: its raw line split into words ([`checks::script::words`]: quotes, escapes),
/// the command the word after the keyword, to be split again when it runs.
pub struct ScriptLine {
    /// The command, as one string (its own words are split when it runs).
    pub command: String,
    /// The words after the command (`USER [GROUP]` where a user may be given).
    pub rest: Vec<String>,
}

/// The [`ScriptLine`] of `node`, or `None` when keepalived can split the line or its command
/// into no words and leaves the script unset: it counts an unterminated quote ("String '…':
/// missing terminating …") but only logs a trailing `\`. Without a command, nothing is said
/// here (the callers' "missing value").
pub fn script_line(node: &Node, diags: &mut Diags) -> Option<ScriptLine> {
    use checks::script::LineError;
    let unsplit = |text: &str, e: LineError, diags: &mut Diags| match e {
        LineError::Unterminated(q) => diags.push(
            Diagnostic::warning(
                node.pos(),
                format!("String '{text}': missing terminating {q}"),
            )
            .with_help(format!(
                "close the quote with `{q}`, or escape it as `\\{q}`"
            )),
        ),
        LineError::TrailingEscape => diags.push(Diagnostic::notice(
            node.pos(),
            format!("Missing escape char at end: '{text}' - the script is not set"),
        )),
    };
    let raw = node.raw();
    let mut words = match checks::script::words(raw) {
        Ok(w) => w.into_iter().skip(1),
        Err(e) => {
            unsplit(raw, e, diags);
            return None;
        }
    };
    let command = words.next()?;
    if let Err(e) = checks::script::words(&command) {
        unsplit(&command, e, diags);
        return None;
    }
    Some(ScriptLine {
        command,
        rest: words.collect(),
    })
}

/// [`script_line`] of a statement that needs its command: nothing after the keyword is
/// keepalived's missing value (an unterminated `"` is not: [`script_line`] reports it).
pub fn script_statement(node: &Node, diags: &mut Diags) -> Option<ScriptLine> {
    if !node.has_raw_value() {
        missing_value(node, diags);
        return None;
    }
    script_line(node, diags)
}

/// Every word of the statement after the keyword, joined by one space.
pub fn words(node: &Node) -> String {
    node.args
        .iter()
        .map(|a| &*a.text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An integer as keepalived's `strtol(…, 10)` reads it (an optional sign, digits).
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An unsigned number as keepalived's `-t` reads it with `read_unsigned` (`strtoul`, base
/// 10): leading blanks and a `+` are taken, and an empty word is 0. `Err` holds keepalived's
/// words for a value it refuses (its callers add their own message after them). What its
/// daemon keeps of such a value: [`read_unsigned_with`].
pub fn read_unsigned(word: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let r = read_unsigned_with(word, lo, hi, false);
    match (r.kept, r.said.into_iter().next()) {
        (Some(v), None) => Ok(v),
        (_, said) => Err(said.unwrap_or_default()),
    }
}

/// A time word as keepalived's `read_timer` reads it ([`parse_secs`]), with its counted
/// complaint about more than six decimals (the value is still taken, rounded).
pub fn read_secs(t: &Token, diags: &mut Diags) -> Option<f64> {
    let v = parse_secs(&t.text)?;
    if t.text.split_once('.').is_some_and(|(_, f)| f.len() > 6) {
        diags.push(Diagnostic::warning(
            &t.pos,
            format!("number '{}' has too many decimal places", t.text),
        ));
    }
    Some(v)
}

/// A time as keepalived's `read_timer` reads it: a plain decimal (`strtoull` after the point
/// is dropped, so leading blanks and a `+` are taken), no `-` or exponent, at most
/// microsecond precision (rounded as keepalived does).
pub fn parse_secs(s: &str) -> Option<f64> {
    let s = s.trim_start_matches([' ', '\t']);
    let s = s.strip_prefix('+').unwrap_or(s);
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) || whole.len() > 12
    {
        return None;
    }
    let mut micros: u64 = whole.parse::<u64>().unwrap_or(0) * 1_000_000;
    let f: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    micros += f.parse::<u64>().ok()?;
    if frac.as_bytes().get(6).is_some_and(|b| *b >= b'5') {
        micros += 1;
    }
    Some(micros as f64 / 1e6)
}

/// A number as one of keepalived's readers (lib/parser.c: `read_unsigned`, `read_timer`)
/// reads it, and what its handler says when the reader refuses it. The ranges are
/// keepalived's, and so is the value a bad one leaves ([`Read::kept`]).
#[derive(Debug, Clone, Copy)]
pub struct Num {
    /// The range, in the unit kept (microseconds for a timer).
    pub lo: u64,
    pub hi: u64,
    /// keepalived's `ignore_error`: its daemon keeps a value whose leading digits are in
    /// range (`80x` is 80), though its `-t` counts it. Every timer is read this way.
    pub lenient: bool,
    /// The handler's message when the reader refuses the value (`{}`: the value as written).
    pub invalid: &'static str,
}

/// A row read by keepalived's `read_unsigned(…, ignore_error = true)`.
pub const fn unsigned(lo: u64, hi: u64, invalid: &'static str) -> Num {
    Num {
        lo,
        hi,
        lenient: true,
        invalid,
    }
}

/// A row read by keepalived's `read_unsigned(…, ignore_error = false)`: a bad value is
/// never kept.
pub const fn unsigned_strict(lo: u64, hi: u64, invalid: &'static str) -> Num {
    Num {
        lenient: false,
        ..unsigned(lo, hi, invalid)
    }
}

/// A row read by keepalived's `read_timer`, in microseconds ([`TIMER_MAX`] when keepalived
/// gives no maximum).
pub const fn timer(lo_us: u64, hi_us: u64, invalid: &'static str) -> Num {
    unsigned(lo_us, hi_us, invalid)
}

/// keepalived's `TIMER_MAXIMUM`, in microseconds: a timer without a maximum of its own.
pub const TIMER_MAX: u64 = u64::MAX - 1;

/// `UINT_MAX`, the maximum of most of keepalived's unsigned values.
pub const UINT_MAX: u64 = u32::MAX as u64;

impl Num {
    /// Read `t` as keepalived's `read_unsigned` reads this row's value (for a handler of its
    /// own), saying what keepalived says.
    pub fn read(&self, t: &Token, diags: &mut Diags) -> Read {
        let r = read_unsigned_with(&t.text, self.lo, self.hi, self.lenient);
        self.report(&t.text, &r, &t.pos, diags);
        r
    }

    /// Say what keepalived's `-t` says of `text` read as `read`.
    fn report(&self, text: &str, read: &Read, pos: &Pos, diags: &mut Diags) {
        for m in &read.said {
            bad_value(pos, diags, m.clone());
        }
        if !read.taken {
            bad_value(pos, diags, self.invalid.replace("{}", text));
        }
    }
}

/// What one of keepalived's readers makes of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<T = u64> {
    /// The value keepalived's daemon keeps; `None`: the one before stays.
    pub kept: Option<T>,
    /// Whether its `-t` takes the value; when not, the handler's message follows.
    pub taken: bool,
    /// The reader's own messages, each counted by `-t`.
    pub said: Vec<String>,
}

/// What C's `strtoull(s, &end, 10)` reads.
struct Strtoull {
    /// The value (the maximum on overflow, negated for a `-`).
    value: u64,
    /// Whether every byte was read.
    whole: bool,
    overflow: bool,
    /// Whether a `-` came first (after white space).
    negative: bool,
}

/// C's `strtoull(s, &end, 10)`: leading white space, a sign, digits.
fn strtoull(s: &[u8]) -> Strtoull {
    let start = s
        .iter()
        .position(|b| !b" \t\n\r\x0b\x0c".contains(b))
        .unwrap_or(s.len());
    let t = &s[start..];
    let (neg, d) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = d.iter().take_while(|b| b.is_ascii_digit()).count();
    let read = |value, whole, overflow| Strtoull {
        value,
        whole,
        overflow,
        negative: neg,
    };
    if n == 0 {
        return read(0, s.is_empty(), false);
    }
    let v = d[..n].iter().try_fold(0u64, |v, b| {
        v.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    });
    match v {
        None => read(u64::MAX, n == d.len(), true),
        Some(v) => read(if neg { v.wrapping_neg() } else { v }, n == d.len(), false),
    }
}

/// keepalived's `read_unsigned` (its `read_unsigned_func`, base 10) in `lo..=hi`, with
/// `lenient` its `ignore_error`.
pub fn read_unsigned_with(text: &str, lo: u64, hi: u64, lenient: bool) -> Read {
    let Strtoull {
        value: v,
        whole,
        overflow,
        negative,
    } = strtoull(text.as_bytes());
    // keepalived's bounds are C `unsigned`s.
    let in_range = (lo..=hi.min(UINT_MAX)).contains(&v);
    let said = if negative {
        Some(format!("negative number '{text}'"))
    } else if !whole {
        Some(format!("invalid number '{text}'"))
    } else if overflow || v > UINT_MAX {
        Some(format!("number '{text}' outside unsigned integer range"))
    } else if !in_range {
        Some(format!("number '{text}' outside range [{lo}, {hi}]"))
    } else {
        None
    };
    let taken = said.is_none();
    Read {
        kept: (taken || lenient && in_range).then_some(v),
        taken,
        said: said.into_iter().collect(),
    }
}

/// keepalived's `read_int` (its `read_int_func`, base 10: C's `strtol`) in `lo..=hi`; with
/// `lenient` (keepalived's `ignore_error`) its daemon keeps leading digits in range.
pub fn read_int(text: &str, lo: i64, hi: i64, lenient: bool) -> Read<i64> {
    let Strtoull {
        value: v,
        whole,
        overflow,
        negative,
    } = strtoull(text.as_bytes());
    // strtol: the magnitude read, signed; out of `long` it is ERANGE.
    let v: Option<i64> = match (overflow, negative) {
        (true, _) => None,
        (false, true) => 0i64.checked_sub_unsigned(v.wrapping_neg()),
        (false, false) => i64::try_from(v).ok(),
    };
    let in_range = v.is_some_and(|v| (lo..=hi).contains(&v));
    let said = match v {
        _ if !whole => Some(format!("invalid number '{text}'")),
        Some(v) if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) => {
            (!in_range).then(|| format!("number '{text}' outside range [{lo}, {hi}]"))
        }
        _ => Some(format!("number '{text}' outside integer range")),
    };
    let taken = said.is_none();
    Read {
        kept: v.filter(|_| taken || lenient && in_range),
        taken,
        said: said.into_iter().collect(),
    }
}

/// keepalived's `read_timer` (its `read_decimal_unsigned_long_func`, 6 decimal places, errors
/// ignored): microseconds in `lo..=hi`. Digits past the sixth decimal are rounded, and counted;
/// a value with junk after its digits keeps what its digits say once shifted (`6s` is 6 µs),
/// also counted.
pub fn read_timer(text: &str, lo: u64, hi: u64) -> Read {
    const SHIFT: usize = 6;
    let p = text.as_bytes();
    let refused = |said: String| Read {
        kept: None,
        taken: false,
        said: vec![said],
    };
    if p.first() == Some(&b'-') {
        return refused(format!("negative number '{text}'"));
    }
    let mut said = Vec::new();
    let mut round_up = false;
    // The digits with the decimal point taken out and six decimals made up.
    let mut digits: Vec<u8> = Vec::with_capacity(p.len() + SHIFT);
    let mut decimals = 0;
    match p.iter().position(|b| *b == b'.') {
        Some(dp) => {
            let frac = &p[dp + 1..];
            decimals = frac.len();
            if decimals > SHIFT {
                said.push(format!("number '{text}' has too many decimal places"));
                round_up = frac[SHIFT] >= b'5';
                decimals = SHIFT;
            }
            digits.extend_from_slice(&p[..dp]);
            digits.extend_from_slice(&frac[..decimals]);
        }
        None => digits.extend_from_slice(p),
    }
    digits.resize(digits.len() + SHIFT - decimals, b'0');
    let Strtoull {
        value: mut v,
        whole,
        overflow,
        ..
    } = strtoull(&digits);
    if round_up {
        v = v.wrapping_add(1);
    }
    let in_range = (lo..=hi).contains(&v);
    if !whole {
        said.push(format!("invalid number '{text}'"));
    } else if overflow {
        said.push(format!("number '{text}' outside unsigned decimal range"));
        return Read {
            kept: None,
            taken: false,
            said,
        };
    } else if !in_range {
        said.push(format!(
            "number '{text}' outside range [{}, {}]",
            secs_text(lo),
            secs_text(hi)
        ));
    }
    Read {
        kept: in_range.then_some(v),
        taken: in_range,
        said,
    }
}

/// Microseconds as keepalived prints a timer's bounds (`4294.967295`).
fn secs_text(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::lexer::lex;
    use crate::tree::parse;
    use std::path::Path;
    use std::sync::Arc;

    #[derive(Default)]
    struct T {
        prio: Option<i64>,
        flag: bool,
        name: Option<String>,
    }

    static TABLE: &[Keyword<T>] = &[
        ok("priority", Arg::Int(1, 255, |t, v| t.prio = Some(v.value))),
        ok("nopreempt", Arg::Flag(|t, _| t.flag = true)),
        ok("name", Arg::Word(|t, v| t.name = Some(v.value))),
        skip("notify", "scripts are not run"),
    ];

    fn run(src: &str) -> (T, Vec<Diagnostic>) {
        let f: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (toks, _) = lex(src, &f);
        let host = crate::host::FakeHost::new();
        let mut cx = Cx::new(&host, Sides::default());
        let mut t = T::default();
        for n in parse(toks, &mut cx.diags) {
            dispatch(TABLE, "test", &mut t, &n, &mut cx);
        }
        (t, cx.diags.into_vec())
    }

    #[test]
    fn rows_parse_once_and_report_in_place() {
        let (t, d) = run("priority 7\nnopreempt\nnotify x\npriorty 2\nname a b");
        assert_eq!(
            (t.prio, t.flag, t.name.as_deref()),
            (Some(7), true, Some("a"))
        );
        let got: Vec<(u32, Flag, Severity)> =
            d.iter().map(|d| (d.line, d.flag, d.severity)).collect();
        assert_eq!(
            got,
            [
                (3, Flag::None, Severity::Warning),
                (4, Flag::Config, Severity::Warning)
            ]
        );
        assert_eq!(d[1].help.as_deref(), Some("did you mean `priority`?"));
    }

    #[test]
    fn bad_values_keep_the_default_missing_values_abort() {
        let (t, d) = run("priority 300\npriority x\npriority");
        assert_eq!(t.prio, None);
        assert_eq!(d.len(), 3);
        assert!(d[0].message.contains("outside range [1, 255]"));
        assert_eq!((d[0].line, d[0].col), (1, 10));
        assert_eq!(d[1].severity, Severity::Warning);
        assert_eq!((d[2].flag, d[2].severity), (Flag::Abort, Severity::Error));
    }

    #[test]
    fn timers_as_keepalived() {
        assert_eq!(parse_secs("1"), Some(1.0));
        assert_eq!(parse_secs("0.25"), Some(0.25));
        assert_eq!(parse_secs(".5"), Some(0.5));
        assert_eq!(parse_secs("3."), Some(3.0));
        assert_eq!(parse_secs("0.0000015"), Some(0.000002));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "inf",
            "NaN",
            "1.2.3",
            "x",
            "18446744073709551616",
        ] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn unsigned_as_keepalived_reads_it() {
        assert_eq!(read_unsigned("+24", 0, 32), Ok(24));
        assert_eq!(
            read_unsigned("", 0, 32),
            Ok(0),
            "strtoul reads nothing as 0"
        );
        assert_eq!(read_unsigned("65536", 0, u32::MAX as u64), Ok(65536));
        for (bad, said) in [
            ("33", "number '33' outside range [0, 32]"),
            ("-1", "negative number '-1'"),
            ("+", "invalid number '+'"),
            ("1x", "invalid number '1x'"),
            (
                "4294967296",
                "number '4294967296' outside unsigned integer range",
            ),
        ] {
            assert_eq!(read_unsigned(bad, 0, 32), Err(said.to_string()), "{bad}");
        }
        assert_eq!(parse_secs("+1"), Some(1.0));
        assert_eq!(parse_secs("+-1"), None);
    }

    #[test]
    fn integers_as_strtol() {
        assert_eq!(parse_int("+5"), Some(5));
        assert_eq!(parse_int("-5"), Some(-5));
        for bad in ["", "5x", "0x5", "1.5", " 5", "-"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }
}
