'use strict'
// hyperiondb-client: the hand-written entry point. A thin layer over the native binding:
// argument checks, option defaults, error objects with SQLSTATE codes, and the logger.
// Everything that must be fast or correct under concurrency lives in Rust (see DESIGN).

const native = require('./index.js')
const { rowsOf } = require('./rows.js')

const MARKER = '\u0001hyperion:'

// The other result design (row objects built in Rust), kept for the benchmark's comparison.
const OBJECTS = process.env.HYPERION_ROWS === 'objects'

const SERVER_FIELDS = [
  'severity', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where',
  'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'line', 'routine',
]

// Turns the native layer's error into an Error with `.code` (SQLSTATE or a client code)
// and the server's fields; the query text is attached non-enumerably.
function toError(e, sql) {
  if (!(e instanceof Error) || typeof e.message !== 'string' || !e.message.startsWith(MARKER)) {
    return e
  }
  let info
  try {
    info = JSON.parse(e.message.slice(MARKER.length))
  } catch {
    return e
  }
  const err = new Error(info.message)
  err.code = info.code
  for (const k of SERVER_FIELDS) {
    if (info[k] !== undefined) err[k] = info[k]
  }
  if (sql !== undefined) Object.defineProperty(err, 'query', { value: sql, enumerable: false })
  return err
}

function configError(message) {
  const err = new TypeError(message)
  err.code = 'INVALID_CONFIG'
  return err
}

function optionalInt(opts, name, min = 0) {
  const v = opts[name]
  if (v === undefined || v === null) return undefined
  if (!Number.isInteger(v) || v < min || v > 0xffffffff) {
    throw configError(`${name} must be an integer >= ${min}, got ${String(v)}`)
  }
  return v
}

function optionalString(opts, name) {
  const v = opts[name]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw configError(`${name} must be a string`)
  return v
}

const MODES = ['read-write', 'read-only', 'prefer-standby', 'any']

function nativeOptions(opts) {
  if (opts === null || typeof opts !== 'object') throw configError('createPool takes an options object')
  const hosts = typeof opts.hosts === 'string' ? [opts.hosts] : opts.hosts
  if (!Array.isArray(hosts) || hosts.length === 0 || !hosts.every((h) => typeof h === 'string' && h.length > 0)) {
    throw configError('hosts must be a non-empty array of host strings')
  }
  if (typeof opts.user !== 'string' || opts.user === '') throw configError('user must be a non-empty string')
  if (opts.mode !== undefined && !MODES.includes(opts.mode)) {
    throw configError(`mode must be one of ${MODES.map((m) => `'${m}'`).join(', ')}`)
  }
  if (opts.logger !== undefined && typeof opts.logger !== 'function') throw configError('logger must be a function')
  const retry = opts.retry ?? {}
  if (typeof retry !== 'object') throw configError('retry must be an object')
  return {
    hosts,
    port: optionalInt(opts, 'port', 1),
    user: opts.user,
    password: optionalString(opts, 'password'),
    database: optionalString(opts, 'database'),
    applicationName: optionalString(opts, 'applicationName'),
    mode: opts.mode,
    poolSize: optionalInt(opts, 'poolSize', 1),
    connectTimeoutMs: optionalInt(opts, 'connectTimeoutMs', 1),
    acquireTimeoutMs: optionalInt(opts, 'acquireTimeoutMs', 0),
    statementTimeoutMs: optionalInt(opts, 'statementTimeoutMs', 0),
    validationIntervalMs: optionalInt(opts, 'validationIntervalMs', 0),
    retryMaxAttempts: optionalInt(retry, 'maxAttempts', 0),
    retryBaseDelayMs: optionalInt(retry, 'baseDelayMs', 0),
    retryMaxDelayMs: optionalInt(retry, 'maxDelayMs', 0),
    pipelineDepth: optionalInt(opts, 'pipelineDepth', 1),
  }
}

const ISOLATIONS = ['read-committed', 'repeatable-read', 'serializable']

