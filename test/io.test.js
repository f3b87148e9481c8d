'use strict'
// Where a pool's I/O runs. By default queries and plain TCP connections run on the JS
// thread, driven by Node's event loop (napi/src/uvloop.rs); HYPERION_IO=thread puts them
// back on the tokio I/O thread. Both must give the same answers.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFile, spawn } = require('node:child_process')
const { createPool } = require('../client.js')
const { useCluster, until, untilNoSessions, tcpProxy } = require('./support.js')

const suite = useCluster({
  async setup(s) {
    const p = s.pool()
    await p.query('create table if not exists io_t (id int primary key, label text)')
  },
})

// Queries, a pipelined burst, a transaction, a result large enough to arrive in batches,
// and a COPY each way, in a child process with the given environment.
const script = `
  const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
  const pool = createPool({ ...JSON.parse(process.env.CONN), poolSize: 2 })
  ;(async () => {
    const out = []
    out.push((await pool.query('select $1::int4 + 1 as v', [41]))[0].v)
    const burst = await Promise.all(Array.from({ length: 2000 }, (_, i) => pool.query('select $1::int4 as i', [i])))
    out.push(burst.every((r, i) => r[0].i === i))
    await pool.query('truncate io_t')
    out.push(await pool.transaction(async (tx) => {
      await tx.query("insert into io_t values (1, 'a'), (2, 'b')")
      return (await tx.query('select count(*)::int as n from io_t'))[0].n
    }))
    const big = await pool.query('select g, repeat($1, 100) as pad from generate_series(1, 50000) g', ['x'])
    out.push(big.length, big[49999].g)
    let streamed = 0
    for await (const row of pool.stream('select g from generate_series(1, 30000) g', [], { batchSize: 1000 })) streamed += row.g
    out.push(streamed)
    out.push(await pool.copyFrom('copy io_t from stdin', '3\\tc\\n4\\td\\n'))
    let copied = ''
    for await (const chunk of pool.copyTo('copy (select id from io_t order by id) to stdout')) copied += chunk
    out.push(copied)
    await pool.end()
    console.log(JSON.stringify(out))
  })().catch((e) => { console.error(e); process.exit(1) })
`

const expected = [42, true, 2, 50000, 50000, 450015000, 2, '1\n2\n3\n4\n']

function run(env) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { env: { ...process.env, CONN: JSON.stringify(suite.conn), ...env }, timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout.trim()))
    })
  })
}

test('queries, transactions, large results, streams and COPY on the JS thread (the default)', async () => {
  assert.deepEqual(await run({ HYPERION_IO: '' }), expected)
})

test('the same on the tokio I/O thread (HYPERION_IO=thread)', async () => {
  assert.deepEqual(await run({ HYPERION_IO: 'thread' }), expected)
})

test('a COPY TO whose reader pauses holds the server back without spinning the event loop', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const it = pool.copyTo("copy (select g, repeat('x', 200) from generate_series(1, 2000000) g) to stdout")[Symbol.asyncIterator]()
  const first = await it.next()
  assert.equal(first.done, false)
  // The reader holds its window full; the socket stays readable with nobody reading it.
  // Level-triggered polling that kept asking for it would burn a core here.
  const before = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const wall = Number(process.hrtime.bigint() - t0) / 1000
  const used = process.cpuUsage(before)
  assert.ok(used.user + used.system < wall * 0.5, `CPU ${used.user + used.system} µs in ${wall} µs of waiting`)
  let rows = 0
  for (let r = first; !r.done; r = await it.next()) rows += r.value.toString().split('\n').length - 1
  assert.equal(rows, 2000000)
})

