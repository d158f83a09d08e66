//! The fault matrix's CI subset (the whole: `vrrp-lab faults`, docs/FAULTS.md): faults that
//! take a few seconds each, on vrrpd and, where it applies, keepalived, with what must hold
//! afterwards. Figures (gaps, time both held) are printed, not asserted.

use lab::faults::{run, Fault, FaultRun};
use lab::{require_root, Daemon};

fn available(d: Daemon) -> bool {
    lab::e2e::available(&[d])
}

fn show(r: &FaultRun) {
    eprintln!(
        "{} {}: longest gap {:.1} ms, both held {:.0} ms, none {:.0} ms, final {}; {}\n  {:?}",
        r.fault,
        r.daemon,
        r.longest_gap_ms,
        r.both_held_ms,
        r.none_held_ms,
        r.final_holder,
        r.timeline,
        r.notes
    );
}

/// After the fault: the daemon runs and exactly one node holds the VIP.
fn settles(d: Daemon, f: Fault) -> FaultRun {
    let r = run(d, f).unwrap_or_else(|e| panic!("{} on {d}: {e}", f.name()));
    show(&r);
    assert!(r.a_running, "a's daemon is gone: {r:?}");
    assert!(
        r.final_holder == "a" || r.final_holder == "b",
        "not one holder at the end: {r:?}"
    );
    r
}

#[test]
fn kill_of_the_vrrp_process() {
    require_root!();
    if available(Daemon::Vrrpd) {
        let r = settles(Daemon::Vrrpd, Fault::KillVrrp);
        // The supervisor hands over: never both until b holds the VIP alone. (The restarted
        // child then preempts with its higher priority: there both may hold it for the moment
        // between a's taking it and b's hearing a's advert, as in any preemption.)
        let handover: Vec<&str> = r
            .timeline
            .split(", ")
            .map(|seg| seg.split(' ').next().unwrap_or(""))
            .take_while(|who| *who != "b")
            .collect();
        assert!(
            !handover.contains(&"a+b"),
            "both held during the handover: {r:?}"
        );
        assert!(
            r.timeline.contains("b "),
            "b never held the VIP alone: {r:?}"
        );
        assert!(r.both_held_ms <= 20.0, "the failback overlap: {r:?}");
    }
    if available(Daemon::Keepalived) {
        settles(Daemon::Keepalived, Fault::KillVrrp);
    }
}

#[test]
fn sigstop_2s() {
    require_root!();
    for d in [Daemon::Vrrpd, Daemon::Keepalived] {
        if available(d) {
            settles(d, Fault::Sigstop(2));
        }
    }
}

#[test]
fn vrrp_cut_3s_then_healed() {
    require_root!();
    if available(Daemon::Vrrpd) {
        settles(Daemon::Vrrpd, Fault::VrrpCut(3));
    }
}

/// A broken file on reload changes nothing: no blip, a stays the only holder.
#[test]
fn reload_with_a_broken_file() {
    require_root!();
    if available(Daemon::Vrrpd) {
        let r = settles(Daemon::Vrrpd, Fault::ReloadBroken);
        assert_eq!((r.both_held_ms, r.none_held_ms), (0.0, 0.0), "{r:?}");
        assert_eq!(r.final_holder, "a", "{r:?}");
        assert!(
            r.timeline.starts_with("a ") && !r.timeline.contains(','),
            "{r:?}"
        );
    }
}

/// A file with a stray `{` (after a keyword that takes no block, so one block is still open at
/// the end): both daemons say so and run the file as keepalived reads it, the stray brace
/// dropped, so the node becomes Master; vrrpd names file:line:col.
#[test]
fn start_with_a_broken_file() {
    require_root!();
    for d in [Daemon::Vrrpd, Daemon::Keepalived] {
        if !available(d) {
            continue;
        }
        let r = run(d, Fault::BadConfig).unwrap();
        show(&r);
        assert!(r.a_running, "{d}: {r:?}");
        assert_eq!(r.final_holder, "a", "{d}: {r:?}");
        let said = r.notes.get(1).map(String::as_str).unwrap_or("");
        assert!(said.contains("Unexpected '{'"), "{d}: {r:?}");
        if d == Daemon::Vrrpd {
            // file:line:col of the stray brace.
            let at = said.split(": warning: ").next().unwrap_or("");
            let mut pos = at.rsplit(':').map(str::parse::<u32>);
            assert!(
                at.contains("vrrpd.conf:")
                    && pos.next().is_some_and(|c| c.is_ok())
                    && pos.next().is_some_and(|l| l.is_ok()),
                "file:line:col: {r:?}"
            );
        }
    }
}
