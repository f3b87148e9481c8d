'use strict'
// Tracing through node:diagnostics_channel: what an APM agent or an OpenTelemetry
// instrumentation subscribes to (README, "Tracing").

const { test } = require('node:test')
const assert = require('node:assert/strict')
const dc = require('node:diagnostics_channel')
const { useCluster } = require('./support.js')

const suite = useCluster()

// Records every event of the query TracingChannel, in order, until `stop()`.
function record() {
  const events = []
  const handlers = {}
  for (const name of ['start', 'end', 'asyncStart', 'asyncEnd', 'error']) {
    handlers[name] = (ctx) => events.push([name, ctx.id, ctx])
  }
  const ch = dc.tracingChannel('hyperiondb-client:query')
  ch.subscribe(handlers)
  return { events, stop: () => ch.unsubscribe(handlers) }
}

test('a subscriber sees start and end for every query, in order, with matching ids, sql, host and rowCount', async () => {
  const pool = suite.pool()
  const primary = suite.conn.hosts[suite.cluster.primaryIndex()]
  const rec = record()
  try {
    await pool.query('select $1::int as x', [1])
    await pool.query('select g from generate_series(1, 3000) g') // a chunked result
    await assert.rejects(pool.query('select nope'), { code: '42703' })
    await pool.query('select 1 as y', [], { rowMode: 'array', timeoutMs: 5000 })
    await pool.transaction(async (tx) => {
      await tx.query('select 2 as z')
    })
  } finally {
    rec.stop()
  }
  const ids = [...new Set(rec.events.map(([, id]) => id))]
  // BEGIN/COMMIT are not queries of the caller's: five traced statements.
  assert.equal(ids.length, 5)
  for (const id of ids) {
    const mine = rec.events.filter(([, i]) => i === id).map(([name]) => name)
    const failed = mine.includes('error')
    assert.deepEqual(mine, failed ? ['start', 'end', 'error', 'asyncStart', 'asyncEnd'] : ['start', 'end', 'asyncStart', 'asyncEnd'], `events of query ${id}`)
  }
  // Ids grow in the order the queries were made; each context is the query's own.
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b))
  const ctxs = ids.map((id) => rec.events.find(([, i]) => i === id)[2])
  assert.deepEqual(ctxs.map((c) => c.sql), ['select $1::int as x', 'select g from generate_series(1, 3000) g', 'select nope', 'select 1 as y', 'select 2 as z'])
  assert.deepEqual(ctxs.map((c) => c.rowCount), [1, 3000, null, 1, 1])
  assert.deepEqual(ctxs.map((c) => c.host), [primary, primary, null, primary, primary])
  assert.deepEqual(ctxs[0].params, [1])
  for (const c of ctxs) assert.ok(typeof c.durationMs === 'number' && c.durationMs >= 0, `durationMs of ${c.sql}`)
  assert.equal(ctxs[2].error.code, '42703')
  assert.equal(typeof ctxs[4].processId, 'number')
})

test('connect and begin are published on hyperiondb-client:connect; nothing is traced without subscribers', async () => {
  const pool = suite.pool()
  const seen = []
  const onConnect = (m) => seen.push(m)
  dc.subscribe('hyperiondb-client:connect', onConnect)
  try {
    const c = await pool.connect()
    await c.release()
    const tx = await pool.begin()
    await tx.rollback()
  } finally {
    dc.unsubscribe('hyperiondb-client:connect', onConnect)
  }
  assert.deepEqual(seen.map((m) => m.kind), ['connect', 'begin'])
  for (const m of seen) {
    assert.equal(typeof m.processId, 'number')
    assert.equal(m.host, suite.conn.hosts[suite.cluster.primaryIndex()])
    assert.ok(m.durationMs >= 0)
  }
  // Without subscribers a query's result carries no host (the untraced path).
  const rows = await pool.query('select 1 as a')
  assert.deepEqual(Object.getOwnPropertyNames(rows).sort(), ['0', 'command', 'fields', 'length', 'rowCount'])
})

test('failover events reach hyperiondb-client:event subscribers without an onEvent hook', async () => {
  const pool = suite.pool({ acquireTimeoutMs: 10000 })
  const events = []
  const onEvent = (e) => events.push(e)
  dc.subscribe('hyperiondb-client:event', onEvent)
  try {
    await pool.query('select 1')
    const old = suite.cluster.primaryIndex()
    await suite.cluster.failover({ mode: 'fence' })
    await pool.query('create temp table if not exists ev_t (x int)')
    assert.notEqual(suite.cluster.primaryIndex(), old)
    // Events travel on their own thread-safe function: they may land after the query settled.
    for (let i = 0; i < 100 && !events.some((e) => e.type === 'primary-found'); i++) await new Promise((r) => setTimeout(r, 10))
  } finally {
    dc.unsubscribe('hyperiondb-client:event', onEvent)
  }
  assert.ok(events.some((e) => e.type === 'host-fenced' || e.type === 'host-superseded'), JSON.stringify(events))
  assert.ok(events.some((e) => e.type === 'primary-found'), JSON.stringify(events))
})
