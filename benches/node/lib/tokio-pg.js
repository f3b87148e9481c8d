'use strict'
// tokio-postgres's sample (benches/src/bin/tokio_pg.rs): the release binary, built when it
// is missing or older than its source. Used by run.js and tools/ab.js.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.resolve(__dirname, '../../..')
const TOKIO_PG_SRC = path.join(ROOT, 'benches/src/bin/tokio_pg.rs')

// -> { bin } or { error, na }. `log` reports a build and how long it took.
function tokioPgBinary(log) {
  const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target')
  const bin = path.join(targetDir, 'release', 'tokio_pg')
  const mtime = (f) => { try { return fs.statSync(f).mtimeMs } catch { return null } }
  const have = mtime(bin)
  if (have !== null && have >= mtime(TOKIO_PG_SRC)) return { bin }
  log(`building the tokio-postgres sample (${have === null ? 'missing' : 'older than its source'}): cargo build --release -p benches --bin tokio_pg${process.env.CARGO_TARGET_DIR ? ` (CARGO_TARGET_DIR=${process.env.CARGO_TARGET_DIR})` : ''} ...`)
  const t = performance.now()
  const r = spawnSync('cargo', ['build', '--release', '-p', 'benches', '--bin', 'tokio_pg'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' })
  if (r.error) return { na: r.error.code === 'ENOENT', error: `cannot build the tokio-postgres sample: ${r.error.message}` }
  if (r.status !== 0) {
    process.stderr.write(r.stderr)
    return { error: `cargo build --release -p benches --bin tokio_pg failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` }
  }
  log(`built ${bin.startsWith(ROOT + path.sep) ? path.relative(ROOT, bin) : bin} in ${((performance.now() - t) / 1000).toFixed(0)} s`)
  return { bin }
}

module.exports = { tokioPgBinary }
