'use strict'
// The workloads of the project's BENCHMARKS.md (W1-W5, W7), written once against the
// adapter interface of clients/*.js. Runs under node and under bun (CommonJS, no node-only
// APIs beyond fs/crypto/process). Every workload checks its results; a failed check throws
// and the sample is reported as an error, not a number.

const fs = require('node:fs')
const crypto = require('node:crypto')

const now = () => performance.now()

// Fixed sizes (BENCHMARKS.md); `quick` shrinks the counts for smoke runs.
const SIZES = {
  W1: { full: { warm: 2000, n: 20000 }, quick: { warm: 200, n: 2000 } },
  W2: { full: { warm: 20000, n: 200000, inflight: 256, pool: 10 }, quick: { warm: 2000, n: 20000, inflight: 256, pool: 10 } },
  W3: { full: { rows: 50000, runs: 3 }, quick: { rows: 50000, runs: 3 } },
  W4: { full: { warm: 2000, n: 50000, inflight: 64, pool: 10 }, quick: { warm: 500, n: 5000, inflight: 64, pool: 10 } },
  W5: { full: { warm: 1000, n: 20000, inflight: 64, pool: 10 }, quick: { warm: 200, n: 2000, inflight: 64, pool: 10 } },
  // Streams and COPY (issue 19): 1M rows of bench_stream; `runs` timed runs after one checked
  // warm-up, median. batchSize: rows per fetch for every streaming client; chunkRows: rows per
  // chunk the COPY FROM generator yields.
  S1: { full: { rows: 1000000, runs: 3, batchSize: 1000 }, quick: { rows: 100000, runs: 2, batchSize: 1000 } },
  S2: { full: { rows: 1000000, runs: 3, chunkRows: 1000 }, quick: { rows: 100000, runs: 2, chunkRows: 1000 } },
  S3: { full: { rows: 1000000, runs: 3 }, quick: { rows: 100000, runs: 2 } },
}
// W3's data shapes (run.js --w3-shape): the same sizes, another table.
// W1 with pinned CPUs (run.js --w1-pin): the same sizes.
SIZES['W1-same'] = SIZES.W1
SIZES['W1-cross'] = SIZES.W1
SIZES['W3-json'] = SIZES.W3
SIZES['W3-strings'] = SIZES.W3
SIZES.W7 = SIZES.W2
// B1 (not in BENCHMARKS.md): a burst past the pipelines, `n` point queries started at once on
// a pool of `pool` (2 * 128 fit in flight on this client's pipelines; node-postgres queues
// the rest in JS), `runs` timed bursts after one untimed, median.
SIZES.B1 = { full: { n: 20000, pool: 2, runs: 3 }, quick: { n: 2000, pool: 2, runs: 2 } }
// C1 (run.js --tls): connect time, n timed connect + first query + close after `warm`.
SIZES.C1 = { full: { warm: 2, n: 50 }, quick: { warm: 1, n: 10 } }

const SMALL_ROWS = 10000
const TX_ROWS = 10000
const T0 = Date.UTC(2024, 0, 1) // timestamptz '2024-01-01 00:00:00+00'

