#!/usr/bin/env node
'use strict'
// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by area, and the
// inclusive time of a few functions of interest. Usage:
//   node benches/node/tools/cpuprofile-summary.js FILE.cpuprofile [--top 30] [--result OUT]
// --result OUT: the stdout of the sample.js run that wrote the profile; only samples inside
// its timed sections (metrics.windows_us, W2 and W3) are counted, so warm-up and result
// checks are left out.
//   node --cpu-prof --cpu-prof-dir=prof benches/node/sample.js --client hyperion --workload W2 > out
//   node benches/node/tools/cpuprofile-summary.js prof/*.cpuprofile --result out

const fs = require('node:fs')
const path = require('node:path')

const argv = process.argv.slice(2)
const file = argv[0]
const top = argv.includes('--top') ? Number(argv[argv.indexOf('--top') + 1]) : 30
const p = JSON.parse(fs.readFileSync(file, 'utf8'))
let windows = null
if (argv.includes('--result')) {
  const line = fs.readFileSync(argv[argv.indexOf('--result') + 1], 'utf8').split('\n').find((l) => l.startsWith('@@RESULT '))
  windows = JSON.parse(line.slice(9)).metrics.windows_us
  if (!windows) throw new Error('the result has no windows_us (W2/W3 only)')
}
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of p.nodes) for (const c of n.children || []) parent.set(c, n.id)

function area(cf) {
  const u = cf.url || ''
  if (!u) return cf.functionName.startsWith('(') ? cf.functionName : `native: ${cf.functionName || '(anonymous)'}`
  if (u.includes('/clients/hyperion') || u.endsWith('/client.js') || u.includes('hyperion/client.js')) return 'hyperion client.js / adapter'
  if (u.includes('/lib/workloads')) return 'benchmark workload code'
  if (u.includes('node_modules/pg')) return 'pg'
  if (u.includes('node_modules/postgres')) return 'postgres.js'
  if (u.startsWith('node:')) return `node core (${u.split('/')[0]})`
  return path.basename(u)
}

const dt = p.timeDeltas
const self = new Map()
const areas = new Map()
const inclusive = new Map()
let total = 0
let t = p.startTime
let counted = 0
for (let i = 0; i < p.samples.length; i++) {
  const d = dt[i] || 0
  t += d
  if (windows && !windows.some(([a, b]) => t >= a && t <= b)) continue
  counted++
  const n = byId.get(p.samples[i])
  const cf = n.callFrame
  const key = `${cf.functionName || '(anonymous)'} ${cf.url ? `${path.basename(cf.url)}:${cf.lineNumber + 1}` : ''}`.trim()
  self.set(key, (self.get(key) || 0) + d)
  const a = area(cf)
  areas.set(a, (areas.get(a) || 0) + d)
  const seen = new Set()
  for (let id = n.id; id !== undefined; id = parent.get(id)) {
    const f = byId.get(id).callFrame
    const k = `${f.functionName || '(anonymous)'} ${f.url ? path.basename(f.url) : ''}`.trim()
    if (!seen.has(k)) { seen.add(k); inclusive.set(k, (inclusive.get(k) || 0) + d) }
  }
  total += d
}
const pct = (v) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(6)} ms`
const show = (title, m, n) => {
  console.log(`\n${title}`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(v)}  ${k}`)
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled, ${counted} samples${windows ? ` in ${windows.length} timed window(s)` : ''}`)
show('self time by area', areas, 20)
show(`self time by function (top ${top})`, self, top)
show('inclusive time (top 25)', inclusive, 25)
