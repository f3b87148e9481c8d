'use strict'
// Chaos: the primary goes away under write load (`npm run test:chaos` runs this file alone;
// `npm test` runs it with the rest). Three kinds of writers run at once: single inserts,
// two-row transactions and idempotent inserts (pool.insert). Whatever the pool acknowledged
// must be on the new primary afterwards, a transaction whole; a write that failed is never
// counted. The cluster replicates synchronously (test/cluster.js), which is what makes zero
// loss possible at all.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const suite = useCluster()

async function underLoad(failover) {
  const p = suite.pool({ poolSize: 4, acquireTimeoutMs: 15000 })
  await p.query('drop table if exists t_acked')
  await p.query('create table t_acked (k text primary key)')
  const acked = { query: [], transaction: [], insert: [] }
  const failed = []
  let afterFailover = null
  let stop = false
  const kinds = {
    query: (k) => p.query('insert into t_acked values ($1)', [k]),
    transaction: (k) =>
      p.transaction(async (tx) => {
        await tx.query('insert into t_acked values ($1)', [`${k}-a`])
        await tx.query('insert into t_acked values ($1)', [`${k}-b`])
      }),
    insert: (k) => p.insert('t_acked', { k }, { idempotency: true, conflictTarget: 'k' }),
  }
  const writer = async (kind, w) => {
    for (let i = 0; !stop; i++) {
      const k = `${kind}${w}-${i}`
      try {
        await kinds[kind](k)
        acked[kind].push({ k, after: afterFailover !== null })
      } catch (e) {
        failed.push(`${k}: ${e.code}`) // in doubt or refused: never counted as acknowledged
        await sleep(10)
      }
    }
  }
  const writers = Object.keys(kinds).flatMap((kind) => [0, 1].map((w) => writer(kind, w)))
  await sleep(300)
  const { newPrimary } = await failover()
  afterFailover = Date.now()
  await sleep(700)
  stop = true
  await Promise.all(writers)

  const [r] = await p.query('select inet_server_port() as port')
  assert.equal(r.port, suite.cluster.node(newPrimary).port, 'the pool writes to the new primary')
  const admin = await suite.cluster.admin(newPrimary)
  let present
  try {
    present = new Set((await admin.query('select k from t_acked')).rows.map((x) => x.k))
  } finally {
    await admin.end()
  }
  const expected = [
    ...acked.query.map((a) => a.k),
    ...acked.insert.map((a) => a.k),
    ...acked.transaction.flatMap((a) => [`${a.k}-a`, `${a.k}-b`]),
  ]
  const lost = expected.filter((k) => !present.has(k))
  const total = expected.length
  assert.deepEqual(lost, [], `acknowledged writes lost (${total} acknowledged rows, ${failed.length} failed writes)`)
  for (const kind of Object.keys(kinds)) {
    assert.ok(acked[kind].some((a) => !a.after), `${kind} writes were acknowledged before the failover`)
    assert.ok(acked[kind].some((a) => a.after), `${kind} writes were acknowledged after the failover`)
  }
  await suite.cluster.heal()
}

test('the primary stops under concurrent writes: no acknowledged write is lost', async () => {
  await underLoad(() => suite.cluster.failover({ mode: 'stop' }))
})

test('the primary is fenced read-only (sessions kept) under concurrent writes: none is lost', async () => {
  await underLoad(() => suite.cluster.failover({ mode: 'fence' }))
})
