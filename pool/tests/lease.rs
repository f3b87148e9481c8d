//! The lease protocol under `cargo test`, with scripted connections (no server): timeouts,
//! many waiters in line, broken connections, and futures dropped at every await.

use hyperion_pool::{Connector, Error, Pool, PoolConfig, QueryOptions};
use hyperion_wire::connection::connect_stream;
use hyperion_wire::test_support::{simple_script, spawn_backend, timed, Frontend, Reply};
use hyperion_wire::Host;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NO_PARAMS: &[Option<&str>] = &[];

/// The settings of a pool over one host whose connections the test makes.
fn scripted_config(size: usize, acquire_ms: u64) -> PoolConfig {
    let mut cfg = PoolConfig::new(
        vec![Host {
            host: "scripted".into(),
            port: 5432,
        }],
        "u",
    );
    cfg.pool_size = size;
    cfg.acquire_timeout = Duration::from_millis(acquire_ms);
    cfg
}

/// A pool over one scripted host: every connection answers with `script()`; `opened`
/// counts the connections made.
fn pool_with(
    size: usize,
    acquire_ms: u64,
    opened: Arc<AtomicUsize>,
    script: impl Fn() -> Box<dyn FnMut(&Frontend) -> Reply + Send> + Send + Sync + 'static,
) -> Pool {
    let mut cfg = scripted_config(size, acquire_ms);
    cfg.connector = Some(scripted(opened, script));
    Pool::new(cfg).unwrap()
}

/// Connections to a scripted backend answering with `script()`; `opened` counts them.
fn scripted(
    opened: Arc<AtomicUsize>,
    script: impl Fn() -> Box<dyn FnMut(&Frontend) -> Reply + Send> + Send + Sync + 'static,
) -> Connector {
    Connector(Arc::new(move |c| {
        opened.fetch_add(1, Ordering::SeqCst);
        let backend = spawn_backend(&[], script());
        Box::pin(async move { connect_stream(backend.stream, &c).await })
    }))
}

