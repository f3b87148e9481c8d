'use strict'
// A Kysely dialect over hyperiondb-client, test-only: Kysely's own PostgreSQL adapter, query
// compiler and introspector, and a driver of ours on `pool.connect()`. A connection runs
// Kysely's compiled SQL with `c.query(sql, params)` (our result array is the rows; `rowCount`
// becomes numAffectedRows for INSERT/UPDATE/DELETE/MERGE, as Kysely's pg driver does), streams
// with `c.stream`, and transactions are BEGIN/COMMIT/ROLLBACK (and savepoints) on it.
//
//   const db = new Kysely({ dialect: new HyperionDialect({ pool }) })

const { CompiledQuery, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } = require('kysely')

const AFFECTS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

class HyperionConnection {
  #c
  #options
  constructor(c, options) {
    this.#c = c
    this.#options = options
  }

  async executeQuery(compiled) {
    const rows = await this.#c.query(compiled.sql, [...compiled.parameters], this.#options)
    const result = { rows }
    if (AFFECTS.has(rows.command) && rows.rowCount !== null) result.numAffectedRows = BigInt(rows.rowCount)
    return result
  }

  async *streamQuery(compiled, chunkSize = 100) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new Error('chunkSize must be a positive integer')
    let rows = []
    for await (const row of this.#c.stream(compiled.sql, [...compiled.parameters], { ...this.#options, batchSize: chunkSize })) {
      rows.push(row)
      if (rows.length === chunkSize) {
        yield { rows }
        rows = []
      }
    }
    if (rows.length) yield { rows }
  }

  /** @internal the checked-out connection */
  get checkedOut() { return this.#c }
}

class HyperionDriver {
  #pool
  #options
  #broken = new WeakSet()
  constructor({ pool, queryOptions }) {
    this.#pool = pool
    this.#options = queryOptions
  }

  async init() {}

  async acquireConnection() {
    return new HyperionConnection(await this.#pool.connect(), this.#options)
  }

  async beginTransaction(conn, settings) {
    let sql = 'begin'
    if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`
    if (settings.accessMode) sql += ` ${settings.accessMode}`
    await conn.executeQuery(CompiledQuery.raw(sql))
  }

  async commitTransaction(conn) {
    const { rows } = await conn.executeQuery(CompiledQuery.raw('commit'))
    // COMMIT of a transaction an error aborted completes as ROLLBACK: not a success.
    if (rows.command === 'ROLLBACK') throw Object.assign(new Error('transaction was aborted: COMMIT rolled back'), { code: '25P02' })
  }

  async rollbackTransaction(conn) {
    try {
      await conn.executeQuery(CompiledQuery.raw('rollback'))
    } catch (e) {
      this.#broken.add(conn) // in an unknown state: destroyed at release
      throw e
    }
  }

  async savepoint(conn, name) {
    await conn.executeQuery(CompiledQuery.raw(`savepoint ${ident(name)}`))
  }

  async rollbackToSavepoint(conn, name) {
    await conn.executeQuery(CompiledQuery.raw(`rollback to savepoint ${ident(name)}`))
  }

  async releaseSavepoint(conn, name) {
    await conn.executeQuery(CompiledQuery.raw(`release savepoint ${ident(name)}`))
  }

  async releaseConnection(conn) {
    await conn.checkedOut.release(this.#broken.has(conn) ? new Error('rollback failed') : undefined)
  }

  async destroy() {
    // The pool is the application's: it ends it.
  }
}

const ident = (name) => `"${String(name).replace(/"/g, '""')}"`

/** `new Kysely({ dialect: new HyperionDialect({ pool, queryOptions }) })`; `queryOptions`: the third argument of every query. */
class HyperionDialect {
  #config
  constructor(config) { this.#config = config }
  createAdapter() { return new PostgresAdapter() }
  createDriver() { return new HyperionDriver(this.#config) }
  createQueryCompiler() { return new PostgresQueryCompiler() }
  createIntrospector(db) { return new PostgresIntrospector(db) }
}

module.exports = { HyperionDialect }
