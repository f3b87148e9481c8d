'use strict'
// hyperiondb-client adapter. The client under test is loaded from HYPERION_CLIENT when set
// (run.js points it at a snapshot of the release build, so that a debug rebuild of the
// repository's .node file during a run cannot change what is measured), else from the
// repository root.
const path = require('node:path')

const CLIENT = process.env.HYPERION_CLIENT || path.resolve(__dirname, '../../../client.js')

// W7 variants: `--client hyperion:v500` etc.
const VARIANTS = {
  v0: { validationIntervalMs: 0 },
  v500: { validationIntervalMs: 500 },
  // There is no "validation off" option yet: mode 'any' on the primary skips the
  // primary check entirely, so it stands in as the no-validation baseline.
  off: { mode: 'any' },
}

function version() {
  const pkg = require(path.join(path.dirname(CLIENT), 'package.json'))
  return pkg.version
}

function hostString(h) {
  return `${h.host}:${h.port}`
}

function connect(o) {
  const { createPool } = require(CLIENT)
  const base = {
    hosts: (o.hosts || [o]).map(hostString),
    user: o.user,
    password: o.password,
    database: o.database,
    ...(o.variant ? VARIANTS[o.variant] : {}),
  }
  if (o.variant && !VARIANTS[o.variant]) throw new Error(`unknown hyperion variant ${o.variant}`)
  const pool = createPool({ ...base, poolSize: o.max })

  // The client has no transaction API yet: a transaction needs its statements on one
  // connection, and pool.query may put consecutive statements on different connections.
  // What a user has to do today, and what W5 measures: `max` single-connection pools with
  // an app-side checkout queue (like pg's pool.connect()).
  let sessions = null
  const free = []
  const waiters = []
  function checkout() {
    if (!sessions) {
      sessions = Array.from({ length: o.max }, () => createPool({ ...base, poolSize: 1 }))
      free.push(...sessions)
    }
    if (free.length) return Promise.resolve(free.pop())
    return new Promise((resolve) => waiters.push(resolve))
  }
  function release(s) {
    const w = waiters.shift()
    if (w) w(s)
    else free.push(s)
  }

  return {
    query: (text, params) => pool.query(text, params),
    async transaction(fn) {
      const s = await checkout()
      try {
        await s.query('begin')
        let result
        try {
          result = await fn({ query: (text, params) => s.query(text, params) })
          await s.query('commit')
        } catch (e) {
          await s.query('rollback').catch(() => {})
          throw e
        }
        return result
      } finally {
        release(s)
      }
    },
    async close() {
      await pool.end()
      if (sessions) await Promise.all(sessions.map((s) => s.end()))
    },
  }
}

module.exports = {
  name: 'hyperion',
  label: 'hyperiondb-client',
  runtime: 'node',
  int8: 'bigint', // int8 must come back as BigInt
  multiHost: true, // follows the primary across a failover by itself
  version,
  connect,
}