// The schema every workload runs on (run.js creates it once, as the admin user).
const SCHEMA = `
drop table if exists bench_small, bench_wide, bench_json, bench_strings, bench_insert, bench_tx;
create table bench_small (id int4 primary key, label text not null, amount numeric(12,2) not null, created_at timestamptz not null);
insert into bench_small select i, 'label-' || i, (i % 1000) * 1.25, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
  from generate_series(1, ${SMALL_ROWS}) i;
create table bench_wide (c_int4 int4 not null, c_int8 int8, c_float8 float8, c_bool bool, c_text text, c_numeric numeric(12,2),
  c_ts timestamptz, c_uuid uuid, c_jsonb jsonb, c_bytea bytea);
insert into bench_wide select i, 9007199254740993 + i::int8 * 7, i + 0.25, i % 3 = 0, 'text-value-' || lpad(i::text, 9, '0'),
  (i % 100000) + 0.5, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', md5(i::text)::uuid,
  jsonb_build_object('id', i, 'tag', 'k' || (i % 10)), decode(md5(i::text), 'hex')
  from generate_series(1, 50000) i;
create table bench_json (id int4 not null, doc jsonb not null);
insert into bench_json select i, jsonb_build_object('id', i, 'active', i % 2 = 0, 'score', i * 1.1::float8,
  'note', case when i % 5 = 0 then null else 'note ' || i end, 'tags', jsonb_build_array('t' || (i % 7), 't' || (i % 11), i % 13),
  'meta', jsonb_build_object('depth', i % 4, 'ratio', (i / 8.0)::float8, 'parent', case when i % 3 = 0 then null else i - 1 end,
    'flags', jsonb_build_object('a', i % 2 = 1, 'b', null), 'path', jsonb_build_array(jsonb_build_object('k', i % 5, 'v', -i * 0.5::float8))))
  from generate_series(1, 50000) i;
create table bench_strings (id int4 not null, name text not null, email text not null, title text not null, body text not null, city text not null);
insert into bench_strings select i, 'user ' || i || ' ' || substr(md5(i::text), 1, i % 17), 'u' || i || '.' || substr(md5((2 * i)::text), 1, 8) || '@example.com',
  'Title ' || i || ': ' || md5(i || 't'), repeat(md5(i::text), 1 + i % 8), 'città ' || i || ' — ñ'
  from generate_series(1, 50000) i;
create unlogged table bench_insert (id int4 not null, label text not null, amount numeric(12,2) not null, created_at timestamptz not null);
create table bench_tx (id int4 primary key, n int4 not null default 0);
insert into bench_tx select i, 0 from generate_series(1, ${TX_ROWS}) i;
grant all on bench_small, bench_wide, bench_json, bench_strings, bench_insert, bench_tx to public;
`
// S1-S3 (run.js creates it only when one of them runs): 1M rows whose COPY text is exactly
// what copyChunks() generates; bench_copy is S2's target. synchronize_seqscans is turned off
// for the database (new sessions), the only setting the benchmark changes on either server.
const STREAM_ROWS = 1000000
const SCHEMA_STREAM = `
drop table if exists bench_stream, bench_copy;
create table bench_stream (id int4 not null, label text not null, amount numeric(12,2) not null, value float8 not null, big int8 not null);
insert into bench_stream select i, 'row-' || i, (i % 100000) + 0.25, i + 0.5, 9007199254740993 + i from generate_series(1, ${STREAM_ROWS}) i;
create unlogged table bench_copy (id int4 not null, label text not null, amount numeric(12,2) not null, value float8 not null, big int8 not null);
grant all on bench_stream, bench_copy to public;
-- A scan of a table larger than a quarter of shared_buffers may start where another scan of
-- it is (or stopped): off, so that S3's COPY TO sends the rows in the order copyChunks() makes.
do $$ begin execute format('alter database %I set synchronize_seqscans = off', current_database()); end $$;
`
const SCHEMA_STREAM_AFTER = 'vacuum analyze bench_stream, bench_copy'
// Run separately (VACUUM cannot run inside the implicit transaction of a multi-statement query).
const SCHEMA_AFTER = 'vacuum analyze bench_small, bench_wide, bench_json, bench_strings, bench_insert, bench_tx'

class CheckError extends Error {
  constructor(message) {
    super(message)
    this.code = 'CHECK_FAILED'
  }
}
function check(cond, what) {
  if (!cond) throw new CheckError(what())
}
const show = (v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Date ? `Date(${v.toISOString()})` : JSON.stringify(v))

