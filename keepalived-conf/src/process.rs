//! keepalived's process keywords of `global_defs` (`vrrp_priority`, `checker_rt_priority`,
//! `*_cpu_affinity`, `*_rlimit_rttime`, `*_no_swap`, `max_auto_priority`,
//! `min_auto_priority_delay`, `umask`), read with keepalived 2.2.7's ranges and messages.
//!
//! keepalived reports a bad value and ignores it (or clamps a real-time priority); here a bad
//! value is an error like any other invalid `global_defs` value, a clamped one a warning that
//! `-t` counts, as keepalived's does. CPU ids are checked against the host's online CPUs only
//! with host checks (keepalived's `-t` and start), not when converting a file.

use super::diag::{Diagnostic, Diags, Pos};
use super::model::{ProcessSettings, SideSettings};
use super::tree::Node;

/// SCHED_RR's priority range on Linux (`sched_get_priority_min/max`).
pub const RT_MIN: i64 = 1;
pub const RT_MAX: i64 = 99;

/// Which of keepalived's child processes a keyword names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Vrrp,
    Checker,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::Vrrp => "vrrp",
            Side::Checker => "checker",
        }
    }
}

/// The settings as written, with where the CPU sets were given.
#[derive(Debug, Default)]
pub struct ProcessDraft {
    settings: ProcessSettings,
    cpus_at: [Option<Pos>; 2],
}

impl ProcessDraft {
    fn side(&mut self, s: Side) -> &mut SideSettings {
        match s {
            Side::Vrrp => &mut self.settings.vrrp,
            Side::Checker => &mut self.settings.checker,
        }
    }

    /// `*_priority N`: a nice value in [-20, 19]; 0 leaves it alone (keepalived).
    pub fn nice(&mut self, s: Side, n: &Node, d: &mut Diags) {
        let Some(t) = n.args.first() else {
            return err(
                n.pos(),
                d,
                format!("No {} process priority specified", s.word()),
            );
        };
        match t.text.parse::<i64>() {
            Ok(v) if (-20..=19).contains(&v) => self.side(s).nice = (v != 0).then_some(v as i8),
            _ => err(
                &t.pos,
                d,
                format!(
                    "Invalid {} process priority specified: '{}' (must be in [-20, 19])",
                    s.word(),
                    t.text
                ),
            ),
        }
    }

    /// `*_rt_priority N`: SCHED_RR priority; out of [1, 99] it is clamped, as keepalived does.
    pub fn rt_priority(&mut self, s: Side, n: &Node, d: &mut Diags) {
        let Some(t) = n.args.first() else {
            return err(
                n.pos(),
                d,
                format!("No {} process real-time priority specified", s.word()),
            );
        };
        let Ok(v) = t.text.parse::<i64>() else {
            return err(
                &t.pos,
                d,
                format!(
                    "{} process real-time priority '{}' invalid",
                    s.word(),
                    t.text
                ),
            );
        };
        let clamped = v.clamp(RT_MIN, RT_MAX);
        if clamped != v {
            let (what, bound) = if v < RT_MIN {
                ("less than minimum", "minimum")
            } else {
                ("greater than maximum", "maximum")
            };
            d.push(Diagnostic::warning(
                &t.pos,
                format!(
                    "{} process real-time priority {v} {what} {clamped} - setting to {bound}",
                    s.word()
                ),
            ));
        }
        self.side(s).rt_priority = Some(clamped as u8);
    }

