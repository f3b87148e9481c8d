'use strict'
// Long-lived pools: the statement cache stays at its cap on the server, idle connections
// close after idleTimeoutMs down to minConnections, and connections are replaced after
// maxLifetimeMs, each observed on the server (pg_prepared_statements, pg_stat_activity).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const suite = useCluster()

async function waitFor(what, fn, ms = 5000) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

test('statementCacheSize: the server holds at most that many statements for the connection', async () => {
  const capped = suite.pool({ poolSize: 1, statementCacheSize: 5 })
  for (let i = 0; i < 40; i++) await capped.query(`select ${i} as v`)
  // The count runs in a transaction, on the pool's only connection; the Close of evicted
  // statements travels in a request of its own just after each eviction.
  const count = async (p) => {
    const tx = await p.begin()
    try {
      return (await tx.query('select count(*)::int as n from pg_prepared_statements'))[0].n
    } finally {
      await tx.rollback()
    }
  }
  const n = await count(capped)
  assert.ok(n <= 5 + 1, `at most the cap (and the counting statement): ${n}`)
  // Without the cap the same statements stay.
  const free = suite.pool({ poolSize: 1 })
  for (let i = 0; i < 40; i++) await free.query(`select ${i} as v`)
  assert.ok((await count(free)) >= 40, 'the default keeps them all')
  // What was evicted is prepared again when it comes back.
  assert.deepEqual(await capped.query('select 0 as v'), [{ v: 0 }])
})

test('10,000 distinct statements on one connection: the server holds at most the default cap (512)', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const t0 = performance.now()
  for (let i = 0; i < 10_000; i++) await pool.query(`select ${i}::int as v`)
  const ms = performance.now() - t0
  const tx = await pool.begin()
  try {
    const [{ n }] = await tx.query('select count(*)::int as n from pg_prepared_statements')
    assert.ok(n <= 512 + 1 && n >= 500, `prepared on the server: ${n}`)
  } finally {
    await tx.rollback()
  }
  if (process.env.HYPERION_REPORT) console.log(`10,000 distinct statements in ${ms.toFixed(0)} ms`)
})

test('idleTimeoutMs closes idle connections down to minConnections; maxLifetimeMs replaces them', async () => {
  const app = `lifecycle-${process.pid}`
  const sessions = async (admin) =>
    (await admin.query(`select pid from pg_stat_activity where application_name = '${app}'`)).rows.map((r) => r.pid)
  const admin = await suite.cluster.admin(suite.cluster.primaryIndex())
  try {
    const p = suite.pool({ applicationName: app, poolSize: 3, idleTimeoutMs: 300, minConnections: 1, maxLifetimeMs: 0 })
    await Promise.all([0, 1, 2].map(() => p.query('select pg_sleep(0.1)')))
    assert.equal((await sessions(admin)).length, 3)
    const t = Date.now()
    await waitFor('idle sessions to close down to one', async () => (await sessions(admin)).length === 1)
    assert.ok(Date.now() - t >= 150, 'not before the idle timeout')
    assert.equal(p.status().size, 1)
    await p.end()

    const q = suite.pool({ applicationName: `${app}-life`, poolSize: 1, idleTimeoutMs: 0, maxLifetimeMs: 300 })
    const pids = new Set()
    const started = Date.now()
    while (Date.now() - started < 1500) {
      pids.add((await q.query('select pg_backend_pid() as pid'))[0].pid)
      await sleep(50)
    }
    assert.ok(pids.size >= 3, `a 300 ms lifetime over 1.5 s replaces the connection: ${pids.size} backends`)
  } finally {
    await admin.end()
  }
})
