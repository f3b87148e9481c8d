'use strict'
// Runs the wire crate's real-server tests (wire/tests/real_server.rs) against a local
// server: cancel requests, startup parameters, the statement cache, a wrong password.

const { test, before, after } = require('node:test')
const { clusterForTests } = require('./cluster.js')
const { runWireTests } = require('./support.js')

let cluster

before(async () => {
  cluster = await clusterForTests()
})

after(async () => {
  if (cluster) await cluster.destroy()
})

test('wire against a real server (cargo test --test real_server)', () => {
  runWireTests(cluster, 'real_server', 4)
})
