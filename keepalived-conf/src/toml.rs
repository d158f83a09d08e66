//! Native TOML configuration: the same [`Config`] model, (de)serialised with serde.

use std::path::Path;

use super::diag::{Diagnostic, Pos};
use super::model::Config;

/// Read a TOML configuration. Errors carry the line and column of the problem.
pub fn load(path: &Path) -> Result<Config, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::file_error(path, format!("cannot read configuration file: {e}"))
    })?;
    from_str(&text, path)
}

/// Parse TOML text (`name` is used in diagnostics only).
pub fn from_str(text: &str, name: &Path) -> Result<Config, Diagnostic> {
    ::toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        let file: std::sync::Arc<Path> = std::sync::Arc::from(name);
        Diagnostic::error(&Pos::new(&file, line, col), e.message().to_string())
    })
}

/// Write the model as TOML.
pub fn to_string(config: &Config) -> Result<String, String> {
    ::toml::to_string_pretty(config).map_err(|e| e.to_string())
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}
