//! The daemon: instance actors that drive the state machines.

use crate::cli::Cli;
use crate::config::Config;

/// Run the daemon until told to stop. PLACEHOLDER: replaced by the daemon implementation.
pub async fn run(_cli: Cli, _config: Config) -> anyhow::Result<()> {
    eprintln!("daemon not wired yet");
    Ok(())
}
