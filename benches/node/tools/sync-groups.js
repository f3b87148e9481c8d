#!/usr/bin/env node
'use strict'
// What a Sync costs the server: W2's point select written by hand on the wire, K connections
// each keeping DEPTH statements in flight, grouped three ways:
//   each   Bind, Execute, Sync per statement (what every client here sends, ours included)
//   flush  Bind, Execute, Flush per statement and one Sync per write (one transaction, but
//          the server still writes each answer as it is made)
//   batch  Bind, Execute per statement and one Sync per write (one transaction, one answer
//          written per Sync)
// and prints queries/s, the backends' CPU per query (/proc/PID/stat of each session) and this
// process's. A measuring tool: node-postgres (benches/node/node_modules) only opens and
// authenticates the sessions; after that the statements go straight to its socket. Usage:
//   node benches/node/run.js --serve &     # prints BENCH_CONN; export it
//   node benches/node/tools/sync-groups.js [--depth 25] [--conns 10] [--secs 5] [--rounds 3]

const fs = require('node:fs')
const path = require('node:path')
const pg = require(path.resolve(__dirname, '../node_modules/pg'))

const SQL = 'select id, label, amount, created_at from bench_small where id = $1'
const INT4 = 23
const TICKS = 100 // clock ticks a second in /proc/PID/stat (USER_HZ)

function args(argv) {
  const o = { depth: 25, conns: 10, secs: 5, rounds: 3 }
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '')
    if (!(k in o) || !(Number(argv[i + 1]) > 0)) throw new Error(`usage: sync-groups.js [--depth N] [--conns N] [--secs N] [--rounds N]`)
    o[k] = Number(argv[i + 1])
  }
  return o
}

// The wire's framing, as the tests' scripted backend writes it (a frontend message is
// framed the same way).
const { frame: message, cstr: cstring } = require(path.resolve(__dirname, '../../../test/mock-server.js')).be
const SYNC = message('S', Buffer.alloc(0))
const FLUSH = message('H', Buffer.alloc(0))
const EXECUTE = message('E', Buffer.concat([cstring(''), Buffer.alloc(4)]))
const PARSE = message('P', Buffer.concat([cstring('s1'), cstring(SQL), Buffer.from([0, 1, 0, 0, 0, INT4])]))

// Bind of statement s1: one binary int4 parameter, every result column binary.
function bind(id) {
  const tail = Buffer.alloc(18)
  let o = tail.writeInt16BE(1, 0)
  o = tail.writeInt16BE(1, o)
  o = tail.writeInt16BE(1, o)
  o = tail.writeInt32BE(4, o)
  o = tail.writeInt32BE(id, o)
  o = tail.writeInt16BE(1, o)
  tail.writeInt16BE(1, o)
  return message('B', Buffer.concat([cstring(''), cstring('s1'), tail]))
}

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(f[11]) + Number(f[12]) // utime, stime
}

// A session of node-postgres's, taken over once authenticated: `round(ids, mode)` writes the
// statements and resolves when the last ReadyForQuery of the write has come.
async function session(conn) {
  const client = new pg.Client(conn)
  await client.connect()
  const pid = (await client.query('select pg_backend_pid() as p')).rows[0].p
  const socket = client.connection.stream
  socket.removeAllListeners('data')
  let pending = Buffer.alloc(0)
  let due = 0
  let done = null
  socket.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    let o = 0
    while (pending.length - o >= 5) {
      const len = pending.readInt32BE(o + 1)
      if (pending.length - o < 1 + len) break
      if (pending[o] === 0x45) throw new Error(`server error: ${pending.subarray(o + 5, o + 1 + len).toString()}`)
      if (pending[o] === 0x5a) due--
      o += 1 + len
    }
    pending = pending.subarray(o)
    if (due === 0 && done !== null) {
      const d = done
      done = null
      d()
    }
  })
  const write = (bytes, syncs) => {
    due = syncs
    socket.write(bytes)
    return new Promise((resolve) => (done = resolve))
  }
  await write(Buffer.concat([PARSE, SYNC]), 1)
  return {
    pid,
    close() {
      client.on('error', () => {}) // the socket closed under node-postgres, as meant
      socket.destroy()
    },
    round(ids, mode) {
      const parts = []
      for (const id of ids) {
        parts.push(bind(id), EXECUTE)
        if (mode === 'each') parts.push(SYNC)
        else if (mode === 'flush') parts.push(FLUSH)
      }
      if (mode !== 'each') parts.push(SYNC)
      return write(Buffer.concat(parts), mode === 'each' ? ids.length : 1)
    },
  }
}

async function measure(sessions, mode, o) {
  const before = sessions.map((s) => cpuTicks(s.pid))
  const me = process.cpuUsage()
  let n = 0
  const started = Date.now()
  const end = started + o.secs * 1000
  await Promise.all(sessions.map(async (s) => {
    while (Date.now() < end) {
      const ids = []
      for (let i = 0; i < o.depth; i++) ids.push(1 + Math.floor(Math.random() * 10000))
      await s.round(ids, mode)
      n += o.depth
    }
  }))
  const secs = (Date.now() - started) / 1000
  const server = sessions.reduce((sum, s, i) => sum + cpuTicks(s.pid) - before[i], 0) / TICKS
  const client = process.cpuUsage(me)
  return { qps: n / secs, server: (server / n) * 1e6, client: (client.user + client.system) / n }
}

async function main() {
  const o = args(process.argv.slice(2))
  if (!process.env.BENCH_CONN) throw new Error('BENCH_CONN is not set: start `node benches/node/run.js --serve` and export what it prints')
  const conn = JSON.parse(process.env.BENCH_CONN)
  const sessions = []
  for (let i = 0; i < o.conns; i++) sessions.push(await session(conn))
  const modes = ['each', 'flush', 'batch']
  const results = Object.fromEntries(modes.map((m) => [m, []]))
  for (let r = 0; r < o.rounds; r++) {
    // Interleaved, reversed every other round, so that drift reaches every mode alike.
    for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
      const x = await measure(sessions, mode, o)
      results[mode].push(x)
      console.log(`round ${r + 1} ${mode.padEnd(5)} ${(x.qps / 1000).toFixed(1)}k q/s, server CPU ${x.server.toFixed(2)} µs a query, this process ${x.client.toFixed(2)} µs`)
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(`depth ${o.depth}, ${o.conns} sessions, ${o.rounds} rounds of ${o.secs} s; medians:`)
  for (const mode of modes) {
    const xs = results[mode]
    console.log(`  ${mode.padEnd(5)} ${(median(xs.map((x) => x.qps)) / 1000).toFixed(1)}k q/s, server CPU ${median(xs.map((x) => x.server)).toFixed(2)} µs a query, this process ${median(xs.map((x) => x.client)).toFixed(2)} µs`)
  }
  for (const s of sessions) s.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
