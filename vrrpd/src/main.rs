//! vrrpd entry point: parse keepalived(8) flags, load the configuration, then test, dump or run.

use std::process::ExitCode;

use vrrpd::cli::{self, Cli, CliError};
use vrrpd::config::{self, Config, Diagnostic, LoadOptions};

/// keepalived's exit codes (keepalived/include/main.h).
const EXIT_OK: u8 = 0;
const EXIT_USAGE: u8 = 1;
const EXIT_FATAL: u8 = 3;
/// Configuration errors stop the daemon from starting.
const EXIT_CONFIG: u8 = 4;
/// `-t` found something to report.
const EXIT_CONFIG_TEST: u8 = 5;

fn main() -> ExitCode {
    let cli = match cli::parse_args(std::env::args_os()) {
        Ok(c) => c,
        Err(CliError::Usage(msg)) => {
            eprint!("{msg}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("vrrpd: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if cli.help {
        print!("{}", Cli::help_text());
        return ExitCode::from(EXIT_OK);
    }
    if cli.version {
        eprintln!(
            "vrrpd v{} (keepalived 2.2 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::from(EXIT_OK);
    }
    if let Some(func) = &cli.signum {
        // parse_args has validated the name.
        println!("{}", cli::signum(func).unwrap_or(0));
        return ExitCode::from(EXIT_OK);
    }
    let opts = LoadOptions {
        config_id: cli.config_id.clone(),
    };
    let loaded = config::load(&cli.use_file, &opts);
    let diags: &[Diagnostic] = match &loaded {
        Ok((_, d)) | Err(d) => d,
    };
    if let Some(log) = cli.config_test_log() {
        let text = config::render(diags);
        match log {
            Some(path) => {
                if let Err(e) = std::fs::write(&path, &text) {
                    eprintln!("vrrpd: cannot write {}: {e}", path.display());
                }
            }
            None => eprint!("{text}"),
        }
        // As keepalived: anything it would complain about makes -t fail.
        let flagged = diags.iter().any(|d| d.is_error() || d.keepalived_flags);
        return ExitCode::from(if flagged { EXIT_CONFIG_TEST } else { EXIT_OK });
    }
    eprint!("{}", config::render(diags));
    let Ok((config, _)) = loaded else {
        return ExitCode::from(EXIT_CONFIG);
    };
    if cli.dump_config {
        match serde_json::to_string_pretty(&config) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("vrrpd: cannot serialise the configuration: {e}");
                return ExitCode::from(EXIT_FATAL);
            }
        }
        return ExitCode::from(EXIT_OK);
    }
    run_daemon(cli, config)
}

/// DAEMON CALL SITE: hands over to `vrrpd::daemon::run`.
fn run_daemon(cli: Cli, config: Config) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vrrpd: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match rt.block_on(vrrpd::daemon::run(cli, config)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("vrrpd: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}
