//! Frontend (client to server) messages.
//!
//! Every encoder appends one message to the caller's buffer and back-patches its length, so a
//! whole pipelined batch (Parse/Bind/Describe/Execute/Sync ...) is built in one `BytesMut` and
//! sent with one write. Sizes are converted with checked casts; strings that the protocol
//! terminates with NUL are rejected if they contain one.

use bytes::{BufMut, BytesMut};
use std::fmt;

/// Why a message could not be encoded. Nothing was appended when this is returned... except
/// for partial bytes the caller discards by truncating to its saved length (see
/// [`truncate_on_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string sent as a C string contained a NUL byte.
    NulInString(&'static str),
    /// A length or count does not fit the protocol's integer field.
    TooLarge(&'static str),
    /// The caller's parameter encoder failed.
    Param { index: usize, message: String },
    /// A batch of encoded messages the connection cannot keep in step with (see
    /// [`crate::plan::plan`]).
    Request(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NulInString(what) => write!(f, "{what} contains a NUL byte"),
            EncodeError::TooLarge(what) => write!(f, "{what} is too large for the protocol"),
            EncodeError::Param { index, message } => {
                write!(f, "parameter ${}: {message}", index + 1)
            }
            EncodeError::Request(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for EncodeError {}

pub type Result<T> = std::result::Result<T, EncodeError>;

/// Runs `f`, and on error truncates `buf` back to where it was, so a failed encode never
/// leaves half a message behind.
pub fn truncate_on_error<T>(
    buf: &mut BytesMut,
    f: impl FnOnce(&mut BytesMut) -> Result<T>,
) -> Result<T> {
    let start = buf.len();
    let out = f(buf);
    if out.is_err() {
        buf.truncate(start);
    }
    out
}

fn write_cstr(buf: &mut BytesMut, s: &[u8], what: &'static str) -> Result<()> {
    if s.contains(&0) {
        return Err(EncodeError::NulInString(what));
    }
    buf.put_slice(s);
    buf.put_u8(0);
    Ok(())
}

fn i16_len(n: usize, what: &'static str) -> Result<i16> {
    i16::try_from(n).map_err(|_| EncodeError::TooLarge(what))
}

fn i32_len(n: usize, what: &'static str) -> Result<i32> {
    i32::try_from(n).map_err(|_| EncodeError::TooLarge(what))
}

/// Appends a message: `tag` (if any), a 4-byte length placeholder, the body written by `f`,
/// then back-patches the length (which counts itself but not the tag).
fn message(
    buf: &mut BytesMut,
    tag: Option<u8>,
    f: impl FnOnce(&mut BytesMut) -> Result<()>,
) -> Result<()> {
    truncate_on_error(buf, |buf| {
        if let Some(tag) = tag {
            buf.put_u8(tag);
        }
        let len_at = buf.len();
        buf.put_i32(0);
        f(buf)?;
        let len = i32_len(buf.len() - len_at, "message")?;
        buf.get_mut(len_at..len_at + 4)
            .ok_or(EncodeError::TooLarge("message"))?
            .copy_from_slice(&len.to_be_bytes());
        Ok(())
    })
}

/// Protocol version 3.0.
pub const PROTOCOL_VERSION: i32 = 196_608;
/// Protocol version 3.2 (PostgreSQL 18: cancel keys of up to 256 bytes).
pub const PROTOCOL_VERSION_3_2: i32 = 196_610;
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// StartupMessage for protocol 3.0: version then `name\0value\0` pairs and a final NUL.
pub fn startup(params: &[(&str, &str)], buf: &mut BytesMut) -> Result<()> {
    startup_version(PROTOCOL_VERSION, params, buf)
}

/// StartupMessage asking for protocol `version` (major << 16 | minor).
pub fn startup_version(version: i32, params: &[(&str, &str)], buf: &mut BytesMut) -> Result<()> {
    message(buf, None, |buf| {
        buf.put_i32(version);
        for (name, value) in params {
            write_cstr(buf, name.as_bytes(), "startup parameter name")?;
            write_cstr(buf, value.as_bytes(), "startup parameter value")?;
        }
        buf.put_u8(0);
        Ok(())
    })
}

/// PasswordMessage carrying a cleartext or MD5-hashed password.
pub fn password(password: &[u8], buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'p'), |buf| write_cstr(buf, password, "password"))
}

/// SASLInitialResponse: mechanism name and the client-first message.
pub fn sasl_initial_response(mechanism: &str, data: &[u8], buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'p'), |buf| {
        write_cstr(buf, mechanism.as_bytes(), "SASL mechanism")?;
        buf.put_i32(i32_len(data.len(), "SASL data")?);
        buf.put_slice(data);
        Ok(())
    })
}

