//! Fuzz target `codec_params`: the checks live in `../codec_checks.rs`, shared with the corpus replay
//! test (`codec/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../codec_checks.rs"]
mod codec_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| codec_checks::codec_params(data));
