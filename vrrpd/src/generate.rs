//! Files the package installs that are generated from the code, so they cannot go stale: the
//! man pages (flags from the clap definition, signals and exit codes from the constants the
//! daemon uses, the compatibility table from the keyword registry) and shell completions.
//! `vrrpd --generate FILE` prints one; the package build writes them all (debian/rules).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, ARTIFACTS, DEFAULT_CONFIG, DEFAULT_LOG_FILE, GENHASH};
use vrrpd::observe::status::{DATA_FILE, JSON_FILE, STATS_FILE, VRRPD_JSON_FILE};

/// Where the package puts the unit's option file (read by the unit as `DAEMON_ARGS`).
const DEFAULT_ARGS_FILE: &str = "/etc/default/vrrpd";
/// Where the package puts the example configurations.
const EXAMPLES_DIR: &str = "/usr/share/doc/vrrpd/examples";

/// Print one artifact of [`ARTIFACTS`] (what `--generate` accepts).
pub(crate) fn artifact(name: &str, out: &mut dyn Write) -> io::Result<()> {
    fn shell(s: Shell, out: &mut dyn Write) -> io::Result<()> {
        clap_complete::generate(s, &mut Cli::command(), "vrrpd", out);
        Ok(())
    }
    match name {
        "vrrpd.8" => out.write_all(vrrpd_8()?.as_bytes()),
        "vrrpd.conf.5" => out.write_all(vrrpd_conf_5().as_bytes()),
        "genhash.1" => out.write_all(genhash_1().as_bytes()),
        "vrrpd.bash" => shell(Shell::Bash, out),
        "vrrpd.zsh" => shell(Shell::Zsh, out),
        "vrrpd.fish" => shell(Shell::Fish, out),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unknown artifact {other:?} (one of {})",
                ARTIFACTS.join(", ")
            ),
        )),
    }
}

fn version() -> String {
    format!("vrrpd {}", env!("CARGO_PKG_VERSION"))
}

/// `.TH` line; no date, so that two builds of one version give the same page.
fn title(name: &str, section: &str, manual: &str) -> String {
    format!(
        ".TH {} {section} \"\" \"{}\" \"{manual}\"\n",
        name.to_uppercase(),
        version()
    )
}

/// Escape text for roff and turn the markdown the project writes (`code`, **bold**) into
/// bold: roff has no other emphasis that reads in a terminal.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut bold = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                out.push_str(if bold { "\\fR" } else { "\\fB" });
                bold = !bold;
            }
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(if bold { "\\fR" } else { "\\fB" });
                bold = !bold;
            }
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    if bold {
        out.push_str("\\fR");
    }
    // A line starting with a control character would be read as a request.
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// A paragraph of running text (lines may be re-filled by the formatter).
fn para(s: &str) -> String {
    format!(".PP\n{}\n", text(s))
}

/// A tagged paragraph: `tag` in bold, then its description.
fn item(tag: &str, body: &str) -> String {
    format!(".TP\n\\fB{}\\fR\n{}\n", text(tag), text(body))
}

/// Text kept as written (examples, usage screens).
fn verbatim(s: &str) -> String {
    let mut out = String::from(".PP\n.nf\n.RS 4\n");
    for line in s.lines() {
        out.push_str(&text(line));
        out.push('\n');
    }
    out.push_str(".RE\n.fi\n");
    out
}

fn section(name: &str) -> String {
    format!(".SH {name}\n")
}

/// Where a dump file goes by default (`$TMPDIR` moves it).
fn dump(name: &str) -> String {
    format!("/tmp/{name}")
}

/// A signal's name as kill(1) takes it (`SIGRTMIN+2` for real-time ones).
fn signal_name(n: i32) -> String {
    let rtmin = libc::SIGRTMIN();
    if n >= rtmin {
        return format!("SIGRTMIN+{}", n - rtmin);
    }
    nix::sys::signal::Signal::try_from(n).map_or_else(|_| n.to_string(), |s| s.as_str().into())
}

