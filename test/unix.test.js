'use strict'
// Unix-domain sockets as libpq takes them: a host that starts with '/' is a socket directory.
// A read-write pool over the three nodes' sockets finds the primary, and follows it when the
// primary is fenced and a standby promoted, as over TCP.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const suite = useCluster()

test('a read-write pool over Unix sockets writes to the primary and follows a failover', async () => {
  const { cluster } = suite
  assert.ok(cluster.socketDir, 'the harness listens on a socket directory')
  const hosts = cluster.nodes.map((_, i) => `${cluster.socketDir}:${cluster.node(i).port}`)
  const p = suite.pool({ hosts, poolSize: 2, acquireTimeoutMs: 15000 })
  const where = async () => (await p.query("select current_setting('port')::int as port, inet_server_addr() as addr"))[0]
  const before = await where()
  assert.equal(before.port, cluster.node(cluster.primaryIndex()).port, 'the primary')
  assert.equal(before.addr, null, 'over a Unix socket (no server address)')
  await p.query('create table if not exists t_unix (k int)')
  const { newPrimary } = await cluster.failover({ mode: 'fence' })
  await p.query('insert into t_unix values (1)')
  const after = await where()
  assert.equal(after.port, cluster.node(newPrimary).port, 'the new primary, still over the socket')
  assert.equal(after.addr, null)
  await cluster.heal()
})
