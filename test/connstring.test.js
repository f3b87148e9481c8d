'use strict'
// Connection strings, the PG* environment, ~/.pgpass and createPool's option checks, without
// a server: describeConfig (native, not part of client.js's API) resolves options exactly as
// createPool does and returns what the pool would use. The syntax table itself is the Rust
// unit test in pool/src/connstr.rs; these check the whole path from JS.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createPool } = require('../client.js')
const native = require('../loader.js')
const { makeCertificates } = require('./certs.js')

// The native option shape (client.js adds `names` the same way).
const describe = (opts, env = {}) => native.describeConfig({ names: Object.keys(opts), ...opts }, env)

test("the issue's URI: hosts with ports and IPv6, user, password, database, mode, sslmode", () => {
  const c = describe({ connectionString: 'postgres://app:pw@h1:5432,h2:5433,[::1]:5434/db?target_session_attrs=read-write&sslmode=verify-full' })
  assert.deepEqual(c.hosts, ['h1:5432', 'h2:5433', '[::1]:5434'])
  assert.equal(c.user, 'app')
  assert.equal(c.password, 'pw')
  assert.equal(c.database, 'db')
  assert.equal(c.mode, 'read-write')
  assert.equal(c.sslmode, 'verify-full')
})

test('keyword/value strings, libpq multi-host port rules, Unix socket directories', () => {
  const hosts = (s) => describe({ connectionString: s, user: 'u' }).hosts
  assert.deepEqual(hosts('host=h1,h2 port=5432,5433 dbname=db'), ['h1:5432', 'h2:5433'])
  assert.deepEqual(hosts('host=h1,h2 port=6000'), ['h1:6000', 'h2:6000'])
  assert.deepEqual(hosts('host=/var/run/postgresql'), ['/var/run/postgresql:5432'])
  assert.deepEqual(hosts('postgresql://%2Fvar%2Frun%2Fpostgresql:5433/db'), ['/var/run/postgresql:5433'])
  assert.deepEqual(hosts('postgresql:///db'), ['localhost:5432'])
  assert.throws(() => describe({ connectionString: 'host=a,b,c port=1,2' }), { code: 'INVALID_CONFIG', message: /2 ports for 3 hosts/ })
})

test('target_session_attrs maps onto mode (primary -> read-write, standby -> read-only)', () => {
  const mode = (v) => describe({ connectionString: `target_session_attrs=${v}`, user: 'u' }).mode
  assert.equal(mode('primary'), 'read-write')
  assert.equal(mode('read-write'), 'read-write')
  assert.equal(mode('standby'), 'read-only')
  assert.equal(mode('read-only'), 'read-only')
  assert.equal(mode('prefer-standby'), 'prefer-standby')
  assert.equal(mode('any'), 'any')
})

test('explicit options win over the string, the string over PG* variables', () => {
  const env = { PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'envuser', PGPASSWORD: 'envpw', PGDATABASE: 'envdb', PGAPPNAME: 'envapp', PGSSLMODE: 'require', PGCONNECT_TIMEOUT: '9', PGTARGETSESSIONATTRS: 'standby' }
  const e = describe({}, env)
  assert.deepEqual([e.hosts, e.user, e.password, e.database, e.applicationName, e.sslmode, e.connectTimeoutMs, e.mode],
    [['envhost:6000'], 'envuser', 'envpw', 'envdb', 'envapp', 'require', 9000, 'read-only'])
  const s = describe({ connectionString: 'postgres://struser@a,b/strdb?connect_timeout=3' }, env)
  assert.deepEqual([s.hosts, s.user, s.password, s.database, s.connectTimeoutMs], [['a:6000', 'b:6000'], 'struser', 'envpw', 'strdb', 3000])
  const o = describe({ connectionString: 'postgres://struser@a,b/strdb', hosts: ['x:1'], user: 'me', password: 'mine', sslmode: 'disable', connectTimeoutMs: 500 }, env)
  assert.deepEqual([o.hosts, o.user, o.password, o.database, o.sslmode, o.connectTimeoutMs], [['x:1'], 'me', 'mine', 'strdb', 'disable', 500])
  // A bad variable is named.
  assert.throws(() => describe({ user: 'u' }, { PGSSLMODE: 'yes' }), { code: 'INVALID_CONFIG', message: /PGSSLMODE/ })
})

