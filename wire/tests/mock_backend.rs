//! The connection driver against a scripted backend: startup and every auth branch, SCRAM
//! against a real server-side implementation, pipelining with a failing middle request,
//! notices, read-only signals, malformed and oversized input, a cut connection, COPY refusal,
//! FATAL errors and a clean close. No PostgreSQL server is needed.

// The scripted backend, shared with the crates above through the `test-support` feature.
#[path = "../src/test_support.rs"]
mod support;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hyperion_wire::{Client, Error, ErrorKind, QueryResult, RowStream};
use sha2::{Digest, Sha256};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};
use support::{
    be, config, config_with_password, connected, parse_bind, parse_parse, start, timed, Mock,
};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// The largest single allocation made on the current thread, to show that an untrusted length
// is never reserved. Tests that read it use the current-thread runtime, so the connection task
// runs on the test's own thread.

struct TrackLargest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

unsafe impl GlobalAlloc for TrackLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: TrackLargest = TrackLargest;

fn reset_largest() {
    LARGEST.with(|l| l.set(0));
}

fn largest() -> usize {
    LARGEST.with(|l| l.get())
}

/// No allocation anywhere near a declared gigabyte.
const ALLOCATION_LIMIT: usize = 8 << 20;

// ---------------------------------------------------------------------------------------------

fn spawn_simple(client: &Client, sql: &'static str) -> JoinHandle<Result<Vec<QueryResult>, Error>> {
    let c = client.clone();
    tokio::spawn(async move { c.simple_query(sql).await })
}

/// The connection still answers a query after whatever the test did to it.
async fn assert_still_usable(client: &Client, mock: &mut support::Mock) {
    let q = spawn_simple(client, "select 'after'");
    mock.recv_group().await;
    mock.answer_rows(&["after"]).await;
    assert_eq!(column0(&q.await.unwrap().unwrap()[0]), vec![s("after")]);
}

fn spawn_query(
    client: &Client,
    sql: &'static str,
    param: &'static str,
) -> JoinHandle<Result<QueryResult, Error>> {
    let c = client.clone();
    tokio::spawn(async move { c.query(sql, &[Some(param)][..]).await })
}

