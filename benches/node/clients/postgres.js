'use strict'
// postgres.js, driven as its users drive it fast: sql.unsafe(text, params, { prepare: true }),
// transactions with sql.begin. It supports several hosts with target_session_attrs itself.
// Streams (S1): `for await (const rows of sql.unsafe(text, params, { prepare: true }).cursor(batchSize))`;
// COPY (S2, S3): `await sql.unsafe(text).writable()` (piped into) / `.readable()`.
const postgres = require('postgres')
const { pipeline } = require('node:stream/promises')

const OPTS = { prepare: true }

// postgres.js's "exports" hides package.json: read it next to the resolved entry point.
function version() {
  const fs = require('node:fs')
  const path = require('node:path')
  for (let d = path.dirname(require.resolve('postgres')); d !== path.dirname(d); d = path.dirname(d)) {
    const f = path.join(d, 'package.json')
    if (fs.existsSync(f)) {
      const pkg = JSON.parse(fs.readFileSync(f, 'utf8'))
      if (pkg.name === 'postgres') return pkg.version
    }
  }
  return null
}

// W8 (o.ha): what a careful postgres.js user sets for HA (seconds, as postgres.js takes them):
// connect_timeout 5, idle_timeout 30, TCP keepalive from 5 s (keep_alive), and a server-side
// statement_timeout of 5 s as a startup parameter. postgres.js has no client-side query
// timeout. Multi-host with target_session_attrs=read-write as in W6.
const HA = { connect_timeout: 5, idle_timeout: 30, keep_alive: 5, connection: { statement_timeout: 5000 } }

// TLS (run.js --tls): ssl: { ca } (passed to tls.connect, so verified against the CA and the
// host name), as postgres.js documents it. Default is no TLS.
const tlsOptions = (t) => (t ? { ssl: { ca: require('node:fs').readFileSync(t.ca, 'utf8') } } : t === false ? { ssl: false } : {})

function connect(o) {
  const hosts = o.hosts || [o]
  const make = () => postgres({
    host: hosts.map((h) => h.host),
    port: hosts.map((h) => h.port),
    username: o.user,
    password: o.password,
    database: o.database,
    max: o.max,
    ...tlsOptions(o.tls),
    ...(o.hosts ? { target_session_attrs: 'read-write' } : {}),
    onnotice: () => {},
    ...(o.ha ? HA : {}),
  })
  let sql = make()
  return {
    query: (text, params) => sql.unsafe(text, params, OPTS),
    transaction: (fn) => sql.begin((tx) => fn({ query: (text, params) => tx.unsafe(text, params, OPTS) })),
    async stream(text, params, { batchSize }, onRow) {
      for await (const rows of sql.unsafe(text, params, OPTS).cursor(batchSize)) for (const r of rows) onRow(r)
    },
    async copyFrom(text, source) {
      await pipeline(source, await sql.unsafe(text).writable())
      return null // postgres.js's writable() reports no row count
    },
    async copyTo(text, onChunk) {
      for await (const chunk of await sql.unsafe(text).readable()) onChunk(chunk)
    },
    // postgres.js 3.4.9 can leave the connection's socket paused after a large COPY TO
    // (CopyData over the high-water mark and CopyDone in one read: porsager/postgres#499, the
    // fix is the open PR #1016), and the next query on it never returns. S3 calls this between
    // runs, outside the timing: a fresh instance, connected, replaces the stuck one.
    async afterCopyTo() {
      const old = sql
      sql = make()
      await sql.unsafe('select 1')
      old.end({ timeout: 0 }).catch(() => {})
    },
    close: () => sql.end({ timeout: 5 }),
  }
}

module.exports = {
  name: 'postgres',
  label: 'postgres.js',
  runtime: 'node',
  int8: 'string',
  multiHost: true,
  HA,
  version,
  connect,
}
