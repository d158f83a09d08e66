//! Diagnostics: what went wrong, where, and how to fix it, rendered as a code frame.
//!
//! Two independent questions are answered for each message, because keepalived answers them
//! independently: does the daemon still start ([`Severity`]), and does `keepalived -t` count it,
//! with which exit code ([`Flag`])? Most of keepalived's complaints are "log it, skip the value,
//! run anyway" yet fail `-t`; vrrpd mirrors that split instead of refusing the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// Whether the daemon can start with this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Severity {
    /// Logged; the value or block is skipped and the daemon runs (keepalived does the same).
    Warning,
    /// The daemon refuses the file (keepalived's daemon exits too, or vrrpd cannot run it).
    Error,
}

/// How keepalived's own `-t` counts the same condition (its `config_err_t` classes, folded
/// into the exit codes they lead to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Flag {
    /// keepalived says nothing: vrrpd's own notices (not implemented, stricter checks).
    None,
    /// `CONFIG_FILE_NOT_FOUND`, `CONFIG_BAD_IF`, `CONFIG_FATAL`: `-t` exits 4.
    Fatal,
    /// Every other configuration error keepalived logs and goes on: `-t` exits 5.
    Config,
    /// Script security not enabled where needed: `-t` exits 6.
    Security,
    /// keepalived stops reading at once (a missing parameter): `-t` exits 2.
    Abort,
}

impl Flag {
    /// keepalived 2.2.7's `-t` exit code for a run that reported these flags: an abort wins,
    /// then the highest class it recorded (its `config_err` keeps the largest value).
    pub fn exit_code(flags: impl IntoIterator<Item = Flag>) -> u8 {
        let worst = flags.into_iter().max().unwrap_or(Flag::None);
        match worst {
            Flag::None => 0,
            Flag::Fatal => 4,
            Flag::Config => 5,
            Flag::Security => 6,
            Flag::Abort => 2,
        }
    }
}

/// A place in a configuration file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(file: &Arc<Path>, line: u32, col: u32) -> Self {
        Self {
            file: file.clone(),
            line,
            col,
        }
    }
}

/// A value with the place it was written, so a later check can point at the right token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> Spanned<T> {
    pub fn new(value: T, pos: &Pos) -> Self {
        Self {
            value,
            pos: pos.clone(),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            pos: self.pos,
        }
    }
}

/// keepalived's words for a block still open at the end of the file.
pub const UNBALANCED: &str = "There are missing '}'s or extra '{'s";

/// One message about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub flag: Flag,
    /// Shared with the [`Pos`] it came from: a message costs no copy of the path.
    pub file: Arc<Path>,
    /// 1-based; 0 when the message is about the file as a whole.
    pub line: u32,
    pub col: u32,
    pub message: String,
    pub help: Option<String>,
    /// How many times this message was made at this place: a line read more than once (each
    /// `~SEQ` pass, a multi-line parameter, a file included twice) says it once, with a count.
    pub times: u32,
}

impl Diagnostic {
    fn new(severity: Severity, flag: Flag, pos: &Pos, message: impl Into<String>) -> Self {
        Self {
            severity,
            flag,
            file: pos.file.clone(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            help: None,
            times: 1,
        }
    }

    /// What [`Self::same`] compares but the place, hashed: messages at one place are told
    /// apart by it without comparing their texts (a `~SEQ` line of a typo makes a different
    /// message per pass, all at one place).
    fn content_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        (self.severity, self.flag, &self.message, &self.help).hash(&mut h);
        h.finish()
    }

    /// Whether `other` says the same thing at the same place (its count aside).
    fn same(&self, other: &Self) -> bool {
        (self.severity, self.flag, self.line, self.col)
            == (other.severity, other.flag, other.line, other.col)
            && self.message == other.message
            && self.help == other.help
            && (Arc::ptr_eq(&self.file, &other.file) || self.file == other.file)
    }

