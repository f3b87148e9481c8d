#!/usr/bin/env node
'use strict'
// A/B of hyperiondb-client builds (and Bun SQL beside them) on one workload: fresh-process
// samples of sample.js, the builds interleaved (A B, then B A, ...), medians. This is how the
// per-change figures of benches/README.md were taken. Usage:
//   node benches/node/run.js --serve &          # prints BENCH_CONN; export it
//   node benches/node/tools/ab.js snapshot DIR  # copy the repository's current build to DIR
//   node benches/node/tools/ab.js snapshot --without-meta DIR  # the same, rows without their
//                                               # command/rowCount/fields (to measure their cost)
//   node benches/node/tools/ab.js --workload W2 --reps 9 [--pin CPU] [--size n=...,warm=...] A=DIR B=DIR [bun] [tokio]
// A snapshot is the repository's JS files, package.json and the .node file, so that a later
// rebuild cannot change what it measures. `bun` adds Bun SQL (benches/node/node_modules/.bin/bun);
// `tokio` adds tokio-postgres on one thread (W1, W2; the release binary of
// benches/src/bin/tokio_pg.rs, built as run.js builds it; at its full size, so not with --size).
// --pin CPU starts every sample under taskset -c CPU (pin the server yourself, as run.js
// --w1-pin does). Prints, per build, the median of the workload's value and of its client CPU
// per query (W1, W2) or peak RSS growth (W3), with every sample, and the first build's value
// over each other build's, round by round.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const HERE = path.resolve(__dirname, '..')
const ROOT = path.resolve(HERE, '../..')
const { tokioPgBinary } = require('../lib/tokio-pg.js')

function snapshot(dir, withoutMeta) {
  fs.mkdirSync(dir, { recursive: true })
  const files = fs.readdirSync(ROOT).filter((f) => /\.(js|mjs|d\.ts|node)$/.test(f) || f === 'package.json')
  for (const f of files) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f))
  if (!files.some((f) => f.endsWith('.node'))) throw new Error(`no .node file in ${ROOT}: npm run build first`)
  if (withoutMeta) {
    // What the documented non-enumerable `command`, `rowCount` and `fields` cost: this
    // snapshot's rows arrays go without them (W1, W2 and W3 do not read them). A measuring
    // build only, never one to ship.
    const rowsJs = path.join(dir, 'rows.js')
    let src = fs.readFileSync(rowsJs, 'utf8')
    const cuts = [
      // blank arrays without the three properties, and no stores to them
      "  Object.defineProperty(rows, 'command', BLANK)\n  Object.defineProperty(rows, 'rowCount', BLANK)\n  Object.defineProperty(rows, 'fields', BLANK)\n",
      'rows.command = command;\nrows.rowCount = rowCount;\nrows.fields = fields;\n',
      '    rows.command = command\n    rows.rowCount = rowCount\n    rows.fields = fields\n',
      '  rows.command = last.command\n  rows.rowCount = last.rowCount\n  rows.fields = last.fields\n',
    ]
    for (const text of cuts) {
      if (!src.includes(text)) throw new Error(`rows.js has changed: no ${JSON.stringify(text.split('\n')[0])} to take out`)
      src = src.replace(text, '')
    }
    fs.writeFileSync(rowsJs, src)
  }
  console.log(`${files.length} files -> ${dir}${withoutMeta ? ' (rows without command, rowCount, fields)' : ''}`)
}

function parse(argv) {
  const o = { workload: null, reps: 5, pin: null, size: null, builds: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--workload') o.workload = argv[++i]
    else if (a === '--reps') o.reps = Number(argv[++i])
    else if (a === '--pin') o.pin = argv[++i]
    else if (a === '--size') o.size = argv[++i]
    else if (a === 'bun') o.builds.push({ name: 'bun', bun: true })
    else if (a === 'tokio') o.builds.push({ name: 'tokio', tokio: true })
    else if (/^[\w.-]+=/.test(a)) {
      const [name, dir] = a.split(/=(.*)/s)
      const client = path.resolve(dir, 'client.js')
      if (!fs.existsSync(client)) throw new Error(`${name}: no client.js in ${dir}`)
      o.builds.push({ name, client })
    } else throw new Error(`unknown argument ${a}`)
  }
  if (!o.workload || !o.builds.length || !(o.reps > 0)) throw new Error('usage: ab.js --workload W --reps N NAME=DIR ... [bun] [tokio]')
  if (!process.env.BENCH_CONN) throw new Error('BENCH_CONN is not set (see run.js --serve)')
  if (o.builds.some((b) => b.tokio)) {
    if (o.workload !== 'W1' && o.workload !== 'W2') throw new Error('tokio runs W1 and W2 only')
    // Its sizes are the binary's own: the other builds would run other sizes than it.
    if (o.size) throw new Error('tokio runs at the full size only: leave out --size')
    const t = tokioPgBinary((m) => process.stderr.write(`${m}\n`))
    if (!t.bin) throw new Error(t.error)
    o.tokioPg = t.bin
  }
  return o
}

