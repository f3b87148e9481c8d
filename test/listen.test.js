'use strict'
// LISTEN/NOTIFY (issue 20): notifications arrive with their channel and sender; stop()
// unlistens; the listening connection is never lent to a query; and listening follows the
// primary across a fence-mode and a stop-mode failover, with one onListenGap per failover
// whose window covers the election.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const suite = useCluster()
// How long the harness's promote() can take after the node became writable (see below).
const PROMOTE_SLACK_MS = 500

async function until(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

// Each pool gets its own application_name, so pg_stat_activity tells its sessions apart.
let pools = 0
function pool(opts = {}) {
  const applicationName = `listen-test-${process.pid}-${++pools}`
  const p = suite.pool({ applicationName, ...opts })
  p.applicationName = applicationName
  return p
}

// The pool's listening session's pid, found from outside: its last statement is a LISTEN,
// an UNLISTEN or the watcher's read-only check, which no pool query sends on PostgreSQL 14+.
async function listenerPid(p) {
  const rows = await p.query(
    'select pid from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid() ' +
      "and (query like 'LISTEN %' or query like 'UNLISTEN %' or query = 'SHOW transaction_read_only')",
    [p.applicationName],
  )
  return rows.map((r) => r.pid)
}

test('notifications arrive with their payload, channel and the sender process id', async () => {
  const p = pool()
  const got = []
  const stop = await p.listen('jobs', (payload, info) => got.push({ payload, ...info }))
  const stopMixed = await p.listen('Mixed "Case"', (payload, info) => got.push({ payload, ...info }))
  let pid
  await p.transaction(async (tx) => {
    pid = (await tx.query('select pg_backend_pid() as pid'))[0].pid
    await tx.query("select pg_notify('jobs', 'from a transaction')")
    await tx.query(`select pg_notify('Mixed "Case"', 'quoted')`)
    await tx.query("select pg_notify('mixed \"case\"', 'another channel')")
  })
  await until('two notifications', () => got.length >= 2)
  await p.notify('jobs', 'through notify')
  await until('the third notification', () => got.length >= 3)
  await sleep(100)
  // In order per listener; two listeners' callbacks may interleave either way.
  const first = got.slice(0, 2).sort((x, y) => x.channel.localeCompare(y.channel))
  assert.deepEqual(first, [
    { payload: 'from a transaction', channel: 'jobs', processId: pid },
    { payload: 'quoted', channel: 'Mixed "Case"', processId: pid },
  ])
  assert.equal(got.length, 3, JSON.stringify(got))
  assert.equal(got[2].payload, 'through notify')
  assert.equal(typeof got[2].processId, 'number')
  await stop()
  await stopMixed()
})

test('stop() unlistens: a later notify does not arrive, other channels still do', async () => {
  const p = pool()
  const a = []
  const b = []
  const stopA = await p.listen('chan_a', (payload) => a.push(payload))
  const stopB = await p.listen('chan_b', (payload) => b.push(payload))
  await p.notify('chan_a', 'a1')
  await until('a1', () => a.length === 1)
  await stopA()
  await stopA() // idempotent
  await p.notify('chan_a', 'a2')
  await p.notify('chan_b', 'b1')
  await until('b1', () => b.length === 1)
  await sleep(200)
  assert.deepEqual(a, ['a1'])
  assert.deepEqual(b, ['b1'])
  // The last channel stopped closes the listening connection.
  assert.equal((await listenerPid(p)).length, 1)
  await stopB()
  await until('the listening connection to close', async () => (await listenerPid(p)).length === 0, 3000)
})

test('the listening connection never serves a pool query', async () => {
  const p = pool({ poolSize: 3 })
  const got = []
  const stop = await p.listen('busy', (payload) => got.push(payload))
  const [pid] = await listenerPid(p)
  assert.equal(typeof pid, 'number')
  const pids = new Set()
  for (let round = 0; round < 5; round++) {
    const rows = await Promise.all(Array.from({ length: 40 }, () => p.query('select pg_backend_pid() as pid')))
    for (const r of rows) pids.add(r[0].pid)
    await p.transaction(async (tx) => pids.add((await tx.query('select pg_backend_pid() as pid'))[0].pid))
  }
  assert.ok(!pids.has(pid), `the listener's ${pid} served a query: ${[...pids]}`)
  assert.ok(!p.connections().some((c) => c.processId === pid))
  await p.notify('busy', 'still listening')
  await until('the notification', () => got.length === 1)
  await stop()
})

test('listening follows the primary across a fence-mode and a stop-mode failover, one gap each', async () => {
  const gaps = []
  const p = pool({ onListenGap: (g) => gaps.push(g), acquireTimeoutMs: 20000 })
  const got = []
  const stop = await p.listen('follow', (payload) => got.push(payload))
  await p.notify('follow', 'before')
  await until('before', () => got.includes('before'))

  for (const [k, mode] of [[1, 'fence'], [2, 'stop']]) {
    const { electedAt } = await suite.cluster.failover({ mode })
    await until(`the gap of the ${mode} failover`, () => gaps.length >= k, 20000)
    const g = gaps[k - 1]
    // The window opens before the failover began. It closes once LISTENs are in place on the
    // new primary, which is possible only once it is writable: the harness takes electedAt
    // after promote() returns, i.e. after a new admin session of its own committed a write
    // there, so the window may close a few ms before electedAt (12 ms seen in stop mode).
    assert.ok(g.from <= electedAt, `${mode}: the gap ${JSON.stringify(g)} opens after the election at ${electedAt}`)
    assert.ok(g.to >= electedAt - PROMOTE_SLACK_MS, `${mode}: the gap ${JSON.stringify(g)} closes before the election at ${electedAt}`)
    await p.notify('follow', `after ${mode}`)
    await until(`the notification after the ${mode} failover`, () => got.includes(`after ${mode}`))
    if (k === 1) await suite.cluster.heal()
    await sleep(1500) // a second gap for the same failover would show by now
    assert.equal(gaps.length, k, `gaps: ${JSON.stringify(gaps)}`)
  }
  await stop()
})
