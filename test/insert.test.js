'use strict'
// pool.insert(table, row, { idempotency, conflictTarget }) against the real cluster: the
// statement it builds, quoting, defaults, what a duplicate does with and without
// idempotency, and an idempotent insert retried through a connection that died while the
// insert was in flight (in doubt), which a plain insert reports instead.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const suite = useCluster({
  async setup(s) {
    const p = s.pool()
    await p.query('drop table if exists orders, "Mixed ""Case""", pairs')
    await p.query(`create table orders (_id text primary key, amount numeric(12,2) not null,
      note text not null default 'none', at timestamptz)`)
    await p.query('create table "Mixed ""Case""" (id int8 primary key, "Label Text" text, "we""ird" bool)')
    await p.query('create table pairs (a int not null, b text not null, n int not null default 0, unique (a, b))')
  },
})
const pool = suite.pool

test('insert returns the inserted row; undefined keys take the column default', async () => {
  const p = pool()
  const rows = await p.insert('orders', { _id: 'o-1', amount: 100, note: undefined, at: new Date(Date.UTC(2026, 5, 5)) })
  assert.deepEqual(rows, [{ _id: 'o-1', amount: '100.00', note: 'none', at: '2026-06-05T00:00:00.000000Z' }])
  // 'schema.name' and name parts both work.
  assert.equal((await p.insert('public.orders', { _id: 'o-2', amount: '7.5' }))[0].amount, '7.50')
  assert.equal((await p.insert(['public', 'orders'], { _id: 'o-3', amount: 1n }))[0]._id, 'o-3')
})

test('identifiers are quoted: mixed case, spaces and quotes in table and column names', async () => {
  const p = pool()
  const rows = await p.insert('Mixed "Case"', { id: 9007199254740993n, 'Label Text': 'é', 'we"ird': true })
  assert.deepEqual(rows, [{ id: 9007199254740993n, 'Label Text': 'é', 'we"ird': true }])
  // A name built to break out of its quotes is just a column that does not exist.
  const before = (await p.query('select count(*)::int as n from orders'))[0].n
  await assert.rejects(p.insert('orders', { '_id") values (1); drop table orders; --': 1 }), { code: '42703' })
  // The table is still there (a dropped one would make this 42P01) and nothing was inserted.
  assert.equal((await p.query('select count(*)::int as n from orders'))[0].n >= 0, true)
  assert.equal((await p.query('select count(*)::int as n from orders'))[0].n, before)
})

test('a duplicate: 23505 without idempotency, [] with it, and the row exists exactly once', async () => {
  const p = pool()
  const row = { _id: 'evt-2026-06-05-abc123', amount: 100 }
  const [order] = await p.insert('orders', row, { idempotency: true })
  assert.equal(order._id, row._id)
  assert.deepEqual(await p.insert('orders', row, { idempotency: true }), [])
  assert.deepEqual(await p.insert('orders', { ...row, amount: 999 }, { idempotency: true }), [], 'the first row stays')
  await assert.rejects(p.insert('orders', row), { code: '23505' })
  assert.deepEqual(await p.query('select amount from orders where _id = $1', [row._id]), [{ amount: '100.00' }])
})

test('conflictTarget: another unique column or a composite key', async () => {
  const p = pool()
  assert.equal((await p.insert('pairs', { a: 1, b: 'x' }, { idempotency: true, conflictTarget: ['a', 'b'] })).length, 1)
  assert.deepEqual(await p.insert('pairs', { a: 1, b: 'x', n: 5 }, { idempotency: true, conflictTarget: ['a', 'b'] }), [])
  assert.equal((await p.insert('pairs', { a: 1, b: 'y' }, { idempotency: true, conflictTarget: ['a', 'b'] })).length, 1)
  // No unique constraint on the target: the server says so.
  await assert.rejects(p.insert('pairs', { a: 2, b: 'z' }, { idempotency: true, conflictTarget: 'n' }), { code: '42P10' })
  // The default target is _id, which pairs does not have.
  await assert.rejects(p.insert('pairs', { a: 3, b: 'z' }, { idempotency: true }), { code: '42703' })
})

