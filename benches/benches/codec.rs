//! The codec's value decoders. `codec/decode`: the fixed-size and plain-text decoders of
//! `hyperion_codec::decode`, one group; then one group per decoder that builds a string or
//! walks a structure (numeric, the date/time types, uuid and text into a `String`, jsonb,
//! binary and text arrays), through `Scalar` as the JS binding calls them. Each decodes 4,096
//! values per iteration and checks a checksum of what it decoded; the input bytes are built
//! with the codec's own encoders (`numeric_from_str`, `civil_to_days`,
//! `encode_binary_array`, `write_text_array`). `codec/jsonb` also walks W3-json's documents
//! with `json::Cursor`, the general way and by kind.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hyperion_codec::array::{encode_binary_array, parse_text_array, write_text_array, BinaryArray};
use hyperion_codec::datetime::civil_to_days;
use hyperion_codec::decode;
use hyperion_codec::json::{Cursor, Flat, Token};
use hyperion_codec::numeric::numeric_from_str;
use hyperion_codec::Scalar;

const N: usize = 4096;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/decode");
    g.throughput(Throughput::Elements(N as u64));

    let int4: Vec<[u8; 4]> = (0..N as i32)
        .map(|i| (i * 7919 - 1_000_000).to_be_bytes())
        .collect();
    let int4_sum: i64 = (0..N as i64).map(|i| i * 7919 - 1_000_000).sum();
    g.bench_function("int4", |b| {
        b.iter(|| {
            let s: i64 = int4
                .iter()
                .map(|v| i64::from(decode::int4(black_box(v)).expect("int4")))
                .sum();
            assert_eq!(s, int4_sum);
        })
    });

    let int8: Vec<[u8; 8]> = (0..N as i64)
        .map(|i| (9_007_199_254_740_993 + i * 7).to_be_bytes())
        .collect();
    let int8_sum: i64 = (0..N as i64)
        .map(|i| 9_007_199_254_740_993 + i * 7)
        .fold(0i64, i64::wrapping_add);
    g.bench_function("int8", |b| {
        b.iter(|| {
            let s = int8.iter().fold(0i64, |a, v| {
                a.wrapping_add(decode::int8(black_box(v)).expect("int8"))
            });
            assert_eq!(s, int8_sum);
        })
    });

    let int2: Vec<[u8; 2]> = (0..N as i16).map(|i| (i - 2000).to_be_bytes()).collect();
    let int2_sum: i64 = (0..N as i64).map(|i| i - 2000).sum();
    g.bench_function("int2", |b| {
        b.iter(|| {
            let s: i64 = int2
                .iter()
                .map(|v| i64::from(decode::int2(black_box(v)).expect("int2")))
                .sum();
            assert_eq!(s, int2_sum);
        })
    });

    let float8: Vec<[u8; 8]> = (0..N).map(|i| (i as f64 + 0.25).to_be_bytes()).collect();
    let float8_sum: f64 = (0..N).map(|i| i as f64 + 0.25).sum();
    g.bench_function("float8", |b| {
        b.iter(|| {
            let s: f64 = float8
                .iter()
                .map(|v| decode::float8(black_box(v)).expect("float8"))
                .sum();
            assert_eq!(s, float8_sum);
        })
    });

    let float4: Vec<[u8; 4]> = (0..N).map(|i| (i as f32 + 0.5).to_be_bytes()).collect();
    let float4_sum: f64 = (0..N).map(|i| f64::from(i as f32 + 0.5)).sum();
    g.bench_function("float4", |b| {
        b.iter(|| {
            let s: f64 = float4
                .iter()
                .map(|v| f64::from(decode::float4(black_box(v)).expect("float4")))
                .sum();
            assert_eq!(s, float4_sum);
        })
    });

    let bools: Vec<[u8; 1]> = (0..N).map(|i| [(i % 3 == 0) as u8]).collect();
    let trues = (0..N).filter(|i| i % 3 == 0).count();
    g.bench_function("bool", |b| {
        b.iter(|| {
            let s = bools
                .iter()
                .filter(|v| decode::bool_binary(black_box(&v[..])).expect("bool"))
                .count();
            assert_eq!(s, trues);
        })
    });

    let bool_text: Vec<&[u8]> = (0..N)
        .map(|i| if i % 3 == 0 { &b"t"[..] } else { &b"f"[..] })
        .collect();
    g.bench_function("bool_text", |b| {
        b.iter(|| {
            let s = bool_text
                .iter()
                .filter(|v| decode::bool_text(black_box(v)).expect("bool"))
                .count();
            assert_eq!(s, trues);
        })
    });

    let int_text: Vec<String> = (0..N as i64)
        .map(|i| (i * 7919 - 1_000_000).to_string())
        .collect();
    g.bench_function("int_text", |b| {
        b.iter(|| {
            let s: i64 = int_text
                .iter()
                .map(|v| decode::int_text(black_box(v.as_bytes())).expect("int"))
                .sum();
            assert_eq!(s, int4_sum);
        })
    });

    let float_text: Vec<String> = (0..N).map(|i| format!("{}", i as f64 + 0.25)).collect();
    g.bench_function("float_text", |b| {
        b.iter(|| {
            let s: f64 = float_text
                .iter()
                .map(|v| decode::float_text(black_box(v.as_bytes())).expect("float"))
                .sum();
            assert_eq!(s, float8_sum);
        })
    });

    let text: Vec<String> = (0..N).map(|i| format!("text-value-{i:09}")).collect();
    let text_len: usize = text.iter().map(String::len).sum();
    g.bench_function("text", |b| {
        b.iter(|| {
            let s: usize = text
                .iter()
                .map(|v| decode::text(black_box(v.as_bytes())).expect("text").len())
                .sum();
            assert_eq!(s, text_len);
        })
    });

    let uuids: Vec<[u8; 16]> = (0..N)
        .map(|i| std::array::from_fn(|k| (i as u8).wrapping_mul(31).wrapping_add(k as u8)))
        .collect();
    let mut uuid0 = String::new();
    decode::uuid_into(&uuids[0], &mut uuid0).expect("uuid");
    assert_eq!(uuid0, "00010203-0405-0607-0809-0a0b0c0d0e0f");
    g.bench_function("uuid", |b| {
        let mut s = String::with_capacity(36);
        b.iter(|| {
            let mut dashes = 0;
            for v in &uuids {
                s.clear();
                decode::uuid_into(black_box(v), &mut s).expect("uuid");
                dashes += s.bytes().filter(|&c| c == b'-').count();
            }
            assert_eq!(dashes, 4 * N);
        })
    });

    g.finish();
}