    /// The daemon refuses the file; keepalived's `-t` counts it (exit 5) unless reflagged.
    pub fn error(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, Flag::Config, pos, message)
    }

    /// keepalived logs it and goes on, and its `-t` counts it (exit 5) unless reflagged.
    pub fn warning(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, Flag::Config, pos, message)
    }

    /// vrrpd's own notice: logged, not counted by `-t` (keepalived is silent).
    pub fn notice(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, Flag::None, pos, message)
    }

    /// A diagnostic about a whole file (missing, unreadable): keepalived cannot run either.
    pub fn file_error(file: &Path, message: impl Into<String>) -> Self {
        let pos = Pos {
            file: Arc::from(file),
            line: 0,
            col: 0,
        };
        Self::new(Severity::Error, Flag::Fatal, &pos, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Mark as something keepalived itself accepts silently.
    pub fn not_flagged_by_keepalived(mut self) -> Self {
        self.flag = Flag::None;
        self
    }

    /// With keepalived's class for it.
    pub fn flagged(mut self, flag: Flag) -> Self {
        self.flag = flag;
        self
    }

    /// A script-security violation (`-t` exits 6).
    pub fn security(self) -> Self {
        self.flagged(Flag::Security)
    }

    /// Whether keepalived's `-t` reports the same condition.
    pub fn keepalived_flags(&self) -> bool {
        self.flag != Flag::None
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Render as `file:line:col: severity: message`, then the source line and a caret.
    /// `line` is the text of that line, when available.
    pub fn render(&self, line: Option<&str>) -> String {
        let mut out = String::new();
        self.render_into(line, &mut out);
        out
    }

    /// [`Self::render`] appended to `out`: a file with thousands of messages renders into one
    /// buffer, with no allocation per message and no formatting but of the numbers.
    pub fn render_into(&self, line: Option<&str>, out: &mut String) {
        let sev = match self.severity {
            Severity::Error => ": error: ",
            Severity::Warning => ": warning: ",
        };
        out.push_str(&self.file.to_string_lossy());
        if self.line != 0 {
            out.push(':');
            push_number(out, self.line);
            out.push(':');
            push_number(out, self.col);
        }
        out.push_str(sev);
        out.push_str(&self.message);
        out.push('\n');
        if let (Some(text), true) = (line, self.line != 0) {
            let gutter = self.line.checked_ilog10().unwrap_or(0) as usize + 1;
            let pad = |out: &mut String, mut n: usize| {
                const SPACES: &str =
                    "                                                                ";
                while n > 0 {
                    let k = n.min(SPACES.len());
                    out.push_str(&SPACES[..k]);
                    n -= k;
                }
            };
            pad(out, gutter);
            out.push_str(" |\n");
            push_number(out, self.line);
            out.push_str(" | ");
            // Tabs as one space each, so that the caret's column matches.
            for (i, part) in text.split('\t').enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(part);
            }
            out.push('\n');
            pad(out, gutter);
            out.push_str(" | ");
            pad(out, self.col.saturating_sub(1) as usize);
            out.push_str("^\n");
        }
        if let Some(help) = &self.help {
            out.push_str("  = help: ");
            out.push_str(help);
            out.push('\n');
        }
        if self.times > 1 {
            out.push_str("  = note: ");
            push_number(out, self.times);
            out.push_str(
                " times: the line is read once per `~SEQ` pass, parameter line or include\n",
            );
        }
    }
}

/// `n` in decimal, without the formatting machinery (rendering is on the fuzzed path).
fn push_number(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// The text of every file read for one load, indexed by line, for code frames: rendering a
/// thousand messages reads nothing again and finds each line in constant time.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: HashMap<PathBuf, SourceText>,
}

#[derive(Debug, Default, Clone)]
struct SourceText {
    text: String,
    /// Byte offset of each line's start.
    starts: Vec<usize>,
}

impl Sources {
    pub fn insert(&mut self, path: &Path, text: String) {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files
            .insert(path.to_path_buf(), SourceText { text, starts });
    }

    /// Line `line` (1-based) of `file`, without its line end.
    pub fn line(&self, file: &Path, line: u32) -> Option<&str> {
        self.files.get(file)?.line(line)
    }

    /// Every diagnostic with its code frame.
    pub fn render(&self, diags: &[Diagnostic]) -> String {
        // A message with its frame is about this long: the buffer is not grown a dozen times.
        let mut out = String::with_capacity(diags.len() * 192);
        // Messages come in runs from the same file: look it up once per run.
        let mut last: Option<(&Arc<Path>, Option<&SourceText>)> = None;
        for d in diags {
            let text = match last {
                Some((f, t)) if Arc::ptr_eq(f, &d.file) || *f == d.file => t,
                _ => {
                    let t = self.files.get(&*d.file);
                    last = Some((&d.file, t));
                    t
                }
            };
            d.render_into(text.and_then(|t| t.line(d.line)), &mut out);
        }
        out
    }
}

impl SourceText {
    fn line(&self, line: u32) -> Option<&str> {
        let i = usize::try_from(line).ok()?.checked_sub(1)?;
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).map_or(self.text.len(), |e| e - 1);
        let l = &self.text[start..end.max(start)];
        Some(l.strip_suffix('\r').unwrap_or(l))
    }
}

