'use strict'
// postgres.js, driven as its users drive it fast: sql.unsafe(text, params, { prepare: true }),
// transactions with sql.begin. It supports several hosts with target_session_attrs itself.
const postgres = require('postgres')

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

function connect(o) {
  const hosts = o.hosts || [o]
  const sql = postgres({
    host: hosts.map((h) => h.host),
    port: hosts.map((h) => h.port),
    username: o.user,
    password: o.password,
    database: o.database,
    max: o.max,
    ...(o.hosts ? { target_session_attrs: 'read-write' } : {}),
    onnotice: () => {},
  })
  return {
    query: (text, params) => sql.unsafe(text, params, OPTS),
    transaction: (fn) => sql.begin((tx) => fn({ query: (text, params) => tx.unsafe(text, params, OPTS) })),
    close: () => sql.end({ timeout: 5 }),
  }
}

module.exports = {
  name: 'postgres',
  label: 'postgres.js',
  runtime: 'node',
  int8: 'string',
  multiHost: true,
  version,
  connect,
}
