'use strict'
// What runs on a connection held alone: Transaction (pool.begin()) and Connection
// (pool.connect()), with their streams, COPY, scripts and savepoints.

const { rowsOf } = require('./rows.js')
const { NO_PARAMS, argumentError, checkSql, queryOptions, streamOptions, stoppable, abortedBefore, logQuery, ignore, plainParams } = require('./calls.js')
const { queryTrace, traced } = require('./tracing.js')

// The native connection of a Transaction or a Connection (a symbol: both classes use it).
const NATIVE = Symbol('native')
const HOSTS = Symbol('hostNames')

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
    onAbort = () => {
      // A batch being read in the stream's own transaction is cancelled on the server.
      cursor.abort()
      reject(abortedBefore(signal, sql, 'the stream was aborted'))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  if (aborted) aborted.catch(ignore)
  // Whether the loop ends with an error of its own (an abort, the server's), which closing's
  // failure must not replace; left early (break, return), a failure of closing (the stream's
  // own COMMIT) is thrown where the loop was left.
  let failing = false
  try {
    for (;;) {
      const next = cursor.next()
      const r = aborted ? await Promise.race([next, aborted]) : await next
      if (r === null) return
      const rows = r.rest ? await rowsOf(r, arrays) : rowsOf(r, arrays)
      for (let i = 0; i < rows.length; i++) {
        // An abort stops the loop at its next row, not after the rest of the batch.
        if (signal !== undefined && signal.aborted) throw abortedBefore(signal, sql, 'the stream was aborted')
        yield rows[i]
      }
    }
  } catch (e) {
    failing = true
    throw e
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort)
    if (failing) await cursor.close().catch(ignore)
    else await cursor.close()
  }
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
  query(sql, params, options) {
    // The common case is the native promise itself, resolving to the finished rows (as
    // Pool's query; W5 runs three of these per transaction).
    try {
      if (options === undefined && this.#logger === undefined && typeof sql === 'string' &&
          (params === undefined || Array.isArray(params)) && !queryTrace.hasSubscribers) {
        // The first parameters go as arguments too, as in Pool's query.
        const p = params ?? NO_PARAMS
        return this[NATIVE].queryRows(sql, p, p[0], p[1], p[2], p[3])
      }
    } catch (e) {
      // A Proxy of an array: the long way copies it.
      if (params !== undefined && params !== plainParams(params)) return this.#query(sql, params, options)
      return Promise.reject(e)
    }
    return this.#query(sql, params, options)
  }

  async #query(sql, params, options) {
    checkSql(sql, params)
    params = plainParams(params)
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
    const values = plainParams(params)
    return cursorRows(() => native.stream(sql, values, opts.batchSize, arrays, opts.prepare), arrays, opts.signal, sql)
  }

  /**
   * `COPY ... FROM STDIN` with the data of `source` (a Buffer or string, or an iterable or
   * async iterable of them, a Node Readable included); resolves to the row count. A source
   * that throws ends the COPY with CopyFail (nothing is copied) and the error is rethrown.
   */
  async copyFrom(sql, source) {
    const single = checkCopyFrom(sql, source)
    let w
    try {
      w = await this[NATIVE].copyIn(sql)
    } catch (e) {
      closeSource(source)
      throw e
    }
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

// A copyFrom source the COPY will not read to its end (it failed, or never started) is
// closed, as stream.pipeline closes its source: a Readable destroyed (its file descriptor
// with it), a generator returned. Destroyed without an error, which a Readable would emit to
// listeners the caller may not have. A Buffer, a string or an array holds nothing open.
function closeSource(source) {
  try {
    if (source === null || typeof source !== 'object') return
    if (typeof source.destroy === 'function') source.destroy()
    else if (typeof source.return === 'function') Promise.resolve(source.return()).catch(ignore)
  } catch {
    // A source whose close throws is the caller's to deal with; the COPY's error stands.
  }
}

// copyFrom's arguments: the text a string, the source a Buffer or string (then true: one
// piece), or an (async) iterable of them (false).
function checkCopyFrom(sql, source) {
  if (typeof sql !== 'string') throw argumentError('COPY text must be a string')
  const single = typeof source === 'string' || source instanceof Uint8Array
  if (!single && (source === null || typeof source !== 'object' ||
      (typeof source[Symbol.asyncIterator] !== 'function' && typeof source[Symbol.iterator] !== 'function'))) {
    throw argumentError('copyFrom takes a Buffer, a string, or an (async) iterable of them, such as a Readable')
  }
  return single
}

module.exports = { Dedicated, Transaction, Connection, checkCopyFrom, closeSource }
