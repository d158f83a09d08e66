//! Feeds arbitrary bytes through the whole keepalived.conf pipeline: decoding (non-UTF-8
//! included), preprocessor (conditionals, parameters, ~SEQ/~LST, includes), lexer, keyword tree
//! and model builder. The machine is a `FakeHost` (no file system, no interfaces but two, a
//! fixed "random" sequence), so a run does no I/O and is deterministic. Beyond "no panic" it
//! checks that every diagnostic points at a real line of the input (or line 0 for whole-file
//! ones), that the report holds every line for their code frames, and that rendering them all
//! (as `vrrpd -t` does) works.

#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use keepalived_conf::{FakeHost, LoadOptions};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "/fuzz/keepalived.conf";

/// The machine every run sees; its "random" sequence starts again for each run.
fn host() -> &'static Arc<FakeHost> {
    static HOST: OnceLock<Arc<FakeHost>> = OnceLock::new();
    HOST.get_or_init(|| {
        Arc::new(
            FakeHost::new()
                .with_interfaces(&["eth0", "eth1"])
                .with_programs(&["/usr/bin/check"])
                .with_users(&["keepalived_script"]),
        )
    })
}

fn options() -> &'static LoadOptions {
    static OPTS: OnceLock<LoadOptions> = OnceLock::new();
    OPTS.get_or_init(|| LoadOptions {
        config_id: Some("fuzz".into()),
        host: host().clone(),
        // Three times the longest seed (152 lines) and above libFuzzer's top hit-count bucket
        // (128), so a longer `~SEQ` expansion finds nothing new, but it costs time: with
        // 20 000, the corpus filled with ever longer expansions and a 600 s run slowed from
        // 4.8k to ~1k executions per second (peak RSS 629 MB). The limit's own path is
        // exercised all the more.
        max_lines: 500,
        ..LoadOptions::default()
    })
}

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|b| *b == b'\n').count() as u32;
    // Deterministic: `${_RANDOM}` reads the same in every run of the same input.
    host().restart_random();
    let (_, report) = keepalived_conf::load_bytes_report(data, Path::new(FILE), options());
    for d in report.iter() {
        assert!(d.line <= lines, "diagnostic beyond the input: {d:?}");
    }
    // The report holds every line of the input, so each diagnostic's code frame can be shown.
    assert!(
        report.sources.line(Path::new(FILE), lines).is_some(),
        "the report lacks line {lines} of the input"
    );
    let _ = report.render();
});
