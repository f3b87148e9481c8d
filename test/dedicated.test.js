'use strict'
// What runs on a connection held alone: pool.connect() checkouts, row streams with
// backpressure, COPY in and out, scripts, savepoints, prepare: false, await using.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Readable } = require('node:stream')
const v8 = require('node:v8')
const vm = require('node:vm')
const { execFile } = require('node:child_process')
const { useCluster } = require('./support.js')

const suite = useCluster({
  async setup(s) {
    const p = s.pool()
    await p.query('create table if not exists copy_t (id int primary key, label text, amount numeric(12,2))')
    await p.query('create table if not exists sp_t (id int primary key)')
  },
})

async function backend(pool, pid) {
  const [row] = await pool.query('select state, query from pg_stat_activity where pid = $1', [pid])
  return row
}

test('pool.connect(): one connection for the caller alone; session state stays on it; release gives it back', async () => {
  const pool = suite.pool({ poolSize: 2 })
  const c = await pool.connect()
  assert.equal(pool.status().inUse, 1)
  await c.query("set application_name = 'checked-out'")
  const [a] = await c.query('select pg_backend_pid() as pid, current_setting($1) as app', ['application_name'])
  assert.equal(a.app, 'checked-out')
  assert.equal(a.pid, c.processId)
  const [b] = await c.query('select pg_backend_pid() as pid')
  assert.equal(b.pid, a.pid, 'every query of a checkout runs on the same backend')
  const rows = await c.query('select 1 as x union all select 2')
  assert.equal(rows.rowCount, 2)
  await c.release()
  assert.equal(pool.status().inUse, 0)
  await assert.rejects(c.query('select 1'), { code: 'CONNECTION_RELEASED' })
  await c.release() // twice is harmless
})

test('a session whose client_encoding was set away from UTF8 serves no one else', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const c = await pool.connect()
  const pid = c.processId
  await c.query("set client_encoding to 'LATIN1'")
  await c.release()
  // An 'é' the server holds (not one this query's text carries): a LATIN1 session sends it
  // as the byte E9, which is not UTF-8.
  const held = "select convert_from('\\xc3a9'::bytea, 'UTF8') as x, pg_backend_pid() as pid"
  const [r] = await pool.query(held)
  assert.equal(r.x, 'é')
  assert.notEqual(r.pid, pid, 'a new session')
  // Through the pool's own statements, SET client_encoding (or SET NAMES) is refused before it
  // is sent: other callers' statements pipelined behind it would run under it.
  for (const sql of ["set client_encoding to 'LATIN1'", "SET NAMES 'LATIN1'"]) {
    await assert.rejects(pool.query(sql), { code: 'UNSUPPORTED' }, sql)
  }
  // A change the check cannot see closes the connection after the statement that made it.
  await pool.query("select set_config('client_encoding', 'LATIN1', false)")
  assert.equal((await pool.query(held))[0].x, 'é')
})

test('release(err) closes the connection instead of giving it back; so does releasing inside BEGIN', async () => {
  const pool = suite.pool({ poolSize: 2 })
  const c = await pool.connect()
  const pid = c.processId
  await c.release(new Error('broken session state'))
  const d = await pool.connect()
  assert.notEqual(d.processId, pid)
  await d.query('begin')
  const pid2 = d.processId
  await d.release()
  // Both backends end once their connections close (give the server a moment).
  const alive = async () => (await pool.query('select count(*)::int as n from pg_stat_activity where pid = any($1)', [[pid, pid2]]))[0].n
  for (let i = 0; i < 100 && (await alive()) > 0; i++) await new Promise((r) => setTimeout(r, 20))
  assert.equal(await alive(), 0)
})

test('await using: a checkout is released and an unfinished transaction rolled back at the block end', async () => {
  const pool = suite.pool({ poolSize: 2 })
  await pool.query('delete from sp_t')
  {
    const c = await pool.connect()
    await c[Symbol.asyncDispose]()
    assert.equal(c.released, true)
  }
  const tx = await pool.begin()
  await tx.query('insert into sp_t values (100)')
  await tx[Symbol.asyncDispose]()
  assert.equal(tx.finished, true)
  assert.deepEqual(await pool.query('select * from sp_t where id = 100'), [])
  const ok = await pool.begin()
  await ok.query('insert into sp_t values (101)')
  await ok.commit()
  await ok[Symbol.asyncDispose]() // nothing to do after commit
  assert.equal((await pool.query('select * from sp_t where id = 101')).length, 1)
})