/// The signals the daemon acts on: keepalived's `--signum` name (None for SIGINT, which has
/// none) and what it does. The numbers come from the daemon's own table.
const SIGNALS: &[(&str, &str)] = &[
    (
        "STOP",
        "Stop gracefully: each Master sends a priority-0 advert and removes its addresses, \
         notify scripts run, the balancer and firewall rules go; exit 0. SIGINT does the same.",
    ),
    (
        "RELOAD",
        "Re-read the configuration file. Instances the new file keeps go on in their state (no \
         failover); a file with errors is logged with its file:line:col and the running \
         configuration goes on.",
    ),
    (
        "DATA",
        "Write the state of every instance, tracker, checker and virtual server to the data file.",
    ),
    (
        "STATS",
        "Write the counters (adverts, drops by reason, transitions) to the stats file.",
    ),
    ("JSON", "Write the state as JSON to the JSON file."),
    (
        "STATS_CLEAR",
        "Write the stats file as STATS does, then set every instance's counters back to zero \
         (keepalived 2.2.7's behaviour); the dumps and the control socket count from there.",
    ),
];

/// Exit codes, from the constants `main` returns (keepalived's values).
fn exit_codes() -> [(u8, &'static str); 8] {
    [
        (
            crate::EXIT_OK,
            "Success; also a daemon stopped by SIGTERM or SIGINT, and every genhash fetch \
             outcome (a 404 page or a failed connection included), as keepalived.",
        ),
        (
            crate::EXIT_USAGE,
            "A bad command line (unknown or refused option, invalid value), also in genhash \
             mode.",
        ),
        (
            crate::EXIT_FATAL,
            "A fatal error while starting or running: cannot fork, enter the network namespace, \
             write a pid file, open netlink or raw sockets.",
        ),
        (
            crate::EXIT_CONFIG,
            "The daemon cannot run the configuration (keepalived's would not either: a missing \
             interface, an instance without a VRID, a keyword without its value); each error is \
             printed with its file:line:col. With -t: a keyword misses its value.",
        ),
        (
            crate::EXIT_CONFIG_TEST_FATAL,
            "With -t: the file or an interface it names is missing.",
        ),
        (
            crate::EXIT_CONFIG_TEST,
            "With -t: something keepalived's -t also counts (an unknown keyword, a bad value \
             skipped, a default it sets and says so); the daemon would log it and run.",
        ),
        (
            crate::EXIT_CONFIG_TEST_SECURITY,
            "With -t: a script security problem (enable_script_security).",
        ),
        (
            crate::EXIT_PROGRAM_ERROR,
            "The daemon failed inside (a panic, a component that gave up) and -R forbade a \
             restart. Without -R the supervising parent releases the virtual addresses for it \
             and starts it again.",
        ),
    ]
}

fn vrrpd_8() -> io::Result<String> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut synopsis = Vec::new();
    man.render_synopsis_section(&mut synopsis)?;
    let mut options = Vec::new();
    man.render_options_section(&mut options)?;
    let mut out = title("vrrpd", "8", "System Manager's Manual");
    out += &section("NAME");
    out += "vrrpd \\- keepalived\\-compatible VRRP daemon with health checks and an L4 balancer\n";
    out += &String::from_utf8_lossy(&synopsis);
    out += &section("DESCRIPTION");
    out += &para(
        "vrrpd runs one node of a high-availability pair. The nodes elect a Master with VRRP \
         (RFC 3768 version 2, RFC 5798 version 3, IPv4 and IPv6, multicast or unicast); the \
         Master holds the virtual addresses and announces them with gratuitous ARP and \
         unsolicited neighbour advertisements. vrrpd also runs keepalived's health checks \
         against real servers and forwards the traffic of each `virtual_server` to the healthy \
         ones itself (DR, NAT, TUN, with AF_PACKET sockets and an nftables table that keeps \
         the kernel away from it), so it needs no IPVS.",
    );
    out += &para(
        "It is a drop-in replacement for keepalived(8): it reads the same configuration file \
         (see vrrpd.conf(5)), takes the same options, answers the same signals, writes the same \
         dump files and speaks the same protocol, so a pair may run one of each. Where keepalived \
         has a parent, a VRRP child and a checker child, vrrpd has a supervising parent and \
         one child whose threads run VRRP, the checks and the balancer: if the child dies, \
         the parent gives its virtual addresses away at once and starts it again. Options \
         naming the checker or BFD children are accepted and noted as harmless.",
    );
    out += &para(
        "Unless -n is given it forks into the background. Under systemd it runs in the \
         foreground (Type=notify) and reports READY=1, RELOADING=1 and STOPPING=1.",
    );
    out += &String::from_utf8_lossy(&options);
    out += &section("COMMANDS");
    out += &item(
        "convert KEEPALIVED_CONF [OUT.toml]",
        "Write the configuration in vrrpd's TOML form (to standard output without OUT).",
    );
    out += &section("GENHASH MODE");
    out += &para(&format!(
        "With -T as the first option, or when run as `{GENHASH}` (a link to vrrpd), the \
         remaining arguments are genhash's: it prints the MD5 digest of a page for the \
         `digest` of an HTTP_GET or SSL_GET check. See genhash(1)."
    ));
    out += &section("SIGNALS");
    out += &para(
        "`vrrpd --signum=NAME` prints the number of a signal by keepalived's name for it, so \
         scripts written for keepalived work unchanged: `kill -s $(vrrpd --signum=RELOAD) PID`.",
    );
    for (name, what) in SIGNALS {
        let n = vrrpd::process::signum(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no signal {name}"))
        })?;
        out += &item(&format!("{} ({name}, {n})", signal_name(n)), what);
    }
    out += &section("FILES");
    for (file, what) in [
        (
            DEFAULT_CONFIG,
            "The configuration file read unless -f names another.",
        ),
        (
            crate::DEFAULT_PID_FILE,
            "The parent's pid file unless -p names another (-r names one for the child).",
        ),
        (
            DEFAULT_ARGS_FILE,
            "Options the systemd unit adds to the command line: DAEMON_ARGS=\"...\", as in \
             /etc/default/keepalived.",
        ),
        (
            &dump(DATA_FILE),
            "Written on SIGUSR1 (keepalived's layout).",
        ),
        (
            &dump(STATS_FILE),
            "Written on SIGUSR2 (keepalived's layout).",
        ),
        (
            &dump(JSON_FILE),
            "Written on the JSON signal (vrrpd --signum=JSON), in keepalived's format.",
        ),
        (
            &dump(VRRPD_JSON_FILE),
            "Written with it: what keepalived's JSON has no place for (checkers, balancer, \
             mail, supervision).",
        ),
        (DEFAULT_LOG_FILE, "The log file of -g when it names none."),
        (
            "/run/netns/NAME",
            "The network namespace entered with -s NAME or the net_namespace keyword.",
        ),
        (
            EXAMPLES_DIR,
            "Example configurations installed by the package.",
        ),
    ] {
        out += &item(file, what);
    }
    out += &section("ENVIRONMENT");
    out += &item(
        "NOTIFY_SOCKET",
        "Set by systemd: the daemon reports its state there, and removes it from the \
         environment of the scripts it runs.",
    );
    out += &item(
        "TMPDIR",
        "An absolute path moves the dump files from /tmp there, as keepalived's.",
    );
    out += &item(
        "RUST_LOG",
        "A tracing filter (e.g. `vrrpd=debug`) that overrides the level set by -D.",
    );
    out += &section("EXIT STATUS");
    for (code, what) in exit_codes() {
        out += &item(&code.to_string(), what);
    }
    out += &section("SEE ALSO");
    out += "vrrpd.conf(5), genhash(1), keepalived(8), keepalived.conf(5), systemd.service(5)\n";
    Ok(out)
}

