'use strict'
// A broken or hostile server cannot make the client keep unbounded memory, hand one caller
// another caller's rows, hang, or retry a startup no retry can fix. A scripted backend (below)
// plays the server for the cases no real server produces; COPY FROM STDIN runs against a real
// one, through the pool and through the wire crate's own tests (wire/tests/real_copy.rs).

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { createPool } = require('../client.js')
const { clusterForTests } = require('./cluster.js')
const { runWireTests } = require('./support.js')

const MB = 1024 * 1024

// --- the scripted backend --------------------------------------------------------------------

const { frame, cstr, u16, u32, ready, rowDescription, dataRow, isSslRequest } = require('./mock-server.js').be
const complete = (tag) => frame('C', cstr(tag))
const parameterStatus = (k, v) => frame('S', Buffer.concat([cstr(k), cstr(v)]))
const notice = (msg) => frame('N', Buffer.concat([cstr('SNOTICE'), cstr('VNOTICE'), cstr('C00000'), cstr(`M${msg}`), Buffer.from([0])]))
const emptyQuery = () => frame('I', Buffer.alloc(0))

const startupOk = () => Buffer.concat([
  frame('R', u32(0)),
  ...[['server_version', '17.7'], ['server_encoding', 'UTF8'], ['client_encoding', 'UTF8'], ['DateStyle', 'ISO, MDY'],
    ['integer_datetimes', 'on'], ['standard_conforming_strings', 'on'], ['default_transaction_read_only', 'off'],
    ['in_hot_standby', 'off']].map(([k, v]) => parameterStatus(k, v)),
  frame('K', Buffer.concat([u32(4242), u32(1)])),
  ready(),
])

/** Writes `chunk` `times` times, waiting for the socket to drain (no copy, bounded queue). */
async function flood(socket, chunk, times) {
  for (let i = 0; i < times && !socket.destroyed; i++) {
    if (!socket.write(chunk)) {
      await new Promise((resolve) => {
        const done = () => { socket.off('drain', done); socket.off('close', done); resolve() }
        socket.on('drain', done)
        socket.on('close', done)
      })
    }
  }
}

/** `count` copies of `message` in one buffer of about `size` bytes. */
function repeated(message, size = 256 * 1024) {
  return Buffer.concat(Array(Math.max(1, Math.floor(size / message.length))).fill(message))
}

/**
 * Starts the backend on a loopback port. It answers what the pool sends like PostgreSQL 17
 * (trust startup, the role probe, Parse/Describe/Bind/Execute/Sync, simple queries); an
 * Execute of `sql` runs `behave(sql, conn)`, which may write anything to `conn.socket` and
 * return the messages to send before the statement's Sync is answered, or undefined for one
 * row holding the SQL text. `startup(socket)` replaces the startup answer; `onQuery(sql, conn)`
 * may answer a simple query itself (it returns true then).
 */
