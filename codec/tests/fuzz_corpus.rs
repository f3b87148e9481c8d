//! Replays the codec fuzz seeds (`fuzz/corpus/codec_*/`) and every saved crash
//! (`fuzz/regressions/codec_*/`) through the same checks the fuzz targets run, so a fixed
//! crash stays fixed under a plain `cargo test`, without cargo-fuzz or nightly.

#[path = "../../fuzz/codec_checks.rs"]
mod codec_checks;
#[path = "../../fuzz/replay.rs"]
mod replay;

use hyperion_codec::{encode_param, Scalar};
use replay::{fuzz_dir, inputs, target_dirs};

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = fuzz_dir().join("corpus").join(target).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_input_passes_its_target_checks() {
    let (failures, replayed) = replay::replay(codec_checks::TARGETS);
    assert!(
        failures.is_empty(),
        "inputs failing their fuzz checks: {failures:#?}"
    );
    assert!(
        replayed >= 12,
        "only {replayed} inputs found under {:?}",
        fuzz_dir()
    );
}

#[test]
fn every_target_has_seeds_and_every_directory_a_target() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let known: Vec<&str> = codec_checks::TARGETS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    for target in &known {
        assert!(
            inputs("corpus", target).len() >= 3,
            "{target} has fewer than 3 seeds"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a [[bin]] of fuzz/Cargo.toml"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
    }
    for kind in ["corpus", "regressions"] {
        for dir in target_dirs(kind)
            .into_iter()
            .filter(|d| d.starts_with("codec_"))
        {
            assert!(
                known.contains(&dir.as_str()),
                "fuzz/{kind}/{dir} is not a codec fuzz target"
            );
        }
    }
}

/// Each open finding (reported, not fixed in the codec yet) has its input saved, and that
/// input still fails the strict checks. When this fails because an input now passes, the
/// bug is fixed: remove the entry from `OPEN_FINDINGS` and drop the file's `open-` prefix.
#[test]
fn open_findings_are_saved_and_still_reproduce() {
    for (name, target) in codec_checks::OPEN_FINDINGS {
        let path = fuzz_dir()
            .join("regressions")
            .join(target)
            .join(format!("open-{name}"));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let check = codec_checks::TARGETS
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("open finding {name}: unknown target {target}"));
        let strict = std::panic::catch_unwind(|| codec_checks::strictly(|| check(&data)));
        assert!(
            strict.is_err(),
            "open finding {name} no longer reproduces: if the codec fixed it, remove it from \
             OPEN_FINDINGS and rename {} without the open- prefix",
            path.display()
        );
    }
    for (target, _) in codec_checks::TARGETS {
        for path in inputs("regressions", target) {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(name) = file.strip_prefix("open-") {
                assert!(
                    codec_checks::OPEN_FINDINGS.contains(&(name, target)),
                    "{} is not listed in OPEN_FINDINGS",
                    path.display()
                );
            }
        }
    }
}

/// `SCALARS` lists every `Scalar` variant once: this match is exhaustive, so a new variant
/// does not compile until it has a place here, and then it must be in `SCALARS` at that place.
#[test]
fn scalars_lists_every_variant() {
    fn position(s: Scalar) -> usize {
        match s {
            Scalar::Bool => 0,
            Scalar::Int2 => 1,
            Scalar::Int4 => 2,
            Scalar::Int8 => 3,
            Scalar::Oid => 4,
            Scalar::Float4 => 5,
            Scalar::Float8 => 6,
            Scalar::Numeric => 7,
            Scalar::Uuid => 8,
            Scalar::Date => 9,
            Scalar::Time => 10,
            Scalar::Timestamp => 11,
            Scalar::Timestamptz => 12,
            Scalar::Bytea => 13,
            Scalar::Jsonb => 14,
            Scalar::Json => 15,
            Scalar::Text => 16,
            Scalar::BoolText => 17,
            Scalar::IntText => 18,
            Scalar::Int8Text => 19,
            Scalar::FloatText => 20,
            Scalar::ByteaText => 21,
            Scalar::Int8Number => 22,
            Scalar::Int8TextNumber => 23,
            Scalar::Int8String => 24,
            Scalar::Int8TextString => 25,
        }
    }
    for (i, &s) in codec_checks::SCALARS.iter().enumerate() {
        assert_eq!(position(s), i, "{s:?}");
        assert_eq!(s.output(), codec_checks::expected_output(s));
    }
}