// PostgreSQL's text timestamptz ('2024-01-01 00:00:01+00', '...:01.5-07:30') -> ms.
function pgTimestamptz(s) {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::?(\d\d))?(?::\d\d)?$/.exec(s)
  if (!m) return NaN
  return Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4] || '00'}`)
}
// ISO 8601 with microseconds and Z (hyperiondb-client), or PostgreSQL's own text.
function timeOf(v) {
  if (v instanceof Date) return v.getTime()
  if (typeof v === 'string') return v.endsWith('Z') ? Date.parse(v) : pgTimestamptz(v)
  return NaN
}
function checkInt8(adapter, v, expected, what) {
  if (adapter.int8 === 'bigint') check(typeof v === 'bigint' && v === expected, () => `${what}: expected BigInt ${expected}n, got ${show(v)}`)
  else check(v === String(expected) || v === expected, () => `${what}: expected '${expected}', got ${show(v)}`)
}

// `total` calls of fn(k), `inflight` at a time.
async function concurrent(total, inflight, fn, offset = 0) {
  let next = 0
  const worker = async () => {
    for (;;) {
      const k = next++
      if (k >= total) return
      await fn(offset + k)
    }
  }
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, worker))
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}
const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50)

// Monotonic µs, the clock of V8's .cpuprofile timestamps: the timed sections are reported as
// `windows_us` so that tools/cpuprofile-summary.js --result can profile just those.
const monoUs = () => Number(process.hrtime.bigint() / 1000n)

function cpuMicros() {
  const u = process.cpuUsage()
  return u.user + u.system
}

// ---------------------------------------------------------------------------------------
// W1: sequential latency
async function W1(db, adapter, size) {
  const SQL = 'select $1::int4 as x'
  const one = async (i) => {
    const rows = await db.query(SQL, [i])
    check(rows.length === 1 && rows[0].x === i, () => `W1: select ${i} returned ${show(rows)}`)
  }
  for (let i = 0; i < size.warm; i++) await one(i)
  const lat = new Float64Array(size.n)
  const cpu0 = cpuMicros()
  const start = now()
  for (let i = 0; i < size.n; i++) {
    const t = now()
    await one(size.warm + i)
    lat[i] = now() - t
  }
  const elapsed = now() - start
  const cpu = cpuMicros() - cpu0
  lat.sort()
  return {
    value: size.n / (elapsed / 1000),
    unit: 'queries/s',
    p50_us: lat[Math.ceil(0.5 * lat.length) - 1] * 1000,
    p99_us: lat[Math.ceil(0.99 * lat.length) - 1] * 1000,
    cpu_us_per_query: cpu / size.n,
    queries: size.n,
    elapsed_ms: elapsed,
  }
}

// ---------------------------------------------------------------------------------------
// W2 (and W7): point selects, many in flight
const W2_SQL = 'select id, label, amount, created_at from bench_small where id = $1'
const smallId = (k) => ((k * 7919) % SMALL_ROWS) + 1

async function W2(db, adapter, size) {
  // Warm-up: every row checked in full.
  await concurrent(size.warm, size.inflight, async (k) => {
    const id = smallId(k)
    const rows = await db.query(W2_SQL, [id])
    check(rows.length === 1, () => `W2: id ${id} returned ${rows.length} rows`)
    const r = rows[0]
    check(r.id === id && r.label === `label-${id}` && r.amount === ((id % 1000) * 1.25).toFixed(2) &&
      timeOf(r.created_at) === T0 + id * 60000, () => `W2: id ${id} returned ${show(r)}`)
  })
  // Timed: id and label of every row checked.
  let bad = null
  const cpu0 = cpuMicros()
  const w0 = monoUs()
  const start = now()
  await concurrent(size.n, size.inflight, async (k) => {
    const id = smallId(k)
    const rows = await db.query(W2_SQL, [id])
    if (rows.length !== 1 || rows[0].id !== id || rows[0].label !== 'label-' + id) bad = bad || { id, rows }
  }, size.warm)
  const elapsed = now() - start
  const cpu = cpuMicros() - cpu0
  const windows = [[w0, monoUs()]]
  check(!bad, () => `W2: id ${bad.id} returned ${show(bad.rows)}`)
  return { value: size.n / (elapsed / 1000), unit: 'queries/s', cpu_us_per_query: cpu / size.n, queries: size.n, elapsed_ms: elapsed, windows_us: windows }
}

// ---------------------------------------------------------------------------------------
// W3: one big result, as a service meets it (BENCHMARKS.md): the row limit bound as a
// parameter (`where id <= $1`), and a 2 ms setInterval running on the event loop during the
// query. Three data shapes (run.js --w3-shape): wide (the 10 columns of BENCHMARKS.md), json
// (jsonb with booleans, nulls, floats, arrays and nested objects), strings (5 text columns,
// every value distinct, some non-ASCII).
const W3_SHAPES = {
  wide: 'select c_int4, c_int8, c_float8, c_bool, c_text, c_numeric, c_ts, c_uuid, c_jsonb, c_bytea from bench_wide where c_int4 <= $1',
  json: 'select id, doc from bench_json where id <= $1',
  strings: 'select id, name, email, title, body, city from bench_strings where id <= $1',
}
const W3_SQL = W3_SHAPES.wide

function md5(i) {
  return crypto.createHash('md5').update(String(i)).digest()
}
const md5hex = (s) => crypto.createHash('md5').update(String(s)).digest('hex')

// Every row checked in full, whatever the order the rows came in.
function checkRows(rows, expectRows, what, checkOne) {
  check(Array.isArray(rows) && rows.length === expectRows, () => `${what}: ${rows && rows.length} rows, expected ${expectRows}`)
  const seen = new Uint8Array(expectRows + 1)
  for (const r of rows) {
    const i = r.c_int4 !== undefined ? r.c_int4 : r.id
    check(Number.isInteger(i) && i >= 1 && i <= expectRows && !seen[i], () => `${what}: bad or repeated id ${show(i)}`)
    seen[i] = 1
    checkOne(r, i)
  }
}
const showRow = (r) => Object.entries(r).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null && !(v instanceof Date) && !(v instanceof Uint8Array) ? JSON.stringify(v) : show(v)}`).join(', ')

