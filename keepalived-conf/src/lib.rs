//! Configuration: keepalived.conf (lexer → keyword tree → typed model) and the model itself.
//!
//! keepalived syntax stays in this module; the rest of the daemon sees only [`model`].

pub mod blocks;
pub mod compat;
pub mod diag;
pub mod iproute;
pub mod keepalived;
pub mod keywords;
pub mod lexer;
pub mod model;
pub mod preprocess;
pub mod process;
pub mod schema;
pub mod toml;
pub mod tree;

use std::path::Path;

pub use diag::{Diagnostic, Severity};
pub use keepalived::HostChecks;
pub use model::Config;

/// Options that change how a file is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-i/--config-id` for `@ID` lines; `None` means the short host name.
    pub config_id: Option<String>,
    /// Check the host too (interfaces exist, script security), as keepalived does.
    pub host: HostChecks,
}

impl LoadOptions {
    fn preprocess(&self) -> preprocess::Options {
        preprocess::Options {
            config_id: self
                .config_id
                .clone()
                .unwrap_or_else(preprocess::Options::default_config_id),
        }
    }
}

/// Read and resolve a configuration: native TOML when the name ends in `.toml`, keepalived.conf
/// otherwise. `Ok` carries the warnings; `Err` every diagnostic when at least one is an error.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    if path.extension().is_some_and(|e| e == "toml") {
        return toml::load(path)
            .map(|c| (c, Vec::new()))
            .map_err(|d| vec![d]);
    }
    let mut diags = diag::Diags::default();
    let mut sources = preprocess::Sources::new();
    let Some(lines) =
        preprocess::preprocess_file(path, &opts.preprocess(), &mut diags, &mut sources)
    else {
        return Err(diags.0);
    };
    let (tokens, lex_diags) = lexer::lex_lines(&lines);
    diags.0.extend(lex_diags);
    let nodes = tree::parse(&tokens, &mut diags);
    let config = keepalived::build_with(&nodes, opts.host, &mut diags);
    if diags.has_errors() {
        Err(diags.0)
    } else {
        Ok((config, diags.0))
    }
}

/// Parse configuration text that has no file behind it (tests, fuzzing, benches); the full
/// preprocessor runs, includes resolve against `name`'s directory.
pub fn load_str(text: &str, name: &Path) -> (Config, Vec<Diagnostic>) {
    load_str_with(text, name, &LoadOptions::default())
}

/// [`load_str`] with options.
pub fn load_str_with(text: &str, name: &Path, opts: &LoadOptions) -> (Config, Vec<Diagnostic>) {
    let mut diags = diag::Diags::default();
    let lines = preprocess::preprocess_str(text, name, &opts.preprocess(), &mut diags);
    let (tokens, lex_diags) = lexer::lex_lines(&lines);
    diags.0.extend(lex_diags);
    let nodes = tree::parse(&tokens, &mut diags);
    let config = keepalived::build_with(&nodes, opts.host, &mut diags);
    (config, diags.0)
}

/// Render diagnostics with code frames, reading each file again for its source line.
pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render(std::fs::read_to_string(&d.file).ok().as_deref()))
        .collect()
}
