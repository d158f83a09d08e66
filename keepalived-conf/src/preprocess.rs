//! keepalived's line preprocessor, run before lexing: comments, `include GLOB` (with `{a,b}`),
//! `@ID` / `@^ID` conditional lines, `$NAME=VALUE` parameters (multi-line too) with the
//! predefined `${_PWD}`, `${_INSTANCE}`, `${_RANDOM}`, `${_HASH}`, `${_BANG}`, `${_ENV VAR}`,
//! and `~SEQ` / `~SEQx` / `~LST` line repetition. The output is a list of logical lines that
//! keep the file and line they came from, so diagnostics still point at the source.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::diag::{Diagnostic, Diags, Pos, Sources};
use super::host::Host;

/// Expansions beyond these are refused (keeps hostile input bounded).
const MAX_INCLUDE_DEPTH: usize = 16;
const MAX_SUBST_DEPTH: usize = 32;
const MAX_REPEAT: usize = 100_000;
/// An expansion past `max_lines`, `MAX_SUBST_DEPTH` or a mebibyte of text.
const TOO_LARGE: &str = "parameter expansion too deep or too large";
/// Names one `include` pattern may expand to with its `{a,b}` groups (each is globbed).
const MAX_INCLUDE_PATTERNS: usize = 1024;

/// One logical line, comments already removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub file: Arc<Path>,
    pub line: u32,
    pub text: String,
}

/// Preprocessor settings.
#[derive(Debug, Clone)]
pub struct Options<'h> {
    /// The config id `@ID` lines compare against.
    pub config_id: String,
    /// Where files, the environment and `${_RANDOM}` come from.
    pub host: &'h dyn Host,
    /// At most this many lines after expansion (includes, `~SEQ`, parameters), and as many
    /// `~SEQ`/`~LST` passes (nested ones multiply, and a pass may make no line).
    pub max_lines: usize,
}

/// keepalived's default config id: the host name up to its first dot.
pub fn default_config_id(host: &dyn Host) -> String {
    host.hostname()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Preprocess `path` and the files it includes; `None` when `path` itself cannot be read.
pub fn preprocess_file(
    path: &Path,
    opts: &Options<'_>,
    diags: &mut Diags,
    sources: &mut Sources,
) -> Option<Vec<Line>> {
    let bytes = match opts.host.read(path) {
        Ok(b) => b,
        Err(e) => {
            diags.push(Diagnostic::file_error(
                path,
                format!("cannot read configuration file: {e}"),
            ));
            return None;
        }
    };
    let mut pp = Pre::new(opts);
    pp.file(path, &bytes, diags, sources);
    Some(pp.out)
}

/// Preprocess the contents of a file that is not read from the host (tests, fuzzing);
/// includes resolve against `name`'s directory.
pub fn preprocess_bytes(
    bytes: &[u8],
    name: &Path,
    opts: &Options<'_>,
    diags: &mut Diags,
    sources: &mut Sources,
) -> Vec<Line> {
    let mut pp = Pre::new(opts);
    pp.file(name, bytes, diags, sources);
    pp.out
}

/// Lines of a file as text. keepalived reads bytes; a line that is not UTF-8 (an ISO-8859-1
/// comment, say) is read with U+FFFD in place of the bad bytes, and said so only if they are
/// not in a comment. Returns the text and the (1-based) numbers of the lines that were not.
fn decode(bytes: &[u8]) -> (String, Vec<u32>) {
    match std::str::from_utf8(bytes) {
        Ok(t) => (t.to_string(), Vec::new()),
        Err(_) => {
            let mut bad = Vec::new();
            let mut text = String::with_capacity(bytes.len() + bytes.len() / 2);
            for (i, l) in bytes.split(|b| *b == b'\n').enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                let mut valid = true;
                for chunk in l.utf8_chunks() {
                    text.push_str(chunk.valid());
                    if !chunk.invalid().is_empty() {
                        text.push(char::REPLACEMENT_CHARACTER);
                        valid = false;
                    }
                }
                if !valid {
                    bad.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
                }
            }
            (text, bad)
        }
    }
}

/// keepalived's line buffer: `fgets` into 1024 bytes, so a longer line is read in pieces of
/// 1023, each a line of its own (comments and quotes end with the piece).
const LINE_BUF: usize = 1023;

