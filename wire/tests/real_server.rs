//! `hyperion-wire` against a real PostgreSQL server.
//!
//! These tests need a server, so a plain `cargo test` skips them (`#[ignore]`);
//! `test/wire.test.js` starts a local cluster and runs them with
//! `cargo test -p hyperion-wire --test real_server -- --ignored`, passing the server in
//! `HYPERION_WIRE_HOST` / `_PORT` / `_USER` / `_PASSWORD` / `_DATABASE`. A missing variable is a
//! failure, not a skip.

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::{connect, Config, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config() -> Config {
    support::real_server_config("test/wire.test.js")
}

fn text(r: &hyperion_wire::QueryResult) -> String {
    support::first_text(r)
}

#[tokio::test]
#[ignore = "needs a server: run by test/wire.test.js"]
async fn cancel_request_stops_a_running_query_and_the_connection_survives() {
    let client = connect(&config()).await.unwrap();
    let token = client.cancel_token();
    let started = Instant::now();
    let running = {
        let client = client.clone();
        tokio::spawn(async move { client.simple_query("select pg_sleep(30)").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    token.cancel(Duration::from_secs(5)).await.unwrap();
    let err = running.await.unwrap().unwrap_err();
    assert_eq!(err.code(), "57014", "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let r = client.simple_query("select 'still here'").await.unwrap();
    assert_eq!(text(&r[0]), "still here");
}

#[tokio::test]
#[ignore = "needs a server: run by test/wire.test.js"]
async fn startup_parameters_are_applied() {
    let mut cfg = config();
    cfg.statement_timeout = Some(Duration::from_millis(200));
    let client = connect(&cfg).await.unwrap();
    let r = client
        .simple_query(
            "show application_name; show DateStyle; show client_encoding; show statement_timeout",
        )
        .await
        .unwrap();
    assert_eq!(text(&r[0]), "hyperiondb-client");
    assert!(text(&r[1]).starts_with("ISO"));
    assert_eq!(text(&r[2]), "UTF8");
    assert_eq!(text(&r[3]), "200ms");
    let err = client.simple_query("select pg_sleep(2)").await.unwrap_err();
    assert_eq!(err.code(), "57014");
    assert!(client.server_version_num() >= 120000);
    assert_eq!(client.parameter("server_encoding").as_deref(), Some("UTF8"));
}

#[tokio::test]
#[ignore = "needs a server: run by test/wire.test.js"]
async fn statements_are_prepared_once_and_pipelined() {
    let client = connect(&config()).await.unwrap();
    let sql = "select $1::int4 + 1";
    let a = client.prepare(sql).await.unwrap();
    let b = client.prepare(sql).await.unwrap();
    assert!(Arc::ptr_eq(&a, &b), "the second prepare is a cache hit");
    assert_eq!(a.param_types(), &[23]);
    // 200 executions in flight at once on one connection, answered in order.
    let futs: Vec<_> = (0..200)
        .map(|i| {
            let c = client.clone();
            let stmt = a.clone();
            async move {
                let p = [Some(i.to_string())];
                let r = c.execute(&stmt, &p[..]).await.unwrap();
                (
                    i,
                    String::from_utf8(r.rows[0].values().next().unwrap().unwrap().to_vec())
                        .unwrap(),
                )
            }
        })
        .collect();
    for (i, v) in futures_join(futs).await {
        assert_eq!(v, (i + 1).to_string());
    }
    let r = client
        .simple_query(
            "select count(*) from pg_prepared_statements where statement = 'select $1::int4 + 1'",
        )
        .await
        .unwrap();
    assert_eq!(text(&r[0]), "1");
}

#[tokio::test]
#[ignore = "needs a server: run by test/wire.test.js"]
async fn a_wrong_password_is_28p01() {
    let mut cfg = config();
    cfg.password = Some(b"not the password".to_vec());
    let err = connect(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db);
    assert_eq!(err.code(), "28P01");
    assert!(err.is_fatal_config());
}

async fn futures_join<F: std::future::Future + Send + 'static>(futs: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