function checkWide(rows, adapter, expectRows) {
  checkRows(rows, expectRows, 'W3', (r, i) => {
    checkInt8(adapter, r.c_int8, 9007199254740993n + BigInt(i) * 7n, `W3 row ${i} c_int8`)
    const d = md5(i)
    const hex = d.toString('hex')
    const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
    const json = typeof r.c_jsonb === 'string' ? JSON.parse(r.c_jsonb) : r.c_jsonb
    check(r.c_float8 === i + 0.25 && r.c_bool === (i % 3 === 0) && r.c_text === `text-value-${String(i).padStart(9, '0')}` &&
      r.c_numeric === `${i % 100000}.50` && timeOf(r.c_ts) === T0 + i * 1000 && r.c_uuid === uuid &&
      json && json.id === i && json.tag === `k${i % 10}` && Object.keys(json).length === 2 &&
      r.c_bytea instanceof Uint8Array && Buffer.from(r.c_bytea).equals(d) &&
      Object.keys(r).length === 10, () => `W3: row ${i} is wrong: ${showRow(r)}`)
  })
}

// The document of bench_json's row i, as JSON.parse would give it.
function jsonDoc(i) {
  return {
    id: i, active: i % 2 === 0, score: i * 1.1, note: i % 5 === 0 ? null : `note ${i}`, tags: [`t${i % 7}`, `t${i % 11}`, i % 13],
    meta: { depth: i % 4, ratio: i / 8, parent: i % 3 === 0 ? null : i - 1, flags: { a: i % 2 === 1, b: null }, path: [{ k: i % 5, v: -i * 0.5 }] },
  }
}
// Deep equality for JSON values (key order ignored: jsonb orders keys its own way).
function jsonEqual(a, b) {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === b.length && a.every((x, k) => jsonEqual(x, b[k]))
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]))
}
function checkJson(rows, adapter, expectRows) {
  checkRows(rows, expectRows, 'W3 json', (r, i) => {
    const doc = typeof r.doc === 'string' ? JSON.parse(r.doc) : r.doc
    check(Object.keys(r).length === 2 && jsonEqual(doc, jsonDoc(i)), () => `W3 json: row ${i} is wrong: ${showRow(r)}, expected doc ${JSON.stringify(jsonDoc(i))}`)
  })
}

function checkStrings(rows, adapter, expectRows) {
  checkRows(rows, expectRows, 'W3 strings', (r, i) => {
    const h = md5hex(i)
    check(Object.keys(r).length === 6 && r.name === `user ${i} ${h.slice(0, i % 17)}` && r.email === `u${i}.${md5hex(2 * i).slice(0, 8)}@example.com` &&
      r.title === `Title ${i}: ${md5hex(`${i}t`)}` && r.body === h.repeat(1 + (i % 8)) && r.city === `città ${i} — ñ`,
    () => `W3 strings: row ${i} is wrong: ${showRow(r)}`)
  })
}
const W3_CHECK = { wide: checkWide, json: checkJson, strings: checkStrings }

function statusKb(field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) : NaN
}
function fullGc() {
  if (typeof Bun !== 'undefined') Bun.gc(true)
  else if (typeof global.gc === 'function') { global.gc(); global.gc() }
}
// Peak RSS growth of a timed section: VmHWM is reset (clear_refs 5) after a full GC, so the
// figure is the peak during the section over the RSS at its start.
function rssWindow() {
  fullGc()
  let reset = true
  try { fs.writeFileSync('/proc/self/clear_refs', '5') } catch { reset = false }
  const rss0 = statusKb('VmRSS')
  return () => (reset ? (statusKb('VmHWM') - rss0) / 1024 : NaN)
}

