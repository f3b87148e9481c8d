'use strict'
// The first end-to-end path, against the real local cluster: auth methods, errors,
// pipelining, values both ways, and the connection's read-only state.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { PASSWORDS } = require('./cluster.js')
const { until, untilNoSessions, useCluster } = require('./support.js')
const { createPool, hello } = require('../client.js')

let primaryHost
const suite = useCluster({
  setup(s) {
    const p = s.cluster.node(s.cluster.primaryIndex())
    primaryHost = `${p.host}:${p.port}`
  },
})
const pool = suite.pool
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))


// Server sessions of `applicationName` on the primary, seen by an admin session.
async function sessions(applicationName) {
  const admin = await suite.cluster.admin(suite.cluster.primaryIndex())
  try {
    const { rows } = await admin.query(
      `select count(*)::int as n from pg_stat_activity where application_name = '${applicationName}'`)
    return Number(rows[0].n)
  } finally {
    await admin.end()
  }
}

test('hello() proves the native binding loads', () => {
  assert.equal(hello('world'), 'hello world from hyperiondb-client')
})

test('each authentication method logs in: scram-sha-256, md5, trust', async () => {
  const cases = [
    { user: 'app_scram', password: PASSWORDS.app_scram },
    { user: 'app_md5', password: PASSWORDS.app_md5 },
    { user: 'app_trust', password: undefined },
  ]
  for (const c of cases) {
    const p = pool({ ...c, hosts: [primaryHost] })
    const rows = await p.query('select current_user as u, pg_catalog.current_setting($1) as app', ['application_name'])
    assert.deepEqual(rows, [{ u: c.user, app: 'hyperiondb-client' }])
  }
})

test('the server really used md5 and scram for those roles', async () => {
  // Guards the test above: a pg_hba that trusted everyone would make it pass vacuously.
  const admin = await suite.cluster.admin(suite.cluster.primaryIndex())
  try {
    const rows = (await admin.query(
      "select rolname, left(rolpassword, 5) as p from pg_authid where rolname in ('app_scram','app_md5') order by 1"
    )).rows
    assert.deepEqual(rows, [{ rolname: 'app_md5', p: 'md5' + rows[0].p.slice(3) }, { rolname: 'app_scram', p: 'SCRAM' }])
    assert.match(rows[0].p, /^md5/)
    // And the first TCP rule that applies to each role asks for that method.
    const method = async (role) => (await admin.query(
      `select auth_method from pg_hba_file_rules where type = 'host' and database @> '{all}' and (user_name @> '{${role}}' or user_name @> '{all}')
       order by line_number limit 1`)).rows[0].auth_method
    assert.deepEqual([await method('app_md5'), await method('app_scram')], ['md5', 'scram-sha-256'])
  } finally {
    await admin.end()
  }
  // And a password-less login as a password role is refused.
  const p = pool({ user: 'app_md5', password: undefined, hosts: [primaryHost] })
  await assert.rejects(p.query('select 1'), (e) => e.code === 'AUTH_FAILED' || e.code === '28P01')
  const q = pool({ user: 'app_scram', password: undefined, hosts: [primaryHost] })
  await assert.rejects(q.query('select 1'), (e) => e.code === 'AUTH_FAILED' || e.code === '28P01')
  const r = pool({ user: 'app_md5', password: 'wrong', hosts: [primaryHost] })
  await assert.rejects(r.query('select 1'), { code: '28P01' })
})

test('a wrong password is 28P01 and a missing database 3D000, both without retrying', async () => {
  // acquireTimeoutMs is long: an error that arrives well before it was not retried.
  const bound = 20000
  for (const [opts, code] of [
    [{ password: 'wrong' }, '28P01'],
    [{ database: 'no_such_db' }, '3D000'],
  ]) {
    const p = pool({ ...opts, acquireTimeoutMs: bound })
    const started = Date.now()
    await assert.rejects(p.query('select 1'), (e) => {
      assert.equal(e.code, code)
      assert.ok(e instanceof Error)
      assert.ok(e.message.length > 0)
      return true
    })
    assert.ok(Date.now() - started < bound / 2, `${code} took ${Date.now() - started}ms`)
  }
})

