'use strict'
// TLS against a real PostgreSQL 17 with ssl = on: a CA, a server certificate (signed with
// SHA-384, so channel binding must hash with SHA-384 as RFC 5929 says) and a client
// certificate are made here with the openssl CLI, one node is started, and the wire crate's
// tests in wire/tests/real_tls.rs run against it (verify-full, wrong host name, untrusted CA,
// client-certificate auth, SCRAM-SHA-256-PLUS, direct SSL, cancel over TLS, Unix socket).

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { clusterForTests } = require('./cluster.js')
const { makeCertificates, enableSsl } = require('./certs.js')

const CERT_USER = 'app_cert'
const haveOpenssl = spawnSync('openssl', ['version']).status === 0
const external = !!process.env.HYPERION_HOSTS
const skip = !haveOpenssl ? 'needs the openssl CLI' : external ? 'makes its own server (not with HYPERION_HOSTS)' : false

let cluster
let certDir

before(async () => {
  if (skip) return
  cluster = await clusterForTests({ nodes: 1 })
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-tls-'))
  makeCertificates(certDir, CERT_USER)
  const hba = path.join(cluster.nodes[0].dataDir, 'pg_hba.conf')
  fs.writeFileSync(hba, `hostssl all ${CERT_USER} 127.0.0.1/32 cert\nhostnossl all ${CERT_USER} all reject\n` + fs.readFileSync(hba, 'utf8'))
  const c = await cluster.admin(0, { database: 'postgres' })
  try {
    await c.query(`create role ${CERT_USER} login`)
  } finally { await c.end() }
  await enableSsl(cluster, 0, certDir)
})

after(async () => {
  if (cluster) await cluster.destroy()
  if (certDir) fs.rmSync(certDir, { recursive: true, force: true })
})

test('TLS, channel binding, client certificates and Unix sockets (cargo test --test real_tls)', { skip, timeout: 170000 }, () => {
  const c = cluster.connection()
  const node = cluster.node(0)
  const r = spawnSync(
    'cargo',
    ['test', '--quiet', '-p', 'hyperion-wire', '--test', 'real_tls', '--', '--ignored', '--test-threads=2'],
    {
      timeout: 160000,
      cwd: path.join(__dirname, '..'),
      encoding: 'utf8',
      env: {
        ...process.env,
        HYPERION_WIRE_HOST: node.host,
        HYPERION_WIRE_PORT: String(node.port),
        HYPERION_WIRE_USER: c.user,
        HYPERION_WIRE_PASSWORD: c.password,
        HYPERION_WIRE_DATABASE: c.database,
        HYPERION_TLS_DIR: certDir,
        HYPERION_TLS_CERT_USER: CERT_USER,
        HYPERION_TLS_SOCKET_DIR: cluster.socketDir,
      },
    }
  )
  const out = `${r.stdout}\n${r.stderr}`
  assert.equal(r.status, 0, out)
  assert.match(out, /test result: ok\. 9 passed; 0 failed/, out)
})

// The same server through createPool: the options of issue 17 reach the connection.
describe('createPool over TLS', { skip }, () => {
  const { createPool } = require('../client.js')
  const pools = []
  const pool = (opts) => {
    const p = createPool({ ...cluster.connection(), poolSize: 1, acquireTimeoutMs: 10000, ...opts })
    pools.push(p)
    return p
  }
  after(async () => { for (const p of pools) await p.end().catch(() => {}) })
  const ca = () => path.join(certDir, 'ca.pem')
  const sslOf = async (p) => (await p.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()'))[0].ssl

  test('sslmode verify-full with sslrootcert (a path) runs queries over TLS, with SCRAM channel binding required', async () => {
    const p = pool({ sslmode: 'verify-full', sslrootcert: ca(), channelBinding: 'require' })
    assert.equal(await sslOf(p), true)
  })

  test('sslrootcert as PEM text (string and Buffer), and sslmode disable stays plain', async () => {
    assert.equal(await sslOf(pool({ sslmode: 'verify-ca', sslrootcert: fs.readFileSync(ca(), 'utf8') })), true)
    assert.equal(await sslOf(pool({ sslmode: 'verify-full', sslrootcert: fs.readFileSync(ca()) })), true)
    assert.equal(await sslOf(pool({ sslmode: 'disable' })), false)
  })

  test("node-postgres's ssl: { ca } is verify-full; ssl: { rejectUnauthorized: false } encrypts without checks", async () => {
    assert.equal(await sslOf(pool({ ssl: { ca: fs.readFileSync(ca()) } })), true)
    assert.equal(await sslOf(pool({ ssl: { rejectUnauthorized: false } })), true)
  })

  test('a connection string with sslmode and sslrootcert', async () => {
    const c = cluster.connection()
    const n = cluster.node(0)
    const url = `postgresql://${c.user}:${encodeURIComponent(c.password)}@${n.host}:${n.port}/${c.database}` +
      `?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca())}&application_name=from%20url`
    const p = createPool(url)
    pools.push(p)
    assert.equal(await sslOf(p), true)
    assert.equal((await p.query('show application_name'))[0].application_name, 'from url')
  })

  test('an untrusted CA is refused at once (AUTH_FAILED), not after acquireTimeoutMs', async () => {
    for (const opts of [{ sslmode: 'verify-full', sslrootcert: path.join(certDir, 'other-ca.pem') }, { ssl: true }]) {
      const p = pool(opts)
      const t = performance.now()
      await assert.rejects(p.query('select 1'), { code: 'AUTH_FAILED', message: /certificate/ })
      assert.ok(performance.now() - t < 2000, `${JSON.stringify(opts)}: took ${performance.now() - t} ms`)
    }
  })

  test("requireAuth: 'scram-sha-256' refuses the md5 role at once, naming the method", async () => {
    const p = pool({ ...cluster.connection('app_md5'), sslmode: 'require', requireAuth: 'scram-sha-256' })
    const t = performance.now()
    await assert.rejects(p.query('select 1'), { code: 'AUTH_FAILED', message: /md5/ })
    assert.ok(performance.now() - t < 2000, `took ${performance.now() - t} ms`)
    // The same role with md5 allowed logs in.
    assert.equal(await sslOf(pool({ ...cluster.connection('app_md5'), sslmode: 'require', requireAuth: 'md5' })), true)
  })
})
