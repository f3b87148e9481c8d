'use strict'
// Cancellation and timeouts, against the real cluster: `timeoutMs` and an AbortSignal stop a
// running statement on the server (CancelRequest), stop a query still waiting for a
// connection, keep one listener per signal, and give up a connection whose cancel cannot be
// delivered (through a proxy that stops passing new connections: a partitioned node).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const events = require('node:events')
const { useCluster, tcpProxy } = require('./support.js')
const { createPool } = require('../client.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const suite = useCluster()
const pool = suite.pool

// Whether the server is still running a statement whose text starts with `prefix`.
async function running(p, prefix) {
  const rows = await p.query(
    "select count(*)::int as n from pg_stat_activity where state = 'active' and starts_with(query, $1)",
    [prefix]
  )
  return rows[0].n > 0
}

async function eventually(check, what) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return
    await sleep(50)
  }
  assert.fail(`timed out waiting for ${what}`)
}

test('timeoutMs cancels the statement on the server and the connection is reused', async () => {
  const p = pool({ poolSize: 1 })
  const [{ pid }] = await p.query('select pg_backend_pid() as pid')
  const watcher = pool({ poolSize: 1 })
  const started = Date.now()
  const err = await p.query('select pg_sleep(30) /* timeout-1 */', [], { timeoutMs: 500 }).catch((e) => e)
  const elapsed = Date.now() - started
  assert.ok(err instanceof Error, 'the query must fail')
  assert.equal(err.code, 'QUERY_TIMEOUT')
  assert.match(err.message, /timed out after 500ms; the statement was cancelled/)
  assert.equal(err.query, 'select pg_sleep(30) /* timeout-1 */')
  // The API promises a stop after ~timeoutMs; generous bounds.
  assert.ok(elapsed >= 450 && elapsed < 10000, `stopped after ${elapsed}ms`)
  assert.equal(await running(watcher, 'select pg_sleep(30) /* timeout-1 */'), false, 'the server stopped it')
  assert.deepEqual(await p.query('select pg_backend_pid() as pid'), [{ pid }], 'same connection, usable')
  assert.deepEqual(await p.query('select 1 as x', [], { timeoutMs: 5000 }), [{ x: 1 }])
})

test('an AbortSignal cancels the statement: AbortError with the reason as cause', async () => {
  const p = pool({ poolSize: 1 })
  const watcher = pool({ poolSize: 1 })
  const ac = new AbortController()
  const reason = new Error('request went away')
  const q = p.query('select pg_sleep(30) /* abort-1 */', [], { signal: ac.signal }).catch((e) => e)
  await eventually(() => running(watcher, 'select pg_sleep(30) /* abort-1 */'), 'the statement to start')
  ac.abort(reason)
  const err = await q
  assert.equal(err.name, 'AbortError')
  assert.equal(err.code, 'ABORT_ERR')
  assert.equal(err.cause, reason)
  assert.match(err.message, /aborted; the statement was cancelled/)
  assert.equal(await running(watcher, 'select pg_sleep(30) /* abort-1 */'), false)
  // Aborted already: nothing is sent.
  const again = await p.query('select 1', [], { signal: ac.signal }).catch((e) => e)
  assert.equal(again.code, 'ABORT_ERR')
  assert.match(again.message, /before it was sent/)
  assert.deepEqual(await p.query('select 2 as x'), [{ x: 2 }])
})

test('one AbortSignal reused across many queries registers a single listener', async () => {
  const p = pool({ poolSize: 2 })
  const ac = new AbortController()
  for (let round = 0; round < 3; round++) {
    const rows = await Promise.all(
      Array.from({ length: 40 }, (_, i) => p.query('select $1::int as i', [i], { signal: ac.signal }))
    )
    assert.deepEqual(rows.map((r) => r[0].i), Array.from({ length: 40 }, (_, i) => i))
    assert.equal(events.getEventListeners(ac.signal, 'abort').length, 1)
  }
  // Aborting after they all finished stops nothing and breaks nothing.
  ac.abort()
  assert.deepEqual(await p.query('select 3 as x'), [{ x: 3 }])
})

// status().waiting drops to 0 soon (the line is left on the runtime's threads, just after
// the stopped call returns); 2 s is a generous bound for "soon", far below acquireTimeoutMs.
async function waitedZero(p) {
  const until = Date.now() + 2000
  while (p.status().waiting !== 0 && Date.now() < until) await sleep(10)
  assert.equal(p.status().waiting, 0, 'a stopped query still counts as waiting')
}