/// One table of the compatibility document: its heading and rows of cells.
struct Table {
    heading: String,
    rows: Vec<Vec<String>>,
}

/// The tables of the compatibility document, from the registry itself
/// (`keepalived_conf::compat::rows()`, the data `compat::table()` renders as markdown): one per
/// block, rows of keyword, status, notes; then the deliberate differences.
fn compat_tables() -> Vec<Table> {
    let mut tables: Vec<Table> = keepalived_conf::compat::rows()
        .into_iter()
        .map(|c| Table {
            heading: if c.path.is_empty() {
                "Top level".to_string()
            } else {
                c.path.to_string()
            },
            rows: c
                .rows
                .into_iter()
                .map(|r| {
                    let (status, notes) = keepalived_conf::compat::status(r.status);
                    vec![format!("`{}`", r.name), status.into(), notes.into()]
                })
                .collect(),
        })
        .collect();
    tables.push(Table {
        heading: "Deliberate differences from keepalived 2.2.7".into(),
        rows: keepalived_conf::compat::DIFFERENCES
            .iter()
            .map(|(what, why)| vec![what.to_string(), why.to_string()])
            .collect(),
    });
    tables
}

/// The row's tag (first cell) and the rest joined, e.g. "supported" or "partial: why".
fn row_text(cells: &[String]) -> (String, String) {
    let tag = cells.first().cloned().unwrap_or_default();
    let rest: Vec<&str> = cells[1.min(cells.len())..]
        .iter()
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    (tag, rest.join(": "))
}

