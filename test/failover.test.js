'use strict'
// The pool's view of the hosts and what it does when a connection is lost: status() counts
// queued work, hosts() and onEvent show what the pool saw, a write whose connection is lost
// in flight is IN_DOUBT (a COMMIT too, against the real server), end({ timeoutMs }) always
// returns, and options that could crash the process are refused. The real faults (partition,
// hung host) with a promotion are in chaos.test.js.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster, tcpProxy } = require('./support.js')
const { createPool } = require('../client.js')
const { startProxy } = require('./faultproxy.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const suite = useCluster({
  setup: async (s) => {
    const p = s.pool()
    await p.query('create table if not exists t_doubt (k text primary key)')
  },
})

const hostOf = (i) => `127.0.0.1:${suite.cluster.node(i).port}`

const isQuery = (text) => (f) => f[0] === 0x51 && f.subarray(5).toString().includes(text)
const isExecute = (f) => f[0] === 0x45

test('status().waiting counts a query queued behind a running statement', async () => {
  const p = suite.pool({ poolSize: 1 })
  await p.query('select 1')
  const slow = p.query('select pg_sleep(0.8)')
  // Once the sleep runs (issued in the same turn, the second query's Execute could go first).
  await sleep(100)
  const queued = p.query('select 2 as v')
  await sleep(100)
  const s = p.status()
  assert.equal(s.size, 1)
  assert.equal(s.waiting, 1, `one query has not started: ${JSON.stringify(s)}`)
  await slow
  assert.deepEqual(await queued, [{ v: 2 }])
  assert.equal(p.status().waiting, 0)
})

test('hosts() shows the primary and standbys as seen; onEvent reports a fence', async () => {
  const primary = suite.cluster.primaryIndex()
  const events = []
  const all = suite.cluster.nodes.map((_, i) => hostOf(i))
  const p = suite.pool({ hosts: all, poolSize: 2, acquireTimeoutMs: 3000, onEvent: (e) => events.push(e) })
  await p.query('select 1')
  const view = p.hosts()
  assert.deepEqual(view.map((h) => h.host), all)
  const mine = view[primary]
  assert.equal(mine.state, 'primary')
  assert.ok(mine.confirmedAt > Date.now() - 60000 && mine.confirmedAt <= Date.now(), String(mine.confirmedAt))
  assert.equal(mine.downSince, null)
  // Events reach JS through their own thread-safe function, not the query's: the query can
  // settle first (seen once each on PostgreSQL 16 and 18 in the matrix: events were []).
  for (let i = 0; i < 100 && !events.some((e) => e.type === 'primary-found'); i++) await sleep(10)
  assert.ok(events.some((e) => e.type === 'primary-found' && e.host === hostOf(primary)), JSON.stringify(events))

  // Two idle connections, then a fence: the first statement sees it, and the host's other
  // idle connection goes at once (one fenced write, not one per connection).
  await Promise.all([p.query('select pg_sleep(0.05)'), p.query('select pg_sleep(0.05)')])
  assert.equal(p.status().size, 2)
  await suite.cluster.fence(primary)
  try {
    await assert.rejects(p.query("insert into t_doubt values ('fenced')"), (e) => ['08001', '25006'].includes(e.code))
    assert.equal(p.hosts()[primary].state, 'fenced')
    assert.equal(p.status().size, 0, 'no connection to the fenced host is kept')
    for (let i = 0; i < 100 && !events.some((e) => e.type === 'host-fenced'); i++) await sleep(10)
    assert.ok(events.some((e) => e.type === 'host-fenced' && e.host === hostOf(primary)), JSON.stringify(events))
    assert.ok(events.every((e) => typeof e.at === 'number'))
  } finally {
    await suite.cluster.unfence(primary)
  }
  assert.deepEqual(await p.query('select 3 as v'), [{ v: 3 }], 'the pool finds the unfenced primary again')
  assert.equal(p.hosts()[primary].state, 'primary')
})

test('a write whose connection is lost in flight is IN_DOUBT; a read is not', async () => {
  const proxy = await tcpProxy('127.0.0.1', suite.cluster.node(suite.cluster.primaryIndex()).port)
  try {
    const p = suite.pool({ hosts: [`127.0.0.1:${proxy.port}`], poolSize: 1 })
    await p.query('select 1') // prepared statements travel later as Bind/Execute
    proxy.cutOn(isExecute)
    await assert.rejects(p.query("insert into t_doubt values ('lost')"), (e) => {
      assert.equal(e.code, 'IN_DOUBT', e.message)
      assert.match(e.message, /may or may not have run/)
      return true
    })
    proxy.cutOn(isExecute)
    await assert.rejects(p.query('select 4 as v'), { code: 'CONNECTION_CLOSED' })
    assert.deepEqual(await p.query('select 5 as v'), [{ v: 5 }], 'the pool reconnects')
  } finally {
    await proxy.close()
  }
})

test('a COMMIT whose connection is lost is IN_DOUBT and the callback is not run again', async () => {
  const proxy = await tcpProxy('127.0.0.1', suite.cluster.node(suite.cluster.primaryIndex()).port)
  try {
    const p = suite.pool({ hosts: [`127.0.0.1:${proxy.port}`], poolSize: 1 })
    let calls = 0
    proxy.cutOn(isQuery('COMMIT'))
    await assert.rejects(p.transaction(async (tx) => {
      calls++
      await tx.query("insert into t_doubt values ('commit-cut')")
    }, { maxAttempts: 5 }), { code: 'IN_DOUBT' })
    assert.equal(calls, 1, 'a COMMIT that may have landed is never run twice')
  } finally {
    await proxy.close()
  }
})

