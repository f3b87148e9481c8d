'use strict'
// LISTEN/NOTIFY for the Pool (client.js hooks it in): `const stop = await pool.listen(channel,
// (payload, { channel, processId }) => ...)`, `await stop()`, `pool.notify(channel, payload)`,
// and the `onListenGap({ from, to })` option. Argument checks only: the one listening session,
// how it follows the primary and when a gap is reported live in Rust (pool/src/listen.rs).

function argumentError(message) {
  const err = new TypeError(message)
  err.code = 'INVALID_ARGUMENT'
  return err
}

function configError(message) {
  const err = new TypeError(message)
  err.code = 'INVALID_CONFIG'
  return err
}

// What a user's callback throws or rejects is ignored, as for the logger and onEvent.
function guarded(fn) {
  return (...args) => {
    try {
      const r = fn(...args)
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, ignore)
    } catch {}
  }
}

function ignore() {}

/** One pool's listening: made by the Pool constructor from its options. */
class Listening {
  #native
  #onGap

  constructor(native, opts) {
    const onGap = opts !== null && typeof opts === 'object' ? opts.onListenGap : undefined
    if (onGap !== undefined && typeof onGap !== 'function') throw configError('onListenGap must be a function')
    this.#native = native
    this.#onGap = onGap === undefined ? undefined : guarded(onGap)
  }

  async listen(channel, callback) {
    if (typeof channel !== 'string' || channel === '') throw argumentError('listen: channel must be a non-empty string')
    if (typeof callback !== 'function') throw argumentError('listen takes a callback')
    const one = guarded((payload, ch, processId) => callback(payload, { channel: ch, processId }))
    // The native side hands over what arrived since the last call, in order, as one flat
    // array: payload, channel, processId, payload, ...
    const onNotification = (batch) => {
      for (let i = 0; i + 2 < batch.length; i += 3) one(batch[i], batch[i + 1], batch[i + 2])
    }
    // The gap callback is handed over once; the pool keeps it for every later listener.
    const onGap = this.#onGap
    this.#onGap = undefined
    const listener = await this.#native.listen(channel, onNotification, onGap)
    let stopped
    return () => (stopped ??= listener.stop())
  }
}

/** `select pg_notify($1, $2)` through `pool.query` (the logger sees it, retries apply). */
async function notify(pool, channel, payload) {
  if (typeof channel !== 'string' || channel === '') throw argumentError('notify: channel must be a non-empty string')
  if (payload === undefined || payload === null) payload = ''
  if (typeof payload !== 'string') throw argumentError('notify: payload must be a string')
  await pool.query('select pg_notify($1, $2)', [channel, payload])
}

module.exports = { Listening, notify }
