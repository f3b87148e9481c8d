'use strict'
// The edges of what stays open on a connection between calls (a stream, a COPY) and of
// waiting for a connection's turn: each case here once hung, leaked a connection, misread
// rows or ran a statement it then reported as failed.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const { useCluster } = require('./support.js')

const suite = useCluster({
  async setup(s) {
    const p = s.pool()
    await p.query('create table if not exists edge_t (id int primary key, label text)')
  },
})

const pending = (p, ms) => Promise.race([p.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('pending'), ms))])

test('copyFrom works on a pool whose pipeline is one deep (the COPY fills it; its data still goes)', async () => {
  const pool = suite.pool({ poolSize: 1, pipelineDepth: 1 })
  await pool.query('truncate edge_t')
  const n = await Promise.race([
    pool.copyFrom('copy edge_t from stdin', '1\ta\n2\tb\n3\tc\n'),
    new Promise((_, reject) => setTimeout(() => reject(new Error('copyFrom did not finish in 10 s')), 10000)),
  ])
  assert.equal(n, 3)
  assert.deepEqual(await pool.query('select count(*)::int as n from edge_t'), [{ n: 3 }])
})

test('copyFrom and copyTo refuse anything but one COPY statement, before it runs', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('truncate edge_t')
  await pool.query("insert into edge_t values (1, 'keep')")
  await assert.rejects(pool.copyFrom("insert into edge_t values (2, 'no')", ''), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(async () => { for await (const b of pool.copyTo('delete from edge_t')) void b }, { code: 'INVALID_ARGUMENT' })
  await assert.rejects(pool.copyFrom('copy edge_t from stdin; delete from edge_t', ''), { code: 'INVALID_ARGUMENT' })
  assert.deepEqual(await pool.query('select id, label from edge_t'), [{ id: 1, label: 'keep' }], 'nothing ran')
  // A COPY the other way round, and a COPY given to query(), say which call to use.
  await assert.rejects(pool.query('copy edge_t from stdin'), (e) => e.code === '0A000' && /copyFrom/.test(e.message))
  await assert.rejects(async () => { for await (const b of pool.copyTo('copy edge_t from stdin')) void b }, (e) => /use copyFrom/.test(e.message))
  assert.deepEqual(await pool.query('select 1 as ok'), [{ ok: 1 }])
})

test('a copyTo iterator dropped unfinished does not keep its connection', async () => {
  // In a child with --expose-gc: take one chunk, drop the iterator, collect it.
  const script = `
    const { createPool } = require(${JSON.stringify(require('node:path').resolve(__dirname, '..'))})
    ;(async () => {
      const pool = createPool({ ...${JSON.stringify(suite.conn)}, poolSize: 1, acquireTimeoutMs: 5000 })
      const c = await pool.connect()
      let it = c.copyTo("copy (select g, repeat('x', 200) from generate_series(1, 3000000) g) to stdout")[Symbol.asyncIterator]()
      await it.next()
      it = null
      for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)) }
      const released = c.release()
      const r = await Promise.race([released.then(() => 'released'), new Promise((r) => setTimeout(() => r('stuck'), 8000))])
      const rows = r === 'released' ? await pool.query('select 1 as ok') : null
      console.log(JSON.stringify({ r, rows, status: pool.status() }))
      await pool.end()
    })().catch((e) => { console.error(e); process.exit(1) })`
  const out = await new Promise((resolve, reject) => execFile(process.execPath, ['--expose-gc', '-e', script], { timeout: 60000 }, (e, stdout, stderr) => (e ? reject(new Error(stderr || e.message)) : resolve(stdout))))
  const got = JSON.parse(out.trim().split('\n').pop())
  assert.equal(got.r, 'released')
  assert.deepEqual(got.rows, [{ ok: 1 }])
  assert.equal(got.status.inUse, 0)
})

