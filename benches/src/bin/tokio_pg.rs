//! tokio-postgres as a peer in `benches/node/run.js` (BENCHMARKS.md: "tokio-postgres (Rust,
//! 1 thread)"): W1 and W2 on a `current_thread` runtime, one sample per process, as the
//! Node.js clients run in `sample.js`.
//!
//!   tokio_pg --workload W1|W2 [--quick]
//!
//! The server comes from `BENCH_CONN` (JSON: `{ host, port, user, password, database }`, the
//! same as `sample.js`; SCRAM as for the other clients). Prints progress on stderr and one
//! line `@@RESULT <json>` on stdout (the shape `sample.js` prints); exits 1 with
//! `@@RESULT {"ok":false,...}` if the sample fails, including when a result is wrong.
//!
//! - W1: one connection, 2,000 warm-up then 20,000 sequential `select $1::int4 as x` (a
//!   prepared statement, the parameter varies), every answer checked; queries/s, p50/p99 µs.
//! - W2: 10 connections, `select id, label, amount, created_at from bench_small where id = $1`
//!   (prepared on each), 256 queries in flight spread over the 10 connections (each
//!   connection pipelines its share: tokio-postgres sends a query as soon as its future is
//!   polled, and a `FuturesUnordered` polls them all), 20,000 warm-up then 200,000 timed.
//!   Warm-up rows are checked in full; timed rows have every column decoded (amount to a
//!   decimal string, created_at to a `SystemTime`, as the JS clients build a string and a
//!   Date) and id and label checked, as `lib/workloads.js` does. queries/s and client CPU
//!   µs/query (getrusage of this process over the timed section, as `process.cpuUsage()`
//!   in the JS samples).

use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, Row, Statement};

type BoxError = Box<dyn Error + Send + Sync>;

const W1_SQL: &str = "select $1::int4 as x";
const W2_SQL: &str = "select id, label, amount, created_at from bench_small where id = $1";
const SMALL_ROWS: i64 = 10_000;
/// timestamptz '2024-01-01 00:00:00+00', in seconds since the Unix epoch.
const T0_SECS: u64 = 1_704_067_200;

#[derive(Clone, Copy)]
struct Size {
    warm: usize,
    n: usize,
    inflight: usize,
    pool: usize,
}

/// `lib/workloads.js`'s SIZES (full and quick).
fn size_of(workload: &str, quick: bool) -> Option<Size> {
    let s = match (workload, quick) {
        ("W1", false) => Size {
            warm: 2_000,
            n: 20_000,
            inflight: 1,
            pool: 1,
        },
        ("W1", true) => Size {
            warm: 200,
            n: 2_000,
            inflight: 1,
            pool: 1,
        },
        ("W2", false) => Size {
            warm: 20_000,
            n: 200_000,
            inflight: 256,
            pool: 10,
        },
        ("W2", true) => Size {
            warm: 2_000,
            n: 20_000,
            inflight: 256,
            pool: 10,
        },
        _ => return None,
    };
    Some(s)
}

/// The tokio-postgres version this binary was built with, from the workspace's Cargo.lock.
fn tokio_postgres_version() -> &'static str {
    let lock = include_str!("../../../Cargo.lock");
    lock.split("[[package]]")
        .find(|p| p.contains("\nname = \"tokio-postgres\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or("unknown")
}

/// User + system CPU time of this process, µs (getrusage(RUSAGE_SELF), which is what Node's
/// `process.cpuUsage()` reads).
fn cpu_micros() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return f64::NAN;
    }
    // SAFETY: zero-initialised and filled by getrusage above.
    let ru = unsafe { ru.assume_init() };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// numeric in its binary form, as the decimal text PostgreSQL would print (`amount` is
/// numeric(12,2): the JS clients get the string '12.50').
struct Numeric(String);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let u16_at = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
        if raw.len() < 8 {
            return Err("numeric: short value".into());
        }
        let ndigits = usize::from(u16_at(0));
        let weight = i32::from(u16_at(2) as i16);
        let sign = u16_at(4);
        let dscale = usize::from(u16_at(6));
        if raw.len() != 8 + 2 * ndigits {
            return Err("numeric: bad length".into());
        }
        match sign {
            0x0000 | 0x4000 => {}
            0xC000 => return Ok(Numeric("NaN".into())),
            0xD000 => return Ok(Numeric("Infinity".into())),
            0xF000 => return Ok(Numeric("-Infinity".into())),
            _ => return Err("numeric: bad sign".into()),
        }
        // Base-10000 digits; digit i has the weight `weight - i`.
        let digit = |i: i32| {
            if i >= 0 && (i as usize) < ndigits {
                u16_at(8 + 2 * i as usize)
            } else {
                0
            }
        };
        let mut s = String::with_capacity(16);
        if sign == 0x4000 {
            s.push('-');
        }
        if weight < 0 {
            s.push('0');
        } else {
            for i in 0..=weight {
                let _ = if i == 0 {
                    write!(s, "{}", digit(i))
                } else {
                    write!(s, "{:04}", digit(i))
                };
            }
        }
        if dscale > 0 {
            s.push('.');
            let start = s.len();
            for g in 1..=dscale.div_ceil(4) as i32 {
                let _ = write!(s, "{:04}", digit(weight + g));
            }
            s.truncate(start + dscale);
        }
        Ok(Numeric(s))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

