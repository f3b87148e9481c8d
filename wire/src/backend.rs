//! Backend (server to client) messages: framing and decoding.
//!
//! [`split_frame`] takes exactly one message off the read buffer as a frozen [`Bytes`] (no
//! copy: the frame shares the read buffer's allocation), after checking the declared length
//! against a cap and without reserving memory for it. [`Message::decode`] then turns the frame
//! into a typed message whose bodies are views into the frame. A `DataRow` is validated once
//! here, so iterating its columns later cannot fail or panic.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;
use std::ops::Range;

/// The largest message accepted before authentication completes. Startup and auth messages
/// are tiny; a larger declared length means the peer is not a PostgreSQL server (a TLS
/// alert, an HTTP server, ...), and we must not wait for or allocate 1 GB because of it.
pub const STARTUP_MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The default cap after authentication: PostgreSQL itself never sends a field over 1 GB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1024 * 1024 * 1024 + 64 * 1024;

pub use crate::protocol_error::{ProtocolError, ProtocolErrorKind};

fn err<T>(msg: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError::malformed(msg))
}

/// Splits one whole message off the front of `buf`, if one is there.
///
/// Returns `(tag, body)`, or `Ok(None)` when more bytes are needed. A declared length below
/// 4 or over `max_len` is an error at once, before any byte of the body is awaited or
/// reserved; [`frame_len`] tells the caller how much the frame still needs, so it can read
/// that much without reserving by an untrusted length up front.
pub fn split_frame(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<(u8, Bytes)>, ProtocolError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = header[0];
    let declared = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if declared < 4 {
        return Err(ProtocolErrorKind::InvalidLength { tag, declared }.into());
    }
    let len = declared as usize; // includes the 4 length bytes, not the tag
    if len > max_len {
        return Err(ProtocolErrorKind::TooLong {
            tag,
            len,
            max: max_len,
        }
        .into());
    }
    if buf.len() < len + 1 {
        return Ok(None);
    }
    let mut frame = buf.split_to(len + 1);
    frame.advance(5);
    Ok(Some((tag, frame.freeze())))
}

/// Total bytes the frame at the front of `buf` needs (header included), once its header is
/// there: used to size reads sensibly.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let h = buf.get(..5)?;
    let declared = i32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    usize::try_from(declared).ok().map(|l| l + 1)
}

/// A cursor over a message body that never panics.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    fn short<T>(&self) -> Result<T, ProtocolError> {
        Err(ProtocolErrorKind::Truncated { message: self.what }.into())
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(|| {
            ProtocolError::new(ProtocolErrorKind::Truncated { message: self.what })
        })?;
        self.buf = rest;
        Ok(b)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return self.short();
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self) -> Result<&'a [u8], ProtocolError> {
        match self.buf.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &self.buf[..end];
                self.buf = &self.buf[end + 1..];
                Ok(s)
            }
            None => err(format!("{} message has an unterminated string", self.what)),
        }
    }
    fn string(&mut self) -> Result<String, ProtocolError> {
        let raw = self.cstr()?;
        String::from_utf8(raw.to_vec()).or_else(|_| {
            err(format!(
                "{} message has a string that is not UTF-8",
                self.what
            ))
        })
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn end(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            err(format!(
                "{} message has {} trailing bytes",
                self.what,
                self.buf.len()
            ))
        }
    }
}

/// Authentication request codes we name in errors.
pub fn auth_method_name(code: i32) -> &'static str {
    match code {
        2 => "Kerberos V5",
        5 => "MD5",
        6 => "SCM credentials",
        7 => "GSSAPI",
        8 => "GSSAPI continue",
        9 => "SSPI",
        10 => "SASL",
        _ => "unknown",
    }
}