test("createPool reads the process's PG* variables at the lowest precedence", () => {
  const saved = process.env.PGAPPNAME
  process.env.PGAPPNAME = 'from-env'
  try {
    assert.equal(native.describeConfig({ names: [], user: 'u' }).applicationName, 'from-env')
    assert.equal(native.describeConfig({ names: ['applicationName'], user: 'u', applicationName: 'mine' }).applicationName, 'mine')
  } finally {
    if (saved === undefined) delete process.env.PGAPPNAME
    else process.env.PGAPPNAME = saved
  }
})

test('~/.pgpass (PGPASSFILE): per-host passwords, ignored with a warning when others may read it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-pgpass-'))
  try {
    const file = path.join(dir, 'pgpass')
    fs.writeFileSync(file, '# hosts\nh1:5432:db:app:one\nh2:*:*:app:two\\:x\n*:*:*:other:no\n', { mode: 0o600 })
    fs.chmodSync(file, 0o600)
    const c = describe({ hosts: ['h1', 'h2', 'h3'], user: 'app', database: 'db' }, { PGPASSFILE: file })
    assert.deepEqual(c.hostPasswords, ['h1:5432=one', 'h2:5432=two:x'])
    assert.deepEqual(c.warnings, [])
    // HOME/.pgpass when PGPASSFILE is not set.
    fs.copyFileSync(file, path.join(dir, '.pgpass'))
    fs.chmodSync(path.join(dir, '.pgpass'), 0o600)
    assert.deepEqual(describe({ hosts: ['h2'], user: 'app' }, { HOME: dir }).hostPasswords, ['h2:5432=two:x'])
    // A password given anywhere wins over the file.
    assert.deepEqual(describe({ hosts: ['h1'], user: 'app', database: 'db' }, { PGPASSFILE: file, PGPASSWORD: 'p' }).hostPasswords, [])
    fs.chmodSync(file, 0o644)
    const loose = describe({ hosts: ['h1'], user: 'app', database: 'db' }, { PGPASSFILE: file })
    assert.deepEqual(loose.hostPasswords, [])
    assert.match(loose.warnings[0], /group or world access/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("node-postgres's ssl option maps onto sslmode", () => {
  // A real certificate: createPool parses what it is given.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-connstring-'))
  makeCertificates(dir, 'u')
  const pem = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')
  fs.rmSync(dir, { recursive: true, force: true })
  const d = (ssl) => describe({ user: 'u', ssl })
  assert.equal(d(true).sslmode, 'verify-full')
  assert.equal(d(false).sslmode, 'disable')
  const withCa = d({ names: ['ca', 'servername'], ca: [pem], servername: 'db.internal' })
  assert.deepEqual([withCa.sslmode, withCa.rootCert.trim(), withCa.serverName], ['verify-full', pem.trim(), 'db.internal'])
  const noCheck = d({ names: ['ca', 'rejectUnauthorized'], ca: [pem], rejectUnauthorized: false })
  assert.deepEqual([noCheck.sslmode, noCheck.rootCert], ['require', undefined])
  // Through client.js: a single ca, an unknown key, and ssl with sslmode.
  assert.throws(() => createPool({ hosts: 'h', user: 'u', ssl: { ca: pem, checkServerIdentity: () => {} } }), { code: 'INVALID_CONFIG', message: /checkServerIdentity/ })
  assert.throws(() => createPool({ hosts: 'h', user: 'u', ssl: true, sslmode: 'require' }), { code: 'INVALID_CONFIG', message: /ssl .* and sslmode/ })
})

test('TLS and auth options are checked at createPool, naming the option', () => {
  const bad = [
    [{ sslmode: 'allow' }, /sslmode/],
    [{ sslnegotiation: 'tls' }, /sslnegotiation/],
    [{ sslmode: 'prefer', sslnegotiation: 'direct' }, /sslnegotiation=direct/],
    [{ channelBinding: 'maybe' }, /channelBinding/],
    [{ requireAuth: 'kerberos' }, /requireAuth.*kerberos/],
    [{ requireAuth: 'md5,!password' }, /requireAuth/],
    [{ sslrootcert: '/nonexistent/ca.pem' }, /sslrootcert: cannot read/],
    [{ sslcert: '/nonexistent/c.pem', sslkey: '/nonexistent/c.key' }, /sslcert: cannot read/],
    [{ sslrootcert: 42 }, /sslrootcert must be a string or a Buffer/],
    // verify-ca does not check the name: against public roots anyone's certificate passes.
    [{ sslmode: 'verify-ca' }, /verify-ca needs sslrootcert/],
    [{ connectionString: 'postgres://h/db?sslmode=verify-ca' }, /verify-ca needs sslrootcert/],
    // Contents that are not a certificate: refused here, not at every query.
    [{ sslmode: 'verify-full', sslrootcert: Buffer.from('-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n') }, /root_cert \(sslrootcert\): not valid PEM/],
    [{ sslmode: 'verify-full', ssl: undefined, sslrootcert: Buffer.from('not a pem at all') }, /no CERTIFICATE in the PEM/],
    [{ sslmode: 'require', sslcert: Buffer.from('garbage'), sslkey: Buffer.from('garbage') }, /client_cert \(sslcert\): no CERTIFICATE/],
    [{ connectionString: 'postgres://h/db?sslmode=bogus' }, /connection string: sslmode/],
    [{ connectionString: 'host=h options=-cx=y' }, /options: not supported/],
    [{ connectionString: 'host' }, /missing "="/],
  ]
  for (const [opts, message] of bad) {
    assert.throws(() => createPool({ hosts: 'h', user: 'u', ...opts }), { code: 'INVALID_CONFIG', message }, JSON.stringify(opts))
  }
  assert.throws(() => createPool('postgres://u@h/db?require_auth=nope'), { code: 'INVALID_CONFIG', message: /require_auth/ })
})

test("an unknown option throws INVALID_CONFIG naming it, with the right name for other clients' options", () => {
  const cases = [
    ['max', /"max": use poolSize/],
    ['connectionTimeoutMillis', /use connectTimeoutMs/],
    ['idleTimeoutMillis', /use idleTimeoutMs/],
    ['min', /use minConnections/],
    ['host', /use hosts/],
    ['statement_timeout', /use statementTimeoutMs/],
    ['query_timeout', /timeoutMs/],
    ['application_name', /use applicationName/],
    ['target_session_attrs', /use mode/],
    ['poolsize', /did you mean poolSize\?/],
    ['passwrod', /did you mean password\?/],
    ['colour', /unknown option "colour" \(the options are: /],
  ]
  for (const [name, message] of cases) {
    assert.throws(() => createPool({ hosts: 'h', user: 'u', [name]: 1 }), { code: 'INVALID_CONFIG', message }, name)
  }
  // Every option documented today is accepted (no server is contacted before the first query).
  const p = createPool({
    hosts: ['h'], port: 5432, user: 'u', password: 'p', database: 'd', applicationName: 'a', mode: 'any', poolSize: 1,
    connectTimeoutMs: 1, acquireTimeoutMs: 1, statementTimeoutMs: 1, validationIntervalMs: 1, retry: { maxAttempts: 1 },
    pipelineDepth: 1, logger: () => {}, onEvent: () => {}, sslmode: 'require', sslnegotiation: 'direct',
    channelBinding: 'require', requireAuth: 'scram-sha-256', connectionString: 'dbname=x',
  })
  return p.end()
})

test('lifecycle and protocol options: defaults, values, 0 for never, and bad values refused', () => {
  const base = { hosts: ['h'], user: 'u' }
  const d = describe(base)
  assert.equal(d.statementCacheSize, 512)
  assert.equal(d.idleTimeoutMs, 600000)
  assert.equal(d.minConnections, 1)
  assert.equal(d.maxLifetimeMs, 1800000)
  assert.equal(d.maxProtocolVersion, '3.0')
  const c = describe({ ...base, statementCacheSize: 7, idleTimeoutMs: 0, minConnections: 2, maxLifetimeMs: 5000, maxProtocolVersion: '3.2' })
  assert.deepEqual(
    [c.statementCacheSize, c.idleTimeoutMs, c.minConnections, c.maxLifetimeMs, c.maxProtocolVersion],
    [7, undefined, 2, 5000, '3.2'], 'idleTimeoutMs 0 is never (no timeout reported)')
  assert.equal(describe(base, {}).maxProtocolVersion, '3.0')
  assert.equal(native.describeConfig({ names: ['connectionString'], connectionString: 'postgres://u@h/db?max_protocol_version=latest' }, {}).maxProtocolVersion, '3.2')
  assert.throws(() => createPool({ ...base, maxProtocolVersion: '3.1' }), { code: 'INVALID_CONFIG', message: /maxProtocolVersion/ })
  assert.throws(() => createPool({ ...base, statementCacheSize: 0 }), { code: 'INVALID_CONFIG' })
})
