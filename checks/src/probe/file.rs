//! FILE_CHECK: the tracked file holds an integer that sets the weight or the status.

use std::path::PathBuf;

use crate::health::Outcome;
use crate::spec::FileCheck;

/// The verdict for a file value (`None`: missing or unparsable, read as 0 like keepalived).
///
/// `weight 0`: 0 is up, anything else down. Otherwise the weight becomes
/// `configured + value × weight` (negated with `reverse`), clamped to 0..=253, and a product of
/// -254 or below means down.
pub fn verdict(value: Option<i64>, spec_weight: i32, reverse: bool, configured: u32) -> Outcome {
    let v = value.unwrap_or(0);
    if spec_weight == 0 {
        return if v == 0 {
            Outcome::up("file value 0")
        } else {
            Outcome::down(format!("file value {v}"))
        };
    }
    let mut delta = v.saturating_mul(i64::from(spec_weight));
    if reverse {
        delta = -delta;
    }
    if delta <= -254 {
        return Outcome::down(format!("file value {v}: weight {delta}"));
    }
    let w = (i64::from(configured) + delta).clamp(0, 253) as u32;
    Outcome::up(format!("file value {v}")).with_weight(Some(w))
}

/// Parse the file's content: the first whitespace-separated token as an integer.
pub fn parse(content: &str) -> Option<i64> {
    content.split_whitespace().next()?.parse().ok()
}

/// A prepared FILE_CHECK.
pub struct FileProbe {
    path: PathBuf,
    weight: i32,
    reverse: bool,
    configured: u32,
}

impl FileProbe {
    /// Prepare.
    pub fn new(spec: &FileCheck, configured: u32) -> Self {
        Self {
            path: spec.file.clone(),
            weight: spec.weight,
            reverse: spec.reverse,
            configured,
        }
    }

    /// Read the file and judge it.
    pub async fn run(&self) -> Outcome {
        let value = tokio::fs::read_to_string(&self.path)
            .await
            .ok()
            .and_then(|c| parse(&c));
        verdict(value, self.weight, self.reverse, self.configured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mode_and_weight_mode() {
        assert!(verdict(Some(0), 0, false, 1).ok);
        assert!(!verdict(Some(3), 0, false, 1).ok);
        assert!(verdict(None, 0, false, 1).ok, "missing file reads as 0");
        assert_eq!(verdict(Some(5), 2, false, 1).weight, Some(11));
        assert_eq!(verdict(Some(5), 2, true, 20).weight, Some(10));
        assert!(!verdict(Some(-127), 2, false, 1).ok, "-254 is down");
        assert_eq!(parse(" 42\n"), Some(42));
        assert_eq!(parse("x"), None);
    }
}