/// keepalived's white space (`WHITE_SPACE_STR`): no other character separates words, so a
/// non-breaking or ideographic space pasted from a web page is part of a word, as it is for
/// keepalived.
pub fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// The lines keepalived reads from `text`, each with its line number: a line end is `\n`
/// (a `\r` before it is dropped); a NUL ends the line (keepalived reads it as a C string);
/// a line longer than [`LINE_BUF`] bytes is read as several, the later pieces padded with
/// spaces so that columns still match the file.
fn reads<'t>(text: &'t str, file: &Arc<Path>, diags: &mut Diags) -> Vec<(u32, Cow<'t, str>)> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut rest = line;
        let mut before = 0usize;
        loop {
            let mut cut = rest.len().min(LINE_BUF);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (piece, next) = rest.split_at(cut);
            let mut piece = piece.trim_end_matches('\r');
            if let Some(nul) = piece.find('\0') {
                let col = u32::try_from(before + piece[..nul].chars().count() + 1).unwrap_or(1);
                diags.push(Diagnostic::notice(
                    &Pos::new(file, no, col),
                    "a NUL byte: keepalived ends the line here and ignores the rest of it",
                ));
                piece = &piece[..nul];
            }
            out.push((
                no,
                if before == 0 {
                    Cow::Borrowed(piece)
                } else {
                    Cow::Owned(format!("{}{piece}", " ".repeat(before)))
                },
            ));
            if next.is_empty() {
                break;
            }
            before += rest[..cut].chars().count();
            let col = u32::try_from(before + 1).unwrap_or(1);
            diags.push(Diagnostic::notice(
                &Pos::new(file, no, col),
                format!(
                    "this line is longer than {LINE_BUF} bytes: keepalived reads it from here as a \
                     new line (and numbers the lines after it one more than they are)"
                ),
            ));
            rest = next;
        }
    }
    out
}

struct Pre<'o, 'h> {
    opts: &'o Options<'h>,
    params: FxHashMap<String, Vec<String>>,
    stack: Vec<PathBuf>,
    out: Vec<Line>,
    pwd: PathBuf,
    /// `~SEQ`/`~LST` passes so far.
    passes: usize,
}

impl<'o, 'h> Pre<'o, 'h> {
    fn new(opts: &'o Options<'h>) -> Self {
        Self {
            opts,
            params: FxHashMap::default(),
            stack: Vec::new(),
            out: Vec::new(),
            pwd: PathBuf::from("."),
            passes: 0,
        }
    }

    fn file(&mut self, path: &Path, bytes: &[u8], diags: &mut Diags, sources: &mut Sources) {
        let (text, not_utf8) = decode(bytes);
        let file: Arc<Path> = Arc::from(path);
        self.stack.push(self.opts.host.canonical(path));
        let saved_pwd = std::mem::replace(
            &mut self.pwd,
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        );
        let lines = reads(&text, &file, diags);
        let mut i = 0;
        while i < lines.len() {
            let (no, ref line) = lines[i];
            let pos = Pos::new(&file, no, 1);
            let raw = strip_comment(line);
            i += 1;
            if !not_utf8.is_empty()
                && not_utf8.binary_search(&no).is_ok()
                && raw.contains(char::REPLACEMENT_CHARACTER)
            {
                diags.push(Diagnostic::notice(
                    &pos,
                    "this line is not valid UTF-8: its bad bytes are read as U+FFFD",
                ));
            }
            // A multi-line definition: `$NAME= [FIRST LINE] \` then lines ending in `\`.
            if let Some((name, rest)) = definition(raw.trim_start_matches(is_blank)) {
                if let Some(first) = rest.trim_end_matches(is_blank).strip_suffix('\\') {
                    let mut value = vec![first.to_string()];
                    while i < lines.len() {
                        let l = strip_comment(&lines[i].1);
                        i += 1;
                        match l.trim_end_matches(is_blank).strip_suffix('\\') {
                            Some(body) => value.push(body.to_string()),
                            None => {
                                value.push(l.to_string());
                                break;
                            }
                        }
                    }
                    value.retain(|l| !l.trim_matches(is_blank).is_empty());
                    self.params.insert(name.to_string(), value);
                    continue;
                }
            }
            self.line(&raw, &pos, 0, diags, sources);
        }
        sources.insert(path, text);
        self.pwd = saved_pwd;
        self.stack.pop();
    }