test('bad arguments are INVALID_ARGUMENT, before anything is sent', async () => {
  const p = pool()
  const cases = [
    [42, { a: 1 }],
    ['', { a: 1 }],
    ['a..b', { a: 1 }],
    [[], { a: 1 }],
    ['orders', null],
    ['orders', [1, 2]],
    ['orders', { '': 1 }],
    ['orders', { 'a\u0000b': 1 }],
    ['orders', { _id: 'x' }, { conflictTarget: '_id' }],
    ['orders', { _id: 'x' }, { idempotency: true, conflictTarget: [] }],
    ['orders', { _id: 'x' }, { idempotency: true, conflictTarget: 7 }],
    ['orders', { _id: 'x', amount: 1 }, { timeoutMs: -5 }],
  ]
  for (const [table, row, options] of cases) {
    await assert.rejects(p.insert(table, row, options), { code: 'INVALID_ARGUMENT' }, JSON.stringify([table, row, options]))
  }
})

// The insert is blocked on a row lock (another session inserted the same key and has not
// committed), and its connection dies while it waits: the insert may or may not happen
// later as far as the client can know. Returns what `insert` settled with.
async function insertThroughAKilledConnection(p, key, options) {
  const admin = await suite.cluster.admin(suite.cluster.primaryIndex())
  // pg_stat_activity holds still inside a transaction: look from another session.
  const watcher = await suite.cluster.admin(suite.cluster.primaryIndex())
  try {
    await admin.query('begin')
    await admin.query(`insert into orders (_id, amount) values ('${key}', 1)`)
    const settled = p.insert('orders', { _id: key, amount: 2 }, options).then((rows) => ({ rows }), (error) => ({ error }))
    const blocked = async () => (await watcher.query(
      `select pid from pg_stat_activity where wait_event_type = 'Lock' and query like 'INSERT INTO "orders"%'`)).rows
    let pids = []
    for (let i = 0; i < 100 && pids.length === 0; i++) {
      pids = await blocked()
      if (pids.length === 0) await sleep(50)
    }
    assert.equal(pids.length, 1, 'the insert waits on the uncommitted row')
    await watcher.query(`select pg_terminate_backend(${Number(pids[0].pid)})`)
    // A retry blocks on the same row again; let it get there before committing (a plain
    // insert is not retried: it settles instead).
    let done = false
    settled.then(() => { done = true })
    for (let i = 0; i < 200 && !done; i++) {
      const again = (await blocked()).filter((r) => r.pid !== pids[0].pid)
      if (again.length > 0) break
      await sleep(25)
    }
    await admin.query('commit')
    return await settled
  } finally {
    await admin.end()
    await watcher.end()
  }
}

test('an idempotent insert is retried through a connection lost mid-statement; a plain one reports it', async () => {
  const p = pool({ poolSize: 1 })
  const retried = await insertThroughAKilledConnection(p, 'doubt-idem', { idempotency: true })
  assert.equal(retried.error, undefined, `the idempotent insert settled: ${retried.error && retried.error.message}`)
  assert.deepEqual(retried.rows, [], 'the retry found the row there and did nothing')
  assert.deepEqual(await p.query("select amount from orders where _id = 'doubt-idem'"), [{ amount: '1.00' }])

  const plain = await insertThroughAKilledConnection(p, 'doubt-plain', {})
  assert.ok(plain.error, 'a plain insert is not retried when it may have reached the server')
  // The server ended the session (57P01) with the insert in flight, and it had committed:
  // in doubt, not a definite failure.
  assert.equal(plain.error.code, 'IN_DOUBT', plain.error.message)
  assert.match(plain.error.message, /57P01/)
  assert.deepEqual(await p.query("select amount from orders where _id = 'doubt-plain'"), [{ amount: '1.00' }])
})
