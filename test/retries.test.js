'use strict'
// pool.transaction(cb) retries, against the real cluster: a real deadlock (40P01) and a
// backend terminated before COMMIT re-run the whole callback (or surface with maxAttempts: 1),
// isolation applies to each attempt, and errors that are not retryable run the callback once.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const suite = useCluster({
  async setup(s) {
    const p = s.pool()
    await p.query('drop table if exists t_retry_dl, t_retry_conn, t_retry_err')
    await p.query('create table t_retry_dl (id int primary key, n int not null default 0)')
    await p.query('create table t_retry_conn (k text not null, attempt int not null)')
    await p.query('create table t_retry_err (k text primary key)')
  },
})
const pool = suite.pool

// Resolves `all` once `arrive()` has been called n times.
function barrier(n) {
  let arrive
  const all = new Promise((resolve) => {
    let k = 0
    arrive = () => { if (++k === n) resolve() }
  })
  return { arrive, all }
}

// Two transactions that lock rows 1 and 2 in opposite order, each holding its first lock
// before asking for the second: PostgreSQL aborts one of them with 40P01.
async function deadlock(p, options) {
  await p.query('delete from t_retry_dl')
  await p.query('insert into t_retry_dl (id) values (1), (2)')
  const both = barrier(2)
  const attempts = [0, 0]
  const codes = []
  const run = (i, first, second) => p.transaction(async (tx) => {
    attempts[i]++
    try {
      await tx.query('update t_retry_dl set n = n + 1 where id = $1', [first])
      both.arrive()
      await both.all
      await tx.query('update t_retry_dl set n = n + 1 where id = $1', [second])
    } catch (e) {
      codes.push(e.code)
      throw e
    }
    return i
  }, options)
  const settled = await Promise.allSettled([run(0, 1, 2), run(1, 2, 1)])
  const rows = await p.query('select id, n from t_retry_dl order by id')
  return { settled, attempts, codes, rows }
}

test('a real deadlock (40P01) re-runs the losing callback; with maxAttempts: 1 it surfaces', async () => {
  const p = pool({ poolSize: 2, acquireTimeoutMs: 20000 })
  const r = await deadlock(p)
  assert.deepEqual(r.settled.map((s) => s.status), ['fulfilled', 'fulfilled'], String(r.settled.map((s) => s.reason)))
  assert.deepEqual(r.settled.map((s) => s.value), [0, 1])
  assert.deepEqual(r.codes, ['40P01'], 'exactly one statement was chosen as the deadlock victim')
  assert.deepEqual([...r.attempts].sort(), [1, 2], 'the victim ran its callback twice, the other once')
  // Two successful attempts, each adding 1 to both rows; the aborted one left nothing.
  assert.deepEqual(r.rows, [{ id: 1, n: 2 }, { id: 2, n: 2 }])

  const once = await deadlock(p, { maxAttempts: 1 })
  const rejected = once.settled.filter((s) => s.status === 'rejected')
  assert.equal(rejected.length, 1, 'exactly one of the two rejects')
  assert.equal(rejected[0].reason.code, '40P01')
  assert.deepEqual(once.attempts, [1, 1], 'nothing was retried')
  assert.deepEqual(once.rows, [{ id: 1, n: 1 }, { id: 2, n: 1 }], 'only the survivor wrote')
})

test('transaction(cb, { isolation }) runs the callback at that level; default is read committed', async () => {
  const p = pool()
  const level = (options) => p.transaction(async (tx) => {
    const [row] = await tx.query('show transaction_isolation')
    return row.transaction_isolation
  }, options)
  assert.equal(await level({ isolation: 'serializable' }), 'serializable')
  assert.equal(await level({ isolation: 'repeatable-read' }), 'repeatable read')
  assert.equal(await level({ isolation: 'read-committed' }), 'read committed')
  assert.equal(await level(), 'read committed')
  assert.equal(await level({}), 'read committed')
})

