//! keepalived.conf and vrrpd's TOML: lexer → preprocessor → keyword tree → typed [`Config`],
//! with diagnostics that name file:line:col.
//!
//! keepalived syntax stays in this crate; the daemon sees only [`model`]. Every keyword is a
//! row of [`registry`] (see there to add one); the machine is asked about interfaces, files and
//! scripts only through [`host::Host`], so a parse is pure when given a [`host::FakeHost`].

// Safe code only: the config_parse fuzz target relies on it to run without AddressSanitizer.
#![forbid(unsafe_code)]

pub mod build;
pub mod compat;
pub mod diag;
pub mod host;
pub mod iproute;
pub mod lexer;
pub mod model;
pub mod preprocess;
pub mod process;
pub mod registry;
pub mod script_user;
pub mod toml;
pub mod tree;

use std::path::Path;
use std::sync::Arc;

pub use diag::{Diagnostic, Flag, Severity, Sources};
pub use host::{FakeHost, Host, HostChecks, RealHost};
pub use model::Config;
pub use registry::Sides;

/// Options that change how a file is read.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-i/--config-id` for `@ID` lines; `None` means the short host name.
    pub config_id: Option<String>,
    /// The machine: files, interfaces, scripts. [`RealHost`] without checks by default.
    pub host: Arc<dyn Host>,
    /// The sides read: the daemon's `-P` skips the checker side unread, as keepalived's.
    pub sides: Sides,
    /// Lines after expansion beyond this are refused (`~SEQ`, parameters, includes).
    pub max_lines: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            config_id: None,
            host: Arc::new(RealHost::default()),
            sides: Sides::default(),
            max_lines: 2_000_000,
        }
    }
}

impl LoadOptions {
    /// As the daemon and `-t` read a file: every host check of keepalived.
    pub fn checking() -> Self {
        Self {
            host: Arc::new(RealHost::checking()),
            ..Self::default()
        }
    }

    fn preprocess(&self) -> preprocess::Options<'_> {
        preprocess::Options {
            config_id: self
                .config_id
                .clone()
                .unwrap_or_else(|| preprocess::default_config_id(&*self.host)),
            host: &*self.host,
            max_lines: self.max_lines,
        }
    }
}

/// The diagnostics of one load and the text they point into (for code frames).
#[derive(Debug, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
}

impl Report {
    /// Every diagnostic with its code frame (linear in the number of messages).
    pub fn render(&self) -> String {
        self.sources.render(&self.diagnostics)
    }

    /// keepalived 2.2.7's `-t` exit code for these diagnostics.
    pub fn exit_code(&self) -> u8 {
        exit_code(&self.diagnostics)
    }

    /// Whether a block was still open at the end of the file. keepalived runs such a file, and
    /// so does a start (there is nothing else to run), but an edit that lost a brace usually
    /// reads as something else than meant: a reload keeps the running configuration instead.
    pub fn unbalanced(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.message == diag::UNBALANCED)
    }
}

impl std::ops::Deref for Report {
    type Target = [Diagnostic];
    fn deref(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

/// keepalived's `-t` exit code for these diagnostics; a file vrrpd cannot run fails with 5
/// even where keepalived says nothing (each such case is in docs/COMPATIBILITY.md).
pub fn exit_code(diags: &[Diagnostic]) -> u8 {
    let code = Flag::exit_code(diags.iter().map(|d| d.flag));
    if code == 0 && diags.iter().any(Diagnostic::is_error) {
        5
    } else {
        code
    }
}

/// Read and resolve a configuration: native TOML when the name ends in `.toml`, keepalived.conf
/// otherwise. `Ok` carries the warnings; `Err` every diagnostic when at least one is an error
/// (the daemon cannot run the file).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<(Config, Report), Report> {
    if path.extension().is_some_and(|e| e == "toml") {
        return toml::load(path)
            .map(|c| (c, Report::default()))
            .map_err(|d| Report {
                diagnostics: vec![d],
                sources: Sources::default(),
            });
    }
    let mut cx = registry::Cx::new(&*opts.host, opts.sides);
    let mut sources = Sources::default();
    let pre = opts.preprocess();
    let Some(lines) = preprocess::preprocess_file(path, &pre, &mut cx.diags, &mut sources) else {
        return Err(Report {
            diagnostics: cx.diags.into_vec(),
            sources,
        });
    };
    let config = parse_lines(&lines, &mut cx);
    let failed = cx.diags.has_errors();
    let report = Report {
        diagnostics: cx.diags.into_vec(),
        sources,
    };
    if failed {
        Err(report)
    } else {
        Ok((config, report))
    }
}

fn parse_lines<'a>(lines: &'a [preprocess::Line], cx: &mut registry::Cx<'_, 'a>) -> Config {
    let (tokens, lex_diags) = lexer::lex_lines(lines);
    cx.diags.extend(lex_diags);
    let (nodes, closes) = tree::parse_file(tokens, &mut cx.diags);
    build::build(&nodes, &closes, cx)
}

/// Parse configuration text that has no file behind it (tests, benches); the full preprocessor
/// runs, includes resolve against `name`'s directory.
pub fn load_str(text: &str, name: &Path) -> (Config, Vec<Diagnostic>) {
    load_str_with(text, name, &LoadOptions::default())
}

/// [`load_str`] with options.
pub fn load_str_with(text: &str, name: &Path, opts: &LoadOptions) -> (Config, Vec<Diagnostic>) {
    load_bytes_with(text.as_bytes(), name, opts)
}

/// The bytes of a file not read from the host, as [`load`] would read them (a line that is
/// not UTF-8 included).
pub fn load_bytes_with(bytes: &[u8], name: &Path, opts: &LoadOptions) -> (Config, Vec<Diagnostic>) {
    let (config, report) = load_bytes_report(bytes, name, opts);
    (config, report.diagnostics)
}

/// [`load_bytes_with`], with the text the diagnostics point into (as [`load`] gives it, for
/// [`Report::render`]).
pub fn load_bytes_report(bytes: &[u8], name: &Path, opts: &LoadOptions) -> (Config, Report) {
    let mut cx = registry::Cx::new(&*opts.host, opts.sides);
    let pre = opts.preprocess();
    let mut sources = Sources::default();
    let lines = preprocess::preprocess_bytes(bytes, name, &pre, &mut cx.diags, &mut sources);
    let config = parse_lines(&lines, &mut cx);
    let report = Report {
        diagnostics: cx.diags.into_vec(),
        sources,
    };
    (config, report)
}

/// Render diagnostics with code frames, reading each file once.
pub fn render(diags: &[Diagnostic]) -> String {
    let mut sources = Sources::default();
    for d in diags {
        if d.line > 0 && sources.line(&d.file, 1).is_none() {
            if let Ok(b) = std::fs::read(&d.file) {
                sources.insert(&d.file, String::from_utf8_lossy(&b).into_owned());
            }
        }
    }
    sources.render(diags)
}