async function backend({ behave = () => undefined, startup, onQuery } = {}) {
  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const conn = { socket, extraReady: false }
    const statements = new Map()
    let buf = Buffer.alloc(0)
    let started = false
    let sql = ''
    let busy = false
    const pump = async () => {
      if (busy) return
      busy = true
      try {
        for (;;) {
          if (!started) {
            if (buf.length < 4 || buf.length < buf.readUInt32BE(0)) break
            if (isSslRequest(buf)) { // no TLS here: 'N', then the startup message
              buf = buf.subarray(8)
              socket.write('N')
              continue
            }
            buf = buf.subarray(buf.readUInt32BE(0))
            started = true
            if (startup) { startup(socket); continue }
            socket.write(startupOk())
            continue
          }
          if (buf.length < 5 || buf.length < 1 + buf.readUInt32BE(1)) break
          const tag = String.fromCharCode(buf[0])
          const body = buf.subarray(5, 1 + buf.readUInt32BE(1))
          buf = buf.subarray(1 + buf.readUInt32BE(1))
          const str = (from) => body.subarray(from, body.indexOf(0, from)).toString()
          switch (tag) {
            case 'P': {
              const name = str(0)
              statements.set(name, str(body.indexOf(0) + 1))
              socket.write(frame('1', Buffer.alloc(0)))
              break
            }
            case 'D':
              socket.write(Buffer.concat([frame('t', u16(0)), rowDescription('v')]))
              break
            case 'B':
              sql = statements.get(str(body.indexOf(0) + 1)) || ''
              socket.write(frame('2', Buffer.alloc(0)))
              break
            case 'E': {
              const out = await behave(sql, conn)
              socket.write(Buffer.concat(out || [dataRow(sql), complete('SELECT 1')]))
              break
            }
            case 'S':
              socket.write(ready())
              if (conn.extraReady) { conn.extraReady = false; socket.write(ready()) }
              break
            case 'Q': {
              const q = str(0)
              if (/pg_is_in_recovery/.test(q)) {
                socket.write(Buffer.concat([rowDescription('transaction_read_only'), dataRow('off'), complete('SHOW'),
                  rowDescription('pg_is_in_recovery'), dataRow('f'), complete('SELECT 1'), ready()]))
              } else if (onQuery && onQuery(q, conn)) {
                // answered by the test
              } else if (/^SHOW transaction_read_only/i.test(q)) {
                socket.write(Buffer.concat([rowDescription('transaction_read_only'), dataRow('off'), complete('SHOW'), ready()]))
              } else {
                socket.write(Buffer.concat([complete('SELECT 0'), ready()]))
              }
              break
            }
            case 'X':
              socket.end()
              return
            default:
              break
          }
        }
      } finally {
        busy = false
      }
    }
    socket.on('data', (chunk) => { buf = Buffer.concat([buf, chunk]); pump() })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    sockets,
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((r) => server.close(r))
    },
  }
}

function poolFor(server, opts = {}) {
  return createPool({ hosts: [`127.0.0.1:${server.port}`], user: 'u', database: 'd', poolSize: 1, acquireTimeoutMs: 10000, ...opts })
}

/** Runs `fn` and returns [its outcome, the peak RSS growth in bytes while it ran]. */
async function peakGrowth(fn) {
  global.gc?.()
  const base = process.memoryUsage.rss()
  let peak = base
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 10)
  try {
    const outcome = await fn().then((value) => ({ value }), (error) => ({ error }))
    peak = Math.max(peak, process.memoryUsage.rss())
    return [outcome, peak - base]
  } finally {
    clearInterval(timer)
  }
}

// 40 to 100 MB on the wire per flood: without caps, several times 150 MB in memory.
const FLOODS = {
  notices: (s) => flood(s, repeated(notice('flood')), 160),
  'parameter statuses': (s) => {
    let i = 0
    const chunk = () => Buffer.concat(Array.from({ length: 4096 }, () => parameterStatus(`p${i++}`, 'v'.repeat(100))))
    return (async () => { for (let n = 0; n < 200 && !s.destroyed; n++) await flood(s, chunk(), 1) })()
  },
  'empty query responses': (s) => flood(s, repeated(emptyQuery()), 160),
  'row descriptions': (s) => flood(s, repeated(rowDescription(...Array.from({ length: 50 }, (_, i) => `c${i}`))), 160),
}

// --- floods ----------------------------------------------------------------------------------

for (const [kind, send] of Object.entries(FLOODS)) {
  test(`a flood of ${kind} on a busy connection: bounded memory, a clean outcome`, async () => {
    const server = await backend({
      behave: async (sql, conn) => {
        if (sql !== 'flood') return undefined
        await send(conn.socket)
        return [dataRow('done'), complete('SELECT 1')]
      },
    })
    const pool = poolFor(server)
    try {
      assert.deepEqual(await pool.query('warm up'), [{ v: 'warm up' }])
      const [outcome, growth] = await peakGrowth(() => pool.query('flood'))
      assert.ok(growth < 150 * MB, `RSS grew by ${(growth / MB).toFixed(0)} MB`)
      if (process.env.HOSTILE_VERBOSE) console.log(kind, (growth / MB).toFixed(1), 'MB', outcome.error?.message)
      if (kind === 'notices') {
        assert.ifError(outcome.error)
        assert.deepEqual(outcome.value, [{ v: 'done' }])
      } else {
        assert.ok(outcome.error, `no error: ${JSON.stringify(outcome.value)}`)
        assert.equal(outcome.error.code, 'PROTOCOL_ERROR', outcome.error.stack)
      }
      // The pool recovers: a fresh connection if the flood broke this one.
      assert.deepEqual(await pool.query('after'), [{ v: 'after' }])
    } finally {
      await pool.end()
      await server.close()
    }
  })
}

