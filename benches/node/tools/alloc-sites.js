'use strict'
// Where a W3 query's JS heap allocations come from: V8's sampling heap profiler over three
// queries after three untimed ones, objects the collectors freed since included, summed by
// the innermost three frames. Usage (BENCH_CONN from `node run.js --serve`):
//   node benches/node/tools/alloc-sites.js [wide|json|strings]
// hyperiondb-client comes from HYPERION_CLIENT or the repository root.
const inspector = require('node:inspector')
const path = require('node:path')
const { W3_SHAPES: SQL, SIZES } = require('../lib/workloads.js')
async function main() {
  const shape = process.argv[2] || 'json'
  if (!SQL[shape]) throw new Error('usage: alloc-sites.js [wide|json|strings]')
  if (!process.env.BENCH_CONN) throw new Error('BENCH_CONN is not set (see run.js --serve)')
  const adapter = require(path.join(__dirname, '..', 'clients', 'hyperion.js'))
  const db = await adapter.connect({ ...JSON.parse(process.env.BENCH_CONN), hosts: undefined, max: 1 })
  for (let i = 0; i < 3; i++) await db.query(SQL[shape], [SIZES.W3.full.rows])
  const s = new inspector.Session()
  s.connect()
  const post = (m, p) => new Promise((res, rej) => s.post(m, p, (e, r) => (e ? rej(e) : res(r))))
  await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  for (let i = 0; i < 3; i++) await db.query(SQL[shape], [SIZES.W3.full.rows])
  const { profile } = await post('HeapProfiler.stopSampling')
  const bySite = new Map()
  let total = 0
  const walk = (n, stack) => {
    const f = n.callFrame
    const name = `${f.functionName || '(anon)'} ${path.basename(f.url)}:${f.lineNumber + 1}`
    const st = [...stack, name]
    if (n.selfSize) {
      const key = st.slice(-3).join(' < ')
      bySite.set(key, (bySite.get(key) || 0) + n.selfSize)
      total += n.selfSize
    }
    for (const c of n.children) walk(c, st)
  }
  walk(profile.head, [])
  console.log(`sampled ${(total / 3 / 1e6).toFixed(1)} MB a query`)
  for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${(v / 3 / 1e6).toFixed(2).padStart(7)} MB  ${k}`)
  await db.close()
}
main().catch((e) => { console.error(e); process.exit(1) })
