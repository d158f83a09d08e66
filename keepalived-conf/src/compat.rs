//! `docs/COMPATIBILITY.md`, generated from the keyword registry (a test fails when the
//! committed file and the registry disagree; `vrrpd --compat-table` prints it). [`table`] is
//! the one renderer: the man page generator uses [`rows`] for the same data.

use std::fmt::Write as _;

use super::build;
use super::registry::{Context, RowInfo, Status};

/// Where `vrrpd -t` and the daemon deliberately differ from keepalived 2.2.7 (what, why).
pub const DIFFERENCES: &[(&str, &str)] = &[
    (
        "a `unicast_src_ip` that is not local",
        "the instance waits in FAULT as keepalived's does, and leaves FAULT once the address is added (keepalived 2.2.7 stays in FAULT until restarted)",
    ),
    (
        "`version 2` on an IPv6 instance",
        "run as VRRPv3 as keepalived does, with a notice (keepalived is silent; VRRPv2 is IPv4-only, RFC 3768)",
    ),
    (
        "an instance with `unicast_src_ip` and no `interface`",
        "refused: vrrpd needs the interface the peers are reached on",
    ),
    (
        "include matching no file",
        "a warning (not counted as a `-t` failure, as keepalived without `-e`)",
    ),
    (
        "`priority 255` with `state BACKUP`",
        "a notice not counted as a failure (keepalived is silent)",
    ),
    (
        "a fraction of a second for a `vrrp_script`'s `interval` or `timeout` (`interval .5`)",
        "taken as written, with a notice, as keepalived 2.3 and later take it (2.2.7 reports an invalid number, `-t` exits 5, and checks every second)",
    ),
    (
        "a `virtual_server` without `protocol`",
        "flagged as keepalived flags it, but vrrpd balances TCP (keepalived defaults to UDP)",
    ),
    (
        "a line that is not UTF-8",
        "read with U+FFFD in place of the bad bytes, with a notice unless they are in a comment",
    ),
    (
        "a block keyword written without its `{` as the last statement of its block",
        "read as keepalived reads it elsewhere (a block of entries, `virtual_ipaddress 192.0.2.1/24`, takes the lines after it as its entries up to the first `}`; a block of keywords, `authentication` or `vrrp_instance NAME`, the statements after it), but where that `}` is the enclosing block's own, vrrpd ends both there (keepalived reads on past it)",
    ),
    (
        "a block still open at the end of the file",
        "reported (-t fails) and closed at the end of the file, and the file runs at start, as keepalived 2.2.7 runs it; a reload of such a file keeps the running configuration (keepalived reloads it as it reads it). A `{` after an unknown keyword or after one that takes no block is dropped and the lines inside read where it stands, its `}` closing the block around it, as keepalived reads it; a stray `}` or a `{` with no keyword is dropped and the file runs, as keepalived does",
    ),
    (
        "a line longer than 1023 bytes",
        "read in 1023-byte pieces as keepalived reads it (the rest of the line is a line of its own), with a notice; vrrpd names the true line and column for every piece, keepalived numbers the later pieces, and every line after them, one more",
    ),
    (
        "an include loop (a file including itself, directly or through a glob)",
        "the file is read twice, so what it defines is reported as already defined, then skipped with a notice; keepalived 2.2.7 reads it again until it runs out of file descriptors (thousands of the same reports, its VRRP process busy for seconds)",
    ),
    (
        "a value block written on one line (`track_interface { eth1 }`)",
        "read as written; keepalived 2.2.7 takes the `}` for a value (an entry with it may be dropped) and reads the following lines into the block until one ends with `}`",
    ),
    (
        "`-t` on a file with a script to run as a user other than root (`script_user`, a `vrrp_script`'s or `MISC_CHECK`'s `user`)",
        "checked as with root (the script's file and user, exit 0, 5 or 6 as they find); keepalived 2.2.7's `-t` is ended by a SIGTERM before it reports (exit 143; measured with `nobody` and `postgres`, `/bin/true` and a missing file, and a notify script's own user), while its daemon runs the file: after checking a script as its user, `check_script_secure` signals its own process when its parent is not keepalived's main process, which under `-t` (one process) is always so",
    ),
    (
        "`HTTP_GET` / `SSL_GET` without `url`",
        "flagged and the checker dropped, as keepalived says; keepalived 2.2.7's `-t` then crashes (exit 139), vrrpd's exits 5",
    ),
    (
        "`unicast_ttl 0`",
        "refused as out of range 1-255 (keepalived takes 0, and its adverts then never leave the host)",
    ),
    (
        "`dynamic_interfaces` with an interface that is deleted and made again while the instance runs",
        "the instance goes to FAULT (link down) and needs a reload to use the new interface; keepalived follows it. An interface missing at start is waited for (looked for each second)",
    ),
    (
        "`auth_type AH` and the supervisor's last advert",
        "if the daemon dies as Master, its supervisor removes the addresses but sends no priority-0 advert (it would need the sequence number of that moment): the peer takes over after Master_Down_Interval",
    ),
    (
        "`lvs_sync_daemon` naming no instance, or one that does not exist",
        "logged and the setting cleared (keepalived clears it too, but says so only when it starts; without an instance it runs a sending and a receiving daemon at once, which vrrpd's one-forwarder-at-a-time balancer does not do)",
    ),
];