struct Conn {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

fn conn_from_env() -> Result<Conn, BoxError> {
    let text =
        std::env::var("BENCH_CONN").map_err(|_| "BENCH_CONN is not set (see run.js --serve)")?;
    let v: Value = serde_json::from_str(&text)?;
    if v.get("tls").is_some_and(|t| !t.is_null()) {
        return Err(
            NotApplicable("tokio-postgres sample: TLS is not wired in (NoTls only)").into(),
        );
    }
    let s = |k: &str| -> Result<String, BoxError> {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("BENCH_CONN has no {k}").into())
    };
    let port = v
        .get("port")
        .and_then(Value::as_u64)
        .ok_or("BENCH_CONN has no port")?;
    Ok(Conn {
        host: s("host")?,
        port: u16::try_from(port)?,
        user: s("user")?,
        password: s("password")?,
        database: s("database")?,
    })
}

#[derive(Debug)]
struct NotApplicable(&'static str);
impl std::fmt::Display for NotApplicable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl Error for NotApplicable {}

#[derive(Debug)]
struct CheckFailed(String);
impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl Error for CheckFailed {}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), BoxError> {
    if cond {
        Ok(())
    } else {
        Err(CheckFailed(what()).into())
    }
}

/// `n` connections, each driven by a task on this (current_thread) runtime.
async fn connect(c: &Conn, n: usize) -> Result<Vec<Client>, BoxError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&c.host)
        .port(c.port)
        .user(&c.user)
        .password(&c.password)
        .dbname(&c.database);
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (client, connection) = cfg.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("tokio-postgres connection error: {e}");
            }
        });
        clients.push(client);
    }
    Ok(clients)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// W1: sequential latency
