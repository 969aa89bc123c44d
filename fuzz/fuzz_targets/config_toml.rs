//! The TOML config (`mpic_node::config`): parsing and validation of arbitrary text never panic,
//! and a config that validates once validates again from the same text (no hidden state).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mpic_node::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A base directory that does not exist: validation resolves paths, it must not read them.
    let base = Path::new("/nonexistent/mpic-fuzz");
    let first = Config::from_toml_str(text, base);
    let second = Config::from_toml_str(text, base);
    assert_eq!(first.is_ok(), second.is_ok());
});