// An idle connection's loop waits for libuv to say its socket is readable (no read after
// EAGAIN). What the server sends unasked must still be read: here, ending the session of an
// idle connection. A write afterwards must go to a fresh connection, not to the dead one.
test('an idle connection reads what the server sends unasked: a session ended under it', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const admin = suite.pool({ poolSize: 1 })
  for (let round = 0; round < 3; round++) {
    const [{ pid }] = await pool.query('select pg_backend_pid() as pid')
    await admin.query('select pg_terminate_backend($1)', [pid])
    await until(async () => (await admin.query('select count(*)::int as n from pg_stat_activity where pid = $1', [pid]))[0].n === 0, 'the session to end')
    // Let the loop read the server's FATAL and the close before the insert goes out.
    await new Promise((resolve) => setTimeout(resolve, 100))
    const id = 1000 + round
    await pool.query('insert into io_t values ($1, $2) on conflict (id) do update set label = excluded.label', [id, 'after'])
    const [{ n }] = await pool.query('select count(*)::int as n from io_t where id = $1', [id])
    assert.equal(n, 1)
    assert.notEqual((await pool.query('select pg_backend_pid() as pid'))[0].pid, pid)
  }
})

// What the pipeline's bound buys (README, Pipelining): when a connection breaks, the writes
// still waiting in line were never sent, so they run again on a new connection; only those
// already on the socket are in doubt. A long statement at the head holds the pipeline full,
// and the connection is dropped under it, with no word from the server.
test('a burst of writes past the pipeline: only what was written is in doubt when the connection breaks', async () => {
  const depth = 4
  const primary = suite.cluster.node(suite.cluster.primaryIndex())
  const proxy = await tcpProxy(primary.host || '127.0.0.1', primary.port)
  const pool = createPool({ ...suite.conn, hosts: [`127.0.0.1:${proxy.port}`], poolSize: 1, pipelineDepth: depth })
  const admin = suite.pool({ poolSize: 1 })
  const ids = Array.from({ length: 40 }, (_, i) => 5000 + i)
  const sleeping = "query = 'select pg_sleep($1)' and state = 'active'"
  const insert = "insert into io_t values ($1, 'burst')"
  try {
    await admin.query('delete from io_t where id >= 5000 and id <= 5040')
    // Both statements prepared first, so that the burst is Bind/Execute only and goes out in
    // the order it was made (a statement's first Parse would wait for its description).
    await pool.query('select pg_sleep($1)', [0])
    await pool.query(insert, [5040])
    const head = pool.query('select pg_sleep($1)', [30])
    const writes = ids.map((id) => pool.query(insert, [id]))
    await until(async () => (await admin.query(`select count(*)::int as n from pg_stat_activity where ${sleeping}`))[0].n === 1, 'the long statement to run')
    proxy.drop()
    await assert.rejects(head, (e) => e.code === 'CONNECTION_CLOSED')
    const outcomes = await Promise.allSettled(writes)
    const inDoubt = ids.filter((_, i) => outcomes[i].status === 'rejected')
    for (const o of outcomes) if (o.status === 'rejected') assert.equal(o.reason.code, 'IN_DOUBT', o.reason.message)
    // The head and depth - 1 writes were on the socket; the rest waited in line, unsent.
    assert.deepEqual(inDoubt, ids.slice(0, depth - 1))
    // The old session still sleeps, so nothing behind its head ran: the acknowledged writes
    // are exactly what is there.
    const rows = await admin.query('select id from io_t where id >= 5000 and id < 5040 order by id')
    assert.deepEqual(rows.map((r) => r.id), ids.slice(depth - 1))
  } finally {
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where ${sleeping}`)
    await pool.end()
    await proxy.close()
  }
})

test('LISTEN keeps its session, and its notifications, while the JS thread is busy', async () => {
  const pool = suite.pool()
  const got = []
  await pool.listen('io_chan', (payload) => got.push(payload))
  // Another process notifies while this one's JS thread is blocked for 3.5 s: the session's
  // health check (every 1 s, 2 s to answer) must not tear it down with the notifications
  // unread in its socket.
  const code = `
    const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
    const p = createPool({ ...JSON.parse(process.env.CONN), poolSize: 1 })
    ;(async () => {
      await p.query('select 1')
      process.send('ready')
      for (let i = 1; i <= 5; i++) {
        await new Promise((r) => setTimeout(r, 400))
        await p.query("select pg_notify('io_chan', $1)", ['n' + i])
      }
      await p.end()
    })().catch((e) => { console.error(e); process.exit(1) })
  `
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, CONN: JSON.stringify(suite.conn), HYPERION_IO: 'thread' } })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  await new Promise((resolve) => child.on('message', resolve))
  const end = Date.now() + 3500
  while (Date.now() < end) { /* the JS thread is busy */ }
  assert.equal(await exited, 0)
  await until(async () => got.length === 5, 'the five notifications')
  assert.deepEqual(got, ['n1', 'n2', 'n3', 'n4', 'n5'])
})

test('workers that exit without end() leave no session open; a worker after an exited one works', async () => {
  // The main thread of the child never loads the client; workers use it in turn and exit
  // with queries done but their pools open.
  const code = `
    const { Worker } = require('node:worker_threads')
    const body = \`
      const { parentPort, workerData } = require('node:worker_threads')
      const { createPool } = require(workerData.client)
      const p = createPool({ ...workerData.conn, poolSize: 3, applicationName: 'io-worker' })
      Promise.all([1, 2, 3].map((i) => p.query('select pg_sleep(0.05), $1::int4 as v', [i])))
        .then((r) => parentPort.postMessage(r.map((x) => x[0].v).join(',')), (e) => parentPort.postMessage('error ' + e.code + ' ' + e.message))
    \`
    ;(async () => {
      for (let i = 0; i < 3; i++) {
        const w = new Worker(body, { eval: true, workerData: { client: ${JSON.stringify(require.resolve('../client.js'))}, conn: JSON.parse(process.env.CONN) } })
        w.on('message', (m) => console.log(m))
        await new Promise((r) => w.on('exit', r))
      }
    })()
  `
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', code], { env: { ...process.env, CONN: JSON.stringify(suite.conn) }, timeout: 60000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)))
  })
  assert.equal(out, '1,2,3\n1,2,3\n1,2,3\n')
  await untilNoSessions(suite.cluster, "application_name = 'io-worker'", "the workers' sessions to close")
})

