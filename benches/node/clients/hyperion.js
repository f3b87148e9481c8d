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

// TLS (run.js --tls; BENCH_CONN.tls): { ca: path of the CA's PEM, direct } as its users would
// write it: sslmode verify-full with the CA as sslrootcert; direct: sslnegotiation 'direct'
// (PostgreSQL 17+). tls === false (C1 'plain') turns TLS off explicitly, since the default
// sslmode 'prefer' would use it on a server that offers it.
function tlsOptions(t) {
  if (t === false) return { sslmode: 'disable' }
  if (!t) return {}
  return { sslmode: 'verify-full', sslrootcert: t.ca, sslnegotiation: t.direct ? 'direct' : 'postgres' }
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
    ...tlsOptions(o.tls),
    ...(o.variant && VARIANTS[o.variant] ? VARIANTS[o.variant] : {}),
    ...(o.ha ? { mode: 'read-write' } : {}),
  }
  if (o.variant && !VARIANTS[o.variant] && !o.ha) throw new Error(`unknown hyperion variant ${o.variant}`)
  const pool = createPool({ ...base, poolSize: o.max })

  return {
    query: (text, params) => pool.query(text, params),
    // The way a user writes it: pool.transaction runs BEGIN/COMMIT on one dedicated
    // connection (an exclusive lease) and rolls back on a throw. No retries, as for the peers.
    transaction: (fn) => pool.transaction((tx) => fn({ query: (text, params) => tx.query(text, params) }), { maxAttempts: 1 }),
    // S1-S3 (issue 19): pool.stream(sql, params, { batchSize }) is an async iterable of rows;
    // pool.copyFrom(sql, source) takes a Readable, an async iterable or a Buffer and resolves
    // to the row count; pool.copyTo(sql) is an async iterable of Buffers.
    async stream(text, params, { batchSize }, onRow) {
      if (typeof pool.stream !== 'function') throw Object.assign(new Error('this build has no pool.stream'), { code: 'NOT_AVAILABLE' })
      for await (const r of pool.stream(text, params, { batchSize })) onRow(r)
    },
    copyFrom(text, source) {
      if (typeof pool.copyFrom !== 'function') throw Object.assign(new Error('this build has no pool.copyFrom'), { code: 'NOT_AVAILABLE' })
      return pool.copyFrom(text, source)
    },
    async copyTo(text, onChunk) {
      if (typeof pool.copyTo !== 'function') throw Object.assign(new Error('this build has no pool.copyTo'), { code: 'NOT_AVAILABLE' })
      for await (const chunk of pool.copyTo(text)) onChunk(chunk)
    },
    async close() {
      await pool.end()
    },
  }
}

module.exports = {
  name: 'hyperion',
  label: 'hyperiondb-client',
  runtime: 'node',
  int8: 'bigint', // int8 must come back as BigInt
  // W8 (o.ha): createPool({ hosts: all three, mode 'read-write', poolSize 4 }) with every
  // other option at its default (no timeouts set by the benchmark).
  HA: { mode: 'read-write' },
  multiHost: true, // follows the primary across a failover by itself
  version,
  connect,
}
