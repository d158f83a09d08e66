//! vrrpd entry point: parse keepalived(8) flags, load the configuration, then test, dump or run.

use std::process::ExitCode;

mod cli;
mod generate;

use cli::{Cli, CliError};
use keepalived_conf::{self as config, Config, LoadOptions};
use vrrpd::process;

/// keepalived's exit codes (keepalived/include/main.h).
const EXIT_OK: u8 = 0;
const EXIT_USAGE: u8 = 1;
const EXIT_FATAL: u8 = process::exit::FATAL;
/// A file the daemon cannot run (keepalived's `KEEPALIVED_EXIT_CONFIG`); also what `-t` exits
/// with when a keyword misses its value (keepalived stops reading there).
const EXIT_CONFIG: u8 = process::exit::CONFIG;
/// `-t`: a file keepalived cannot run (missing file or interface). The `-t` codes come from
/// `keepalived_conf::Flag::exit_code`; these name them for the man page.
const EXIT_CONFIG_TEST_FATAL: u8 = 4;
/// `-t` found something keepalived's `-t` counts.
const EXIT_CONFIG_TEST: u8 = 5;
/// `-t` found a script security violation.
const EXIT_CONFIG_TEST_SECURITY: u8 = 6;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(at) = cli::genhash_at(&args) {
        if at > 1 {
            eprintln!("Warning -- `-T` not used as first option, previous options ignored");
        }
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let prog = words.first().map_or("vrrpd", String::as_str);
        let invocation = if at == 0 {
            prog.to_string()
        } else {
            format!("{prog} --genhash")
        };
        return ExitCode::from(vrrpd::genhash::main(&invocation, &words[at + 1..]));
    }
    // `vrrpd ipvsadm -L -n`, `vrrpd status [--json]`, `vrrpd metrics`: ask the running daemon.
    if let Some(word) = args.get(1).and_then(|a| a.to_str()) {
        if vrrpd::observe::control::is_client_command(word) {
            let words: Vec<String> = args[1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return ExitCode::from(vrrpd::observe::control::client_main(&words));
        }
    }
    let cli = match cli::parse_args(args) {
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
    if let Some(file) = &cli.generate {
        // parse_args has checked the name against generate::ARTIFACTS.
        return match generate::artifact(file, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::from(EXIT_OK),
            Err(e) => {
                eprintln!("vrrpd: cannot generate {file}: {e}");
                ExitCode::from(EXIT_FATAL)
            }
        };
    }
    if let Some(func) = &cli.signum {
        // parse_args has validated the name.
        println!("{}", process::signum(func).unwrap_or(0));
        return ExitCode::from(EXIT_OK);
    }
    if cli.compat_table {
        print!("{}", config::compat::table());
        return ExitCode::from(EXIT_OK);
    }
    if !cli.command.is_empty() {
        return command(&cli);
    }
    let test = cli.config_test_log();
    let parts = cli.subsystems();
    let opts = LoadOptions {
        config_id: cli.config_id.clone(),
        // keepalived's -t reads both sides; its daemon's -P never reads the checker side.
        sides: if test.is_some() {
            config::Sides::default()
        } else {
            config::Sides {
                vrrp: parts.vrrp,
                checker: parts.checker,
            }
        },
        ..LoadOptions::checking()
    };
    // Into the network namespace first (before any thread), so the interface checks and the
    // daemon see that namespace: -s, else the file's net_namespace (the file is then read again
    // inside it).
    let mut loaded = None;
    let namespace = match &cli.namespace {
        Some(ns) => Some(ns.clone()),
        None => {
            let first = config::load(&cli.use_file, &opts);
            let ns = first
                .as_ref()
                .ok()
                .and_then(|(c, _)| c.global.net_namespace.clone());
            if ns.is_none() {
                loaded = Some(first);
            }
            ns
        }
    };
    if let Some(ns) = &namespace {
        if let Err(e) = process::enter_netns(ns) {
            eprintln!("{e}\nUnable to set network namespace {ns} - exiting");
            return ExitCode::from(EXIT_FATAL);
        }
    }
    let loaded = loaded.unwrap_or_else(|| config::load(&cli.use_file, &opts));
    let report = match &loaded {
        Ok((_, r)) | Err(r) => r,
    };
    if let Some(log) = test {
        let text = report.render();
        match log {
            Some(path) => {
                if let Err(e) = std::fs::write(&path, &text) {
                    eprintln!("vrrpd: cannot write {}: {e}", path.display());
                }
            }
            None => eprint!("{text}"),
        }
        // keepalived's -t exit codes: 4 a file it cannot run, 5 anything it complains about,
        // 6 script security, 2 a missing parameter.
        return ExitCode::from(report.exit_code());
    }
    // Warnings about a configuration that loads go to the log once it is set up (with their
    // priority), not to a bare stderr.
    let warnings = report.render();
    let Ok((config, report)) = loaded else {
        eprint!("{warnings}");
        return ExitCode::from(EXIT_CONFIG);
    };
    if config.global.reload_check_config.is_some() && report.exit_code() != 0 {
        // keepalived runs a file with complaints, except when asked to check it first.
        eprintln!("vrrpd: reload_check_config is set and the configuration has errors - exiting");
        return ExitCode::from(EXIT_CONFIG);
    }
    if cli.dump_config {
        eprint!("{warnings}");
        match serde_json::to_string_pretty(&config) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("vrrpd: cannot serialise the configuration: {e}");
                return ExitCode::from(EXIT_FATAL);
            }
        }
        return ExitCode::from(EXIT_OK);
    }
    // The report holds the file's text and line index: the daemon (the supervisor and every
    // child it forks) runs for months without them.
    drop(report);
    run_daemon(cli, config, opts, warnings)
}

