'use strict'
// Transactions and exclusive checkouts, against the real cluster: BEGIN/COMMIT/ROLLBACK,
// isolation, retries of the whole callback, 53300 when every connection is checked out or
// running a long statement,
// status() under load, abandoned transactions, and a COMMIT reported IN_DOUBT.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const v8 = require('node:v8')
const vm = require('node:vm')
const { useCluster } = require('./support.js')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// Polls `check` until it holds (instead of sleeping for a guessed time); fails after ~5 s.
async function until(check, what) {
  for (let i = 0; i < 500; i++) {
    if (await check()) return
    await sleep(10)
  }
  assert.fail(`timed out waiting for ${what}`)
}
const suite = useCluster({
  async setup(s) {
    const p = s.pool()
    await p.query('drop table if exists t_tx')
    await p.query('create table t_tx (k text primary key, n int not null default 0)')
  },
})
const pool = suite.pool

// How many statements starting with `prefix` the server has been running for at least
// `forMs` (seen from another pool). The pool stops pipelining behind a statement that has run
// for 100 ms (pool/src/lease.rs STALLED_MS): 150 is "a while".
let watcher
async function running(prefix, forMs = 150) {
  watcher = watcher || pool({ poolSize: 1 })
  const [r] = await watcher.query(
    "select count(*)::int as n from pg_stat_activity where state = 'active' and starts_with(query, $1) " +
      'and clock_timestamp() - query_start >= make_interval(secs => $2::float8 / 1000)', [prefix, forMs])
  return r.n
}

test('transaction(cb) commits; a throw rolls back', async () => {
  const p = pool()
  const id = await p.transaction(async (tx) => {
    await tx.query('insert into t_tx (k) values ($1)', ['a'])
    const rows = await tx.query('update t_tx set n = n + 1 where k = $1 returning k', ['a'])
    return rows[0].k
  })
  assert.equal(id, 'a')
  await assert.rejects(
    p.transaction(async (tx) => {
      await tx.query('insert into t_tx (k) values ($1)', ['b'])
      throw new Error('changed my mind')
    }),
    /changed my mind/
  )
  const rows = await p.query('select k, n from t_tx order by k')
  assert.deepEqual(rows, [{ k: 'a', n: 1 }])
})

test('transaction(cb) never runs again a callback that committed itself and then threw', async () => {
  const p = pool({ poolSize: 1 })
  let runs = 0
  const failure = Object.assign(new Error('the notification after the commit failed'), { code: '40001' })
  await assert.rejects(
    p.transaction(async (tx) => {
      runs++
      await tx.query("insert into t_tx (k, n) values ('committed-once', 1) on conflict (k) do update set n = t_tx.n + 1")
      await tx.commit()
      throw failure // retryable by its code, but the commit is done
    }, { maxAttempts: 3 }),
    (e) => e === failure,
  )
  assert.equal(runs, 1)
  assert.deepEqual(await p.query("select n from t_tx where k = 'committed-once'"), [{ n: 1 }])
})

test('BEGIN through pool.query is refused before it is sent: other callers would run inside it', async () => {
  const p = pool({ poolSize: 1 })
  for (const sql of ['BEGIN', 'start transaction isolation level serializable', '/* a /* nested */ comment */ begin']) {
    await assert.rejects(p.query(sql), (e) => e.code === 'UNSAFE_TRANSACTION' && /pool\.transaction/.test(e.message), sql)
  }
  // The connection is not in a transaction: a write through it commits at once.
  await p.query("insert into t_tx (k) values ('after-begin')")
  const c = await suite.cluster.admin(suite.cluster.primaryIndex())
  try {
    const { rows } = await c.query("select count(*)::int as n from t_tx where k = 'after-begin'")
    assert.equal(Number(rows[0].n), 1, 'committed, seen from another session')
  } finally {
    await c.end()
  }
})

