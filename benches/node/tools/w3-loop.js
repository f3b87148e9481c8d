'use strict'
// W3 as a plain loop: one client, one process, `n` queries of 50,000 rows after 3 untimed
// ones, a full GC before each (so that every query starts on the same heap), medians. Also
// reports, over the timed queries only (not the collections between), the CPU per query of
// this process and of the server's backend, the time the backend was runnable but waited for
// a CPU (all from /proc), this process's CPU by thread name (the JS thread, the decoding
// thread, V8's helpers), and the backend's context switches.
// Usage (BENCH_CONN from `node run.js --serve`):
//   node --expose-gc benches/node/tools/w3-loop.js [wide|json|strings] [n] [client]
//   benches/node/node_modules/.bin/bun benches/node/tools/w3-loop.js [wide|json|strings] [n]
// The client is one of benches/node/clients/ (default: hyperion under node, bun under bun),
// connected as sample.js connects it; the queries are W3's (lib/workloads.js). NOGC=1
// leaves the GC to the runtime. hyperiondb-client comes from HYPERION_CLIENT or the
// repository root.
const fs = require('node:fs')
const path = require('node:path')
const { W3_SHAPES: SQL, SIZES } = require('../lib/workloads.js')

const ROWS = SIZES.W3.full.rows
const isBun = typeof Bun !== 'undefined'

// Time a thread (or a single-threaded process) spent on a CPU and waiting for one while
// runnable, in ms, from /proc/.../schedstat (nanoseconds).
function sched(path) {
  const [run, wait] = fs.readFileSync(`${path}/schedstat`, 'utf8').split(' ').map(Number)
  return { run: run / 1e6, wait: wait / 1e6 }
}
function threads() {
  const out = {}
  for (const t of fs.readdirSync('/proc/self/task')) {
    const s = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8')
    // The main thread apart: V8's helper threads under Node take its name too.
    const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) + (t === String(process.pid) ? ' (main)' : '')
    out[name] = (out[name] || 0) + sched(`/proc/self/task/${t}`).run
  }
  return out
}

// The backend's context switches: voluntary (it waited: for the client to read, for a
// query) and not (preempted by another thread on its CPU).
function backendSwitches(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  return ['voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches'].map((k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)[1]))
}

async function main() {
  const shape = process.argv[2] || 'wide'
  const n = Number(process.argv[3] || 15)
  const client = process.argv[4] || (isBun ? 'bun' : 'hyperion')
  if (!SQL[shape] || !(n > 0)) throw new Error('usage: w3-loop.js [wide|json|strings] [n] [client]')
  if (!process.env.BENCH_CONN) throw new Error('BENCH_CONN is not set (see run.js --serve)')
  const gc = isBun ? () => Bun.gc(true) : global.gc
  if (!gc && !process.env.NOGC) throw new Error('run node with --expose-gc (or set NOGC=1)')
  const adapter = require(path.join(__dirname, '..', 'clients', `${client}.js`))
  const db = await adapter.connect({ ...JSON.parse(process.env.BENCH_CONN), hosts: undefined, max: 1 })
  const [{ pid }] = await db.query('select pg_backend_pid() as pid', [])
  // WARM=k untimed queries first (3; sample.js makes 1); TIMER=1 keeps sample.js's 2 ms
  // interval timer running during the timed queries, as a service's event loop would.
  const warm = process.env.WARM === undefined ? 3 : Number(process.env.WARM)
  for (let i = 0; i < warm; i++) await db.query(SQL[shape], [ROWS])
  const times = []
  // Everything below is counted over the timed queries only, not the collections between.
  let cpu = 0
  const server = { run: 0, wait: 0 }
  const switches = [0, 0]
  const byName = {}
  for (let i = 0; i < n; i++) {
    if (!process.env.NOGC) gc()
    const cpu0 = process.cpuUsage()
    const server0 = sched(`/proc/${pid}`)
    const switches0 = backendSwitches(pid)
    const threads0 = threads()
    const t = performance.now()
    const iv = process.env.TIMER ? setInterval(() => {}, 2) : null
    const rows = await db.query(SQL[shape], [ROWS])
    times.push(performance.now() - t)
    if (iv) clearInterval(iv)
    const c = process.cpuUsage(cpu0)
    cpu += (c.user + c.system) / 1000
    const server1 = sched(`/proc/${pid}`)
    server.run += server1.run - server0.run
    server.wait += server1.wait - server0.wait
    backendSwitches(pid).forEach((x, k) => { switches[k] += x - switches0[k] })
    for (const [name, ms] of Object.entries(threads())) byName[name] = (byName[name] || 0) + ms - (threads0[name] || 0)
    if (rows.length !== ROWS) throw new Error(`${rows.length} rows, expected ${ROWS}`)
  }
  const byThread = Object.entries(byName)
    .map(([name, ms]) => [name, ms / n])
    .filter(([, ms]) => ms > 0.5)
    .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
  times.sort((a, b) => a - b)
  console.log(`${client} ${shape}: median ${times[n >> 1].toFixed(1)} ms (min ${times[0].toFixed(1)}), ` +
    `client CPU ${(cpu / n).toFixed(1)} ms/query, server backend CPU ${(server.run / n).toFixed(1)} ms/query ` +
    `(runnable but waiting for a CPU ${(server.wait / n).toFixed(1)}); by thread (ms/query): ${byThread.join(', ')}; ` +
    `backend context switches/query: ${(switches[0] / n).toFixed(1)} waiting, ${(switches[1] / n).toFixed(1)} preempted`)
  await db.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