/// `vrrpd convert KEEPALIVED_CONF [OUT]`: write the equivalent TOML (stdout without OUT).
fn command(cli: &Cli) -> ExitCode {
    let (Some("convert"), Some(input)) =
        (cli.command.first().map(String::as_str), cli.command.get(1))
    else {
        eprintln!(
            "vrrpd: unknown command {:?} (expected `convert FILE [OUT]`)",
            cli.command
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let opts = LoadOptions {
        config_id: cli.config_id.clone(),
        ..LoadOptions::default()
    };
    let (config, report) = match config::load(std::path::Path::new(input), &opts) {
        Ok(c) => c,
        Err(r) => {
            eprint!("{}", r.render());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    eprint!("{}", report.render());
    let text = match config::toml::to_string(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("vrrpd: cannot write TOML: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match cli.command.get(2) {
        Some(out) => {
            if let Err(e) = std::fs::write(out, text) {
                eprintln!("vrrpd: cannot write {out}: {e}");
                return ExitCode::from(EXIT_FATAL);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::from(EXIT_OK)
}

/// Default pid file of the daemon when `-p` is not given.
const DEFAULT_PID_FILE: &str = "/run/vrrpd.pid";

/// A child that failed inside (an instance panicked, a component gave up): its supervisor
/// releases for it and starts it again (keepalived's `KEEPALIVED_EXIT_PROGRAM_ERROR`).
const EXIT_PROGRAM_ERROR: u8 = process::exit::PROGRAM_ERROR;

/// Daemon mode: fork unless `-n`, take the pid file, then run the daemon in a supervised child
/// ([`vrrpd::supervisor`]) until SIGTERM / SIGINT.
fn run_daemon(cli: Cli, config: Config, opts: LoadOptions, warnings: String) -> ExitCode {
    // Before any thread exists (they edit the environment).
    let systemd = vrrpd::supervisor::systemd::SystemdNotify::from_env();
    let watchdog = vrrpd::supervisor::systemd::watchdog_from_env();
    // First, as keepalived: every file the daemon makes (log, pid files, FIFOs, dumps) and
    // every script it runs gets it. A bad -u is reported and ignored, as keepalived does.
    let umask_cli = cli.umask_value().unwrap_or_else(|e| {
        eprintln!("{e}");
        None
    });
    vrrpd::tuning::os::set_umask(vrrpd::tuning::umask_of(
        umask_cli,
        config.global.process.umask,
    ));
    if !cli.dont_fork {
        if let Err(e) = process::daemonize() {
            eprintln!("vrrpd: cannot fork: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    }
    for problem in vrrpd::log::init(&cli.log_targets()) {
        tracing::warn!("{problem}");
    }
    vrrpd::components::install_panic_hook();
    if fault_inject::enabled() {
        if let Some(dir) = std::env::var_os(fault_inject::ENV) {
            tracing::warn!(
                "fault points armed from {} (a test build: fault-injection)",
                std::path::Path::new(&dir).display()
            );
        }
    }
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for line in vrrpd::log::banner(&args, &cli.use_file) {
        tracing::info!("{line}");
    }
    if !warnings.is_empty() {
        tracing::warn!("{}", warnings.trim_end());
    }
    if let Err(e) = process::reset_signal_mask() {
        tracing::warn!("cannot clear the inherited signal mask: {e}");
    }
    process::ignore_dump_signals();
    let main_pid = cli
        .pid
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_PID_FILE));
    let observe = vrrpd::observe::Settings {
        control: Some(vrrpd::observe::control::socket_path(&main_pid)),
        metrics: cli.metrics,
    };
    // The parent's, as keepalived's -p; the child writes -r.
    let pid_file = match process::PidFile::create(&main_pid) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let sup = vrrpd::supervisor::Options {
        dont_respawn: cli.dont_respawn,
        systemd,
        watchdog,
    };
    let code = vrrpd::supervisor::run(sup, config, |start, first| {
        child_main(&cli, first, &opts, umask_cli, observe.clone(), start)
    });
    drop(pid_file);
    ExitCode::from(code)
}

/// The supervised child: the daemon itself. The first one runs the configuration `main`
/// loaded; a restarted one reads the file again, as keepalived's respawned child does.
fn child_main(
    cli: &Cli,
    first: Option<Config>,
    opts: &LoadOptions,
    umask_cli: Option<u32>,
    observe: vrrpd::observe::Settings,
    start: vrrpd::supervisor::ChildStart,
) -> u8 {
    if let Err(e) = process::reset_signal_mask() {
        tracing::warn!("cannot clear the inherited signal mask: {e}");
    }
    process::ignore_dump_signals();
    let config = match first {
        Some(c) => c,
        None => match config::load(&cli.use_file, opts) {
            Ok((c, diags)) => {
                if !diags.is_empty() {
                    tracing::warn!("{}", config::render(&diags).trim_end());
                }
                c
            }
            Err(diags) => {
                tracing::error!("{}", config::render(&diags).trim_end());
                return EXIT_CONFIG;
            }
        },
    };
    let _vrrp_pid = match cli.vrrp_pid.as_deref().map(process::PidFile::create) {
        Some(Err(e)) => {
            tracing::error!("{e}");
            return EXIT_FATAL;
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("main-blocking")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return EXIT_FATAL;
        }
    };
    // SIGHUP: the same file read again; errors (with their file:line:col frames) are logged
    // and the daemon keeps its running configuration.
    let path = cli.use_file.clone();
    let reload_opts = opts.clone();
    let reload = move || match config::load(&path, &reload_opts) {
        Ok((c, report)) => {
            if !report.is_empty() {
                tracing::warn!("{}", report.render().trim_end());
            }
            if report.unbalanced() {
                return Err(
                    "the new file's braces do not balance; keeping the running configuration"
                        .into(),
                );
            }
            if c.global.reload_check_config.is_some() && report.exit_code() != 0 {
                return Err("reload_check_config: the new configuration has errors; keeping the running one".into());
            }
            Ok(c)
        }
        Err(report) => Err(report.render().trim_end().to_string()),
    };
    // What a run that died left changed on the host (GRO off, a VMAC, a sysctl, an nftables
    // table) goes back first; this run's changes are recorded beside the pid file.
    let main_pid = cli
        .pid
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_PID_FILE));
    rt.block_on(vrrpd::host::recover(&vrrpd::host::state_file(&main_pid)));
    let run = vrrpd::daemon::run(
        config,
        cli.subsystems(),
        umask_cli,
        reload,
        vrrpd::supervisor::systemd::SystemdNotify::via_supervisor(),
        observe,
        start,
    );
    let result = rt.block_on(run);
    // Whatever a component could not put back (or forgot), now.
    rt.block_on(vrrpd::host::restore_all());
    // Work left on the blocking pool (a stalled thread's stop) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!("{e:#}");
            if e.downcast_ref::<vrrpd::components::Failed>().is_some() {
                EXIT_PROGRAM_ERROR
            } else {
                EXIT_FATAL
            }
        }
    }
}
