'use strict'
// The arguments of one call (a query, a transaction, a stream, an insert), checked in JS, and
// how a call is stopped (timeoutMs, AbortSignal) and logged.

const native = require('./loader.js')

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
// A query's parameters when it has none (the native queryRows reads the array as it is).
const NO_PARAMS = Object.freeze([])

const { isProxy } = require('node:util').types

// A query's parameters as the native side reads them. `Array.isArray` is true of a Proxy of
// an array (an ORM's, a reactive store's), but N-API refuses one where it reads an array:
// such parameters are copied into a plain array. (Not on the fast path, which tries the
// array as it is and comes here only when the native side refused it.)
function plainParams(params) {
  if (params === undefined || params === null) return NO_PARAMS
  return isProxy(params) ? Array.from(params) : params
}

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

// The third argument of stream(): query options plus `batchSize` (rows per round trip).
function streamOptions(options) {
  if (options && options.timeoutMs !== undefined) {
    // A stream's length is its reader's pace: a deadline for all of it is the caller's signal.
    throw argumentError('timeoutMs is not a stream option: pass signal: AbortSignal.timeout(ms) to bound a stream')
  }
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

function abortedBefore(signal, sql, message = 'the query was aborted before it was sent') {
  const err = new Error(message)
  err.code = 'ABORT_ERR'
  Object.defineProperty(err, 'query', { value: sql, enumerable: false })
  return abortError(err, signal)
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

module.exports = {
  NO_OPTIONS,
  NO_PARAMS,
  plainParams,
  argumentError,
  checkIsolation,
  checkSql,
  queryOptions,
  insertOptions,
  streamOptions,
  stoppable,
  abortedBefore,
  retryableInTransaction,
  logQuery,
  ignore,
}