/// Decodes every value of `values` with `s` into one reused `String`, as a result column is
/// built, and checks the total length.
fn decode_strings(s: Scalar, values: &[Vec<u8>], out: &mut String, total: usize) {
    out.clear();
    for v in values {
        s.decode_str(black_box(v), out).expect("decodes");
    }
    assert_eq!(out.len(), total);
}

/// The length of all of `values` decoded with `s`, and the first one, for the checks.
fn expected(s: Scalar, values: &[Vec<u8>]) -> (usize, String) {
    let mut out = String::new();
    let mut first = String::new();
    s.decode_str(&values[0], &mut first).expect("decodes");
    for v in values {
        s.decode_str(v, &mut out).expect("decodes");
    }
    (out.len(), first)
}

/// One group per string decoder: `values` decoded with `s`; `first` is what the first value
/// must decode to.
fn string_group(
    c: &mut Criterion,
    group: &str,
    name: &str,
    s: Scalar,
    values: &[Vec<u8>],
    first: &str,
) {
    let (total, got_first) = expected(s, values);
    assert_eq!(got_first, first, "{group}/{name}");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(values.len() as u64));
    let mut out = String::with_capacity(total);
    g.bench_function(name, |b| {
        b.iter(|| decode_strings(s, values, &mut out, total))
    });
    g.finish();
}

