//! The properties the fuzz targets check, kept in one place.
//!
//! Both the targets in `fuzz_targets/` and the corpus replay test `wire/tests/fuzz_corpus.rs`
//! include this file with `#[path]`, so a seed or a saved crash is replayed by a plain
//! `cargo test` against exactly the checks the fuzzer ran. Only `hyperion-wire` and `bytes`
//! are used, which both crates have.
#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyperion_wire::auth::scram::{ScramError, ScramSha256, MAX_ITERATIONS};
use hyperion_wire::backend::{
    frame_len, split_frame, DataRowBody, Message, ProtocolError, DEFAULT_MAX_MESSAGE_LEN,
    STARTUP_MAX_MESSAGE_LEN,
};
use hyperion_wire::frontend::{self, EncodeError, IsNull, Target};

/// A fuzz target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every target by name, for the replay test.
pub const TARGETS: &[(&str, Check)] = &[
    ("backend_decode", backend_decode),
    ("backend_chunks", backend_chunks),
    ("scram_server_first", scram_server_first),
    ("scram_server_final", scram_server_final),
    ("frontend_roundtrip", frontend_roundtrip),
];

// --- backend: framing and decoding -------------------------------------------------------------

/// `split_frame` + `Message::decode` over the whole input, under the default cap and the small
/// startup cap. Framing must agree with `frame_len`, never consume bytes on error, and never
/// return a frame over the cap. Decoding errors skip the frame (framing is still sound) so the
/// rest of the input is decoded too.
pub fn backend_decode(data: &[u8]) {
    for cap in [DEFAULT_MAX_MESSAGE_LEN, STARTUP_MAX_MESSAGE_LEN] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            let total = frame_len(&buf);
            match split_frame(&mut buf, cap) {
                Err(e) => {
                    assert_eq!(buf.len(), before, "a framing error consumed bytes: {e}");
                    break;
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "an incomplete frame consumed bytes");
                    if before >= 5 {
                        let total = total.expect("a valid header has a frame length");
                        assert!(
                            total > before,
                            "a whole frame ({total} of {before}) was not split"
                        );
                    }
                    break;
                }
                Ok(Some((tag, body))) => {
                    let used = before - buf.len();
                    assert_eq!(total, Some(used), "frame_len disagrees with split_frame");
                    assert_eq!(used, body.len() + 5);
                    assert!(body.len() + 4 <= cap, "a frame over the cap was accepted");
                    let _ = decode_checked(tag, body);
                }
            }
        }
    }
}

/// `Message::decode` plus the invariants of what it returns.
pub fn decode_checked(tag: u8, body: Bytes) -> Result<Message, ProtocolError> {
    let result = Message::decode(tag, body.clone());
    match &result {
        Ok(Message::DataRow(row)) => check_data_row(row, &body),
        Ok(Message::RowDescription(fields)) => assert!(fields.len() <= body.len() / 19),
        Ok(Message::BackendKeyData { secret_key, .. }) => {
            assert!((4..=256).contains(&secret_key.len()))
        }
        Ok(_) => {}
        Err(e) => assert!(!e.0.is_empty(), "an error without a message"),
    }
    result
}

/// A decoded DataRow: `values()` and `ranges()` agree, every range is inside the frame, and
/// the columns tile the frame exactly.
fn check_data_row(row: &DataRowBody, body: &Bytes) {
    assert_eq!(row.frame(), body);
    let values: Vec<Option<&[u8]>> = row.values().collect();
    let ranges: Vec<_> = row.ranges().collect();
    assert_eq!(values.len(), row.len());
    assert_eq!(ranges.len(), row.len());
    assert_eq!(row.is_empty(), values.is_empty());
    assert_eq!(row.values().size_hint(), (row.len(), Some(row.len())));
    let mut offset = 2;
    for (value, range) in values.iter().zip(&ranges) {
        offset += 4;
        match (value, range) {
            (None, None) => {}
            (Some(v), Some(r)) => {
                assert_eq!(r.start, offset, "a range does not start after its length");
                assert_eq!(&row.frame()[r.clone()], *v);
                offset += v.len();
            }
            _ => panic!("values() and ranges() disagree on NULL"),
        }
    }
    assert_eq!(
        offset,
        row.frame().len(),
        "the columns do not tile the frame"
    );
}