/// How `lvs_sync_daemon` behaves, beyond the keyword table.
const SYNC_NOTES: &str = include_str!("sync_notes.md");

/// A status as the table words it, with its reason.
pub fn status(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Supported => ("supported", ""),
        Status::Partial(w) => ("partial", w),
        Status::Unsupported(w) => ("not supported", w),
        Status::Extension(w) => ("vrrpd extension", w),
    }
}

/// Every block's rows, sorted by keyword, as the table shows them.
pub fn rows() -> Vec<Context> {
    let mut v = build::contexts();
    for c in &mut v {
        c.rows.sort_by_key(|r| r.name);
        c.rows.dedup_by_key(|r| r.name);
    }
    v
}

/// The whole markdown document.
pub fn table() -> String {
    let mut out = String::from(
        "# keepalived.conf compatibility\n\n\
         Generated from vrrpd's keyword registry (`vrrpd --compat-table > docs/COMPATIBILITY.md`;\n\
         the test `compat_table_is_current` fails when this file is stale). The registry holds\n\
         exactly the keywords keepalived 2.2.7 accepts in each block (a test compares it with\n\
         what Debian's keepalived installs), plus vrrpd's own extensions, marked as such.\n\n\
         * **supported**: implemented with keepalived's meaning.\n\
         * **partial**: acted on; what is missing is stated.\n\
         * **not supported**: known keyword, logged with its file:line and skipped; the\n\
           daemon runs and `-t` does not count it (keepalived would act on it).\n\n\
         Anything else is an unknown keyword. As keepalived, the daemon logs it and goes on, and\n\
         `-t` fails (exit 5), with a did-you-mean suggestion. Bad values are reported and\n\
         skipped the same way; a keyword missing its value stops keepalived (`-t` exits 2), and\n\
         vrrpd refuses the file there too.\n\n\
         The preprocessor implements `include` (globs, `{a,b}`), `@ID` / `@^ID`, `$NAME=VALUE`\n\
         (multi-line too), `${_PWD}` `${_INSTANCE}` `${_RANDOM}` `${_HASH}` `${_BANG}` `${_ENV VAR}`,\n\
         `~SEQ` `~SEQx` `~LST`.\n",
    );
    for c in rows() {
        section(&mut out, &c);
    }
    out.push_str(SYNC_NOTES);
    out.push_str(
        "\n## Deliberate differences from keepalived 2.2.7\n\n| What | vrrpd |\n|---|---|\n",
    );
    for (what, why) in DIFFERENCES {
        let _ = writeln!(out, "| {what} | {why} |");
    }
    out
}

fn section(out: &mut String, c: &Context) {
    let title = if c.path.is_empty() {
        "Top level"
    } else {
        c.path
    };
    let _ = write!(
        out,
        "\n## {title}\n\n| Keyword | Argument | Status | Notes |\n|---|---|---|---|\n"
    );
    for RowInfo {
        name,
        syntax,
        status: s,
    } in &c.rows
    {
        let (st, why) = status(*s);
        let syntax = syntax.replace('|', "\\|");
        let _ = writeln!(out, "| `{name}` | {syntax} | {st} | {why} |");
    }
}