    /// Process one line: conditional, definition, repetition, substitution, include.
    fn line(
        &mut self,
        text: &str,
        pos: &Pos,
        depth: usize,
        diags: &mut Diags,
        sources: &mut Sources,
    ) {
        if depth > MAX_SUBST_DEPTH || self.out.len() >= self.opts.max_lines {
            diags.push(Diagnostic::error(pos, TOO_LARGE));
            return;
        }
        let mut t = text.trim_start_matches(is_blank);
        if let Some(rest) = t.strip_prefix('@') {
            let (neg, rest) = match rest.strip_prefix('^') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            if (rest[..end] == self.opts.config_id) == neg {
                return;
            }
            t = rest[end..].trim_start_matches(is_blank);
        }
        if let Some((name, value)) = definition(t) {
            self.params
                .insert(name.to_string(), vec![value.trim().to_string()]);
            return;
        }
        if is_repetition(t) {
            match repetition(t) {
                Ok((bindings, rest)) => {
                    if bindings.len() > MAX_REPEAT {
                        diags.push(Diagnostic::error(pos, "too many repetitions"));
                        return;
                    }
                    let rest = rest.to_string();
                    for k in 0..bindings.len() {
                        let b = bindings.get(k);
                        self.passes += 1;
                        if self.out.len() >= self.opts.max_lines
                            || self.passes > self.opts.max_lines
                        {
                            diags.push(Diagnostic::error(pos, "repetition too large"));
                            return;
                        }
                        let saved: Vec<_> = b
                            .iter()
                            .map(|(k, _)| (k.clone(), self.params.get(k).cloned()))
                            .collect();
                        for (k, v) in b {
                            self.params.insert(k, vec![v]);
                        }
                        self.line(&rest, pos, depth + 1, diags, sources);
                        for (k, v) in saved {
                            match v {
                                Some(v) => self.params.insert(k, v),
                                None => self.params.remove(&k),
                            };
                        }
                    }
                }
                Err(msg) => diags.push(Diagnostic::error(pos, msg)),
            }
            return;
        }
        if t.contains('$') {
            let lines = self.substitute(t, pos, diags);
            if lines.len() != 1 || lines[0] != t {
                for l in lines {
                    self.line(&l, pos, depth + 1, diags, sources);
                }
                return;
            }
        }
        // keepalived takes the rest of the line, as written (quotes and blanks too), as one
        // glob pattern.
        if let Some(rest) = t
            .strip_prefix("include")
            .filter(|r| r.starts_with(is_blank))
        {
            let pat = rest.trim_matches(is_blank);
            if pat.is_empty() {
                diags.push(Diagnostic::error(
                    pos,
                    "`include` needs a file name or glob",
                ));
                return;
            }
            // `rest` ends `text`: the pattern starts this far into it.
            let at = text.len() - rest.trim_start_matches(is_blank).len();
            let col = text[..at].chars().count() + 1;
            let ppos = Pos::new(&pos.file, pos.line, u32::try_from(col).unwrap_or(1));
            self.include(pat, &ppos, diags, sources);
            return;
        }
        if !t.trim_matches(is_blank).is_empty() {
            // Blank out a stripped `@ID` prefix so columns still match the source.
            let pad = if t.len() == text.len() {
                0
            } else {
                text.chars().count() - t.chars().count()
            };
            let mut line = String::with_capacity(pad + t.len());
            line.extend(std::iter::repeat_n(' ', pad));
            line.push_str(t);
            self.out.push(Line {
                file: pos.file.clone(),
                line: pos.line,
                text: line,
            });
        }
    }

    /// Replace `$NAME` (before whitespace or end) and `${NAME}`; a multi-line value splits the
    /// result into several lines. Unknown names stay as written, as in keepalived.
    fn substitute(&self, text: &str, pos: &Pos, diags: &mut Diags) -> Vec<String> {
        // Most lines with a `$` name nothing defined: no copy of them.
        let Some(mut cur) = self.subst_once(text) else {
            return vec![text.to_string()];
        };
        // Lines past `max_lines` would each be refused: an expansion stops growing there.
        let budget = self
            .opts
            .max_lines
            .saturating_sub(self.out.len())
            .min(MAX_REPEAT);
        for _ in 1..MAX_SUBST_DEPTH {
            if cur.len() > budget || cur.iter().map(String::len).sum::<usize>() > 1 << 20 {
                diags.push(Diagnostic::error(pos, TOO_LARGE));
                return vec![String::new()];
            }
            let mut changed = false;
            let mut next = Vec::with_capacity(cur.len());
            for l in cur {
                // A `~SEQ` line of a multi-line value is repeated first, its text substituted
                // in each pass (as at the top level): `~SEQ(N,1,9) $BLOCK` repeats the
                // whole block, not its first line.
                if is_repetition(&l) {
                    next.push(l);
                    continue;
                }
                match self.subst_once(&l) {
                    Some(parts) => {
                        changed = true;
                        next.extend(parts);
                    }
                    None => next.push(l),
                }
            }
            cur = next;
            if !changed {
                return cur;
            }
        }
        diags.push(Diagnostic::error(
            pos,
            "parameter substitution does not terminate",
        ));
        vec![String::new()]
    }