fn numeric(c: &mut Criterion) {
    // numeric(12,2): up to ten integer digits and two decimals, e.g. prices and balances.
    let small: Vec<Vec<u8>> = (0..N as u64)
        .map(|i| {
            let cents = 1_234_567_891 + i * 7_919_993;
            numeric_from_str(&format!("{}.{:02}", cents / 100, cents % 100)).expect("numeric")
        })
        .collect();
    // 40 significant digits, 20 after the point.
    let wide: Vec<Vec<u8>> = (0..N as u64)
        .map(|i| {
            let text = format!(
                "{:020}.{:020}",
                12_345_678_901_234_567_890u64 - i,
                i * 104_729 + 1
            );
            numeric_from_str(&text).expect("numeric")
        })
        .collect();
    let mut g = c.benchmark_group("codec/numeric");
    g.throughput(Throughput::Elements(N as u64));
    for (name, values, first) in [
        ("12.2", &small, "12345678.91"),
        (
            "40_digits",
            &wide,
            "12345678901234567890.00000000000000000001",
        ),
    ] {
        let (total, got_first) = expected(Scalar::Numeric, values);
        assert_eq!(got_first, first);
        let mut out = String::with_capacity(total);
        g.bench_function(name, |b| {
            b.iter(|| decode_strings(Scalar::Numeric, values, &mut out, total))
        });
    }
    g.finish();
}

fn datetimes(c: &mut Criterion) {
    const USECS_PER_DAY: i64 = 86_400_000_000;
    // Consecutive days from 2020-01-01, and times of day spread over the day.
    let day0 = civil_to_days(2020, 1, 1);
    let dates: Vec<Vec<u8>> = (0..N as i64)
        .map(|i| ((day0 + i) as i32).to_be_bytes().to_vec())
        .collect();
    string_group(c, "codec/date", "date", Scalar::Date, &dates, "2020-01-01");

    let times: Vec<Vec<u8>> = (0..N as i64)
        .map(|i| {
            (i * (USECS_PER_DAY / N as i64) + 123_456)
                .to_be_bytes()
                .to_vec()
        })
        .collect();
    string_group(
        c,
        "codec/time",
        "time",
        Scalar::Time,
        &times,
        "00:00:00.123456",
    );

    // One value every 17 minutes and a few microseconds from 2023-11-14 22:13:20.
    let start = civil_to_days(2023, 11, 14) * USECS_PER_DAY + 80_000_000_000;
    let stamps: Vec<Vec<u8>> = (0..N as i64)
        .map(|i| (start + i * 1_020_000_123).to_be_bytes().to_vec())
        .collect();
    string_group(
        c,
        "codec/timestamp",
        "timestamp",
        Scalar::Timestamp,
        &stamps,
        "2023-11-14T22:13:20.000000",
    );
    string_group(
        c,
        "codec/timestamptz",
        "timestamptz",
        Scalar::Timestamptz,
        &stamps,
        "2023-11-14T22:13:20.000000Z",
    );
}

fn uuid_and_text(c: &mut Criterion) {
    let uuids: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let a: [u8; 16] =
                std::array::from_fn(|k| (i as u8).wrapping_mul(31).wrapping_add(k as u8));
            a.to_vec()
        })
        .collect();
    string_group(
        c,
        "codec/uuid_str",
        "uuid_into_string",
        Scalar::Uuid,
        &uuids,
        "00010203-0405-0607-0809-0a0b0c0d0e0f",
    );

    // Mostly ASCII, some Latin-1 and CJK, 20-40 bytes.
    let words = [
        "Zürich",
        "München",
        "東京",
        "São Paulo",
        "Reykjavík",
        "Springfield",
    ];
    let texts: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("customer {i:05} – {}", words[i % words.len()]).into_bytes())
        .collect();
    string_group(
        c,
        "codec/text_str",
        "text_into_string",
        Scalar::Text,
        &texts,
        "customer 00000 – Zürich",
    );
}

