//! litefs.yml bytes → parse (env expansion on and off) → render → parse.
//! Any panic, hang or runaway allocation is a bug; the checks themselves live
//! in `litefs_config::fuzz_check_one`, shared with a `cargo test`
//! replay of the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Real configs are a few KiB; larger inputs only slow the search down.
    if data.len() <= 64 * 1024 {
        litefs_config::fuzz_check_one(data);
    }
});