test('floods pushed to an idle pooled connection: bounded memory, the pool still works', async () => {
  const server = await backend()
  const pool = poolFor(server)
  try {
    assert.deepEqual(await pool.query('first'), [{ v: 'first' }])
    for (const [kind, send] of Object.entries(FLOODS)) {
      const [socket] = server.sockets
      if (!socket) break
      const [outcome, growth] = await peakGrowth(() => send(socket))
      assert.ifError(outcome.error)
      assert.ok(growth < 150 * MB, `${kind}: RSS grew by ${(growth / MB).toFixed(0)} MB`)
      const r = await pool.query(`after ${kind}`).then((v) => ({ v }), (e) => ({ e }))
      if (r.e) assert.ok(r.e.code, r.e.stack)
      else assert.deepEqual(r.v, [{ v: `after ${kind}` }])
    }
    assert.deepEqual(await pool.query('last'), [{ v: 'last' }])
  } finally {
    await pool.end()
    await server.close()
  }
})

// LISTEN's session reads its socket on the runtime whatever the JS thread does; what it reads
// waits for the JS thread in a bounded inbox (pool/src/inbox.rs). A server that floods the
// channel while the JS thread is busy (here 300 MB of notifications during a 4 s block) gets
// what fits kept and the rest dropped, and the application a listening gap for the window.
// The client runs in a child process, so that its JS thread can block while this one floods.
test('a flood of notifications while the JS thread is busy: bounded memory, the loss reported as a gap', { timeout: 60000 }, async (t) => {
  const { execFile } = require('node:child_process')
  const NOTES = 300_000
  let listening = null
  const server = await backend({
    onQuery: (q, conn) => {
      if (!/^LISTEN /i.test(q)) return false
      listening = conn.socket
      conn.socket.write(Buffer.concat([complete('LISTEN'), ready()]))
      return true
    },
    behave: (sql) => {
      if (sql !== 'block now') return undefined
      // The child blocks its JS thread once this answer reaches it.
      const note = frame('A', Buffer.concat([u32(777), cstr('chan'), cstr('x'.repeat(1000))]))
      setTimeout(() => { if (listening) flood(listening, repeated(note, 1000 * note.length), NOTES / 1000) }, 100)
      return undefined
    },
  })
  const child = `
    const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
    const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
    const gaps = []
    let received = 0
    const pool = createPool({ hosts: ['127.0.0.1:${server.port}'], user: 'u', database: 'd', poolSize: 1, onListenGap: (g) => gaps.push(g) })
    ;(async () => {
      await pool.query('warm up')
      const stop = await pool.listen('chan', (payload, { processId }) => { if (processId === 777 && payload.length === 1000) received++ })
      const base = hwm()
      await pool.query('block now')
      const until = Date.now() + 4000
      while (Date.now() < until) {} // the JS thread is busy; the flood goes on
      // Then the JS thread takes what was kept, until nothing more comes.
      let last = -1
      while (received !== last) { last = received; await new Promise((r) => setTimeout(r, 500)) }
      console.log(JSON.stringify({ received, gaps, growth: hwm() - base }))
      await stop()
      await pool.end()
    })().catch((e) => { console.error(e); process.exit(1) })
  `
  try {
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', child], { timeout: 50000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)))
    })
    const { received, gaps, growth } = JSON.parse(out.trim())
    t.diagnostic(`received ${received} of ${NOTES}, ${gaps.length} gap(s), peak RSS +${(growth / MB).toFixed(0)} MB`)
    assert.ok(growth < 150 * MB, `peak RSS grew by ${(growth / MB).toFixed(0)} MB`)
    assert.ok(received > 0 && received < NOTES, `received ${received} of ${NOTES}`)
    assert.ok(gaps.length >= 1, 'the dropped notifications were reported as a gap')
    for (const g of gaps) assert.ok(g.from <= g.to, JSON.stringify(g))
  } finally {
    await server.close()
  }
})

// --- responses never reach the wrong caller ----------------------------------------------------

