'use strict'
// Bun's built-in SQL client (runs under the bun binary from the npm package `bun`):
// new SQL({ max }), sql.unsafe(text, params), transactions with sql.begin.
// CommonJS: bun runs it as is, and `require('bun')` is Bun's built-in module.
// Streams (S1): Bun SQL has no cursor or row-streaming API, so a Bun user streams with SQL:
// DECLARE ... CURSOR (parameters bound) and FETCH batchSize in a transaction (sql.begin).
// COPY (S2, S3): `sql.unsafe(text).writable()` (a WritableStream; the source piped in with
// ReadableStream.from(source).pipeTo(), the query then resolves with the row count in
// `count`) and `.readable()` (a ReadableStream of Uint8Arrays).

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
    async stream(text, params, { batchSize }, onRow) {
      await sql.begin(async (tx) => {
        await tx.unsafe(`declare bench_cursor no scroll cursor for ${text}`, params)
        for (;;) {
          const rows = await tx.unsafe(`fetch ${batchSize | 0} from bench_cursor`)
          if (!rows.length) break
          for (const r of rows) onRow(r)
        }
        await tx.unsafe('close bench_cursor')
      })
    },
    async copyFrom(text, source) {
      const q = sql.unsafe(text)
      await ReadableStream.from(source).pipeTo(q.writable())
      return (await q).count
    },
    async copyTo(text, onChunk) {
      for await (const chunk of await sql.unsafe(text).readable()) onChunk(chunk)
    },
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