test('stream: every row in order, in batches, with the metadata-free row objects of query', async () => {
  const pool = suite.pool()
  let n = 0
  for await (const row of pool.stream('select g as id, g::text as label from generate_series(1, $1) g', [25_000], { batchSize: 777 })) {
    n++
    assert.equal(row.id, n)
    assert.equal(row.label, String(n))
  }
  assert.equal(n, 25_000)
  assert.equal(pool.status().inUse, 0, 'the connection went back')
  const arrays = []
  for await (const row of pool.stream('select 1 as a, 2 as a', [], { rowMode: 'array' })) arrays.push(row)
  assert.deepEqual(arrays, [[1, 2]])
  const none = []
  for await (const row of pool.stream('select 1 where false')) none.push(row)
  assert.deepEqual(none, [])
})

test('stream: break after 10 rows of 10 million returns at once; the server stops; the connection serves the next query', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const c = await pool.connect()
  const pid = c.processId
  let n = 0
  let t0
  // (generate_series makes all its rows before the first: the clock starts at the break.)
  for await (const row of c.stream('select g from generate_series(1, 10000000) g', [], { batchSize: 1000 })) {
    if (++n === 10) {
      t0 = performance.now()
      break
    }
    assert.ok(row.g <= 10)
  }
  const ms = performance.now() - t0
  assert.ok(ms < 100, `leaving the loop took ${ms.toFixed(1)} ms`)
  const [again] = await c.query('select pg_backend_pid() as pid, 42 as x')
  assert.deepEqual([again.pid, again.x], [pid, 42])
  await c.release()
  const state = await backend(suite.pool(), pid)
  assert.equal(state.state, 'idle', 'no transaction left open')
})

test('stream: an iterator dropped after its first rows, without return(), gives its connection back when collected', async () => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc')
  const pool = suite.pool({ poolSize: 1 })
  let pid
  await (async () => {
    // A first-row helper that never finishes the loop: its generator, and the stream's job
    // one batch ahead of it, are left to the garbage collector.
    const it = pool.stream('select g, pg_backend_pid() as pid from generate_series(1, 100000) g', [], { batchSize: 100 })[Symbol.asyncIterator]()
    pid = (await it.next()).value.pid
  })()
  for (let i = 0; i < 40 && pool.status().inUse > 0; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal(pool.status().inUse, 0, 'the connection was given back')
  assert.deepEqual(await pool.query('select 1 as x'), [{ x: 1 }])
  const state = await backend(suite.pool(), pid)
  assert.ok(!state || state.state === 'idle', `no transaction left open: ${JSON.stringify(state)}`)
})

test('stream: a throw in the loop body and an error from the server both end it and leave the connection usable', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await assert.rejects(async () => {
    for await (const row of pool.stream('select g from generate_series(1, 100000) g')) {
      if (row.g === 5) throw new Error('consumer failed')
    }
  }, /consumer failed/)
  await assert.rejects(async () => {
    // 1/0 fails once the series reaches 0, in a later batch.
    for await (const row of pool.stream('select 1 / (2000 - g) as x from generate_series(1, 3000) g', [], { batchSize: 100 })) void row
  }, { code: '22012' })
  await assert.rejects(async () => { for await (const r of pool.stream('select nope')) void r }, { code: '42703' })
  assert.deepEqual(await pool.query('select 1 as ok'), [{ ok: 1 }])
  assert.equal(pool.status().inUse, 0)
})

test('stream: left early, a stream that wrote reports its own COMMIT failing', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('drop table if exists stream_deferred')
  await pool.query('create table stream_deferred (k int, unique (k) deferrable initially deferred)')
  // The duplicate is found at COMMIT, which the stream's own transaction runs when the loop
  // is left: the loop must not end as if the rows were written.
  // Far from the end (5000 rows), and near it (150: the job has fetched the last batch, and
  // run the COMMIT with it, before the loop is left).
  for (const n of [5000, 150]) {
    const sql = `insert into stream_deferred select g % 100 from generate_series(1, ${n}) g returning k`
    await assert.rejects(async () => {
      for await (const row of pool.stream(sql, [], { batchSize: 100 })) {
        void row
        await new Promise((r) => setTimeout(r, 50)) // the job reads ahead meanwhile
        break
      }
    }, { code: '23505' }, `${n} rows`)
    assert.deepEqual(await pool.query('select count(*)::int as n from stream_deferred'), [{ n: 0 }])
    assert.equal(pool.status().inUse, 0)
  }
})

