'use strict'
// The 3-node cluster with TLS on every node: a read-write pool with sslmode verify-full and
// SCRAM channel binding required follows the primary through a stop-mode failover under
// writers, loses no acknowledged write, and keeps writing over TLS on the new primary.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { clusterForTests } = require('./cluster.js')
const { makeCertificates, enableSsl } = require('./certs.js')
const { createPool } = require('../client.js')

const haveOpenssl = spawnSync('openssl', ['version']).status === 0
const skip = !haveOpenssl ? 'needs the openssl CLI' : process.env.HYPERION_HOSTS ? 'makes its own cluster' : false
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

let cluster
let certDir

before(async () => {
  if (skip) return
  cluster = await clusterForTests()
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-tls-fo-'))
  makeCertificates(certDir, 'app_cert')
  for (let i = 0; i < cluster.nodes.length; i++) await enableSsl(cluster, i, certDir)
})

after(async () => {
  if (cluster) await cluster.destroy()
  if (certDir) fs.rmSync(certDir, { recursive: true, force: true })
})

test('failover over TLS (verify-full, channel binding required): no acknowledged write lost', { skip, timeout: 120000 }, async () => {
  const p = createPool({
    ...cluster.connection(),
    poolSize: 4,
    acquireTimeoutMs: 10000,
    sslmode: 'verify-full',
    sslrootcert: path.join(certDir, 'ca.pem'),
    channelBinding: 'require',
  })
  try {
    await p.query('create table t_tls (k text primary key)')
    const acked = []
    const failed = []
    let stop = false
    const writer = async (w) => {
      for (let i = 0; !stop; i++) {
        const k = `w${w}-${i}`
        try {
          await p.query('insert into t_tls values ($1)', [k])
          acked.push(k)
        } catch (e) {
          failed.push(e.code)
          await sleep(10)
        }
      }
    }
    const writers = [0, 1, 2, 3].map(writer)
    await sleep(300)
    const { newPrimary } = await cluster.failover({ mode: 'stop' })
    const before = acked.length
    await sleep(700)
    stop = true
    await Promise.all(writers)
    assert.ok(acked.length > before, 'writes were acknowledged after the failover')
    const [r] = await p.query(
      'select inet_server_port() as port, (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl')
    assert.equal(r.port, cluster.node(newPrimary).port, 'the pool writes to the new primary')
    assert.equal(r.ssl, true, 'over TLS')
    const admin = await cluster.admin(newPrimary)
    let present
    try {
      present = new Set((await admin.query('select k from t_tls')).rows.map((x) => x.k))
    } finally {
      await admin.end()
    }
    const lost = acked.filter((k) => !present.has(k))
    assert.deepEqual(lost, [], `acknowledged writes lost (${acked.length} acknowledged; failed: ${failed.join(',')})`)
  } finally {
    await p.end()
  }
})