// What a user of a client that returns timestamptz as a string (and, for some, jsonb as text)
// would add to get the same objects as the other clients (Date, parsed JSON): the W3 "+parse"
// variant times it too.
function parseTsJson(rows) {
  for (const r of rows) {
    if (r.c_ts !== undefined) r.c_ts = r.c_ts === null ? null : new Date(timeOf(r.c_ts))
    if (typeof r.c_jsonb === 'string') r.c_jsonb = JSON.parse(r.c_jsonb)
    if (typeof r.doc === 'string') r.doc = JSON.parse(r.doc)
  }
}

// A 2 ms timer on the event loop while the query runs, as in a service: its ticks, and the
// longest gap between two ticks (how long the loop was blocked at most).
function loopTimer() {
  let ticks = 0
  let last = now()
  let maxGap = 0
  const iv = setInterval(() => {
    const t = now()
    if (t - last > maxGap) maxGap = t - last
    last = t
    ticks++
  }, 2)
  return () => {
    clearInterval(iv)
    const t = now()
    if (t - last > maxGap) maxGap = t - last
    return { ticks, maxGap }
  }
}

async function W3(db, adapter, size, variant, shape = 'wide') {
  const SQL = W3_SHAPES[shape]
  const checkFn = W3_CHECK[shape]
  if (!SQL) throw new Error(`W3: unknown shape ${shape} (${Object.keys(W3_SHAPES).join(', ')})`)
  const post = variant === 'parse' ? parseTsJson : null
  const limit = size.rows
  let rows = await db.query(SQL, [limit])
  if (post) post(rows)
  checkFn(rows, adapter, size.rows) // warm-up run, checked
  rows = null
  const rates = []
  const rss = []
  const windows = []
  const gaps = []
  const ticks = []
  for (let run = 0; run < size.runs; run++) {
    const peak = rssWindow()
    const w0 = monoUs()
    const t = now()
    const timer = loopTimer()
    rows = await db.query(SQL, [limit])
    if (post) post(rows)
    const elapsed = now() - t
    const lt = timer()
    windows.push([w0, monoUs()])
    rss.push(peak())
    rates.push(size.rows / (elapsed / 1000))
    gaps.push(lt.maxGap)
    ticks.push(lt.ticks)
    checkFn(rows, adapter, size.rows)
    rows = null
  }
  return {
    value: median(rates), unit: 'rows/s', shape, runs: rates, rss_growth_mb: median(rss), rss_growth_runs_mb: rss,
    loop_max_gap_ms: median(gaps), loop_max_gap_runs_ms: gaps, timer_ticks_runs: ticks, windows_us: windows,
  }
}

// ---------------------------------------------------------------------------------------
// W4: single-row inserts
const W4_SQL = 'insert into bench_insert (id, label, amount, created_at) values ($1, $2, $3, $4)'
const w4Amount = (id) => `${id % 100000}.${String(id % 100).padStart(2, '0')}`

async function W4(db, adapter, size) {
  const insert = async (id) => {
    const rows = await db.query(W4_SQL, [id, `item-${id}`, w4Amount(id), new Date(T0 + id * 1000)])
    if (rows.length !== 0) throw new CheckError(`W4: insert returned ${rows.length} rows`)
  }
  await db.query('truncate bench_insert', [])
  const [before] = await db.query('select count(*)::int4 as n from bench_insert', [])
  check(before.n === 0, () => `W4: bench_insert is not empty (${before.n} rows)`)
  await concurrent(size.warm, size.inflight, (k) => insert(k + 1))
  const start = now()
  await concurrent(size.n, size.inflight, (k) => insert(k + 1), size.warm)
  const elapsed = now() - start
  const total = size.warm + size.n
  const [c] = await db.query(`select count(*)::int4 as n, count(distinct id)::int4 as d, min(id) as lo, max(id) as hi,
    sum(amount)::text as amount, count(*) filter (where label <> 'item-' || id or created_at <> timestamptz '2024-01-01 00:00:00+00' + id * interval '1 second')::int4 as wrong
    from bench_insert`, [])
  let amount = 0n
  for (let id = 1; id <= total; id++) amount += BigInt(Math.round(Number(w4Amount(id)) * 100))
  const expAmount = `${amount / 100n}.${String(amount % 100n).padStart(2, '0')}`
  check(c.n === total && c.d === total && c.lo === 1 && c.hi === total && c.amount === expAmount && c.wrong === 0,
    () => `W4: table holds ${show(c)}, expected ${total} rows 1..${total} with amount ${expAmount}`)
  return { value: size.n / (elapsed / 1000), unit: 'rows/s', rows: size.n, elapsed_ms: elapsed }
}

