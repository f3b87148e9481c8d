'use strict'
// Drizzle over hyperiondb-client, test-only: Drizzle's generic `drizzle-orm/pg-proxy` driver
// (a callback `(sql, params, method) => ({ rows })`, rows as arrays for method 'all', which is
// our rowMode 'array'), plus the one thing pg-proxy leaves out, `db.transaction`: it runs on a
// connection checked out with `pool.connect()` (BEGIN ... COMMIT, or ROLLBACK when the callback
// throws or calls `tx.rollback()`), as Drizzle's node-postgres driver does with pg's
// `pool.connect()`. Nested transactions (savepoints) are not supported, as in pg-proxy.
//
//   const db = drizzleFor(pool)            // pool: createPool(...), or a checked-out connection
//   await db.select().from(users).where(eq(users.id, 1))
//   await db.transaction(async (tx) => { await tx.insert(users).values({ ... }) })

const { sql } = require('drizzle-orm')
const { PgDialect } = require('drizzle-orm/pg-core')
const { PgRemoteDatabase, PgRemoteSession, PgProxyTransaction } = require('drizzle-orm/pg-proxy')

// The pg-proxy callback over anything with our query(sql, params, options): `rows` is our
// result array, so `command` and `rowCount` stay on it (an update without RETURNING resolves
// to it).
function callbackOn(queryable, queryOptions) {
  const arrays = { ...queryOptions, rowMode: 'array' }
  return async (text, params, method) => ({ rows: await queryable.query(text, params, method === 'all' ? arrays : queryOptions) })
}

class PoolSession extends PgRemoteSession {
  constructor(pool, dialect, queryOptions) {
    super(callbackOn(pool, queryOptions), dialect, undefined, {})
    this.pool = pool
    this.queryOptions = queryOptions
  }

  async transaction(cb, config) {
    const c = await this.pool.connect()
    const session = new PgRemoteSession(callbackOn(c, this.queryOptions), this.dialect, undefined, {})
    const tx = new PgProxyTransaction(this.dialect, session, undefined)
    let broken // a ROLLBACK that failed: the connection is destroyed, not given back
    try {
      await tx.execute(sql`begin${config ? sql` ${tx.getTransactionConfigSQL(config)}` : undefined}`)
      let result
      try {
        result = await cb(tx)
      } catch (e) {
        // A failed ROLLBACK leaves the connection in an unknown state: destroy it.
        await tx.execute(sql`rollback`).catch((err) => { broken = err })
        throw e
      }
      // COMMIT of a transaction an error aborted completes as ROLLBACK: not a success.
      const done = await tx.execute(sql`commit`)
      if (done.command === 'ROLLBACK') throw Object.assign(new Error('transaction was aborted: COMMIT rolled back'), { code: '25P02' })
      return result
    } finally {
      await c.release(broken)
    }
  }
}

/** A Drizzle database on `pool` (`queryOptions`: the third argument of every query, e.g. `{ prepare: false }`). */
function drizzleFor(pool, queryOptions) {
  const dialect = new PgDialect()
  return new PgRemoteDatabase(dialect, new PoolSession(pool, dialect, queryOptions), undefined)
}

module.exports = { drizzleFor }