fn jsonb(c: &mut Criterion) {
    // jsonb in binary: version 1, then the text; about 60 bytes each.
    let values: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let text = format!(
                "{{\"id\": {}, \"sku\": \"WX-{:05}\", \"tags\": [\"a\", \"b\"], \"ok\": true}}",
                100_000 + i,
                i
            );
            [&[1u8][..], text.as_bytes()].concat()
        })
        .collect();
    let total: usize = values.iter().map(|v| v.len() - 1).sum();
    assert!(
        (55..=65).contains(&(values[0].len() - 1)),
        "{}",
        values[0].len()
    );
    let mut g = c.benchmark_group("codec/jsonb");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("decode_json", |b| {
        b.iter(|| {
            let s: usize = values
                .iter()
                .map(|v| {
                    Scalar::Jsonb
                        .decode_json(black_box(v))
                        .expect("jsonb")
                        .len()
                })
                .sum();
            assert_eq!(s, total);
        })
    });

    // W3-json's documents as the server writes them (nested objects and arrays, floats,
    // nulls; about 220 bytes each), walked in full by `json::Cursor` two ways: the general
    // way (`value`, `key`, `item`), and the way the addon reads a column of documents of
    // one shape (the next byte and the place's kind choose the reader, keys compared in
    // place). Both sum the numbers and the strings' lengths.
    let docs: Vec<String> = (1..=N as i64).map(w3_doc).collect();
    let shape = w3_shape();
    let sum_of = |by_kind: fn(&mut Cursor<'_>, &Shape) -> Option<f64>| {
        docs.iter().fold(0.0, |a, d| {
            let mut c = Cursor::new(black_box(d));
            a + by_kind(&mut c, &shape).expect("a document of the shape")
        })
    };
    let want = sum_of(walk::<false>);
    assert_eq!(sum_of(walk::<true>), want);
    g.throughput(Throughput::Bytes(docs.iter().map(|d| d.len() as u64).sum()));
    g.bench_function("cursor_general", |b| {
        b.iter(|| assert_eq!(sum_of(walk::<false>), want))
    });
    g.bench_function("cursor_by_kind", |b| {
        b.iter(|| assert_eq!(sum_of(walk::<true>), want))
    });
    g.finish();
}

/// Document `i` of W3-json (benches/node/lib/workloads.js), in jsonb's text form.
fn w3_doc(i: i64) -> String {
    let null_or = |null: bool, v: String| if null { "null".to_string() } else { v };
    format!(
        "{{\"id\": {i}, \"meta\": {{\"path\": [{{\"k\": {}, \"v\": {}}}], \"depth\": {}, \"flags\": {{\"a\": {}, \"b\": null}}, \"ratio\": {}, \"parent\": {}}}, \"note\": {}, \"tags\": [\"t{}\", \"t{}\", {}], \"score\": {}, \"active\": {}}}",
        i % 5,
        -(i as f64) * 0.5,
        i % 4,
        i % 2 == 1,
        i as f64 / 8.0,
        null_or(i % 3 == 0, (i - 1).to_string()),
        null_or(i % 5 == 0, format!("\"note {i}\"")),
        i % 7,
        i % 11,
        i % 13,
        i as f64 * 1.1,
        i % 2 == 0,
    )
}

