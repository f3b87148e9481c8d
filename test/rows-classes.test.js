'use strict'
// The optimized row builder of a large result must survive a full GC between two results.
// The builder is specialized for the hidden classes of the chunk and json-container objects
// the native side makes; V8 drops a class no live object has, and every optimized function
// that depended on it ("weak objects"), so rows.js keeps one of each, without their data.
// Seen in V8's own trace of a child process: the builder (`buildRows`) is optimized, and no
// full GC deoptimizes it. Without the kept classes, 6 rounds deoptimized it once or twice in
// every run (Node 20).

const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { useCluster } = require('./support.js')

const ROOT = path.join(__dirname, '..')
const suite = useCluster()

// Runs in the child: rounds of a 20,000-row result with a json column of one shape (a
// container), each dropped and followed by a full GC.
function rounds() {
  const { createPool } = require(process.env.HYPERION_ROOT + '/client.js')
  const pool = createPool({ ...JSON.parse(process.env.HYPERION_CONN), poolSize: 1 })
  const sql = "select g as id, 'label ' || g as label, jsonb_build_object('k', g, 'tag', 't' || (g % 3)) as doc from generate_series(1, $1::int) g"
  ;(async () => {
    for (let round = 0; round < 8; round++) {
      let rows = await pool.query(sql, [20000])
      const last = rows[19999]
      if (rows.length !== 20000 || last.id !== 20000 || last.label !== 'label 20000' || last.doc.k !== 20000 || last.doc.tag !== 't2') {
        throw new Error(`round ${round}: wrong rows`)
      }
      rows = null
      global.gc()
      await new Promise(setImmediate)
    }
    await pool.end()
    console.log('@@done')
  })().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

function child() {
  const code = `(${rounds})()`
  const env = { ...process.env, HYPERION_ROOT: ROOT, HYPERION_CONN: JSON.stringify(suite.conn) }
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', '--trace-opt', '--trace-deopt', '-e', code], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { err += d })
    p.on('error', reject)
    p.on('close', (status) => resolve({ status, out, err }))
  })
}

test('a full GC between two large results leaves the row builder optimized', async () => {
  const r = await child()
  assert.strictEqual(r.status, 0, r.err)
  assert.match(r.out, /@@done/)
  const lines = r.out.split('\n').filter((l) => l.includes('buildRows'))
  // The check means something only if the builder was optimized at all.
  assert.ok(lines.some((l) => /completed (optimizing|compiling)/.test(l)), `buildRows was never optimized:\n${lines.join('\n')}`)
  const dropped = lines.filter((l) => l.includes('weak objects'))
  assert.deepStrictEqual(dropped, [], 'a full GC dropped the optimized row builder')
})
