'use strict'
// hyperiondb-client: the hand-written entry point. A thin layer over the native binding:
// argument checks, AbortSignal, and the logger. Errors come from the native layer already
// built (code, server fields, non-enumerable query). Everything that must be fast or correct
// under concurrency, and every policy, lives in Rust (see DESIGN.md).

const native = require('./loader.js')
const { rowsOf } = require('./rows.js')
const { Listening, notify } = require('./listen.js')

function configError(message) {
  const err = new TypeError(message)
  err.code = 'INVALID_CONFIG'
  return err
}

function optionalInt(opts, name, min = 0, max = 0xffffffff) {
  const v = opts[name]
  if (v === undefined || v === null) return undefined
  if (!Number.isInteger(v) || v < min || v > max) {
    throw configError(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`)
  }
  return v
}

// The largest poolSize, as the pool checks it (MAX_POOL_SIZE in pool/src/pool.rs).
const MAX_POOL_SIZE = native.maxPoolSize()

function optionalString(opts, name) {
  const v = opts[name]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw configError(`${name} must be a string`)
  return v
}

const MODES = ['read-write', 'read-only', 'prefer-standby', 'any']

// A certificate or key option: a file path or PEM text (string), or PEM text (Buffer).
function optionalPem(opts, name, prefix = '') {
  const v = opts[name]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string' && !Buffer.isBuffer(v)) throw configError(`${prefix}${name} must be a string or a Buffer`)
  return v
}

// node-postgres's `ssl`: a boolean, or `{ ca, cert, key, rejectUnauthorized, servername }`
// (mapped onto sslmode and the rest in Rust: napi/src/options.rs).
function pgSsl(ssl) {
  if (ssl === undefined || ssl === null) return undefined
  if (typeof ssl === 'boolean') return ssl
  if (typeof ssl !== 'object') throw configError('ssl must be a boolean or an object')
  const ca = ssl.ca === undefined || ssl.ca === null ? undefined : Array.isArray(ssl.ca) ? ssl.ca : [ssl.ca]
  if (ca !== undefined && !ca.every((c) => typeof c === 'string' || Buffer.isBuffer(c))) {
    throw configError('ssl.ca must be a string, a Buffer or an array of them')
  }
  if (ssl.rejectUnauthorized !== undefined && typeof ssl.rejectUnauthorized !== 'boolean') {
    throw configError('ssl.rejectUnauthorized must be a boolean')
  }
  return {
    names: Object.keys(ssl),
    ca,
    cert: optionalPem(ssl, 'cert', 'ssl.'),
    key: optionalPem(ssl, 'key', 'ssl.'),
    rejectUnauthorized: ssl.rejectUnauthorized,
    servername: optionalString(ssl, 'servername'),
  }
}

// Type checks only: which names exist, the defaults, and how the options, a connection
// string and the PG* environment combine are decided in Rust (napi/src/options.rs).
function nativeOptions(opts) {
  if (typeof opts === 'string') opts = { connectionString: opts }
  if (opts === null || typeof opts !== 'object') throw configError('createPool takes an options object or a connection string')
  let hosts = typeof opts.hosts === 'string' ? [opts.hosts] : opts.hosts ?? undefined
  if (hosts !== undefined && (!Array.isArray(hosts) || hosts.length === 0 || !hosts.every((h) => typeof h === 'string' && h.length > 0))) {
    throw configError('hosts must be a host string or a non-empty array of host strings')
  }
  if (opts.user !== undefined && opts.user !== null && (typeof opts.user !== 'string' || opts.user === '')) {
    throw configError('user must be a non-empty string')
  }
  if (opts.mode !== undefined && !MODES.includes(opts.mode)) {
    throw configError(`mode must be one of ${MODES.map((m) => `'${m}'`).join(', ')}`)
  }
  if (opts.logger !== undefined && typeof opts.logger !== 'function') throw configError('logger must be a function')
  if (opts.onEvent !== undefined && typeof opts.onEvent !== 'function') throw configError('onEvent must be a function')
  if (opts.onNotice !== undefined && typeof opts.onNotice !== 'function') throw configError('onNotice must be a function')
  const retry = opts.retry ?? {}
  if (typeof retry !== 'object') throw configError('retry must be an object')
  return {
    names: Object.keys(opts),
    connectionString: optionalString(opts, 'connectionString'),
    hosts,
    port: optionalInt(opts, 'port', 1),
    user: optionalString(opts, 'user'),
    password: optionalString(opts, 'password'),
    database: optionalString(opts, 'database'),
    applicationName: optionalString(opts, 'applicationName'),
    mode: opts.mode,
    poolSize: optionalInt(opts, 'poolSize', 1, MAX_POOL_SIZE),
    connectTimeoutMs: optionalInt(opts, 'connectTimeoutMs', 1),
    acquireTimeoutMs: optionalInt(opts, 'acquireTimeoutMs', 0),
    statementTimeoutMs: optionalInt(opts, 'statementTimeoutMs', 0),
    validationIntervalMs: optionalInt(opts, 'validationIntervalMs', 0),
    retryMaxAttempts: optionalInt(retry, 'maxAttempts', 1),
    retryBaseDelayMs: optionalInt(retry, 'baseDelayMs', 0),
    retryMaxDelayMs: optionalInt(retry, 'maxDelayMs', 0),
    pipelineDepth: optionalInt(opts, 'pipelineDepth', 1),
    statementCacheSize: optionalInt(opts, 'statementCacheSize', 1),
    idleTimeoutMs: optionalInt(opts, 'idleTimeoutMs', 0),
    minConnections: optionalInt(opts, 'minConnections', 0),
    maxLifetimeMs: optionalInt(opts, 'maxLifetimeMs', 0),
    maxProtocolVersion: optionalString(opts, 'maxProtocolVersion'),
    sslmode: optionalString(opts, 'sslmode'),
    sslrootcert: optionalPem(opts, 'sslrootcert'),
    sslcert: optionalPem(opts, 'sslcert'),
    sslkey: optionalPem(opts, 'sslkey'),
    sslnegotiation: optionalString(opts, 'sslnegotiation'),
    channelBinding: optionalString(opts, 'channelBinding'),
    requireAuth: optionalString(opts, 'requireAuth'),
    ssl: pgSsl(opts.ssl),
  }
}

const ISOLATIONS = ['read-committed', 'repeatable-read', 'serializable']

// What transaction(cb) retries (the pool's retry policy, in Rust: napi/src/retry.rs).
function retryableInTransaction(e) {
  return e !== null && typeof e === 'object' && typeof e.code === 'string' && native.retryableInTransaction(e.code)
}

function argumentError(message) {
  const err = new TypeError(message)
  err.code = 'INVALID_ARGUMENT'
  return err
}

function checkIsolation(options) {
  const isolation = options && options.isolation
  if (isolation !== undefined && !ISOLATIONS.includes(isolation)) {
    throw argumentError(`isolation must be one of ${ISOLATIONS.map((i) => `'${i}'`).join(', ')}`)
  }
  return isolation
}

const NO_OPTIONS = Object.freeze({})

// The third argument of query(): `{ retry, timeoutMs, signal, rowMode }`.
function queryOptions(options) {
  if (options === undefined || options === null) return NO_OPTIONS
  if (typeof options !== 'object') throw argumentError('query options must be an object')
  const { timeoutMs, signal, rowMode } = options
  if (rowMode !== undefined && rowMode !== 'array' && rowMode !== 'object') {
    throw argumentError(`rowMode must be 'array' or 'object', got ${String(rowMode)}`)
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= 2147483647)) {
    throw argumentError(`timeoutMs must be a number greater than 0 and at most 2147483647, got ${String(timeoutMs)}`)
  }
  if (signal !== undefined && !(signal !== null && typeof signal === 'object' && typeof signal.aborted === 'boolean' &&
      typeof signal.addEventListener === 'function')) {
    throw argumentError('signal must be an AbortSignal')
  }
  return { retry: options.retry === undefined ? undefined : Boolean(options.retry), timeoutMs, signal, arrays: rowMode === 'array' }
}

// The third argument of insert(): `{ idempotency, conflictTarget, timeoutMs, signal }`.
function insertOptions(options) {
  const { timeoutMs, signal } = queryOptions(options)
  const idempotency = Boolean(options && options.idempotency)
  let conflictTarget = null
  if (idempotency) {
    const t = options.conflictTarget ?? '_id'
    conflictTarget = typeof t === 'string' ? [t] : t
    if (!Array.isArray(conflictTarget) || !conflictTarget.every((c) => typeof c === 'string')) {
      throw argumentError('conflictTarget must be a column name or an array of column names')
    }
  } else if (options && options.conflictTarget !== undefined) {
    throw argumentError('conflictTarget applies only with idempotency: true')
  }
  // An idempotent insert can run twice harmlessly, so it is retried like a read.
  return { conflictTarget, query: { retry: idempotency || undefined, timeoutMs, signal } }
}

// One 'abort' listener per signal, however many queries use it: the queries a signal is
// stopping right now, by signal. A request-scoped AbortController reused for every query
// of the request registers one listener, and nothing is left behind when it is collected.
const aborting = new WeakMap()

function watchSignal(signal, handle) {
  let handles = aborting.get(signal)
  if (handles === undefined) {
    handles = new Set()
    aborting.set(signal, handles)
    signal.addEventListener('abort', () => {
      for (const h of handles) h.abort()
      handles.clear()
    }, { once: true })
  }
  handles.add(handle)
  return handles
}

// An abort reads as one in Node: name 'AbortError', the signal's reason as `cause`.
function abortError(err, signal) {
  Object.defineProperty(err, 'name', { value: 'AbortError', configurable: true, writable: true })
  err.cause = signal.reason
  return err
}

// Runs `call(timeoutMs, abortHandle)` (a native query) with the stop conditions of `opts`.
// An abort's error is made an AbortError.
async function stoppable(call, opts, sql) {
  const { timeoutMs, signal } = opts
  if (signal === undefined) return call(timeoutMs, undefined)
  if (signal.aborted) {
    const err = new Error('the query was aborted before it was sent')
    err.code = 'ABORT_ERR'
    Object.defineProperty(err, 'query', { value: sql, enumerable: false })
    throw abortError(err, signal)
  }
  const handle = new native.AbortHandle()
  const handles = watchSignal(signal, handle)
  try {
    return await call(timeoutMs, handle)
  } catch (e) {
    throw e !== null && typeof e === 'object' && e.code === 'ABORT_ERR' ? abortError(e, signal) : e
  } finally {
    handles.delete(handle)
  }
}

/**
 * A transaction on one dedicated connection, from `pool.begin()`. Call `commit()` or
 * `rollback()`; one abandoned without either is rolled back and its connection destroyed
 * when it is garbage-collected.
 */
class Transaction {
  #native
  #logger
  #finished = false

  constructor(native, logger) {
    this.#native = native
    this.#logger = logger
  }

  get finished() {
    return this.#finished
  }

  /**
   * Runs one statement in the transaction. `options.timeoutMs` / `options.signal` cancel it
   * on the server, which aborts the transaction (roll it back).
   */
  async query(sql, params, options) {
    if (typeof sql !== 'string') throw argumentError('query text must be a string')
    if (params !== undefined && params !== null && !Array.isArray(params)) throw argumentError('query parameters must be an array')
    const opts = queryOptions(options)
    const logger = this.#logger
    const started = logger ? performance.now() : 0
    try {
      const arrays = opts.arrays === true
      const rows = await stoppable(async (timeoutMs, abort) => {
        const r = await this.#native.query(sql, params ?? [], timeoutMs, abort, arrays)
        return r.rest ? await rowsOf(r, arrays) : rowsOf(r, arrays)
      }, opts, sql)
      if (logger) logQuery(logger, sql, started, rows, undefined)
      return rows
    } catch (e) {
      if (logger) logQuery(logger, sql, started, undefined, e)
      throw e
    }
  }

  async commit() {
    this.#finished = true
    await this.#native.commit()
  }

  async rollback() {
    this.#finished = true
    await this.#native.rollback()
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

class Pool {
  #native
  #logger
  #maxAttempts
  #closed = false

  constructor(opts) {
    const n = nativeOptions(opts)
    this.#native = new native.NativePool(n)
    for (const w of this.#native.warnings()) process.emitWarning(w, { code: 'HYPERIONDB_CONFIG' })
    if (typeof opts === 'string') opts = {}
    this.#logger = opts.logger
    if (opts.onEvent) {
      const hook = opts.onEvent
      // What the hook throws or rejects is ignored, as for the logger.
      this.#native.onEvent((event) => {
        try {
          const r = hook(event)
          if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, ignore)
        } catch {}
      })
    }
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
    return new Transaction(await this.#native.begin(isolation), this.#logger)
  }

  /**
   * Runs `cb(tx)` in a transaction: BEGIN, then COMMIT, or ROLLBACK when it throws.
   * Retries the whole callback on serialization failures and deadlocks (40001/40P01), on
   * 25006 and on connection failures before COMMIT, up to `options.maxAttempts` (default:
   * the pool's retry.maxAttempts). A COMMIT whose outcome is unknown throws code 'IN_DOUBT'
   * and is never retried.
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
        if (!tx.finished) await tx.rollback().catch(() => {})
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
  async query(sql, params, options) {
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
    const opts = queryOptions(options)
    if (this.#closed) throw this.#closedError()
    const logger = this.#logger
    const started = logger ? performance.now() : 0
    try {
      let rows
      if (opts === NO_OPTIONS) {
        // The common case, without the extra async frame of #run (W1/W2 pay per query).
        const r = await this.#native.query(sql, params ?? [])
        rows = r.rest ? await rowsOf(r) : rowsOf(r)
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

  async #run(sql, params, opts, timeoutMs, abort) {
    const arrays = opts.arrays === true
    const r = await this.#native.query(sql, params ?? [], opts.retry, timeoutMs, abort, arrays)
    return r.rest ? await rowsOf(r, arrays) : rowsOf(r, arrays)
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

// One query's event for the logger, `{ sql, durationMs, rowCount }` or `{ sql, durationMs,
// error }`. Its errors are ignored, as documented: thrown, or rejected by an async logger (an
// unhandled rejection would end the process).
function logQuery(logger, sql, started, rows, error) {
  const durationMs = performance.now() - started
  const event = error === undefined ? { sql, durationMs, rowCount: rows.length } : { sql, durationMs, error }
  try {
    const r = logger(event)
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, ignore)
  } catch {}
}

function ignore() {}

function createPool(options) {
  return new Pool(options)
}

function hello(name) {
  return native.hello(name)
}

module.exports = { createPool, hello, Pool, Transaction }
