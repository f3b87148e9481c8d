'use strict'
// A large result reaches JS in chunks while the server is still sending it (napi/src/
// stream.rs): rows are built from one chunk while the next is decoded. What must hold: the
// rows come out whole and in order; a retried read (the connection died after some rows were
// delivered) returns only the rows of the attempt that completed; an error after some rows
// (from the server, or a value we cannot decode) rejects the query and leaves the pool usable.

const { test } = require('node:test')
const v8 = require('node:v8')
const vm = require('node:vm')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')
const { NativePool } = require('../index.js')
const { createPool } = require('../client.js')
const { mockServer } = require('./mock-server.js')

const suite = useCluster({
  async setup(s) {
    const p = s.pool({ poolSize: 1 })
    await p.query('drop table if exists stream_flag')
    await p.query('create table stream_flag (on_ bool)')
  },
})

const N = 20000
// ~130 bytes a row, 2.6 MB in all: about ten batches.
const WIDE = `select g, repeat('x', 100) as pad from generate_series(1, ${N}) g`

function assertWide(rows, n = N) {
  assert.equal(rows.length, n)
  for (let i = 0; i < n; i++) {
    const r = rows[i]
    if (r.g !== i + 1 || r.pad.length !== 100) assert.fail(`row ${i}: ${JSON.stringify(r)}`)
  }
}

// The chunks of one query as the native layer hands them over.
async function chunksOf(sql) {
  const opts = { ...suite.conn, poolSize: 1 }
  const native = new NativePool({ names: Object.keys(opts), ...opts })
  try {
    let c = await native.query(sql, [], false)
    if (Array.isArray(c)) return [c] // small: the finished rows
    const chunks = [c]
    while (!c.last) {
      c = await chunks[0].rest.next()
      chunks.push(c)
    }
    return chunks
  } finally {
    await native.end()
  }
}

test('a large result arrives in chunks and assembles whole and in order', async () => {
  const chunks = await chunksOf(WIDE)
  assert.ok(chunks.length >= 4, `${chunks.length} chunk(s)`)
  assert.deepEqual(chunks.map((c) => c.attempt), chunks.map(() => 1))
  assert.deepEqual(chunks.map((c) => c.last), chunks.map((_, i) => i === chunks.length - 1))
  assert.equal(chunks.reduce((n, c) => n + c.n, 0), N)
  // A small result crosses once, whole.
  const small = await chunksOf('select 1 as x')
  assert.equal(small.length, 1)

  const pool = suite.pool()
  assertWide(await pool.query(WIDE))
  assertWide(await pool.transaction((tx) => tx.query(WIDE)))
})

// Past 256 KB of one answer, the JS thread's socket waits for more on a short timer instead
// of on readability (wire/src/runner.rs, Pace). What must hold: an answer that pauses in the
// middle (the timer then finds nothing and the socket is watched again), its end, and a query
// right after it on the same connection are all read, none left waiting.
test('a large result read at a paced rate: a pause mid-answer, its end and the next query', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const paused = `select g, repeat('y', 200) as pad, case when g = 6000 then pg_sleep(0.3) end as z
    from generate_series(1, 12000) g`
  for (let round = 0; round < 3; round++) {
    const t0 = Date.now()
    const rows = await pool.query(paused)
    assert.equal(rows.length, 12000)
    assert.ok(rows.every((r, i) => r.g === i + 1 && r.pad.length === 200), 'rows whole and in order')
    assert.equal((await pool.query('select 1 as one'))[0].one, 1)
    assertWide(await pool.query(WIDE))
    const [{ n }] = await pool.query('select count(*)::int4 as n from generate_series(1, 10) g')
    assert.equal(n, 10)
    // Generous: the pause is 0.3 s; a read left waiting would never end (the test's
    // timeout) or take seconds.
    assert.ok(Date.now() - t0 < 10000, `round ${round} took ${Date.now() - t0} ms`)
  }
})

