'use strict'
// TLS against a real PostgreSQL 17 with ssl = on: a CA, a server certificate (signed with
// SHA-384, so channel binding must hash with SHA-384 as RFC 5929 says) and a client
// certificate are made here with the openssl CLI, one node is started, and the wire crate's
// tests in wire/tests/real_tls.rs run against it (verify-full, wrong host name, untrusted CA,
// client-certificate auth, SCRAM-SHA-256-PLUS, direct SSL, cancel over TLS, Unix socket).

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync, execFileSync } = require('node:child_process')
const { clusterForTests } = require('./cluster.js')

const CERT_USER = 'app_cert'
const haveOpenssl = spawnSync('openssl', ['version']).status === 0
const external = !!process.env.HYPERION_HOSTS
const skip = !haveOpenssl ? 'needs the openssl CLI' : external ? 'makes its own server (not with HYPERION_HOSTS)' : false

let cluster
let certDir

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

// ca.pem/ca.key, other-ca.pem, server.pem/.key (localhost, 127.0.0.1), client.pem/.key (CN app_cert).
function makeCertificates(dir) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  for (const ca of ['ca', 'other-ca']) {
    fs.writeFileSync(path.join(dir, `${ca}.cnf`), [
      '[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', `CN = hyperion test ${ca}`,
      '[v3]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash', '',
    ].join('\n'))
    openssl(['req', '-x509', '-new', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-config', `${ca}.cnf`, '-extensions', 'v3'], dir)
  }
  const leaf = (name, cn, ext, digest) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext.join('\n') + '\n')
    openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir)
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', digest, '-extfile', `${name}.ext`], dir)
  }
  leaf('server', 'localhost', ['basicConstraints = CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth', 'subjectAltName = DNS:localhost,IP:127.0.0.1'], '-sha384')
  leaf('client', CERT_USER, ['basicConstraints = CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth'], '-sha256')
}

before(async () => {
  if (skip) return
  cluster = await clusterForTests({ nodes: 1 })
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-tls-'))
  makeCertificates(certDir)
  // The server reads its files from its data directory, as its own user, key mode 0600.
  const dataDir = cluster.nodes[0].dataDir
  for (const f of ['server.pem', 'server.key', 'ca.pem']) {
    const dst = path.join(dataDir, f)
    fs.copyFileSync(path.join(certDir, f), dst)
    fs.chmodSync(dst, 0o600)
    if (cluster.runAs) fs.chownSync(dst, cluster.runAs.uid, cluster.runAs.gid)
  }
  const hba = path.join(dataDir, 'pg_hba.conf')
  fs.writeFileSync(hba, `hostssl all ${CERT_USER} 127.0.0.1/32 cert\nhostnossl all ${CERT_USER} all reject\n` + fs.readFileSync(hba, 'utf8'))
  const c = await cluster.admin(0, { database: 'postgres' })
  try {
    await c.query(`create role ${CERT_USER} login`)
    await c.query('alter system set ssl = on')
    await c.query("alter system set ssl_cert_file = 'server.pem'")
    await c.query("alter system set ssl_key_file = 'server.key'")
    await c.query("alter system set ssl_ca_file = 'ca.pem'")
    await c.query('select pg_reload_conf()')
  } finally { await c.end() }
  // A new session sees ssl = on once the reload is through.
  for (let i = 0; ; i++) {
    const a = await cluster.admin(0, { database: 'postgres' })
    try { if ((await a.query('show ssl')).rows[0].ssl === 'on') break } finally { await a.end() }
    if (i > 100) throw new Error('ssl did not turn on')
    await new Promise((r) => setTimeout(r, 50))
  }
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
