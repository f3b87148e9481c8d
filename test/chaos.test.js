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

// Each call's budget: acquireTimeoutMs, plus the retry backoff and the probes that settle it,
// generously. No caller may wait past it, whatever the fault.
const BUDGET_SLACK_MS = 5000

async function underLoad(failover, t, { acquireTimeoutMs = 15000 } = {}) {
  const p = suite.pool({ poolSize: 4, acquireTimeoutMs })
  await p.query('drop table if exists t_acked')
  await p.query('create table t_acked (k text primary key)')
  const acked = { query: [], transaction: [], insert: [] }
  const failed = []
  let afterFailover = null
  let electedAt = null
  let longest = 0
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
      const started = Date.now()
      try {
        await kinds[kind](k)
        acked[kind].push({ k, after: afterFailover !== null, at: Date.now() })
      } catch (e) {
        failed.push(`${k}: ${e.code}`) // in doubt or refused: never counted as acknowledged
        await sleep(10)
      } finally {
        longest = Math.max(longest, Date.now() - started)
      }
    }
  }
  const writers = Object.keys(kinds).flatMap((kind) => [0, 1].map((w) => writer(kind, w)))
  await sleep(300)
  const faultAt = Date.now()
  let newPrimary
  try {
    // The election is known once failover() returns; acknowledgements after it are counted
    // from its electedAt (any acknowledgement after it came from the new primary: the old one
    // is stopped, fenced, cut off or frozen).
    const elected = await failover()
    newPrimary = elected.newPrimary
    electedAt = elected.electedAt
    afterFailover = Date.now()
    await sleep(700)
  } finally {
    // Also when the fault could not be made (no iptables): writers left running would keep
    // this file's process alive, and the test run would never end.
    stop = true
    await Promise.allSettled(writers)
  }

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
  const all = acked.query.concat(acked.transaction, acked.insert)
  const ackAfter = all.filter((a) => a.after).length
  const firstAckAfterElection = all.reduce((m, a) => (a.at > electedAt && (m === null || a.at < m) ? a.at : m), null)
  t.diagnostic(`fault at +0 ms, election at +${electedAt - faultAt} ms; first acknowledged write after the election: ` +
    `${firstAckAfterElection === null ? 'none' : `${firstAckAfterElection - electedAt} ms after it`}; ` +
    `longest call ${longest} ms; ${total} rows acknowledged (${ackAfter} writes after), ${lost.length} lost, ` +
    `${failed.length} failed: ${summarize(failed)}`)
  assert.ok(longest <= acquireTimeoutMs + BUDGET_SLACK_MS, `a caller waited ${longest} ms (budget ${acquireTimeoutMs} ms + ${BUDGET_SLACK_MS} ms)`)
  assert.deepEqual(lost, [], `acknowledged writes lost (${total} acknowledged rows, ${failed.length} failed writes)`)
  for (const kind of Object.keys(kinds)) {
    assert.ok(acked[kind].some((a) => !a.after), `${kind} writes were acknowledged before the failover`)
    assert.ok(acked[kind].some((a) => a.after), `${kind} writes were acknowledged after the failover`)
  }
  await suite.cluster.heal()
}

// Failed writes by code: `IN_DOUBT x3, 08001 x1`.
function summarize(failed) {
  const counts = new Map()
  for (const f of failed) {
    const code = f.slice(f.lastIndexOf(': ') + 2)
    counts.set(code, (counts.get(code) || 0) + 1)
  }
  return [...counts].map(([c, n]) => `${c} x${n}`).join(', ') || 'none'
}

test('the primary stops under concurrent writes: no acknowledged write is lost', async (t) => {
  await underLoad(() => suite.cluster.failover({ mode: 'stop' }), t)
})

test('the primary is fenced read-only (sessions kept) under concurrent writes: none is lost', async (t) => {
  await underLoad(() => suite.cluster.failover({ mode: 'fence' }), t)
})

// The faults that break no socket: every packet to and from the primary dropped (no RST, no
// FIN), or every process of it stopped (its kernel still acknowledges TCP). Writers are blocked
// on the old primary until the pool sees the new one; then they settle within their budget.
test('the primary is partitioned away under concurrent writes: none is lost, no caller waits past its budget', async (t) => {
  await underLoad(() => suite.cluster.failover({ mode: 'partition' }), t, { acquireTimeoutMs: 10000 })
})

test('the primary hangs (all its processes stopped) under concurrent writes: none is lost, no caller waits past its budget', async (t) => {
  await underLoad(() => suite.cluster.failover({ mode: 'freeze' }), t, { acquireTimeoutMs: 10000 })
})