test('a stop while waiting for a connection sends nothing and leaves the pool whole', async () => {
  const p = pool({ poolSize: 1, acquireTimeoutMs: 10000 })
  const tx = await p.begin()
  const started = Date.now()
  const err = await p.query('select 1', [], { timeoutMs: 300 }).catch((e) => e)
  assert.equal(err.code, 'QUERY_TIMEOUT')
  assert.match(err.message, /while waiting for a connection/)
  assert.ok(Date.now() - started < 5000, 'well before acquireTimeoutMs')
  // A stopped query leaves the line: nobody waits for it (status().waiting), though the
  // transaction still holds the only connection.
  await waitedZero(p)
  const ac = new AbortController()
  const q = p.query('select 1', [], { signal: ac.signal }).catch((e) => e)
  await eventually(() => p.status().waiting === 1, 'the query to wait')
  ac.abort()
  assert.equal((await q).name, 'AbortError')
  await waitedZero(p)
  await tx.commit()
  assert.equal(p.status().waiting, 0)
  assert.deepEqual(await p.query('select 4 as x', [], { timeoutMs: 5000 }), [{ x: 4 }])
  assert.equal(p.status().size, 1)
})

test('a query that can be stopped has its connection to itself: its cancel hits no one else', async () => {
  const p = pool({ poolSize: 1 })
  // Another caller's statement is running on the only connection. Riding in its pipeline,
  // the stoppable query's CancelRequest would cancel that statement instead; it waits for
  // the connection, and its timeout passes while it waits.
  const watcher = pool({ poolSize: 1 })
  const other = p.query('select pg_sleep(1) as slept /* other-1 */')
  await eventually(() => running(watcher, 'select pg_sleep(1) as slept /* other-1 */'), 'the statement to start')
  const err = await p.query('select 1', [], { timeoutMs: 300 }).catch((e) => e)
  assert.equal(err.code, 'QUERY_TIMEOUT')
  assert.match(err.message, /while waiting for a connection/)
  assert.deepEqual(await other, [{ slept: '' }])
  // And statements issued while a stoppable one runs wait for it rather than pipeline
  // behind it: through a proxy that sees every message the client sends, no other Execute
  // goes out while it runs.
  const primary = suite.cluster.node(suite.cluster.primaryIndex())
  const proxy = await tcpProxy(primary.host || '127.0.0.1', primary.port)
  const q = createPool({ ...suite.conn, hosts: [`127.0.0.1:${proxy.port}`], poolSize: 1 })
  try {
    await q.query('select 1')
    let executes = 0
    proxy.cutOn((frame) => { if (frame[0] === 0x45) executes++; return false }) // observe, never cut
    const long = q.query('select pg_sleep(30) /* stoppable-1 */', [], { timeoutMs: 1500 }).catch((e) => e)
    await eventually(() => running(watcher, 'select pg_sleep(30) /* stoppable-1 */'), 'the stoppable statement to start')
    const others = Promise.all(
      Array.from({ length: 20 }, (_, i) => q.query('select $1::int as i, pg_sleep(0.01)', [i]))
    )
    await eventually(() => q.status().waiting === 20, 'the others to wait')
    // Had they been pipelined, their Executes would be on the wire within milliseconds.
    await sleep(200)
    assert.equal(executes, 1, 'only the stoppable statement was sent while it ran')
    assert.equal((await long).code, 'QUERY_TIMEOUT')
    assert.deepEqual((await others).map((r) => r[0].i), Array.from({ length: 20 }, (_, i) => i))
    assert.ok(executes >= 21, `${executes} Executes in all`)
  } finally {
    await q.end()
    await proxy.close()
  }
})

test('timeoutMs inside a transaction cancels the statement, which aborts the transaction', async () => {
  const p = pool({ poolSize: 1 })
  const tx = await p.begin()
  const err = await tx.query('select pg_sleep(30)', [], { timeoutMs: 300 }).catch((e) => e)
  assert.equal(err.code, 'QUERY_TIMEOUT')
  await assert.rejects(tx.query('select 1'), { code: '25P02' })
  await tx.rollback()
  assert.deepEqual(await p.query('select 5 as x'), [{ x: 5 }])
})

