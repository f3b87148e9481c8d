'use strict'
// Shared setup of the node:test suites: one cluster per file (a local one the harness
// creates, or the existing cluster HYPERION_* points at), pools that are ended after the
// file, and the cluster torn down at the end; and a TCP proxy for network faults.

const { before, after } = require('node:test')
const net = require('node:net')
const { clusterForTests } = require('./cluster.js')
const { createPool } = require('../client.js')
const { isSslRequest } = require('./mock-server.js').be

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

/**
 * A TCP proxy to one node, for what only the network between client and server can do:
 * - `partition()`: new connections are accepted and then hang (a node partitioned away),
 *   while the ones already open keep working;
 * - `await holdNextExecute()`: the client's next Execute message, and what follows it on
 *   that connection, is held back; resolves, once it arrived, to the function that lets it
 *   through;
 * - `cutOn(pred)`: at the first client frame `pred` accepts (a Buffer: type byte, length,
 *   body), that connection is dropped both ways and the frame is never forwarded: the client
 *   has sent it, the server never sees it.
 */
async function tcpProxy(host, port) {
  let partitioned = false
  let arm = null
  let cut = null
  const sockets = new Set()
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('error', () => {})
    client.on('close', () => sockets.delete(client))
    if (partitioned) return // read nothing, answer nothing
    const upstream = net.connect(port, host)
    sockets.add(upstream)
    upstream.on('error', () => client.destroy())
    upstream.on('close', () => { sockets.delete(upstream); client.destroy() })
    client.on('close', () => upstream.destroy())
    upstream.pipe(client)
    // Client to server frame by frame, to find an Execute ('E'). The startup message (and
    // a CancelRequest) has no type byte; every later message is type + length.
    let buf = Buffer.alloc(0)
    let started = false
    let held = null
    client.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const len = started ? (buf.length >= 5 ? 1 + buf.readInt32BE(1) : Infinity) : (buf.length >= 4 ? buf.readInt32BE(0) : Infinity)
        if (buf.length < len) break
        if (started && held === null && arm !== null && buf[0] === 0x45) {
          held = []
          const resolve = arm
          arm = null
          resolve(() => {
            for (const f of held) upstream.write(f)
            held = null
          })
        }
        const frame = Buffer.from(buf.subarray(0, len))
        buf = buf.subarray(len)
        if (started && cut !== null && cut(frame)) {
          cut = null
          client.destroy()
          upstream.destroy()
          return
        }
        // An SSLRequest (untagged, like the startup message that follows it) is passed on;
        // the server's one-byte answer goes back through the pipe.
        if (!(!started && isSslRequest(frame))) started = true
        if (held !== null) held.push(frame)
        else upstream.write(frame)
      }
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const drop = () => { for (const s of sockets) s.destroy() }
  return {
    port: server.address().port,
    partition() { partitioned = true },
    holdNextExecute: () => new Promise((resolve) => { arm = resolve }),
    cutOn(pred) { cut = pred },
    /** Drops every connection through the proxy at once, as a broken network would, and
     * keeps taking new ones. */
    drop,
    close() {
      drop()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * Runs wire's `#[ignore]`d real-server test target `target` (`cargo test -p hyperion-wire
 * --test <target> -- --ignored`) against the cluster's primary, and checks that exactly
 * `passed` tests passed.
 */
function runWireTests(cluster, target, passed) {
  const assert = require('node:assert/strict')
  const path = require('node:path')
  const { spawnSync } = require('node:child_process')
  const c = cluster.connection()
  const primary = cluster.node(cluster.primaryIndex())
  const r = spawnSync(
    'cargo',
    ['test', '--quiet', '-p', 'hyperion-wire', '--test', target, '--', '--ignored', '--test-threads=2'],
    {
      timeout: 110000,
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
  assert.match(out, new RegExp(`test result: ok\\. ${passed} passed; 0 failed`), out)
}

// Polls `check` every 10 ms for up to 5 s; fails naming `what`.
async function until(check, what) {
  const assert = require('node:assert/strict')
  for (let i = 0; i < 500; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  assert.fail(`timed out waiting for ${what}`)
}

// Waits until no server session on the cluster's primary matches `where` (a condition on
// pg_stat_activity), looking from an admin session; fails naming `what`.
async function untilNoSessions(cluster, where, what) {
  const admin = await cluster.admin(cluster.primaryIndex())
  try {
    await until(async () => Number((await admin.query(`select count(*)::int as n from pg_stat_activity where ${where}`)).rows[0].n) === 0, what)
  } finally {
    await admin.end()
  }
}

module.exports = { useCluster, tcpProxy, runWireTests, until, untilNoSessions }