    /// `*_cpu_affinity ID...`: the whole set is dropped at the first bad id (keepalived).
    pub fn cpu_affinity(&mut self, s: Side, n: &Node, d: &mut Diags) {
        if n.args.is_empty() {
            return err(n.pos(), d, format!("No {} cpu_id set specified", s.word()));
        }
        let mut cpus = Vec::with_capacity(n.args.len());
        for t in &n.args {
            match t.text.parse::<u16>() {
                Ok(c) => cpus.push(c),
                Err(_) => {
                    self.side(s).cpu_affinity.clear();
                    return err(
                        &t.pos,
                        d,
                        format!(
                            "Invalid cpu_id:{} specified for {} process",
                            t.text,
                            s.word()
                        ),
                    );
                }
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        self.side(s).cpu_affinity = cpus;
        self.cpus_at[s as usize] = Some(n.pos().clone());
    }

    /// `*_rlimit_rttime USECS` (and the deprecated `*_rlimit_rtime`): at least 1, and 1 is
    /// taken as 2 (the soft limit is half of it and must not be 0).
    pub fn rlimit_rttime(&mut self, s: Side, n: &Node, d: &mut Diags) {
        if n.name().ends_with("_rtime") {
            d.push(Diagnostic::notice(
                n.pos(),
                format!(
                    "Keyword '{}' is deprecated - please use '{}_rlimit_rttime'",
                    n.name(),
                    s.word()
                ),
            ));
        }
        let Some(t) = n.args.first() else {
            return err(n.pos(), d, format!("`{}` needs a value", n.name()));
        };
        match t.text.parse::<u32>() {
            Ok(v) if v >= 1 => self.side(s).rlimit_rttime_us = Some(v.max(2)),
            _ => err(
                &t.pos,
                d,
                format!("Invalid {} real-time limit - {}", s.word(), t.text),
            ),
        }
    }

    /// `*_no_swap`.
    pub fn no_swap(&mut self, s: Side) {
        self.side(s).no_swap = true;
    }

    /// `max_auto_priority [N]`: without a value, SCHED_RR's maximum.
    pub fn max_auto_priority(&mut self, n: &Node, d: &mut Diags) {
        let Some(t) = n.args.first() else {
            self.settings.max_auto_priority = RT_MAX as i8;
            return;
        };
        match t.text.parse::<i64>() {
            Ok(v) if (-1..=RT_MAX).contains(&v) => self.settings.max_auto_priority = v as i8,
            _ => err(
                &t.pos,
                d,
                format!(
                    "max_auto_priority '{}' must be in [0, {RT_MAX}] (or -1 to disable) - ignoring",
                    t.text
                ),
            ),
        }
    }

    /// `min_auto_priority_delay USECS` in [1, 10000000].
    pub fn min_auto_priority_delay(&mut self, n: &Node, d: &mut Diags) {
        let Some(t) = n.args.first() else {
            return err(
                n.pos(),
                d,
                "min_auto_priority_delay requires delay time".into(),
            );
        };
        match t.text.parse::<u32>() {
            Ok(v) if (1..=10_000_000).contains(&v) => self.settings.min_auto_priority_delay_us = v,
            _ => err(
                &t.pos,
                d,
                format!(
                    "min_auto_priority_delay '{}' must be in [1, 10000000] - ignoring",
                    t.text
                ),
            ),
        }
    }

    /// `umask NUMBER` (hex, octal or decimal, as C's strtol) or `umask BIT|BIT...` with
    /// keepalived's names (`IRUSR` ... `IXOTH`), the `|` inside a word or as words of its own.
    pub fn umask(&mut self, n: &Node, d: &mut Diags) {
        // The row stops the file without a value (as keepalived does), before this.
        let Some(first) = n.args.first() else { return };
        if first.text.starts_with(|c: char| c.is_ascii_digit()) {
            if n.args.len() != 1 {
                return err(n.pos(), d, "Extra parameter(s) to umask option".into());
            }
            match c_number(&first.text) {
                Some(v) if v <= 0o777 => self.settings.umask = Some(v as u32),
                _ => err(&first.pos, d, format!("invalid umask value {}", first.text)),
            }
            return;
        }
        let mut bits = 0u32;
        let mut need_or = false;
        for t in &n.args {
            let mut rest = &*t.text;
            while !rest.is_empty() {
                if need_or {
                    match rest.strip_prefix('|') {
                        Some(r) => {
                            need_or = false;
                            rest = r;
                            continue;
                        }
                        None => return err(&t.pos, d, format!("Invalid umask syntax {}", t.text)),
                    }
                }
                let Some(bit) = UMASK_BITS
                    .iter()
                    .find(|(name, _)| rest.starts_with(name))
                    .map(|(_, b)| *b)
                else {
                    return err(&t.pos, d, format!("Unknown umask bit {rest}"));
                };
                bits |= bit;
                rest = &rest[5..];
                need_or = true;
            }
        }
        if !need_or {
            return err(n.pos(), d, "umask missing bit value".into());
        }
        self.settings.umask = Some(bits);
    }

    /// The settings; with `host_cpus` (the host's online CPU count) a set naming a CPU beyond
    /// it is dropped with keepalived's complaint.
    pub fn resolve(mut self, host_cpus: Option<usize>, d: &mut Diags) -> ProcessSettings {
        if let Some(ncpus) = host_cpus {
            for s in [Side::Vrrp, Side::Checker] {
                let Some(pos) = self.cpus_at[s as usize].clone() else {
                    continue;
                };
                let side = self.side(s);
                if let Some(bad) = side.cpu_affinity.iter().find(|c| usize::from(**c) >= ncpus) {
                    d.push(
                        Diagnostic::warning(
                            &pos,
                            format!("Invalid cpu_id:{bad} specified for {} process", s.word()),
                        )
                        .with_help(format!(
                            "this host has {ncpus} online CPU(s), 0 to {}; the set is ignored",
                            ncpus.saturating_sub(1)
                        )),
                    );
                    side.cpu_affinity.clear();
                }
            }
        }
        self.settings
    }
}

/// keepalived's umask bit names, each five letters long.
const UMASK_BITS: &[(&str, u32)] = &[
    ("IRUSR", 0o400),
    ("IWUSR", 0o200),
    ("IXUSR", 0o100),
    ("IRGRP", 0o040),
    ("IWGRP", 0o020),
    ("IXGRP", 0o010),
    ("IROTH", 0o004),
    ("IWOTH", 0o002),
    ("IXOTH", 0o001),
];

/// A whole word read as C's `strtol(s, &end, 0)` with nothing left over: `0x` hex, a leading
/// `0` octal, else decimal. keepalived reads `umask` and `-u` this way (so `-u 22` is 0o26).
pub fn c_number(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// keepalived reports a bad process setting and ignores it.
fn err(pos: &Pos, d: &mut Diags, msg: String) {
    d.push(Diagnostic::warning(pos, msg));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_str;
    use std::path::Path;

    fn parse(global: &str) -> (ProcessSettings, Vec<Diagnostic>) {
        let (c, d) = load_str(
            &format!("global_defs {{\n{global}\n}}\n"),
            Path::new("t.conf"),
        );
        (c.global.process, d)
    }

    fn ok(global: &str) -> ProcessSettings {
        let (p, d) = parse(global);
        assert!(
            d.iter().all(|d| !d.keepalived_flags()),
            "{global}: unexpected {d:?}"
        );
        p
    }

    fn flagged(global: &str) -> String {
        let (_, d) = parse(global);
        let f: Vec<_> = d.iter().filter(|d| d.keepalived_flags()).collect();
        assert!(!f.is_empty(), "{global}: nothing flagged");
        f[0].message.clone()
    }

    #[test]
    fn values_as_keepalived_reads_them() {
        let p = ok(
            "vrrp_priority -20\nchecker_priority 19\nvrrp_rt_priority 50\n\
                    checker_cpu_affinity 1 0 1\nvrrp_rlimit_rttime 1\nchecker_no_swap\n\
                    max_auto_priority\nmin_auto_priority_delay 5000\numask IWGRP | IWOTH",
        );
        assert_eq!(p.vrrp.nice, Some(-20));
        assert_eq!(p.checker.nice, Some(19));
        assert_eq!(p.vrrp.rt_priority, Some(50));
        assert_eq!(p.checker.cpu_affinity, vec![0, 1]);
        assert_eq!(p.vrrp.rlimit_rttime_us, Some(2));
        assert!(p.checker.no_swap && !p.vrrp.no_swap);
        assert_eq!(p.max_auto_priority, 99);
        assert_eq!(p.min_auto_priority_delay_us, 5000);
        assert_eq!(p.umask, Some(0o022));
        assert_eq!(ok("vrrp_priority 0").vrrp.nice, None);
        assert_eq!(ok("max_auto_priority -1").max_auto_priority, -1);
        assert_eq!(ok("umask 0x12").umask, Some(0o22));
        assert_eq!(ok("umask 18").umask, Some(0o22));
        assert_eq!(ok("umask 0777").umask, Some(0o777));
        assert_eq!(ok("umask IRUSR|IXOTH").umask, Some(0o401));
        assert_eq!(
            ok("checker_rlimit_rtime 7").checker.rlimit_rttime_us,
            Some(7)
        );
    }

    #[test]
    fn bad_values_are_flagged_with_keepalived_words() {
        assert!(flagged("vrrp_priority -21").contains("Invalid vrrp process priority"));
        assert!(flagged("checker_priority x").contains("Invalid checker process priority"));
        assert!(flagged("vrrp_priority").contains("No vrrp process priority"));
        assert!(flagged("vrrp_rt_priority 0").contains("setting to minimum"));
        assert!(flagged("checker_rt_priority 100").contains("setting to maximum"));
        assert!(flagged("vrrp_rt_priority 0x10").contains("invalid"));
        assert!(flagged("vrrp_cpu_affinity").contains("No vrrp cpu_id set"));
        assert!(flagged("vrrp_cpu_affinity 0 x").contains("Invalid cpu_id:x"));
        assert!(flagged("vrrp_cpu_affinity -1").contains("Invalid cpu_id:-1"));
        assert!(flagged("vrrp_rlimit_rttime 0").contains("Invalid vrrp real-time limit"));
        assert!(flagged("max_auto_priority 100").contains("must be in [0, 99]"));
        assert!(flagged("min_auto_priority_delay 0").contains("[1, 10000000]"));
        assert!(flagged("min_auto_priority_delay").contains("requires delay time"));
        assert!(flagged("umask foo").contains("Unknown umask bit foo"));
        assert!(flagged("umask 01000").contains("invalid umask value"));
        assert!(flagged("umask 08").contains("invalid umask value"));
        assert!(flagged("umask 022 1").contains("Extra parameter"));
        assert!(flagged("umask IWGRP|").contains("missing bit value"));
        assert!(flagged("umask IWGRP IWOTH").contains("Invalid umask syntax"));
        // Clamped, not dropped.
        assert_eq!(parse("vrrp_rt_priority 100").0.vrrp.rt_priority, Some(99));
    }

    #[test]
    fn cpu_ids_are_checked_against_the_host() {
        let (c, _) = load_str(
            "global_defs {\nvrrp_cpu_affinity 0 3\n}\n",
            Path::new("t.conf"),
        );
        assert_eq!(c.global.process.vrrp.cpu_affinity, vec![0, 3]);
        let mut d = Diags::default();
        let mut draft = ProcessDraft::default();
        draft.settings.vrrp.cpu_affinity = vec![0, 3];
        draft.cpus_at[0] = Some(Pos {
            file: std::sync::Arc::from(Path::new("t.conf")),
            line: 2,
            col: 1,
        });
        assert!(draft.resolve(Some(2), &mut d).vrrp.cpu_affinity.is_empty());
        assert!(d.list()[0]
            .message
            .contains("Invalid cpu_id:3 specified for vrrp process"));
        assert!(d.list()[0].keepalived_flags());
    }

    #[test]
    fn c_numbers() {
        assert_eq!(c_number("22"), Some(22));
        assert_eq!(c_number("022"), Some(0o22));
        assert_eq!(c_number("0x1f"), Some(0x1f));
        assert_eq!(c_number("0"), Some(0));
        for bad in ["08", "0x", "9x", "", "-1", "+5", "0x+5"] {
            assert_eq!(c_number(bad), None, "{bad}");
        }
    }
}