test('workers that exit while their connections are still being opened leave no session open', async () => {
  // The child's main thread uses the client too, so the runtime outlives the workers: a
  // connect that finishes on it after a worker's environment is gone hands its connection to
  // an executor that no longer runs. That connection must close, not stay open (idle, to the
  // server) until the process ends. Stoppable queries (timeoutMs) open theirs in a task of
  // their own; plain ones in the query's task.
  const code = `
    const { Worker } = require('node:worker_threads')
    const { createPool } = require(${JSON.stringify(require.resolve('../client.js'))})
    const conn = JSON.parse(process.env.CONN)
    const body = \`
      const { workerData } = require('node:worker_threads')
      const { createPool } = require(workerData.client)
      const p = createPool({ ...workerData.conn, poolSize: 2, applicationName: 'io-opening' })
      p.query('select 1', [], { timeoutMs: 10000 }).catch(() => {})
      p.query('select 2').catch(() => {})
      setTimeout(() => process.exit(0), workerData.delay)
    \`
    ;(async () => {
      const main = createPool({ ...conn, poolSize: 1 })
      await main.query('select 1')
      for (let i = 0; i < 12; i++) {
        const w = new Worker(body, { eval: true, workerData: { client: ${JSON.stringify(require.resolve('../client.js'))}, conn, delay: i % 3 } })
        await new Promise((r) => w.on('exit', r))
      }
      // Sessions still open while this process lives: a leak would keep them until it ends.
      let n = -1
      for (let t = 0; t < 100; t++) {
        n = (await main.query("select count(*)::int as n from pg_stat_activity where application_name = 'io-opening'"))[0].n
        if (n === 0) break
        await new Promise((r) => setTimeout(r, 100))
      }
      console.log(n)
      await main.end()
    })().catch((e) => { console.error(e); process.exit(1) })
  `
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', code], { env: { ...process.env, CONN: JSON.stringify(suite.conn) }, timeout: 60000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)))
  })
  assert.equal(out.trim(), '0', 'sessions of exited workers were still open 10 s later')
})