    /// The first known `$NAME` of `l` replaced, or `None` when it has none.
    fn subst_once(&self, l: &str) -> Option<Vec<String>> {
        let b = l.as_bytes();
        let mut i = 0;
        while let Some(off) = l[i..].find('$') {
            let s = i + off;
            let (name, end) = if b.get(s + 1) == Some(&b'{') {
                match l[s + 2..].find('}') {
                    Some(e) => (&l[s + 2..s + 2 + e], s + 3 + e),
                    None => {
                        i = s + 1;
                        continue;
                    }
                }
            } else {
                let e = l[s + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(l.len(), |e| s + 1 + e);
                // `$NAME` must be followed by whitespace or the end of the line.
                if e < l.len() && !l[e..].starts_with(char::is_whitespace) {
                    i = s + 1;
                    continue;
                }
                (&l[s + 1..e], e)
            };
            if let Some(value) = self.value(name) {
                let (pre, post) = (&l[..s], &l[end..]);
                let joined = |p: &str, v: &str, q: &str| {
                    let mut line = String::with_capacity(p.len() + v.len() + q.len());
                    line.push_str(p);
                    line.push_str(v);
                    line.push_str(q);
                    line
                };
                let n = value.len();
                let out = if n == 0 {
                    vec![joined(pre, "", post)]
                } else {
                    value
                        .iter()
                        .enumerate()
                        .map(|(k, v)| {
                            let p = if k == 0 { pre } else { "" };
                            let q = if k + 1 == n { post } else { "" };
                            joined(p, v, q)
                        })
                        .collect()
                };
                return Some(out);
            }
            i = s + 1;
        }
        None
    }

    /// The value of a parameter (borrowed) or of a predefined name.
    fn value(&self, name: &str) -> Option<Cow<'_, [String]>> {
        let mut words = name.split_whitespace();
        let head = words.next()?;
        let v = match head {
            "_PWD" => self.pwd.display().to_string(),
            "_INSTANCE" => self.opts.config_id.clone(),
            "_HASH" => "#".into(),
            "_BANG" => "!".into(),
            "_ENV" => self.opts.host.env(words.next()?).unwrap_or_default(),
            "_RANDOM" => {
                let min: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                let max: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(32767);
                let (lo, hi) = (min.min(max), min.max(max));
                self.opts.host.random(lo, hi).to_string()
            }
            _ => return self.params.get(name).map(|v| Cow::Borrowed(v.as_slice())),
        };
        Some(Cow::Owned(vec![v]))
    }

    fn include(&mut self, pat: &str, pos: &Pos, diags: &mut Diags, sources: &mut Sources) {
        let Some(patterns) = brace_expand_limited(pat, MAX_INCLUDE_PATTERNS) else {
            diags.push(Diagnostic::error(
                pos,
                format!("include pattern expands to more than {MAX_INCLUDE_PATTERNS} names"),
            ));
            return;
        };
        let mut found = Vec::new();
        for p in patterns {
            let full = if Path::new(&p).is_absolute() {
                PathBuf::from(&p)
            } else {
                self.pwd.join(&p)
            };
            match self.opts.host.glob(&full.to_string_lossy()) {
                Ok(v) => found.extend(v),
                Err(e) => diags.push(Diagnostic::error(pos, format!("bad include pattern: {e}"))),
            }
        }
        if found.is_empty() {
            diags.push(Diagnostic::notice(
                pos,
                format!("no file matches include `{pat}`"),
            ));
        }
        for m in found {
            let canon = self.opts.host.canonical(&m);
            // keepalived reads a file that includes itself again and again until it runs
            // out of file descriptors, then skips it (`-t` does not count that): what the
            // file defines is then reported as already defined. Reading it a second time
            // gives the same reports; a third adds nothing.
            if self.stack.iter().filter(|c| **c == canon).count() >= 2 {
                diags.push(Diagnostic::notice(
                    pos,
                    format!(
                        "include loop: `{}` is already being read (twice); skipped",
                        m.display()
                    ),
                ));
                continue;
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                diags.push(Diagnostic::error(pos, "includes nested too deeply"));
                continue;
            }
            match self.opts.host.read(&m) {
                Ok(bytes) => self.file(&m, &bytes, diags, sources),
                // keepalived says "open problem - skipping" and goes on (`-t` too).
                Err(e) => diags.push(Diagnostic::notice(
                    pos,
                    format!("cannot read `{}`: {e}; skipped", m.display()),
                )),
            }
        }
    }
}

/// Remove a `#` or `!` comment as keepalived's `decomment` does: only a `"` string protects
/// one (a `'` does not: keepalived cuts `'a#b'` at the `#`), a `\` keeps the character after
/// it, and outside a string `\#` and `\!` are a plain `#` and `!`. A `\` ending the line
/// still continues it when it ends the comment (`# quorum_down "…" \` inside a multi-line
/// `$NAME=` definition does not end the definition).
pub fn strip_comment(line: &str) -> Cow<'_, str> {
    let cut = |at: usize| {
        if continues(&line.as_bytes()[at..]) {
            Cow::Owned(format!("{}\\", &line[..at]))
        } else {
            Cow::Borrowed(&line[..at])
        }
    };
    // Most lines have no `\#` or `\!` outside a string: they are their own prefix.
    let b = line.as_bytes();
    let mut quote = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => quote = !quote,
            b'\\' => match b.get(i + 1) {
                Some(b'#' | b'!') if !quote => return Cow::Owned(strip_comment_escaped(line)),
                Some(_) => i += 1,
                None => {}
            },
            b'#' | b'!' if !quote => return cut(i),
            _ => {}
        }
        i += 1;
    }
    Cow::Borrowed(line)
}