test('begin(): statements share one connection; commit and rollback; isolation applies', async () => {
  const p = pool({ poolSize: 3 })
  const tx = await p.begin({ isolation: 'serializable' })
  const pids = new Set()
  for (let i = 0; i < 5; i++) pids.add((await tx.query('select pg_backend_pid() as pid'))[0].pid)
  assert.equal(pids.size, 1, 'every statement ran on the same backend')
  assert.deepEqual(await tx.query('show transaction_isolation'), [{ transaction_isolation: 'serializable' }])
  await tx.query("insert into t_tx (k) values ('c')")
  await tx.rollback()
  await assert.rejects(tx.query('select 1'), { code: 'TRANSACTION_FINISHED' })
  const tx2 = await p.begin()
  await tx2.query("insert into t_tx (k) values ('d')")
  // Not visible outside before COMMIT.
  assert.deepEqual(await p.query("select count(*)::int as n from t_tx where k = 'd'"), [{ n: 0 }])
  await tx2.commit()
  assert.deepEqual(await p.query("select k from t_tx where k in ('c', 'd') order by k"), [{ k: 'd' }])
  await assert.rejects(p.begin({ isolation: 'snapshot' }), { code: 'INVALID_ARGUMENT' })
})

// What the server says of backend `pid`, seen from another pool.
async function backend(pid) {
  watcher = watcher || pool({ poolSize: 1 })
  const [r] = await watcher.query('select state, xact_start is not null as open from pg_stat_activity where pid = $1', [pid])
  return r ?? null
}

test('begin() sends nothing: BEGIN goes out with the first statement; a transaction that ran nothing ends without one', async () => {
  const p = pool({ poolSize: 1 })
  // The pool's one connection, which begin() then checks out.
  const [{ pid }] = await p.query('select pg_backend_pid() as pid')
  const tx = await p.begin({ isolation: 'repeatable-read' })
  assert.deepEqual(await backend(pid), { state: 'idle', open: false }, 'no transaction is open on the server yet')
  const [r] = await tx.query("select current_setting('transaction_isolation') as iso, pg_backend_pid() as pid")
  assert.deepEqual(r, { iso: 'repeatable read', pid }, 'the first statement ran inside the BEGIN, on the same backend')
  assert.deepEqual(await backend(pid), { state: 'idle in transaction', open: true })
  await tx.commit()
  assert.deepEqual(await backend(pid), { state: 'idle', open: false })
  for (const end of ['commit', 'rollback']) {
    const empty = await p.begin()
    await empty[end]()
    await assert.rejects(empty.query('select 1'), { code: 'TRANSACTION_FINISHED' })
  }
  assert.deepEqual(p.status().size, 1, 'the connection went back to the pool, not destroyed')
  assert.deepEqual(await p.query('select pg_backend_pid() as pid'), [{ pid }])
})

test("a transaction's first statement moves to another connection when its own died after begin()", async () => {
  const p = pool({ poolSize: 1 })
  const [{ pid }] = await p.query('select pg_backend_pid() as pid')
  const tx = await p.begin()
  await backend(pid)
  await watcher.query('select pg_terminate_backend($1)', [pid])
  await until(async () => (await backend(pid)) === null, 'the backend to exit')
  // Nothing of the transaction had run: its first statement (with BEGIN) runs on a fresh one.
  const [r] = await tx.query("insert into t_tx (k) values ('moved') returning pg_backend_pid() as pid")
  assert.notEqual(r.pid, pid)
  const [again] = await tx.query('select pg_backend_pid() as pid')
  assert.equal(again.pid, r.pid, 'the rest of the transaction stays on the new connection')
  await tx.commit()
  assert.deepEqual(await p.query("select count(*)::int as n from t_tx where k = 'moved'"), [{ n: 1 }])
})