test('stream: an AbortSignal stops it with an AbortError', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const ac = new AbortController()
  let n = 0
  await assert.rejects(async () => {
    for await (const row of pool.stream('select g from generate_series(1, 10000000) g', [], { signal: ac.signal, batchSize: 500 })) {
      void row
      if (++n === 750) ac.abort() // mid-batch: the rest of the batch is not handed out
      await new Promise((r) => setImmediate(r))
    }
  }, { name: 'AbortError', code: 'ABORT_ERR' })
  assert.equal(n, 750, 'no row after the abort')
  assert.deepEqual(await pool.query('select 2 as ok'), [{ ok: 2 }])
})

test('stream in a transaction sees its uncommitted writes and leaves the transaction open', async () => {
  const pool = suite.pool()
  await pool.query('delete from sp_t')
  await pool.transaction(async (tx) => {
    await tx.query('insert into sp_t select g from generate_series(1, 50) g')
    let n = 0
    for await (const row of tx.stream('select id from sp_t order by id', [], { batchSize: 7 })) assert.equal(row.id, ++n)
    assert.equal(n, 50)
    await tx.query('insert into sp_t values (51)')
  })
  assert.equal((await pool.query('select count(*)::int as n from sp_t'))[0].n, 51)
})

// Measured in a process of its own: inside a node:test test, the runner's bookkeeping of
// each awaited promise makes the V8 heap itself grow by some 40 MB over 10 million
// iterations of any async loop (seen with a loop of plain awaits too), which is not ours.
test('stream: 10 million rows with flat memory (peak RSS growth under 50 MB)', async () => {
  const script = `
    const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
    ;(async () => {
      const pool = createPool(JSON.parse(process.argv[1]))
      await pool.query('select 1')
      const base = process.memoryUsage().rss
      let peak = base, n = 0, sum = 0
      for await (const row of pool.stream("select g, 'row ' || g as label from generate_series(1, 10000000) g", [], { batchSize: 2000 })) {
        n++
        sum += row.g
        if ((n & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss)
      }
      peak = Math.max(peak, process.memoryUsage().rss)
      await pool.end()
      console.log(JSON.stringify({ n, sum, growth: (peak - base) / 2 ** 20 }))
    })().catch((e) => { console.error(e); process.exit(1) })`
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script, JSON.stringify({ ...suite.conn, poolSize: 1 })], { timeout: 300_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))
  })
  const { n, sum, growth } = JSON.parse(out)
  assert.equal(n, 10_000_000)
  assert.equal(sum, 50000005000000)
  assert.ok(growth < 50, `peak RSS grew by ${growth.toFixed(1)} MB`)
})

test('copyFrom 1M rows from a generator, then copyTo: byte-identical', async () => {
  const pool = suite.pool()
  await pool.query('truncate copy_t')
  const line = (i) => `${i}\tlabel ${i}\t${(i % 100000) / 100}\n`
  function* rows() {
    for (let i = 1; i <= 1_000_000; i++) yield line(i)
  }
  const count = await pool.copyFrom('copy copy_t (id, label, amount) from stdin', rows())
  assert.equal(count, 1_000_000)
  const parts = []
  for await (const b of pool.copyTo('copy (select id, label, amount from copy_t order by id) to stdout')) parts.push(b)
  const got = Buffer.concat(parts)
  const want = Buffer.from(Array.from({ length: 1_000_000 }, (_, i) => line(i + 1).replace(/\t(\d+)\.?(\d*)\n$/, (m, a, b) => `\t${a}.${(b + '00').slice(0, 2)}\n`)).join(''))
  assert.equal(got.length, want.length)
  assert.ok(got.equals(want), 'COPY TO gives back the bytes COPY FROM took')
  assert.equal(pool.status().inUse, 0)
})