/// Whether a comment ends in a line-continuing `\\` (one not escaped by another).
fn continues(comment: &[u8]) -> bool {
    let mut i = 0;
    while i < comment.len() {
        if comment[i] == b'\\' {
            if i + 1 == comment.len() {
                return true;
            }
            i += 1;
        }
        i += 1;
    }
    false
}

/// A `~SEQ(…)` or `~LST(…)` line (after its indentation).
fn is_repetition(line: &str) -> bool {
    let t = line.trim_start_matches(is_blank);
    t.starts_with("~SEQ") || t.starts_with("~LST")
}

/// [`strip_comment`] of a line with an escaped `#` or `!` outside a string.
fn strip_comment_escaped(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quote = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quote = !quote,
            '\\' => match chars.peek() {
                Some(&n @ ('#' | '!')) if !quote => {
                    out.push(n);
                    chars.next();
                    continue;
                }
                Some(&n) => {
                    out.push(c);
                    out.push(n);
                    chars.next();
                    continue;
                }
                None => {}
            },
            '#' | '!' if !quote => {
                if continues(chars.collect::<String>().as_bytes()) {
                    out.push('\\');
                }
                return out;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `$NAME=VALUE` → (NAME, VALUE).
fn definition(t: &str) -> Option<(&str, &str)> {
    let rest = t.strip_prefix('$')?;
    let eq = rest.find('=')?;
    let name = &rest[..eq];
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| (name, &rest[eq + 1..]))
}

/// The variable bindings of a repetition, one set per pass. A `~SEQ`'s are made as they are
/// used: a range of 10^16 is refused by counting, and a pass cut short by the line limit
/// costs nothing for the values after it.
enum Bindings {
    /// `count` values of `var`, from `start` by `step`, in hex or decimal.
    Seq {
        var: String,
        start: i64,
        step: i64,
        count: usize,
        hex: bool,
    },
    Lst(Vec<Vec<(String, String)>>),
}

impl Bindings {
    fn len(&self) -> usize {
        match self {
            Bindings::Seq { count, .. } => *count,
            Bindings::Lst(v) => v.len(),
        }
    }

    /// The bindings of pass `k` (< [`Self::len`]).
    fn get(&self, k: usize) -> Vec<(String, String)> {
        match self {
            Bindings::Seq {
                var,
                start,
                step,
                hex,
                ..
            } => {
                // Between `start` and the last value, which `seq` checked.
                let v = i128::from(*start) + i128::from(*step) * k as i128;
                let s = if *hex {
                    format!("{v:x}")
                } else {
                    v.to_string()
                };
                vec![(var.clone(), s)]
            }
            Bindings::Lst(v) => v[k].clone(),
        }
    }
}

/// Parse a leading `~SEQ(…)`, `~SEQx(…)` or `~LST(…)`: the variable bindings, one set per
/// repetition, and the rest of the line.
fn repetition(t: &str) -> Result<(Bindings, &str), String> {
    let (kind, rest) = if let Some(r) = t.strip_prefix("~SEQx(") {
        ("SEQx", r)
    } else if let Some(r) = t.strip_prefix("~SEQ(") {
        ("SEQ", r)
    } else if let Some(r) = t.strip_prefix("~LST(") {
        ("LST", r)
    } else {
        return Err(format!(
            "unknown repetition `{}`",
            t.split('(').next().unwrap_or(t)
        ));
    };
    // Find the closing parenthesis.
    let mut depth = 0;
    let mut close = None;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ')' if depth == 0 => {
                close = Some(i);
                break;
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| format!("~{kind}: missing `)`"))?;
    let inner = &rest[..close];
    let after = &rest[close + 1..];
    let b = if kind == "LST" {
        lst(inner)?
    } else {
        seq(inner, kind == "SEQx")?
    };
    Ok((b, after))
}

fn parse_num(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let v = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16),
        None => body.parse(),
    }
    .map_err(|_| format!("~SEQ: `{s}` is not a number"))?;
    Ok(if neg { -v } else { v })
}

