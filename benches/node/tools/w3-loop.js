'use strict'
// W3 as a plain loop: one client, one process, `n` queries of 50,000 rows after 3 untimed
// ones, a full GC before each (so that every query starts on the same heap), medians. Also
// reports the CPU per query of this process and of the server's backend (from /proc), and
// this process's CPU by thread name (the JS thread, the decoding thread, V8's helpers).
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

// CPU of a process or thread in ms, from its stat line (utime + stime, 100 ticks a second).
function cpuMs(statPath) {
  const s = fs.readFileSync(statPath, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 10
}
function threads() {
  const out = {}
  for (const t of fs.readdirSync('/proc/self/task')) {
    const s = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8')
    const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))
    out[name] = (out[name] || 0) + cpuMs(`/proc/self/task/${t}/stat`)
  }
  return out
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
  for (let i = 0; i < 3; i++) await db.query(SQL[shape], [ROWS])
  const times = []
  const cpu0 = process.cpuUsage()
  const server0 = cpuMs(`/proc/${pid}/stat`)
  const threads0 = threads()
  for (let i = 0; i < n; i++) {
    if (!process.env.NOGC) gc()
    const t = performance.now()
    const rows = await db.query(SQL[shape], [ROWS])
    times.push(performance.now() - t)
    if (rows.length !== ROWS) throw new Error(`${rows.length} rows, expected ${ROWS}`)
  }
  const cpu = process.cpuUsage(cpu0)
  const server = (cpuMs(`/proc/${pid}/stat`) - server0) / n
  const byThread = Object.entries(threads())
    .map(([name, ms]) => [name, (ms - (threads0[name] || 0)) / n])
    .filter(([, ms]) => ms > 0.5)
    .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
  times.sort((a, b) => a - b)
  console.log(`${client} ${shape}: median ${times[n >> 1].toFixed(1)} ms (min ${times[0].toFixed(1)}), ` +
    `client CPU ${((cpu.user + cpu.system) / 1000 / n).toFixed(1)} ms/query, server backend CPU ${server.toFixed(1)} ms/query; ` +
    `by thread (ms/query): ${byThread.join(', ')}`)
  await db.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
