'use strict'
// hyperiondb-client: the hand-written entry point. A thin layer over the native binding:
// argument checks, AbortSignal, and the logger. Errors come from the native layer already
// built (code, server fields, non-enumerable query). Everything that must be fast or correct
// under concurrency, and every policy, lives in Rust (see DESIGN.md).

const dc = require('node:diagnostics_channel')
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
  if (opts.prepare !== undefined && typeof opts.prepare !== 'boolean') throw configError('prepare must be a boolean')
  const types = opts.types ?? {}
  if (types === null || typeof types !== 'object') throw configError('types must be an object, e.g. { int8: \'number\' }')
  for (const k of Object.keys(types)) if (k !== 'int8') throw configError(`unknown types option ${JSON.stringify(k)}: only int8 is supported`)
  if (types.int8 !== undefined && !['bigint', 'number', 'string'].includes(types.int8)) {
    throw configError(`types.int8 must be 'bigint', 'number' or 'string', got ${String(types.int8)}`)
  }
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
    prepare: opts.prepare,
    int8: types.int8,
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
  const { timeoutMs, signal, rowMode, prepare } = options
  if (prepare !== undefined && typeof prepare !== 'boolean') throw argumentError('prepare must be a boolean')
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
  return { retry: options.retry === undefined ? undefined : Boolean(options.retry), timeoutMs, signal, arrays: rowMode === 'array', prepare }
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

// Tracing through node:diagnostics_channel, for APM agents and OpenTelemetry (README,
// "Tracing"). Nothing is built for it unless someone subscribes.
// - 'hyperiondb-client:query', a TracingChannel: start, end, asyncStart, asyncEnd and error
//   for every query (pool, transaction, checkout), with one context object per query:
//   { id, sql, params, host, processId, command, rowCount, durationMs, error }.
// - 'hyperiondb-client:connect': { id, kind: 'connect' | 'begin', host, processId,
//   durationMs } when a dedicated connection is handed out.
// - 'hyperiondb-client:event': every failover event, as `onEvent` gets it.
const queryTrace = dc.tracingChannel('hyperiondb-client:query')
const connectChannel = dc.channel('hyperiondb-client:connect')
const eventChannel = dc.channel('hyperiondb-client:event')
let traceIds = 0

// Runs `run(ctx)`, a query that fills `ctx.host` (an index into `hostNames`) and resolves to
// its rows, as one traced operation.
function traced(sql, params, processId, hostNames, run) {
  const ctx = { id: ++traceIds, sql, params: params ?? [], host: null, processId, command: null, rowCount: null, durationMs: null }
  const started = performance.now()
  return queryTrace.tracePromise(async () => {
    try {
      const rows = await run(ctx)
      ctx.command = rows.command
      ctx.rowCount = rows.rowCount
      return rows
    } finally {
      // Set before `error` / `asyncEnd` are published.
      ctx.host = hostNames[ctx.host] ?? null
      ctx.durationMs = performance.now() - started
    }
  }, ctx)
}

// The native connection of a Transaction or a Connection (a symbol: both classes use it).
const NATIVE = Symbol('native')
const HOSTS = Symbol('hostNames')

// The third argument of stream(): query options plus `batchSize` (rows per round trip).
function streamOptions(options) {
  const opts = queryOptions(options)
  const batchSize = options && options.batchSize
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 0x7fffffff)) {
    throw argumentError(`batchSize must be an integer from 1 to 2147483647, got ${String(batchSize)}`)
  }
  return { ...opts, batchSize }
}

function checkSql(sql, params) {
  if (typeof sql !== 'string') throw argumentError('query text must be a string')
  if (params !== undefined && params !== null && !Array.isArray(params)) throw argumentError('query parameters must be an array')
}

// COPY FROM data is handed to the native side in pieces of at least this many bytes: one
// crossing (and one promise) per piece, not per row.
const COPY_PIECE = 64 * 1024

function copyChunk(chunk) {
  if (typeof chunk === 'string') return Buffer.from(chunk)
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw argumentError('copyFrom: the source must yield Buffers, Uint8Arrays or strings')
}

