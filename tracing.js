'use strict'
// Tracing through node:diagnostics_channel, for APM agents and OpenTelemetry (README,
// "Tracing"). Nothing is built for it unless someone subscribes.
// - 'hyperiondb-client:query', a TracingChannel: start, end, asyncStart, asyncEnd and error
//   for every query (pool, transaction, checkout), with one context object per query:
//   { id, sql, params, host, processId, command, rowCount, durationMs, error }.
// - 'hyperiondb-client:connect': { id, kind: 'connect' | 'begin', host, processId,
//   durationMs } when a dedicated connection is handed out.
// - 'hyperiondb-client:event': every failover event, as `onEvent` gets it.
const dc = require('node:diagnostics_channel')

const queryTrace = dc.tracingChannel('hyperiondb-client:query')
const connectChannel = dc.channel('hyperiondb-client:connect')
const eventChannel = dc.channel('hyperiondb-client:event')
let traceIds = 0

// The next id of a traced operation (queries and checkouts share one sequence).
function nextTraceId() {
  return ++traceIds
}

// Runs `run(ctx)`, a query that fills `ctx.host` (an index into `hostNames`) and resolves to
// its rows, as one traced operation.
function traced(sql, params, processId, hostNames, run) {
  const ctx = { id: nextTraceId(), sql, params: params ?? [], host: null, processId, command: null, rowCount: null, durationMs: null }
  const started = performance.now()
  return queryTrace.tracePromise(async () => {
    try {
      const rows = await run(ctx)
      ctx.command = rows.command
      ctx.rowCount = rows.rowCount
      return rows
    } finally {
      // Set before `error` / `asyncEnd` are published.
      ctx.host = hostNames[ctx.host] ?? null
      ctx.durationMs = performance.now() - started
    }
  }, ctx)
}

module.exports = { queryTrace, connectChannel, eventChannel, nextTraceId, traced }
