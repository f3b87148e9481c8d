//! A scripted PostgreSQL backend for protocol edge cases no real server produces on demand
//! (the idea of pgx's `internal/pgmock`, written for our driver), for the tests of this crate
//! and of the crates above it (feature `test-support`).
//!
//! Two ways to drive it:
//!
//! * step by step: [`start`] runs `connect_stream` on one end of an in-memory
//!   `tokio::io::duplex`; the test holds the other end as a [`Mock`], reads the frontend
//!   messages the client sends and writes raw backend bytes built with [`be`];
//! * by script: [`spawn_backend`] answers startup (trust, PostgreSQL 17's parameters) and then
//!   calls a closure for every message the client sends, writing back what it returns
//!   ([`Reply`]). [`connect_scripted`] does that and connects a [`Client`] to it.
//!
//! Test code: it panics on anything unexpected.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Buf, Bytes, BytesMut};
use hyperion_wire::connection::connect_stream;
use hyperion_wire::{Client, Config, Error, Host};
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

/// How long any one test may take before it counts as a hang.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a test body, failing it (instead of blocking the suite) if it hangs.
pub async fn timed<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("the test hung (timed out)")
}

pub fn config() -> Config {
    Config::new(
        Host {
            host: "127.0.0.1".into(),
            port: 5432,
        },
        "u",
    )
}

pub fn config_with_password(password: &str) -> Config {
    let mut c = config();
    c.password = Some(password.as_bytes().to_vec());
    c
}

/// Starts `connect_stream` on one end of a duplex pipe; the test drives the returned mock.
pub fn start(config: Config) -> (JoinHandle<Result<Client, Error>>, Mock) {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let handle = tokio::spawn(async move { connect_stream(client_end, &config).await });
    (handle, Mock::new(server_end))
}

/// A connected client over a trust-authenticated mock.
pub async fn connected() -> (Client, Mock) {
    let (handle, mut mock) = start(config());
    mock.trust().await;
    let client = handle.await.expect("connect task").expect("connect");
    (client, mock)
}

/// One message the client sent. `tag` is 0 for the (untagged) startup message.
#[derive(Debug, Clone)]
pub struct Frontend {
    pub tag: u8,
    pub body: Bytes,
}

impl Frontend {
    /// The SQL of a simple Query.
    pub fn query_text(&self) -> String {
        assert_eq!(self.tag, b'Q', "expected a Query, got {self:?}");
        let mut b = &self.body[..];
        let s = cstr(&mut b);
        assert!(b.is_empty());
        s
    }
}

/// A NUL-terminated string off the front of `b`.
pub fn cstr(b: &mut &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).expect("unterminated string");
    let s = String::from_utf8(b[..end].to_vec()).expect("UTF-8");
    *b = &b[end + 1..];
    s
}

/// A decoded Bind message.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub portal: String,
    pub statement: String,
    pub param_formats: Vec<i16>,
    pub values: Vec<Option<Vec<u8>>>,
    pub result_formats: Vec<i16>,
}

pub fn parse_bind(msg: &Frontend) -> Bind {
    assert_eq!(msg.tag, b'B', "expected a Bind, got {msg:?}");
    let mut b = &msg.body[..];
    let portal = cstr(&mut b);
    let statement = cstr(&mut b);
    let n = b.get_i16();
    let param_formats = (0..n).map(|_| b.get_i16()).collect();
    let n = b.get_i16();
    let values = (0..n)
        .map(|_| {
            let len = b.get_i32();
            if len < 0 {
                None
            } else {
                let v = b[..len as usize].to_vec();
                b.advance(len as usize);
                Some(v)
            }
        })
        .collect();
    let n = b.get_i16();
    let result_formats = (0..n).map(|_| b.get_i16()).collect();
    assert!(b.is_empty(), "trailing bytes in Bind");
    Bind {
        portal,
        statement,
        param_formats,
        values,
        result_formats,
    }
}

/// A decoded Parse message: (statement name, SQL, parameter type OIDs).
pub fn parse_parse(msg: &Frontend) -> (String, String, Vec<u32>) {
    assert_eq!(msg.tag, b'P', "expected a Parse, got {msg:?}");
    let mut b = &msg.body[..];
    let name = cstr(&mut b);
    let sql = cstr(&mut b);
    let n = b.get_i16();
    let types = (0..n).map(|_| b.get_u32()).collect();
    assert!(b.is_empty());
    (name, sql, types)
}