test('a call made while a stream is open on the connection fails with CONNECTION_BUSY; release closes an unfinished one', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const tx = await pool.begin()
  await assert.rejects(async () => {
    for await (const row of tx.stream('select g from generate_series(1, 100) g', [], { batchSize: 10 })) {
      void row
      await tx.query('select 1')
    }
  }, { code: 'CONNECTION_BUSY' })
  assert.deepEqual(await tx.query('select 2 as after'), [{ after: 2 }], 'the stream closed with the loop')
  await tx.rollback()
  // An iterator left open (neither read to the end nor returned): release closes it.
  const c = await pool.connect()
  const it = c.stream('select g from generate_series(1, 1000000) g', [], { batchSize: 100 })[Symbol.asyncIterator]()
  await it.next()
  assert.equal(await pending(c.release(), 5000), 'settled')
  assert.deepEqual(await pool.query('select 3 as ok'), [{ ok: 3 }])
  assert.equal(pool.status().inUse, 0)
  // Same for a COPY TO left open, and commit.
  const t2 = await pool.begin()
  const out = t2.copyTo("copy (select g from generate_series(1, 2000000) g) to stdout")[Symbol.asyncIterator]()
  await out.next()
  assert.equal(await pending(t2.commit(), 10000), 'settled')
  assert.equal(pool.status().inUse, 0)
})

test('timeoutMs and signal count from the call, also while the call waits for its connection\'s turn', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const tx = await pool.begin()
  const slow = tx.query('select pg_sleep(1.5)')
  const t0 = performance.now()
  await assert.rejects(tx.query('select 1', [], { timeoutMs: 200 }), { code: 'QUERY_TIMEOUT' })
  assert.ok(performance.now() - t0 < 1200, `the timeout fired after ${Math.round(performance.now() - t0)} ms`)
  const ac = new AbortController()
  const waiting = tx.query('select 1', [], { signal: ac.signal })
  setTimeout(() => ac.abort(), 100)
  await assert.rejects(waiting, { code: 'ABORT_ERR' })
  await slow
  // Neither was sent: the transaction is intact.
  assert.deepEqual(await tx.query('select 4 as ok'), [{ ok: 4 }])
  await tx.rollback()
})

test('stream: the signal cancels a batch the server is still producing; timeoutMs is refused', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 200)
  const t0 = performance.now()
  await assert.rejects(async () => {
    for await (const row of pool.stream('select pg_sleep(3), g from generate_series(1, 2) g', [], { signal: ac.signal })) void row
  }, { code: 'ABORT_ERR' })
  const took = performance.now() - t0
  assert.ok(took < 2000, `the stream ended ${Math.round(took)} ms after it started, the batch takes 3000`)
  assert.deepEqual(await pool.query('select 5 as ok'), [{ ok: 5 }])
  assert.throws(() => pool.stream('select 1', [], { timeoutMs: 100 }), { code: 'INVALID_ARGUMENT' })
})

test('copyTo left early inside a transaction keeps the transaction (the rest is read, not cancelled)', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('truncate edge_t')
  const tx = await pool.begin()
  await tx.query("insert into edge_t values (10, 'in tx')")
  // Far more than the 1 MiB window: the COPY is still running when the loop leaves.
  for await (const b of tx.copyTo("copy (select g, repeat('x', 50) from generate_series(1, 2000000) g) to stdout")) {
    void b
    break
  }
  assert.deepEqual(await tx.query('select label from edge_t where id = 10'), [{ label: 'in tx' }])
  await tx.commit()
  assert.deepEqual(await pool.query('select label from edge_t where id = 10'), [{ label: 'in tx' }])
})

test('prepare: false stream keeps decoding its rows by the portal\'s columns when the cached ones are older', async () => {
  const pool = suite.pool({ poolSize: 1, prepare: false })
  await pool.query('drop table if exists edge_alter')
  await pool.query('create table edge_alter (a int)')
  await pool.query('insert into edge_alter select g from generate_series(1, 30) g')
  // Cache the description with a = int4, then change the type.
  for await (const r of pool.stream('select a from edge_alter order by 1', [], { batchSize: 10 })) void r
  await pool.query('alter table edge_alter alter column a type text using lpad(a::text, 4, \'x\')')
  const got = []
  for await (const r of pool.stream('select a from edge_alter order by 1', [], { batchSize: 10 })) got.push(r.a)
  assert.equal(got.length, 30)
  assert.ok(got.every((v) => typeof v === 'string' && v.length === 4), `rows after the first batch: ${got.slice(10, 13)}`)
})
