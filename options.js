'use strict'
// createPool's options: type checks only. Which names exist, the defaults, and how the
// options, a connection string and the PG* environment combine are decided in Rust
// (napi/src/options.rs).

const native = require('./loader.js')


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
  if (typeof retry !== 'object' || Array.isArray(retry)) throw configError('retry must be an object, e.g. { maxAttempts: 3 }')
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
    retryNames: Object.keys(retry),
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

module.exports = { nativeOptions }
