//! COPY FROM STDIN against a real PostgreSQL server: refused with 0A000, never a hang, never
//! a response handed to the wrong caller, and the connection stays usable when nothing was
//! pipelined behind the COPY.
//!
//! Like `real_server.rs`, these need a server (`#[ignore]`); `test/hostile.test.js` starts one
//! and runs them with `--ignored`, passing it in `HYPERION_WIRE_HOST` / `_PORT` / `_USER` /
//! `_PASSWORD` / `_DATABASE`.

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::{connect, Client, Config};
use std::time::Duration;

fn config() -> Config {
    support::real_server_config("test/hostile.test.js")
}

/// Fails the test instead of hanging it.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("hung: the connection lost step with the server")
}

fn text(r: &hyperion_wire::QueryResult) -> String {
    support::first_text(r)
}

async fn count(client: &Client, table: &str) -> String {
    let r = client
        .simple_query(&format!("select count(*) from {table}"))
        .await
        .unwrap();
    text(&r[0])
}

#[tokio::test]
#[ignore = "needs a server: run by test/hostile.test.js"]
async fn copy_from_stdin_is_refused_with_0a000_and_the_connection_stays_usable() {
    bounded(async {
        let client = connect(&config()).await.unwrap();
        client
            .simple_query("create temp table copy_in (x int)")
            .await
            .unwrap();
        // Simple protocol: CopyFail alone ends it.
        let e = client
            .simple_query("copy copy_in from stdin")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "0A000", "{e:?}");
        assert!(!client.is_closed());
        // Extended protocol: the server ignores the request's Sync in copy mode, so the
        // client's CopyFail is followed by a Sync of its own; one ReadyForQuery answers.
        for _ in 0..2 {
            let e = client
                .query("copy copy_in from stdin", &[] as &[Option<&str>])
                .await
                .unwrap_err();
            assert_eq!(e.code(), "0A000", "{e:?}");
            assert!(!client.is_closed());
        }
        // In step: the next answers are the right ones.
        let r = client
            .query("select $1::text", &[Some("after")][..])
            .await
            .unwrap();
        assert_eq!(text(&r), "after");
        assert_eq!(count(&client, "copy_in").await, "0");
        // COPY TO STDOUT is refused the same way.
        let e = client
            .simple_query("copy (select 1) to stdout")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "0A000", "{e:?}");
        let e = client
            .query("copy (select 1) to stdout", &[] as &[Option<&str>])
            .await
            .unwrap_err();
        assert_eq!(e.code(), "0A000", "{e:?}");
        let r = client.simple_query("select 'still'").await.unwrap();
        assert_eq!(text(&r[0]), "still");
    })
    .await
}

#[tokio::test]
#[ignore = "needs a server: run by test/hostile.test.js"]
async fn copy_from_stdin_with_requests_pipelined_behind_it_never_misroutes_or_hangs() {
    bounded(async {
        let client = connect(&config()).await.unwrap();
        client
            .simple_query("create temp table copy_behind (x int)")
            .await
            .unwrap();
        let copy = client.prepare("copy copy_behind from stdin").await.unwrap();
        let select = client.prepare("select $1::text").await.unwrap();
        // The COPY and a statement behind it in one write: the server is in copy mode when
        // it reads the statement's Bind, so it aborts the COPY and discards up to that
        // statement's Sync.
        let mut buf = bytes::BytesMut::new();
        Client::encode_execute(&copy, &[] as &[Option<&str>], &mut buf).unwrap();
        Client::encode_execute(&select, &[Some("behind")][..], &mut buf).unwrap();
        let batch = {
            let c = client.clone();
            tokio::spawn(async move { c.send_batch(buf.freeze(), 2).await })
        };
        // And more callers pipelined behind the batch.
        let mut calls = vec![];
        for i in 0..20 {
            let (c, s) = (client.clone(), select.clone());
            calls.push(tokio::spawn(async move {
                let v = format!("v{i}");
                c.execute(&s, &[Some(v.as_str())][..]).await.map(|r| {
                    assert_eq!(text(&r), v, "a caller got another caller's row");
                })
            }));
        }
        match batch.await.unwrap() {
            Err(e) => assert!(["0A000", "PROTOCOL_ERROR"].contains(&e.code()), "{e:?}"),
            Ok(groups) => {
                assert_eq!(groups[0].as_ref().unwrap_err().code(), "0A000");
                if let Ok(r) = &groups[1] {
                    assert_eq!(text(&r[0]), "behind", "a group got another's row");
                }
            }
        }
        for call in calls {
            if let Err(e) = call.await.unwrap() {
                assert!(
                    ["PROTOCOL_ERROR", "CONNECTION_CLOSED"].contains(&e.code()),
                    "{e:?}"
                );
            }
        }
        // A new connection works.
        let fresh = connect(&config()).await.unwrap();
        let r = fresh.simple_query("select 'fresh'").await.unwrap();
        assert_eq!(text(&r[0]), "fresh");
    })
    .await
}