/// The first column of every row, as text.
fn column0(result: &QueryResult) -> Vec<Option<String>> {
    result
        .rows
        .iter()
        .map(|r| {
            r.values()
                .next()
                .unwrap()
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// Waits (bounded by the test timeout) until the connection notices it is closed.
async fn until_closed(client: &Client) {
    while !client.is_closed() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A request on a dead connection fails at once, as closed, and is safe to retry.
async fn assert_new_request_fails_closed(client: &Client) {
    let t0 = Instant::now();
    let err = client.simple_query("select 1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
    assert!(err.is_closed());
    assert!(err.safe_to_retry(), "never reached the socket: {err:?}");
    assert!(t0.elapsed() < Duration::from_secs(1));
}

// --- startup and authentication --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_startup_reports_parameters() {
    timed(async {
        let (handle, mut mock) = start(config());
        let params = mock.startup().await;
        for want in [
            ("user", "u"),
            ("client_encoding", "UTF8"),
            ("application_name", "hyperiondb-client"),
        ] {
            assert!(
                params.contains(&(want.0.into(), want.1.into())),
                "{params:?}"
            );
        }
        mock.finish_startup().await;
        let client = handle.await.unwrap().unwrap();
        assert_eq!(client.server_version_num(), 170007);
        assert_eq!(client.parameter("server_version").as_deref(), Some("17.7"));
        assert_eq!(client.parameter("in_hot_standby").as_deref(), Some("off"));
        assert!(client.state().reports_read_only());
        assert!(!client.state().is_read_only());
        assert!(!client.state().in_hot_standby());
        assert_eq!(client.process_id(), 4242);
        assert!(!client.is_closed());

        let q = spawn_simple(&client, "select n from t");
        assert_eq!(mock.recv_group().await[0].query_text(), "select n from t");
        mock.answer_rows(&["a", "b"]).await;
        let results = q.await.unwrap().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(column0(&results[0]), vec![s("a"), s("b")]);
        assert_eq!(results[0].command_tag.as_deref(), Some("SELECT 2"));
        assert_eq!(results[0].rows_affected(), Some(2));
        assert_eq!(results[0].columns.as_ref().unwrap()[0].name, "n");
        assert_eq!(client.state().in_flight(), 0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_standby_at_startup() {
    timed(async {
        let (handle, mut mock) = start(config());
        mock.startup().await;
        mock.finish_startup_with(&[
            ("default_transaction_read_only", "on"),
            ("in_hot_standby", "on"),
        ])
        .await;
        let client = handle.await.unwrap().unwrap();
        assert!(client.state().is_read_only());
        assert!(client.state().in_hot_standby());
        assert!(client.state().default_transaction_read_only());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_password() {
    timed(async {
        // Cleartext over a connection without TLS needs the explicit opt-in (auth_policy.rs
        // tests the refusal).
        let mut config = config_with_password("s3cret");
        config.require_auth = "password".parse().unwrap();
        let (handle, mut mock) = start(config);
        mock.startup().await;
        mock.send(be::auth(3, &[])).await;
        let p = mock.expect(b'p').await;
        assert_eq!(&p.body[..], b"s3cret\0");
        mock.finish_startup().await;
        handle.await.unwrap().unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_password() {
    timed(async {
        let salt = [0x93, 0x1e, 0x5a, 0x07];
        let (handle, mut mock) = start(config_with_password("s3cret"));
        mock.startup().await;
        mock.send(be::auth(5, &salt)).await;
        let p = mock.expect(b'p').await;

        // "md5" + md5hex(md5hex(password + user) + salt), computed here independently...
        let inner = format!("{:x}", md5::Md5::digest(b"s3cretu"));
        let mut outer = md5::Md5::new();
        md5::Digest::update(&mut outer, inner.as_bytes());
        md5::Digest::update(&mut outer, salt);
        let want = format!("md5{:x}\0", outer.finalize());
        assert_eq!(std::str::from_utf8(&p.body).unwrap(), want);
        // ... and by Python's hashlib.
        assert_eq!(&p.body[..], b"md5ddcd81b13677d02e70b55f7c6a9529cb\0");

        mock.finish_startup().await;
        handle.await.unwrap().unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_password_is_an_auth_error() {
    timed(async {
        for request in [
            be::auth(3, &[]),
            be::auth(5, &[1, 2, 3, 4]),
            be::auth(10, b"SCRAM-SHA-256\0\0"),
        ] {
            let (handle, mut mock) = start(config());
            mock.startup().await;
            mock.send(&request).await;
            let err = handle.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
            assert!(err.message().contains("password"), "{err:?}");
            assert!(err.is_fatal_config());
            assert!(
                mock.recv().await.is_none(),
                "the client sent something after failing"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_methods_are_named() {
    timed(async {
        let cases: [(Vec<u8>, &str); 4] = [
            (be::auth(7, &[]), "GSSAPI"),
            (be::auth(9, &[]), "SSPI"),
            (be::auth(2, &[]), "Kerberos"),
            (
                be::auth(10, b"SCRAM-SHA-256-PLUS\0\0"),
                "SCRAM-SHA-256-PLUS",
            ),
        ];
        for (request, name) in cases {
            // A password is set, so only the method itself can be the problem.
            let (handle, mut mock) = start(config_with_password("pw"));
            mock.startup().await;
            mock.send(&request).await;
            let err = handle.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err:?}");
            assert!(err.message().contains(name), "{name}: {err:?}");
            assert!(
                mock.recv().await.is_none(),
                "the client sent something after refusing"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_response_during_startup() {
    timed(async {
        let (handle, mut mock) = start(config_with_password("pw"));
        mock.startup().await;
        mock.send(be::error(
            "FATAL",
            "3D000",
            "database \"nope\" does not exist",
        ))
        .await;
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db);
        assert_eq!(err.code(), "3D000");
        assert!(err.is_fatal_config());
    })
    .await
}

// --- SCRAM-SHA-256 against a server that implements its side -----------------------------------

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256, one block (RFC 5802 `Hi`).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()].concat());
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum ScramEnding {
    /// The correct server signature, then AuthenticationOk.
    Good,
    /// A server that does not know the password: its signature does not verify.
    WrongSignature,
    /// `e=invalid-proof` in the server-final message.
    ServerError,
    /// An ErrorResponse 28P01 instead of the SASL final message.
    ErrorResponse,
}

/// Plays the server side of SCRAM-SHA-256 for the stored `password`, verifying the client's
/// proof (as PostgreSQL does) before answering with `ending`.
async fn scram_server(mock: &mut Mock, password: &str, ending: ScramEnding) {
    mock.startup().await;
    mock.send(be::auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"))
        .await;

    // SASLInitialResponse: mechanism, then a length-prefixed client-first message.
    let first = mock.expect(b'p').await;
    let mut b = &first.body[..];
    assert_eq!(support::cstr(&mut b), "SCRAM-SHA-256");
    let len = i32::from_be_bytes(b[..4].try_into().unwrap());
    let client_first = std::str::from_utf8(&b[4..]).unwrap();
    assert_eq!(len as usize, client_first.len());
    let bare = client_first
        .strip_prefix("n,,")
        .expect("gs2 header without channel binding");
    let client_nonce = bare.split_once(",r=").expect("client nonce").1;
    assert!(client_nonce.len() >= 18, "{client_nonce}");

    let salt = b"hyperion-salt-16";
    let iterations = 4096;
    let server_nonce = format!("{client_nonce}Q2mX+9zKsrv");
    let server_first = format!("r={server_nonce},s={},i={iterations}", BASE64.encode(salt));
    mock.send(be::auth(11, server_first.as_bytes())).await;

    let fin = mock.expect(b'p').await;
    let client_final = std::str::from_utf8(&fin.body).unwrap();
    let (without_proof, proof) = client_final.rsplit_once(",p=").expect("proof");
    assert_eq!(without_proof, format!("c=biws,r={server_nonce}"));

    let salted = hi(password.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let client_signature = hmac(&stored_key, auth_message.as_bytes());
    let recovered: Vec<u8> = BASE64
        .decode(proof)
        .unwrap()
        .iter()
        .zip(client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    assert_eq!(
        Sha256::digest(&recovered).as_slice(),
        stored_key,
        "the client's proof does not verify"
    );
    let server_key = hmac(&salted, b"Server Key");
    let mut server_signature = hmac(&server_key, auth_message.as_bytes());

    match ending {
        ScramEnding::Good => {
            let v = format!("v={}", BASE64.encode(server_signature));
            mock.send(be::auth(12, v.as_bytes())).await;
            mock.finish_startup().await;
        }
        ScramEnding::WrongSignature => {
            server_signature[0] ^= 1;
            let v = format!("v={}", BASE64.encode(server_signature));
            // A spoofing server would claim success right after.
            let mut out = be::auth(12, v.as_bytes());
            out.extend(be::auth_ok());
            mock.send(out).await;
        }
        ScramEnding::ServerError => mock.send(be::auth(12, b"e=invalid-proof")).await,
        ScramEnding::ErrorResponse => {
            mock.send(be::error(
                "FATAL",
                "28P01",
                "password authentication failed for user \"u\"",
            ))
            .await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_success() {
    timed(async {
        let (handle, mut mock) = start(config_with_password("correct horse"));
        scram_server(&mut mock, "correct horse", ScramEnding::Good).await;
        let client = handle.await.unwrap().unwrap();
        assert_eq!(client.server_version_num(), 170007);
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        mock.answer_rows(&["1"]).await;
        assert_eq!(column0(&q.await.unwrap().unwrap()[0]), vec![s("1")]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_wrong_server_signature_is_refused() {
    timed(async {
        let (handle, mut mock) = start(config_with_password("correct horse"));
        scram_server(&mut mock, "correct horse", ScramEnding::WrongSignature).await;
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
        assert!(err.message().contains("signature"), "{err:?}");
        // No client was made, and the client hung up without sending anything more.
        assert!(mock.recv().await.is_none());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_server_error_in_final_message() {
    timed(async {
        let (handle, mut mock) = start(config_with_password("correct horse"));
        scram_server(&mut mock, "correct horse", ScramEnding::ServerError).await;
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
        assert!(err.message().contains("invalid-proof"), "{err:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_error_response_instead_of_final() {
    timed(async {
        let (handle, mut mock) = start(config_with_password("correct horse"));
        scram_server(&mut mock, "correct horse", ScramEnding::ErrorResponse).await;
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db, "{err:?}");
        assert_eq!(err.code(), "28P01");
        assert!(err.is_fatal_config());
    })
    .await
}

// --- pipelining ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_simple_queries_with_a_failing_middle_one() {
    timed(async {
        let (client, mut mock) = connected().await;
        let a = spawn_simple(&client, "select 'one'");
        let b = spawn_simple(&client, "select 'two'");
        let c = spawn_simple(&client, "select 'three'");
        // All three reach the server before it answers any: they are pipelined.
        let mut order = vec![];
        for _ in 0..3 {
            order.push(mock.recv_group().await[0].query_text());
        }
        assert_eq!(client.state().in_flight(), 3);
        for sql in &order {
            match sql.as_str() {
                "select 'two'" => {
                    let mut out = be::error("ERROR", "22012", "division by zero");
                    out.extend(be::ready(b'I'));
                    mock.send(out).await;
                }
                "select 'one'" => mock.answer_rows(&["one"]).await,
                "select 'three'" => mock.answer_rows(&["three", "3"]).await,
                other => panic!("{other}"),
            }
        }
        assert_eq!(column0(&a.await.unwrap().unwrap()[0]), vec![s("one")]);
        let err = b.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "22012");
        assert!(!err.is_closed());
        assert_eq!(
            column0(&c.await.unwrap().unwrap()[0]),
            vec![s("three"), s("3")]
        );
        assert_eq!(client.state().in_flight(), 0);
        assert!(!client.is_closed());
    })
    .await
}

/// Prepares `sql` (one int4 parameter, one int4 column "x") against the mock: Parse/Describe/
/// Sync answered. Returns the statement and its server-side name.
async fn prepare_int4(
    client: &Client,
    mock: &mut Mock,
    sql: &'static str,
) -> (std::sync::Arc<hyperion_wire::Statement>, String) {
    let prepare = {
        let c = client.clone();
        tokio::spawn(async move { c.prepare(sql).await })
    };
    let group = mock.recv_group().await;
    assert_eq!(group.iter().map(|m| m.tag).collect::<Vec<_>>(), b"PDS");
    let (name, text, types) = parse_parse(&group[0]);
    assert_eq!((text.as_str(), types.len()), (sql, 0));
    assert_eq!(&group[1].body[..], format!("S{name}\0").as_bytes());
    let mut out = be::parse_complete();
    out.extend(be::parameter_description(&[23]));
    out.extend(be::row_description(&[("x", 23)]));
    out.extend(be::ready(b'I'));
    mock.send(out).await;
    let stmt = prepare.await.unwrap().unwrap();
    assert_eq!(stmt.param_types(), &[23]);
    (stmt, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_prepared_queries_with_a_failing_middle_one() {
    timed(async {
        const SQL: &str = "select 10 / (2 - $1::int) * 10";
        let (client, mut mock) = connected().await;
        let (stmt, name) = prepare_int4(&client, &mut mock, SQL).await;
        assert_eq!(stmt.columns()[0].name, "x");

        // Three executions in flight at once (the statement is cached: Bind/Execute/Sync).
        let q1 = spawn_query(&client, SQL, "1");
        let q2 = spawn_query(&client, SQL, "2");
        let q3 = spawn_query(&client, SQL, "3");
        let mut binds = vec![];
        for _ in 0..3 {
            let group = mock.recv_group().await;
            assert_eq!(group.iter().map(|m| m.tag).collect::<Vec<_>>(), b"BES");
            let bind = parse_bind(&group[0]);
            assert_eq!(bind.statement, name);
            assert_eq!(bind.result_formats, vec![0]);
            binds.push(bind.values[0].clone().unwrap());
        }
        for v in &binds {
            let mut out = be::bind_complete();
            match &v[..] {
                b"2" => out.extend(be::error("ERROR", "22012", "division by zero")),
                b"1" | b"3" => {
                    out.extend(be::data_row(&[Some(
                        format!("{}0", v[0] as char).as_bytes(),
                    )]));
                    out.extend(be::command_complete("SELECT 1"));
                }
                other => panic!("{other:?}"),
            }
            out.extend(be::ready(b'I'));
            mock.send(out).await;
        }
        let r1 = q1.await.unwrap().unwrap();
        assert_eq!(column0(&r1), vec![s("10")]);
        assert_eq!(r1.columns.as_ref().unwrap()[0].name, "x");
        assert_eq!(q2.await.unwrap().unwrap_err().code(), "22012");
        assert_eq!(column0(&q3.await.unwrap().unwrap()), vec![s("30")]);
        assert_eq!(client.state().in_flight(), 0);
    })
    .await
}

// --- rows streamed in batches ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_stream_in_batches_and_the_probe_ahead_is_not_streamed() {
    timed(async {
        const SQL: &str = "select generate_series(1, $1::int) as x";
        let (client, mut mock) = connected().await;
        let (stmt, _) = prepare_int4(&client, &mut mock, SQL).await;

        // Each DataRow of one 2-byte value has an 8-byte body (count, length, value): a batch
        // of 24 bytes is handed over after every third row.
        let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::<QueryResult>::new()));
        let stream = {
            let b = batches.clone();
            RowStream::new(24, move |r| b.lock().unwrap().push(r))
        };
        let run = {
            let c = client.clone();
            tokio::spawn(async move {
                c.execute_after("SHOW probe", &stmt, &[Some("7")][..], Some(stream))
                    .await
            })
        };
        assert_eq!(mock.recv_group().await[0].tag, b'Q');
        assert_eq!(
            mock.recv_group()
                .await
                .iter()
                .map(|m| m.tag)
                .collect::<Vec<_>>(),
            b"BES"
        );
        // The probe's own rows (more than a batch) stay with the probe.
        let mut out = be::row_description(&[("probe", 25)]);
        for v in ["p1", "p2", "p3", "p4"] {
            out.extend(be::data_row(&[Some(v.as_bytes())]));
        }
        out.extend(be::command_complete("SHOW"));
        out.extend(be::ready(b'I'));
        out.extend(be::bind_complete());
        mock.send(out).await;
        // The statement's rows arrive in two writes; the first batch is handed over before
        // the statement completes.
        let mut out = vec![];
        for v in ["01", "02", "03", "04"] {
            out.extend(be::data_row(&[Some(v.as_bytes())]));
        }
        mock.send(out).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while batches.lock().unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "no batch before the statement completed"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(!run.is_finished());
        let mut out = vec![];
        for v in ["05", "06", "07"] {
            out.extend(be::data_row(&[Some(v.as_bytes())]));
        }
        out.extend(be::command_complete("SELECT 7"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;

        let (probe, executed) = run.await.unwrap().unwrap();
        let probe = probe.unwrap();
        assert_eq!(column0(&probe[0]), vec![s("p1"), s("p2"), s("p3"), s("p4")]);
        let executed = executed.unwrap();
        let batches = std::mem::take(&mut *batches.lock().unwrap());
        let rows: Vec<Vec<Option<String>>> = batches.iter().map(column0).collect();
        assert_eq!(
            rows,
            vec![
                vec![s("01"), s("02"), s("03")],
                vec![s("04"), s("05"), s("06")]
            ]
        );
        for b in &batches {
            assert_eq!(b.columns.as_ref().unwrap()[0].name, "x");
            assert!(b.command_tag.is_none());
        }
        // The rest, and the tag, come with the result.
        assert_eq!(column0(&executed), vec![s("07")]);
        assert_eq!(executed.command_tag.as_deref(), Some("SELECT 7"));
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

// --- notices and read-only signals ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_collected_without_disturbing_rows() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select n");
        mock.recv_group().await;
        let mut out = be::row_description(&[("n", 25)]);
        out.extend(be::data_row(&[Some(b"1")]));
        out.extend(be::notice("NOTICE", "00000", "halfway there"));
        out.extend(be::data_row(&[Some(b"2")]));
        out.extend(be::command_complete("SELECT 2"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(column0(&results[0]), vec![s("1"), s("2")]);
        assert_eq!(results[0].notices.len(), 1);
        assert_eq!(results[0].notices[0].message, "halfway there");
        assert!(!results[0].sync_replication_cancelled);

        let q = spawn_simple(&client, "commit");
        mock.recv_group().await;
        let mut out = be::notice(
            "WARNING",
            "01000",
            "canceling wait for synchronous replication due to user request",
        );
        out.extend(be::command_complete("COMMIT"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].command_tag.as_deref(), Some("COMMIT"));
        assert!(results[0].sync_replication_cancelled);
        assert_eq!(results[0].notices[0].severity(), "WARNING");

        // A server whose lc_messages is not English translates the message; the routine's
        // name is never translated.
        let q = spawn_simple(&client, "commit");
        mock.recv_group().await;
        let mut out = be::frame(
            b'N',
            "SWARNUNG\0VWARNING\0C01000\0Mbreche Warten auf synchrone Replikation ab wegen \
             Benutzeraufforderung\0Fsyncrep.c\0L291\0RSyncRepWaitForLSN\0\0"
                .as_bytes(),
        );
        out.extend(be::command_complete("COMMIT"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        assert!(results[0].sync_replication_cancelled);
    })
    .await
}

/// With the extended protocol an autocommit statement commits at Sync, after its
/// CommandComplete: the sync-replication WARNING arrives between CommandComplete and
/// ReadyForQuery and must still mark that statement's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_replication_warning_after_command_complete() {
    timed(async {
        const SQL: &str = "insert into t values ($1)";
        let (client, mut mock) = connected().await;
        let q = spawn_query(&client, SQL, "1");
        mock.recv_group().await; // Parse/Describe/Sync
        let mut out = be::parse_complete();
        out.extend(be::parameter_description(&[23]));
        out.extend(be::frame(b'n', b"")); // NoData
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        mock.recv_group().await; // Bind/Execute/Sync
        let mut out = be::bind_complete();
        out.extend(be::command_complete("INSERT 0 1"));
        out.extend(be::notice(
            "WARNING",
            "01000",
            "canceling wait for synchronous replication due to user request",
        ));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let r = q.await.unwrap().unwrap();
        assert_eq!(r.command_tag.as_deref(), Some("INSERT 0 1"));
        assert_eq!(r.rows_affected(), Some(1));
        assert!(
            r.sync_replication_cancelled,
            "the in-doubt commit was not reported"
        );
        assert_eq!(r.notices.len(), 1);

        // The same through the simple protocol: one result, not an extra empty one.
        let q = spawn_simple(&client, "insert into t values (2)");
        mock.recv_group().await;
        let mut out = be::command_complete("INSERT 0 1");
        out.extend(be::notice(
            "WARNING",
            "01000",
            "canceling wait for synchronous replication due to user request",
        ));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        assert_eq!(results.len(), 1, "{results:?}");
        assert!(results[0].sync_replication_cancelled);
    })
    .await
}

/// A notice between two statements of one simple Query belongs to the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notice_before_a_statement_belongs_to_it() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1; do $$ begin raise notice 'hi'; end $$");
        mock.recv_group().await;
        let mut out = be::row_description(&[("n", 25)]);
        out.extend(be::data_row(&[Some(b"1")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::notice("NOTICE", "00000", "hi"));
        out.extend(be::command_complete("DO"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        assert_eq!(results.len(), 2);
        assert!(results[0].notices.is_empty());
        assert_eq!(results[1].command_tag.as_deref(), Some("DO"));
        assert_eq!(results[1].notices[0].message, "hi");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_error_marks_the_connection() {
    timed(async {
        let (client, mut mock) = connected().await;
        assert!(!client.state().is_read_only());
        let q = spawn_simple(&client, "insert into t values (1)");
        mock.recv_group().await;
        let mut out = be::error(
            "ERROR",
            "25006",
            "cannot execute INSERT in a read-only transaction",
        );
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let err = q.await.unwrap().unwrap_err();
        assert!(err.is_read_only());
        assert!(client.state().saw_read_only_error());
        assert!(client.state().is_read_only());
        assert!(!client.is_closed());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_status_before_ready_for_query_marks_read_only() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "set default_transaction_read_only = on");
        mock.recv_group().await;
        let mut out = be::command_complete("SET");
        out.extend(be::parameter_status("default_transaction_read_only", "on"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        q.await.unwrap().unwrap();
        // Visible as soon as the caller has its result.
        assert!(client.state().is_read_only());
        assert!(client.state().default_transaction_read_only());
        assert!(!client.state().saw_read_only_error());
        assert_eq!(
            client.parameter("default_transaction_read_only").as_deref(),
            Some("on")
        );
    })
    .await
}

// --- malformed input ----------------------------------------------------------------------

#[tokio::test]
async fn garbage_during_startup_is_a_prompt_protocol_error() {
    timed(async {
        reset_largest();
        let (handle, mut mock) = start(config());
        mock.startup().await;
        let t0 = Instant::now();
        // Not a PostgreSQL server: 'H' then "TTP/" read as a 1.4 GB length.
        mock.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(
            largest() < ALLOCATION_LIMIT,
            "allocated {} bytes",
            largest()
        );
    })
    .await
}

/// A DataRow declaring `declared` bytes (over the cap) after startup.
async fn oversized_data_row(max_message_len: Option<usize>, declared: u32) {
    let mut cfg = config();
    if let Some(m) = max_message_len {
        cfg.max_message_len = m;
    }
    let (handle, mut mock) = start(cfg);
    mock.trust().await;
    let client = handle.await.unwrap().unwrap();
    reset_largest();
    let q = spawn_simple(&client, "select n");
    mock.recv_group().await;
    let mut out = be::row_description(&[("n", 25)]);
    out.push(b'D');
    out.extend(declared.to_be_bytes());
    out.extend([0, 1, 0, 0, 0, 1]);
    mock.send(out).await;
    let t0 = Instant::now();
    let err = q.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
    assert!(err.message().contains("limit"), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(client.is_closed());
    assert!(
        largest() < ALLOCATION_LIMIT,
        "allocated {} bytes",
        largest()
    );
    assert_new_request_fails_closed(&client).await;
}

#[tokio::test]
async fn oversized_data_row_is_a_prompt_protocol_error() {
    timed(oversized_data_row(None, 0x7fff_ffff)).await;
    timed(oversized_data_row(Some(64 * 1024), 1 << 20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_fails_every_request_in_flight() {
    timed(async {
        let (client, mut mock) = connected().await;
        let a = spawn_simple(&client, "select 1");
        let b = spawn_simple(&client, "select 2");
        mock.recv_group().await;
        mock.recv_group().await;
        mock.send(be::frame(b'!', b"")).await;
        for q in [a, b] {
            let err = q.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
            assert!(err.message().contains("unknown message type"), "{err:?}");
            assert!(!err.safe_to_retry());
        }
        assert!(client.is_closed());
        assert_new_request_fails_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_while_idle_closes_the_connection() {
    timed(async {
        let (client, mut mock) = connected().await;
        mock.send(be::frame(b'!', b"")).await;
        until_closed(&client).await;
        assert_new_request_fails_closed(&client).await;
        drop(mock);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_message() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select n");
        mock.recv_group().await;
        let mut out = be::row_description(&[("n", 25)]);
        let row = be::data_row(&[Some(b"a value cut in half")]);
        out.extend_from_slice(&row[..row.len() / 2]);
        mock.send(out).await;
        drop(mock);
        let err = q.await.unwrap().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Closed | ErrorKind::Protocol),
            "{err:?}"
        );
        assert!(err.is_closed());
        assert!(!err.safe_to_retry(), "the request was written: {err:?}");
        assert!(client.is_closed());
        assert_new_request_fails_closed(&client).await;
    })
    .await
}

// --- COPY is refused, the connection survives -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_is_refused_with_copy_fail() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "copy t from stdin");
        mock.recv_group().await;
        mock.send(be::copy_in_response()).await;
        let fail = mock.expect(b'f').await;
        assert!(
            fail.body.ends_with(b"\0") && fail.body.len() > 1,
            "{fail:?}"
        );
        let mut out = be::error("ERROR", "57014", "COPY from stdin failed: not supported");
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let err = q.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "0A000", "{err:?}");
        assert!(!client.is_closed());

        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_in_whose_caller_left_before_the_server_was_ready_is_failed() {
    timed(async {
        let (client, mut mock) = connected().await;
        let c = client.clone();
        let gave_up = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(100), c.copy_in("copy t from stdin"))
                .await
                .is_err()
        });
        mock.recv_group().await;
        assert!(
            gave_up.await.unwrap(),
            "the caller gave up before the server was ready"
        );
        mock.send(be::copy_in_response()).await;
        // Nobody is left to send data: the loop fails the COPY.
        assert_copy_failed_once(&client, &mut mock).await;
    })
    .await
}

/// The client sent CopyFail for a COPY nobody sends data to; after the server's answer the
/// connection is not stuck in copy-in mode, and nothing else was written.
async fn assert_copy_failed_once(client: &Client, mock: &mut support::Mock) {
    let fail = tokio::time::timeout(Duration::from_secs(5), mock.recv()).await;
    let fail = fail.expect("a CopyFail came").expect("not EOF");
    assert_eq!(fail.tag, b'f', "{fail:?}");
    let mut out = be::error("ERROR", "57014", "COPY from stdin failed: abandoned");
    out.extend(be::ready(b'I'));
    mock.send(out).await;
    assert!(!client.is_closed());
    assert_still_usable(client, mock).await;
    mock.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_in_dropped_after_the_server_was_ready_but_before_it_returned_is_failed() {
    timed(async {
        let (client, mut mock) = connected().await;
        let mut copy = Box::pin(client.copy_in("copy t from stdin"));
        // Polled once: the request goes out, and the future waits for the server.
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut copy)
            .await
            .is_err());
        mock.recv_group().await;
        mock.send(be::copy_in_response()).await;
        // The loop has told the future the server is ready; it is dropped before it runs
        // again, so it never made the `CopyIn` whose drop would have failed the COPY.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(copy);
        assert_copy_failed_once(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_out_is_drained_and_refused() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "copy t to stdout");
        mock.recv_group().await;
        let mut out = be::copy_out_response();
        out.extend(be::copy_data(b"1\n"));
        out.extend(be::copy_data(b"2\n"));
        out.extend(be::copy_done());
        out.extend(be::command_complete("COPY 2"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let err = q.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "0A000", "{err:?}");
        assert!(!client.is_closed());

        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

// --- the end of a connection ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_terminates_after_requests_in_flight() {
    timed(async {
        let (client, mut mock) = connected().await;
        let a = spawn_simple(&client, "select 'a'");
        let b = spawn_simple(&client, "select 'b'");
        let mut order = vec![mock.recv_group().await[0].query_text()];
        order.push(mock.recv_group().await[0].query_text());
        client.close();
        // Nothing (no Terminate) while requests are in flight.
        mock.expect_silence(Duration::from_millis(100)).await;
        for sql in &order {
            mock.answer_rows(&[&sql[8..9]]).await;
        }
        assert_eq!(column0(&a.await.unwrap().unwrap()[0]), vec![s("a")]);
        assert_eq!(column0(&b.await.unwrap().unwrap()[0]), vec![s("b")]);
        let x = mock.expect(b'X').await;
        assert!(x.body.is_empty());
        assert!(
            mock.recv().await.is_none(),
            "the client closes the socket after Terminate"
        );
        until_closed(&client).await;
        assert_new_request_fails_closed(&client).await;
    })
    .await
}

// --- callers that give up, and the pipeline bound --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_response_is_drained() {
    timed(async {
        let (client, mut mock) = connected().await;
        let gone = spawn_simple(&client, "select 'gone'");
        mock.recv_group().await;
        gone.abort();
        let _ = gone.await;
        let next = spawn_simple(&client, "select 'next'");
        mock.recv_group().await;
        mock.answer_rows(&["gone", "gone"]).await;
        mock.answer_rows(&["next"]).await;
        assert_eq!(column0(&next.await.unwrap().unwrap()[0]), vec![s("next")]);
        assert_eq!(client.state().in_flight(), 0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_depth_bounds_requests_on_the_socket() {
    timed(async {
        let mut cfg = config();
        cfg.pipeline_depth = 2;
        let (handle, mut mock) = start(cfg);
        mock.trust().await;
        let client = handle.await.unwrap().unwrap();
        let queries: Vec<_> = ["select 'a'", "select 'b'", "select 'c'", "select 'd'"]
            .into_iter()
            .map(|sql| spawn_simple(&client, sql))
            .collect();
        let mut seen = vec![mock.recv_group().await[0].query_text()];
        seen.push(mock.recv_group().await[0].query_text());
        // Two in flight: the others wait for room.
        mock.expect_silence(Duration::from_millis(100)).await;
        assert_eq!(client.state().in_flight(), 2);
        for i in 0..4 {
            let sql = &seen[i];
            mock.answer_rows(&[&sql[8..9]]).await;
            if i < 2 {
                seen.push(mock.recv_group().await[0].query_text());
            }
        }
        for (q, want) in queries.into_iter().zip(["a", "b", "c", "d"]) {
            assert_eq!(column0(&q.await.unwrap().unwrap()[0]), vec![s(want)]);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_two_syncs_gets_both_groups() {
    timed(async {
        let (client, mut mock) = connected().await;
        let mut buf = bytes::BytesMut::new();
        hyperion_wire::frontend::query("select 1", &mut buf).unwrap();
        hyperion_wire::frontend::query("select 2", &mut buf).unwrap();
        let batch = {
            let c = client.clone();
            tokio::spawn(async move { c.send_batch(buf.freeze(), 2).await })
        };
        mock.recv_group().await;
        mock.recv_group().await;
        mock.answer_rows(&["1"]).await;
        mock.answer_rows(&["2"]).await;
        let groups = batch.await.unwrap().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(column0(&groups[0].as_ref().unwrap()[0]), vec![s("1")]);
        assert_eq!(column0(&groups[1].as_ref().unwrap()[0]), vec![s("2")]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sync_group_of_a_batch_succeeds_or_fails_on_its_own() {
    timed(async {
        let (client, mut mock) = connected().await;
        let mut buf = bytes::BytesMut::new();
        hyperion_wire::frontend::query("select boom", &mut buf).unwrap();
        hyperion_wire::frontend::query("select 2", &mut buf).unwrap();
        let batch = {
            let c = client.clone();
            tokio::spawn(async move { c.send_batch(buf.freeze(), 2).await })
        };
        mock.recv_group().await;
        mock.recv_group().await;
        let mut out = be::error("ERROR", "42703", "column \"boom\" does not exist");
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        mock.answer_rows(&["2"]).await;
        let groups = batch.await.unwrap().unwrap();
        assert_eq!(groups[0].as_ref().unwrap_err().code(), "42703");
        assert_eq!(column0(&groups[1].as_ref().unwrap()[0]), vec![s("2")]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_behind_a_fatal_error_are_never_sent_and_safe_to_retry() {
    timed(async {
        let (client, mut mock) = connected().await;
        let first = {
            let c = client.clone();
            tokio::spawn(async move { c.simple_query("select 1").await })
        };
        mock.recv_group().await;
        mock.send(be::error(
            "FATAL",
            "57P01",
            "terminating connection due to administrator command",
        ))
        .await;
        // Wait until the loop has seen the FATAL, then queue another request.
        for _ in 0..200 {
            if client.is_closed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(client.is_closed());
        let second = {
            let c = client.clone();
            tokio::spawn(async move { c.simple_query("select 2").await })
        };
        // The loop ended at the FATAL: the socket closes with nothing more sent.
        let next = tokio::time::timeout(Duration::from_secs(5), mock.recv()).await;
        assert!(matches!(next, Ok(None)), "{next:?}");
        assert_eq!(first.await.unwrap().unwrap_err().code(), "57P01");
        let e = second.await.unwrap().unwrap_err();
        assert!(e.safe_to_retry(), "{e:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_error_reaches_the_request_in_flight_and_ends_the_connection_at_once() {
    timed(async {
        let (client, mut mock) = connected().await;
        let a = spawn_simple(&client, "select pg_sleep(10)");
        mock.recv_group().await;
        let b = spawn_simple(&client, "select 2");
        mock.recv_group().await;
        mock.send(be::error("FATAL", "57P01", "terminating connection"))
            .await;
        // The mock keeps its end open. Both callers are answered, and the client closes the
        // socket (the loop is over), without the server's close.
        let within = Duration::from_secs(5);
        let err = tokio::time::timeout(within, a)
            .await
            .expect("the request in flight was answered");
        let err = err.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db, "{err:?}");
        assert_eq!(err.code(), "57P01", "{err:?}");
        assert!(err.is_closed(), "{err:?}");
        let err = tokio::time::timeout(within, b)
            .await
            .expect("the request behind it was answered");
        let err = err.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
        assert!(
            err.is_closed() && !err.safe_to_retry(),
            "it was written: {err:?}"
        );
        let eof = tokio::time::timeout(within, mock.recv()).await;
        assert!(matches!(eof, Ok(None)), "{eof:?}");
        assert!(client.is_closed());
        assert_new_request_fails_closed(&client).await;
    })
    .await
}

// --- abort: ending a connection without the server ------------------------------------------

fn spawn_owned(client: &Client, sql: String) -> JoinHandle<Result<Vec<QueryResult>, Error>> {
    let c = client.clone();
    tokio::spawn(async move { c.simple_query(&sql).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_fails_written_and_queued_requests_at_once_when_the_server_never_answers() {
    timed(async {
        let mut cfg = config();
        cfg.pipeline_depth = 1;
        let (handle, mut mock) = start(cfg);
        mock.trust().await;
        let client = handle.await.unwrap().unwrap();
        let written = spawn_simple(&client, "select 'written'");
        mock.recv_group().await; // on the socket; the server never answers
        let queued = spawn_simple(&client, "select 'queued'");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(client.state().in_flight(), 1);

        let t0 = Instant::now();
        // From a thread outside the runtime's workers, twice: idempotent.
        let c = client.clone();
        std::thread::spawn(move || c.abort("pool: host is down"))
            .join()
            .unwrap();
        client.abort("again");
        assert!(client.is_closed());

        let e = written.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e:?}");
        assert_eq!(e.message(), "pool: host is down");
        assert!(!e.safe_to_retry(), "it was written: {e:?}");
        let e = queued.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e:?}");
        assert!(e.safe_to_retry(), "never written: {e:?}");
        assert!(t0.elapsed() < Duration::from_secs(1));
        // The socket is dropped: the server sees EOF, without a Terminate.
        assert!(mock.recv().await.is_none());
        assert_new_request_fails_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_ends_a_connection_whose_socket_is_blocked() {
    timed(async {
        let (client, mock) = connected().await;
        // The server reads nothing: a request larger than the pipe's buffer blocks the write,
        // and the request behind it stays in the client's buffer.
        let big = spawn_owned(&client, format!("select '{}'", "x".repeat(200_000)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let behind = spawn_simple(&client, "select 'behind'");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(client.state().in_flight(), 2);
        client.abort("peer hung");
        let e = big.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e:?}");
        assert!(!e.safe_to_retry(), "partly written: {e:?}");
        let e = behind.await.unwrap().unwrap_err();
        assert_eq!(e.message(), "peer hung");
        assert!(e.safe_to_retry(), "no byte of it left the client: {e:?}");
        assert!(client.is_closed());
        drop(mock);
    })
    .await
}

// --- a broken or hostile server: every response goes to its own caller -----------------------

/// The connection failed with a protocol error.
fn assert_protocol_error(result: Result<impl std::fmt::Debug, Error>) {
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e:?}");
    assert_eq!(e.code(), "PROTOCOL_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_ready_for_query_fails_the_connection_and_no_caller_gets_anothers_rows() {
    timed(async {
        let (client, mut mock) = connected().await;
        let (stmt, _) = prepare_int4(&client, &mut mock, "select $1::int4").await;
        let calls: Vec<_> = ["1", "2", "3"]
            .into_iter()
            .map(|v| {
                let (c, stmt) = (client.clone(), stmt.clone());
                tokio::spawn(async move { c.execute(&stmt, &[Some(v)][..]).await })
            })
            .collect();
        // The three calls reach the wire in whatever order their tasks ran: each group is
        // answered with its own bound value, in wire order, and the first answer carries one
        // ReadyForQuery too many.
        let mut wire_order = vec![];
        for _ in 0..3 {
            let group = mock.recv_group().await;
            let bind = group
                .iter()
                .find(|m| m.tag == b'B')
                .map(parse_bind)
                .unwrap();
            wire_order.push(String::from_utf8(bind.values[0].clone().unwrap()).unwrap());
        }
        let mut out = vec![];
        for (i, v) in wire_order.iter().enumerate() {
            out.extend(be::bind_complete());
            out.extend(be::data_row(&[Some(v.as_bytes())]));
            out.extend(be::command_complete("SELECT 1"));
            out.extend(be::ready(b'I'));
            if i == 0 {
                out.extend(be::ready(b'I')); // one too many
            }
        }
        mock.send(out).await;
        let mut results = vec![];
        for c in calls {
            results.push(c.await.unwrap());
        }
        let values = ["1", "2", "3"];
        for (v, r) in values.iter().zip(results) {
            if *v == wire_order[0] {
                // The first on the wire got its own row, before the extra ReadyForQuery.
                assert_eq!(column0(r.as_ref().unwrap()), vec![s(v)]);
            } else {
                assert_protocol_error(r);
            }
        }
        until_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_after_the_last_sync_is_never_handed_to_the_next_caller() {
    timed(async {
        let (client, mut mock) = connected().await;
        let (stmt, _) = prepare_int4(&client, &mut mock, "select $1::int4").await;
        let first = spawn_simple(&client, "select 'first'");
        mock.recv_group().await;
        let next = {
            let (c, stmt) = (client.clone(), stmt.clone());
            tokio::spawn(async move { c.execute(&stmt, &[Some("2")][..]).await })
        };
        mock.recv_group().await;
        let mut out = be::row_description(&[("n", 25)]);
        out.extend(be::data_row(&[Some(b"first")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::ready(b'I'));
        // A stray row and completion after the group's ReadyForQuery.
        out.extend(be::data_row(&[Some(b"stray")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::bind_complete());
        out.extend(be::data_row(&[Some(b"2")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        assert_eq!(column0(&first.await.unwrap().unwrap()[0]), vec![s("first")]);
        assert_protocol_error(next.await.unwrap());
        until_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_for_query_while_idle_closes_the_connection() {
    timed(async {
        let (client, mut mock) = connected().await;
        mock.send(be::ready(b'I')).await;
        until_closed(&client).await;
        assert_new_request_fails_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_empty_results_in_one_group_is_a_protocol_error() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        let mut out = vec![];
        for _ in 0..5_000 {
            out.extend(be::frame(b'I', &[])); // EmptyQueryResponse
        }
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        assert_protocol_error(q.await.unwrap());
        until_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_row_descriptions_is_a_protocol_error() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        let wide: Vec<(String, u32)> = (0..100).map(|i| (format!("c{i:060}"), 25)).collect();
        let wide: Vec<(&str, u32)> = wide.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let one = be::row_description(&wide);
        // 4,000 x 100 columns: under the result cap, over the byte cap.
        let mut sent = 0;
        while sent < 4_000 {
            let mut out = vec![];
            for _ in 0..500 {
                out.extend_from_slice(&one);
            }
            sent += 500;
            if !mock.try_send(out).await {
                break; // the client cut the flood short
            }
        }
        assert_protocol_error(q.await.unwrap());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_completion_for_one_execute_is_a_protocol_error() {
    timed(async {
        let (client, mut mock) = connected().await;
        let (stmt, _) = prepare_int4(&client, &mut mock, "select $1::int4").await;
        let q = {
            let c = client.clone();
            tokio::spawn(async move { c.execute(&stmt, &[Some("1")][..]).await })
        };
        mock.recv_group().await;
        let mut out = be::bind_complete();
        out.extend(be::frame(b'I', &[]));
        out.extend(be::frame(b'I', &[]));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        assert_protocol_error(q.await.unwrap());
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_notices_keeps_a_bounded_number() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        reset_largest();
        // Loose notices (no result open), then many results each with notices.
        for _ in 0..20 {
            let mut out = vec![];
            for _ in 0..5_000 {
                out.extend(be::notice("NOTICE", "00000", "flood"));
            }
            mock.send(out).await;
        }
        let mut out = vec![];
        for _ in 0..100 {
            out.extend(be::command_complete("SET"));
            for _ in 0..64 {
                out.extend(be::notice("NOTICE", "00000", "more"));
            }
        }
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        let kept: usize = results.iter().map(|r| r.notices.len()).sum();
        assert!(kept <= 64, "{kept} notices kept");
        assert!(
            largest() < 1 << 20,
            "a 100,000-notice flood made a {}-byte allocation",
            largest()
        );
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notice_byte_cap_counts_every_field() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        mock.send(be::command_complete("SET")).await;
        // 64 notices (the count cap) of 1 MiB each, the bulk in fields other than the
        // message: the table (`t`), the constraint (`n`) and the internal position (`p`).
        for field in [b't', b'n', b'p'].iter().cycle().take(64) {
            let mut body = b"SNOTICE\0VNOTICE\0C00000\0Mfat\0".to_vec();
            body.push(*field);
            body.extend(std::iter::repeat_n(b'x', 1 << 20));
            body.extend_from_slice(b"\0\0");
            mock.send(be::frame(b'N', &body)).await;
        }
        mock.send(be::ready(b'I')).await;
        let results = q.await.unwrap().unwrap();
        let notices: Vec<_> = results.iter().flat_map(|r| &r.notices).collect();
        let kept: usize = notices.iter().map(|n| n.text_len()).sum();
        // The cap is 256 KiB: not even one of these fits.
        assert!(
            kept <= 256 * 1024,
            "{} notices kept, {kept} bytes",
            notices.len()
        );
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_replication_warning_is_seen_past_the_notice_cap() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "commit");
        mock.recv_group().await;
        let mut out = be::command_complete("COMMIT");
        for _ in 0..100 {
            out.extend(be::notice("NOTICE", "00000", "chatter"));
        }
        out.extend(be::notice(
            "WARNING",
            "01000",
            "canceling wait for synchronous replication due to user request",
        ));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let results = q.await.unwrap().unwrap();
        assert!(results[0].sync_replication_cancelled);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_parameter_statuses_fail_the_connection() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        let mut out = vec![];
        for i in 0..1_000 {
            out.extend(be::parameter_status(&format!("p{i}"), "v"));
        }
        mock.send(out).await;
        assert_protocol_error(q.await.unwrap());
        assert!(client.parameter("p500").is_none());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_parameter_statuses_for_one_name_are_fine() {
    timed(async {
        let (client, mut mock) = connected().await;
        let mut out = vec![];
        for i in 0..2_000 {
            out.extend(be::parameter_status("application_name", &format!("a{i}")));
        }
        mock.send(out).await;
        assert_still_usable(&client, &mut mock).await;
        assert_eq!(
            client.parameter("application_name").as_deref(),
            Some("a1999")
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_statuses_past_the_byte_cap_during_startup_fail_at_once() {
    timed(async {
        let (handle, mut mock) = start(config());
        mock.startup().await;
        let mut out = be::auth_ok();
        let big = "x".repeat(30_000);
        for i in 0..3 {
            out.extend(be::parameter_status(&format!("big{i}"), &big));
        }
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let e = handle.await.unwrap().unwrap_err();
        assert_eq!(e.code(), "PROTOCOL_ERROR", "{e:?}");
        assert!(e.is_fatal_config(), "{e:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_response_without_a_sqlstate_is_xx000() {
    timed(async {
        let (client, mut mock) = connected().await;
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        let mut out = be::frame(b'E', b"SERROR\0Mno code here\0\0");
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let e = q.await.unwrap().unwrap_err();
        assert_eq!(e.code(), "XX000", "{e:?}");
        assert_eq!(e.as_db().unwrap().code, "XX000");
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

// --- startup failures that no retry can fix ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failures_no_retry_can_fix_are_fatal_config() {
    timed(async {
        // A protocol error during startup.
        let (handle, mut mock) = start(config());
        mock.startup().await;
        mock.send(be::command_complete("SELECT 1")).await;
        let e = handle.await.unwrap().unwrap_err();
        assert_eq!(e.code(), "PROTOCOL_ERROR", "{e:?}");
        assert!(e.is_fatal_config(), "{e:?}");

        // An auth method we lack, and SASL without SCRAM-SHA-256.
        for request in [be::auth(7, &[]), be::auth(10, b"SCRAM-SHA-256-PLUS\0\0")] {
            let (handle, mut mock) = start(config_with_password("p"));
            mock.startup().await;
            mock.send(request).await;
            let e = handle.await.unwrap().unwrap_err();
            assert_eq!(e.code(), "UNSUPPORTED", "{e:?}");
            assert!(e.is_fatal_config(), "{e:?}");
        }

        // A NUL byte in a startup parameter: nothing is sent.
        for field in ["user", "database", "application_name"] {
            let mut cfg = config();
            match field {
                "user" => cfg.user = "u\0x".into(),
                "database" => cfg.database = Some("d\0x".into()),
                _ => cfg.application_name = "a\0x".into(),
            }
            let (handle, mut mock) = start(cfg);
            let e = handle.await.unwrap().unwrap_err();
            assert_eq!(e.code(), "INVALID_CONFIG", "{field}: {e:?}");
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.is_fatal_config(), "{e:?}");
            assert!(mock.recv().await.is_none(), "nothing was sent");
        }

        // A server closing during startup may be restarting: retrying can help.
        let (handle, mut mock) = start(config());
        mock.startup().await;
        drop(mock);
        let e = handle.await.unwrap().unwrap_err();
        assert!(!e.is_fatal_config(), "{e:?}");
    })
    .await
}

// --- COPY FROM STDIN through the extended protocol ---------------------------------------------

async fn prepare_copy(
    client: &Client,
    mock: &mut Mock,
) -> std::sync::Arc<hyperion_wire::Statement> {
    let prepare = {
        let c = client.clone();
        tokio::spawn(async move { c.prepare("copy t from stdin").await })
    };
    mock.recv_group().await;
    let mut out = be::parse_complete();
    out.extend(be::parameter_description(&[]));
    out.extend(be::frame(b'n', &[])); // NoData
    out.extend(be::ready(b'I'));
    mock.send(out).await;
    prepare.await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_through_execute_sends_copy_fail_and_sync() {
    timed(async {
        let (client, mut mock) = connected().await;
        let stmt = prepare_copy(&client, &mut mock).await;
        let q = {
            let c = client.clone();
            tokio::spawn(async move { c.execute(&stmt, &[] as &[Option<&str>]).await })
        };
        let group = mock.recv_group().await;
        assert_eq!(group.iter().map(|m| m.tag).collect::<Vec<_>>(), b"BES");
        let mut out = be::bind_complete();
        out.extend(be::copy_in_response());
        mock.send(out).await;
        // The server ignored the request's Sync in copy mode: the client sends its own.
        mock.expect(b'f').await;
        mock.expect(b'S').await;
        let mut out = be::error("ERROR", "57014", "COPY from stdin failed");
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let e = q.await.unwrap().unwrap_err();
        assert_eq!(e.code(), "0A000", "{e:?}");
        assert!(!client.is_closed());
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_with_requests_pipelined_behind_fails_them_cleanly() {
    timed(async {
        let (client, mut mock) = connected().await;
        let stmt = prepare_copy(&client, &mut mock).await;
        let copy = {
            let c = client.clone();
            tokio::spawn(async move { c.execute(&stmt, &[] as &[Option<&str>]).await })
        };
        mock.recv_group().await;
        let behind = spawn_simple(&client, "select 'behind'");
        mock.recv_group().await;
        let mut out = be::bind_complete();
        out.extend(be::copy_in_response());
        mock.send(out).await;
        assert_eq!(copy.await.unwrap().unwrap_err().code(), "0A000");
        assert_protocol_error(behind.await.unwrap());
        until_closed(&client).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_loop_cannot_follow_is_refused_before_sending() {
    timed(async {
        let (client, mut mock) = connected().await;
        let mut bare_sync = bytes::BytesMut::new();
        hyperion_wire::frontend::sync(&mut bare_sync);
        let e = client.send_batch(bare_sync.freeze(), 1).await.unwrap_err();
        assert!(e.safe_to_retry(), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Encode, "{e:?}");
        let mut q = bytes::BytesMut::new();
        hyperion_wire::frontend::query("select 1", &mut q).unwrap();
        let e = client.send_batch(q.freeze(), 2).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Encode, "{e:?}");
        mock.expect_silence(Duration::from_millis(50)).await;
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

// --- SCRAM key derivation off the I/O thread ---------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn a_slow_scram_handshake_does_not_stall_the_io_thread() {
    timed(async {
        // A ticker on the same (only) runtime thread: its longest gap is how long the
        // thread was blocked.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut last = Instant::now();
                let mut worst = Duration::ZERO;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    worst = worst.max(last.elapsed());
                    last = Instant::now();
                }
                worst
            })
        };
        let (handle, mut mock) = start(config_with_password("p"));
        mock.startup().await;
        mock.send(be::auth(10, b"SCRAM-SHA-256\0\0")).await;
        let first = mock.expect(b'p').await;
        let nonce = String::from_utf8_lossy(&first.body)
            .split_once(",r=")
            .unwrap()
            .1
            .to_owned();
        let t0 = Instant::now();
        let server_first = format!(
            "r={nonce}srv,s={},i={}",
            BASE64.encode(b"salt"),
            hyperion_wire::auth::scram::MAX_ITERATIONS
        );
        mock.send(be::auth(11, server_first.as_bytes())).await;
        mock.expect(b'p').await; // the client finished deriving its proof
        let derivation = t0.elapsed();
        mock.send(be::error(
            "FATAL",
            "28P01",
            "password authentication failed",
        ))
        .await;
        assert_eq!(handle.await.unwrap().unwrap_err().code(), "28P01");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let worst = ticker.await.unwrap();
        assert!(
            derivation > Duration::from_millis(300),
            "the derivation took only {derivation:?}: the test proves nothing"
        );
        assert!(
            worst < Duration::from_millis(300),
            "the I/O thread stalled for {worst:?} (derivation {derivation:?})"
        );
    })
    .await
}

// --- the scripted backend other crates use (feature `test-support`) ---------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_backend_answers_startup_and_then_the_script() {
    timed(async {
        let (client, _task) = support::connect_scripted(
            &[("default_transaction_read_only", "on")],
            support::simple_script(|sql| vec![sql.to_owned()]),
        )
        .await
        .unwrap();
        assert_eq!(client.server_version_num(), 170007);
        assert!(client.state().default_transaction_read_only());
        assert!(!client.state().in_hot_standby());
        let r = client.simple_query("select 'echo'").await.unwrap();
        assert_eq!(column0(&r[0]), vec![s("select 'echo'")]);
        // The extended protocol gets the usual answers.
        let stmt = client.prepare("select 1").await.unwrap();
        let r = client.execute(&stmt, &[] as &[Option<&str>]).await.unwrap();
        assert_eq!(r.command_tag.as_deref(), Some("SELECT 0"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_backend_can_hang_or_close() {
    timed(async {
        let mut answered = 0;
        let (client, _task) = support::connect_scripted(&[], move |msg| {
            answered += 1;
            match (msg.query_text().as_str(), answered) {
                ("hang", _) => support::Reply::Hang,
                ("close", _) => support::Reply::Close,
                _ => support::Reply::Send(vec![]),
            }
        })
        .await
        .unwrap();
        let hung = spawn_simple(&client, "hang");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!hung.is_finished());
        client.abort("gave up");
        assert_eq!(hung.await.unwrap().unwrap_err().kind(), ErrorKind::Closed);

        let (client, _task) = support::connect_scripted(&[], |_| support::Reply::Close)
            .await
            .unwrap();
        let e = client.simple_query("close").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e:?}");
    })
    .await
}

// --- a statement behind BEGIN, in one Sync group ----------------------------------------------

/// Asserts `msg` is an Execute of the unnamed portal for all its rows.
fn assert_execute_all_of_unnamed_portal(msg: &support::Frontend) {
    assert_eq!(msg.tag, b'E', "expected an Execute, got {msg:?}");
    assert_eq!(&msg.body[..], b"\0\0\0\0\0", "unnamed portal, max_rows 0");
}

/// Starts `execute_behind(Some("BEGIN"), stmt, [value])` and checks the one request it
/// writes: BEGIN's Parse/Bind/Execute, the statement's Bind/Execute and a single Sync.
async fn begin_and_execute(
    client: &Client,
    mock: &mut Mock,
    stmt: std::sync::Arc<hyperion_wire::Statement>,
    name: &str,
    value: &'static str,
) -> JoinHandle<Result<QueryResult, Error>> {
    let run = {
        let c = client.clone();
        tokio::spawn(async move {
            c.execute_behind(Some("BEGIN"), &stmt, &[Some(value)][..], None)
                .await
        })
    };
    // `recv_group` stops at the first Sync: a Sync between BEGIN and the statement would
    // end the group early.
    let group = mock.recv_group().await;
    assert_eq!(
        group.iter().map(|m| m.tag).collect::<Vec<_>>(),
        b"PBEBES",
        "{group:?}"
    );
    assert_eq!(
        parse_parse(&group[0]),
        (String::new(), "BEGIN".to_owned(), vec![])
    );
    let begin = parse_bind(&group[1]);
    assert_eq!(
        begin,
        support::Bind {
            portal: String::new(),
            statement: String::new(),
            param_formats: vec![],
            values: vec![],
            result_formats: vec![],
        }
    );
    assert_execute_all_of_unnamed_portal(&group[2]);
    let bind = parse_bind(&group[3]);
    assert_eq!((bind.portal.as_str(), bind.statement.as_str()), ("", name));
    assert_eq!(bind.values, vec![Some(value.as_bytes().to_vec())]);
    assert_execute_all_of_unnamed_portal(&group[4]);
    assert!(group[5].body.is_empty(), "Sync has no body");
    // And nothing after that Sync: one Sync group in all.
    mock.expect_silence(Duration::from_millis(100)).await;
    assert!(!run.is_finished(), "answered before the server replied");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_behind_begin_goes_in_one_sync_group() {
    timed(async {
        const SQL: &str = "select $1::int4";
        let (client, mut mock) = connected().await;
        let (stmt, name) = prepare_int4(&client, &mut mock, SQL).await;
        let run = begin_and_execute(&client, &mut mock, stmt, &name, "7").await;

        let mut out = be::parse_complete();
        out.extend(be::bind_complete());
        out.extend(be::command_complete("BEGIN"));
        out.extend(be::bind_complete());
        out.extend(be::data_row(&[Some(b"7")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::ready(b'T'));
        mock.send(out).await;

        // The statement's result, not BEGIN's.
        let r = run.await.unwrap().unwrap();
        assert_eq!(r.command_tag.as_deref(), Some("SELECT 1"));
        assert_eq!(column0(&r), vec![s("7")]);
        assert_eq!(r.columns.as_ref().unwrap()[0].name, "x");
        assert_eq!(
            client.state().transaction_status(),
            hyperion_wire::TransactionStatus::InTransaction
        );
        assert_eq!(client.state().in_flight(), 0);
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_begin_skips_the_statement_behind_it() {
    timed(async {
        const SQL: &str = "select $1::int4";
        let (client, mut mock) = connected().await;
        let (stmt, name) = prepare_int4(&client, &mut mock, SQL).await;
        let run = begin_and_execute(&client, &mut mock, stmt, &name, "7").await;

        // BEGIN fails at Execute; the server skips the statement's Bind and Execute up to
        // the Sync, and answers it outside any transaction.
        let mut out = be::parse_complete();
        out.extend(be::bind_complete());
        out.extend(be::error("ERROR", "25001", "BEGIN refused by the mock"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;

        let err = run.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "25001", "{err:?}");
        assert_eq!(err.as_db().unwrap().code, "25001");
        assert!(!err.is_closed(), "{err:?}");
        assert!(!client.is_closed());
        assert_eq!(
            client.state().transaction_status(),
            hyperion_wire::TransactionStatus::Idle
        );
        assert_eq!(client.state().in_flight(), 0);
        assert_still_usable(&client, &mut mock).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_for_a_portal_described_as_no_data_are_out_of_step() {
    timed(async {
        let (client, mut mock) = connected().await;
        let c = client.clone();
        let q = tokio::spawn(async move {
            let d = c.describe_unnamed("insert into t values (1)").await?;
            let stmt = Client::unnamed("insert into t values (1)", d, vec![]);
            c.execute(&stmt, &[] as &[Option<&str>]).await
        });
        mock.recv_group().await;
        let mut out = be::parse_complete();
        out.extend(be::parameter_description(&[]));
        out.extend(be::no_data());
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        let group = mock.recv_group().await;
        assert!(
            group.iter().any(|m| m.tag == b'D'),
            "a Describe of the portal"
        );
        let mut out = vec![];
        for m in &group {
            match m.tag {
                b'P' => out.extend(be::parse_complete()),
                b'B' => out.extend(be::bind_complete()),
                b'D' => out.extend(be::no_data()),
                _ => {}
            }
        }
        // Rows an INSERT never has: not a result of rows without columns.
        out.extend(be::data_row(&[Some(b"leak"), Some(b"x")]));
        out.extend(be::command_complete("INSERT 0 1"));
        out.extend(be::ready(b'I'));
        mock.try_send(out).await;
        let err = q.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
        assert!(client.is_closed());
    })
    .await
}
