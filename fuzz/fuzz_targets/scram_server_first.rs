//! Fuzz target `scram_server_first`: the checks live in `../checks.rs`, shared with the corpus replay
//! test (`wire/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::scram_server_first(data));