test('copyFrom: a source the COPY never reads (a missing table, no connection) is closed, not left open', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const file = path.join(os.tmpdir(), `copy-src-${process.pid}.tsv`)
  fs.writeFileSync(file, '1\ta\n')
  try {
    // Refused by the server before any data is read.
    const r = fs.createReadStream(file)
    await assert.rejects(pool.copyFrom('copy no_such_table from stdin', r), { code: '42P01' })
    assert.equal(r.destroyed, true, 'the Readable (and its file descriptor) was closed')
    // No connection for it: the pool is ended.
    let started = false
    async function* gen() {
      started = true
      yield '1\ta\n'
    }
    const g = gen()
    const ended = suite.pool({ poolSize: 1 })
    await ended.end()
    await assert.rejects(ended.copyFrom('copy copy_t from stdin', g), { code: 'POOL_CLOSED' })
    assert.deepEqual(await g.next(), { value: undefined, done: true }, 'the generator was returned')
    assert.equal(started, false)
    // A Buffer holds nothing open, and the connection goes on.
    await assert.rejects(pool.copyFrom('copy no_such_table from stdin', Buffer.from('1\n')), { code: '42P01' })
    assert.deepEqual(await pool.query('select 1 as x'), [{ x: 1 }])
  } finally {
    fs.rmSync(file, { force: true })
  }
})

test('copyFrom: a Buffer, a Readable, CSV; a source that throws midway copies nothing and the connection goes on', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('truncate copy_t')
  assert.equal(await pool.copyFrom('copy copy_t (id, label) from stdin', Buffer.from('1\ta\n2\tb\n')), 2)
  assert.equal(await pool.copyFrom('copy copy_t (id, label) from stdin (format csv)', Readable.from(['3,"c, with comma"\n', '4,d\n'])), 2)
  assert.deepEqual((await pool.query('select label from copy_t where id = 3'))[0], { label: 'c, with comma' })
  async function* failing() {
    yield '10\tx\n'
    yield '11\ty\n'
    throw new Error('source broke')
  }
  const c = await pool.connect()
  await assert.rejects(c.copyFrom('copy copy_t (id, label) from stdin', failing()), /source broke/)
  assert.deepEqual(await c.query('select count(*)::int as n from copy_t'), [{ n: 4 }], 'nothing of the failed COPY')
  // A server-side error midway (a duplicate key) rejects with the server's error.
  await assert.rejects(c.copyFrom('copy copy_t (id, label) from stdin', ['20\tok\n', '1\tdup\n']), { code: '23505' })
  assert.deepEqual(await c.query('select 1 as usable'), [{ usable: 1 }])
  // Not a COPY FROM STDIN.
  await assert.rejects(c.copyFrom('select 1', Buffer.from('')), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(c.copyFrom('copy copy_t from stdin', 42), { code: 'INVALID_ARGUMENT' })
  await c.release()
})

test('copyTo: binary format passes through; leaving early cancels it and the connection is usable', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const parts = []
  for await (const b of pool.copyTo('copy (select 1::int4 as x) to stdout (format binary)')) parts.push(b)
  const bin = Buffer.concat(parts)
  assert.equal(bin.subarray(0, 11).toString('latin1'), 'PGCOPY\n\xff\r\n\0')
  const c = await pool.connect()
  let got = 0
  const t0 = performance.now()
  for await (const b of c.copyTo('copy (select g, repeat(\'x\', 100) from generate_series(1, 5000000) g) to stdout')) {
    got += b.length
    if (got > 1e6) break
  }
  assert.ok(performance.now() - t0 < 5000)
  assert.deepEqual(await c.query('select 7 as after'), [{ after: 7 }])
  await c.release()
  await assert.rejects(async () => { for await (const b of pool.copyTo('copy nope to stdout')) void b }, { code: '42P01' })
})

test('script: several statements, one result each with command and rowCount; an error midway stops it', async () => {
  const pool = suite.pool()
  const results = await pool.script(`
    create temp table s_t (id int);
    insert into s_t values (1), (2), (3);
    update s_t set id = id + 10 where id > 1;
    select id from s_t order by id;
  `)
  assert.deepEqual(results.map((r) => [r.command, r.rowCount]), [['CREATE', null], ['INSERT', 3], ['UPDATE', 2], ['SELECT', 3]])
  assert.deepEqual(results[3], [{ id: 1 }, { id: 12 }, { id: 13 }])
  await pool.query('delete from sp_t')
  await assert.rejects(pool.script('insert into sp_t values (1); select 1/0; insert into sp_t values (2)'), { code: '22012' })
  assert.deepEqual(await pool.query('select * from sp_t'), [], 'a script is one implicit transaction')
})