test('a transaction whose first statement is abandoned with its connection is aborted: nothing commits without it', { timeout: 30000 }, async () => {
  // The first statement carries the deferred BEGIN. Stopped, with its cancel undeliverable
  // (new connections through the proxy get nowhere), it is abandoned after the grace and its
  // connection destroyed before any reply said BEGIN ran. A later statement must not begin
  // a new transaction on another connection, or COMMIT would commit it without the first.
  const primary = suite.cluster.node(suite.cluster.primaryIndex())
  const proxy = await tcpProxy(primary.host || '127.0.0.1', primary.port)
  const p = createPool({ ...suite.conn, hosts: [`127.0.0.1:${proxy.port}`], poolSize: 2, acquireTimeoutMs: 5000 })
  const direct = pool({ poolSize: 1 })
  try {
    await direct.query('create table if not exists tx_abandon (k text)')
    await direct.query('truncate tx_abandon')
    // Two connections open before the partition: the second is there for the next statement.
    await Promise.all([p.query('select pg_sleep(0.05)'), p.query('select pg_sleep(0.05)')])
    proxy.partition()
    const tx = await p.begin()
    const err = await tx.query("insert into tx_abandon select 'first' from pg_sleep(3)", [], { timeoutMs: 300 }).catch((e) => e)
    assert.equal(err.code, 'QUERY_TIMEOUT', err.message)
    assert.match(err.message, /so the connection was closed/)
    await assert.rejects(tx.query("insert into tx_abandon values ('second')"), { code: '25P02' })
    await assert.rejects(tx.commit(), { code: '25P02' })
    // Past the first statement's sleep: whatever its backend did, nothing was committed.
    await new Promise((r) => setTimeout(r, 3500))
    assert.deepEqual(await direct.query('select k from tx_abandon'), [])
  } finally {
    await p.end()
    await proxy.close()
  }
})

test('bad timeoutMs or signal is INVALID_ARGUMENT', async () => {
  const p = pool()
  for (const timeoutMs of [0, -1, NaN, Infinity, '100', 2 ** 31]) {
    await assert.rejects(p.query('select 1', [], { timeoutMs }), { code: 'INVALID_ARGUMENT' }, String(timeoutMs))
  }
  await assert.rejects(p.query('select 1', [], { signal: {} }), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(p.query('select 1', [], 'fast'), { code: 'INVALID_ARGUMENT' })
})

test('a cancel that cannot be delivered: the call returns after the ~1s grace and the connection is destroyed', async () => {
  const primary = suite.cluster.node(suite.cluster.primaryIndex())
  const proxy = await tcpProxy(primary.host || '127.0.0.1', primary.port)
  const p = createPool({ ...suite.conn, hosts: [`127.0.0.1:${proxy.port}`], poolSize: 1, acquireTimeoutMs: 3000 })
  const watcher = pool({ poolSize: 1 })
  try {
    const [{ pid }] = await p.query('select pg_backend_pid() as pid')
    proxy.partition()
    const started = Date.now()
    const err = await p.query('select pg_sleep(30) /* hung-cancel */', [], { timeoutMs: 300 }).catch((e) => e)
    const elapsed = Date.now() - started
    assert.equal(err.code, 'QUERY_TIMEOUT')
    assert.match(err.message, /did not confirm the cancel within 1000ms, so the connection was closed/)
    assert.ok(elapsed >= 1200 && elapsed < 10000, `returned after ${elapsed}ms`)
    assert.deepEqual(p.connections(), [], 'the connection was destroyed, not returned to the pool')
    // The statement itself runs on (pg_sleep does not watch its client); end it.
    assert.deepEqual(await watcher.query('select pg_terminate_backend($1) as ok', [pid]), [{ ok: true }])
  } finally {
    await p.end()
    await proxy.close()
  }
})

test('a statement that ends while its cancel is still undelivered: the connection is destroyed all the same', async () => {
  // The statement finishes within the grace period, so its connection is idle again; but
  // the cancel may still arrive and would hit the next statement, so the connection must
  // not go back to the pool.
  const primary = suite.cluster.node(suite.cluster.primaryIndex())
  const proxy = await tcpProxy(primary.host || '127.0.0.1', primary.port)
  const p = createPool({ ...suite.conn, hosts: [`127.0.0.1:${proxy.port}`], poolSize: 1, acquireTimeoutMs: 3000 })
  try {
    await p.query('select 1')
    proxy.partition()
    const err = await p.query('select pg_sleep(0.6)', [], { timeoutMs: 200 }).catch((e) => e)
    assert.equal(err.code, 'QUERY_TIMEOUT')
    assert.match(err.message, /did not confirm the cancel within 1000ms, so the connection was closed/)
    assert.deepEqual(p.connections(), [], 'the connection was destroyed, not returned to the pool')
  } finally {
    await p.end()
    await proxy.close()
  }
})
