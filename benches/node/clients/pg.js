'use strict'
// node-postgres, driven as its users drive it: pg.Pool, pool.query(text, params),
// transactions on a client from pool.connect().
const pg = require('pg')

function connect(o) {
  if (o.hosts) throw new Error('pg has no multi-host support')
  const pool = new pg.Pool({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database, max: o.max })
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
  version: () => require('pg/package.json').version,
  connect,
}