test('an extra ReadyForQuery fails the connection with PROTOCOL_ERROR; no caller gets another\'s row', async () => {
  const server = await backend({
    behave: (sql, conn) => {
      if (sql === 'q0') conn.extraReady = true
      return undefined
    },
  })
  const pool = poolFor(server)
  try {
    await pool.query('warm up')
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.query(`q${i}`).then((rows) => ({ rows }), (error) => ({ error }))))
    let errors = 0
    outcomes.forEach((o, i) => {
      if (o.error) {
        errors++
        assert.equal(o.error.code, 'PROTOCOL_ERROR', o.error.stack)
      } else {
        assert.deepEqual(o.rows, [{ v: `q${i}` }], `caller ${i} got another caller's row`)
      }
    })
    assert.ok(errors > 0, 'the extra ReadyForQuery went unnoticed')
    assert.deepEqual(await pool.query('after'), [{ v: 'after' }])
  } finally {
    await pool.end()
    await server.close()
  }
})

test('an ErrorResponse without a SQLSTATE has code XX000', async () => {
  const server = await backend({
    behave: (sql) => (sql === 'nocode' ? [frame('E', Buffer.concat([cstr('SERROR'), cstr('Mno code'), Buffer.from([0])]))] : undefined),
  })
  const pool = poolFor(server)
  try {
    await assert.rejects(pool.query('nocode'), (e) => e.code === 'XX000')
    assert.deepEqual(await pool.query('after'), [{ v: 'after' }])
  } finally {
    await pool.end()
    await server.close()
  }
})

// --- startups that no retry can fix fail at once --------------------------------------------

for (const [what, answer, code] of [
  ['a protocol error during startup', complete('SELECT 1'), 'PROTOCOL_ERROR'],
  ['an unsupported auth method (GSSAPI)', frame('R', u32(7)), 'UNSUPPORTED'],
  ['SASL without SCRAM-SHA-256', frame('R', Buffer.concat([u32(10), cstr('SCRAM-SHA-256-PLUS'), Buffer.from([0])])), 'UNSUPPORTED'],
]) {
  test(`${what} fails at once with ${code}`, async () => {
    const server = await backend({ startup: (socket) => socket.write(answer) })
    const pool = poolFor(server, { password: 'p' })
    try {
      const t0 = Date.now()
      await assert.rejects(pool.query('select 1'), (e) => {
        assert.equal(e.code, code, e.stack)
        return true
      })
      const ms = Date.now() - t0
      assert.ok(ms < 3000, `took ${ms} ms (acquireTimeoutMs is 10000)`)
    } finally {
      await pool.end()
      await server.close()
    }
  })
}

// --- COPY FROM STDIN against a real server ---------------------------------------------------

let cluster

before(async () => {
  cluster = await clusterForTests({ nodes: 1 })
})

after(async () => {
  if (cluster) await cluster.destroy()
})

test('COPY FROM STDIN through the pool: 0A000, never a hang, the pool stays usable', { timeout: 20000 }, async () => {
  const pool = createPool({ ...cluster.connection(), poolSize: 1, acquireTimeoutMs: 10000 })
  try {
    await assert.rejects(pool.query('copy (select 1) to stdout'), (e) => e.code === '0A000')
    await pool.query('create table if not exists hostile_copy (x int)')
    await assert.rejects(pool.query('copy hostile_copy from stdin'), (e) => e.code === '0A000')
    assert.deepEqual(await pool.query('select $1::text as v', ['after']), [{ v: 'after' }])
    // With queries pipelined behind it: each gets its own row or a clean error.
    const outcomes = await Promise.all([
      pool.query('copy hostile_copy from stdin').then(() => ({}), (error) => ({ error })),
      ...Array.from({ length: 10 }, (_, i) => pool.query('select $1::text as v', [`v${i}`]).then((rows) => ({ rows, i }), (error) => ({ error }))),
    ])
    assert.equal(outcomes[0].error?.code, '0A000')
    for (const o of outcomes.slice(1)) {
      if (o.error) assert.ok(o.error.code, o.error.stack)
      else assert.deepEqual(o.rows, [{ v: `v${o.i}` }])
    }
    assert.deepEqual(await pool.query('select count(*)::text as v from hostile_copy'), [{ v: '0' }])
  } finally {
    await pool.end()
  }
})

test('COPY FROM STDIN on one connection (cargo test --test real_copy)', { timeout: 120000 }, () => {
  runWireTests(cluster, 'real_copy', 2)
})