fn seq(inner: &str, hex: bool) -> Result<Bindings, String> {
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let var = parts[0].to_string();
    if var.is_empty() {
        return Err("~SEQ: missing variable".into());
    }
    let nums = parts[1..]
        .iter()
        .map(|p| parse_num(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, step, end) = match nums[..] {
        [end] => (
            if end < 0 { -1 } else { 1 },
            if end < 0 { -1 } else { 1 },
            end,
        ),
        [start, end] => (start, if end < start { -1 } else { 1 }, end),
        [start, step, end] => (start, step, end),
        _ => return Err("~SEQ needs (var, [start, [step,]] end)".into()),
    };
    if step == 0 {
        return Err("~SEQ: step must not be 0".into());
    }
    // As many values as `start, start + step, ...` stay within `end` (i128: no overflow).
    let (first, step128, last) = (i128::from(start), i128::from(step), i128::from(end));
    let count = if (step > 0 && first > last) || (step < 0 && first < last) {
        0
    } else {
        (last - first) / step128 + 1
    };
    if count > MAX_REPEAT as i128 {
        return Err("~SEQ: too many repetitions".into());
    }
    // Refused when the step past the last value overflows, as the loop this replaced did.
    if count > 0 && i64::try_from(first + step128 * count).is_err() {
        return Err("~SEQ: overflow".into());
    }
    Ok(Bindings::Seq {
        var,
        start,
        step,
        count: count as usize,
        hex,
    })
}

/// Split on commas outside `{…}`.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

fn unbrace(s: &str) -> Vec<String> {
    let s = s.trim();
    match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        Some(inner) => inner.split(',').map(|p| p.trim().to_string()).collect(),
        None => vec![s.to_string()],
    }
}

fn lst(inner: &str) -> Result<Bindings, String> {
    let parts = split_top(inner);
    let vars = unbrace(parts[0]);
    if parts.len() < 2 || vars.iter().any(String::is_empty) {
        return Err("~LST needs (var, value, …)".into());
    }
    parts[1..]
        .iter()
        .map(|p| {
            let vals = unbrace(p);
            if vals.len() != vars.len() {
                return Err(format!("~LST: `{p}` does not give {} values", vars.len()));
            }
            Ok(vars.iter().cloned().zip(vals).collect())
        })
        .collect::<Result<_, _>>()
        .map(Bindings::Lst)
}

/// Shell-style `{a,b}` expansion (nested), as keepalived's include does with GLOB_BRACE.
pub fn brace_expand(p: &str) -> Vec<String> {
    brace_expand_limited(p, usize::MAX).unwrap_or_default()
}

/// [`brace_expand`], or `None` beyond `limit` names: each group multiplies them, so a line of
/// twenty `{a,b}` is a million globs (a fuzz input of 539 bytes never finished). The work is
/// bounded by the names made.
pub fn brace_expand_limited(p: &str, limit: usize) -> Option<Vec<String>> {
    let mut out = Vec::new();
    expand_into(p, "", &mut out, limit).then_some(out)
}

