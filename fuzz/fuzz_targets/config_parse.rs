//! Feeds arbitrary text through the whole keepalived.conf pipeline: preprocessor (conditionals,
//! parameters, ~SEQ/~LST), lexer, keyword tree and model builder. Beyond "no panic" it checks
//! that every diagnostic points at a real line of the input (or line 0 for whole-file ones).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Includes would read the file system: keep the fuzzer inside the input.
    if text.contains("include") {
        return;
    }
    let lines = text.split('\n').count() as u32;
    let (_, diags) = keepalived_conf::load_str(text, Path::new("/nonexistent/fuzz.conf"));
    for d in &diags {
        assert!(d.line <= lines, "diagnostic beyond the input: {d:?}");
    }
});