test('isolation applies to every attempt of a retried transaction', async () => {
  const p = pool()
  const seen = []
  await p.transaction(async (tx) => {
    seen.push((await tx.query('show transaction_isolation'))[0].transaction_isolation)
    if (seen.length === 1) await tx.query("do $$ begin raise exception 'x' using errcode = '40001'; end $$")
  }, { isolation: 'serializable' })
  assert.deepEqual(seen, ['serializable', 'serializable'])
})

// Inserts (k, attempt), then has the admin session terminate the transaction's backend on
// the first attempt, then runs one more statement.
async function killedOnFirstAttempt(p, k, options) {
  const admin = await suite.cluster.admin(suite.cluster.primaryIndex())
  const pids = []
  const codes = []
  try {
    const settled = await p.transaction(async (tx) => {
      const attempt = pids.length + 1
      await tx.query('insert into t_retry_conn (k, attempt) values ($1, $2)', [k, attempt])
      const [{ pid }] = await tx.query('select pg_backend_pid() as pid')
      pids.push(pid)
      if (attempt === 1) {
        const { rows } = await admin.query(`select pg_terminate_backend(${Number(pid)}) as ok`)
        assert.equal(rows[0].ok, 't')
      }
      try {
        await tx.query('select 1 as one')
      } catch (e) {
        codes.push(e.code)
        throw e
      }
      return attempt
    }, options).then((value) => ({ value }), (error) => ({ error }))
    const rows = await p.query('select attempt from t_retry_conn where k = $1 order by attempt', [k])
    return { ...settled, pids, codes, rows }
  } finally {
    await admin.end()
  }
}

const connectionLost = (code) => ['57P01', 'CONNECTION_CLOSED'].includes(code)

test('a connection terminated before COMMIT re-runs the callback on a new connection', async () => {
  const p = pool({ poolSize: 1, acquireTimeoutMs: 10000 })
  const r = await killedOnFirstAttempt(p, 'retried')
  assert.equal(r.error, undefined, `the transaction settled: ${r.error && r.error.message}`)
  assert.equal(r.value, 2, 'the second attempt committed')
  assert.equal(r.codes.length, 1)
  assert.ok(connectionLost(r.codes[0]), `the first attempt saw a connection error, got ${r.codes[0]}`)
  assert.equal(r.pids.length, 2)
  assert.notEqual(r.pids[1], r.pids[0], 'the retry ran on another backend')
  // The first attempt's insert died with its session.
  assert.deepEqual(r.rows, [{ attempt: 2 }])
  assert.deepEqual(await p.query('select 1 as x'), [{ x: 1 }], 'the pool still works')
})

test('with maxAttempts: 1 a connection terminated before COMMIT rejects, and nothing is written', async () => {
  const p = pool({ poolSize: 1, acquireTimeoutMs: 10000 })
  const r = await killedOnFirstAttempt(p, 'once', { maxAttempts: 1 })
  assert.ok(r.error, 'the transaction rejected')
  assert.ok(connectionLost(r.error.code), `code 57P01 or CONNECTION_CLOSED, got ${r.error.code}: ${r.error.message}`)
  assert.equal(r.pids.length, 1, 'the callback ran once')
  assert.deepEqual(r.rows, [])
})

test('errors that are not retryable run the callback once, reject with that error and roll back', async () => {
  const p = pool()
  await p.query('delete from t_retry_err')
  await p.query("insert into t_retry_err (k) values ('taken')")
  let calls = 0
  await assert.rejects(p.transaction(async (tx) => {
    calls++
    await tx.query("insert into t_retry_err (k) values ('fresh-1')")
    await tx.query("insert into t_retry_err (k) values ('taken')")
  }, { maxAttempts: 5 }), { code: '23505', constraint: 't_retry_err_pkey' })
  assert.equal(calls, 1)

  calls = 0
  const thrown = new Error('x')
  const err = await p.transaction(async (tx) => {
    calls++
    await tx.query("insert into t_retry_err (k) values ('fresh-2')")
    throw thrown
  }, { maxAttempts: 5 }).then(() => null, (e) => e)
  assert.equal(err, thrown, 'the very error the callback threw')
  assert.equal(calls, 1)
  assert.deepEqual(await p.query('select k from t_retry_err order by k'), [{ k: 'taken' }], 'both were rolled back')
})