async fn w1(conn: &Conn, size: Size) -> Result<Value, BoxError> {
    let clients = connect(conn, size.pool).await?;
    let client = &clients[0];
    let stmt = client.prepare(W1_SQL).await?;
    let one = |i: i32| {
        let stmt = &stmt;
        async move {
            let row = client.query_one(stmt, &[&i]).await?;
            let x: i32 = row.try_get(0)?;
            check(x == i, || format!("W1: select {i} returned {x}"))
        }
    };
    for i in 0..size.warm {
        one(i as i32).await?;
    }
    let mut lat = Vec::with_capacity(size.n);
    let cpu0 = cpu_micros();
    let start = Instant::now();
    for i in 0..size.n {
        let t = Instant::now();
        one((size.warm + i) as i32).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_micros() - cpu0;
    lat.sort_by(f64::total_cmp);
    Ok(json!({
        "value": size.n as f64 / elapsed.as_secs_f64(),
        "unit": "queries/s",
        "p50_us": pct(&lat, 50.0),
        "p99_us": pct(&lat, 99.0),
        "cpu_us_per_query": cpu / size.n as f64,
        "queries": size.n,
        "elapsed_ms": elapsed.as_secs_f64() * 1e3,
        "size": { "warm": size.warm, "n": size.n },
    }))
}

// ---------------------------------------------------------------------------------------
// W2: point selects, 256 in flight over 10 connections
fn small_id(k: usize) -> i32 {
    ((k as i64 * 7919) % SMALL_ROWS + 1) as i32
}

async fn point_select(
    client: &Client,
    stmt: &Statement,
    id: i32,
) -> Result<(i32, Row), tokio_postgres::Error> {
    client.query_one(stmt, &[&id]).await.map(|row| (id, row))
}

/// `total` queries for ids small_id(offset + k), `inflight` at a time, query k on connection
/// k % pool; `on_row` sees each (id, row) as it completes.
async fn run_w2(
    clients: &[Client],
    stmts: &[Statement],
    total: usize,
    offset: usize,
    inflight: usize,
    mut on_row: impl FnMut(i32, &Row) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    let pool = clients.len();
    let mut pending = FuturesUnordered::new();
    let mut next = 0;
    while next < total.min(inflight) {
        pending.push(point_select(
            &clients[next % pool],
            &stmts[next % pool],
            small_id(offset + next),
        ));
        next += 1;
    }
    while let Some(done) = pending.next().await {
        let (id, row) = done?;
        on_row(id, &row)?;
        if next < total {
            pending.push(point_select(
                &clients[next % pool],
                &stmts[next % pool],
                small_id(offset + next),
            ));
            next += 1;
        }
    }
    Ok(())
}

async fn w2(conn: &Conn, size: Size) -> Result<Value, BoxError> {
    let clients = connect(conn, size.pool).await?;
    let mut stmts = Vec::with_capacity(clients.len());
    for c in &clients {
        stmts.push(c.prepare(W2_SQL).await?);
    }
    // Warm-up: every row checked in full.
    run_w2(&clients, &stmts, size.warm, 0, size.inflight, |id, row| {
        let got_id: i32 = row.try_get(0)?;
        let label: &str = row.try_get(1)?;
        let amount: Numeric = row.try_get(2)?;
        let created_at: SystemTime = row.try_get(3)?;
        let cents = (id % 1000) * 125;
        let want_amount = format!("{}.{:02}", cents / 100, cents % 100);
        let want_at = UNIX_EPOCH + Duration::from_secs(T0_SECS + id as u64 * 60);
        check(
            got_id == id
                && label == format!("label-{id}")
                && amount.0 == want_amount
                && created_at == want_at,
            || {
                format!(
                    "W2: id {id} returned ({got_id}, {label:?}, {:?}, {created_at:?})",
                    amount.0
                )
            },
        )
    })
    .await?;
    // Timed: every column decoded, id and label checked.
    let mut bad: Option<String> = None;
    let mut label_buf = String::with_capacity(16);
    let cpu0 = cpu_micros();
    let start = Instant::now();
    run_w2(
        &clients,
        &stmts,
        size.n,
        size.warm,
        size.inflight,
        |id, row| {
            let got_id: i32 = row.try_get(0)?;
            let label: &str = row.try_get(1)?;
            let amount: Numeric = row.try_get(2)?;
            let created_at: SystemTime = row.try_get(3)?;
            label_buf.clear();
            let _ = write!(label_buf, "label-{id}");
            if (got_id != id || label != label_buf) && bad.is_none() {
                bad = Some(format!(
                    "W2: id {id} returned ({got_id}, {label:?}, {:?}, {created_at:?})",
                    amount.0
                ));
            }
            Ok(())
        },
    )
    .await?;
    let elapsed = start.elapsed();
    let cpu = cpu_micros() - cpu0;
    if let Some(b) = bad {
        return Err(CheckFailed(b).into());
    }
    Ok(json!({
        "value": size.n as f64 / elapsed.as_secs_f64(),
        "unit": "queries/s",
        "cpu_us_per_query": cpu / size.n as f64,
        "queries": size.n,
        "elapsed_ms": elapsed.as_secs_f64() * 1e3,
        "size": { "warm": size.warm, "n": size.n, "inflight": size.inflight, "pool": size.pool },
    }))
}

// ---------------------------------------------------------------------------------------
fn emit(v: &Value) {
    println!("@@RESULT {v}");
}

fn run(workload: &str, quick: bool) -> Result<Value, BoxError> {
    // W1-same / W1-cross (run.js --w1-pin) are W1 under taskset.
    let base = if workload.starts_with("W1-") {
        "W1"
    } else {
        workload
    };
    let size = size_of(base, quick)
        .ok_or_else(|| format!("tokio-postgres sample: no workload {workload} (W1, W2)"))?;
    let conn = conn_from_env()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match base {
            "W1" => w1(&conn, size).await,
            _ => w2(&conn, size).await,
        }
    })
}

fn main() {
    let mut workload = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workload" => workload = args.next(),
            "--quick" => quick = true,
            _ => {
                eprintln!("unknown argument {a}\nusage: tokio_pg --workload W1|W2 [--quick]");
                std::process::exit(2);
            }
        }
    }
    let Some(workload) = workload else {
        eprintln!("usage: tokio_pg --workload W1|W2 [--quick]");
        std::process::exit(2);
    };
    let meta = |ok: bool| json!({ "ok": ok, "client": "tokio-postgres", "workload": workload, "version": tokio_postgres_version(), "runtime": "Rust (tokio current_thread runtime)" });
    match run(&workload, quick) {
        Ok(metrics) => {
            let mut r = meta(true);
            r["metrics"] = metrics;
            emit(&r);
        }
        Err(e) => {
            let mut r = meta(false);
            // tokio-postgres's errors say what failed; their sources say why.
            let mut msg = format!("{workload}: {e}");
            let mut src = e.source();
            while let Some(cause) = src {
                let _ = write!(msg, ": {cause}");
                src = cause.source();
            }
            r["error"] = Value::from(msg);
            if e.is::<CheckFailed>() {
                r["code"] = Value::from("CHECK_FAILED");
            }
            if e.is::<NotApplicable>() {
                r["na"] = Value::from(true);
            }
            emit(&r);
            std::process::exit(1);
        }
    }
}
