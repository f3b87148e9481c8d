'use strict'
// Shared setup of the node:test suites: one cluster per file (a local one the harness
// creates, or the existing cluster HYPERION_* points at), pools that are ended after the
// file, and the cluster torn down at the end.

const { before, after } = require('node:test')
const { clusterForTests } = require('./cluster.js')
const { createPool } = require('../client.js')

/**
 * Registers the file's before/after hooks and returns `{ cluster, conn, pool(opts) }`
 * (`cluster` and `conn` are set once `before` has run). `create` makes the cluster,
 * `poolDefaults` are merged into every pool, `setup(suite)` runs once the cluster is up.
 */
function useCluster({ create = clusterForTests, poolDefaults = {}, setup } = {}) {
  const pools = []
  const suite = {
    cluster: null,
    conn: null,
    pool(opts = {}) {
      const p = createPool({ ...suite.conn, poolSize: 2, ...poolDefaults, ...opts })
      pools.push(p)
      return p
    },
  }
  before(async () => {
    suite.cluster = await create()
    suite.conn = suite.cluster.connection()
    if (setup) await setup(suite)
  })
  after(async () => {
    for (const p of pools) await p.end().catch(() => {})
    if (suite.cluster) await suite.cluster.destroy()
  })
  return suite
}

module.exports = { useCluster }
