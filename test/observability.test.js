'use strict'
// Observability and load, against the real cluster: the logger, statementTimeoutMs,
// status() under 10,000 concurrent callers, and transaction(cb) retrying a real 25006.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const suite = useCluster()
const pool = suite.pool

async function until(check, what) {
  for (let i = 0; i < 500; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.fail(`timed out waiting for ${what}`)
}

test('the logger gets { sql, durationMs, rowCount } or { sql, durationMs, error } once per query', async () => {
  const events = []
  const p = pool({ logger: (e) => events.push(e) })
  await p.query('select generate_series(1, $1::int) as n', [3])
  await assert.rejects(p.query('select 1/0'), { code: '22012' })
  assert.equal(events.length, 2)
  assert.equal(events[0].sql, 'select generate_series(1, $1::int) as n')
  assert.equal(events[0].rowCount, 3)
  assert.equal(typeof events[0].durationMs, 'number')
  assert.ok(events[0].durationMs >= 0)
  assert.equal(events[0].error, undefined)
  assert.equal(events[1].sql, 'select 1/0')
  assert.equal(events[1].error.code, '22012')
  assert.equal(events[1].rowCount, undefined)
})

test('queries in a transaction are logged too', async () => {
  const events = []
  const p = pool({ logger: (e) => events.push(e) })
  await p.transaction((tx) => tx.query('select 1 as v'))
  const tx = await p.begin()
  await tx.query('select 2 as v', [])
  await assert.rejects(tx.query('select 1/0'), { code: '22012' })
  await tx.rollback()
  assert.deepEqual(events.map((e) => [e.sql, e.rowCount, e.error && e.error.code, typeof e.durationMs]), [
    ['select 1 as v', 1, undefined, 'number'],
    ['select 2 as v', 1, undefined, 'number'],
    ['select 1/0', undefined, '22012', 'number'],
  ])
})

test('an error thrown by the logger is ignored, and so is a rejection of an async one', async () => {
  const p = pool({ logger: () => { throw new Error('logger bug') } })
  assert.deepEqual(await p.query('select 1 as v'), [{ v: 1 }])
  await assert.rejects(p.query('select 1/0'), { code: '22012' })

  const unhandled = []
  const onUnhandled = (reason) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  try {
    const a = pool({ logger: async () => { throw new Error('async logger bug') } })
    assert.deepEqual(await a.query('select 1 as v'), [{ v: 1 }])
    await assert.rejects(a.query('select 1/0'), { code: '22012' })
    await a.transaction((tx) => tx.query('select 1 as v'))
    await new Promise((resolve) => setTimeout(resolve, 50))
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
  assert.deepEqual(unhandled, [])
})

test('statementTimeoutMs makes the server cancel long statements with 57014', async () => {
  const p = pool({ statementTimeoutMs: 200 })
  assert.deepEqual(await p.query('show statement_timeout'), [{ statement_timeout: '200ms' }])
  await assert.rejects(p.query('select pg_sleep(3)'), { code: '57014' })
  assert.deepEqual(await p.query('select 1 as v'), [{ v: 1 }], 'the connection is still usable')
})

test('10,000 concurrent callers on a pool of 4: all answered, status() consistent throughout', async () => {
  const p = pool({ poolSize: 4, acquireTimeoutMs: 60000 })
  const snapshots = []
  const timer = setInterval(() => snapshots.push(p.status()), 2)
  const n = 10000
  try {
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 50 === 0
          ? p.transaction(async (tx) => (await tx.query('select $1::int4 as v', [i]))[0].v)
          : p.query('select $1::int4 as v', [i]).then((r) => r[0].v)
      )
    )
    results.forEach((v, i) => assert.equal(v, i))
  } finally {
    clearInterval(timer)
  }
  snapshots.push(p.status())
  assert.ok(snapshots.length > 1)
  for (const s of snapshots) {
    assert.equal(s.maxSize, 4)
    assert.ok(s.size <= 4, JSON.stringify(s))
    assert.equal(s.inUse + s.available, s.size, JSON.stringify(s))
    assert.ok(s.waiting >= 0, JSON.stringify(s))
    // Never more callers waiting than there are callers.
    assert.ok(s.waiting <= n, JSON.stringify(s))
  }
  // The load was seen: every connection busy and callers waiting at some point (a status()
  // that always read idle would pass the checks above).
  assert.ok(snapshots.some((s) => s.size === 4 && s.inUse === 4), 'all 4 connections were in use at some point')
  assert.ok(snapshots.some((s) => s.waiting > 0), 'callers were seen waiting')
  const last = snapshots[snapshots.length - 1]
  assert.deepEqual({ inUse: last.inUse, waiting: last.waiting }, { inUse: 0, waiting: 0 })
  assert.deepEqual(last, { maxSize: 4, size: 4, available: 4, inUse: 0, waiting: 0 })
})

test('status() in known states: exact numbers for idle, checked out, waiting and released', async () => {
  const p = pool({ poolSize: 3, acquireTimeoutMs: 20000 })
  assert.deepEqual(p.status(), { maxSize: 3, size: 0, available: 0, inUse: 0, waiting: 0 }, 'a new pool holds nothing')
  await p.query('select 1')
  assert.deepEqual(p.status(), { maxSize: 3, size: 1, available: 1, inUse: 0, waiting: 0 }, 'one idle connection')
  const txs = [await p.begin(), await p.begin(), await p.begin()]
  assert.deepEqual(p.status(), { maxSize: 3, size: 3, available: 0, inUse: 3, waiting: 0 }, 'all checked out')
  // Nothing can run: queries cannot pipeline into a transaction's session.
  const queued = [p.query('select 1 as v'), p.query('select 2 as v'), p.begin()]
  await until(() => p.status().waiting === 3, 'three callers waiting')
  assert.deepEqual(p.status(), { maxSize: 3, size: 3, available: 0, inUse: 3, waiting: 3 })
  await txs[0].commit()
  await txs[1].rollback()
  const [a, b, tx] = await Promise.all(queued)
  assert.deepEqual([a, b], [[{ v: 1 }], [{ v: 2 }]])
  assert.deepEqual(p.status(), { maxSize: 3, size: 3, available: 1, inUse: 2, waiting: 0 }, 'two transactions open')
  await tx.commit()
  await txs[2].commit()
  assert.deepEqual(p.status(), { maxSize: 3, size: 3, available: 3, inUse: 0, waiting: 0 }, 'all returned')
})

test('transaction(cb) retries a real 25006 inside the transaction', async () => {
  const p = pool()
  await p.query('drop table if exists t_ro')
  await p.query('create table t_ro (x int)')
  let calls = 0
  await p.transaction(async (tx) => {
    calls++
    // The first attempt runs read-only, as a transaction on a freshly fenced node would.
    if (calls === 1) await tx.query('set transaction read only')
    await tx.query('insert into t_ro values (1)')
  })
  assert.equal(calls, 2)
  assert.deepEqual(await p.query('select count(*)::int as n from t_ro'), [{ n: 1 }])
})