test("a first statement that makes its own session read-only runs once and leaves the primary in use", async () => {
  const p = pool({ poolSize: 2 })
  await p.query('drop sequence if exists t_tx_seq')
  await p.query('create sequence t_tx_seq')
  const tx = await p.begin()
  // The session reports default_transaction_read_only on: the transaction's own doing, not a fence.
  const [r] = await tx.query("select set_config('default_transaction_read_only', 'on', true) as ro, nextval('t_tx_seq')::int as n")
  assert.deepEqual(r, { ro: 'on', n: 1 })
  assert.deepEqual(await tx.query('select 2 as v'), [{ v: 2 }])
  await tx.commit()
  assert.deepEqual(await p.query("select last_value::int as n from t_tx_seq"), [{ n: 1 }], 'the statement ran once')
  const states = p.hosts().map((h) => h.state)
  assert.ok(states.includes('primary') && !states.includes('fenced'), JSON.stringify(p.hosts()))
  await p.query("insert into t_tx (k) values ('after-ro') on conflict do nothing")
})

test('a first statement the server refuses before BEGIN ran aborts the transaction; one never sent leaves it intact', async () => {
  const p = pool({ poolSize: 1 })
  // 42P01 at Parse, which goes before the statement (and its BEGIN).
  const tx = await p.begin()
  await assert.rejects(tx.query('select * from t_tx_no_such_table'), { code: '42P01' })
  await assert.rejects(tx.query("insert into t_tx (k) values ('aborted')"), { code: '25P02' })
  await assert.rejects(tx.commit(), { code: '25P02' })
  // A parameter that cannot be encoded is refused before anything is sent.
  const tx2 = await p.begin()
  await assert.rejects(tx2.query('select $1::int4 as v', [1.5]), { code: 'INVALID_PARAMETER' })
  await tx2.query("insert into t_tx (k) values ('intact')")
  await tx2.commit()
  assert.deepEqual(await p.query("select k from t_tx where k in ('aborted', 'intact') order by k"), [{ k: 'intact' }])
})

test('transaction(cb) retries the whole callback on a serialization failure (40001)', async () => {
  const p = pool()
  let calls = 0
  const out = await p.transaction(async (tx) => {
    calls++
    await tx.query("insert into t_tx (k) values ('e') on conflict (k) do update set n = t_tx.n + 1")
    if (calls < 3) await tx.query("do $$ begin raise exception 'simulated conflict' using errcode = '40001'; end $$")
    return calls
  }, { maxAttempts: 5 })
  assert.equal(out, 3)
  // The two failed attempts were rolled back: exactly one insert landed.
  assert.deepEqual(await p.query("select n from t_tx where k = 'e'"), [{ n: 0 }])
  // Not retried past maxAttempts, and other errors are not retried at all.
  calls = 0
  await assert.rejects(
    p.transaction(async (tx) => {
      calls++
      await tx.query("do $$ begin raise exception 'conflict' using errcode = '40001'; end $$")
    }, { maxAttempts: 2 }),
    { code: '40001' }
  )
  assert.equal(calls, 2)
  calls = 0
  await assert.rejects(p.transaction(async (tx) => { calls++; await tx.query('select 1/0') }), { code: '22012' })
  assert.equal(calls, 1)
})

test('a failed statement aborts the transaction: COMMIT reports 25P02, not success', async () => {
  const p = pool()
  const tx = await p.begin()
  await assert.rejects(tx.query('select 1/0'), { code: '22012' })
  await assert.rejects(tx.commit(), { code: '25P02' })
  assert.equal(p.status().size >= 1, true)
})