/// The shape of [`w3_doc`]'s documents: the kind at each place (a null may stand anywhere).
enum Shape {
    Num,
    Str,
    Bool,
    Null,
    Obj(Vec<(&'static str, Shape)>),
    Arr(Vec<Shape>),
}

fn w3_shape() -> Shape {
    use Shape::*;
    let path = Arr(vec![Obj(vec![("k", Num), ("v", Num)])]);
    let flags = Obj(vec![("a", Bool), ("b", Null)]);
    let meta = Obj(vec![
        ("path", path),
        ("depth", Num),
        ("flags", flags),
        ("ratio", Num),
        ("parent", Num),
    ]);
    Obj(vec![
        ("id", Num),
        ("meta", meta),
        ("note", Str),
        ("tags", Arr(vec![Str, Str, Num])),
        ("score", Num),
        ("active", Bool),
    ])
}

/// Reads a document of `shape` whole, summing its numbers and its strings' lengths. `BY_KIND`:
/// as the addon reads a json column of documents of one shape (`peek`, then the reader for
/// the place's kind; `known_key` compares in place); else the general way it read them
/// before (`value`'s token matched on, each key scanned by `key` and then compared).
fn walk<const BY_KIND: bool>(c: &mut Cursor<'_>, shape: &Shape) -> Option<f64> {
    if BY_KIND {
        if c.peek()? == b'n' {
            c.null()?;
            return Some(0.0);
        }
        match shape {
            Shape::Num => return c.number(),
            Shape::Str => return Some(c.string()?.len() as f64),
            Shape::Bool => return c.boolean().map(|_| 0.0),
            Shape::Null => return None,
            Shape::Obj(_) => c.open(b'{')?,
            Shape::Arr(_) => c.open(b'[')?,
        }
    } else {
        match (c.value()?, shape) {
            (Token::Scalar(Flat::Null), _) => return Some(0.0),
            (Token::Scalar(Flat::Number(x)), Shape::Num) => return Some(x),
            (Token::Scalar(Flat::Str(s)), Shape::Str) => return Some(s.len() as f64),
            (Token::Scalar(Flat::Bool(_)), Shape::Bool) => return Some(0.0),
            (Token::Object, Shape::Obj(_)) | (Token::Array, Shape::Arr(_)) => {}
            _ => return None,
        }
    }
    let mut s = 0.0;
    match shape {
        Shape::Obj(members) => {
            for (i, (k, m)) in members.iter().enumerate() {
                if BY_KIND {
                    c.known_key(i == 0, k)?;
                } else if c.key(i == 0)? != Some(*k) {
                    return None;
                }
                s += walk::<BY_KIND>(c, m)?;
            }
            c.key(members.is_empty())?.is_none().then_some(s)
        }
        Shape::Arr(items) => {
            for (i, m) in items.iter().enumerate() {
                if !c.item(i == 0)? {
                    return None;
                }
                s += walk::<BY_KIND>(c, m)?;
            }
            (!c.item(items.is_empty())?).then_some(s)
        }
        _ => None,
    }
}

fn arrays(c: &mut Criterion) {
    // int4[] of 10 elements in binary, as array_send writes them.
    let int_arrays: Vec<Vec<u8>> = (0..N as i32)
        .map(|i| {
            let elements: Vec<[u8; 4]> =
                (0..10).map(|k| (i * 10 + k - 5000).to_be_bytes()).collect();
            let refs: Vec<Option<&[u8]>> = elements.iter().map(|e| Some(&e[..])).collect();
            let mut out = Vec::new();
            encode_binary_array(23, &[10], &refs, &mut out);
            out
        })
        .collect();
    let int_sum: i64 = (0..N as i64 * 10).map(|v| v - 5000).sum();
    let mut g = c.benchmark_group("codec/int4_array");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("binary_10_parse_iter", |b| {
        b.iter(|| {
            let mut s = 0i64;
            for raw in &int_arrays {
                let a = BinaryArray::parse(black_box(raw)).expect("int4[]");
                for e in a.elements() {
                    s += i64::from(decode::int4(e.expect("not NULL")).expect("int4"));
                }
            }
            assert_eq!(s, int_sum);
        })
    });
    g.finish();

    // text[] of 10 strings in the text format (every element quoted, one with a quote).
    let text_arrays: Vec<String> = (0..N)
        .map(|i| {
            let strings: Vec<String> = (0..10)
                .map(|k| match k {
                    3 => format!("say \"hi\" {i}"),
                    7 => format!("a, b {i}"),
                    _ => format!("item-{i}-{k}"),
                })
                .collect();
            let refs: Vec<Option<&str>> = strings.iter().map(|s| Some(s.as_str())).collect();
            let mut out = String::new();
            write_text_array(&[10], &refs, b',', &mut out);
            out
        })
        .collect();
    let text_len: usize = text_arrays
        .iter()
        .map(|t| {
            let a = parse_text_array(t.as_bytes(), b',').expect("text[]");
            a.elements()
                .iter()
                .map(|e| e.as_deref().map_or(0, str::len))
                .sum::<usize>()
        })
        .sum();
    let mut g = c.benchmark_group("codec/text_array");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("text_10_parse", |b| {
        b.iter(|| {
            let mut s = 0usize;
            for t in &text_arrays {
                let a = parse_text_array(black_box(t.as_bytes()), b',').expect("text[]");
                assert_eq!(a.len(), 10);
                s += a
                    .elements()
                    .iter()
                    .map(|e| e.as_deref().map_or(0, str::len))
                    .sum::<usize>();
            }
            assert_eq!(s, text_len);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench,
    numeric,
    datetimes,
    uuid_and_text,
    jsonb,
    arrays
);
criterion_main!(benches);