/// The server side of the test's duplex pipe.
pub struct Mock {
    io: DuplexStream,
    buf: BytesMut,
}

impl Mock {
    pub fn new(io: DuplexStream) -> Self {
        Mock {
            io,
            buf: BytesMut::new(),
        }
    }

    /// Reads until `n` bytes are buffered; false on EOF first.
    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            // `read_buf` is cancel-safe, so `recv` can be raced against a timer.
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        true
    }

    /// The StartupMessage: checks the protocol version and returns its parameters.
    pub async fn startup(&mut self) -> Vec<(String, String)> {
        let (version, params) = self.startup_version().await;
        assert_eq!(version, 196_608, "protocol 3.0");
        params
    }

    /// The StartupMessage's protocol version (major << 16 | minor) and parameters.
    pub async fn startup_version(&mut self) -> (i32, Vec<(String, String)>) {
        assert!(self.fill(4).await, "EOF before the startup message");
        let len = u32::from_be_bytes(self.buf[..4].try_into().unwrap()) as usize;
        assert!((8..10_000).contains(&len), "startup length {len}");
        assert!(self.fill(len).await, "EOF inside the startup message");
        let mut msg = self.buf.split_to(len);
        msg.advance(4);
        let version = msg.get_i32();
        let mut b = &msg[..];
        let mut params = vec![];
        loop {
            let name = cstr(&mut b);
            if name.is_empty() {
                break;
            }
            params.push((name, cstr(&mut b)));
        }
        assert!(b.is_empty());
        (version, params)
    }

    /// The next tagged message, or None at EOF.
    pub async fn recv(&mut self) -> Option<Frontend> {
        if !self.fill(5).await {
            assert!(self.buf.is_empty(), "EOF inside a message header");
            return None;
        }
        let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
        assert!((4..16 << 20).contains(&len), "frontend length {len}");
        assert!(self.fill(len + 1).await, "EOF inside a message");
        let mut msg = self.buf.split_to(len + 1);
        let tag = msg[0];
        msg.advance(5);
        Some(Frontend {
            tag,
            body: msg.freeze(),
        })
    }

    /// The next message, which must have tag `tag`.
    pub async fn expect(&mut self, tag: u8) -> Frontend {
        let msg = self
            .recv()
            .await
            .unwrap_or_else(|| panic!("EOF, expected {:?}", tag as char));
        assert_eq!(msg.tag, tag, "expected {:?}, got {msg:?}", tag as char);
        msg
    }

    /// One request: a simple Query, or extended-protocol messages up to and including Sync.
    pub async fn recv_group(&mut self) -> Vec<Frontend> {
        let mut group = vec![];
        loop {
            let msg = self.recv().await.expect("EOF inside a request");
            let tag = msg.tag;
            group.push(msg);
            if tag == b'S' || (tag == b'Q' && group.len() == 1) {
                return group;
            }
        }
    }

    /// Nothing arrives within `wait` (and the client has not closed the pipe).
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(msg) = tokio::time::timeout(wait, self.recv()).await {
            panic!("expected nothing, got {msg:?}");
        }
    }

    /// Writes unless the client has gone (a flood the client cuts short); false then.
    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> bool {
        self.io.write_all(bytes.as_ref()).await.is_ok() && self.io.flush().await.is_ok()
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io.write_all(bytes.as_ref()).await.expect("mock write");
        self.io.flush().await.expect("mock flush");
    }

    /// Everything after authentication, as PostgreSQL 17 sends it.
    pub async fn finish_startup(&mut self) {
        self.finish_startup_with(&[]).await
    }

    /// As [`Mock::finish_startup`], with extra/overriding ParameterStatus values.
    pub async fn finish_startup_with(&mut self, extra: &[(&str, &str)]) {
        let mut out = be::auth_ok();
        for (name, value) in [
            ("server_version", "17.7"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
        ] {
            if !extra.iter().any(|(n, _)| *n == name) {
                out.extend(be::parameter_status(name, value));
            }
        }
        for (name, value) in extra {
            out.extend(be::parameter_status(name, value));
        }
        out.extend(be::backend_key_data(4242, &[1, 2, 3, 4]));
        out.extend(be::ready(b'I'));
        self.send(out).await;
    }

    /// Reads the startup message and accepts it without a password.
    pub async fn trust(&mut self) {
        let params = self.startup().await;
        assert!(params.contains(&("user".into(), "u".into())), "{params:?}");
        self.finish_startup().await;
    }

    /// Answers a simple Query with one text column `n` and the given rows.
    pub async fn answer_rows(&mut self, rows: &[&str]) {
        let mut out = be::row_description(&[("n", 25)]);
        for r in rows {
            out.extend(be::data_row(&[Some(r.as_bytes())]));
        }
        out.extend(be::command_complete(&format!("SELECT {}", rows.len())));
        out.extend(be::ready(b'I'));
        self.send(out).await;
    }
}