/// SASLResponse: the client-final message.
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'p'), |buf| {
        buf.put_slice(data);
        Ok(())
    })
}

/// Simple Query.
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'Q'), |buf| {
        write_cstr(buf, sql.as_bytes(), "query")
    })
}

/// Parse: statement name, query text, and the parameter type OIDs the client fixes (0 = let
/// the server infer).
pub fn parse(name: &str, sql: &str, param_types: &[u32], buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'P'), |buf| {
        write_cstr(buf, name.as_bytes(), "statement name")?;
        write_cstr(buf, sql.as_bytes(), "query")?;
        buf.put_i16(i16_len(param_types.len(), "parameter count")?);
        for &oid in param_types {
            buf.put_u32(oid);
        }
        Ok(())
    })
}

/// Whether an encoded parameter value is SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsNull {
    Yes,
    No,
}

/// Bind: portal, statement, parameter formats, parameter values, result formats.
///
/// Each value is written in place by `write_param(index, buf)`, which appends the value's
/// bytes (no copy through an intermediate buffer) and says whether it is NULL; its length is
/// back-patched here.
pub fn bind<F>(
    portal: &str,
    statement: &str,
    param_formats: &[i16],
    param_count: usize,
    mut write_param: F,
    result_formats: &[i16],
    buf: &mut BytesMut,
) -> Result<()>
where
    F: FnMut(usize, &mut BytesMut) -> Result<IsNull>,
{
    message(buf, Some(b'B'), |buf| {
        write_cstr(buf, portal.as_bytes(), "portal name")?;
        write_cstr(buf, statement.as_bytes(), "statement name")?;
        buf.put_i16(i16_len(param_formats.len(), "parameter format count")?);
        for &f in param_formats {
            buf.put_i16(f);
        }
        buf.put_i16(i16_len(param_count, "parameter count")?);
        for i in 0..param_count {
            let len_at = buf.len();
            buf.put_i32(0);
            let len = match write_param(i, buf)? {
                IsNull::Yes => {
                    buf.truncate(len_at + 4);
                    -1
                }
                IsNull::No => i32_len(buf.len() - len_at - 4, "parameter value")?,
            };
            buf.get_mut(len_at..len_at + 4)
                .ok_or(EncodeError::TooLarge("parameter value"))?
                .copy_from_slice(&len.to_be_bytes());
        }
        buf.put_i16(i16_len(result_formats.len(), "result format count")?);
        for &f in result_formats {
            buf.put_i16(f);
        }
        Ok(())
    })
}

/// What Describe or Close acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

impl Target {
    fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// Describe a prepared statement or a portal.
pub fn describe(target: Target, name: &str, buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'D'), |buf| {
        buf.put_u8(target.byte());
        write_cstr(buf, name.as_bytes(), "statement name")
    })
}

/// Execute a portal; `max_rows` 0 means all rows.
pub fn execute(portal: &str, max_rows: i32, buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'E'), |buf| {
        write_cstr(buf, portal.as_bytes(), "portal name")?;
        buf.put_i32(max_rows);
        Ok(())
    })
}

/// Close a prepared statement or a portal.
pub fn close(target: Target, name: &str, buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'C'), |buf| {
        buf.put_u8(target.byte());
        write_cstr(buf, name.as_bytes(), "statement name")
    })
}

/// Sync: ends an extended-protocol group; the server answers ReadyForQuery.
pub fn sync(buf: &mut BytesMut) {
    buf.put_slice(&[b'S', 0, 0, 0, 4]);
}

/// Flush: asks the server to send what it has buffered.
pub fn flush(buf: &mut BytesMut) {
    buf.put_slice(&[b'H', 0, 0, 0, 4]);
}

/// Terminate: the polite goodbye.
pub fn terminate(buf: &mut BytesMut) {
    buf.put_slice(&[b'X', 0, 0, 0, 4]);
}

/// CopyFail: refuses a COPY FROM STDIN the server asked for.
pub fn copy_fail(reason: &str, buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'f'), |buf| {
        write_cstr(buf, reason.as_bytes(), "copy fail reason")
    })
}

/// CopyData: one chunk of a COPY FROM STDIN's data (any split of the stream).
pub fn copy_data(data: &[u8], buf: &mut BytesMut) -> Result<()> {
    message(buf, Some(b'd'), |buf| {
        buf.put_slice(data);
        Ok(())
    })
}

/// CopyDone: the end of a COPY FROM STDIN's data.
pub fn copy_done(buf: &mut BytesMut) {
    buf.put_slice(&[b'c', 0, 0, 0, 4]);
}