// What transaction(cb) retries: serialization failures and deadlocks, a write refused by a
// node that turned read-only, and connection failures before COMMIT. Never IN_DOUBT.
const RETRYABLE_IN_TRANSACTION = new Set(['40001', '40P01', '25006', 'CONNECTION_CLOSED', '57P01', '57P02', '57P03'])

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

/**
 * A transaction on one dedicated connection, from `pool.begin()`. Call `commit()` or
 * `rollback()`; one abandoned without either is rolled back and its connection destroyed
 * when it is garbage-collected.
 */
class Transaction {
  #native
  #finished = false

  constructor(native) {
    this.#native = native
  }

  get finished() {
    return this.#finished
  }

  async query(sql, params) {
    if (typeof sql !== 'string') throw argumentError('query text must be a string')
    if (params !== undefined && params !== null && !Array.isArray(params)) throw argumentError('query parameters must be an array')
    try {
      const r = await this.#native.query(sql, params ?? [])
      return r.rest ? await rowsOf(r) : rowsOf(r)
    } catch (e) {
      throw toError(e, sql)
    }
  }

  async commit() {
    this.#finished = true
    try {
      await this.#native.commit()
    } catch (e) {
      throw toError(e, 'COMMIT')
    }
  }

  async rollback() {
    this.#finished = true
    try {
      await this.#native.rollback()
    } catch (e) {
      throw toError(e, 'ROLLBACK')
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

class Pool {
  #native
  #logger
  #retry
  #closed = false

  constructor(opts) {
    const n = nativeOptions(opts)
    try {
      this.#native = new native.NativePool(n)
    } catch (e) {
      throw toError(e)
    }
    this.#logger = opts.logger
    this.#retry = {
      maxAttempts: n.retryMaxAttempts ?? 3,
      baseDelayMs: n.retryBaseDelayMs ?? 50,
      maxDelayMs: n.retryMaxDelayMs ?? 1000,
    }
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
    try {
      return new Transaction(await this.#native.begin(isolation))
    } catch (e) {
      throw toError(e, 'BEGIN')
    }
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
    const maxAttempts = options && options.maxAttempts !== undefined ? options.maxAttempts : this.#retry.maxAttempts
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw argumentError('maxAttempts must be an integer >= 1')
    for (let attempt = 1; ; attempt++) {
      const tx = await this.begin(options)
      let result
      try {
        result = await cb(tx)
      } catch (e) {
        if (!tx.finished) await tx.rollback().catch(() => {})
        if (attempt >= maxAttempts || !RETRYABLE_IN_TRANSACTION.has(e && e.code)) throw e
        await sleep(this.#backoff(attempt))
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
        if (e.code === 'IN_DOUBT' || attempt >= maxAttempts || !RETRYABLE_IN_TRANSACTION.has(e.code)) throw e
        await sleep(this.#backoff(attempt))
      }
    }
  }

  #backoff(attempt) {
    const full = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1))
    return full / 2 + Math.random() * (full / 2)
  }

  /**
   * Runs one statement; resolves to its rows as plain objects keyed by column name.
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
    if (this.#closed) throw this.#closedError()
    const retry = options && options.retry !== undefined ? Boolean(options.retry) : undefined
    const logger = this.#logger
    const started = logger ? performance.now() : 0
    try {
      const r = OBJECTS
        ? await this.#native.queryObjects(sql, params ?? [], retry)
        : await this.#native.query(sql, params ?? [], retry)
      const rows = r.rest ? await rowsOf(r) : rowsOf(r)
      if (logger) log(logger, { sql, durationMs: performance.now() - started, rowCount: rows.length })
      return rows
    } catch (e) {
      const err = toError(e, sql)
      if (logger) log(logger, { sql, durationMs: performance.now() - started, error: err })
      throw err
    }
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
   * Closes the pool: new queries fail at once with "pool is closed"; queries in flight
   * finish on their connections, which are then closed.
   */
  async end() {
    this.#closed = true
    await this.#native.end()
  }
}

function log(logger, event) {
  try {
    logger(event)
  } catch {
    // The logger's errors are ignored, as documented.
  }
}

function createPool(options) {
  return new Pool(options)
}

function hello(name) {
  return native.hello(name)
}

module.exports = { createPool, hello, Pool, Transaction }
