'use strict'
// hyperiondb-client: the hand-written entry point. A thin layer over the native binding:
// argument checks, AbortSignal, and the logger. Errors come from the native layer already
// built (code, server fields, non-enumerable query). Everything that must be fast or correct
// under concurrency, and every policy, lives in Rust (see DESIGN.md).

const native = require('./loader.js')
const { rowsOf } = require('./rows.js')
const { Listening, notify } = require('./listen.js')
const { nativeOptions } = require('./options.js')
const {
  NO_OPTIONS, NO_PARAMS, argumentError, checkIsolation, checkSql, queryOptions, insertOptions, streamOptions,
  stoppable, retryableInTransaction, logQuery, ignore, plainParams,
} = require('./calls.js')
const { queryTrace, connectChannel, eventChannel, nextTraceId, traced } = require('./tracing.js')
const { Dedicated, Transaction, Connection, checkCopyFrom, closeSource } = require('./dedicated.js')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

class Pool {
  #native
  #handle
  #logger
  #maxAttempts
  #closed = false

  constructor(opts) {
    const n = nativeOptions(opts)
    this.#native = new native.NativePool(n)
    this.#handle = this.#native.queryHandle()
    for (const w of this.#native.warnings()) process.emitWarning(w, { code: 'HYPERIONDB_CONFIG' })
    if (typeof opts === 'string') opts = {}
    this.#logger = opts.logger
    const hook = opts.onEvent
    // What the hook throws or rejects is ignored, as for the logger. Registered whether or
    // not there is a hook: 'hyperiondb-client:event' subscribers get the events too.
    this.#native.onEvent((event) => {
      if (eventChannel.hasSubscribers) eventChannel.publish(event)
      if (!hook) return
      try {
        const r = hook(event)
        if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, ignore)
      } catch {}
    })
    if (opts.onNotice) {
      const hook = opts.onNotice
      // Called by the native side just before the query settles; errors ignored.
      this.#native.onNotice((notice) => {
        try {
          const r = hook(notice)
          if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, ignore)
        } catch {}
      })
    }
    this.#maxAttempts = this.#native.retryPolicy().maxAttempts
    this.#listening = new Listening(this.#native, opts)
    this.#hostNames = this.#native.hosts().map((h) => h.host)
  }

  #hostNames

  // A dedicated connection handed out, for 'hyperiondb-client:connect' subscribers.
  #published(kind, conn, started) {
    if (connectChannel.hasSubscribers) {
      const processId = conn.processId() ?? null
      const host = this.#native.connections().find((c) => c.processId === processId)?.host ?? null
      connectChannel.publish({ id: nextTraceId(), kind, host, processId, durationMs: performance.now() - started })
    }
    return conn
  }

  #closedError() {
    const err = new Error('pool is closed')
    err.code = 'POOL_CLOSED'
    return err
  }

  /**
   * Checks out a connection for a transaction and runs BEGIN on it.
   * `options.isolation`: 'read-committed' | 'repeatable-read' | 'serializable'.
   */
  async begin(options) {
    const isolation = checkIsolation(options)
    if (this.#closed) throw this.#closedError()
    const started = performance.now()
    const tx = this.#published('begin', await this.#native.begin(isolation), started)
    return new Transaction(tx, this.#logger, this.#hostNames)
  }

  /**
   * Runs `cb(tx)` in a transaction: BEGIN, then COMMIT, or ROLLBACK when it throws.
   * Retries the whole callback on serialization failures and deadlocks (40001/40P01), on
   * 25006 and on connection failures before COMMIT, up to `options.maxAttempts` (default:
   * the pool's retry.maxAttempts). A COMMIT whose outcome is unknown throws code 'IN_DOUBT'
   * and is never retried; nor is a callback that called tx.commit() or tx.rollback() itself.
   */
  async transaction(cb, options) {
    if (typeof cb !== 'function') throw argumentError('transaction takes a callback')
    checkIsolation(options)
    const maxAttempts = options && options.maxAttempts !== undefined ? options.maxAttempts : this.#maxAttempts
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw argumentError('maxAttempts must be an integer >= 1')
    for (let attempt = 1; ; attempt++) {
      const tx = await this.begin(options)
      let result
      try {
        result = await cb(tx)
      } catch (e) {
        // A callback that ended the transaction itself is never run again: a commit it made
        // (or one in doubt) would be applied twice.
        if (tx.finished) throw e
        await tx.rollback().catch(() => {})
        if (attempt >= maxAttempts || !retryableInTransaction(e)) throw e
        await sleep(this.#native.backoffMs(attempt))
        continue
      }
      if (tx.finished) return result
      try {
        await tx.commit()
        return result
      } catch (e) {
        // IN_DOUBT: the write may have landed. A serialization failure at COMMIT, or a
        // connection that broke before COMMIT was sent (a sent one is IN_DOUBT), is a
        // definite failure and safe to retry.
        if (e.code === 'IN_DOUBT' || attempt >= maxAttempts || !retryableInTransaction(e)) throw e
        await sleep(this.#native.backoffMs(attempt))
      }
    }
  }

  /**
   * Runs one statement; resolves to its rows as plain objects keyed by column name (with
   * `options.rowMode: 'array'`, as arrays in column order). The array also has
   * non-enumerable `command`, `rowCount` and `fields`.
   */
  query(sql, params, options) {
    // The common case (no options, logger or trace subscriber) is the native promise itself,
    // which resolves to the finished rows: no async frame and no extra promise per query
    // (about 6% of W2's client CPU). Everything else, errors included, goes the long way.
    try {
      if (options === undefined && this.#logger === undefined && !this.#closed && typeof sql === 'string' &&
          (params === undefined || Array.isArray(params)) && !queryTrace.hasSubscribers) {
        // The first parameters go as arguments too: V8 reads them here inline, where the
        // native side's napi_get_element would take a generic lookup per element.
        const p = params ?? NO_PARAMS
        return native.queryRows(this.#handle, sql, p, p[0], p[1], p[2], p[3])
      }
    } catch (e) {
      // A Proxy of an array: the long way copies it.
      if (params !== undefined && params !== plainParams(params)) return this.#query(sql, params, options)
      return Promise.reject(e)
    }
    return this.#query(sql, params, options)
  }

  async #query(sql, params, options) {
    if (typeof sql !== 'string') {
      const err = new TypeError('query text must be a string')
      err.code = 'INVALID_ARGUMENT'
      throw err
    }
    if (params !== undefined && params !== null && !Array.isArray(params)) {
      const err = new TypeError('query parameters must be an array')
      err.code = 'INVALID_ARGUMENT'
      throw err
    }
    params = plainParams(params)
    const opts = queryOptions(options)
    if (this.#closed) throw this.#closedError()
    const logger = this.#logger
    const started = logger ? performance.now() : 0
    try {
      let rows
      if (queryTrace.hasSubscribers) {
        rows = await traced(sql, params, null, this.#hostNames, (ctx) =>
          stoppable((timeoutMs, abort) => this.#run(sql, params, opts, timeoutMs, abort, ctx), opts, sql))
      } else if (opts === NO_OPTIONS) {
        const p = params ?? NO_PARAMS
        rows = await native.queryRows(this.#handle, sql, p, p[0], p[1], p[2], p[3])
      } else {
        rows = await stoppable((timeoutMs, abort) => this.#run(sql, params, opts, timeoutMs, abort), opts, sql)
      }
      if (logger) logQuery(logger, sql, started, rows, undefined)
      return rows
    } catch (e) {
      if (logger) logQuery(logger, sql, started, undefined, e)
      throw e
    }
  }

  async #run(sql, params, opts, timeoutMs, abort, ctx) {
    const arrays = opts.arrays === true
    const r = await this.#native.query(sql, params ?? [], opts.retry, timeoutMs, abort, arrays, opts.prepare, ctx !== undefined)
    return r.rest ? await rowsOf(r, arrays, ctx) : rowsOf(r, arrays, ctx)
  }

  /**
   * Inserts one row: `INSERT INTO table (columns of row) VALUES (...) RETURNING *`; resolves
   * to the inserted rows. `table` is 'name', 'schema.name' or ['schema', 'name']; keys whose
   * value is undefined are left out (the column gets its default). With
   * `options.idempotency`, adds `ON CONFLICT (conflictTarget) DO NOTHING` (default target
   * `_id`), so a row that is already there resolves to [], and the insert is retried through
   * a connection failure even when it may have reached the server. `timeoutMs` and `signal`
   * work as for query().
   */
  async insert(table, row, options) {
    const parts = typeof table === 'string' ? table.split('.') : table
    if (!Array.isArray(parts) || parts.length === 0 || !parts.every((p) => typeof p === 'string')) {
      throw argumentError("insert's table must be a string ('name' or 'schema.name') or an array of name parts")
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) throw argumentError("insert's row must be an object")
    const opts = insertOptions(options)
    const columns = []
    const values = []
    for (const k of Object.keys(row)) {
      if (row[k] === undefined) continue
      columns.push(k)
      values.push(row[k])
    }
    const sql = native.insertSql(parts, columns, opts.conflictTarget)
    return this.query(sql, values, opts.query)
  }

  /**
   * Checks out a connection for the caller alone (a `Connection`): `release()` it when done,
   * or use `await using`. Waits up to `acquireTimeoutMs` for one.
   */
  async connect() {
    return (await this.#checkout(NO_OPTIONS))[0]
  }

  /**
   * The rows of `sql` as an async iterable, read `options.batchSize` (default 1000) at a
   * time on a connection of its own, which goes back to the pool when the loop ends.
   */
  stream(sql, params, options) {
    checkSql(sql, params)
    const opts = streamOptions(options)
    return this.#iterateOn(opts, sql, (c) => c.stream(sql, params, options))
  }

  /** `COPY ... FROM STDIN` on a connection of its own (see `Connection#copyFrom`). */
  async copyFrom(sql, source) {
    checkCopyFrom(sql, source)
    native.checkCopy(sql)
    try {
      return await this.#runOn(NO_OPTIONS, sql, (c) => c.copyFrom(sql, source))
    } catch (e) {
      closeSource(source) // no connection for it, say: the COPY's source is closed all the same
      throw e
    }
  }

  /** `COPY ... TO STDOUT` on a connection of its own (see `Connection#copyTo`). */
  copyTo(sql) {
    if (typeof sql !== 'string') throw argumentError('COPY text must be a string')
    native.checkCopy(sql)
    return this.#iterateOn(NO_OPTIONS, sql, (c) => c.copyTo(sql))
  }

  /** Several statements in one round trip (see `Connection#script`). */
  async script(sql, options) {
    if (typeof sql !== 'string') throw argumentError('script text must be a string')
    const opts = queryOptions(options)
    return this.#runOn(opts, sql, (c, waited) =>
      c.script(sql, opts.timeoutMs === undefined ? options : { ...options, timeoutMs: Math.max(1, opts.timeoutMs - waited) }))
  }

  // A connection checked out for one call of its own, and how long that took (ms): the
  // call's `timeoutMs` and `signal` count from the call, the wait for the connection
  // included, and a signal already aborted throws before anything is sent.
  async #checkout(opts, sql) {
    if (this.#closed) throw this.#closedError()
    const started = performance.now()
    const c = await stoppable((timeoutMs, abort) => this.#native.connect(timeoutMs, abort), opts, sql)
    const conn = new Connection(this.#published('connect', c, started), this.#logger, this.#hostNames)
    return [conn, performance.now() - started]
  }

  // `work(c, waited)` on a connection checked out for it, given back when it settles.
  async #runOn(opts, sql, work) {
    const [c, waited] = await this.#checkout(opts, sql)
    try {
      return await work(c, waited)
    } finally {
      await c.release()
    }
  }

  // The items of `iterable(c)` on a connection checked out when the loop starts, given back
  // when it ends (however it ends).
  async *#iterateOn(opts, sql, iterable) {
    const [c] = await this.#checkout(opts, sql)
    try {
      yield* iterable(c)
    } finally {
      await c.release()
    }
  }

  /** `await using pool = createPool(...)`: ended at the block's end. */
  async [Symbol.asyncDispose]() {
    if (!this.#closed) await this.end()
  }

  /** `{ maxSize, size, available, inUse, waiting }` */
  status() {
    return this.#native.status()
  }

  /**
   * Diagnostics: one entry per open connection with its host, backend pid, server
   * version, queries in flight and what the protocol loop knows of its read-only state.
   */
  connections() {
    return this.#native.connections()
  }

  /**
   * What the pool last saw of each host, in configuration order:
   * `[{ host, state, confirmedAt, downSince }]`, `state` one of 'primary', 'standby',
   * 'fenced', 'unreachable', 'unknown'; times in ms since the epoch, or null.
   */
  hosts() {
    return this.#native.hosts().map((h) => ({
      host: h.host,
      state: h.state,
      confirmedAt: h.confirmedAt ?? null,
      downSince: h.downSince ?? null,
    }))
  }

  /**
   * Closes the pool: new queries fail at once with "pool is closed"; queries in flight
   * finish on their connections, which are then closed. With `{ timeoutMs }`, whatever is
   * still in flight after that grace is abandoned (its caller gets an error; a write
   * `IN_DOUBT`) and every socket is closed, so the process can exit.
   */
  async end(options) {
    let timeoutMs
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw argumentError('end takes an options object')
      timeoutMs = options.timeoutMs
      if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 2147483647)) {
        throw argumentError('end: timeoutMs must be a number from 0 to 2147483647')
      }
    }
    this.#closed = true
    await this.#native.end(timeoutMs)
  }

  // LISTEN/NOTIFY: listen.js.
  #listening
  listen(channel, callback) { return this.#listening.listen(channel, callback) }
  notify(channel, payload) { return notify(this, channel, payload) }
}

function createPool(options) {
  return new Pool(options)
}

function hello(name) {
  return native.hello(name)
}

module.exports = { createPool, hello, Pool, Dedicated, Transaction, Connection }
