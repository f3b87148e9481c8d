//! SCRAM-SHA-256 client proof at 4,096 iterations (PBKDF2 dominates): `ScramSha256::with_nonce`
//! then `handle_server_first` on the RFC 7677 test vector, checked against the RFC's
//! client-final message every iteration; compared with postgres_protocol's ScramSha256 (random nonce, so
//! the server-first message is built from its client-first in the untimed setup).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hyperion_wire::auth::ScramSha256;
use postgres_protocol::authentication::sasl;

const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scram/client_proof_4096_iterations");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hyperion_wire", |b| {
        b.iter(|| {
            let mut s = ScramSha256::with_nonce(b"pencil", "user", NONCE);
            let out = s
                .handle_server_first(SERVER_FIRST.as_bytes())
                .expect("server-first");
            assert_eq!(out, CLIENT_FINAL.as_bytes());
        })
    });
    g.bench_function("postgres_protocol", |b| {
        b.iter_batched(
            || {
                let s = sasl::ScramSha256::new(b"pencil", sasl::ChannelBinding::unsupported());
                let first = std::str::from_utf8(s.message()).expect("utf8").to_owned();
                let (_, nonce) = first.split_once(",r=").expect("nonce");
                (
                    s,
                    format!(
                        "r={nonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    ),
                )
            },
            |(mut s, server_first)| {
                s.update(server_first.as_bytes()).expect("server-first");
                assert!(s.message().starts_with(b"c=biws,r="));
                s
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