/// One decoded backend message. Bodies that carry data stay views into the frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    AuthenticationOk,
    AuthenticationCleartextPassword,
    AuthenticationMd5Password {
        salt: [u8; 4],
    },
    AuthenticationSasl {
        mechanisms: Vec<String>,
    },
    AuthenticationSaslContinue(Bytes),
    AuthenticationSaslFinal(Bytes),
    /// A method we recognise but do not implement (GSS, SSPI, Kerberos, ...).
    AuthenticationUnsupported {
        code: i32,
    },
    BackendKeyData {
        process_id: i32,
        secret_key: Bytes,
    },
    BindComplete,
    CloseComplete,
    CommandComplete {
        tag: Bytes,
    },
    CopyData(Bytes),
    CopyDone,
    CopyInResponse,
    CopyOutResponse,
    CopyBothResponse,
    DataRow(DataRowBody),
    EmptyQueryResponse,
    /// Boxed, as is `NoticeResponse`: the fields are 432 bytes, and every message of every
    /// result is moved by value (the enum was as large as its largest variant: a W2 point
    /// query copied about 3.5 KB of it).
    ErrorResponse(Box<ErrorFields>),
    NegotiateProtocolVersion {
        newest_minor: i32,
        unrecognized: Vec<String>,
    },
    NoData,
    NoticeResponse(Box<ErrorFields>),
    NotificationResponse {
        process_id: i32,
        channel: String,
        payload: String,
    },
    ParameterDescription(Vec<u32>),
    ParameterStatus {
        name: String,
        value: String,
    },
    ParseComplete,
    PortalSuspended,
    ReadyForQuery {
        status: u8,
    },
    RowDescription(Vec<Field>),
}

impl Message {
    /// The message's name as the protocol documentation spells it, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::AuthenticationOk => "AuthenticationOk",
            Message::AuthenticationCleartextPassword => "AuthenticationCleartextPassword",
            Message::AuthenticationMd5Password { .. } => "AuthenticationMd5Password",
            Message::AuthenticationSasl { .. } => "AuthenticationSasl",
            Message::AuthenticationSaslContinue(_) => "AuthenticationSaslContinue",
            Message::AuthenticationSaslFinal(_) => "AuthenticationSaslFinal",
            Message::AuthenticationUnsupported { .. } => "AuthenticationUnsupported",
            Message::BackendKeyData { .. } => "BackendKeyData",
            Message::BindComplete => "BindComplete",
            Message::CloseComplete => "CloseComplete",
            Message::CommandComplete { .. } => "CommandComplete",
            Message::CopyData(_) => "CopyData",
            Message::CopyDone => "CopyDone",
            Message::CopyInResponse => "CopyInResponse",
            Message::CopyOutResponse => "CopyOutResponse",
            Message::CopyBothResponse => "CopyBothResponse",
            Message::DataRow(_) => "DataRow",
            Message::EmptyQueryResponse => "EmptyQueryResponse",
            Message::ErrorResponse(_) => "ErrorResponse",
            Message::NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
            Message::NoData => "NoData",
            Message::NoticeResponse(_) => "NoticeResponse",
            Message::NotificationResponse { .. } => "NotificationResponse",
            Message::ParameterDescription(_) => "ParameterDescription",
            Message::ParameterStatus { .. } => "ParameterStatus",
            Message::ParseComplete => "ParseComplete",
            Message::PortalSuspended => "PortalSuspended",
            Message::ReadyForQuery { .. } => "ReadyForQuery",
            Message::RowDescription(_) => "RowDescription",
        }
    }

    /// Decodes one frame produced by [`split_frame`].
    pub fn decode(tag: u8, body: Bytes) -> Result<Message, ProtocolError> {
        let msg = match tag {
            b'R' => return decode_auth(body),
            b'K' => {
                let mut r = Reader::new(&body, "BackendKeyData");
                let process_id = r.i32()?;
                let key_len = r.rest().len();
                if !(4..=256).contains(&key_len) {
                    return err(format!("BackendKeyData has a {key_len}-byte key"));
                }
                Message::BackendKeyData {
                    process_id,
                    secret_key: body.slice(4..),
                }
            }
            b'2' => empty(body, Message::BindComplete, "BindComplete")?,
            b'3' => empty(body, Message::CloseComplete, "CloseComplete")?,
            b'C' => {
                let mut r = Reader::new(&body, "CommandComplete");
                let tag_len = r.cstr()?.len();
                r.end()?;
                Message::CommandComplete {
                    tag: body.slice(..tag_len),
                }
            }
            b'd' => Message::CopyData(body),
            b'c' => empty(body, Message::CopyDone, "CopyDone")?,
            b'G' => Message::CopyInResponse,
            b'H' => Message::CopyOutResponse,
            b'W' => Message::CopyBothResponse,
            b'D' => Message::DataRow(DataRowBody::new(body)?),
            b'I' => empty(body, Message::EmptyQueryResponse, "EmptyQueryResponse")?,
            b'E' => Message::ErrorResponse(Box::new(ErrorFields::decode(&body, "ErrorResponse")?)),
            b'N' => {
                Message::NoticeResponse(Box::new(ErrorFields::decode(&body, "NoticeResponse")?))
            }
            b'v' => {
                let mut r = Reader::new(&body, "NegotiateProtocolVersion");
                let newest_minor = r.i32()?;
                let n = r.i32()?;
                let n = usize::try_from(n)
                    .or_else(|_| err("NegotiateProtocolVersion has a negative count"))?;
                let mut unrecognized = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    unrecognized.push(r.string()?);
                }
                r.end()?;
                Message::NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                }
            }
            b'n' => empty(body, Message::NoData, "NoData")?,
            b'A' => {
                let mut r = Reader::new(&body, "NotificationResponse");
                let process_id = r.i32()?;
                let channel = r.string()?;
                let payload = r.string()?;
                r.end()?;
                Message::NotificationResponse {
                    process_id,
                    channel,
                    payload,
                }
            }
            b't' => {
                let mut r = Reader::new(&body, "ParameterDescription");
                let n = r.i16()?;
                let n = usize::try_from(n)
                    .or_else(|_| err("ParameterDescription has a negative count"))?;
                let mut oids = Vec::with_capacity(n);
                for _ in 0..n {
                    oids.push(r.u32()?);
                }
                r.end()?;
                Message::ParameterDescription(oids)
            }
            b'S' => {
                let mut r = Reader::new(&body, "ParameterStatus");
                let name = r.string()?;
                let value = r.string()?;
                r.end()?;
                Message::ParameterStatus { name, value }
            }
            b'1' => empty(body, Message::ParseComplete, "ParseComplete")?,
            b's' => empty(body, Message::PortalSuspended, "PortalSuspended")?,
            b'Z' => {
                let mut r = Reader::new(&body, "ReadyForQuery");
                let status = r.u8()?;
                r.end()?;
                if !matches!(status, b'I' | b'T' | b'E') {
                    return err(format!("ReadyForQuery has an unknown status {status:#x}"));
                }
                Message::ReadyForQuery { status }
            }
            b'T' => Message::RowDescription(decode_row_description(&body)?),
            other => {
                return err(format!(
                    "unknown message type {:?} ({other:#04x})",
                    other as char
                ))
            }
        };
        Ok(msg)
    }
}