// A run of the JS thread's executor yields to the event loop once its budget (4 ms,
// napi/src/uvloop) is spent, so a burst started in one turn is written in many turns, with
// timers and I/O between them. Without the budget the first run polled every query of the
// burst before anything else ran. The timed burst starts where a service's would: in the
// settlement of an earlier query, inside a run.
test('a burst of queries started in one turn leaves the event loop turning while it is written', async (t) => {
  const p = suite.pool({ poolSize: 4 })
  await p.query('select 1')
  const n = 10000
  const burst = async () => {
    const started = performance.now()
    const queries = []
    for (let i = 0; i < n; i++) queries.push(p.query('select $1::int4 as i', [i]))
    const all = Promise.all(queries)
    const issued = performance.now()
    const turned = new Promise((resolve) => setImmediate(() => resolve(performance.now())))
    const rows = await all
    assert.ok(rows.every((r, i) => r[0].i === i), 'every query got its own answer')
    return { issuing: issued - started, stopped: (await turned) - issued }
  }
  await burst() // compiled and warm: the timed burst is not the first
  const { issuing, stopped } = await burst()
  t.diagnostic(`${n} queries started in ${issuing.toFixed(1)} ms; the event loop turned ${stopped.toFixed(1)} ms later`)
  // No timing promise, a proportion of the same process's work: the run that starts the
  // burst's requests stops after its budget and a round of polls (0.1-2.6 ms here, against
  // 32-58 ms to start them); without the budget it polled them all (24 ms against 45).
  assert.ok(stopped < issuing / 4, `the event loop stood still ${stopped.toFixed(1)} ms after ${n} queries were started in ${issuing.toFixed(1)} ms`)
})

// A burst far past what a connection's pipeline holds waits in the connection's request
// queue, in line: each request the protocol loop takes wakes the next sender. When every
// pop woke every waiting sender, this burst's wake-ups grew with its square: on the bench
// server 40,000 queries on one connection took 26 s, and at 80,000 the connection's head
// looked stalled for so long that queries failed with 53300 after acquireTimeoutMs; here the
// test ran past its 120 s. In line it takes 1.5 s.
test('a burst of 80,000 queries on a pool of one: every one answered in order, none timed out', { timeout: 120000 }, async () => {
  const p = suite.pool({ poolSize: 1 })
  await p.query('select 1')
  const n = 80000
  const rows = await Promise.all(Array.from({ length: n }, (_, i) => p.query('select $1::int4 as i', [i])))
  assert.equal(rows.length, n)
  assert.ok(rows.every((r, i) => r.length === 1 && r[0].i === i), 'every query got its own answer')
})

// Queries given up while they wait in line (an AbortSignal fired mid-burst) leave the line
// without taking anyone's turn: every other query of the burst gets its own answer, and the
// pool goes on. (A wake-up lost with a dropped waiter heals here while the line moves; the
// unit tests in wire/src/queue.rs pin the pass-on itself.)
test('a burst on a pool of one with half its queries aborted while they wait: the other half all answered', { timeout: 60000 }, async () => {
  const p = suite.pool({ poolSize: 1 })
  await p.query('select 1')
  const n = 20000
  const ac = new AbortController()
  const queries = Array.from({ length: n }, (_, i) =>
    i % 2 ? p.query('select $1::int4 as i', [i], { signal: ac.signal }) : p.query('select $1::int4 as i', [i]))
  setImmediate(() => ac.abort())
  const outcomes = await Promise.allSettled(queries)
  let aborted = 0
  outcomes.forEach((o, i) => {
    if (o.status === 'fulfilled') assert.equal(o.value[0].i, i)
    else {
      assert.ok(i % 2 === 1, `query ${i}, never aborted, failed: ${o.reason}`)
      assert.equal(o.reason.code, 'ABORT_ERR')
      aborted++
    }
  })
  assert.ok(aborted > 0, 'some queries were still waiting when the signal fired')
  assert.deepEqual(await p.query('select 42 as x'), [{ x: 42 }])
})