test('with every connection checked out, queries and begin() wait acquireTimeoutMs, then 53300', async () => {
  const p = pool({ poolSize: 2, acquireTimeoutMs: 400 })
  const a = await p.begin()
  const b = await p.begin()
  assert.deepEqual(p.status(), { maxSize: 2, size: 2, available: 0, inUse: 2, waiting: 0 })
  const started = Date.now()
  const waiting = [p.query('select 1'), p.begin()]
  await until(() => p.status().waiting === 2, 'both callers to wait')
  assert.deepEqual(p.status(), { maxSize: 2, size: 2, available: 0, inUse: 2, waiting: 2 })
  // Both settle at about the same time, in either order: wait for both before looking.
  for (const r of await Promise.allSettled(waiting)) {
    assert.equal(r.status, 'rejected')
    assert.equal(r.reason.code, '53300')
  }
  assert.ok(Date.now() - started >= 300, 'waited about acquireTimeoutMs')
  assert.equal(p.status().waiting, 0)
  // A waiter gets the connection as soon as one is returned.
  const next = p.begin()
  await until(() => p.status().waiting === 1, 'begin() to wait')
  await a.commit()
  const c = await next
  await c.rollback()
  await b.rollback()
  assert.deepEqual(p.status(), { maxSize: 2, size: 2, available: 2, inUse: 0, waiting: 0 })
})

test('with every connection running a long statement, a query waits acquireTimeoutMs, then 53300', async () => {
  // Queries pipeline onto busy connections, but not behind a statement that has run for a
  // while: that would queue them for as long as it runs.
  const p = pool({ poolSize: 2, acquireTimeoutMs: 400 })
  const long = [p.query('select pg_sleep(2) /* long-2 */'), p.query('select pg_sleep(2) /* long-2 */')]
  await until(async () => (await running('select pg_sleep(2) /* long-2 */')) === 2, 'both statements to run')
  assert.equal(p.status().size, 2)
  const started = Date.now()
  const q = p.query('select 1 as x')
  await until(() => p.status().waiting === 1, 'the query to wait')
  await assert.rejects(q, { code: '53300', message: /all connections are busy/ })
  assert.ok(Date.now() - started >= 300, 'waited about acquireTimeoutMs')
  await Promise.all(long)
  assert.deepEqual(await p.query('select 1 as x'), [{ x: 1 }])

  // A query waiting for such a connection gets it as soon as the statement ends.
  const one = pool({ poolSize: 1, acquireTimeoutMs: 10000 })
  const sleeping = one.query('select pg_sleep(1) /* long-1 */')
  await until(async () => (await running('select pg_sleep(1) /* long-1 */')) === 1, 'the statement to run a while')
  const next = one.query('select 2 as y')
  await until(() => one.status().waiting === 1, 'the query to wait')
  await sleeping
  assert.deepEqual(await next, [{ y: 2 }])
  assert.equal(one.status().waiting, 0)
})

test('40 transactions over a pool of 2: served in about the order they asked (FIFO line), none lost, the pool ends idle', async () => {
  const p = pool({ poolSize: 2, acquireTimeoutMs: 20000 })
  const order = []
  await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      p.transaction(async (tx) => {
        order.push(i)
        await tx.query("insert into t_tx (k) values ($1) on conflict (k) do update set n = t_tx.n + 1", ['load'])
      })
    )
  )
  assert.equal(order.length, 40)
  // The pool's line is first come, first served (pool/tests/lease.rs checks it exactly). From
  // JS, the 40 calls reach the line as their tasks run, which is nearly but not exactly call
  // order, and two connections serve it. A bound on how far each one may start from its turn
  // (two places, then six) kept failing under load (CI's matrix, 2 cores shared with the
  // server), when the runtime runs a few calls' tasks out of order. What tells a line from
  // any other service order is how the whole order runs: of all pairs of transactions, the
  // share started in the order they were called. FIFO stays near 1 even with heavy local
  // shuffles (swaps of up to 7 places, simulated: never below 0.80 in 10,000 tries), a random
  // order is near 0.5 (0.7 is over 3 standard deviations out), LIFO (the last caller first)
  // is 0.1.
  let inOrder = 0
  let pairs = 0
  for (let a = 0; a < order.length; a++) {
    for (let b = a + 1; b < order.length; b++) {
      pairs++
      if (order[a] < order[b]) inOrder++
    }
  }
  assert.ok(inOrder / pairs >= 0.7, `${((100 * inOrder) / pairs).toFixed(1)}% of pairs in call order: ${order}`)
  assert.deepEqual(await p.query("select n from t_tx where k = 'load'"), [{ n: 39 }])
  const st = p.status()
  assert.equal(st.waiting, 0)
  assert.equal(st.inUse, 0)
  assert.deepEqual(st, { maxSize: 2, size: 2, available: 2, inUse: 0, waiting: 0 })
})