/// Decoded messages up to and including the first error, and the bytes left over (`None`
/// once an error stopped the parse).
pub type Parse = (Vec<Result<Message, ProtocolError>>, Option<Vec<u8>>);

/// Splits and decodes whatever whole frames `buf` holds; true if an error stopped it.
fn drain(buf: &mut BytesMut, cap: usize, out: &mut Vec<Result<Message, ProtocolError>>) -> bool {
    loop {
        match split_frame(buf, cap) {
            Ok(None) => return false,
            Ok(Some((tag, body))) => {
                let decoded = decode_checked(tag, body);
                let failed = decoded.is_err();
                out.push(decoded);
                if failed {
                    return true;
                }
            }
            Err(e) => {
                out.push(Err(e));
                return true;
            }
        }
    }
}

pub fn parse_one_shot(stream: &[u8], cap: usize) -> Parse {
    let mut buf = BytesMut::from(stream);
    let mut out = vec![];
    let failed = drain(&mut buf, cap, &mut out);
    (out, (!failed).then(|| buf.to_vec()))
}

/// The same stream fed in chunks of `sizes` bytes (cycled), parsing after every chunk as the
/// connection does after every read.
pub fn parse_chunked(stream: &[u8], sizes: &[usize], cap: usize) -> Parse {
    let mut buf = BytesMut::new();
    let mut out = vec![];
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if drain(&mut buf, cap, &mut out) {
            return (out, None);
        }
    }
    (out, Some(buf.to_vec()))
}

/// The first byte chooses the chunking: its low 3 bits how many chunk-size bytes follow (none:
/// one byte at a time), its high bit the startup cap instead of the default one. The rest is
/// the stream, fed in those chunks; the messages and errors must equal a one-shot parse.
pub fn backend_chunks(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let cap = if control & 0x80 != 0 {
        STARTUP_MAX_MESSAGE_LEN
    } else {
        DEFAULT_MAX_MESSAGE_LEN
    };
    let (size_bytes, stream) = rest.split_at(usize::from(control & 0x07).min(rest.len()));
    let sizes: Vec<usize> = if size_bytes.is_empty() {
        vec![1]
    } else {
        size_bytes.iter().map(|&b| usize::from(b) + 1).collect()
    };
    let one_shot = parse_one_shot(stream, cap);
    let chunked = parse_chunked(stream, &sizes, cap);
    assert_eq!(
        chunked, one_shot,
        "chunks {sizes:?} disagree with a one-shot parse"
    );
}

// --- SCRAM ---------------------------------------------------------------------------------

/// The client side of the RFC 7677 example.
pub const PASSWORD: &[u8] = b"pencil";
pub const USER: &str = "user";
pub const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";

/// Iteration counts in `(FUZZ_MAX_ITERATIONS, MAX_ITERATIONS]` are skipped: each iteration is
/// an HMAC, so a count near the cap costs most of a second per input and would stall the
/// fuzzer. Refusing counts over the cap is cheap and still fuzzed; the cap itself has unit
/// tests.
pub const FUZZ_MAX_ITERATIONS: u32 = 4096;

fn iteration_count(data: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(data).ok()?;
    text.split(',').nth(2)?.strip_prefix("i=")?.parse().ok()
}