const EXTENSION: &str = "vrrpd extension";

fn vrrpd_conf_5() -> String {
    let tables = compat_tables();
    let mut out = title("vrrpd.conf", "5", "File Formats Manual");
    out += &section("NAME");
    out += "vrrpd.conf \\- vrrpd configuration: keepalived.conf and its TOML form\n";
    out += &section("SYNOPSIS");
    out += &format!("{}\n.br\nFILE.toml\n", text(DEFAULT_CONFIG));
    out += &section("DESCRIPTION");
    out += &para(
        "vrrpd(8) reads keepalived.conf as keepalived.conf(5) describes it: the same blocks, \
         keywords, defaults and ranges, and the same preprocessor (`include` with globs, \
         `@ID` conditionals, `$NAME=VALUE` parameters, `~SEQ` and `~LST`). This page lists \
         what differs, vrrpd's extensions, the TOML form, and the status of every keyword.",
    );
    out += &para(
        "Every keyword is either implemented, or reported with its file:line:col and the \
         reason: nothing is silently ignored. As keepalived, the daemon logs an unknown \
         keyword or a bad value (with a did-you-mean suggestion) and goes on; `vrrpd -t` \
         checks a file and exits as keepalived's `-t` would (0, or 2, 4, 5, 6); `vrrpd \
         --dump-config` prints the model the file resolves to, as JSON.",
    );
    out += &section("DIFFERENCES FROM KEEPALIVED");
    for (what, how) in [
        (
            "Processes",
            "keepalived's VRRP and checker children are threads of one child process in vrrpd: \
             the process keywords (vrrp_priority, checker_rt_priority, *_cpu_affinity, ...) \
             apply to the VRRP thread and the checker thread.",
        ),
        (
            "No IPVS",
            "virtual_server blocks are checked and forwarded by vrrpd's own dataplane \
             (AF_PACKET and nftables, `lvs_method` DR, NAT or TUN), only while the VRRP \
             instance holding the address is Master; the kernel's IPVS is not used. fwmark \
             and SCTP virtual servers are checked but not forwarded.",
        ),
        (
            "Not implemented",
            "SNMP (-x refuses to start), BFD, and the keywords marked \"not supported\" below \
             (warned about and skipped).",
        ),
    ] {
        out += &item(what, how);
    }
    if let Some(diff) = tables.iter().find(|t| t.heading.starts_with("Deliberate")) {
        out += &para(&format!("{}:", diff.heading));
        for row in &diff.rows {
            let (tag, rest) = row_text(row);
            out += &item(&tag, &rest);
        }
    }
    out += &section("EXTENSIONS");
    out += &para("Keywords keepalived does not have (keepalived -t rejects them):");
    for t in &tables {
        for row in t
            .rows
            .iter()
            .filter(|r| r.get(1).map(String::as_str) == Some(EXTENSION))
        {
            let notes = row.get(2).map(String::as_str).unwrap_or_default();
            out += &item(&format!("{} (in {})", row[0], t.heading), notes);
        }
    }
    out += &section("TOML FORM");
    out += &para(
        "A file whose name ends in .toml is read as TOML into the same model: each block is a \
         table named after it, keywords are keys, and values have the types of the model \
         (numbers, booleans, strings, arrays). `vrrpd convert keepalived.conf out.toml` writes \
         the TOML form of an existing file. An example, the file etc/vrrpd.toml of the source:",
    );
    out += &verbatim(include_str!("../../etc/vrrpd.toml"));
    out += &section("KEYWORD STATUS");
    out += &para(
        "Generated from vrrpd's keyword registry. supported: implemented with keepalived's \
         meaning; partial: parsed, validated and kept in the model, what is missing is said; \
         not supported: known, warned about with its location and skipped.",
    );
    for t in tables
        .iter()
        .filter(|t| !t.heading.starts_with("Deliberate"))
    {
        out += &format!(".SS {}\n", text(&t.heading));
        for row in &t.rows {
            let (tag, rest) = row_text(row);
            out += &item(&tag, &rest);
        }
    }
    out += &section("SEE ALSO");
    out += "vrrpd(8), keepalived.conf(5), genhash(1)\n";
    out
}

