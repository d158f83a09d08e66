//! `docs/COMPATIBILITY.md`, generated from the parser's own keyword registry (a test fails
//! when the committed file and the registry disagree; `vrrpd --compat-table` prints it).

use std::fmt::Write as _;

use super::keepalived;
use super::keywords::Status;
use super::schema;

/// Deliberate differences from `keepalived -t`, with the reason (kept in the table).
pub const DIFFERENCES: &[(&str, &str)] = &[
    (
        "`auth_type AH`",
        "refused as an error (keepalived accepts it); vrrpd implements PASS only",
    ),
    (
        "`version 2` on an IPv6 instance",
        "an error (keepalived silently switches to v3): VRRPv2 is IPv4-only (RFC 3768)",
    ),
    (
        "unknown keywords inside blocks keepalived skips",
        "an error with a did-you-mean suggestion everywhere; keepalived only logs some",
    ),
    (
        "a BOOL keyword with a non-BOOL value (`alpha maybe`)",
        "an error; keepalived 2.2.7 accepts it without a word",
    ),
    (
        "include matching no file",
        "a warning (not counted as a `-t` failure, as keepalived without `-e`)",
    ),
    (
        "`priority 255` with `state BACKUP`",
        "a warning not counted as a failure (keepalived is silent)",
    ),
    (
        "`lvs_sync_daemon` naming no instance, or one that does not exist",
        "an error, the setting cleared (keepalived clears it too, but says so only when it starts; without an instance it runs a sending and a receiving daemon at once, which vrrpd's one-forwarder-at-a-time balancer does not do)",
    ),
];

/// How `lvs_sync_daemon` behaves, beyond the keyword table.
const SYNC_NOTES: &str = include_str!("sync_notes.md");

fn status(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Supported => ("supported", ""),
        Status::Partial(w) => ("partial", w),
        Status::Unsupported(w) => ("not supported", w),
        Status::Extension(w) => ("vrrpd extension", w),
    }
}

/// The whole markdown document.
pub fn table() -> String {
    let mut out = String::from(
        "# keepalived.conf compatibility\n\n\
         Generated from vrrpd's keyword registry (`vrrpd --compat-table > docs/COMPATIBILITY.md`;\n\
         the test `compat_table_is_current` fails when this file is stale).\n\n\
         * **supported**: implemented with keepalived's meaning.\n\
         * **partial**: parsed, validated and kept in the model; what is missing is stated.\n\
         * **not supported**: known keyword, warned about with its file:line and skipped.\n\n\
         Anything else is an unknown keyword: an error with a did-you-mean suggestion.\n\n\
         The preprocessor implements `include` (globs, `{a,b}`), `@ID` / `@^ID`, `$NAME=VALUE`\n\
         (multi-line too), `${_PWD}` `${_INSTANCE}` `${_RANDOM}` `${_HASH}` `${_BANG}` `${_ENV VAR}`,\n\
         `~SEQ` `~SEQx` `~LST`.\n",
    );
    for (ctx, rows) in keepalived::registry() {
        section(&mut out, ctx, rows.into_iter());
    }
    for (ctx, specs) in schema::contexts() {
        section(&mut out, ctx, specs.iter().map(|s| (s.name, s.status)));
    }
    out.push_str(SYNC_NOTES);
    out.push_str(
        "\n## Deliberate differences from `keepalived -t`\n\n| What | vrrpd |\n|---|---|\n",
    );
    for (what, why) in DIFFERENCES {
        let _ = writeln!(out, "| {what} | {why} |");
    }
    out
}

fn section(out: &mut String, ctx: &str, rows: impl Iterator<Item = (&'static str, Status)>) {
    let _ = write!(
        out,
        "\n## {ctx}\n\n| Keyword | Status | Notes |\n|---|---|---|\n"
    );
    let mut rows: Vec<_> = rows.collect();
    rows.sort_by_key(|r| r.0);
    rows.dedup_by_key(|r| r.0);
    for (name, s) in rows {
        let (st, why) = status(s);
        let _ = writeln!(out, "| `{name}` | {st} | {why} |");
    }
}
