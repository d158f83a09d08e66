//! Command line: keepalived(8) flags with keepalived's meaning.
//!
//! Every keepalived 2.2 flag is recognised. Each is either honoured, harmless here (accepted
//! and recorded), or refused by [`parse_args`] with a message saying why — never an opaque
//! parser error.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

/// What `--generate` can print, named as the package installs them.
pub(crate) const ARTIFACTS: &[&str] = &[
    "vrrpd.8",
    "vrrpd.conf.5",
    "genhash.1",
    "vrrpd.bash",
    "vrrpd.zsh",
    "vrrpd.fish",
];

/// Default configuration file, as keepalived.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// keepalived's log file for `-g` without a name.
pub(crate) const DEFAULT_LOG_FILE: &str = "/tmp/keepalived.log";

/// The name that makes the binary genhash (a link to it, as keepalived installs one).
pub(crate) const GENHASH: &str = "genhash";

#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "vrrpd",
    about = "keepalived-compatible VRRP daemon",
    disable_help_flag = true,
    disable_version_flag = true
)]
pub(crate) struct Cli {
    /// Use the specified configuration file.
    #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub use_file: PathBuf,
    /// Only run the VRRP subsystem (no health checks, no balancer).
    #[arg(short = 'P', long = "vrrp")]
    pub vrrp: bool,
    /// Only run the health checker subsystem (health checks and the balancer, no VRRP).
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Don't run the BFD subsystem (harmless: vrrpd has none).
    #[arg(short = 'B', long = "no_bfd")]
    pub no_bfd: bool,
    /// Force all child processes to run (harmless: vrrpd is one process).
    #[arg(long = "all")]
    pub all: bool,
    /// Log messages to the console.
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,
    /// Detailed log messages.
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// Syslog facility: 0-7, local0-7, user or daemon.
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    pub log_facility: Option<String>,
    /// Don't log via syslog.
    #[arg(short = 'G', long = "no-syslog")]
    pub no_syslog: bool,
    /// Log to this file (optional value; keepalived's default is /tmp/keepalived.log).
    #[arg(short = 'g', long = "log-file", value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_LOG_FILE)]
    pub log_file: Option<PathBuf>,
    /// Flush the log file after each write.
    #[arg(long = "flush-log-file")]
    pub flush_log_file: bool,
    /// umask for created files, numeric (wins over the `umask` keyword).
    #[arg(short = 'u', long = "umask", value_name = "MASK")]
    pub umask: Option<String>,
    /// Drop VIPs on transition from signal.
    #[arg(short = 'X', long = "release-vips")]
    pub release_vips: bool,
    /// Don't remove VIPs on daemon stop.
    #[arg(short = 'V', long = "dont-release-vrrp")]
    pub dont_release_vrrp: bool,
    /// Don't remove IPVS topology on stop (harmless: no IPVS).
    #[arg(short = 'I', long = "dont-release-ipvs")]
    pub dont_release_ipvs: bool,
    /// Don't respawn child processes (harmless: no children).
    #[arg(short = 'R', long = "dont-respawn")]
    pub dont_respawn: bool,
    /// Don't fork the daemon process.
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Dump the configuration data (as keepalived: logged at start).
    #[arg(short = 'd', long = "dump-conf")]
    pub dump_conf: bool,
    /// Pidfile of the parent process.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid: Option<PathBuf>,
    /// Pidfile of the VRRP process.
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    pub vrrp_pid: Option<PathBuf>,
    /// genhash utility mode: print the MD5 of a page for HTTP_GET/SSL_GET `digest` (must be
    /// the first option; `-T -h` lists its own options).
    #[arg(short = 'T', long = "genhash")]
    pub genhash: bool,
    /// Pidfile of the checker process (harmless: never written).
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE")]
    pub checkers_pid: Option<PathBuf>,
    /// Report all address changes seen on netlink.
    #[arg(short = 'a', long = "address-monitoring")]
    pub address_monitoring: bool,
    /// Pidfile of the BFD process (harmless: vrrpd has no BFD process).
    #[arg(short = 'b', long = "bfd_pid", value_name = "FILE")]
    pub bfd_pid: Option<PathBuf>,
    /// Enable SNMP (refused).
    #[arg(short = 'x', long = "snmp")]
    pub snmp: bool,
    /// SNMP master agent socket (refused).
    #[arg(short = 'A', long = "snmp-agent-socket", value_name = "FILE")]
    pub snmp_agent_socket: Option<String>,
    /// Run in network namespace NAME (overrides `net_namespace`).
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    pub namespace: Option<String>,
    /// Produce a core dump on abnormal termination.
    #[arg(short = 'm', long = "core-dump")]
    pub core_dump: bool,
    /// Also set /proc/sys/kernel/core_pattern (default 'core').
    #[arg(short = 'M', long = "core-dump-pattern", value_name = "PATN", num_args = 0..=1, require_equals = true, default_missing_value = "core")]
    pub core_dump_pattern: Option<String>,
    /// Error if any configuration file is missing.
    #[arg(short = 'e', long = "all-config")]
    pub all_config: bool,
    /// Configuration id for `@ID` lines (defaults to the node name).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,
    /// Print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON and exit.
    #[arg(long = "signum", value_name = "SIGFUNC")]
    pub signum: Option<String>,
    /// Check the configuration and exit (optional log file, stderr by default).
    #[arg(short = 't', long = "config-test", value_name = "LOG_FILE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub config_test: Option<String>,
    /// Disable the memory checker (harmless).
    #[arg(long = "no-mem-check")]
    pub no_mem_check: bool,
    /// Display the version number.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Display this help message.
    #[arg(short = 'h', long = "help")]
    pub help: bool,
    /// vrrpd: print the resolved configuration model as JSON and exit.
    #[arg(long = "dump-config")]
    pub dump_config: bool,
    /// vrrpd: serve Prometheus metrics on ADDRESS:PORT (`[IPv6]:PORT`); off by default.
    #[arg(long = "metrics", value_name = "ADDRESS:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// vrrpd: print docs/COMPATIBILITY.md (generated from the keyword registry) and exit.
    #[arg(long = "compat-table")]
    pub compat_table: bool,
    /// Packaging: print a generated file (man page or shell completion) and exit.
    #[arg(long = "generate", value_name = "FILE", hide = true, value_parser = clap::builder::PossibleValuesParser::new(ARTIFACTS))]
    pub generate: Option<String>,
    /// vrrpd: `convert KEEPALIVED_CONF [OUT.toml]` writes the equivalent native TOML.
    #[arg(value_name = "COMMAND", num_args = 0..)]
    pub command: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CliError {
    /// A keepalived option that vrrpd deliberately does not implement.
    #[error("option {flag} is not supported by vrrpd: {reason}")]
    Refused {
        flag: &'static str,
        reason: &'static str,
    },
    /// An option value keepalived would also reject.
    #[error("invalid value for {flag}: {message}")]
    Invalid { flag: &'static str, message: String },
    /// Not a keepalived option at all (or malformed); the parser's own explanation.
    #[error("{0}")]
    Usage(String),
}

impl Cli {
    /// The help text (keepalived prints it for -h and exits 0).
    pub(crate) fn help_text() -> String {
        <Cli as clap::CommandFactory>::command()
            .render_help()
            .to_string()
    }

    /// Where the daemon logs (`-l`, `-G`, `-S`, `-g`, `-D`).
    pub(crate) fn log_targets(&self) -> vrrpd::log::LogTargets {
        let facility = self
            .log_facility
            .as_deref()
            .and_then(vrrpd::log::facility)
            .unwrap_or(vrrpd::log::FACILITY_DAEMON);
        vrrpd::log::LogTargets {
            console: self.log_console,
            syslog: (!self.no_syslog).then_some(facility),
            file: self.log_file.clone(),
            detail: self.log_detail,
        }
    }

    /// `-u MASK` read as keepalived reads it (C's `strtol` base 0: `0x` hex, leading `0`
    /// octal, else decimal; at most 0777). `Err` with keepalived's complaint for a bad value,
    /// which keepalived then ignores (it goes on with the `umask` keyword or its default).
    pub(crate) fn umask_value(&self) -> Result<Option<u32>, String> {
        let Some(m) = &self.umask else {
            return Ok(None);
        };
        match keepalived_conf::process::c_number(m) {
            Some(v) if v <= 0o777 => Ok(Some(v as u32)),
            _ => Err(format!("Invalid --umask option {m}")),
        }
    }

    /// `--config-test` with its optional log file.
    pub(crate) fn config_test_log(&self) -> Option<Option<PathBuf>> {
        self.config_test
            .as_ref()
            .map(|s| (!s.is_empty()).then(|| PathBuf::from(s)))
    }
}

impl Cli {
    /// What runs: `-P` alone is VRRP only, `-C` alone the checker (and balancer) only, both
    /// or neither everything, as keepalived.
    pub(crate) fn subsystems(&self) -> vrrpd::daemon::Subsystems {
        vrrpd::daemon::Subsystems {
            vrrp: self.vrrp || !self.check,
            checker: self.check || !self.vrrp,
        }
    }
}

/// Where `-T`/`--genhash` is in `args` (0 is the program name), read as keepalived's getopt
/// reads the daemon's options: everything after it belongs to genhash, and options before it
/// are ignored (with a warning) unless it comes first. Values of the options before it are
/// skipped, so `-f -T` names a file; `--` ends the search. Run as `genhash` (keepalived's
/// packages make it a link to the daemon, as vrrpd's does), every argument is genhash's: 0.
pub(crate) fn genhash_at<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Option<usize> {
    let name = args
        .first()
        .map(|a| std::path::Path::new(a.as_ref()).file_name());
    if name == Some(Some(std::ffi::OsStr::new(GENHASH))) {
        return Some(0);
    }
    let cmd = <Cli as clap::CommandFactory>::command();
    let arg_of = |short: Option<char>, long: Option<&str>| {
        cmd.get_arguments()
            .find(|a| {
                (short.is_some() && a.get_short() == short)
                    || (long.is_some() && a.get_long() == long)
            })
            .filter(|a| a.get_action().takes_values())
    };
    let mut i = 1;
    while i < args.len() {
        let word = args[i].as_ref().to_string_lossy();
        if word == "--" {
            return None;
        }
        if let Some(long) = word.strip_prefix("--") {
            if long == "genhash" {
                return Some(i);
            }
            // `--name VALUE` (not `--name=VALUE`, nor optional values, which need the `=`).
            if !long.contains('=')
                && arg_of(None, Some(long)).is_some_and(|a| !a.is_require_equals_set())
            {
                i += 1;
            }
        } else if let Some(shorts) = word.strip_prefix('-') {
            for (at, letter) in shorts.char_indices() {
                if letter == 'T' {
                    return Some(i);
                }
                if let Some(a) = arg_of(Some(letter), None) {
                    // The rest of the word is the value, else the next argument is.
                    let rest = &shorts[at + letter.len_utf8()..];
                    if rest.is_empty() && !a.is_require_equals_set() {
                        i += 1;
                    }
                    break;
                }
            }
        }
        i += 1;
    }
    None
}

/// Parse arguments (the first is the program name) and refuse what vrrpd cannot honour.
pub(crate) fn parse_args<I, T>(args: I) -> Result<Cli, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|e| CliError::Usage(e.to_string()))?;
    let refuse = |flag, reason| Err(CliError::Refused { flag, reason });
    if cli.snmp || cli.snmp_agent_socket.is_some() {
        return refuse("-x/--snmp", "vrrpd has no SNMP support");
    }
    if let Some(f) = &cli.log_facility {
        if vrrpd::log::facility(f).is_none() {
            return Err(CliError::Invalid {
                flag: "-S/--log-facility",
                message: format!("`{f}` (expected 0-7, local0-7, user or daemon)"),
            });
        }
    }
    if let Some(s) = &cli.signum {
        if vrrpd::process::signum(s).is_none() {
            return Err(CliError::Invalid {
                flag: "--signum",
                message: format!("`{s}` (expected STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON)"),
            });
        }
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, CliError> {
        parse_args(std::iter::once("vrrpd").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let c = p(&[]).unwrap();
        assert_eq!(c.use_file, PathBuf::from("/etc/keepalived/keepalived.conf"));
        assert!(c.config_test.is_none() && !c.dont_fork && !c.dump_config);
    }

    #[test]
    fn every_accepted_keepalived_flag() {
        let c = p(&[
            "-f",
            "/x.conf",
            "-P",
            "-B",
            "--all",
            "-l",
            "-D",
            "-S",
            "local3",
            "-G",
            "-u",
            "022",
            "-X",
            "-V",
            "-I",
            "-R",
            "-n",
            "-d",
            "-p",
            "/run/a.pid",
            "-r",
            "/run/v.pid",
            "-c",
            "/run/c.pid",
            "-a",
            "-b",
            "/run/b.pid",
            "-m",
            "-M=core.%p",
            "-e",
            "-i",
            "node1",
            "-t",
            "--no-mem-check",
            "-g=/tmp/k.log",
            "--flush-log-file",
            "--dump-config",
        ])
        .unwrap();
        assert_eq!(c.use_file, PathBuf::from("/x.conf"));
        assert!(c.vrrp && c.no_bfd && c.all && c.log_console && c.log_detail && c.no_syslog);
        assert_eq!(c.log_facility.as_deref(), Some("local3"));
        assert_eq!(c.umask.as_deref(), Some("022"));
        assert!(c.release_vips && c.dont_release_vrrp && c.dont_release_ipvs && c.dont_respawn);
        assert!(c.dont_fork && c.dump_conf && c.address_monitoring && c.core_dump && c.all_config);
        assert_eq!(c.pid, Some(PathBuf::from("/run/a.pid")));
        assert_eq!(c.vrrp_pid, Some(PathBuf::from("/run/v.pid")));
        assert_eq!(c.checkers_pid, Some(PathBuf::from("/run/c.pid")));
        assert_eq!(c.bfd_pid, Some(PathBuf::from("/run/b.pid")));
        assert_eq!(c.core_dump_pattern.as_deref(), Some("core.%p"));
        assert_eq!(c.config_id.as_deref(), Some("node1"));
        assert_eq!(c.config_test_log(), Some(None));
        assert!(c.no_mem_check && c.flush_log_file && c.dump_config);
        assert_eq!(c.log_file, Some(PathBuf::from("/tmp/k.log")));

        let c = p(&[
            "--use-file=/y",
            "--vrrp",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--dont-fork",
            "--dump-conf",
            "--pid=/a",
            "--vrrp_pid=/b",
            "--checkers_pid=/c",
            "--config-id=x",
            "--config-test=/tmp/t.log",
            "--log-facility=daemon",
            "--address-monitoring",
            "--dont-respawn",
            "--core-dump",
            "--core-dump-pattern",
            "--all-config",
            "--log-file",
            "--signum=RELOAD",
        ])
        .unwrap();
        assert_eq!(c.use_file, PathBuf::from("/y"));
        assert_eq!(c.config_test_log(), Some(Some(PathBuf::from("/tmp/t.log"))));
        assert_eq!(c.core_dump_pattern.as_deref(), Some("core"));
        assert_eq!(c.log_file, Some(PathBuf::from("/tmp/keepalived.log")));
        assert_eq!(c.signum.as_deref(), Some("RELOAD"));
        assert!(p(&["-v"]).unwrap().version && p(&["--version"]).unwrap().version);
        assert!(p(&["-h"]).unwrap().help && p(&["--help"]).unwrap().help);
        let both = p(&["-C", "-P"]).unwrap().subsystems();
        assert!(
            both.vrrp && both.checker,
            "-C with -P runs both, as keepalived"
        );
        let none = p(&[]).unwrap().subsystems();
        assert!(none.vrrp && none.checker);
        let vrrp = p(&["-P"]).unwrap().subsystems();
        assert!(vrrp.vrrp && !vrrp.checker, "-P: VRRP only");
        let check = p(&["--check"]).unwrap().subsystems();
        assert!(
            !check.vrrp && check.checker,
            "-C: checker and balancer only"
        );
    }

    #[test]
    fn refused_flags_say_why() {
        for (args, flag) in [
            (&["-x"][..], "-x/--snmp"),
            (&["--snmp"][..], "-x/--snmp"),
            (&["-A", "/s"][..], "-x/--snmp"),
        ] {
            match p(args) {
                Err(CliError::Refused { flag: f, reason }) => {
                    assert_eq!(f, flag);
                    assert!(!reason.is_empty());
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert_eq!(p(&["-s", "ns1"]).unwrap().namespace.as_deref(), Some("ns1"));
        assert_eq!(
            p(&["--namespace=ns1"]).unwrap().namespace.as_deref(),
            Some("ns1")
        );
        assert!(matches!(
            p(&["-S", "9"]),
            Err(CliError::Invalid {
                flag: "-S/--log-facility",
                ..
            })
        ));
        // keepalived reports a bad -u and goes on without it; so does vrrpd. Its value is read
        // as C's strtol reads it: `22` is decimal.
        let bad = p(&["-u", "9x"]).unwrap();
        assert_eq!(
            bad.umask_value(),
            Err("Invalid --umask option 9x".to_string())
        );
        assert_eq!(p(&["-u", "22"]).unwrap().umask_value(), Ok(Some(22)));
        assert_eq!(p(&["-u", "022"]).unwrap().umask_value(), Ok(Some(0o22)));
        assert_eq!(p(&["-u", "0x1ff"]).unwrap().umask_value(), Ok(Some(0o777)));
        assert!(p(&["-u", "01000"]).unwrap().umask_value().is_err());
        assert!(matches!(
            p(&["--signum=FOO"]),
            Err(CliError::Invalid { .. })
        ));
        assert!(matches!(p(&["--bogus"]), Err(CliError::Usage(_))));
    }

    /// `-T` switches to genhash wherever keepalived's getopt would meet it: values of the
    /// options before it are skipped, `--` ends the search.
    #[test]
    fn genhash_is_found_as_keepalived_finds_it() {
        let at = |args: &[&str]| {
            genhash_at(
                &std::iter::once("vrrpd")
                    .chain(args.iter().copied())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(at(&["-T", "-s", "192.0.2.1"]), Some(1));
        assert_eq!(at(&["--genhash", "-h"]), Some(1));
        assert_eq!(at(&["-l", "-T", "-s", "192.0.2.1"]), Some(2));
        assert_eq!(at(&["-lT"]), Some(1), "bundled after a flag");
        assert_eq!(at(&["-f", "-T"]), None, "-T is the value of -f");
        assert_eq!(at(&["-fT"]), None, "-T is the value of -f");
        assert_eq!(at(&["--use-file", "-T"]), None);
        assert_eq!(at(&["--use-file=/x", "-T"]), Some(2));
        assert_eq!(at(&["-t", "-T"]), Some(2), "-t takes its value only with =");
        assert_eq!(at(&["-g", "-T"]), Some(2));
        assert_eq!(at(&["-S", "local0", "-p", "/p", "--genhash"]), Some(5));
        assert_eq!(at(&["--", "-T"]), None);
        assert_eq!(at(&["-n", "-l"]), None);
        assert!(p(&["-n"]).is_ok_and(|c| !c.genhash));
        for prog in ["genhash", "/usr/bin/genhash"] {
            assert_eq!(genhash_at(&[prog, "-s", "192.0.2.1"]), Some(0), "{prog}");
        }
        assert_eq!(genhash_at(&["/usr/sbin/vrrpd", "-s", "x"]), None);
    }

    #[test]
    fn signum_matches_keepalived() {
        assert_eq!(vrrpd::process::signum("STOP"), Some(15));
        assert_eq!(vrrpd::process::signum("RELOAD"), Some(1));
        assert_eq!(vrrpd::process::signum("DATA"), Some(10));
        assert_eq!(vrrpd::process::signum("STATS"), Some(12));
        assert_eq!(vrrpd::process::signum("JSON"), Some(36));
        assert_eq!(vrrpd::process::signum("STATS_CLEAR"), Some(63));
    }
}
