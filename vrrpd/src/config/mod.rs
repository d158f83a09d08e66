//! Configuration: keepalived.conf (lexer → keyword tree → typed model) and the model itself.
//!
//! keepalived syntax stays in this module; the rest of the daemon sees only [`model`].

pub mod diag;
pub mod keepalived;
pub mod keywords;
pub mod lexer;
pub mod model;
pub mod tree;

use std::path::Path;

pub use diag::{Diagnostic, Severity};
pub use model::Config;

/// Options that change how a file is read (grows with `@config-id` conditionals, `-e`, …).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-i/--config-id`: for keepalived's `@ID` line prefixes (not interpreted yet).
    pub config_id: Option<String>,
}

/// Read and resolve a keepalived.conf. `Ok` carries the warnings; `Err` every diagnostic
/// when at least one is an error.
pub fn load(
    path: &Path,
    _opts: &LoadOptions,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut diags = diag::Diags::default();
    let mut sources = tree::Sources::new();
    let Some(tokens) = tree::read_tokens(path, &mut diags, &mut sources) else {
        return Err(diags.0);
    };
    let nodes = tree::parse(&tokens, &mut diags);
    let config = keepalived::build(&nodes, &mut diags);
    if diags.has_errors() {
        Err(diags.0)
    } else {
        Ok((config, diags.0))
    }
}

/// Parse configuration text that has no file behind it (tests, fuzzing). Includes resolve
/// relative to the current directory.
pub fn load_str(text: &str, name: &Path) -> (Config, Vec<Diagnostic>) {
    let mut diags = diag::Diags::default();
    let file: std::sync::Arc<Path> = std::sync::Arc::from(name);
    let (tokens, lex_diags) = lexer::lex(text, &file);
    diags.0.extend(lex_diags);
    let nodes = tree::parse(&tokens, &mut diags);
    let config = keepalived::build(&nodes, &mut diags);
    (config, diags.0)
}

/// Render diagnostics with code frames, reading each file again for its source line.
pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render(std::fs::read_to_string(&d.file).ok().as_deref()))
        .collect()
}