/// What a script answers to one message the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Writes these bytes (backend messages built with [`be`]; empty: nothing yet).
    Send(Vec<u8>),
    /// Drops the connection (a server that went away: EOF to the client).
    Close,
    /// Never answers again, keeping the socket open (a hung server); the backend still
    /// reads and discards what the client sends.
    Hang,
}

/// A scripted server's side of one connection: the client's end of the duplex, and the task
/// running the script (it ends when the client closes the pipe or the script says so).
pub struct ScriptedBackend {
    pub stream: DuplexStream,
    pub task: JoinHandle<()>,
}

/// Starts a scripted backend on an in-memory duplex. It reads the StartupMessage, accepts it
/// without a password (ParameterStatus as PostgreSQL 17 sends them, with
/// `default_transaction_read_only` and `in_hot_standby` `off` unless `parameters` overrides
/// or adds them), then calls `script` for every message the client sends and writes what it
/// returns. Hand the returned stream to [`connect_stream`] (or use [`connect_scripted`]).
pub fn spawn_backend<F>(parameters: &[(&str, &str)], mut script: F) -> ScriptedBackend
where
    F: FnMut(&Frontend) -> Reply + Send + 'static,
{
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let parameters: Vec<(String, String)> = parameters
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let task = tokio::spawn(async move {
        let mut mock = Mock::new(server_end);
        mock.startup().await;
        let extra: Vec<(&str, &str)> = parameters
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        mock.finish_startup_with(&extra).await;
        let mut hung = false;
        while let Some(msg) = mock.recv().await {
            if hung {
                continue;
            }
            match script(&msg) {
                Reply::Send(bytes) if bytes.is_empty() => {}
                Reply::Send(bytes) => {
                    if !mock.try_send(bytes).await {
                        return;
                    }
                }
                Reply::Close => return,
                Reply::Hang => hung = true,
            }
        }
    });
    ScriptedBackend {
        stream: client_end,
        task,
    }
}

/// A [`Client`] connected (with [`config`]) to a backend scripted as in [`spawn_backend`].
pub async fn connect_scripted<F>(
    parameters: &[(&str, &str)],
    script: F,
) -> Result<(Client, JoinHandle<()>), Error>
where
    F: FnMut(&Frontend) -> Reply + Send + 'static,
{
    let backend = spawn_backend(parameters, script);
    let client = connect_stream(backend.stream, &config()).await?;
    Ok((client, backend.task))
}

/// A script for the common case: every simple Query gets the rows `answer` returns for its
/// SQL (one text column `n`), and each extended-protocol message the usual answer
/// (ParseComplete; for a Describe of a statement, no parameters and no rows; BindComplete;
/// for Execute, `CommandComplete` with the tag `SELECT 0`; ReadyForQuery at Sync).
pub fn simple_script(
    mut answer: impl FnMut(&str) -> Vec<String> + Send + 'static,
) -> impl FnMut(&Frontend) -> Reply + Send + 'static {
    move |msg: &Frontend| {
        Reply::Send(match msg.tag {
            b'Q' => {
                let rows = answer(&msg.query_text());
                let mut out = be::row_description(&[("n", 25)]);
                for r in &rows {
                    out.extend(be::data_row(&[Some(r.as_bytes())]));
                }
                out.extend(be::command_complete(&format!("SELECT {}", rows.len())));
                out.extend(be::ready(b'I'));
                out
            }
            b'P' => be::parse_complete(),
            b'D' if msg.body.first() == Some(&b'S') => {
                let mut out = be::parameter_description(&[]);
                out.extend(be::no_data());
                out
            }
            b'D' => be::no_data(),
            b'B' => be::bind_complete(),
            b'E' => be::command_complete("SELECT 0"),
            b'S' => be::ready(b'I'),
            b'C' => be::close_complete(),
            _ => vec![],
        })
    }
}