function command(o, b) {
  if (b.tokio) return [o.tokioPg, ['--workload', o.workload]]
  const bin = b.bun ? path.join(HERE, 'node_modules/.bin/bun') : process.execPath
  // --expose-gc as run.js starts node: W3's samples collect fully before each timed query.
  return [bin, [...(b.bun ? [] : ['--expose-gc']), path.join(HERE, 'sample.js'), '--client', b.bun ? 'bun' : 'hyperion', '--workload', o.workload, ...(o.size ? ['--size', o.size] : [])]]
}

function sample(o, b) {
  const [bin, args] = command(o, b)
  const [cmd, argv] = o.pin === null ? [bin, args] : ['taskset', ['-c', o.pin, bin, ...args]]
  const env = { ...process.env, ...(b.client ? { HYPERION_CLIENT: b.client } : {}) }
  let out
  try {
    out = execFileSync(cmd, argv, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 })
  } catch (e) {
    out = e.stdout || ''
  }
  const line = out.split('\n').find((l) => l.startsWith('@@RESULT '))
  const r = line ? JSON.parse(line.slice(9)) : { ok: false, error: 'no result' }
  if (!r.ok) throw new Error(`${b.name}: ${r.error}`)
  return r.metrics
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return s.length ? s[(s.length - 1) >> 1] : NaN
}

function main() {
  const argv = process.argv.slice(2)
  if (argv[0] === 'snapshot') {
    const rest = argv.slice(1)
    const withoutMeta = rest.includes('--without-meta')
    const dir = rest.find((a) => !a.startsWith('--'))
    return snapshot(path.resolve(dir || 'ab-snapshot'), withoutMeta)
  }
  const o = parse(argv)
  const got = new Map(o.builds.map((b) => [b.name, { value: [], extra: [] }]))
  let extraName = ''
  for (let rep = 0; rep < o.reps; rep++) {
    for (const b of rep % 2 ? [...o.builds].reverse() : o.builds) {
      const m = sample(o, b)
      const g = got.get(b.name)
      g.value.push(m.value)
      if (m.cpu_us_per_query !== undefined) { g.extra.push(m.cpu_us_per_query); extraName = 'client CPU µs/query' }
      else if (m.rss_growth_mb !== undefined) { g.extra.push(m.rss_growth_mb); extraName = 'peak RSS growth MB' }
      process.stderr.write(`rep ${rep + 1}/${o.reps} ${b.name}: ${Math.round(m.value)} ${m.unit}\n`)
    }
  }
  for (const [name, g] of got) {
    const extra = g.extra.length ? `  ${extraName} ${median(g.extra).toFixed(2)} (${g.extra.map((x) => x.toFixed(2)).join(' ')})` : ''
    console.log(`${name.padEnd(10)} ${o.workload} median ${Math.round(median(g.value))} (${g.value.map(Math.round).join(' ')})${extra}`)
  }
  // The first build against each other one, round by round: the samples of one round ran
  // back to back, so their ratio moves less with the machine's load than a ratio of medians.
  const [first, ...others] = o.builds
  const a = got.get(first.name).value
  for (const b of others) {
    const ratios = a.map((v, i) => v / got.get(b.name).value[i])
    const ahead = ratios.filter((r) => r >= 1).length
    console.log(`${first.name}/${b.name} by round: median ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(2)).join(' ')}), ${first.name} ahead in ${ahead} of ${ratios.length}`)
  }
}

try {
  main()
} catch (e) {
  console.error(`ab.js: ${e.message}`)
  process.exit(1)
}
