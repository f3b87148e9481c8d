//! Replays the fuzz seeds (`fuzz/corpus/<target>/`) and every saved crash
//! (`fuzz/regressions/<target>/`) through the same checks the fuzz targets run, so a fixed
//! crash stays fixed under a plain `cargo test`, without cargo-fuzz or nightly.

#[path = "../../fuzz/checks.rs"]
mod checks;
#[path = "../../fuzz/replay.rs"]
mod replay;

use replay::{fuzz_dir, inputs, target_dirs};

#[test]
fn every_input_passes_its_target_checks() {
    let (failures, replayed) = replay::replay(checks::TARGETS);
    assert!(
        failures.is_empty(),
        "inputs failing their fuzz checks: {failures:#?}"
    );
    assert!(
        replayed >= 20,
        "only {replayed} inputs found under {:?}",
        fuzz_dir()
    );
}

#[test]
fn every_target_has_seeds_and_every_directory_a_target() {
    let known: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    for (target, _) in checks::TARGETS {
        assert!(
            inputs("corpus", target).len() >= 3,
            "{target} has fewer than 3 seeds"
        );
    }
    // The `codec_*` targets' checks live in `fuzz/codec_checks.rs`; their seeds and saved
    // crashes are replayed (and their directories checked) by `codec/tests/fuzz_corpus.rs`.
    for kind in ["corpus", "regressions"] {
        for dir in target_dirs(kind) {
            assert!(
                known.contains(&dir.as_str()) || dir.starts_with("codec_"),
                "fuzz/{kind}/{dir} is not a fuzz target"
            );
        }
    }
}

/// The seeds reach the interesting paths: a chunked parse that decodes messages, a genuine
/// server signature that is accepted, an encode that is refused.
#[test]
fn seeds_cover_the_happy_paths() {
    let seed = |target: &str, name: &str| {
        std::fs::read(fuzz_dir().join("corpus").join(target).join(name)).unwrap()
    };

    let stream = seed("backend_chunks", "query_chunks_3_7_100");
    let (messages, left) = checks::parse_one_shot(
        &stream[4..],
        hyperion_wire::backend::DEFAULT_MAX_MESSAGE_LEN,
    );
    assert_eq!(messages.len(), 6);
    assert!(messages.iter().all(|m| m.is_ok()));
    assert_eq!(left.as_deref(), Some(&[][..]));

    let mut s = hyperion_wire::auth::ScramSha256::with_nonce(
        checks::PASSWORD,
        checks::USER,
        checks::CLIENT_NONCE,
    );
    s.handle_server_first(checks::FINAL_SERVER_FIRST.as_bytes())
        .unwrap();
    s.handle_server_final(&seed("scram_server_final", "genuine"))
        .unwrap();
    assert!(s.is_done());

    let mut s = hyperion_wire::auth::ScramSha256::with_nonce(
        checks::PASSWORD,
        checks::USER,
        checks::CLIENT_NONCE,
    );
    let client_final = s
        .handle_server_first(&seed("scram_server_first", "rfc7677"))
        .unwrap();
    assert!(client_final.ends_with(b",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));

    use checks::Fe;
    let sent = checks::frontend_roundtrip_accepted(&seed("frontend_roundtrip", "extended"));
    assert!(
        matches!(
            &sent[..],
            [
                Fe::Parse { .. },
                Fe::Bind { .. },
                Fe::Execute { .. },
                Fe::Sync
            ]
        ),
        "{sent:?}"
    );
    // The big Parse, the oversized Bind counts, the NUL in a name and the failing parameter
    // are all refused; Describe and CopyFail go through.
    let sent = checks::frontend_roundtrip_accepted(&seed("frontend_roundtrip", "limits_and_nul"));
    assert!(
        matches!(&sent[..], [Fe::Describe(..), Fe::CopyFail(_)]),
        "{sent:?}"
    );
}
