//! Backend framing + decoding of a realistic result stream: RowDescription, 10,000 DataRows,
//! CommandComplete, ReadyForQuery. Whole (one buffer) and in 4 KiB chunks (as socket reads
//! arrive), compared with `postgres_protocol::message::backend::Message::parse` on the same
//! bytes. Both sides walk every column of every row, and every iteration checks the row count
//! and a checksum of the values.

use bytes::{BufMut, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fallible_iterator::FallibleIterator;
use hyperion_wire::backend::{split_frame, Message, DEFAULT_MAX_MESSAGE_LEN};
use postgres_protocol::message::backend as pp;

const ROWS: usize = 10_000;
const CHUNK: usize = 4096;

fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(body);
}

/// What a correct pass over the stream must find.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    fields: usize,
    rows: usize,
    nulls: usize,
    value_bytes: usize,
    id_sum: i64,
    complete: usize,
    ready: usize,
}

/// `select id, label, amount, created_at, big, uid, flag, note` shaped rows: binary int4,
/// int8, uuid and bool; text label, numeric, timestamptz and a nullable note.
fn stream() -> (Vec<u8>, Tally) {
    let cols: [(&str, u32, i16); 8] = [
        ("id", 23, 1),
        ("label", 25, 0),
        ("amount", 1700, 0),
        ("created_at", 1184, 0),
        ("big", 20, 1),
        ("uid", 2950, 1),
        ("flag", 16, 1),
        ("note", 25, 0),
    ];
    let mut out = Vec::new();
    let mut t = Tally {
        fields: cols.len(),
        ..Tally::default()
    };
    let mut body = BytesMut::new();
    body.put_i16(cols.len() as i16);
    for (i, (name, oid, format)) in cols.iter().enumerate() {
        body.put_slice(name.as_bytes());
        body.put_u8(0);
        body.put_u32(16_384);
        body.put_i16(i as i16 + 1);
        body.put_u32(*oid);
        body.put_i16(-1);
        body.put_i32(-1);
        body.put_i16(*format);
    }
    message(&mut out, b'T', &body);
    for i in 0..ROWS as i32 {
        let label = format!("label-{i}");
        let amount = format!("{}.25", i % 1000);
        let created = format!(
            "2024-01-{:02} 12:{:02}:{:02}+00",
            1 + i % 28,
            i % 60,
            (i / 60) % 60
        );
        let note = (i % 7 != 0).then(|| format!("note text for row {i}"));
        let values: [Option<Vec<u8>>; 8] = [
            Some(i.to_be_bytes().to_vec()),
            Some(label.into_bytes()),
            Some(amount.into_bytes()),
            Some(created.into_bytes()),
            Some(
                (9_007_199_254_740_993i64 + i64::from(i))
                    .to_be_bytes()
                    .to_vec(),
            ),
            Some(
                (0..16)
                    .map(|k| (i as u8).wrapping_mul(31).wrapping_add(k))
                    .collect(),
            ),
            Some(vec![(i % 2) as u8]),
            note.map(String::into_bytes),
        ];
        let mut body = BytesMut::new();
        body.put_i16(values.len() as i16);
        for v in &values {
            match v {
                Some(v) => {
                    body.put_i32(v.len() as i32);
                    body.put_slice(v);
                    t.value_bytes += v.len();
                }
                None => {
                    body.put_i32(-1);
                    t.nulls += 1;
                }
            }
        }
        message(&mut out, b'D', &body);
        t.rows += 1;
        t.id_sum += i64::from(i);
    }
    message(&mut out, b'C', b"SELECT 10000\0");
    message(&mut out, b'Z', b"I");
    t.complete = 1;
    t.ready = 1;
    (out, t)
}

fn drain_ours(buf: &mut BytesMut, t: &mut Tally) {
    while let Some((tag, body)) = split_frame(buf, DEFAULT_MAX_MESSAGE_LEN).expect("framing") {
        match Message::decode(tag, body).expect("decoding") {
            Message::DataRow(row) => {
                t.rows += 1;
                let mut first = true;
                for v in row.values() {
                    match v {
                        Some(v) => {
                            if first {
                                t.id_sum +=
                                    i64::from(i32::from_be_bytes(v.try_into().expect("int4")));
                            }
                            t.value_bytes += v.len();
                        }
                        None => t.nulls += 1,
                    }
                    first = false;
                }
            }
            Message::RowDescription(fields) => t.fields = fields.len(),
            Message::CommandComplete { .. } => t.complete += 1,
            Message::ReadyForQuery { .. } => t.ready += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn drain_pp(buf: &mut BytesMut, t: &mut Tally) {
    while let Some(msg) = pp::Message::parse(buf).expect("parse") {
        match msg {
            pp::Message::DataRow(row) => {
                t.rows += 1;
                let data = row.buffer();
                let mut ranges = row.ranges();
                let mut first = true;
                while let Some(r) = ranges.next().expect("row") {
                    match r {
                        Some(r) => {
                            if first {
                                t.id_sum += i64::from(i32::from_be_bytes(
                                    data[r.clone()].try_into().expect("int4"),
                                ));
                            }
                            t.value_bytes += r.len();
                        }
                        None => t.nulls += 1,
                    }
                    first = false;
                }
            }
            pp::Message::RowDescription(body) => t.fields = body.fields().count().expect("fields"),
            pp::Message::CommandComplete(_) => t.complete += 1,
            pp::Message::ReadyForQuery(_) => t.ready += 1,
            _ => panic!("unexpected message"),
        }
    }
}

fn whole(expect: Tally, drain: fn(&mut BytesMut, &mut Tally)) -> impl FnMut(BytesMut) {
    move |mut buf| {
        let mut t = Tally::default();
        drain(&mut buf, &mut t);
        assert_eq!(t, expect);
        assert!(buf.is_empty());
    }
}

fn chunked(bytes: &[u8], expect: Tally, drain: fn(&mut BytesMut, &mut Tally)) {
    let mut buf = BytesMut::with_capacity(2 * CHUNK);
    let mut t = Tally::default();
    for chunk in bytes.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        drain(&mut buf, &mut t);
    }
    assert_eq!(t, expect);
    assert!(buf.is_empty());
    black_box(&t);
}

fn bench(c: &mut Criterion) {
    let (bytes, expect) = stream();
    let mut g = c.benchmark_group("backend/10k_rows");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("hyperion_wire/whole", |b| {
        b.iter_batched(
            || BytesMut::from(&bytes[..]),
            whole(expect, drain_ours),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("postgres_protocol/whole", |b| {
        b.iter_batched(
            || BytesMut::from(&bytes[..]),
            whole(expect, drain_pp),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("hyperion_wire/4KiB_chunks", |b| {
        b.iter(|| chunked(&bytes, expect, drain_ours))
    });
    g.bench_function("postgres_protocol/4KiB_chunks", |b| {
        b.iter(|| chunked(&bytes, expect, drain_pp))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