/// Collected diagnostics of one load.
#[derive(Debug, Default)]
pub struct Diags {
    list: Vec<Diagnostic>,
    errors: usize,
    /// The last message in `list` at each line, column and [`Diagnostic::content_hash`]: a
    /// message made again at the same place counts there instead of being listed twice.
    places: FxHashMap<(u32, u32, u64), u32>,
    /// For each message in `list`, the one before it under the same key in `places`
    /// (`u32::MAX`: none): the same place and hash in another file, or a hash collision.
    earlier: Vec<u32>,
    /// While above 0, vrrpd's own notices are left out ([`Self::begin_quiet`]).
    quiet: u32,
}

impl Diags {
    /// Add `d`, or count it on the same message at the same place. Every error counts in
    /// [`Self::error_count`], repeated or not: a builder compares it around a block.
    pub fn push(&mut self, d: Diagnostic) {
        self.errors += usize::from(d.is_error());
        if self.quiet > 0 && d.flag == Flag::None && !d.is_error() {
            return;
        }
        let key = (d.line, d.col, d.content_hash());
        let last = self.places.entry(key).or_insert(u32::MAX);
        let mut i = *last;
        while let Some(e) = self.list.get_mut(i as usize) {
            if e.same(&d) {
                e.times = e.times.saturating_add(d.times);
                return;
            }
            i = self.earlier[i as usize];
        }
        // (A load stops far below 2^32 messages: `max_lines` bounds them.)
        self.earlier.push(*last);
        *last = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        self.list.push(d);
    }

    /// Leave vrrpd's own notices out until as many [`Self::end_quiet`] (a block that is itself
    /// not supported: its rows' "not implemented" notices are covered by the block's).
    pub fn begin_quiet(&mut self) {
        self.quiet += 1;
    }

    pub fn end_quiet(&mut self) {
        self.quiet -= 1;
    }

    /// The messages so far, in the order first made.
    pub fn list(&self) -> &[Diagnostic] {
        &self.list
    }

    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// How many errors so far (constant time: builders compare it before and after a block).
    pub fn error_count(&self) -> usize {
        self.errors
    }

    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        for d in ds {
            self.push(d);
        }
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.list
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    Speller::new(a)
        .distance_within(b, usize::MAX)
        .expect("an unbounded distance always exists")
}

/// The closest candidate to `word`, if close enough to be a plausible typo (the first of
/// equally close ones).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    suggest_masked(word, candidates.into_iter().map(|c| (c, ascii_mask(c))))
}