// ---------------------------------------------------------------------------------------
// W5: small transactions
const txId = (k) => ((k * 7919) % TX_ROWS) + 1

async function W5(db, adapter, size) {
  const sum = async () => Number((await db.query('select sum(n)::int8 as s from bench_tx', []))[0].s)
  const s0 = await sum()
  const tx = (k) => db.transaction(async (t) => {
    const id = txId(k)
    const u = await t.query('update bench_tx set n = n + 1 where id = $1', [id])
    check(u.length === 0, () => `W5: update returned rows`)
    const rows = await t.query('select id, n from bench_tx where id = $1', [id])
    check(rows.length === 1 && rows[0].id === id && rows[0].n >= 1, () => `W5: select ${id} returned ${show(rows)}`)
  })
  await concurrent(size.warm, size.inflight, tx)
  const start = now()
  await concurrent(size.n, size.inflight, tx, size.warm)
  const elapsed = now() - start
  const s1 = await sum()
  check(s1 - s0 === size.warm + size.n, () => `W5: sum(n) grew by ${s1 - s0}, expected ${size.warm + size.n}`)
  return { value: size.n / (elapsed / 1000), unit: 'transactions/s', transactions: size.n, elapsed_ms: elapsed }
}

// ---------------------------------------------------------------------------------------
// S1-S3 (issue 19): streaming a large result, COPY FROM and COPY TO, 1M rows of bench_stream
// (id int4, label text, amount numeric(12,2), value float8, big int8 > 2^53). Each client its
// own way (clients/*.js: stream, copyFrom, copyTo). Figures: rows/s and peak RSS growth.
const STREAM_SQL = 'select id, label, amount, value, big from bench_stream where id <= $1'

// COPY text of bench_stream's rows 1..rows, `chunkRows` rows per string: the rows S2 loads and
// exactly the bytes S3 must read back.
function* copyChunks(rows, chunkRows) {
  for (let i = 1; i <= rows;) {
    const end = Math.min(rows, i + chunkRows - 1)
    let s = ''
    for (; i <= end; i++) s += `${i}\trow-${i}\t${i % 100000}.25\t${i}.5\t900719925${4740993 + i}\n`
    yield s
  }
}
// S2's source, the same for every client: an async generator of Buffers, as a loader that
// builds the text as it goes would write it.
async function* copySource(rows, chunkRows) {
  for (const s of copyChunks(rows, chunkRows)) yield Buffer.from(s)
}

// S1: for every row, its id (each once, in range) and label; every 97th row in full.
async function S1(db, adapter, size) {
  const run = async () => {
    const seen = new Uint8Array(size.rows + 1)
    let n = 0
    let bad = null
    await db.stream(STREAM_SQL, [size.rows], { batchSize: size.batchSize }, (r) => {
      n++
      const id = r.id
      if (!(id >= 1 && id <= size.rows) || seen[id] || r.label !== 'row-' + id) { bad = bad || r; return }
      seen[id] = 1
      if (id % 97 === 0 && !(r.amount === `${id % 100000}.25` && r.value === id + 0.5 && Object.keys(r).length === 5 &&
        (adapter.int8 === 'bigint' ? r.big === 9007199254740993n + BigInt(id) : r.big === `900719925${4740993 + id}`))) bad = bad || r
    })
    return { n, bad }
  }
  const w = await run() // warm-up, checked
  check(!w.bad && w.n === size.rows, () => `S1: ${w.n} rows, expected ${size.rows}${w.bad ? `; wrong row ${showRow(w.bad)}` : ''}`)
  const rates = []
  const rss = []
  for (let k = 0; k < size.runs; k++) {
    const peak = rssWindow()
    const t = now()
    const r = await run()
    const elapsed = now() - t
    rss.push(peak())
    check(!r.bad && r.n === size.rows, () => `S1: ${r.n} rows, expected ${size.rows}${r.bad ? `; wrong row ${showRow(r.bad)}` : ''}`)
    rates.push(size.rows / (elapsed / 1000))
  }
  return { value: median(rates), unit: 'rows/s', runs: rates, rss_growth_mb: median(rss), rss_growth_runs_mb: rss, batch_size: size.batchSize }
}