/// The seeds reach the interesting paths: values that decode, arrays that parse, parameters
/// that encode, rows whose every column decodes.
#[test]
fn seeds_cover_the_happy_paths() {
    use codec_checks::SCALARS;

    let decodes = |name: &str| {
        let data = seed("codec_scalars", name);
        let s = SCALARS[usize::from(data[0]) % SCALARS.len()];
        codec_checks::check_scalar(s, &data[1..])
            .unwrap_or_else(|e| panic!("seed {name} ({s:?}): {e}"));
    };
    for name in [
        "numeric_12345.6789",
        "numeric_negative_cut_to_dscale",
        "date_2024-02-29",
        "time_13-14-15.000016",
        "timestamp_2021-06-15",
        "timestamptz_before_2000",
        "uuid",
        "jsonb_object",
        "json_string_with_brackets",
        "text_utf8",
        "bytea_hex_text",
        "float_text_negative_infinity",
    ] {
        decodes(name);
    }
    let numeric = seed("codec_scalars", "numeric_12345.6789");
    assert_eq!(
        codec_checks::numeric_oracle(&numeric[1..]).as_deref(),
        Some("12345.6789")
    );

    let binary = seed("codec_arrays", "binary_int4_2x2_with_null");
    let a = codec_checks::check_binary_array(&binary[1..]).expect("parses");
    assert_eq!(a.dims(), &[2, 2]);
    for name in ["text_nested_quoted", "text_box_semicolon", "text_decorated"] {
        let text = seed("codec_arrays", name);
        let delim = if text[1] < 0x80 {
            text[1]
        } else {
            [b',', b';'][usize::from(text[1] & 1)]
        };
        hyperion_codec::array::parse_text_array(&text[2..], delim)
            .unwrap_or_else(|e| panic!("seed {name}: {e}"));
    }

    for name in [
        "int4_number",
        "int8_bigint_min",
        "int4_array_2x2_with_null",
        "text_array_quotes_and_null_string",
        "jsonb_from_js_array",
        "timestamptz_from_date",
        "bytea_buffer",
        "numeric_from_number",
    ] {
        let (type_oid, p) =
            codec_checks::param_input(&seed("codec_params", name)).expect("a parameter");
        let mut buf = bytes::BytesMut::new();
        assert_eq!(
            encode_param(&p, type_oid, codec_checks::types(), &mut buf),
            Ok(false),
            "seed {name}: {p:?} for {type_oid}"
        );
    }

    for name in [
        "int4_text_numeric",
        "arrays_and_jsonb",
        "learnt_enum_domain_box_array",
        "dates_and_uuid",
    ] {
        let (columns, frame) = codec_checks::row_input(&seed("codec_datarow", name)).unwrap();
        let report = codec_checks::check_row(&columns, frame, codec_checks::types())
            .unwrap_or_else(|| panic!("seed {name}: the row is refused"));
        assert_eq!(report.len(), columns.len());
        assert!(report.iter().any(Option::is_some), "seed {name}: all NULL");
        for (i, value) in report.iter().enumerate() {
            assert!(
                matches!(value, Some(Ok(())) | None),
                "seed {name}, column {i} ({:?}): {value:?}",
                columns[i]
            );
        }
    }
    let (columns, frame) =
        codec_checks::row_input(&seed("codec_datarow", "width_mismatch")).unwrap();
    assert!(codec_checks::check_row(&columns, frame, codec_checks::types()).is_none());
}

/// The JSON oracle itself: `strict_json` is RFC 8259, and `parse_json` reads what simd-json
/// alone gets wrong.
#[test]
fn the_json_oracle_follows_rfc_8259() {
    use codec_checks::{parse_json, strict_json};
    for ok in [
        "1",
        " [1, 2.5e-3, -0, \"a\\u00e9\\n\\/\", true, false, null, {}] ",
        "{\"a\":{\"b\":[]},\"c\":-1E+2}",
        "\"\"",
        "\r\n\t0.0",
    ] {
        assert!(strict_json(ok.as_bytes()), "{ok:?}");
        assert!(parse_json(ok.as_bytes()).is_some(), "{ok:?}");
    }
    for bad in [
        "",
        " ",
        "01",
        "1.",
        ".5",
        "1e",
        "+1",
        "-",
        "[1,]",
        "[,1]",
        "{\"a\"}",
        "{\"a\":1,}",
        "{1:2}",
        "[1 2]",
        "1 2",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\u{1}\"",
        "nul",
        "[}",
        "{]",
        "[",
        "]",
        "111111111111111111111.5x",
        "\u{c}1",
    ] {
        assert!(!strict_json(bad.as_bytes()), "{bad:?}");
        assert!(parse_json(bad.as_bytes()).is_none(), "{bad:?}");
    }
    assert!(!strict_json(b"\"\xff\""));
    // simd-json 0.15.1 refuses this valid integer; the oracle reads it as a double.
    assert!(parse_json(b"[-9223372036854775809]").is_some());
}
