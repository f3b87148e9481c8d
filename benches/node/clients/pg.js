'use strict'
// node-postgres, driven as its users drive it: pg.Pool, pool.query(text, params),
// transactions on a client from pool.connect().
const pg = require('pg')

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
  connect,
}