/// [`suggest`] among candidates given with their [`ascii_mask`] (a keyword table has them
/// computed at compile time).
pub fn suggest_masked<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = (&'a str, u128)>,
) -> Option<&'a str> {
    let mut speller = Speller::new(word);
    let limit = typo_limit(word);
    candidates
        .into_iter()
        .filter_map(|(c, mask)| Some((speller.distance_masked(c, mask, limit)?, c)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// How many edits away a keyword may be to be suggested for `word`: a third of its length.
fn typo_limit(word: &str) -> usize {
    limit_for(word.chars().count())
}

/// [`typo_limit`] of a word of `chars` characters.
fn limit_for(chars: usize) -> usize {
    (chars / 3).max(1)
}

/// Whether no keyword of a table whose names use only the ASCII characters of `alphabet`
/// (an [`ascii_mask`]) and are at most `longest` bytes long can be suggested for `word`: each
/// of its characters outside the alphabet takes an edit, and so does each character beyond
/// `longest`. Garbage is ruled out in one pass over the word instead of one per keyword.
pub fn out_of_reach(word: &str, alphabet: u128, longest: usize) -> bool {
    let (mut len, mut foreign) = (0usize, 0usize);
    for c in word.chars() {
        len += 1;
        if !c.is_ascii() || alphabet & (1 << (c as u32)) == 0 {
            foreign += 1;
        }
    }
    let limit = limit_for(len);
    foreign > limit || len.saturating_sub(longest) > limit
}

/// The set of ASCII characters in `s`, one bit each (other characters are left out).
pub const fn ascii_mask(s: &str) -> u128 {
    let b = s.as_bytes();
    let mut mask = 0u128;
    let mut i = 0;
    while i < b.len() {
        if b[i] < 128 {
            mask |= 1 << b[i];
        }
        i += 1;
    }
    mask
}

/// One word measured against many: an unknown word is compared with every keyword of its
/// block, so a garbage word must cost little more than a glance at each keyword (the parser
/// stays linear in its input, and fast enough to fuzz) and no allocation per keyword.
struct Speller<'w> {
    word: &'w str,
    /// [`ascii_mask`] of `word`.
    mask: u128,
    /// How many times each ASCII character occurs in `word`, and its length in characters,
    /// when it is short and `peq` cannot take it: an ASCII keyword is ruled out from the counts
    /// alone, whatever `word`.
    counts: Option<([u8; 128], usize)>,
    /// For each ASCII byte, the positions of `word` that hold it, one bit each, when `word` is
    /// ASCII and at most 64 bytes long (every word a keyword could be a typo of): the
    /// distance is then computed a column at a time in a few word operations ([`Peq::distance`]).
    peq: Option<Peq>,
    /// `word`'s and a candidate's characters, for the rare non-ASCII comparison.
    chars: Vec<char>,
    other: Vec<char>,
    rows: Vec<usize>,
}

impl<'w> Speller<'w> {
    fn new(word: &'w str) -> Self {
        let peq = Peq::new(word.as_bytes());
        // Only a word `peq` cannot take is counted. (A longer word is compared by characters: a
        // count could not hold it, and the length alone rules out every keyword.)
        let counts = (peq.is_none() && word.len() <= usize::from(u8::MAX)).then(|| {
            let mut n = [0u8; 128];
            let mut len = 0;
            for c in word.chars() {
                len += 1;
                if c.is_ascii() {
                    n[c as usize] += 1;
                }
            }
            (n, len)
        });
        Speller {
            word,
            mask: ascii_mask(word),
            counts,
            peq,
            chars: Vec::new(),
            other: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The distance to `b`, or `None` as soon as it must exceed `limit`.
    fn distance_within(&mut self, b: &str, limit: usize) -> Option<usize> {
        self.distance_masked(b, ascii_mask(b), limit)
    }

    /// [`Self::distance_within`] of a `b` whose [`ascii_mask`] is `b_mask`: each ASCII
    /// character of one that the other lacks costs at least one edit, so most keywords are
    /// ruled out by two instructions.
    fn distance_masked(&mut self, b: &str, b_mask: u128, limit: usize) -> Option<usize> {
        let extra = (b_mask & !self.mask).count_ones() as usize;
        let missing = (self.mask & !b_mask).count_ones() as usize;
        if extra.max(missing) > limit {
            return None;
        }
        // Keywords are ASCII. An ASCII word of up to 64 bytes is measured at once (as fast as
        // counting would rule the keyword out); another is first ruled out by counts, then
        // compared by bytes when it is ASCII too.
        if let (Some(peq), true) = (&self.peq, b.is_ascii()) {
            if peq.len.abs_diff(b.len()) > limit {
                return None;
            }
            return peq.distance(b.as_bytes(), limit);
        }
        if let (Some((counts, len)), true) = (&self.counts, b.is_ascii()) {
            if len.abs_diff(b.len()) > limit || count_bound(*len, counts, b.as_bytes(), limit) {
                return None;
            }
            if self.word.is_ascii() {
                return bounded_distance(self.word.as_bytes(), b.as_bytes(), limit, &mut self.rows);
            }
        }
        if self.chars.is_empty() {
            self.chars.extend(self.word.chars());
        }
        self.other.clear();
        if b.is_ascii() {
            // As many characters as bytes.
            if b.len().abs_diff(self.chars.len()) > limit {
                return None;
            }
            self.other.extend(b.bytes().map(char::from));
        } else {
            // A char is at least one byte: no decoding for a candidate that is too short.
            if b.len().saturating_add(limit) < self.chars.len() {
                return None;
            }
            self.other.extend(b.chars());
        }
        bounded_distance(&self.chars, &self.other, limit, &mut self.rows)
    }
}

/// An ASCII word of 1 to 64 bytes as a bit-parallel pattern (Hyyrö, "A bit-vector algorithm
/// for computing Levenshtein and Damerau edit distances", 2003): one column of the distance
/// table is two 64-bit vectors of +1/-1 steps, and each byte of the other string moves it on
/// in a dozen instructions, where the plain table takes a row of cells per byte.
struct Peq {
    /// Bit `i` of entry `c`: byte `i` of the word is `c`.
    positions: [u64; 128],
    len: usize,
}

impl Peq {
    fn new(word: &[u8]) -> Option<Self> {
        if word.is_empty() || word.len() > 64 || !word.is_ascii() {
            return None;
        }
        let mut positions = [0u64; 128];
        for (i, &c) in word.iter().enumerate() {
            positions[usize::from(c)] |= 1 << i;
        }
        Some(Self {
            positions,
            len: word.len(),
        })
    }

    /// The Levenshtein distance from the word to the ASCII `other`, or `None` once it must
    /// exceed `limit` (each byte left can lower it by one at most).
    fn distance(&self, other: &[u8], limit: usize) -> Option<usize> {
        let last = 1u64 << (self.len - 1);
        // The column's vertical steps: all +1 at first (the distance from the empty prefix).
        let (mut up, mut down) = (!0u64, 0u64);
        let mut dist = self.len;
        for (j, &c) in other.iter().enumerate() {
            let eq = self.positions[usize::from(c & 0x7f)];
            let diag = (((eq & up).wrapping_add(up)) ^ up) | eq | down;
            let h_up = down | !(diag | up);
            let h_down = diag & up;
            if h_up & last != 0 {
                dist += 1;
            } else if h_down & last != 0 {
                dist -= 1;
            }
            let h_up = (h_up << 1) | 1;
            let h_down = h_down << 1;
            up = h_down | !(diag | h_up);
            down = h_up & diag;
            if dist.saturating_sub(other.len() - j - 1) > limit {
                return None;
            }
        }
        (dist <= limit).then_some(dist)
    }
}

/// Whether the ASCII `b` is sure to be more than `limit` edits from a word of `len` characters
/// whose ASCII characters occur `counts` times: each byte of `b` the word lacks must be
/// inserted or substituted, each character of the word `b` lacks (a non-ASCII one always)
/// deleted or substituted.
fn count_bound(len: usize, counts: &[u8; 128], b: &[u8], limit: usize) -> bool {
    let mut left = *counts;
    let mut extra = 0;
    for &c in b {
        let n = &mut left[usize::from(c & 0x7f)];
        if *n == 0 {
            extra += 1;
            if extra > limit {
                return true;
            }
        } else {
            *n -= 1;
        }
    }
    let missing = len - (b.len() - extra);
    missing > limit
}

/// Levenshtein distance between `a` and `b`, or `None` once every path exceeds `limit`.
fn bounded_distance<T: PartialEq>(
    a: &[T],
    b: &[T],
    limit: usize,
    rows: &mut Vec<usize>,
) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let n = b.len() + 1;
    rows.clear();
    rows.extend(0..n);
    rows.resize(2 * n, 0);
    let (mut prev, mut cur) = rows.split_at_mut(n);
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        // A later row is never below this row's smallest cell.
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[n - 1]).filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_code_frame() {
        let file: Arc<Path> = Arc::from(Path::new("k.conf"));
        let d = Diagnostic::error(&Pos::new(&file, 2, 3), "unknown keyword `priorty`")
            .with_help("did you mean `priority`?");
        let mut s = Sources::default();
        s.insert(Path::new("k.conf"), "a {\r\n  priorty 5\n}".into());
        assert_eq!(
            s.render(&[d]),
            "k.conf:2:3: error: unknown keyword `priorty`\n  |\n2 |   priorty 5\n  |   ^\n  = help: did you mean `priority`?\n"
        );
        assert_eq!(s.line(Path::new("k.conf"), 1), Some("a {"));
        assert_eq!(s.line(Path::new("k.conf"), 3), Some("}"));
        assert_eq!(s.line(Path::new("k.conf"), 4), None);
        assert_eq!(s.line(Path::new("k.conf"), 0), None);
        // Tabs show as one space, the caret under the column; a whole-file message has no
        // frame; line numbers of several digits pad the gutter.
        s.insert(
            Path::new("t.conf"),
            format!("{}\tstate\tBACKUP", "\n".repeat(11)),
        );
        let tab = Diagnostic::warning(&Pos::new(&Arc::from(Path::new("t.conf")), 12, 8), "w");
        let whole = Diagnostic::file_error(Path::new("t.conf"), "gone");
        assert_eq!(
            s.render(&[tab, whole]),
            "t.conf:12:8: warning: w\n   |\n12 |  state BACKUP\n   |        ^\nt.conf: error: gone\n"
        );
    }

    #[test]
    fn exit_codes_as_keepalived_ranks_them() {
        use Flag::*;
        assert_eq!(Flag::exit_code([]), 0);
        assert_eq!(Flag::exit_code([None, None]), 0);
        assert_eq!(Flag::exit_code([Fatal]), 4);
        // keepalived keeps the largest class: a general error outranks a missing file.
        assert_eq!(Flag::exit_code([Fatal, Config]), 5);
        assert_eq!(Flag::exit_code([Config, Security, Fatal]), 6);
        assert_eq!(Flag::exit_code([Security, Abort]), 2);
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(suggest("priorty", ["priority", "state"]), Some("priority"));
        assert_eq!(suggest("zzz", ["priority", "state"]), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        // Bounded: the first of the closest, and nothing beyond a third of the word.
        assert_eq!(suggest("stat", ["state", "start"]), Some("state"));
        assert_eq!(suggest("pr", ["priority"]), None);
        assert_eq!(suggest(&"x".repeat(10_000), ["priority"]), None);
        // Non-ASCII counts characters, not bytes.
        assert_eq!(edit_distance("priorité", "priority"), 1);
        assert_eq!(suggest("prîority", ["priority", "state"]), Some("priority"));
        // A non-ASCII word against ASCII keywords: ruled out by counts, measured by chars.
        assert_eq!(
            suggest("scr\u{fffd}\u{fffd}t_user", ["script", "script_user"]),
            Some("script_user")
        );
        assert_eq!(suggest("\u{fffd}\u{fffd}\u{fffd}", ["abc", "a"]), None);
    }

    /// The plain dynamic programme, for the bounded one to agree with.
    fn levenshtein(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }

    proptest::proptest! {
        /// A word ruled out by the table's alphabet and longest name gets no suggestion
        /// from the whole scan either.
        #[test]
        fn out_of_reach_hides_no_suggestion(word in "[a-z_$é{0-9]{0,20}") {
            let table = ["priority", "state", "interface", "virtual_router_id", "nopreempt"];
            let alphabet = table.iter().fold(0, |a, k| a | ascii_mask(k));
            let longest = table.iter().map(|k| k.len()).max().unwrap();
            if out_of_reach(&word, alphabet, longest) {
                proptest::prop_assert_eq!(suggest(&word, table), None);
            }
        }

        /// Whatever the word (ASCII or not) and the limit, the shortcuts never drop a
        /// candidate within the limit nor report a wrong distance.
        #[test]
        fn bounded_distance_agrees(a in "[a-e_é\u{fffd}]{0,12}", b in "[a-e_é]{0,12}", limit in 0usize..6) {
            let want = levenshtein(&a, &b);
            let got = Speller::new(&a).distance_within(&b, limit);
            proptest::prop_assert_eq!(got, (want <= limit).then_some(want));
        }

        /// The bit-parallel distance is the table's, up to the 64 bytes it takes, whatever
        /// the limit (a small alphabet makes matches, long strings carry across the word).
        #[test]
        fn bit_parallel_distance_agrees(a in "[a-c_]{1,64}", b in "[a-c_]{0,80}", limit in 0usize..90) {
            let want = levenshtein(&a, &b);
            let got = Peq::new(a.as_bytes()).expect("ASCII, 1 to 64 bytes").distance(b.as_bytes(), limit);
            proptest::prop_assert_eq!(got, (want <= limit).then_some(want));
        }
    }
}