// S2: COPY bench_copy FROM STDIN (text) from copySource(); the table is then checked in full
// by the server, and the client's own row count where it reports one.
async function S2(db, adapter, size) {
  const SQL = 'copy bench_copy (id, label, amount, value, big) from stdin'
  const verify = async (count) => {
    const [c] = await db.query(`select count(*)::int4 as n, count(distinct id)::int4 as d, min(id) as lo, max(id) as hi,
      count(*) filter (where label <> 'row-' || id or amount <> (id % 100000) + 0.25 or value <> id + 0.5 or big <> 9007199254740993 + id)::int4 as wrong
      from bench_copy`, [])
    check(c.n === size.rows && c.d === size.rows && c.lo === 1 && c.hi === size.rows && c.wrong === 0,
      () => `S2: bench_copy holds ${show(c)}, expected ${size.rows} rows 1..${size.rows}, none wrong`)
    check(count === null || count === undefined || Number(count) === size.rows, () => `S2: the client reported ${show(count)} rows, expected ${size.rows}`)
  }
  await db.query('truncate bench_copy', [])
  await verify(await db.copyFrom(SQL, copySource(size.rows, size.chunkRows))) // warm-up, checked
  const rates = []
  const rss = []
  let reported = null
  for (let k = 0; k < size.runs; k++) {
    await db.query('truncate bench_copy', [])
    const peak = rssWindow()
    const t = now()
    const count = await db.copyFrom(SQL, copySource(size.rows, size.chunkRows))
    const elapsed = now() - t
    rss.push(peak())
    await verify(count)
    reported = count === null || count === undefined ? null : Number(count)
    rates.push(size.rows / (elapsed / 1000))
  }
  return { value: median(rates), unit: 'rows/s', runs: rates, rss_growth_mb: median(rss), rss_growth_runs_mb: rss, chunk_rows: size.chunkRows, client_row_count: reported }
}

// S3: COPY bench_stream TO STDOUT (text); every byte hashed as it arrives and compared with the
// text copyChunks() makes (the hashing is in the timed section, the same for every client).
async function S3(db, adapter, size) {
  const SQL = size.rows === STREAM_ROWS ? 'copy bench_stream to stdout' : `copy (select * from bench_stream where id <= ${size.rows | 0}) to stdout`
  const h0 = crypto.createHash('sha256')
  let expectBytes = 0
  for (const s of copyChunks(size.rows, 10000)) { const b = Buffer.from(s); h0.update(b); expectBytes += b.length }
  const expect = h0.digest('hex')
  const run = async () => {
    const h = crypto.createHash('sha256')
    let bytes = 0
    let chunks = 0
    await db.copyTo(SQL, (chunk) => {
      h.update(chunk)
      bytes += chunk.length
      chunks++
    })
    return { bytes, chunks, hash: h.digest('hex') }
  }
  const ok = (r) => check(r.bytes === expectBytes && r.hash === expect, () => `S3: ${r.bytes} bytes (expected ${expectBytes}), sha256 ${r.hash.slice(0, 16)} (expected ${expect.slice(0, 16)})`)
  ok(await run()) // warm-up, checked
  if (db.afterCopyTo) await db.afterCopyTo()
  const rates = []
  const rss = []
  let chunks = 0
  for (let k = 0; k < size.runs; k++) {
    if (k && db.afterCopyTo) await db.afterCopyTo()
    const peak = rssWindow()
    const t = now()
    const r = await run()
    const elapsed = now() - t
    rss.push(peak())
    ok(r)
    chunks = r.chunks
    rates.push(size.rows / (elapsed / 1000))
  }
  return { value: median(rates), unit: 'rows/s', runs: rates, rss_growth_mb: median(rss), rss_growth_runs_mb: rss, bytes: expectBytes, chunks, mb_per_s: (median(rates) * expectBytes) / size.rows / 1e6 }
}

