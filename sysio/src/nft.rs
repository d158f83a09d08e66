//! Loading an nftables rule set: `nft -f -` with the rules on its standard input, in the
//! calling thread's network namespace. Every table the daemon and the balancer install goes
//! through here (blocking: async callers use `spawn_blocking`).

use std::io::Write;
use std::process::{Command, Stdio};

/// Why a rule set was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(#[from] std::io::Error),
    /// nft ran and refused the rules: its message.
    #[error("nft failed: {0}")]
    Failed(String),
}

/// Runs `nft -f -` on `ruleset`.
pub fn apply(ruleset: &str) -> Result<(), NftError> {
    let mut c = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = c.stdin.take() {
        stdin.write_all(ruleset.as_bytes())?;
    }
    let out = c.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