test('1,000 concurrent queries over a pool of 2 come back to the right callers', async () => {
  const p = pool({ poolSize: 2 })
  const n = 1000
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => p.query('select $1::int4 * 2 as v, $2::text as s', [i, `k${i}`]))
  )
  results.forEach((rows, i) => assert.deepEqual(rows, [{ v: i * 2, s: `k${i}` }]))
  const st = p.status()
  assert.equal(st.maxSize, 2)
  assert.ok(st.size <= 2 && st.size >= 1, JSON.stringify(st))
  assert.equal(st.inUse + st.available, st.size)
  // Everything has settled: nothing is in use or waiting.
  assert.deepEqual({ inUse: st.inUse, waiting: st.waiting, available: st.available }, { inUse: 0, waiting: 0, available: st.size })
})

test('an error in one of several pipelined queries fails only that query', async () => {
  const p = pool({ poolSize: 1 })
  const sqls = ['select 1 as v', 'select 1/0 as v', 'select 3 as v', 'select * from no_such_table', 'select 5 as v']
  const settled = await Promise.allSettled(sqls.map((s) => p.query(s)))
  assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
  assert.equal(settled[1].reason.code, '22012')
  assert.equal(settled[3].reason.code, '42P01')
  assert.deepEqual([settled[0].value, settled[2].value, settled[4].value], [[{ v: 1 }], [{ v: 3 }], [{ v: 5 }]])
  assert.equal(p.status().size, 1)
})

test('a 1 MB text value round-trips as parameter and result', async () => {
  const p = pool()
  const big = 'αβγ-'.repeat(1 << 18) // 1 MiB of characters, more in UTF-8
  const [row] = await p.query('select $1::text as t, length($1::text) as n', [big])
  assert.equal(row.n, big.length)
  assert.equal(row.t, big)
})

test('integer, boolean, text and null values both ways', async () => {
  const p = pool()
  const [row] = await p.query(
    'select $1::int2 as a, $2::int4 as b, $3::int8 as c, $4::int8 as d, $5::bool as e, $6::text as f, $7::varchar as g, $8::int4 as h, ' +
      "'-32768'::int2 as i, 2147483647 as j, (-9223372036854775808)::int8 as k, 9223372036854775807::int8 as l, false as m, 'x'::varchar(3) as n",
    [-7, 123456, 9007199254740993n, -42, true, 'ünïcødé ✓', 'v', null]
  )
  assert.deepEqual(row, {
    a: -7, b: 123456, c: 9007199254740993n, d: -42n, e: true, f: 'ünïcødé ✓', g: 'v', h: null,
    i: -32768, j: 2147483647, k: -9223372036854775808n, l: 9223372036854775807n, m: false, n: 'x',
  })
  assert.equal(typeof row.c, 'bigint')
})

test('a number that does not fit its integer column throws before anything is sent', async () => {
  const p = pool({ poolSize: 1 })
  for (const [v, type] of [[1.5, 'int4'], [2 ** 31, 'int4'], [40000, 'int2'], [2n ** 63n, 'int8'], [Number.NaN, 'int8']]) {
    await assert.rejects(p.query(`select $1::${type} as v`, [v]), (e) => {
      assert.equal(e.code, 'INVALID_PARAMETER')
      assert.match(e.message, /\$1/)
      return true
    })
  }
  // The connection is still usable, and the statement's parameter count is checked too.
  assert.deepEqual(await p.query('select $1::int4 as v', [2 ** 31 - 1]), [{ v: 2147483647 }])
  await assert.rejects(p.query('select $1::int4 as v', []), /takes 1 parameter/)
})

test('query() never throws: a bad argument is a rejected promise, on the pool and in a transaction', async () => {
  const p = pool({ poolSize: 2 })
  const tx = await p.begin()
  for (const target of [p, tx]) {
    for (const [sql, params, code] of [
      ['select $1::int4 as v', [Symbol('s')], 'INVALID_PARAMETER'],
      ['select $1::int4 as v', [1.5], 'INVALID_PARAMETER'],
      [42, [], 'INVALID_ARGUMENT'],
      ['select 1', 'not an array', 'INVALID_ARGUMENT'],
      // More parameters than a Bind can carry: refused before any is read (an array of
      // 2^32 - 1 holes would otherwise have the native side reserve ~137 GB and abort).
      ['select 1', new Array(32768), 'INVALID_ARGUMENT'],
      ['select 1', new Array(2 ** 32 - 1), 'INVALID_ARGUMENT'],
    ]) {
      let pending
      assert.doesNotThrow(() => { pending = target.query(sql, params) })
      assert.ok(pending instanceof Promise)
      await assert.rejects(pending, { code })
    }
  }
  await tx.rollback()
  assert.deepEqual(await p.query('select 1 as v'), [{ v: 1 }])
})