fn empty(body: Bytes, msg: Message, what: &'static str) -> Result<Message, ProtocolError> {
    Reader::new(&body, what).end()?;
    Ok(msg)
}

fn decode_auth(body: Bytes) -> Result<Message, ProtocolError> {
    let mut r = Reader::new(&body, "Authentication");
    let code = r.i32()?;
    let msg = match code {
        0 => {
            r.end()?;
            Message::AuthenticationOk
        }
        3 => {
            r.end()?;
            Message::AuthenticationCleartextPassword
        }
        5 => {
            let s = r.bytes(4)?;
            r.end()?;
            Message::AuthenticationMd5Password {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.string()?;
                if m.is_empty() {
                    break;
                }
                if mechanisms.len() >= 32 {
                    return err("AuthenticationSASL lists too many mechanisms");
                }
                mechanisms.push(m);
            }
            r.end()?;
            Message::AuthenticationSasl { mechanisms }
        }
        11 => Message::AuthenticationSaslContinue(body.slice(4..)),
        12 => Message::AuthenticationSaslFinal(body.slice(4..)),
        2 | 6 | 7 | 8 | 9 => Message::AuthenticationUnsupported { code },
        other => return err(format!("unknown authentication request {other}")),
    };
    Ok(msg)
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub table_oid: u32,
    pub column_id: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    pub format: i16,
}

fn decode_row_description(body: &[u8]) -> Result<Vec<Field>, ProtocolError> {
    let mut r = Reader::new(body, "RowDescription");
    let n = r.i16()?;
    let n = usize::try_from(n).or_else(|_| err("RowDescription has a negative count"))?;
    // Each field takes at least 19 bytes: an untrusted count cannot make us over-allocate.
    if n > body.len() / 19 {
        return err("RowDescription declares more fields than it holds");
    }
    let mut fields = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        fields.push(Field {
            name,
            table_oid: r.u32()?,
            column_id: r.i16()?,
            type_oid: r.u32()?,
            type_size: r.i16()?,
            type_modifier: r.i32()?,
            format: r.i16()?,
        });
    }
    r.end()?;
    Ok(fields)
}

