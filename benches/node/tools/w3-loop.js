'use strict'
// W3 as a plain loop: one client, one process, `n` queries of 50,000 rows after 3 untimed
// ones, a full GC before each (so that every query starts on the same heap), medians. Also
// reports the CPU per query of this process and of the server's backend (from /proc), and
// this process's CPU by thread name (the JS thread, the decoding thread, V8's helpers).
// Usage (BENCH_CONN from `node run.js --serve`):
//   node --expose-gc benches/node/tools/w3-loop.js [wide|json|strings] [n]
//   benches/node/node_modules/.bin/bun benches/node/tools/w3-loop.js [wide|json|strings] [n]
// NOGC=1 leaves the GC to the runtime. hyperiondb-client comes from HYPERION_CLIENT or the
// repository root.
const fs = require('node:fs')
const path = require('node:path')

const SQL = {
  wide: 'select c_int4, c_int8, c_float8, c_bool, c_text, c_numeric, c_ts, c_uuid, c_jsonb, c_bytea from bench_wide where c_int4 <= $1',
  json: 'select id, doc from bench_json where id <= $1',
  strings: 'select id, name, email, title, body, city from bench_strings where id <= $1',
}
const ROWS = 50000
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

async function connect(conn) {
  if (isBun) {
    const sql = new Bun.SQL({ ...conn, hostname: conn.host, max: 1 })
    return { query: (t, p) => sql.unsafe(t, p), close: () => sql.close() }
  }
  const client = process.env.HYPERION_CLIENT || path.resolve(__dirname, '../../../client.js')
  const pool = require(client).createPool({
    hosts: [`${conn.host}:${conn.port}`], user: conn.user, password: conn.password, database: conn.database, poolSize: 1,
  })
  return { query: (t, p) => pool.query(t, p), close: () => pool.end() }
}

async function main() {
  const shape = process.argv[2] || 'wide'
  const n = Number(process.argv[3] || 15)
  if (!SQL[shape] || !(n > 0)) throw new Error('usage: w3-loop.js [wide|json|strings] [n]')
  if (!process.env.BENCH_CONN) throw new Error('BENCH_CONN is not set (see run.js --serve)')
  const gc = isBun ? () => Bun.gc(true) : global.gc
  if (!gc && !process.env.NOGC) throw new Error('run node with --expose-gc (or set NOGC=1)')
  const db = await connect(JSON.parse(process.env.BENCH_CONN))
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
  console.log(`${isBun ? 'bun' : 'hyperion'} ${shape}: median ${times[n >> 1].toFixed(1)} ms (min ${times[0].toFixed(1)}), ` +
    `client CPU ${((cpu.user + cpu.system) / 1000 / n).toFixed(1)} ms/query, server backend CPU ${server.toFixed(1)} ms/query; ` +
    `by thread (ms/query): ${byThread.join(', ')}`)
  await db.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
