//! The keyword registry is complete against keepalived 2.2.7 as Debian installs it: every
//! keyword its keepalived.conf(5) documents (and its binary contains) is a registry row, and
//! every registry row that is not a vrrpd extension is a string keepalived's binary contains.
//! (`vrrpd/tests/samples.rs` checks each row in its block against `keepalived -t` itself.)

use std::collections::{BTreeSet, HashSet};
use std::process::Command;

use keepalived_conf::registry::Status;

const MAN: &str = "/usr/share/man/man5/keepalived.conf.5.gz";
const BINARY: &str = "/usr/sbin/keepalived";

/// Words the man page sets in bold at the start of a line that are not keywords.
const NOT_KEYWORDS: &[(&str, &str)] = &[
    (
        "include",
        "a preprocessor directive, handled before keywords are read",
    ),
    ("BFD", "a heading"),
    ("VRRP", "a heading"),
    ("dynamic", "prose"),
    ("start", "prose"),
    ("keepalived.conf", "the file's own name"),
];

/// Every NUL-terminated string of the binary and each of its tails: C compilers merge a string
/// literal into the tail of a longer one (`"priority"` lives in `"vrrp_priority"`), so a tail is
/// as good as the literal.
fn binary_strings() -> Option<HashSet<String>> {
    let bytes = std::fs::read(BINARY).ok()?;
    let mut out = HashSet::new();
    for chunk in bytes.split(|b| *b == 0) {
        // The printable run that ends at the NUL, as strings(1) would show it.
        let start = chunk
            .iter()
            .rposition(|b| !(0x20..0x7f).contains(b))
            .map_or(0, |i| i + 1);
        let s = &chunk[start..];
        for i in 0..s.len().saturating_sub(1) {
            out.insert(String::from_utf8_lossy(&s[i..]).into_owned());
        }
    }
    Some(out)
}

/// The words keepalived.conf(5) sets in bold at the start of a line: its keyword syntax lines.
fn man_keywords() -> Option<BTreeSet<String>> {
    let out = Command::new("zcat").arg(MAN).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|l| l.trim_start().strip_prefix("\\fB"))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "_@.-".contains(*c))
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .collect(),
    )
}

fn registry() -> Vec<(&'static str, &'static str, Status)> {
    keepalived_conf::build::contexts()
        .into_iter()
        .flat_map(|c| c.rows.into_iter().map(move |r| (c.path, r.name, r.status)))
        .collect()
}

#[test]
fn registry_is_keepalived_2_2_7s_keywords() {
    let (Some(man), Some(bin)) = (man_keywords(), binary_strings()) else {
        println!("skipped: keepalived is not installed ({MAN}, {BINARY})");
        return;
    };
    let rows = registry();
    let names: BTreeSet<&str> = rows.iter().map(|r| r.1).collect();

    // What keepalived documents and contains, the registry has.
    let documented: Vec<&String> = man
        .iter()
        .filter(|w| bin.contains(*w))
        .filter(|w| !NOT_KEYWORDS.iter().any(|(n, _)| n == w))
        .collect();
    assert!(
        documented.len() > 250,
        "only {} keywords found in the man page",
        documented.len()
    );
    let lacking: Vec<_> = documented
        .iter()
        .filter(|w| !names.contains(w.as_str()))
        .collect();
    assert!(
        lacking.is_empty(),
        "keepalived keywords missing from the registry: {lacking:?}"
    );

    // What the registry has (but vrrpd's own extensions), keepalived knows.
    let unknown: Vec<_> = rows
        .iter()
        .filter(|(_, _, s)| !matches!(s, Status::Extension(_)))
        .filter(|(_, n, _)| !bin.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "registry rows keepalived 2.2.7 does not know: {unknown:?}"
    );

    // The man page lists keywords the binary lacks only when Debian builds without them.
    let not_built: Vec<_> = man
        .iter()
        .filter(|w| !bin.contains(*w) && names.contains(w.as_str()))
        .collect();
    assert!(
        not_built.is_empty(),
        "rows for keywords not built in: {not_built:?}"
    );
}

#[test]
fn extensions_are_few_and_documented() {
    let ext: Vec<_> = registry()
        .into_iter()
        .filter(|(_, _, s)| matches!(s, Status::Extension(_)))
        .map(|(p, n, _)| format!("{p}/{n}"))
        .collect();
    assert_eq!(
        ext,
        [
            "global_defs/vrrpd_metrics_listen",
            "vrrp_instance/track_virtual_server",
            "virtual_server/real_server/TCP_CHECK/half_open",
            "virtual_server/real_server/TCP_CHECK/reset_close",
        ]
    );
    let table = keepalived_conf::compat::table();
    assert!(table.contains("| `track_virtual_server` |"));
}