// ---------------------------------------------------------------------------------------
// C1: connect time. One connection as a user opens it (the client's pool of 1, or its
// connection), its first query, close; sequential, in this fresh process. variant: plain (TLS
// off), tls (verify-full against the CA, SSLRequest), direct (verify-full, direct SSL: ALPN
// 'postgresql', PostgreSQL 17+). The first query reads pg_stat_ssl, so a connection that is
// not (or is) encrypted against the variant fails the check.
async function C1(adapter, conn, size, variant) {
  const tls = { plain: false, tls: conn.tls && { ca: conn.tls.ca }, direct: conn.tls && { ca: conn.tls.ca, direct: true } }[variant]
  if (tls === undefined) throw new Error(`C1: unknown variant ${variant} (plain, tls, direct)`)
  if (variant !== 'plain' && !conn.tls) throw new Error('C1: the server has no TLS (run.js --tls)')
  const one = async () => {
    const t = now()
    const db = await adapter.connect({ ...conn, hosts: undefined, max: 1, tls })
    let rows
    try {
      rows = await db.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()', [])
    } finally {
      await db.close()
    }
    const ms = now() - t
    check(rows.length === 1 && rows[0].ssl === (variant !== 'plain'), () => `C1 ${variant}: pg_stat_ssl says ssl = ${show(rows[0] && rows[0].ssl)}`)
    return ms
  }
  const first = await one()
  for (let i = 1; i < size.warm; i++) await one()
  const ms = []
  for (let i = 0; i < size.n; i++) ms.push(await one())
  ms.sort((a, b) => a - b)
  return { value: percentile(ms, 50), unit: 'ms', p90_ms: percentile(ms, 90), first_ms: first, connects: size.n }
}

// Over TLS (run.js --tls), every workload's connection is checked to be encrypted.
async function checkTls(db, conn) {
  if (!conn.tls) return
  const rows = await db.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()', [])
  check(rows.length === 1 && rows[0].ssl === true, () => `TLS run: pg_stat_ssl says ssl = ${show(rows[0] && rows[0].ssl)}`)
}

// B1: a burst of point queries, all started at once, every answer checked.
async function B1(db, adapter, size) {
  const SQL = 'select $1::int4 as x'
  const burst = async () => {
    const start = now()
    const all = await Promise.all(Array.from({ length: size.n }, (_, i) => db.query(SQL, [i])))
    const elapsed = now() - start
    all.forEach((rows, i) => check(rows.length === 1 && rows[0].x === i, () => `B1: select ${i} returned ${show(rows)}`))
    return elapsed
  }
  await burst()
  const times = []
  const cpu0 = cpuMicros()
  for (let r = 0; r < size.runs; r++) times.push(await burst())
  const cpu = cpuMicros() - cpu0
  const ms = median(times)
  return {
    value: size.n / (ms / 1000),
    unit: 'queries/s',
    burst_ms: ms,
    runs_ms: times,
    cpu_us_per_query: cpu / (size.n * size.runs),
    queries: size.n * size.runs,
  }
}

const WORKLOADS = {
  B1: { run: B1, pool: (s) => s.pool },
  W1: { run: W1, pool: () => 1 },
  W2: { run: W2, pool: (s) => s.pool },
  W3: { run: W3, pool: () => 1 },
  W4: { run: W4, pool: (s) => s.pool },
  W5: { run: W5, pool: (s) => s.pool },
  W7: { run: W2, pool: (s) => s.pool },
  S1: { run: S1, pool: () => 1 },
  S2: { run: S2, pool: () => 1 },
  S3: { run: S3, pool: () => 1 },
}

async function runWorkload(id, adapter, conn, { quick = false, variant, size: override } = {}) {
  if (!SIZES[id]) throw new Error(`unknown workload ${id}`)
  const size = { ...SIZES[id][quick ? 'quick' : 'full'], ...override }
  if (id === 'C1') return { ...(await C1(adapter, conn, size, variant)), size }
  // W1-same, W1-cross (run.js --w1-pin): W1, the CPU placement is run.js's business.
  if (/^W1-/.test(id)) id = 'W1'
  // W3-json, W3-strings: W3 on another data shape.
  const shape = id.split('-')[1]
  const w = shape ? { run: (db, a, s, v) => W3(db, a, s, v, shape), pool: () => 1 } : WORKLOADS[id]
  if (!w) throw new Error(`unknown workload ${id}`)
  // Variants that change how the client is configured go to connect(); 'parse' is W3's.
  const clientVariant = variant === 'parse' ? undefined : variant
  const db = await adapter.connect({ ...conn, hosts: undefined, max: w.pool(size), variant: clientVariant })
  try {
    await checkTls(db, conn)
    const metrics = await w.run(db, adapter, size, variant)
    return { ...metrics, size }
  } finally {
    await db.close()
  }
}

module.exports = { SIZES, SCHEMA, SCHEMA_AFTER, SCHEMA_STREAM, SCHEMA_STREAM_AFTER, W3_SHAPES, runWorkload, CheckError, check, show, percentile, median, concurrent, pgTimestamptz }
