'use strict'
// Runs the wire crate's real-server tests (wire/tests/real_server.rs) against a local
// server: cancel requests, startup parameters, the statement cache, a wrong password.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { clusterForTests } = require('./cluster.js')

let cluster

before(async () => {
  cluster = await clusterForTests()
})

after(async () => {
  if (cluster) await cluster.destroy()
})

test('wire against a real server (cargo test --test real_server)', () => {
  const c = cluster.connection()
  const primary = cluster.node(cluster.primaryIndex())
  const r = spawnSync(
    'cargo',
    ['test', '--quiet', '-p', 'hyperion-wire', '--test', 'real_server', '--', '--ignored', '--test-threads=2'],
    {
      cwd: path.join(__dirname, '..'),
      encoding: 'utf8',
      env: {
        ...process.env,
        HYPERION_WIRE_HOST: primary.host,
        HYPERION_WIRE_PORT: String(primary.port),
        HYPERION_WIRE_USER: c.user,
        HYPERION_WIRE_PASSWORD: c.password,
        HYPERION_WIRE_DATABASE: c.database,
      },
    }
  )
  const out = `${r.stdout}\n${r.stderr}`
  assert.equal(r.status, 0, out)
  assert.match(out, /test result: ok\. 4 passed; 0 failed/, out)
})