test('a COMMIT waiting for synchronous replication whose backend is terminated is IN_DOUBT', async () => {
  const primary = suite.cluster.primaryIndex()
  const p = suite.pool({ poolSize: 1 })
  await p.query("delete from t_doubt where k = 'syncrep'")
  // No standby can acknowledge: every COMMIT waits. Undone below to whatever it was (on an
  // external cluster, its manager's own standby names).
  const undo = await suite.cluster.setSystem(primary, 'synchronous_standby_names', 'nobody')
  const admin = await suite.cluster.admin(primary, { database: suite.cluster.database })
  try {
    let calls = 0
    const settled = p.transaction(async (tx) => {
      calls++
      await tx.query("insert into t_doubt values ('syncrep')")
    }, { maxAttempts: 5 }).then(() => null, (e) => e)
    let pid = null
    for (let i = 0; i < 100 && pid === null; i++) {
      const { rows } = await admin.query("select pid from pg_stat_activity where wait_event = 'SyncRep'")
      if (rows.length) pid = rows[0].pid
      else await sleep(50)
    }
    assert.ok(pid, 'the COMMIT waits for synchronous replication')
    await admin.query(`select pg_terminate_backend(${Number(pid)})`)
    const err = await settled
    assert.ok(err, 'the transaction did not report success')
    assert.equal(err.code, 'IN_DOUBT', err.message)
    assert.equal(calls, 1)
    // It committed locally: exactly the case that must never be retried blindly.
    const { rows } = await admin.query("select count(*)::int as n from t_doubt where k = 'syncrep'")
    assert.equal(Number(rows[0].n), 1)
  } finally {
    await admin.end()
    await undo()
  }
})

test('a read-only pool: a read stuck on a hung standby runs again on the other within its budget', { timeout: 30000 }, async () => {
  const primary = suite.cluster.primaryIndex()
  const standbys = suite.cluster.nodes.map((_, i) => i).filter((i) => i !== primary)
  // Each standby behind a proxy; the one the pool uses turns into a black hole (its kernel
  // alive, its process not: TCP is acknowledged, nothing is answered).
  const proxies = await Promise.all(standbys.map((i) => startProxy({ target: { host: '127.0.0.1', port: suite.cluster.node(i).port } })))
  try {
    const budget = 3000
    const p = suite.pool({ mode: 'read-only', hosts: proxies.map((x) => `127.0.0.1:${x.port}`), poolSize: 1, acquireTimeoutMs: budget })
    const [r] = await p.query('select inet_server_port() as port')
    const k = standbys.findIndex((i) => suite.cluster.node(i).port === r.port)
    assert.ok(k >= 0)
    proxies[k].setMode('blackhole')
    const t = Date.now()
    const [again] = await p.query('select inet_server_port() as port')
    const took = Date.now() - t
    assert.equal(again.port, suite.cluster.node(standbys[1 - k]).port, 'the read ran on the other standby')
    assert.ok(took < budget + 1000, `settled in ${took}ms (budget ${budget}ms)`)
    assert.equal(p.hosts()[k].state, 'unreachable')
    assert.ok(p.hosts()[k].downSince > 0)
  } finally {
    await Promise.all(proxies.map((x) => x.close()))
  }
})

test('end({ timeoutMs }) abandons what is still in flight after the grace', async () => {
  const p = createPool({ ...suite.conn, poolSize: 2 })
  const read = p.query('select pg_sleep(30)').then(() => null, (e) => e)
  const write = p.query("insert into t_doubt select 'end-grace' from pg_sleep(30)").then(() => null, (e) => e)
  await sleep(200)
  const t = Date.now()
  await p.end({ timeoutMs: 300 })
  const took = Date.now() - t
  assert.ok(took >= 250 && took < 5000, `end took ${took}ms`)
  const [r, w] = await Promise.all([read, write])
  assert.equal(r && r.code, 'CONNECTION_CLOSED', String(r))
  assert.equal(w && w.code, 'IN_DOUBT', String(w))
  await assert.rejects(p.query('select 1'), { code: 'POOL_CLOSED' })
  await assert.rejects(p.end({ timeoutMs: -1 }), { code: 'INVALID_ARGUMENT' })
})

test('poolSize has a maximum, and values a server could never take are INVALID_CONFIG at once', async () => {
  for (const poolSize of [4294967295, 10001]) {
    assert.throws(() => createPool({ ...suite.conn, poolSize }), { code: 'INVALID_CONFIG' })
  }
  // The Rust side checks too, for callers of the native class.
  const { NativePool } = require('../index.js')
  assert.throws(() => new NativePool({ names: ['hosts', 'user', 'poolSize'], hosts: ['127.0.0.1'], user: 'u', poolSize: 20000 }), /poolSize must be from 1 to 10000/)
  for (const bad of [{ user: 'a\0b' }, { database: 'd\0' }, { password: '\0' }]) {
    assert.throws(() => createPool({ ...suite.conn, ...bad }), { code: 'INVALID_CONFIG', message: /NUL/ })
  }
})
