//! Diagnostics: what went wrong, where, and how to fix it, rendered as a code frame.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How bad a diagnostic is. Any [`Severity::Error`] makes the load fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Severity {
    Warning,
    Error,
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

/// One message about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the message is about the file as a whole.
    pub line: u32,
    pub col: u32,
    pub message: String,
    pub help: Option<String>,
    /// keepalived reports the same condition as a configuration error, so its `-t` exits
    /// non-zero. False for our own "not implemented yet" notices.
    pub keepalived_flags: bool,
    /// keepalived's "SECURITY VIOLATION" class: `-t` exits with its own code (6).
    pub security: bool,
}

impl Diagnostic {
    fn new(severity: Severity, pos: &Pos, message: impl Into<String>) -> Self {
        Self {
            severity,
            file: pos.file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            help: None,
            keepalived_flags: true,
            security: false,
        }
    }

    pub fn error(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, pos, message)
    }

    pub fn warning(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, pos, message)
    }

    /// A diagnostic about a whole file (missing, unreadable).
    pub fn file_error(file: &Path, message: impl Into<String>) -> Self {
        let pos = Pos {
            file: Arc::from(file),
            line: 0,
            col: 0,
        };
        Self::new(Severity::Error, &pos, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Mark as something keepalived itself accepts silently.
    pub fn not_flagged_by_keepalived(mut self) -> Self {
        self.keepalived_flags = false;
        self
    }

    /// Mark as a script-security violation.
    pub fn security(mut self) -> Self {
        self.security = true;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Render as `file:line:col: severity: message`, then the source line and a caret.
    /// `source` is the text of `self.file`, when available.
    pub fn render(&self, source: Option<&str>) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        if self.line == 0 {
            let _ = writeln!(out, "{}: {sev}: {}", self.file.display(), self.message);
        } else {
            let _ = writeln!(
                out,
                "{}:{}:{}: {sev}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            );
            if let Some(text) = source.and_then(|s| s.lines().nth(self.line as usize - 1)) {
                let num = self.line.to_string();
                let pad = " ".repeat(num.len());
                let text = text.replace('\t', " ");
                let caret = " ".repeat(self.col.saturating_sub(1) as usize);
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{num} | {text}");
                let _ = writeln!(out, "{pad} | {caret}^");
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

/// Collected diagnostics of one load.
#[derive(Debug, Default)]
pub struct Diags(pub Vec<Diagnostic>);

impl Diags {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if close enough to be a plausible typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_code_frame() {
        let file: Arc<Path> = Arc::from(Path::new("k.conf"));
        let d = Diagnostic::error(&Pos::new(&file, 2, 3), "unknown keyword `priorty`")
            .with_help("did you mean `priority`?");
        let r = d.render(Some("a {\n  priorty 5\n}"));
        assert_eq!(
            r,
            "k.conf:2:3: error: unknown keyword `priorty`\n  |\n2 |   priorty 5\n  |   ^\n  = help: did you mean `priority`?\n"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(suggest("priorty", ["priority", "state"]), Some("priority"));
        assert_eq!(suggest("zzz", ["priority", "state"]), None);
    }
}