test('a transaction abandoned without commit/rollback is rolled back and its connection destroyed', async () => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc')
  const p = pool({ poolSize: 1 })
  let pid
  await (async () => {
    const tx = await p.begin()
    pid = (await tx.query('select pg_backend_pid() as pid'))[0].pid
    await tx.query("insert into t_tx (k) values ('abandoned')")
  })()
  // Nothing references the transaction now.
  for (let i = 0; i < 20 && p.status().size > 0; i++) {
    gc()
    await sleep(50)
  }
  assert.equal(p.status().size, 0, 'the connection left the pool')
  const [r] = await p.query("select count(*)::int as n, pg_backend_pid() as pid from t_tx where k = 'abandoned'")
  assert.equal(r.n, 0, 'the insert was rolled back')
  assert.notEqual(r.pid, pid, 'a fresh connection serves the next query')
})

// Runs `commit()` (a promise of a write's commit) while every standby is stopped, so that it
// waits for synchronous replication, cancels that wait on the server, and returns what the
// commit settled with: its error, or null for success.
async function cancelledSyncWait(commit) {
  const committing = commit().then(() => null, (e) => e)
  const admin = await suite.cluster.admin(suite.cluster.primaryIndex())
  try {
    let cancelled = false
    for (let i = 0; i < 100 && !cancelled; i++) {
      const { rows } = await admin.query("select pg_cancel_backend(pid) as ok from pg_stat_activity where wait_event = 'SyncRep'")
      cancelled = rows.some((r) => r.ok === 't')
      if (!cancelled) await sleep(50)
    }
    assert.ok(cancelled, 'the commit was waiting for synchronous replication')
  } finally {
    await admin.end()
  }
  return committing
}

test('a commit whose synchronous-replication wait is cancelled is IN_DOUBT, never success', async () => {
  const p = pool({ poolSize: 2 })
  const standbys = [0, 1, 2].filter((i) => i !== suite.cluster.primaryIndex())
  for (const i of standbys) await suite.cluster.stop(i, 'immediate')
  const keys = ['doubt', 'doubt-autocommit', 'doubt-session', 'doubt-insert', 'doubt-script']
  try {
    const tx = await p.begin()
    await tx.query("insert into t_tx (k) values ('doubt')")
    const commits = {
      // A transaction's COMMIT.
      COMMIT: () => tx.commit(),
      // A plain statement commits at its Sync: the same WARNING comes after its tag.
      'pool.query': () => p.query("insert into t_tx (k) values ('doubt-autocommit')"),
      'a session query': async () => {
        const c = await p.connect()
        try {
          return await c.query("insert into t_tx (k) values ('doubt-session')")
        } finally {
          await c.release()
        }
      },
      'pool.insert': () => p.insert('t_tx', { k: 'doubt-insert' }),
      'pool.script': () => p.script("insert into t_tx (k) values ('doubt-script')"),
    }
    for (const [what, commit] of Object.entries(commits)) {
      const e = await cancelledSyncWait(commit)
      assert.ok(e, `${what} must not report success`)
      assert.equal(e.code, 'IN_DOUBT', `${what}: ${e.message}`)
      assert.match(e.message, /synchronous replication/)
    }
  } finally {
    for (const i of standbys) await suite.cluster.start(i)
    await suite.cluster.heal()
  }
  // And they really were in doubt: the rows are on the primary although the client was not
  // told they committed.
  assert.deepEqual(
    (await p.query('select k from t_tx where k = any($1) order by k', [keys])).map((r) => r.k),
    [...keys].sort(),
  )
})