/// CancelRequest, sent on a fresh connection. The key is kept as bytes so protocol 3.2's
/// longer keys work as well as 3.0's four bytes.
pub fn cancel_request(process_id: i32, secret_key: &[u8], buf: &mut BytesMut) -> Result<()> {
    message(buf, None, |buf| {
        buf.put_i32(CANCEL_REQUEST_CODE);
        buf.put_i32(process_id);
        buf.put_slice(secret_key);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut BytesMut) -> Result<()>) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf).unwrap();
        buf.to_vec()
    }

    #[test]
    fn startup_is_byte_exact() {
        let got = enc(|b| startup(&[("user", "u"), ("database", "d")], b));
        let mut want = vec![0, 0, 0, 0, 0, 3, 0, 0];
        want.extend_from_slice(b"user\0u\0database\0d\0\0");
        let len = want.len() as u32;
        want[..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(got, want);
    }

    #[test]
    fn password_and_sasl_are_byte_exact() {
        assert_eq!(enc(|b| password(b"pw", b)), b"p\0\0\0\x07pw\0");
        assert_eq!(
            enc(|b| sasl_initial_response("SCRAM-SHA-256", b"abc", b)),
            b"p\0\0\0\x19SCRAM-SHA-256\0\0\0\0\x03abc"
        );
        assert_eq!(enc(|b| sasl_response(b"xyz", b)), b"p\0\0\0\x07xyz");
    }

    #[test]
    fn query_parse_describe_execute_close_are_byte_exact() {
        assert_eq!(enc(|b| query("select 1", b)), b"Q\0\0\0\x0dselect 1\0");
        assert_eq!(
            enc(|b| parse("s1", "select $1", &[23], b)),
            b"P\0\0\0\x17s1\0select $1\0\0\x01\0\0\0\x17"
        );
        assert_eq!(
            enc(|b| describe(Target::Statement, "s1", b)),
            b"D\0\0\0\x08Ss1\0"
        );
        assert_eq!(enc(|b| execute("", 0, b)), b"E\0\0\0\x09\0\0\0\0\0");
        assert_eq!(enc(|b| close(Target::Portal, "p", b)), b"C\0\0\0\x07Pp\0");
        assert_eq!(enc(|b| copy_fail("no", b)), b"f\0\0\0\x07no\0");
    }

    #[test]
    fn bind_is_byte_exact_with_null_and_value() {
        let got = enc(|b| {
            bind(
                "",
                "s1",
                &[1],
                2,
                |i, buf| {
                    if i == 0 {
                        buf.put_i32(7);
                        Ok(IsNull::No)
                    } else {
                        buf.put_slice(b"ignored");
                        Ok(IsNull::Yes)
                    }
                },
                &[1, 0],
                b,
            )
        });
        let mut want = vec![b'B', 0, 0, 0, 0];
        want.extend_from_slice(b"\0s1\0");
        want.extend_from_slice(&[0, 1, 0, 1]); // one format: binary
        want.extend_from_slice(&[0, 2]); // two params
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0, 2, 0, 1, 0, 0]);
        let len = (want.len() - 1) as u32;
        want[1..5].copy_from_slice(&len.to_be_bytes());
        assert_eq!(got, want);
    }

    #[test]
    fn fixed_messages_are_byte_exact() {
        let mut b = BytesMut::new();
        sync(&mut b);
        flush(&mut b);
        terminate(&mut b);
        assert_eq!(&b[..], b"S\0\0\0\x04H\0\0\0\x04X\0\0\0\x04");
        assert_eq!(
            enc(|b| cancel_request(42, &[1, 2, 3, 4], b)),
            [0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 42, 1, 2, 3, 4]
        );
    }

    #[test]
    fn nul_bytes_are_rejected_and_leave_nothing_behind() {
        let mut b = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            query("select '\0'", &mut b),
            Err(EncodeError::NulInString("query"))
        );
        assert_eq!(&b[..], b"keep");
        assert!(startup(&[("user", "a\0b")], &mut b).is_err());
        assert!(parse("s\0", "select 1", &[], &mut b).is_err());
        assert_eq!(&b[..], b"keep");
    }

    #[test]
    fn param_encoder_errors_truncate_the_bind() {
        let mut b = BytesMut::from(&b"keep"[..]);
        let r = bind(
            "",
            "s",
            &[],
            1,
            |i, _| {
                Err(EncodeError::Param {
                    index: i,
                    message: "nope".into(),
                })
            },
            &[],
            &mut b,
        );
        assert!(matches!(r, Err(EncodeError::Param { index: 0, .. })));
        assert_eq!(&b[..], b"keep");
    }

    #[test]
    fn too_many_parameters_is_an_error() {
        let mut b = BytesMut::new();
        let types = vec![0u32; 40_000];
        assert_eq!(
            parse("", "x", &types, &mut b),
            Err(EncodeError::TooLarge("parameter count"))
        );
        assert!(b.is_empty());
    }
}