/// A DataRow's body: the frame itself, validated once so that every column range is in
/// bounds. Columns are read in place; nothing is copied or allocated per value.
#[derive(Clone, PartialEq, Eq)]
pub struct DataRowBody {
    frame: Bytes,
    columns: u16,
}

impl fmt::Debug for DataRowBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataRowBody")
            .field("columns", &self.columns)
            .field("len", &self.frame.len())
            .finish()
    }
}

impl DataRowBody {
    /// Validates the column count and every column length against the frame.
    pub fn new(frame: Bytes) -> Result<Self, ProtocolError> {
        // The hot loop of every result: one pass over the lengths with plain offsets; the
        // error (and its String) is built only on the failure path.
        let columns = match Self::validate(&frame) {
            Some(n) => n,
            None => return Self::explain(&frame),
        };
        Ok(DataRowBody { frame, columns })
    }

    /// The column count when every length is in bounds and the frame ends exactly after the
    /// last value.
    #[inline]
    fn validate(b: &[u8]) -> Option<u16> {
        let count = i16::from_be_bytes([*b.first()?, *b.get(1)?]);
        let count = u16::try_from(count).ok()?;
        let mut at = 2usize;
        for _ in 0..count {
            let l = b.get(at..at + 4)?;
            let len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
            at += 4;
            if len >= 0 {
                at = at.checked_add(len as usize)?;
            } else if len != -1 {
                return None;
            }
        }
        (at == b.len()).then_some(count)
    }

    /// Why `validate` refused a frame, for the error message.
    #[cold]
    fn explain(frame: &Bytes) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(frame, "DataRow");
        let n = r.i16()?;
        let columns = u16::try_from(n).or_else(|_| err("DataRow has a negative column count"))?;
        for _ in 0..columns {
            let len = r.i32()?;
            if len == -1 {
                continue;
            }
            let len = usize::try_from(len)
                .or_else(|_| err(format!("DataRow has an invalid value length {len}")))?;
            r.bytes(len)?;
        }
        r.end()?;
        // Unreachable when validate() and this walk agree; kept an error, never a panic.
        err("DataRow is malformed")
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        usize::from(self.columns)
    }

    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// The frame, for callers that keep values as `Bytes` slices.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Iterates the columns in order: `None` for SQL NULL, else the value's bytes.
    pub fn values(&self) -> Values<'_> {
        Values {
            rest: self.frame.get(2..).unwrap_or_default(),
            left: self.columns,
        }
    }

    /// Column ranges into [`DataRowBody::frame`], for zero-copy `Bytes::slice`.
    pub fn ranges(&self) -> impl Iterator<Item = Option<Range<usize>>> + '_ {
        let base = self.frame.as_ptr() as usize;
        self.values().map(move |v| {
            v.map(|s| (s.as_ptr() as usize - base)..(s.as_ptr() as usize - base + s.len()))
        })
    }
}

