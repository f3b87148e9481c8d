'use strict'
// Certificates for the TLS tests, made with the openssl CLI, and TLS turned on for a node of
// a harness cluster.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

// ca.pem/ca.key, other-ca.pem, server.pem/.key (localhost, 127.0.0.1), client.pem/.key (CN
// `clientUser`).
function makeCertificates(dir, clientUser) {
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
  leaf('client', clientUser, ['basicConstraints = CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth'], '-sha256')
}


/**
 * Turns TLS on for node `i`: the server's certificate, key and CA go to its data directory
 * (the server reads them as its own user, key mode 0600), the settings to postgresql.conf (so
 * a standby, which refuses ALTER SYSTEM writes, gets them too, and a re-seeded copy keeps
 * them), then a reload; resolves once a new session sees ssl = on.
 */
async function enableSsl(cluster, i, certDir) {
  const dataDir = cluster.nodes[i].dataDir
  for (const f of ['server.pem', 'server.key', 'ca.pem']) {
    const dst = path.join(dataDir, f)
    fs.copyFileSync(path.join(certDir, f), dst)
    fs.chmodSync(dst, 0o600)
    if (cluster.runAs) fs.chownSync(dst, cluster.runAs.uid, cluster.runAs.gid)
  }
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'),
    "\nssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n")
  const c = await cluster.admin(i, { database: 'postgres' })
  try { await c.query('select pg_reload_conf()') } finally { await c.end() }
  for (let n = 0; ; n++) {
    const a = await cluster.admin(i, { database: 'postgres' })
    try { if ((await a.query('show ssl')).rows[0].ssl === 'on') return } finally { await a.end() }
    if (n > 100) throw new Error(`ssl did not turn on for node ${i}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

module.exports = { makeCertificates, enableSsl }