test('a read retried after some of its rows arrived returns the rows of the last attempt only', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('delete from stream_flag')
  await pool.query('insert into stream_flag values (true)')
  // The first attempt sends half its rows, then sleeps while the flag is set; the test
  // clears the flag and kills that backend, and the retry runs through.
  const slow = `select g, repeat('x', 100) as pad,
    case when g = ${N / 2} then (select 1 from pg_sleep(30) where exists (select from stream_flag)) end as s
    from generate_series(1, ${N}) g`
  const q = pool.query(slow, [], { retry: true })
  const admin = await suite.cluster.admin((await suite.cluster.status()).primary)
  try {
    let pid = null
    for (let i = 0; i < 400 && pid === null; i++) {
      const { rows } = await admin.query("select pid from pg_stat_activity where wait_event = 'PgSleep' and query like '%from pg_sleep(30) where%' and pid <> pg_backend_pid()")
      if (rows.length) pid = rows[0].pid
      else await new Promise((resolve) => setTimeout(resolve, 25))
    }
    assert.ok(pid !== null, 'the first attempt never reached its sleep')
    await admin.query('delete from stream_flag')
    await admin.query(`select pg_terminate_backend(${pid})`)
  } finally {
    await admin.end()
  }
  const rows = await q
  assertWide(rows)
  assert.ok(rows.every((r) => r.s === null))
})

test('a server error after some rows rejects the query; the pool stays usable', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await assert.rejects(
    pool.query(`select g, repeat('x', 100) as pad, 1 / (g - ${N - 10}) as boom from generate_series(1, ${N}) g`),
    (e) => e.code === '22012',
  )
  assertWide(await pool.query(WIDE))
})

test('a value that cannot be decoded, in the first batch or a later one, is DECODE_ERROR; the pool stays usable', async () => {
  // No server sends text that is not UTF-8 to a UTF-8 client, so a scripted backend does:
  // "bad <i>" answers N rows of 100 bytes with byte 0xff as row i.
  const mock = await mockServer((sql) => {
    const bad = /^bad (\d+)$/.exec(sql)
    return Array.from({ length: N }, (_, i) => (bad && i === Number(bad[1]) ? Buffer.from([0xff]) : Buffer.alloc(100, 'x')))
  })
  const pool = createPool({ hosts: [`127.0.0.1:${mock.port}`], user: 'u', database: 'd', poolSize: 1 })
  try {
    for (const at of [10, N - 10]) {
      await assert.rejects(pool.query(`bad ${at}`), (e) => e.code === 'DECODE_ERROR')
    }
    const rows = await pool.query('good')
    assert.equal(rows.length, N)
    assert.ok(rows.every((r) => r.v.length === 100))
  } finally {
    await pool.end()
    await mock.close()
  }
})

test('column texts held outside the JS heap stay intact through garbage collections', async () => {
  // Large ASCII column texts become external strings whose characters live in memory the
  // native layer hands to V8 and frees when V8 collects the string (napi/src/rows.rs). A
  // result dropped and collected frees its texts; the rows still held must not see it.
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc')
  const pool = suite.pool({ poolSize: 1 })
  const sql = (salt) => `select g, 'row-' || g || '-${salt}-' || repeat('y', g % 50) as t, 'ü-' || g as u,
    jsonb_build_object('g', g, 's', '${salt}') as j from generate_series(1, ${N}) g`
  const check = (rows, salt) => {
    assert.equal(rows.length, N)
    for (let i = 0; i < N; i++) {
      const r = rows[i]
      const g = i + 1
      if (r.g !== g || r.t !== `row-${g}-${salt}-${'y'.repeat(g % 50)}` || r.u !== `ü-${g}` || r.j.g !== g || r.j.s !== salt) {
        assert.fail(`${salt} row ${i}: ${JSON.stringify(r)}`)
      }
    }
  }
  const kept = await pool.query(sql('kept'))
  for (let round = 0; round < 3; round++) {
    let dropped = await pool.query(sql(`dropped${round}`))
    check(dropped, `dropped${round}`)
    dropped = null
    gc()
    gc()
    // New results may reuse the memory the collected ones freed.
    check(await pool.query(sql(`fresh${round}`)), `fresh${round}`)
  }
  check(kept, 'kept')
})