// A stream's rows, batch by batch: the cursor starts on the first next() (a stream never
// iterated holds nothing), and is closed however the loop ends (`break`, a throw, the end).
async function* cursorRows(start, arrays, signal, sql) {
  if (signal !== undefined && signal.aborted) throw abortedBefore(signal, sql)
  const cursor = start()
  let onAbort
  const aborted = signal === undefined ? undefined : new Promise((resolve, reject) => {
    onAbort = () => reject(abortedBefore(signal, sql, 'the stream was aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  if (aborted) aborted.catch(ignore)
  try {
    for (;;) {
      const next = cursor.next()
      const r = aborted ? await Promise.race([next, aborted]) : await next
      if (r === null) return
      const rows = r.rest ? await rowsOf(r, arrays) : rowsOf(r, arrays)
      for (let i = 0; i < rows.length; i++) yield rows[i]
    }
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort)
    await cursor.close()
  }
}

function abortedBefore(signal, sql, message = 'the query was aborted before it was sent') {
  const err = new Error(message)
  err.code = 'ABORT_ERR'
  Object.defineProperty(err, 'query', { value: sql, enumerable: false })
  return abortError(err, signal)
}

/**
 * What runs on a connection held alone: a transaction (`pool.begin()`) or a checked-out
 * connection (`pool.connect()`).
 */
class Dedicated {
  #logger

  constructor(native, logger, hostNames = []) {
    this[NATIVE] = native
    this[HOSTS] = hostNames
    this.#logger = logger
  }

  /**
   * Runs one statement. `options.timeoutMs` / `options.signal` cancel it on the server
   * (which aborts a transaction; roll it back). `options.prepare: false` runs it unnamed.
   */
  async query(sql, params, options) {
    checkSql(sql, params)
    const opts = queryOptions(options)
    const logger = this.#logger
    const started = logger ? performance.now() : 0
    try {
      const arrays = opts.arrays === true
      const run = (ctx) => stoppable(async (timeoutMs, abort) => {
        const r = await this[NATIVE].query(sql, params ?? [], timeoutMs, abort, arrays, opts.prepare, ctx !== undefined)
        return r.rest ? await rowsOf(r, arrays, ctx) : rowsOf(r, arrays, ctx)
      }, opts, sql)
      const rows = queryTrace.hasSubscribers
        ? await traced(sql, params, this[NATIVE].processId() ?? null, this[HOSTS], run)
        : await run(undefined)
      if (logger) logQuery(logger, sql, started, rows, undefined)
      return rows
    } catch (e) {
      if (logger) logQuery(logger, sql, started, undefined, e)
      throw e
    }
  }

  /**
   * The rows of `sql` as an async iterable, read `options.batchSize` (default 1000) at a
   * time through a portal: memory stays flat however large the result. Leaving the loop
   * early closes the portal and frees the connection.
   */
  stream(sql, params, options) {
    checkSql(sql, params)
    const opts = streamOptions(options)
    const native = this[NATIVE]
    const arrays = opts.arrays === true
    return cursorRows(() => native.stream(sql, params ?? [], opts.batchSize, arrays, opts.prepare), arrays, opts.signal, sql)
  }

  /**
   * `COPY ... FROM STDIN` with the data of `source` (a Buffer or string, or an iterable or
   * async iterable of them, a Node Readable included); resolves to the row count. A source
   * that throws ends the COPY with CopyFail (nothing is copied) and the error is rethrown.
   */
  async copyFrom(sql, source) {
    if (typeof sql !== 'string') throw argumentError('COPY text must be a string')
    const single = typeof source === 'string' || source instanceof Uint8Array
    if (!single && (source === null || typeof source !== 'object' ||
        (typeof source[Symbol.asyncIterator] !== 'function' && typeof source[Symbol.iterator] !== 'function'))) {
      throw argumentError('copyFrom takes a Buffer, a string, or an (async) iterable of them, such as a Readable')
    }
    const w = await this[NATIVE].copyIn(sql)
    try {
      if (single) {
        await w.write(copyChunk(source))
      } else {
        let pieces = []
        let size = 0
        for await (const chunk of source) {
          const b = copyChunk(chunk)
          pieces.push(b)
          size += b.length
          if (size >= COPY_PIECE) {
            await w.write(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, size))
            pieces = []
            size = 0
          }
        }
        if (size > 0) await w.write(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, size))
      }
    } catch (e) {
      const reason = e !== null && typeof e === 'object' && typeof e.message === 'string' ? e.message : String(e)
      await w.fail(`the source failed: ${reason}`)
      throw e
    }
    return w.end()
  }

  /**
   * `COPY ... TO STDOUT`: its data as an async iterable of Buffers (`Readable.from()` makes
   * it a Readable). Leaving the loop early cancels the COPY and frees the connection.
   */
  copyTo(sql) {
    if (typeof sql !== 'string') throw argumentError('COPY text must be a string')
    const native = this[NATIVE]
    return (async function* copyOut() {
      const r = native.copyOut(sql)
      let ended = false
      try {
        for (;;) {
          const d = await r.read()
          if (!Buffer.isBuffer(d)) {
            ended = true
            return
          }
          yield d
        }
      } finally {
        if (!ended) await r.close()
      }
    })()
  }

  /**
   * Several statements separated by semicolons in one simple-protocol round trip (a
   * migration); no parameters. Resolves to one result per statement (rows with `command`,
   * `rowCount` and `fields`); the first error stops the rest.
   */
  async script(sql, options) {
    if (typeof sql !== 'string') throw argumentError('script text must be a string')
    const opts = queryOptions(options)
    const results = await stoppable((timeoutMs, abort) => this[NATIVE].script(sql, timeoutMs, abort), opts, sql)
    return results.map((r) => rowsOf(r, opts.arrays === true))
  }
}

/**
 * A transaction on one dedicated connection, from `pool.begin()`. Call `commit()` or
 * `rollback()`; one abandoned without either is rolled back and its connection destroyed
 * when it is garbage-collected (or at the end of an `await using` block).
 */
class Transaction extends Dedicated {
  #finished = false
  #savepoints = 0

  get finished() {
    return this.#finished
  }

  async commit() {
    this.#finished = true
    await this[NATIVE].commit()
  }

  async rollback() {
    this.#finished = true
    await this[NATIVE].rollback()
  }

  /**
   * Runs `cb(tx)` inside a SAVEPOINT: released when it returns, rolled back to when it
   * throws (the error is rethrown and the outer transaction goes on). Nests.
   */
  async savepoint(cb) {
    if (typeof cb !== 'function') throw argumentError('savepoint takes a callback')
    const name = `hyperion_sp_${++this.#savepoints}`
    await this.query(`SAVEPOINT ${name}`)
    let result
    try {
      result = await cb(this)
    } catch (e) {
      await this.query(`ROLLBACK TO SAVEPOINT ${name}`)
      throw e
    }
    await this.query(`RELEASE SAVEPOINT ${name}`)
    return result
  }

  /** `await using tx = await pool.begin()`: rolled back at the block's end unless finished. */
  async [Symbol.asyncDispose]() {
    if (this.#finished) return
    await this.rollback().catch(ignore)
  }
}

/**
 * A connection checked out with `pool.connect()`, for the caller alone until `release()`
 * (for ORMs and session state: SET, temporary tables, advisory locks). `release(err)` with
 * an error closes the connection instead of giving it back; so does releasing it inside a
 * transaction block.
 */
class Connection extends Dedicated {
  #released = false

  get released() {
    return this.#released
  }

  /** The backend process id of the connection. */
  get processId() {
    return this[NATIVE].processId() ?? null
  }

  async release(err) {
    if (this.#released) return
    this.#released = true
    await this[NATIVE].release(err !== undefined && err !== null && err !== false)
  }

  /** `await using c = await pool.connect()`: released at the block's end. */
  async [Symbol.asyncDispose]() {
    await this.release()
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
      connectChannel.publish({ id: ++traceIds, kind, host, processId, durationMs: performance.now() - started })
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
      if (queryTrace.hasSubscribers) {
        rows = await traced(sql, params, null, this.#hostNames, (ctx) =>
          stoppable((timeoutMs, abort) => this.#run(sql, params, opts, timeoutMs, abort, ctx), opts, sql))
      } else if (opts === NO_OPTIONS) {
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
    if (this.#closed) throw this.#closedError()
    const started = performance.now()
    const c = this.#published('connect', await this.#native.connect(), started)
    return new Connection(c, this.#logger, this.#hostNames)
  }

  /**
   * The rows of `sql` as an async iterable, read `options.batchSize` (default 1000) at a
   * time on a connection of its own, which goes back to the pool when the loop ends.
   */
  stream(sql, params, options) {
    checkSql(sql, params)
    streamOptions(options)
    return this.#iterateOn((c) => c.stream(sql, params, options))
  }

  /** `COPY ... FROM STDIN` on a connection of its own (see `Connection#copyFrom`). */
  copyFrom(sql, source) {
    return this.#runOn((c) => c.copyFrom(sql, source))
  }

  /** `COPY ... TO STDOUT` on a connection of its own (see `Connection#copyTo`). */
  copyTo(sql) {
    if (typeof sql !== 'string') throw argumentError('COPY text must be a string')
    return this.#iterateOn((c) => c.copyTo(sql))
  }

  /** Several statements in one round trip (see `Connection#script`). */
  script(sql, options) {
    return this.#runOn((c) => c.script(sql, options))
  }

  // `work(c)` on a connection checked out for it, given back when it settles.
  async #runOn(work) {
    const c = await this.connect()
    try {
      return await work(c)
    } finally {
      await c.release()
    }
  }

  // The items of `iterable(c)` on a connection checked out when the loop starts, given back
  // when it ends (however it ends).
  async *#iterateOn(iterable) {
    const c = await this.connect()
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

module.exports = { createPool, hello, Pool, Dedicated, Transaction, Connection }