/// Iterator over a validated DataRow's values.
pub struct Values<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for Values<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The row was validated in `DataRowBody::new`; the checked accessors below only
        // guard against a logic error and end the iteration instead of panicking.
        let len_bytes = self.rest.get(..4)?;
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        self.rest = self.rest.get(4..)?;
        if len < 0 {
            return Some(None);
        }
        let len = len as usize;
        let value = self.rest.get(..len)?;
        self.rest = self.rest.get(len..)?;
        Some(Some(value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

/// The fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// Localized severity (`S`).
    pub severity: String,
    /// Non-localized severity (`V`, 9.6+): `ERROR`, `FATAL`, `PANIC`, `WARNING`, ...
    pub severity_nonlocalized: Option<String>,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub position: Option<String>,
    pub internal_position: Option<String>,
    pub internal_query: Option<String>,
    pub where_: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub data_type: Option<String>,
    pub constraint: Option<String>,
    pub file: Option<String>,
    pub line: Option<String>,
    pub routine: Option<String>,
}

impl ErrorFields {
    fn decode(body: &[u8], what: &'static str) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(body, what);
        let mut f = ErrorFields::default();
        loop {
            let ty = r.u8()?;
            if ty == 0 {
                break;
            }
            // Messages may carry bytes in the server's encoding before client_encoding is
            // applied (startup errors): decode lossily rather than fail.
            let value = String::from_utf8_lossy(r.cstr()?).into_owned();
            match ty {
                b'S' => f.severity = value,
                b'V' => f.severity_nonlocalized = Some(value),
                b'C' => f.code = value,
                b'M' => f.message = value,
                b'D' => f.detail = Some(value),
                b'H' => f.hint = Some(value),
                b'P' => f.position = Some(value),
                b'p' => f.internal_position = Some(value),
                b'q' => f.internal_query = Some(value),
                b'W' => f.where_ = Some(value),
                b's' => f.schema = Some(value),
                b't' => f.table = Some(value),
                b'c' => f.column = Some(value),
                b'd' => f.data_type = Some(value),
                b'n' => f.constraint = Some(value),
                b'F' => f.file = Some(value),
                b'L' => f.line = Some(value),
                b'R' => f.routine = Some(value),
                _ => {} // "frontends should silently ignore fields of unrecognized type"
            }
        }
        r.end()?;
        if f.code.is_empty() && what == "ErrorResponse" {
            // Every server error has a SQLSTATE; a server that omits it reports an internal
            // error, never an empty code callers cannot match on.
            f.code = crate::sqlstate::INTERNAL_ERROR.into();
        }
        Ok(f)
    }

    /// The bytes of text these fields hold, every field counted (what keeping them costs,
    /// besides the struct itself).
    pub fn text_len(&self) -> usize {
        let required = [&self.severity, &self.code, &self.message];
        let optional = [
            &self.severity_nonlocalized,
            &self.detail,
            &self.hint,
            &self.position,
            &self.internal_position,
            &self.internal_query,
            &self.where_,
            &self.schema,
            &self.table,
            &self.column,
            &self.data_type,
            &self.constraint,
            &self.file,
            &self.line,
            &self.routine,
        ];
        required.iter().map(|s| s.len()).sum::<usize>()
            + optional
                .iter()
                .map(|s| s.as_ref().map_or(0, String::len))
                .sum::<usize>()
    }

    /// The severity that does not depend on the server's language.
    pub fn severity(&self) -> &str {
        self.severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name()` is what errors used to read off the Debug output.
    #[test]
    fn message_names_match_their_variants() {
        let msgs = [
            Message::AuthenticationMd5Password { salt: [0; 4] },
            Message::DataRow(DataRowBody::new(Bytes::from_static(&[0, 0])).unwrap()),
            Message::ReadyForQuery { status: b'I' },
            Message::NoData,
            Message::ErrorResponse(Box::default()),
        ];
        for m in msgs {
            let debug = format!("{m:?}");
            assert!(debug.starts_with(m.name()), "{debug}");
            let rest = &debug[m.name().len()..];
            assert!(!rest.starts_with(char::is_alphanumeric), "{debug}");
        }
    }
    use bytes::BufMut;

    pub(crate) fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn decode_all(bytes: &[u8]) -> Vec<Message> {
        let mut buf = BytesMut::from(bytes);
        let mut out = vec![];
        while let Some((tag, body)) = split_frame(&mut buf, DEFAULT_MAX_MESSAGE_LEN).unwrap() {
            out.push(Message::decode(tag, body).unwrap());
        }
        assert!(buf.is_empty());
        out
    }

    fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(values.len() as i16);
        for v in values {
            match v {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
            }
        }
        frame(b'D', &b)
    }

    fn sample_stream() -> Vec<u8> {
        let mut s = vec![];
        s.extend(frame(b'R', &[0, 0, 0, 0]));
        s.extend(frame(b'S', b"server_version\x0017.7\0"));
        s.extend(frame(b'K', &[0, 0, 0, 9, 1, 2, 3, 4]));
        s.extend(frame(b'Z', b"I"));
        let mut rd = BytesMut::new();
        rd.put_i16(2);
        for (name, oid) in [("id", 23u32), ("label", 25)] {
            rd.put_slice(name.as_bytes());
            rd.put_u8(0);
            rd.put_u32(16384);
            rd.put_i16(1);
            rd.put_u32(oid);
            rd.put_i16(-1);
            rd.put_i32(-1);
            rd.put_i16(0);
        }
        s.extend(frame(b'T', &rd));
        s.extend(data_row(&[Some(b"1"), Some(b"one")]));
        s.extend(data_row(&[Some(b"2"), None]));
        s.extend(frame(b'C', b"SELECT 2\0"));
        s.extend(frame(b'Z', b"T"));
        s
    }

    #[test]
    fn decodes_a_stream() {
        let msgs = decode_all(&sample_stream());
        assert_eq!(msgs[0], Message::AuthenticationOk);
        assert_eq!(
            msgs[1],
            Message::ParameterStatus {
                name: "server_version".into(),
                value: "17.7".into()
            }
        );
        assert_eq!(
            msgs[2],
            Message::BackendKeyData {
                process_id: 9,
                secret_key: Bytes::from_static(&[1, 2, 3, 4])
            }
        );
        let Message::RowDescription(fields) = &msgs[4] else {
            panic!()
        };
        assert_eq!(fields[0].name, "id");
        assert_eq!(fields[1].type_oid, 25);
        let Message::DataRow(row) = &msgs[6] else {
            panic!()
        };
        let vals: Vec<_> = row.values().collect();
        assert_eq!(vals, vec![Some(&b"2"[..]), None]);
        assert_eq!(
            msgs[7],
            Message::CommandComplete {
                tag: Bytes::from_static(b"SELECT 2")
            }
        );
        assert_eq!(msgs[8], Message::ReadyForQuery { status: b'T' });
    }

    #[test]
    fn every_split_offset_gives_the_same_messages() {
        let stream = sample_stream();
        let want = decode_all(&stream);
        for split in 0..=stream.len() {
            let mut buf = BytesMut::new();
            let mut got = vec![];
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some((t, b)) = split_frame(&mut buf, DEFAULT_MAX_MESSAGE_LEN).unwrap() {
                    got.push(Message::decode(t, b).unwrap());
                }
            }
            assert_eq!(got, want, "split at {split}");
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages() {
        let stream = sample_stream();
        let want = decode_all(&stream);
        let mut buf = BytesMut::new();
        let mut got = vec![];
        for b in &stream {
            buf.put_u8(*b);
            while let Some((t, body)) = split_frame(&mut buf, DEFAULT_MAX_MESSAGE_LEN).unwrap() {
                got.push(Message::decode(t, body).unwrap());
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors_before_allocation() {
        // "@RSYN": a non-PostgreSQL server's bytes read as a huge length (pgx issue 2139).
        let mut buf = BytesMut::from(&b"@RSYNC: 31.0\n"[..]);
        assert!(split_frame(&mut buf, STARTUP_MAX_MESSAGE_LEN).is_err());
        let mut buf = BytesMut::from(&[b'D', 0x7f, 0xff, 0xff, 0xff][..]);
        assert!(split_frame(&mut buf, DEFAULT_MAX_MESSAGE_LEN).is_err());
        let mut buf = BytesMut::from(&[b'D', 0xff, 0xff, 0xff, 0xff][..]);
        assert!(split_frame(&mut buf, DEFAULT_MAX_MESSAGE_LEN).is_err());
        let mut buf = BytesMut::from(&[b'D', 0, 0, 0, 3][..]);
        assert!(split_frame(&mut buf, DEFAULT_MAX_MESSAGE_LEN).is_err());
    }

    #[test]
    fn malformed_data_rows_are_rejected() {
        for body in [
            &[0u8, 1, 0, 0, 0, 5, b'a'][..],     // value shorter than declared
            &[0, 2, 0, 0, 0, 1, b'a'][..],       // missing column
            &[0xff, 0xff][..],                   // negative count
            &[0, 1, 0xff, 0xff, 0xff, 0xfe][..], // length -2
            &[0, 0, 1][..],                      // trailing byte
            &[0][..],                            // truncated count
        ] {
            assert!(
                DataRowBody::new(Bytes::copy_from_slice(body)).is_err(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn ranges_point_into_the_frame() {
        let bytes = data_row(&[Some(b"ab"), None, Some(b"")]);
        let msgs = decode_all(&bytes);
        let Message::DataRow(row) = &msgs[0] else {
            panic!()
        };
        let ranges: Vec<_> = row.ranges().collect();
        assert_eq!(ranges, vec![Some(6..8), None, Some(16..16)]);
        assert_eq!(&row.frame()[6..8], b"ab");
    }

    #[test]
    fn error_response_fields() {
        let body = b"SERROR\0VERROR\0C25006\0Mcannot execute INSERT in a read-only transaction\0Ffoo.c\0L1\0Rbar\0Zunknown\0\0";
        let msgs = decode_all(&frame(b'E', body));
        let Message::ErrorResponse(e) = &msgs[0] else {
            panic!()
        };
        assert_eq!(e.code, "25006");
        assert_eq!(e.severity(), "ERROR");
        assert_eq!(e.routine.as_deref(), Some("bar"));
        assert!(e.message.contains("read-only"));
    }

    #[test]
    fn auth_messages() {
        let msgs = decode_all(
            &[
                frame(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]),
                frame(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
                frame(b'R', b"\0\0\0\x0br=abc"),
                frame(b'R', b"\0\0\0\x0cv=xyz"),
                frame(b'R', &[0, 0, 0, 7]),
                frame(b'R', &[0, 0, 0, 3]),
            ]
            .concat(),
        );
        assert_eq!(
            msgs[0],
            Message::AuthenticationMd5Password { salt: [1, 2, 3, 4] }
        );
        assert_eq!(
            msgs[1],
            Message::AuthenticationSasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            }
        );
        assert_eq!(
            msgs[2],
            Message::AuthenticationSaslContinue(Bytes::from_static(b"r=abc"))
        );
        assert_eq!(
            msgs[3],
            Message::AuthenticationSaslFinal(Bytes::from_static(b"v=xyz"))
        );
        assert_eq!(msgs[4], Message::AuthenticationUnsupported { code: 7 });
        assert_eq!(msgs[5], Message::AuthenticationCleartextPassword);
    }

    #[test]
    fn remaining_messages() {
        let mut pd = BytesMut::new();
        pd.put_i16(2);
        pd.put_u32(23);
        pd.put_u32(25);
        let msgs = decode_all(
            &[
                frame(b'1', b""),
                frame(b'2', b""),
                frame(b'3', b""),
                frame(b'n', b""),
                frame(b'I', b""),
                frame(b's', b""),
                frame(b't', &pd),
                frame(b'A', b"\0\0\0\x07chan\0hi\0"),
                frame(b'v', b"\0\0\0\x00\0\0\0\x01_pq_.x\0"),
                frame(b'G', b"\0\0\0"),
                frame(b'H', b"\0\0\0"),
                frame(b'd', b"row"),
                frame(b'c', b""),
                frame(b'N', b"SWARNING\0C01000\0Mcareful\0\0"),
            ]
            .concat(),
        );
        assert_eq!(msgs[0], Message::ParseComplete);
        assert_eq!(msgs[1], Message::BindComplete);
        assert_eq!(msgs[2], Message::CloseComplete);
        assert_eq!(msgs[3], Message::NoData);
        assert_eq!(msgs[4], Message::EmptyQueryResponse);
        assert_eq!(msgs[5], Message::PortalSuspended);
        assert_eq!(msgs[6], Message::ParameterDescription(vec![23, 25]));
        assert_eq!(
            msgs[7],
            Message::NotificationResponse {
                process_id: 7,
                channel: "chan".into(),
                payload: "hi".into()
            }
        );
        assert_eq!(
            msgs[8],
            Message::NegotiateProtocolVersion {
                newest_minor: 0,
                unrecognized: vec!["_pq_.x".into()]
            }
        );
        assert_eq!(msgs[9], Message::CopyInResponse);
        assert_eq!(msgs[10], Message::CopyOutResponse);
        assert_eq!(msgs[11], Message::CopyData(Bytes::from_static(b"row")));
        assert_eq!(msgs[12], Message::CopyDone);
        let Message::NoticeResponse(n) = &msgs[13] else {
            panic!()
        };
        assert_eq!(n.message, "careful");
    }

    #[test]
    fn unknown_and_truncated_messages_are_errors() {
        assert!(Message::decode(b'!', Bytes::new()).is_err());
        assert!(Message::decode(b'Z', Bytes::from_static(b"Q")).is_err());
        assert!(Message::decode(b'Z', Bytes::new()).is_err());
        assert!(Message::decode(b'K', Bytes::from_static(&[0, 0])).is_err());
        assert!(Message::decode(b'S', Bytes::from_static(b"name")).is_err());
        assert!(Message::decode(b'T', Bytes::from_static(&[0x7f, 0xff])).is_err());
        assert!(Message::decode(b't', Bytes::from_static(&[0, 5, 0, 0])).is_err());
        assert!(Message::decode(b'R', Bytes::from_static(&[0, 0, 0, 99])).is_err());
        assert!(Message::decode(b'1', Bytes::from_static(b"x")).is_err());
    }
}