/// The input as a server-first message. Accepted only if it is well formed, its nonce extends
/// ours with printable characters, and its iteration count is allowed; then the client-final
/// echoes that nonce with a proof, and the exchange refuses a second server-first.
pub fn scram_server_first(data: &[u8]) {
    if iteration_count(data).is_some_and(|i| i > FUZZ_MAX_ITERATIONS && i <= MAX_ITERATIONS) {
        return;
    }
    let mut s = ScramSha256::with_nonce(PASSWORD, USER, CLIENT_NONCE);
    assert_eq!(
        s.client_first(),
        format!("n,,n={USER},r={CLIENT_NONCE}").into_bytes()
    );
    match s.handle_server_first(data) {
        Ok(client_final) => {
            let text =
                std::str::from_utf8(data).expect("accepted a server-first that is not UTF-8");
            let mut parts = text.split(',');
            let nonce = parts
                .next()
                .and_then(|p| p.strip_prefix("r="))
                .expect("accepted a server-first without r=");
            assert!(nonce.len() > CLIENT_NONCE.len() && nonce.starts_with(CLIENT_NONCE));
            assert!(nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            assert!(parts.next().is_some_and(|p| p.starts_with("s=")));
            let iterations: u32 = parts
                .next()
                .and_then(|p| p.strip_prefix("i="))
                .and_then(|i| i.parse().ok())
                .expect("accepted a server-first without a valid i=");
            assert!((1..=MAX_ITERATIONS).contains(&iterations));
            let client_final = String::from_utf8(client_final).expect("client-final is UTF-8");
            let (head, proof) = client_final
                .rsplit_once(",p=")
                .expect("client-final has a proof");
            assert_eq!(head, format!("c=biws,r={nonce}"));
            assert_eq!(proof.len(), 44, "a SHA-256 proof is 44 base64 characters");
            assert_eq!(s.handle_server_first(data), Err(ScramError::OutOfOrder));
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // A refused server-first leaves the exchange where it was.
            assert_eq!(
                s.handle_server_final(b"v=AAAA"),
                Err(ScramError::OutOfOrder)
            );
        }
    }
    assert!(!s.is_done());
}

/// A fixed exchange (the RFC 7677 example with 2 iterations, so each input is cheap); the
/// expected values were computed independently with Python's hashlib.
pub const FINAL_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2";
pub const FINAL_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=+8IuI+Z9YyDzU8xInNL2c22amQl0062aatEYJyAY3k4=";
pub const FINAL_SERVER_SIGNATURE: &str = "ndAdrh5TECKakHzPBk4un3277PJn0A8uU1LbVR2ya5w=";

/// The input as the server-final message after a valid server-first: accepted exactly when its
/// first attribute is `v=` with the right signature (canonical base64), never otherwise;
/// `e=...` is reported as the server's error.
pub fn scram_server_final(data: &[u8]) {
    let mut s = ScramSha256::with_nonce(PASSWORD, USER, CLIENT_NONCE);
    let client_final = s
        .handle_server_first(FINAL_SERVER_FIRST.as_bytes())
        .expect("the fixed server-first is valid");
    assert_eq!(client_final, FINAL_CLIENT_FINAL.as_bytes());
    let result = s.handle_server_final(data);
    let text = std::str::from_utf8(data).ok();
    let verifier = format!("v={FINAL_SERVER_SIGNATURE}");
    let genuine = text.is_some_and(|t| t.split(',').next() == Some(verifier.as_str()));
    assert_eq!(result.is_ok(), genuine, "{result:?}");
    assert_eq!(s.is_done(), genuine);
    if let Some(e) = text.and_then(|t| t.strip_prefix("e=")) {
        assert_eq!(result, Err(ScramError::Server(e.to_owned())));
    }
    if genuine {
        assert_eq!(s.handle_server_final(data), Err(ScramError::OutOfOrder));
    }
}

// --- frontend: encode, decode, encode again -----------------------------------------------------

/// A tagged frontend message, as the fuzzer builds it and as [`decode_frontend`] reads it back.
#[derive(Debug, Clone, PartialEq)]
pub enum Fe {
    Query(String),
    Parse {
        name: String,
        sql: String,
        types: Vec<u32>,
    },
    Bind {
        portal: String,
        statement: String,
        formats: Vec<i16>,
        values: Vec<Param>,
        result_formats: Vec<i16>,
    },
    Describe(Target, String),
    Close(Target, String),
    Execute {
        portal: String,
        max_rows: i32,
    },
    CopyFail(String),
    Sync,
    Flush,
    Terminate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Value(Vec<u8>),
    /// The caller's encoder fails for this parameter: nothing of the Bind may remain.
    Fail,
}

pub fn encode(fe: &Fe, buf: &mut BytesMut) -> Result<(), EncodeError> {
    match fe {
        Fe::Query(sql) => frontend::query(sql, buf),
        Fe::Parse { name, sql, types } => frontend::parse(name, sql, types, buf),
        Fe::Bind {
            portal,
            statement,
            formats,
            values,
            result_formats,
        } => frontend::bind(
            portal,
            statement,
            formats,
            values.len(),
            |i, buf| match values.get(i) {
                Some(Param::Null) => {
                    buf.put_slice(b"written, then dropped for NULL");
                    Ok(IsNull::Yes)
                }
                Some(Param::Value(v)) => {
                    buf.put_slice(v);
                    Ok(IsNull::No)
                }
                Some(Param::Fail) | None => Err(EncodeError::Param {
                    index: i,
                    message: "fuzz".into(),
                }),
            },
            result_formats,
            buf,
        ),
        Fe::Describe(target, name) => frontend::describe(*target, name, buf),
        Fe::Close(target, name) => frontend::close(*target, name, buf),
        Fe::Execute { portal, max_rows } => frontend::execute(portal, *max_rows, buf),
        Fe::CopyFail(reason) => frontend::copy_fail(reason, buf),
        Fe::Sync => {
            frontend::sync(buf);
            Ok(())
        }
        Fe::Flush => {
            frontend::flush(buf);
            Ok(())
        }
        Fe::Terminate => {
            frontend::terminate(buf);
            Ok(())
        }
    }
}

fn no_nul(s: &[u8], what: &'static str) -> Result<(), EncodeError> {
    if s.contains(&0) {
        Err(EncodeError::NulInString(what))
    } else {
        Ok(())
    }
}

fn fits_i16(n: usize, what: &'static str) -> Result<(), EncodeError> {
    if i16::try_from(n).is_err() {
        Err(EncodeError::TooLarge(what))
    } else {
        Ok(())
    }
}

/// What encoding `fe` must return, from the protocol's rules alone.
pub fn expected(fe: &Fe) -> Result<(), EncodeError> {
    match fe {
        Fe::Query(sql) => no_nul(sql.as_bytes(), "query"),
        Fe::Parse { name, sql, types } => {
            no_nul(name.as_bytes(), "statement name")?;
            no_nul(sql.as_bytes(), "query")?;
            fits_i16(types.len(), "parameter count")
        }
        Fe::Bind {
            portal,
            statement,
            formats,
            values,
            result_formats,
        } => {
            no_nul(portal.as_bytes(), "portal name")?;
            no_nul(statement.as_bytes(), "statement name")?;
            fits_i16(formats.len(), "parameter format count")?;
            fits_i16(values.len(), "parameter count")?;
            if let Some(index) = values.iter().position(|v| *v == Param::Fail) {
                return Err(EncodeError::Param {
                    index,
                    message: "fuzz".into(),
                });
            }
            fits_i16(result_formats.len(), "result format count")
        }
        Fe::Describe(_, name) | Fe::Close(_, name) => no_nul(name.as_bytes(), "statement name"),
        Fe::Execute { portal, .. } => no_nul(portal.as_bytes(), "portal name"),
        Fe::CopyFail(reason) => no_nul(reason.as_bytes(), "copy fail reason"),
        Fe::Sync | Fe::Flush | Fe::Terminate => Ok(()),
    }
}

fn get_cstr(b: &mut &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .expect("unterminated C string");
    let s = String::from_utf8(b[..end].to_vec()).expect("a C string that is not UTF-8");
    b.advance(end + 1);
    s
}

fn get_target(b: &mut &[u8]) -> Target {
    match b.get_u8() {
        b'S' => Target::Statement,
        b'P' => Target::Portal,
        other => panic!("unknown Describe/Close target {other:#x}"),
    }
}

/// Reads tagged frontend messages back, checking every length field.
pub fn decode_frontend(mut stream: &[u8]) -> Vec<Fe> {
    let mut out = vec![];
    while !stream.is_empty() {
        assert!(stream.len() >= 5, "a truncated header");
        let tag = stream[0];
        let len = i32::from_be_bytes([stream[1], stream[2], stream[3], stream[4]]);
        let len = usize::try_from(len).expect("a negative length");
        assert!(
            len >= 4 && stream.len() > len,
            "the length field {len} does not match the bytes written"
        );
        let mut b = &stream[5..len + 1];
        stream = &stream[len + 1..];
        let fe = match tag {
            b'Q' => Fe::Query(get_cstr(&mut b)),
            b'P' => {
                let name = get_cstr(&mut b);
                let sql = get_cstr(&mut b);
                let n = usize::try_from(b.get_i16()).expect("a negative count");
                let types = (0..n).map(|_| b.get_u32()).collect();
                Fe::Parse { name, sql, types }
            }
            b'B' => {
                let portal = get_cstr(&mut b);
                let statement = get_cstr(&mut b);
                let n = usize::try_from(b.get_i16()).expect("a negative count");
                let formats = (0..n).map(|_| b.get_i16()).collect();
                let n = usize::try_from(b.get_i16()).expect("a negative count");
                let values = (0..n)
                    .map(|_| match b.get_i32() {
                        -1 => Param::Null,
                        len => {
                            let len = usize::try_from(len).expect("a negative value length");
                            let v = b[..len].to_vec();
                            b.advance(len);
                            Param::Value(v)
                        }
                    })
                    .collect();
                let n = usize::try_from(b.get_i16()).expect("a negative count");
                let result_formats = (0..n).map(|_| b.get_i16()).collect();
                Fe::Bind {
                    portal,
                    statement,
                    formats,
                    values,
                    result_formats,
                }
            }
            b'D' => {
                let t = get_target(&mut b);
                Fe::Describe(t, get_cstr(&mut b))
            }
            b'C' => {
                let t = get_target(&mut b);
                Fe::Close(t, get_cstr(&mut b))
            }
            b'E' => {
                let portal = get_cstr(&mut b);
                Fe::Execute {
                    portal,
                    max_rows: b.get_i32(),
                }
            }
            b'f' => Fe::CopyFail(get_cstr(&mut b)),
            b'S' => Fe::Sync,
            b'H' => Fe::Flush,
            b'X' => Fe::Terminate,
            other => panic!("unknown frontend tag {other:#x}"),
        };
        assert!(b.is_empty(), "{} trailing bytes in {fe:?}", b.len());
        out.push(fe);
    }
    out
}

/// A cursor over the fuzz input that builds messages from it.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }
    /// A length byte, then that many bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.byte()?);
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    /// A string, NUL bytes included (invalid UTF-8 is replaced).
    fn string(&mut self) -> Option<String> {
        Some(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
    fn target(&mut self) -> Option<Target> {
        Some(if self.byte()? & 1 == 0 {
            Target::Statement
        } else {
            Target::Portal
        })
    }
    fn i16s(&mut self) -> Option<Vec<i16>> {
        let n = self.byte()?;
        (0..n)
            .map(|_| Some(i16::from(self.byte()? as i8)))
            .collect()
    }
}

/// Untagged and context-dependent messages, each checked on its own buffer.
enum Standalone {
    Startup(Vec<(String, String)>),
    Password(Vec<u8>),
    SaslInitial(String, Vec<u8>),
    SaslResponse(Vec<u8>),
    Cancel(i32, Vec<u8>),
}

enum Op {
    Tagged(Fe),
    Standalone(Standalone),
}

/// A small count, or (high bit set) one in 32_700..32_828, on both sides of `i16::MAX`. Big
/// counts are slow to build, so only half the values are big.
fn big_count(input: &mut Input) -> Option<usize> {
    let b = usize::from(input.byte()?);
    Some(if b < 128 { b } else { 32_700 + (b - 128) })
}

fn next_op(input: &mut Input) -> Option<Op> {
    let op = input.byte()?;
    let fe = match op % 17 {
        0 => Fe::Query(input.string()?),
        1 => Fe::Parse {
            name: input.string()?,
            sql: input.string()?,
            types: (0..input.byte()?)
                .map(|_| Some(input.i32()? as u32))
                .collect::<Option<_>>()?,
        },
        // Counts around i16::MAX: past it they must be refused, not wrapped.
        2 => Fe::Parse {
            name: input.string()?,
            sql: input.string()?,
            types: (0..big_count(input)?)
                .map(|i| (i as u32).wrapping_mul(2_654_435_761))
                .collect(),
        },
        3 => {
            let portal = input.string()?;
            let statement = input.string()?;
            let formats = input.i16s()?;
            let n = input.byte()?;
            let values = (0..n)
                .map(|_| {
                    Some(match input.byte()? % 8 {
                        0 | 1 => Param::Null,
                        7 => Param::Fail,
                        _ => Param::Value(input.bytes()?.to_vec()),
                    })
                })
                .collect::<Option<_>>()?;
            Fe::Bind {
                portal,
                statement,
                formats,
                values,
                result_formats: input.i16s()?,
            }
        }
        4 => Fe::Bind {
            portal: input.string()?,
            statement: input.string()?,
            formats: (0..big_count(input)?).map(|i| (i % 2) as i16).collect(),
            values: vec![],
            result_formats: (0..big_count(input)?).map(|i| (i % 2) as i16).collect(),
        },
        5 => Fe::Describe(input.target()?, input.string()?),
        6 => Fe::Close(input.target()?, input.string()?),
        7 => Fe::Execute {
            portal: input.string()?,
            max_rows: input.i32()?,
        },
        8 => Fe::CopyFail(input.string()?),
        9 => Fe::Sync,
        10 => Fe::Flush,
        11 => Fe::Terminate,
        12 => {
            let n = input.byte()? % 8;
            let params = (0..n)
                .map(|_| Some((input.string()?, input.string()?)))
                .collect::<Option<_>>()?;
            return Some(Op::Standalone(Standalone::Startup(params)));
        }
        13 => {
            return Some(Op::Standalone(Standalone::Password(
                input.bytes()?.to_vec(),
            )))
        }
        14 => {
            return Some(Op::Standalone(Standalone::SaslInitial(
                input.string()?,
                input.bytes()?.to_vec(),
            )))
        }
        15 => {
            return Some(Op::Standalone(Standalone::SaslResponse(
                input.bytes()?.to_vec(),
            )))
        }
        _ => {
            return Some(Op::Standalone(Standalone::Cancel(
                input.i32()?,
                input.bytes()?.to_vec(),
            )))
        }
    };
    Some(Op::Tagged(fe))
}

/// Builds messages from the input and encodes them after some arbitrary bytes already in the
/// buffer. Each encode returns exactly what the protocol's rules say (NUL in a C string and
/// counts over i16 are refused), a refused message leaves the buffer as it was, every length
/// field equals the bytes written, the stream decodes back to the messages, and encoding the
/// decoded messages again gives the same bytes.
pub fn frontend_roundtrip(data: &[u8]) {
    frontend_roundtrip_accepted(data);
}

/// [`frontend_roundtrip`], returning the tagged messages that were accepted.
pub fn frontend_roundtrip_accepted(data: &[u8]) -> Vec<Fe> {
    let mut input = Input(data);
    let prefix = input.bytes().unwrap_or_default();
    let mut buf = BytesMut::from(prefix);
    let mut sent = vec![];
    while let Some(op) = next_op(&mut input) {
        match op {
            Op::Tagged(fe) => {
                // Encoders only append, so a refused message must leave the length as it
                // was; the bytes before it are checked by the decode at the end.
                let before = buf.len();
                let result = encode(&fe, &mut buf);
                assert_eq!(result, expected(&fe), "{fe:?}");
                if result.is_ok() {
                    sent.push(fe);
                } else {
                    assert_eq!(buf.len(), before, "a refused message left bytes behind");
                }
            }
            Op::Standalone(msg) => check_standalone(msg),
        }
    }
    assert!(buf.starts_with(prefix));
    let decoded = decode_frontend(&buf[prefix.len()..]);
    assert_eq!(decoded, sent);
    let mut again = BytesMut::from(prefix);
    for fe in &decoded {
        encode(fe, &mut again).expect("a decoded message encodes again");
    }
    assert_eq!(again, buf, "encode-decode-encode changed the bytes");
    decoded
}

/// Body of a tagged message `tag` alone in `buf`, after checking its length field.
fn tagged_body(buf: &[u8], tag: u8) -> &[u8] {
    assert_eq!(buf[0], tag);
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    assert_eq!(
        len + 1,
        buf.len(),
        "the length field does not match the bytes written"
    );
    &buf[5..]
}

/// Body of an untagged message (startup, cancel) alone in `buf`.
fn untagged_body(buf: &[u8]) -> &[u8] {
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    assert_eq!(
        len,
        buf.len(),
        "the length field does not match the bytes written"
    );
    &buf[4..]
}

fn check_standalone(msg: Standalone) {
    let mut buf = BytesMut::from(&b"kept"[..]);
    match msg {
        Standalone::Startup(params) => {
            let refs: Vec<(&str, &str)> = params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let want = params.iter().try_for_each(|(n, v)| {
                no_nul(n.as_bytes(), "startup parameter name")?;
                no_nul(v.as_bytes(), "startup parameter value")
            });
            let got = frontend::startup(&refs, &mut buf);
            assert_eq!(got, want);
            if got.is_err() {
                assert_eq!(&buf[..], b"kept");
                return;
            }
            let mut b = untagged_body(&buf[4..]);
            assert_eq!(b.get_i32(), frontend::PROTOCOL_VERSION);
            let mut back = vec![];
            loop {
                let name = get_cstr(&mut b);
                if name.is_empty() && b.is_empty() {
                    break;
                }
                back.push((name, get_cstr(&mut b)));
            }
            assert_eq!(back, params);
        }
        Standalone::Password(pw) => {
            let got = frontend::password(&pw, &mut buf);
            assert_eq!(got, no_nul(&pw, "password"));
            if got.is_ok() {
                assert_eq!(tagged_body(&buf[4..], b'p'), [&pw[..], b"\0"].concat());
            } else {
                assert_eq!(&buf[..], b"kept");
            }
        }
        Standalone::SaslInitial(mechanism, data) => {
            let got = frontend::sasl_initial_response(&mechanism, &data, &mut buf);
            assert_eq!(got, no_nul(mechanism.as_bytes(), "SASL mechanism"));
            if got.is_err() {
                assert_eq!(&buf[..], b"kept");
                return;
            }
            let mut b = tagged_body(&buf[4..], b'p');
            assert_eq!(get_cstr(&mut b), mechanism);
            assert_eq!(usize::try_from(b.get_i32()).ok(), Some(data.len()));
            assert_eq!(b, &data[..]);
        }
        Standalone::SaslResponse(data) => {
            frontend::sasl_response(&data, &mut buf).expect("SASL data has no restrictions");
            assert_eq!(tagged_body(&buf[4..], b'p'), &data[..]);
        }
        Standalone::Cancel(pid, key) => {
            frontend::cancel_request(pid, &key, &mut buf).expect("any key is sent as bytes");
            let mut b = untagged_body(&buf[4..]);
            assert_eq!(b.get_i32(), 80_877_102);
            assert_eq!(b.get_i32(), pid);
            assert_eq!(b, &key[..]);
        }
    }
}