test('server errors carry SQLSTATE, the server fields and the query', async () => {
  const p = pool({ hosts: [primaryHost] })
  await p.query('drop table if exists t_err')
  await p.query('create table t_err (id int primary key)')
  await p.query('insert into t_err values (1)')
  const sql = 'insert into t_err (id) values (1)'
  await assert.rejects(p.query(sql), (e) => {
    assert.equal(e.code, '23505')
    assert.equal(e.severity, 'ERROR')
    assert.equal(e.constraint, 't_err_pkey')
    assert.equal(e.table, 't_err')
    assert.match(e.detail, /already exists/)
    assert.equal(e.query, sql)
    assert.ok(!Object.keys(e).includes('query'), 'query is not enumerable')
    return true
  })
})

test('bad arguments and options get clear errors with a code', async () => {
  const p = pool()
  await assert.rejects(p.query(42), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(p.query('select 1', 'x'), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => createPool({ hosts: [], user: 'u' }), { code: 'INVALID_CONFIG' })
  assert.throws(() => createPool({ hosts: ['h:99999'], user: 'u' }), { code: 'INVALID_CONFIG' })
  assert.throws(() => createPool({ hosts: ['h'], user: 'u', mode: 'primary' }), { code: 'INVALID_CONFIG' })
  assert.throws(() => createPool({ hosts: ['h'], user: 'u', poolSize: 0 }), { code: 'INVALID_CONFIG' })
  assert.throws(() => createPool({ hosts: ['h'], user: 'u', retry: { maxAttempts: 0 } }), { code: 'INVALID_CONFIG', message: /maxAttempts/ })
  // An unknown retry option is named, as an unknown option is.
  assert.throws(() => createPool({ hosts: ['h'], user: 'u', retry: { maxAttempt: 10 } }), { code: 'INVALID_CONFIG', message: /unknown retry option "maxAttempt": did you mean maxAttempts\?/ })
  assert.throws(() => createPool({ hosts: ['h'], user: 'u', retry: [1, 2] }), { code: 'INVALID_CONFIG', message: /retry must be an object/ })
})

test('COPY is refused with a clear error and the connection stays usable', async () => {
  const p = pool({ poolSize: 1, hosts: [primaryHost] })
  await p.query('create temp table t_copy (x int)').catch(() => {})
  await assert.rejects(p.query('copy (select 1) to stdout'), { code: '0A000' })
  assert.deepEqual(await p.query('select 7 as v'), [{ v: 7 }])
  assert.equal(p.status().size, 1)
})

test('the connection exposes its read-only state: 25006 and ParameterStatus after a fence', async () => {
  const p = pool({ mode: 'any', hosts: [primaryHost], poolSize: 1 })
  await p.query('drop table if exists t_fence')
  await p.query('create table t_fence (x int)')
  await p.query('insert into t_fence values (1)')
  let [c] = p.connections()
  assert.equal(c.readOnly, false)
  assert.equal(c.inHotStandby, false)
  assert.ok(c.serverVersionNum >= 140000, 'PostgreSQL 14+ reports the read-only state itself')
  const primary = suite.cluster.primaryIndex()
  await suite.cluster.fence(primary)
  try {
    // The fence reaches an idle session at its next message: the reply to this SELECT
    // carries ParameterStatus default_transaction_read_only=on.
    await p.query('select 1')
    ;[c] = p.connections()
    assert.equal(c.defaultTransactionReadOnly, true)
    assert.equal(c.readOnly, true)
    await assert.rejects(p.query('insert into t_fence values (2)'), { code: '25006' })
    ;[c] = p.connections()
    assert.equal(c.sawReadOnlyError, true)
  } finally {
    await suite.cluster.unfence(primary)
  }
})

test('end(): later queries fail at once with "pool is closed"; one that began before finishes', async () => {
  // Five fresh pools: end() lands while the first query's connection is opening or has just
  // opened (before the query could send on it: end() leaves a connection a query holds to
  // it), at a different point each time.
  for (let i = 0; i < 5; i++) {
    const p = createPool({ ...suite.conn, poolSize: 2 })
    const inflight = p.query('select pg_sleep(0.2), 1 as v')
    await until(() => p.status().inUse === 1, 'the query to be in flight')
    await p.end()
    await assert.rejects(p.query('select 1'), (e) => e.message === 'pool is closed' && e.code === 'POOL_CLOSED')
    // The query in flight finished.
    const rows = await inflight
    assert.equal(rows[0].v, 1)
  }
})

test('an array parameter past PostgreSQL\'s array limit is INVALID_PARAMETER at once, however sparse', async () => {
  const p = pool({ poolSize: 1 })
  const t0 = Date.now()
  // Sparse: free in JS. Read element by element it held the JS thread for minutes.
  await assert.rejects(p.query('select $1::int4[] as a', [new Array(2 ** 32 - 1)]), { code: 'INVALID_PARAMETER', message: /134217727/ })
  await assert.rejects(p.query('select $1::int4[] as a', [[new Array(2 ** 27), new Array(2 ** 27)]]), { code: 'INVALID_PARAMETER' })
  assert.ok(Date.now() - t0 < 30000, `took ${Date.now() - t0}ms`)
  assert.deepEqual(await p.query('select cardinality($1::int4[]) as n', [new Array(1000).fill(1)]), [{ n: 1000 }])
})

test('parameters in a Proxy of an array (an ORM\'s, a reactive store\'s) are read as the array', async () => {
  // Array.isArray is true of such a proxy; N-API is not, where it reads an array.
  const p = pool({ poolSize: 1 })
  const of = (a) => new Proxy(a, {})
  assert.deepEqual(await p.query('select $1::int4 + 1 as v, $2::text as t', of([41, 'x'])), [{ v: 42, t: 'x' }])
  assert.deepEqual(await p.query('select $1::int4 as v', of([1]), { timeoutMs: 5000 }), [{ v: 1 }])
  const tx = await p.begin()
  try {
    assert.deepEqual(await tx.query('select $1::int4 as v', of([7])), [{ v: 7 }])
    const streamed = []
    for await (const r of tx.stream('select g from generate_series(1, $1::int4) g', of([2]))) streamed.push(r.g)
    assert.deepEqual(streamed, [1, 2])
  } finally {
    await tx.rollback()
  }
})

test('stream, script and COPY on a connection of their own: bad arguments and stops come before the wait for it', async () => {
  // A server that accepts and never answers: a connection to it never comes, so whatever
  // these calls report, they report without one.
  const net = require('node:net')
  const sockets = new Set()
  const silent = net.createServer((s) => { s.on('error', () => {}); s.resume(); sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise((r) => silent.listen(0, '127.0.0.1', r))
  const p = createPool({ hosts: [`127.0.0.1:${silent.address().port}`], user: 'u', database: 'd', connectTimeoutMs: 20000, acquireTimeoutMs: 20000 })
  const within = async (what, promise, check, ms = 3000) => {
    const t0 = Date.now()
    await assert.rejects(promise, check, what)
    assert.ok(Date.now() - t0 < ms, `${what}: settled after ${Date.now() - t0}ms, not at once`)
  }
  try {
    await within('copyFrom of a statement that is not a COPY', p.copyFrom('select 1', 'x'), { code: 'INVALID_ARGUMENT' })
    await within('copyFrom of a bad source', p.copyFrom('copy t from stdin', 5), { code: 'INVALID_ARGUMENT' })
    assert.throws(() => p.copyTo('select 1'), { code: 'INVALID_ARGUMENT' })
    await within('script with a bad option', p.script('select 1', { timeoutMs: -1 }), { code: 'INVALID_ARGUMENT' })
    await within('script with an aborted signal', p.script('select 1', { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' })
    const first = (iterable) => iterable[Symbol.asyncIterator]().next()
    await within('stream with an aborted signal', first(p.stream('select 1', [], { signal: AbortSignal.abort() })), { code: 'ABORT_ERR' })
    // timeoutMs and signal count from the call, the wait for the connection included.
    await within('script with timeoutMs', p.script('select 1', { timeoutMs: 300 }), (e) => {
      assert.equal(e.code, 'QUERY_TIMEOUT', e.message)
      assert.match(e.message, /while waiting for a connection/)
      return true
    })
    await within('stream with a signal that fires while it waits', first(p.stream('select 1', [], { signal: AbortSignal.timeout(300) })), { code: 'ABORT_ERR' })
  } finally {
    await p.end({ timeoutMs: 100 })
    for (const s of sockets) s.destroy()
    silent.close()
  }
})

test('end({ timeoutMs }) gives up a connection still being opened: its caller gets POOL_CLOSED and its socket closes', async () => {
  const net = require('node:net')
  const sockets = new Set()
  // Accepts and never answers; reads (and drops) what comes, so that it sees the client's FIN.
  const silent = net.createServer((s) => { s.on('error', () => {}); s.resume(); sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise((r) => silent.listen(0, '127.0.0.1', r))
  try {
    const p = createPool({ hosts: [`127.0.0.1:${silent.address().port}`], user: 'u', database: 'd', connectTimeoutMs: 20000, acquireTimeoutMs: 20000 })
    const q = p.query('select 1').then(() => null, (e) => e)
    await until(() => sockets.size === 1, 'the connect to be under way')
    const t0 = Date.now()
    await p.end({ timeoutMs: 300 })
    const ended = Date.now() - t0
    assert.ok(ended >= 250, `end() waited for the opening connection within its grace (${ended}ms)`)
    const err = await q
    assert.equal(err && err.code, 'POOL_CLOSED', String(err))
    assert.ok(Date.now() - t0 < 5000, 'the caller was not held until connectTimeoutMs')
    await until(() => sockets.size === 0, 'the socket to close')
  } finally {
    for (const s of sockets) s.destroy()
    silent.close()
  }
})

test('connectTimeoutMs bounds a handshake with a host that never answers; garbage from a non-PostgreSQL server is a clear error', async () => {
  const net = require('node:net')
  const sockets = []
  // The client resets these sockets when it gives up on them: ECONNRESET on our side is
  // expected (Node 24 reports it where 20 did not), not a test failure.
  const silent = net.createServer((s) => { s.on('error', () => {}); sockets.push(s) }) // accepts, never answers
  const http = net.createServer((s) => { s.on('error', () => {}); s.end('HTTP/1.1 400 Bad Request\r\n\r\n') })
  await new Promise((r) => silent.listen(0, '127.0.0.1', r))
  await new Promise((r) => http.listen(0, '127.0.0.1', r))
  try {
    const p = pool({ hosts: [`127.0.0.1:${silent.address().port}`], connectTimeoutMs: 300, acquireTimeoutMs: 1200 })
    const started = Date.now()
    await assert.rejects(p.query('select 1'), (e) => {
      assert.equal(e.code, '08001')
      assert.match(e.message, /no writable primary available after \d+ms/)
      assert.match(e.message, /timed out after 300ms/)
      return true
    })
    const took = Date.now() - started
    assert.ok(took >= 900 && took < 10000, `took ${took}ms`)
    // acquireTimeoutMs is the caller's budget even when one connect may take longer: the
    // attempt under way is given up at the deadline, not at connectTimeoutMs.
    const patient = pool({ hosts: [`127.0.0.1:${silent.address().port}`], connectTimeoutMs: 8000, acquireTimeoutMs: 500 })
    const t0 = Date.now()
    await assert.rejects(patient.query('select 1'), (e) => {
      assert.equal(e.code, '08001')
      assert.match(e.message, /still under way at acquireTimeoutMs \(500 ms\)/)
      return true
    })
    assert.ok(Date.now() - t0 < 4000, `rejected after ${Date.now() - t0}ms, not at the deadline`)
    // Garbage at startup is a protocol error no retry can fix: it fails at once.
    const q = pool({ hosts: [`127.0.0.1:${http.address().port}`], mode: 'any', acquireTimeoutMs: 10000 })
    const t = Date.now()
    await assert.rejects(q.query('select 1'), (e) => {
      assert.equal(e.code, 'PROTOCOL_ERROR')
      assert.match(e.message, /protocol error|closed the connection/)
      return true
    })
    assert.ok(Date.now() - t < 3000, 'not retried until acquireTimeoutMs')
  } finally {
    for (const s of sockets) s.destroy()
    silent.close()
    http.close()
  }
})

// Promises are settled through one thread-safe function per pool (napi/src/settle.rs), which
// holds the event loop only while a promise is pending.
test('a pending query keeps the process alive; an idle pool lets it exit', () => {
  const { spawnSync } = require('node:child_process')
  const script = `
    const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
    const pool = createPool(${JSON.stringify({ ...suite.conn, poolSize: 1 })})
    pool.query('select pg_sleep(0.3), 42 as n').then((rows) => console.log('answer', rows[0].n))
    // Nothing else keeps this process alive, and end() is never called.
  `
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.signal, null, `the process did not exit by itself: ${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'answer 42\n')
})

test('a pool in a worker thread works, and terminating the worker mid-query harms nothing', async () => {
  const { Worker } = require('node:worker_threads')
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { createPool } = require(workerData.client)
    const pool = createPool(workerData.conn)
    pool.query('select 7 as n').then((rows) => {
      parentPort.postMessage(rows[0].n)
      for (let i = 0; i < 200; i++) pool.query('select pg_sleep(0.02)').catch(() => {})
      parentPort.postMessage('busy')
    })
  `
  const worker = new Worker(code, { eval: true, workerData: { client: require.resolve('../client.js'), conn: { ...suite.conn, poolSize: 2, applicationName: 'hyperion-worker-test' } } })
  const messages = []
  await new Promise((resolve, reject) => {
    worker.on('message', (m) => { messages.push(m); if (m === 'busy') resolve() })
    worker.on('error', reject)
    worker.on('exit', (c) => reject(new Error(`worker exited early (${c})`)))
  })
  await worker.terminate()
  assert.deepEqual(messages, [7, 'busy'])
  // The worker's queries finish after its environment is gone; this process carries on.
  await untilNoSessions(suite.cluster, "application_name = 'hyperion-worker-test' and state = 'active'", "the worker's statements to finish")
  const p = pool()
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => p.query('select $1::int4 as i', [i])))
  assert.deepEqual(answers.map((rows) => rows[0].i), Array.from({ length: 100 }, (_, i) => i))
})

test('a statement is prepared once per connection, however often the pool runs it', async () => {
  const p = pool({ poolSize: 1 })
  const sql = 'select $1::int4 + 1 as v /* prepared-once */'
  for (let i = 0; i < 5; i++) assert.deepEqual(await p.query(sql, [i]), [{ v: i + 1 }])
  await Promise.all(Array.from({ length: 20 }, (_, i) => p.query(sql, [i])))
  // The same text with another comment is another statement: the count below can see it.
  await p.query('select $1::int4 + 1 as v /* prepared-twice */', [1])
  // pg_prepared_statements is per session: read it on the same (only) connection.
  const counts = await p.transaction(async (tx) => {
    await tx.query(sql, [0])
    // The markers are parameters, so this statement's own text does not match them.
    return tx.query(
      'select count(*) filter (where strpos(statement, $1) > 0)::int as once, ' +
        'count(*) filter (where strpos(statement, $2) > 0)::int as twice ' +
        'from pg_prepared_statements where not from_sql', ['prepared-once', 'prepared-twice'])
  })
  assert.deepEqual(counts, [{ once: 1, twice: 1 }])
})

test('end() closes the server sessions of the pool', async () => {
  const name = 'hyperion-end-test'
  const p = createPool({ ...suite.conn, poolSize: 3, applicationName: name })
  const txs = [await p.begin(), await p.begin(), await p.begin()]
  for (const tx of txs) await tx.commit()
  assert.equal(p.status().size, 3)
  assert.equal(await sessions(name), 3, 'three sessions open on the server')
  await p.end()
  await until(async () => (await sessions(name)) === 0, 'the sessions to close')
})
