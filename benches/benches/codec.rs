//! The codec's value decoders (`hyperion_codec::decode`), one group: each decodes 4,096
//! values per iteration and checks a checksum of what it decoded.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hyperion_codec::decode;

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
    let uuid0 = decode::uuid(&uuids[0]).expect("uuid");
    assert_eq!(uuid0, "00010203-0405-0607-0809-0a0b0c0d0e0f");
    g.bench_function("uuid", |b| {
        b.iter(|| {
            let mut dashes = 0;
            for v in &uuids {
                let s = decode::uuid(black_box(v)).expect("uuid");
                dashes += s.bytes().filter(|&c| c == b'-').count();
            }
            assert_eq!(dashes, 4 * N);
        })
    });

    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
