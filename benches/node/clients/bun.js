'use strict'
// Bun's built-in SQL client (runs under the bun binary from the npm package `bun`):
// new SQL({ max }), sql.unsafe(text, params), transactions with sql.begin.
// CommonJS: bun runs it as is, and `require('bun')` is Bun's built-in module.

// W8 (o.ha): Bun SQL's own timeouts (seconds): connectionTimeout 5, idleTimeout 30, and a
// server-side statement_timeout of 5 s as a startup parameter (`connection`). Bun SQL has no
// client-side query timeout and no keepalive option.
const HA = { connectionTimeout: 5, idleTimeout: 30, connection: { statement_timeout: '5000' } }

// TLS (run.js --tls): tls: { ca } (Bun's TLS options, verified against the CA).
const tlsOptions = (t) => (t ? { tls: { ca: require('node:fs').readFileSync(t.ca, 'utf8') } } : t === false ? { tls: false } : {})

function connect(o) {
  if (o.hosts) throw new Error('Bun SQL has no multi-host support')
  const { SQL } = require('bun')
  const sql = new SQL({ hostname: o.host, port: o.port, username: o.user, password: o.password, database: o.database, max: o.max, ...tlsOptions(o.tls), ...(o.ha ? HA : {}) })
  return {
    query: (text, params) => sql.unsafe(text, params),
    transaction: (fn) => sql.begin((tx) => fn({ query: (text, params) => tx.unsafe(text, params) })),
    close: () => sql.close({ timeout: 5 }),
  }
}

module.exports = {
  name: 'bun',
  label: 'Bun SQL',
  runtime: 'bun',
  int8: 'string',
  multiHost: false,
  HA,
  version: () => (typeof Bun !== 'undefined' ? Bun.version : null),
  connect,
}