fn plain() -> Box<dyn FnMut(&Frontend) -> Reply + Send> {
    Box::new(simple_script(|_| vec!["1".into()]))
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_with_53300_and_counts_its_waiter_while_it_waits() {
    timed(async {
        let pool = pool_with(1, 300, counter(), plain);
        let held = pool.begin(None).await.unwrap();
        let p = pool.clone();
        let started = Instant::now();
        let waiter = tokio::spawn(async move { p.begin(None).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            pool.status().waiting,
            1,
            "the second begin() is counted while it waits"
        );
        let err = waiter.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "53300", "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(pool.status().waiting, 0);
        held.commit().await.unwrap();
        // The connection came back and serves again.
        pool.begin(None).await.unwrap().commit().await.unwrap();
        assert_eq!(pool.status().size, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiting_transactions_are_served_in_the_order_they_came() {
    timed(async {
        let opened = counter();
        let pool = pool_with(2, 10_000, opened.clone(), plain);
        let a = pool.begin(None).await.unwrap();
        let b = pool.begin(None).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..20 {
            let (p, order) = (pool.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let tx = p.begin(None).await.unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(2)).await;
                tx.commit().await.unwrap();
            }));
            // Let each one get in line before the next.
            while pool.status().waiting < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        a.commit().await.unwrap();
        b.commit().await.unwrap();
        for w in waiters {
            w.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // Two connections serve the line: each takes the first waiter when it comes free, so
        // waiter i starts before waiter i + 2.
        for i in 0..18 {
            let pos = |x| order.iter().position(|&v| v == x).unwrap();
            assert!(pos(i) < pos(i + 2), "{order:?}");
        }
        assert_eq!(
            opened.load(Ordering::SeqCst),
            2,
            "no connection beyond poolSize"
        );
        assert_eq!(pool.status().waiting, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_is_evicted_and_the_next_query_opens_a_fresh_one() {
    timed(async {
        // Connections that ran a statement (discovery's probes, which the broken connection
        // sets off, open connections too but send nothing).
        let used = counter();
        let u = used.clone();
        // The first connection to run a statement dies at its Execute; later ones work.
        let pool = pool_with(1, 2_000, counter(), move || {
            let u = u.clone();
            let mut nth = None;
            let mut inner = simple_script(|_| vec!["1".into()]);
            Box::new(move |m: &Frontend| {
                if m.tag == b'P' && nth.is_none() {
                    nth = Some(u.fetch_add(1, Ordering::SeqCst));
                }
                if nth == Some(0) && m.tag == b'E' {
                    Reply::Close
                } else {
                    inner(m)
                }
            })
        });
        let err = pool
            .query("select 1", NO_PARAMS, QueryOptions::default(), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            "CONNECTION_CLOSED",
            "a read reports the lost connection: {err}"
        );
        assert_eq!(pool.status().size, 0, "the broken connection left the pool");
        let err = pool
            .query(
                "insert into t values (1)",
                NO_PARAMS,
                QueryOptions::default(),
                None,
            )
            .await;
        assert!(
            err.is_ok(),
            "the next query runs on a new connection: {err:?}"
        );
        assert_eq!(used.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_connection_dies_after_it_was_sent_is_in_doubt() {
    timed(async {
        let pool = pool_with(1, 2_000, counter(), || {
            let mut inner = simple_script(|_| vec!["1".into()]);
            Box::new(move |m: &Frontend| {
                if m.tag == b'E' {
                    Reply::Close
                } else {
                    inner(m)
                }
            })
        });
        let err = pool
            .query(
                "insert into t values (1)",
                NO_PARAMS,
                QueryOptions::default(),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InDoubt { .. }), "{err:?}");
        // With retry: true it runs again (up to retry.maxAttempts), and is then reported.
        let err = pool
            .query(
                "insert into t values (1)",
                NO_PARAMS,
                QueryOptions {
                    retry: Some(true),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "IN_DOUBT", "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_dropped_in_line_leaves_no_count_and_no_lost_connection() {
    timed(async {
        let pool = pool_with(1, 5_000, counter(), plain);
        let held = pool.begin(None).await.unwrap();
        // Dropped while waiting in line (a caller's timeout around the call).
        let gave_up = tokio::time::timeout(Duration::from_millis(100), pool.begin(None)).await;
        assert!(gave_up.is_err());
        assert_eq!(
            pool.status().waiting,
            0,
            "the dropped waiter's count went with it"
        );
        // The same for a shared acquirer sleeping on a pool whose only connection is held.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            pool.query("select 1", NO_PARAMS, QueryOptions::default(), None),
        )
        .await;
        assert!(gave_up.is_err());
        assert_eq!(pool.status().waiting, 0);
        held.commit().await.unwrap();
        // The released connection was not handed to a dead waiter.
        let r = tokio::time::timeout(Duration::from_secs(2), pool.begin(None)).await;
        r.expect("the connection is free again")
            .unwrap()
            .commit()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_dropped_while_its_connection_opens_frees_the_slot() {
    timed(async {
        let opened = counter();
        let o = opened.clone();
        let mut cfg = scripted_config(1, 3_000);
        // The first connect never finishes (a host that accepts and never answers); the
        // later ones work.
        cfg.connector = Some(Connector(Arc::new(move |c| {
            let nth = o.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if nth == 0 {
                    std::future::pending::<()>().await;
                }
                let backend = spawn_backend(&[], simple_script(|_| vec!["1".into()]));
                connect_stream(backend.stream, &c).await
            })
        })));
        let pool = Pool::new(cfg).unwrap();
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            pool.query("select 1", NO_PARAMS, QueryOptions::default(), None),
        )
        .await;
        assert!(
            dropped.is_err(),
            "the first query is still opening when it is dropped"
        );
        // With the slot leaked, poolSize 1 would leave nothing to open: this would time out.
        query_ok(
            &pool,
            "select 1",
            "the reserved slot was freed when the opening query was dropped",
        )
        .await;
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_never_reached_the_socket_runs_once_on_a_new_connection() {
    timed(async {
        // Every Parse and Execute, by connection.
        let seen = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
        // The first connection's backend task: aborting it closes that connection.
        let first_backend = Arc::new(Mutex::new(None::<tokio::task::AbortHandle>));
        let nth = counter();
        let (sn, nn, fb) = (seen.clone(), nth.clone(), first_backend.clone());
        let mut cfg = scripted_config(1, 5_000);
        // One request in flight per connection: a second one waits in the channel, unsent.
        cfg.pipeline_depth = 1;
        cfg.connector = Some(Connector(Arc::new(move |c| {
            let conn = nn.fetch_add(1, Ordering::SeqCst);
            let seen = sn.clone();
            let mut inner = simple_script(|_| vec!["1".into()]);
            let backend = spawn_backend(&[], move |m: &Frontend| {
                if m.tag == b'P' || m.tag == b'E' {
                    let text = String::from_utf8_lossy(&m.body).into_owned();
                    seen.lock()
                        .unwrap()
                        .push((conn, format!("{}{text}", m.tag as char)));
                }
                // The first connection's first statement never finishes.
                if conn == 0 && m.tag == b'E' {
                    return Reply::Hang;
                }
                inner(m)
            });
            if conn == 0 {
                *fb.lock().unwrap() = Some(backend.task.abort_handle());
            }
            Box::pin(async move { connect_stream(backend.stream, &c).await })
        })));
        let pool = Pool::new(cfg).unwrap();
        let first = pool.query("select 1", NO_PARAMS, QueryOptions::default(), None);
        let second = async {
            // Joins the first one's connection (it has run for less than 100 ms) and waits
            // behind it, unsent; then that connection dies.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let q = pool.query("select 2", NO_PARAMS, QueryOptions::default(), None);
            let kill = async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                assert_eq!(pool.status().waiting, 1, "select 2 waits behind select 1");
                first_backend.lock().unwrap().take().unwrap().abort();
            };
            tokio::join!(q, kill).0
        };
        let (first, second) = tokio::join!(first, second);
        assert_eq!(first.unwrap_err().code(), "CONNECTION_CLOSED");
        second.expect("the unsent query ran again, on a new connection");
        let seen = seen.lock().unwrap().clone();
        let parses: Vec<_> = seen
            .iter()
            .filter(|(_, t)| t.starts_with('P') && t.contains("select 2"))
            .collect();
        assert_eq!(parses.len(), 1, "select 2 reached a server once: {seen:?}");
        assert_ne!(parses[0].0, 0, "and not the connection that died: {seen:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_above_the_floor_close_after_the_idle_timeout() {
    timed(async {
        let opened = counter();
        let o = opened.clone();
        let mut cfg = scripted_config(3, 2_000);
        cfg.idle_timeout = Some(Duration::from_millis(300));
        cfg.min_connections = 1;
        cfg.max_lifetime = None;
        cfg.connector = Some(scripted(o, plain));
        let pool = Pool::new(cfg).unwrap();
        // Three transactions at once: three connections.
        let (a, b, c) = tokio::join!(pool.begin(None), pool.begin(None), pool.begin(None));
        assert_eq!(pool.status().size, 3);
        for tx in [a, b, c] {
            tx.unwrap().rollback().await.unwrap();
        }
        let started = Instant::now();
        while pool.status().size > 1 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = started.elapsed();
        assert_eq!(pool.status().size, 1, "the floor stays open");
        assert!(
            took >= Duration::from_millis(250),
            "not before the idle timeout: {took:?}"
        );
        // The one left still serves.
        pool.query("select 1", NO_PARAMS, QueryOptions::default(), None)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_replaced_after_their_lifetime_without_failing_a_query() {
    timed(async {
        let opened = counter();
        let o = opened.clone();
        let mut cfg = scripted_config(1, 2_000);
        cfg.idle_timeout = None;
        cfg.max_lifetime = Some(Duration::from_millis(300));
        cfg.connector = Some(scripted(o, plain));
        let pool = Pool::new(cfg).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(1_200) {
            query_ok(
                &pool,
                "select 1",
                "no query fails while connections are recycled",
            )
            .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = opened.load(Ordering::SeqCst);
        assert!(
            n >= 3,
            "a 300 ms lifetime over 1.2 s replaces the connection: opened {n}"
        );
        assert!(n <= 8, "but not at every query: opened {n}");
    })
    .await;
}

/// The error `sql` fails with on `pool`, with the default options.
async fn query_err(pool: &Pool, sql: &str) -> Error {
    pool.query(sql, NO_PARAMS, QueryOptions::default(), None)
        .await
        .unwrap_err()
}

/// Runs `sql` on `pool` with the default options; it must succeed (`why` says why).
async fn query_ok(pool: &Pool, sql: &str, why: &str) {
    if let Err(e) = pool
        .query(sql, NO_PARAMS, QueryOptions::default(), None)
        .await
    {
        panic!("{why}: {e}");
    }
}

/// A script whose Parse messages tell which statement is running; `on_execute(sql)` answers
/// each Execute (the usual answers otherwise).
fn by_statement(
    mut on_execute: impl FnMut(&str) -> Reply + Send + 'static,
) -> Box<dyn FnMut(&Frontend) -> Reply + Send> {
    let mut inner = simple_script(|_| vec!["1".into()]);
    let mut sql = String::new();
    Box::new(move |m: &Frontend| {
        if m.tag == b'P' {
            sql = hyperion_wire::test_support::parse_parse(m).1;
        }
        if m.tag == b'E' {
            on_execute(&sql)
        } else {
            inner(m)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefer_standby_pool_retries_reads_by_default_but_never_a_write_that_was_sent() {
    timed(async {
        // No standby: the pool writes on the primary. Every Execute of the insert loses its
        // connection after it was sent; the read's first Execute does too.
        let executed = counter();
        let seen = executed.clone();
        let reads = counter();
        let read_seen = reads.clone();
        let mut cfg = scripted_config(1, 2_000);
        cfg.mode = hyperion_pool::Mode::PreferStandby;
        cfg.connector = Some(scripted(counter(), move || {
            let (seen, read_seen) = (seen.clone(), read_seen.clone());
            by_statement(move |sql| {
                if sql.starts_with("insert") {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Reply::Close
                } else if read_seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reply::Close
                } else {
                    Reply::Send(hyperion_wire::test_support::be::command_complete(
                        "SELECT 0",
                    ))
                }
            })
        }));
        let pool = Pool::new(cfg).unwrap();
        let err = query_err(&pool, "insert into t values (1)").await;
        assert_eq!(err.code(), "IN_DOUBT", "{err}");
        assert_eq!(executed.load(Ordering::SeqCst), 1, "the write ran once");
        query_ok(&pool, "select 1", "the read was run again").await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writing_with_query_that_succeeded_as_the_fence_came_is_not_run_again() {
    timed(async {
        // The fence's reload reaches the session while the statement runs: its answer
        // carries default_transaction_read_only=on. Its tag says SELECT, but a WITH may hold
        // a write that committed: it must not run again (on the new primary: twice).
        let executed = counter();
        let seen = executed.clone();
        let pool = pool_with(1, 1_000, counter(), move || {
            let seen = seen.clone();
            by_statement(move |sql| {
                let mut out = hyperion_wire::test_support::be::command_complete("SELECT 0");
                if sql.starts_with("with") {
                    seen.fetch_add(1, Ordering::SeqCst);
                    out.extend(hyperion_wire::test_support::be::parameter_status(
                        "default_transaction_read_only",
                        "on",
                    ));
                }
                Reply::Send(out)
            })
        });
        query_ok(
            &pool,
            "with x as (insert into t values (1) returning 1) select * from x",
            "its result, not a second run",
        )
        .await;
        assert_eq!(executed.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_session_ends_with_a_fatal_error_is_in_doubt_a_read_is_not() {
    timed(async {
        // 57P02: another backend crashed and the server ends every session; a commit may
        // have been flushed before.
        let pool = pool_with(1, 2_000, counter(), || {
            by_statement(|_| {
                Reply::Send(hyperion_wire::test_support::be::error(
                    "FATAL",
                    "57P02",
                    "terminating connection because of crash of another server process",
                ))
            })
        });
        let err = query_err(&pool, "insert into t values (1)").await;
        assert_eq!(err.code(), "IN_DOUBT", "{err}");
        assert!(err.to_string().contains("57P02"), "{err}");
        let err = query_err(&pool, "select 1").await;
        assert_eq!(err.code(), "57P02", "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_dropped_after_a_connection_was_handed_to_it_gives_the_connection_back() {
    timed(async {
        // One connection, held. A second checkout waits in line; the holder lets go, which
        // hands the connection to the waiter at once, and the waiter's future is dropped
        // before it runs again (a stop that fired in the same poll): the connection must go
        // back to the pool, not stay held by nobody.
        let pool = pool_with(1, 1_000, counter(), plain);
        let held = pool.connect().await.unwrap();
        let mut waiter = Box::pin(pool.connect());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiter)
                .await
                .is_err(),
            "in line"
        );
        drop(held);
        drop(waiter);
        let again = pool.connect().await;
        assert!(again.is_ok(), "{:?}", again.err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_is_refused_on_shared_connections_and_one_left_in_a_transaction_is_closed() {
    timed(async {
        // BEGIN through the pool's own statements never reaches a connection.
        let opened = counter();
        let pool = pool_with(1, 2_000, opened.clone(), plain);
        for sql in ["BEGIN", "/* why */ start transaction read only"] {
            let err = query_err(&pool, sql).await;
            assert_eq!(err.code(), "UNSAFE_TRANSACTION", "{err}");
        }
        assert_eq!(opened.load(Ordering::SeqCst), 0, "nothing was sent");

        // A statement whose session answers "in a transaction block" (what a BEGIN the
        // check did not see would do): no one else may run in that transaction, so the
        // connection is closed and the next statement gets a new one.
        let opened = counter();
        let pool = pool_with(1, 2_000, opened.clone(), || {
            let mut inner = simple_script(|_| vec!["1".into()]);
            let mut sql = String::new();
            Box::new(move |m: &Frontend| {
                if m.tag == b'P' {
                    sql = hyperion_wire::test_support::parse_parse(m).1;
                }
                if m.tag == b'S' && sql.contains("opens") {
                    return Reply::Send(hyperion_wire::test_support::be::ready(b'T'));
                }
                inner(m)
            })
        });
        let err = query_err(&pool, "select 1 /* opens */").await;
        assert_eq!(err.code(), "UNSAFE_TRANSACTION", "{err}");
        let err = query_err(&pool, "insert into t values (1) /* opens */").await;
        assert_eq!(err.code(), "IN_DOUBT", "{err}");
        query_ok(&pool, "select 1", "a fresh connection").await;
        assert_eq!(
            opened.load(Ordering::SeqCst),
            3,
            "each connection left in a transaction was closed"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_connection_dies_while_it_is_prepared_runs_once_on_a_new_one() {
    timed(async {
        // The first connection dies with the insert's Parse/Describe in flight: nothing of
        // the statement ran, so it is not in doubt; it runs on the next connection.
        let executed = counter();
        let seen = executed.clone();
        let parses = counter();
        let pool = pool_with(1, 2_000, counter(), move || {
            let (seen, parses) = (seen.clone(), parses.clone());
            let mut inner = by_statement(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                Reply::Send(hyperion_wire::test_support::be::command_complete(
                    "INSERT 0 1",
                ))
            });
            Box::new(move |m: &Frontend| {
                if m.tag == b'P' && parses.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Reply::Close;
                }
                inner(m)
            })
        });
        query_ok(
            &pool,
            "insert into t values (1)",
            "run on a new connection, not IN_DOUBT",
        )
        .await;
        assert_eq!(executed.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_gets_a_connection_while_queries_keep_every_pipeline_busy() {
    timed(async {
        // One connection, and sixteen callers that keep its pipeline full for good: it is
        // never without a query. A transaction waiting for it must still get it, within
        // acquireTimeoutMs, rather than 53300 from a pool that is only busy.
        let pool = pool_with(1, 1_500, counter(), plain);
        pool.query("select 1", NO_PARAMS, QueryOptions::default(), None)
            .await
            .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for _ in 0..16 {
            let (p, stop) = (pool.clone(), stop.clone());
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    // 53300 is allowed here: these queries may wait behind the transaction.
                    let _ = p
                        .query("select 1", NO_PARAMS, QueryOptions::default(), None)
                        .await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let tx = pool.begin(None).await;
        let waited = started.elapsed();
        let tx = tx.unwrap_or_else(|e| panic!("after {waited:?}: {e}"));
        tx.commit().await.unwrap();
        stop.store(true, Ordering::Relaxed);
        for l in load {
            l.await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_succeeded_as_a_read_only_pools_standby_was_promoted_is_not_run_again() {
    timed(async {
        // Every connection is to a standby (it says so at startup). The insert's answer
        // carries the promotion (in_hot_standby=off): it ran, writable, and committed. Run
        // again on another standby it would fail there, or run twice.
        let executed = counter();
        let seen = executed.clone();
        let mut cfg = scripted_config(1, 2_000);
        cfg.mode = hyperion_pool::Mode::ReadOnly;
        cfg.connector = Some(Connector(Arc::new(move |c| {
            let seen = seen.clone();
            let backend = spawn_backend(
                &[
                    ("default_transaction_read_only", "on"),
                    ("in_hot_standby", "on"),
                ],
                by_statement(move |sql| {
                    let mut out = Vec::new();
                    if sql.starts_with("insert") {
                        seen.fetch_add(1, Ordering::SeqCst);
                        for (name, value) in [
                            ("in_hot_standby", "off"),
                            ("default_transaction_read_only", "off"),
                        ] {
                            out.extend(hyperion_wire::test_support::be::parameter_status(
                                name, value,
                            ));
                        }
                        out.extend(hyperion_wire::test_support::be::command_complete(
                            "INSERT 0 1",
                        ));
                    } else {
                        out.extend(hyperion_wire::test_support::be::command_complete(
                            "SELECT 0",
                        ));
                    }
                    Reply::Send(out)
                }),
            );
            Box::pin(async move { connect_stream(backend.stream, &c).await })
        })));
        let pool = Pool::new(cfg).unwrap();
        query_ok(&pool, "insert into t values (1)", "its result: it ran").await;
        assert_eq!(executed.load(Ordering::SeqCst), 1, "run once");
    })
    .await;
}
