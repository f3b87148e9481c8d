'use strict'
// node-postgres, driven as its users drive it: pg.Pool, pool.query(text, params),
// transactions on a client from pool.connect(). Streams (S1): pg-query-stream
// (`for await (const row of client.query(new QueryStream(text, params, { batchSize })))`), or
// with the variant pg:cursor, pg-cursor (`cursor.read(batchSize)` until empty). COPY (S2, S3):
// pg-copy-streams' from() / to() on a client from pool.connect().
const pg = require('pg')
const { pipeline } = require('node:stream/promises')

// W8 (o.ha): what a careful node-postgres user sets for HA. A 5 s connect timeout (also the
// wait for a pooled client), a server-side statement_timeout of 5 s, a client-side
// query_timeout of 6 s (the only thing that ends a call to a server that never answers: a
// partitioned or hung primary), and TCP keepalive from 5 s of idleness.
const HA = { connectionTimeoutMillis: 5000, statement_timeout: 5000, query_timeout: 6000, keepAlive: true, keepAliveInitialDelayMillis: 5000, idleTimeoutMillis: 30000 }

// TLS (run.js --tls): ssl: { ca } (rejectUnauthorized defaults to true, and Node checks the
// host name), as node-postgres documents it.
const tlsOptions = (t) => (t ? { ssl: { ca: require('node:fs').readFileSync(t.ca, 'utf8') } } : {})

function connect(o) {
  if (o.hosts) throw new Error('pg has no multi-host support')
  const pool = new pg.Pool({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database, max: o.max, ...tlsOptions(o.tls), ...(o.ha ? HA : {}) })
  // An idle client that loses its server emits 'error' on the pool; without a listener
  // that would crash the process (W6 stops the server under the pool).
  pool.on('error', () => {})
  return {
    query: (text, params) => pool.query(text, params).then((r) => r.rows),
    async transaction(fn) {
      const c = await pool.connect()
      let broken
      try {
        await c.query('BEGIN')
        let result
        try {
          result = await fn({ query: (text, params) => c.query(text, params).then((r) => r.rows) })
          await c.query('COMMIT')
        } catch (e) {
          await c.query('ROLLBACK').catch((err) => { broken = err })
          throw e
        }
        return result
      } finally {
        c.release(broken)
      }
    },
    async stream(text, params, { batchSize }, onRow) {
      const c = await pool.connect()
      try {
        if (o.variant === 'cursor') {
          const Cursor = require('pg-cursor')
          const cursor = c.query(new Cursor(text, params))
          for (;;) {
            const rows = await cursor.read(batchSize)
            if (!rows.length) break
            for (const r of rows) onRow(r)
          }
          await cursor.close()
        } else {
          const QueryStream = require('pg-query-stream')
          for await (const r of c.query(new QueryStream(text, params, { batchSize }))) onRow(r)
        }
      } finally {
        c.release()
      }
    },
    async copyFrom(text, source) {
      const c = await pool.connect()
      try {
        const s = c.query(require('pg-copy-streams').from(text))
        await pipeline(source, s)
        return s.rowCount
      } finally {
        c.release()
      }
    },
    async copyTo(text, onChunk) {
      const c = await pool.connect()
      try {
        for await (const chunk of c.query(require('pg-copy-streams').to(text))) onChunk(chunk)
      } finally {
        c.release()
      }
    },
    close: () => pool.end(),
  }
}

module.exports = {
  name: 'pg',
  label: 'node-postgres',
  runtime: 'node',
  int8: 'string',
  multiHost: false,
  HA,
  version: () => require('pg/package.json').version,
  // S1-S3: the helper packages' versions, for the record.
  helpers: () => Object.fromEntries(['pg-cursor', 'pg-query-stream', 'pg-copy-streams'].map((n) => [n, require(`${n}/package.json`).version])),
  connect,
}