test('savepoint: a throw rolls back to it and the outer transaction goes on; nested savepoints', async () => {
  const pool = suite.pool()
  await pool.query('delete from sp_t')
  await pool.transaction(async (tx) => {
    await tx.query('insert into sp_t values (1)')
    await assert.rejects(tx.savepoint(async (sp) => {
      await sp.query('insert into sp_t values (2)')
      throw new Error('undo 2')
    }), /undo 2/)
    const r = await tx.savepoint(async (sp) => {
      await sp.query('insert into sp_t values (3)')
      await sp.savepoint(async (inner) => {
        await inner.query('insert into sp_t values (4)')
      })
      await assert.rejects(sp.savepoint(async (inner) => {
        await inner.query('insert into sp_t values (1)') // duplicate key: the inner one fails
      }), { code: '23505' })
      return 'kept'
    })
    assert.equal(r, 'kept')
  })
  assert.deepEqual((await pool.query('select id from sp_t order by id')).map((x) => x.id), [1, 3, 4])
})

test('prepare: false runs statements unnamed (nothing prepared on the server) with the same results', async () => {
  const pool = suite.pool({ poolSize: 1, prepare: false })
  const sql = "select $1::int8 as a, $2::text as b, $3::numeric as c, $4::timestamptz as d, $5::bytea as e, $6::jsonb as f, $7::int4[] as g, $8::bool as h"
  const params = [2n ** 60n, 'text', '12.50', new Date('2024-01-02T03:04:05Z'), Buffer.from([1, 2]), { k: [1, null] }, [1, 2], true]
  const named = suite.pool({ poolSize: 1 })
  const a = await pool.query(sql, params)
  const b = await named.query(sql, params)
  assert.deepEqual(a, b)
  const c = await pool.connect()
  for (let i = 0; i < 20; i++) await c.query(`select ${i} as n, $1::int as p`, [i])
  const rows = []
  for await (const r of c.stream('select g from generate_series(1, 10) g', [], { batchSize: 3 })) rows.push(r.g)
  assert.deepEqual(rows, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  assert.deepEqual(await c.query('select count(*)::int as n from pg_prepared_statements'), [{ n: 0 }])
  await c.release()
  // Per statement: a pool that prepares can run one unnamed.
  const d = await named.connect()
  const before = (await d.query('select count(*)::int as n from pg_prepared_statements'))[0].n
  await d.query('select $1::int + 1 as y', [1], { prepare: false })
  assert.equal((await d.query('select count(*)::int as n from pg_prepared_statements'))[0].n, before, 'the unnamed one left nothing')
  await d.release()
  await assert.rejects(pool.query('select 1', [], { prepare: 'no' }), { code: 'INVALID_ARGUMENT' })
})

test('prepare: false describes again after a schema change of the same text', async () => {
  const pool = suite.pool({ poolSize: 1, prepare: false })
  await pool.query('drop table if exists chg_t')
  await pool.query('create table chg_t (v int4)')
  await pool.query('insert into chg_t values (1)')
  assert.deepEqual(await pool.query('select v from chg_t'), [{ v: 1 }])
  await pool.query('alter table chg_t alter column v type text')
  let r
  try {
    r = await pool.query('select v from chg_t')
  } catch {
    r = await pool.query('select v from chg_t')
  }
  assert.deepEqual(r, [{ v: '1' }])
  assert.deepEqual(await pool.query('select v from chg_t'), [{ v: '1' }])
})

test('types.int8: bigint by default; number (refusing what it cannot hold exactly) or string on request', async () => {
  const sql = 'select count(*) as n, $1::int8 as big, $2::int8[] as arr from generate_series(1, 3)'
  const params = [2n ** 60n, [1n, -5n]]
  const asBigint = suite.pool()
  assert.deepEqual(await asBigint.query(sql, params), [{ n: 3n, big: 2n ** 60n, arr: [1n, -5n] }])
  const asString = suite.pool({ types: { int8: 'string' } })
  assert.deepEqual(await asString.query(sql, params), [{ n: '3', big: '1152921504606846976', arr: ['1', '-5'] }])
  const asNumber = suite.pool({ types: { int8: 'number' } })
  const [row] = await asNumber.query('select count(*) as n, $1::int8 as edge, null::int8 as none from generate_series(1, 3)', [2 ** 53 - 1])
  assert.deepEqual(row, { n: 3, edge: 2 ** 53 - 1, none: null })
  assert.equal(JSON.stringify(row), `{"n":3,"edge":${2 ** 53 - 1},"none":null}`)
  await assert.rejects(asNumber.query('select $1::int8 as x', [2n ** 53n]), { code: 'DECODE_ERROR', message: /does not fit a JS number exactly/ })
  // Large results (decoded in columns) and text results (a script) too.
  const many = await asNumber.query('select g::int8 as g from generate_series(1, 5000) g')
  assert.equal(many[4999].g, 5000)
  const [script] = await asString.script('select 9007199254740993::int8 as x')
  assert.deepEqual(script, [{ x: '9007199254740993' }])
  await assert.rejects(asNumber.script('select 9007199254740993::int8 as x'), { code: 'DECODE_ERROR' })
  assert.throws(() => suite.pool({ types: { int8: 'float' } }), { code: 'INVALID_CONFIG' })
  assert.throws(() => suite.pool({ types: { date: 'string' } }), { code: 'INVALID_CONFIG' })
})

test('onNotice sees the notices of a statement that then fails, and of a script', async () => {
  const seen = []
  const pool = suite.pool({ onNotice: (n) => seen.push([n.severity, n.message]) })
  await assert.rejects(pool.query("do $$ begin raise notice 'before the error'; raise exception 'boom'; end $$"), { message: 'boom' })
  assert.deepEqual(seen, [['NOTICE', 'before the error']])
  seen.length = 0
  await pool.script("do $$ begin raise notice 'one'; end $$; do $$ begin raise warning 'two'; end $$")
  assert.deepEqual(seen, [['NOTICE', 'one'], ['WARNING', 'two']])
  seen.length = 0
  const tx = await pool.begin()
  await assert.rejects(tx.query("do $$ begin raise notice 'in tx'; perform 1/0; end $$"), { code: '22012' })
  await tx.rollback()
  assert.deepEqual(seen, [['NOTICE', 'in tx']])
})

test('await using (Node 24 syntax): a transaction rolls back, a checkout is released, a pool is ended at the block end', async () => {
  const node24 = require('../scripts/node-bin.js').nodeBinary('x64-24')
  const script = `
    const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
    ;(async () => {
      const opts = JSON.parse(process.argv[1])
      const out = {}
      {
        await using pool = createPool(opts)
        await pool.query('delete from sp_t where id in (200, 201)')
        {
          await using tx = await pool.begin()
          await tx.query('insert into sp_t values (200)')
        }
        {
          await using tx = await pool.begin()
          await tx.query('insert into sp_t values (201)')
          await tx.commit()
        }
        {
          await using c = await pool.connect()
          out.inUseInside = pool.status().inUse
        }
        out.inUseAfter = pool.status().inUse
        out.rows = (await pool.query('select id from sp_t where id in (200, 201) order by id')).map((r) => r.id)
        globalThis.kept = pool
      }
      await globalThis.kept.query('select 1').catch((e) => { out.afterEnd = e.code })
      console.log(JSON.stringify(out))
    })().catch((e) => { console.error(e); process.exit(1) })`
  const out = await new Promise((resolve, reject) => {
    execFile(node24, ['-e', script, JSON.stringify({ ...suite.conn, poolSize: 2 })], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))
  })
  assert.deepEqual(JSON.parse(out), { inUseInside: 1, inUseAfter: 0, rows: [201], afterEnd: 'POOL_CLOSED' })
})

test('COPY in a transaction: copyFrom rolled back with it, copyTo sees the uncommitted rows', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('truncate copy_t')
  const tx = await pool.begin()
  assert.equal(await tx.copyFrom('copy copy_t (id, label) from stdin', ['1\ta\n', '2\tb\n']), 2)
  const parts = []
  for await (const b of tx.copyTo('copy (select id, label from copy_t order by id) to stdout')) parts.push(b)
  assert.equal(Buffer.concat(parts).toString(), '1\ta\n2\tb\n')
  await tx.rollback()
  assert.deepEqual(await pool.query('select count(*)::int as n from copy_t'), [{ n: 0 }])
})