/// Append the expansions of `p`, each after `prefix`, to `out`; false once `out` would
/// exceed `limit`.
fn expand_into(p: &str, prefix: &str, out: &mut Vec<String>, limit: usize) -> bool {
    let literal = |out: &mut Vec<String>| {
        if out.len() >= limit {
            return false;
        }
        out.push(format!("{prefix}{p}"));
        true
    };
    let Some(open) = p.find('{') else {
        return literal(out);
    };
    let mut depth = 0;
    let mut close = None;
    for (i, c) in p[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return literal(out);
    };
    let (pre, inner, post) = (&p[..open], &p[open + 1..close], &p[close + 1..]);
    let alts = split_top(inner);
    if alts.len() < 2 {
        return expand_into(post, &format!("{prefix}{pre}{{{inner}}}"), out, limit);
    }
    let prefix = format!("{prefix}{pre}");
    alts.into_iter()
        .all(|a| expand_into(&format!("{a}{post}"), &prefix, out, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pp(text: &str, id: &str) -> Vec<String> {
        let host = crate::host::FakeHost::new();
        let opts = Options {
            config_id: id.into(),
            host: &host,
            max_lines: 1 << 20,
        };
        let mut d = Diags::default();
        let out = preprocess_bytes(
            text.as_bytes(),
            Path::new("/nonexistent/k.conf"),
            &opts,
            &mut d,
            &mut Sources::default(),
        );
        assert!(!d.has_errors(), "{:?}", d.list());
        out.into_iter().map(|l| l.text.trim().to_string()).collect()
    }

    #[test]
    fn conditionals() {
        let src = "@main router_id a\n@backup router_id b\n@^main x\ny # c";
        assert_eq!(pp(src, "main"), vec!["router_id a", "y"]);
        assert_eq!(pp(src, "other"), vec!["x", "y"]);
    }

    #[test]
    fn parameters_resolve_at_use() {
        let src = "$B=10.2.${S}\n$S=0\n${B}.100/32\n$S=10\n${B}.100/32\n$U ${UNDEF} $S";
        assert_eq!(
            pp(src, "h"),
            vec!["10.2.0.100/32", "10.2.10.100/32", "$U ${UNDEF} 10"]
        );
        assert_eq!(
            pp("@m $P=240\n@b $P=200\npriority $P", "b"),
            vec!["priority 200"]
        );
        assert_eq!(pp("$I=@m\n$I priority 240", "m"), vec!["priority 240"]);
        assert_eq!(pp("$I=@m\n$I priority 240", "x"), Vec::<String>::new());
        assert_eq!(pp("a ${_HASH}b${_INSTANCE}", "me"), vec!["a #bme"]);
        assert_eq!(pp("a ${_PWD}", "me"), vec!["a /nonexistent"]);
        assert_eq!(pp("${_RANDOM 5 7} ${_RANDOM 5 7}", "me"), ["5 6"]);
    }

    /// keepalived's value starts on the definition's own line when there is text before its
    /// `\`.
    #[test]
    fn a_multiline_definition_may_start_on_its_own_line() {
        let src = "$VIPS=192.0.2.10/24 \\\n192.0.2.11/24\nvirtual_ipaddress {\n$VIPS\n}";
        assert_eq!(
            pp(src, "h"),
            ["virtual_ipaddress {", "192.0.2.10/24", "192.0.2.11/24", "}"]
        );
    }

    #[test]
    fn multiline_definitions_nest() {
        let src = "$RS= \\\nreal_server 10.0.0.${N} { \\\n weight 1 \\\n}\n$VS= \\\nvs { \\\n$N=1 \\\n$RS \\\n$N=2 \\\n$RS \\\n}\n$VS";
        assert_eq!(
            pp(src, "h"),
            vec![
                "vs {",
                "real_server 10.0.0.1 {",
                "weight 1",
                "}",
                "real_server 10.0.0.2 {",
                "weight 1",
                "}",
                "}"
            ]
        );
    }

    #[test]
    fn sequences_and_lists() {
        assert_eq!(
            pp("~SEQ(S, 0, 3) ip 10.0.${S}.1", "h"),
            vec!["ip 10.0.0.1", "ip 10.0.1.1", "ip 10.0.2.1", "ip 10.0.3.1"]
        );
        assert_eq!(
            pp("~SEQx(S, 0x90, 0x10, 0xc0) fe80::${S}:1", "h"),
            vec!["fe80::90:1", "fe80::a0:1", "fe80::b0:1", "fe80::c0:1"]
        );
        assert_eq!(pp("~SEQ(A,3) ${A}", "h"), vec!["1", "2", "3"]);
        assert_eq!(pp("~SEQ(A,3,1) ${A}", "h"), vec!["3", "2", "1"]);
        assert_eq!(pp("~SEQ(A,5,-2,0) ${A}", "h"), vec!["5", "3", "1"]);
        assert_eq!(pp("~SEQ(A,2,1,1) ${A}", "h"), Vec::<String>::new());
        assert_eq!(
            pp(
                "~SEQ(A,-9223372036854775807,9223372036854775807,1) ${A}",
                "h"
            ),
            vec!["-9223372036854775807", "0"]
        );
        assert_eq!(
            pp("~LST({A,B},{10,1},{20,4}) ~SEQ(C,1,2) ${A}.${B}.${C}", "h"),
            vec!["10.1.1", "10.1.2", "20.4.1", "20.4.2"]
        );
    }

    /// Counted, not generated: a range of 10^16 is refused at once, and the overflow of the
    /// step past the last value is still refused.
    #[test]
    fn sequence_limits() {
        let seq = |inner| match repetition(inner) {
            Ok((b, _)) => Ok(b.len()),
            Err(e) => Err(e),
        };
        assert_eq!(
            seq("~SEQ(X,9999999999999990,3) x"),
            Err("~SEQ: too many repetitions".into())
        );
        assert_eq!(seq("~SEQ(X,0,99999) x"), Ok(100_000));
        assert_eq!(
            seq("~SEQ(X,0,100000) x"),
            Err("~SEQ: too many repetitions".into())
        );
        assert_eq!(
            seq("~SEQ(X,9223372036854775806,9223372036854775807) x"),
            Err("~SEQ: overflow".into())
        );
        assert_eq!(
            seq("~SEQ(X,9223372036854775806,2,9223372036854775807) x"),
            Err("~SEQ: overflow".into())
        );
        assert_eq!(
            seq("~SEQ(X,9223372036854775800,2,9223372036854775803) x"),
            Ok(2)
        );
        assert_eq!(
            seq("~SEQ(X,-9223372036854775807,-2,-9223372036854775807) x"),
            Err("~SEQ: overflow".into())
        );
        assert_eq!(seq("~SEQ(X,5,1,4) x"), Ok(0));
    }

    #[test]
    fn braces_in_includes() {
        assert_eq!(brace_expand("a/{x,y}.conf"), vec!["a/x.conf", "a/y.conf"]);
        assert_eq!(brace_expand("{a,b{1,2}}c"), vec!["ac", "b1c", "b2c"]);
        assert_eq!(brace_expand("plain"), vec!["plain"]);
        assert_eq!(brace_expand("a{x}b{1,2}"), vec!["a{x}b1", "a{x}b2"]);
        assert_eq!(brace_expand("a{1,2"), vec!["a{1,2"]);
        assert_eq!(
            brace_expand_limited("{a,b}{c,d}", 4).map(|v| v.len()),
            Some(4)
        );
        assert_eq!(brace_expand_limited("{a,b}{c,d}", 3), None);
    }

    /// A fuzz finding (timeout): an `include` whose `{a,b}` groups multiply to millions of
    /// names is refused at once, with a message on its line.
    #[test]
    fn include_brace_bomb_is_refused() {
        let host = crate::host::FakeHost::new();
        let opts = Options {
            config_id: "h".into(),
            host: &host,
            max_lines: 500,
        };
        let mut d = Diags::default();
        let line = format!("x\ninclude /etc/k{}.conf\n", "{a,b}".repeat(40));
        preprocess_bytes(
            line.as_bytes(),
            Path::new("/k.conf"),
            &opts,
            &mut d,
            &mut Sources::default(),
        );
        assert_eq!(d.list().len(), 1, "{:?}", d.list());
        assert_eq!((d.list()[0].line, d.list()[0].col), (2, 9));
        assert_eq!(
            d.list()[0].message,
            "include pattern expands to more than 1024 names"
        );
        assert!(d.list()[0].is_error());
    }

    #[test]
    fn latin1_bytes_are_read_not_refused() {
        let (text, bad) = decode(b"a # caf\xe9\nb\n");
        assert_eq!(text, "a # caf\u{fffd}\nb\n");
        assert_eq!(bad, [1]);
        let host = crate::host::FakeHost::new().with_file("/k.conf", "");
        let opts = Options {
            config_id: "h".into(),
            host: &host,
            max_lines: 100,
        };
        let mut d = Diags::default();
        let mut s = Sources::default();
        let mut pp = Pre::new(&opts);
        pp.file(
            Path::new("/k.conf"),
            b"x 1 # \xe9t\xe9\ny caf\xe9\n",
            &mut d,
            &mut s,
        );
        let lines: Vec<&str> = pp.out.iter().map(|l| l.text.trim()).collect();
        assert_eq!(lines, ["x 1", "y caf\u{fffd}"]);
        // Said once, for the line where the bytes are not in a comment.
        assert_eq!(d.list().len(), 1, "{:?}", d.list());
        assert_eq!(d.list()[0].line, 2);
        assert!(!d.list()[0].keepalived_flags() && !d.list()[0].is_error());
    }

    #[test]
    fn comments_respect_quotes() {
        assert_eq!(strip_comment("a \"x # y\" # z"), "a \"x # y\" ");
        assert_eq!(strip_comment("a 'b!c'! d"), "a 'b");
        assert_eq!(strip_comment(r"pass a\#b # c"), "pass a#b ");
        assert_eq!(strip_comment(r#"x "a\"b # c" # d"#), r#"x "a\"b # c" "#);
        // A comment's last `\` still continues the line; an escaped one does not.
        assert_eq!(strip_comment(r"  # quorum_down x \"), r"  \");
        assert_eq!(strip_comment(r"a # b \\"), "a ");
        assert_eq!(strip_comment(r"a\# b # c \"), r"a# b \");
    }

    #[test]
    fn a_repetition_in_a_multiline_value_repeats_the_whole_value() {
        let src = "$RS= \\\nreal_server 192.0.2.${N} 80 { \\\n weight ${N} \\\n}\n$VS= \\\nvirtual_server 192.0.2.100 80 { \\\n ~SEQ(N, 1, 2) $RS \\\n}\n$VS";
        assert_eq!(
            pp(src, "h"),
            vec![
                "virtual_server 192.0.2.100 80 {",
                "real_server 192.0.2.1 80 {",
                "weight 1",
                "}",
                "real_server 192.0.2.2 80 {",
                "weight 2",
                "}",
                "}"
            ]
        );
    }

    #[test]
    fn a_comment_ending_in_a_backslash_does_not_end_a_definition() {
        let src = "$RS= \\\nreal_server 192.0.2.1 80 { \\\n # weight 2 \\\n \\\n}\n$RS";
        assert_eq!(pp(src, "h"), vec!["real_server 192.0.2.1 80 {", "}"]);
    }
}