/// The settings of a real server for the `#[ignore]`d tests that need one, from
/// `HYPERION_WIRE_HOST` / `_PORT` / `_USER` / `_PASSWORD` / `_DATABASE` (set by the Node test
/// that runs them, `runner`): a missing variable fails the test rather than skipping it.
pub fn real_server_config(runner: &str) -> Config {
    let env = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run these through {runner}"))
    };
    let host = Host {
        host: env("HYPERION_WIRE_HOST"),
        port: env("HYPERION_WIRE_PORT")
            .parse()
            .expect("HYPERION_WIRE_PORT"),
    };
    let mut c = Config::new(host, env("HYPERION_WIRE_USER"));
    c.password = Some(env("HYPERION_WIRE_PASSWORD").into_bytes());
    c.database = Some(env("HYPERION_WIRE_DATABASE"));
    c
}

/// The first column of the first row, as text.
pub fn first_text(r: &hyperion_wire::QueryResult) -> String {
    let v = r.rows[0].values().next().unwrap().unwrap();
    String::from_utf8(v.to_vec()).unwrap()
}

/// Builders for raw backend messages.
pub mod be {
    use bytes::{BufMut, BytesMut};

    pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(body.len() + 5);
        v.push(tag);
        v.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    pub fn auth(code: i32, data: &[u8]) -> Vec<u8> {
        let mut b = code.to_be_bytes().to_vec();
        b.extend_from_slice(data);
        frame(b'R', &b)
    }

    pub fn auth_ok() -> Vec<u8> {
        auth(0, &[])
    }

    pub fn parameter_status(name: &str, value: &str) -> Vec<u8> {
        frame(b'S', format!("{name}\0{value}\0").as_bytes())
    }

    pub fn backend_key_data(pid: i32, key: &[u8]) -> Vec<u8> {
        let mut b = pid.to_be_bytes().to_vec();
        b.extend_from_slice(key);
        frame(b'K', &b)
    }

    pub fn ready(status: u8) -> Vec<u8> {
        frame(b'Z', &[status])
    }

    pub fn row_description(cols: &[(&str, u32)]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(cols.len() as i16);
        for (name, oid) in cols {
            b.put_slice(name.as_bytes());
            b.put_u8(0);
            b.put_u32(0); // table oid
            b.put_i16(0); // column number
            b.put_u32(*oid);
            b.put_i16(-1);
            b.put_i32(-1);
            b.put_i16(0); // text
        }
        frame(b'T', &b)
    }

    pub fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
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

    pub fn command_complete(tag: &str) -> Vec<u8> {
        frame(b'C', format!("{tag}\0").as_bytes())
    }

    fn fields(severity: &str, code: &str, message: &str) -> Vec<u8> {
        format!("S{severity}\0V{severity}\0C{code}\0M{message}\0Fmock.c\0L1\0Rmock\0\0")
            .into_bytes()
    }

    pub fn error(severity: &str, code: &str, message: &str) -> Vec<u8> {
        frame(b'E', &fields(severity, code, message))
    }

    pub fn notice(severity: &str, code: &str, message: &str) -> Vec<u8> {
        frame(b'N', &fields(severity, code, message))
    }

    pub fn parse_complete() -> Vec<u8> {
        frame(b'1', &[])
    }

    pub fn bind_complete() -> Vec<u8> {
        frame(b'2', &[])
    }

    pub fn close_complete() -> Vec<u8> {
        frame(b'3', &[])
    }

    pub fn no_data() -> Vec<u8> {
        frame(b'n', &[])
    }

    pub fn parameter_description(types: &[u32]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(types.len() as i16);
        for t in types {
            b.put_u32(*t);
        }
        frame(b't', &b)
    }

    /// CopyInResponse / CopyOutResponse for one text column.
    pub fn copy_in_response() -> Vec<u8> {
        frame(b'G', &[0, 0, 1, 0, 0])
    }

    pub fn copy_out_response() -> Vec<u8> {
        frame(b'H', &[0, 0, 1, 0, 0])
    }

    pub fn copy_data(data: &[u8]) -> Vec<u8> {
        frame(b'd', data)
    }

    pub fn copy_done() -> Vec<u8> {
        frame(b'c', &[])
    }
}