fn genhash_1() -> String {
    let mut out = title("genhash", "1", "User Commands");
    out += &section("NAME");
    out += "genhash \\- print the MD5 digest of a web page for an HTTP_GET or SSL_GET check\n";
    out += &section("SYNOPSIS");
    out += "\\fBgenhash\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n.br\n\\fBvrrpd \\-T\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n";
    out += &section("DESCRIPTION");
    out += &para(
        "genhash fetches a URL as vrrpd's HTTP_GET and SSL_GET checkers fetch it and prints the \
         MD5 digest of the body, the value of a `digest` line in vrrpd.conf(5). With -v it also \
         prints the response head, the body and the digest as hex dumps. It is keepalived's \
         genhash, with its options, messages and exit codes; the package installs it as a \
         link to vrrpd(8).",
    );
    out += &para(
        "One difference: a chunked response is hashed without its chunk framing (by genhash and \
         by the checker alike), where keepalived hashes the framing too.",
    );
    out += &section("OPTIONS");
    out += &verbatim(&vrrpd::genhash::args::usage(GENHASH));
    out += &section("EXIT STATUS");
    out += &para("1 for a usage error; 0 otherwise, whatever the fetch gave (as keepalived).");
    out += &section("SEE ALSO");
    out += "vrrpd(8), vrrpd.conf(5)\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(name: &str) -> String {
        let mut out = Vec::new();
        artifact(name, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Every visible option of the command line has its paragraph in vrrpd(8).
    #[test]
    fn vrrpd_8_documents_every_flag_signal_and_exit_code() {
        let page = gen("vrrpd.8");
        let cmd = Cli::command();
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(short) = arg.get_short() {
                assert!(page.contains(&format!("\\fB\\-{short}\\fR")), "-{short}");
            }
            if let Some(long) = arg.get_long() {
                let roff = long.replace('-', "\\-");
                assert!(page.contains(&format!("\\-\\-{roff}")), "--{long}");
            }
        }
        assert!(
            !page.contains("\\-\\-generate"),
            "the hidden option stays hidden"
        );
        for (name, _) in SIGNALS {
            assert!(page.contains(&format!("({name}, ")), "{name}");
        }
        assert!(page.contains("SIGTERM (STOP, 15)") && page.contains("SIGHUP (RELOAD, 1)"));
        assert!(
            page.contains("SIGRTMIN+2 (JSON, "),
            "real-time signals by kill's name"
        );
        for (code, _) in exit_codes() {
            assert!(
                page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "exit {code}"
            );
        }
        for file in [
            DEFAULT_CONFIG,
            DATA_FILE,
            STATS_FILE,
            JSON_FILE,
            DEFAULT_ARGS_FILE,
        ] {
            assert!(page.contains(&text(file)), "{file}");
        }
    }

    /// vrrpd.conf(5) carries the registry's table: every keyword of the markdown document,
    /// and the extensions in their own section.
    #[test]
    fn vrrpd_conf_5_has_every_keyword_of_the_registry() {
        let page = gen("vrrpd.conf.5");
        let doc = keepalived_conf::compat::table();
        let keywords: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        assert!(keywords.len() > 300, "{} keywords", keywords.len());
        for kw in &keywords {
            assert!(page.contains(&text(&format!("`{kw}`"))), "{kw}");
        }
        let ext = page.split(".SH EXTENSIONS").nth(1).unwrap();
        let ext = ext.split(".SH ").next().unwrap();
        let extensions = doc.lines().filter(|l| l.contains(EXTENSION)).count();
        assert!(extensions > 0);
        assert_eq!(ext.matches(".TP").count(), extensions);
        assert!(page.contains("vrrp_instance"), "the TOML example is in");
        assert!(!page.contains("\n|"), "no markdown table row left");
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(text("`a-b` c\\d"), "\\fBa\\-b\\fR c\\ed");
        assert_eq!(text(".x"), "\\&.x");
        assert_eq!(text("**x** `y"), "\\fBx\\fR \\fBy\\fR");
    }

    #[test]
    fn completions_name_the_flags() {
        let bash = gen("vrrpd.bash");
        assert!(bash.contains("--use-file") && bash.contains("complete -F"));
        assert!(gen("vrrpd.zsh").contains("#compdef vrrpd"));
        assert!(gen("vrrpd.fish").contains("complete -c vrrpd"));
    }
}
