'use strict'
// A real PgBouncer (test/pgbouncer.js) in transaction mode in front of the cluster's primary.
// With `prepare: false` the pool's statements are unnamed, so they survive PgBouncer handing
// each transaction to whichever server connection is free: the suite's query, transaction and
// stream cases pass through it. Without it, named statements meet the server connections of
// other clients, and the server says so (42P05 / 26000).

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')
const { startPgBouncer, pgbouncerBinary } = require('./pgbouncer.js')

// Without pgbouncer (not installed and not root to install it) the file is skipped, except in
// CI, where it must run.
const bin = pgbouncerBinary()
const skip = bin.error && !process.env.CI ? bin.error : false

const bouncers = []
let main // the shared bouncer, 2 server connections
const suite = useCluster({
  async setup(s) {
    if (skip) return
    const p = s.pool({ poolSize: 1 })
    await p.query('drop table if exists pgb_t')
    await p.query('create table pgb_t (id int primary key, label text not null, n int8, doc jsonb)')
    main = await bouncer(2)
  },
})
after(async () => { for (const b of bouncers) await b.stop() })

// A PgBouncer in front of the current primary; `poolSize` is its default_pool_size (server
// connections per user and database).
async function bouncer(poolSize = 2) {
  const c = suite.conn
  const b = await startPgBouncer({ target: suite.cluster.node(suite.cluster.primaryIndex()), user: c.user, password: c.password, database: c.database, poolSize })
  bouncers.push(b)
  return b
}

// A pool whose only host is the bouncer, with unnamed statements (`prepare: false`)...
const via = (b, opts = {}) => suite.pool({ hosts: [`${b.host}:${b.port}`], prepare: false, poolSize: 4, ...opts })
// ... or with the default, named statements prepared once per connection.
const named = (b, opts = {}) => suite.pool({ hosts: [`${b.host}:${b.port}`], poolSize: 4, ...opts })

test('the pool reaches the server through PgBouncer in transaction mode', { skip }, async () => {
  const p = via(main)
  const [row] = await p.query('select current_user as u, current_database() as d')
  assert.deepEqual(row, { u: suite.conn.user, d: suite.conn.database })
  const config = Object.fromEntries((await main.admin('show config')).rows.map((r) => [r.key, r.value]))
  assert.equal(config.pool_mode, 'transaction')
  const clients = (await main.admin('show clients')).rows.filter((r) => r.database === suite.conn.database)
  assert.ok(clients.length >= 1, 'the pool is a client of the bouncer')
})

test('prepare: false: parameters of several types, and their values back', { skip }, async () => {
  const p = via(main)
  const when = new Date('2024-02-29T12:34:56.789Z')
  const [row] = await p.query(
    'select $1::int4 as i, $2::int8 as b, $3::text as t, $4::bool as f, $5::numeric as num, $6::float8 as x, ' +
      '$7::bytea as bin, $8::jsonb as doc, $9::timestamptz as ts, $10::uuid as id, $11::text[] as arr, $12::int4 as nul, $13::date as d',
    [42, 9007199254740993n, 'héllo', true, '12.30', 1.5, Buffer.from([0, 1, 255]), { a: [1, 'x'] }, when,
      'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', ['a', null, 'c'], null, '2024-02-29'])
  assert.deepEqual(row, {
    i: 42, b: 9007199254740993n, t: 'héllo', f: true, num: '12.30', x: 1.5, bin: Buffer.from([0, 1, 255]), doc: { a: [1, 'x'] },
    ts: '2024-02-29T12:34:56.789000Z', id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', arr: ['a', null, 'c'], nul: null, d: '2024-02-29',
  })
  // Into a table and back, with metadata and rows as arrays.
  const ins = await p.query('insert into pgb_t (id, label, n, doc) values ($1, $2, $3, $4), ($5, $6, $7, $8)',
    [1, 'one', 1n, { k: 1 }, 2, 'two', -(2n ** 62n), null])
  assert.equal(ins.command, 'INSERT')
  assert.equal(ins.rowCount, 2)
  const rows = await p.query('select id, label, n, doc from pgb_t where id = any($1) order by id', [[1, 2]], { rowMode: 'array' })
  assert.deepEqual(rows, [[1, 'one', 1n, { k: 1 }], [2, 'two', -(2n ** 62n), null]])
  assert.deepEqual(rows.fields.map((f) => f.name), ['id', 'label', 'n', 'doc'])
  const upd = await p.query('update pgb_t set label = label || $1 where id <= $2', ['!', 2])
  assert.equal(upd.rowCount, 2)
})

test('prepare: false: 400 distinct statements, concurrently, from more clients than server connections', { skip }, async () => {
  const p = via(main, { poolSize: 6 })
  const out = await Promise.all(Array.from({ length: 400 }, (_, i) =>
    p.query(`select ${i}::int as i, $1::text as s, pg_backend_pid() as pid`, [`s${i}`])))
  assert.deepEqual(out.map((r) => r[0].i), Array.from({ length: 400 }, (_, i) => i))
  assert.ok(out.every((r, i) => r[0].s === `s${i}`))
  // Statements went to the bouncer's two server connections; not one named statement is left
  // on either of them.
  const pids = new Set(out.map((r) => r[0].pid))
  assert.ok(pids.size >= 1 && pids.size <= 2, `server backends: ${[...pids]}`)
  for (let i = 0; i < 6; i++) {
    const [{ n }] = await p.query('select count(*)::int as n from pg_prepared_statements')
    assert.equal(n, 0)
  }
  const servers = (await main.admin('show servers')).rows.filter((r) => r.database === suite.conn.database)
  assert.ok(servers.length <= 2, `${servers.length} server connections`)
})

test('prepare: false: errors reject with their SQLSTATE and the pool stays usable', { skip }, async () => {
  const p = via(main, { poolSize: 2 })
  const results = await Promise.allSettled([
    p.query('select 1/0'),
    p.query('select nope from pgb_t'),
    p.query('selec 1'),
    p.query('insert into pgb_t (id, label) values ($1, $2)', [1, 'dup']),
    p.query('select $1::int4 as i', [1.5]),
    p.query('select $1::int as ok', [7]),
  ])
  assert.deepEqual(results.map((r) => r.status === 'rejected' ? r.reason.code : r.value[0].ok),
    ['22012', '42703', '42601', '23505', 'INVALID_PARAMETER', 7])
  assert.equal(results[3].reason.constraint, 'pgb_t_pkey')
  // Still usable, for plain statements and for transactions.
  for (let i = 0; i < 20; i++) assert.deepEqual(await p.query('select $1::int as i', [i]), [{ i }])
  assert.equal(await p.transaction(async (tx) => (await tx.query('select 5 as v'))[0].v), 5)
})

test('prepare: false: transaction(cb) commits, a throw rolls back; a transaction keeps one server connection', { skip }, async () => {
  const p = via(main)
  await p.transaction(async (tx) => {
    await tx.query('insert into pgb_t (id, label) values ($1, $2)', [10, 'ten'])
    await tx.query('update pgb_t set n = $1 where id = $2', [100n, 10])
  })
  await assert.rejects(p.transaction(async (tx) => {
    await tx.query('insert into pgb_t (id, label) values ($1, $2)', [11, 'eleven'])
    throw new Error('changed my mind')
  }), /changed my mind/)
  assert.deepEqual(await p.query('select id, n from pgb_t where id in (10, 11) order by id'), [{ id: 10, n: 100n }])

  // Under concurrency from other clients, every statement of a transaction runs on the same
  // backend (PgBouncer keeps the server connection until the transaction ends).
  const noise = via(main, { poolSize: 4 })
  let stop = false
  const background = (async () => { while (!stop) await noise.query('select pg_sleep(0.002)') })()
  try {
    const tx = await p.begin({ isolation: 'repeatable-read' })
    const pids = new Set()
    for (let i = 0; i < 10; i++) pids.add((await tx.query('select pg_backend_pid() as pid'))[0].pid)
    assert.equal(pids.size, 1)
    assert.deepEqual(await tx.query('show transaction_isolation'), [{ transaction_isolation: 'repeatable read' }])
    await tx.query('insert into pgb_t (id, label) values ($1, $2)', [12, 'twelve'])
    assert.deepEqual(await p.query('select count(*)::int as n from pgb_t where id = 12'), [{ n: 0 }])
    await tx.commit()
  } finally {
    stop = true
    await background
  }
  assert.deepEqual(await p.query('select count(*)::int as n from pgb_t where id = 12'), [{ n: 1 }])

  const tx = await p.begin()
  await tx.query('insert into pgb_t (id, label) values ($1, $2)', [13, 'thirteen'])
  await tx.rollback()
  const aborted = await p.begin()
  await assert.rejects(aborted.query('select 1/0'), { code: '22012' })
  await assert.rejects(aborted.commit(), { code: '25P02' })
  assert.deepEqual(await p.query('select count(*)::int as n from pgb_t where id = 13'), [{ n: 0 }])
})

test('prepare: false: pool.stream and tx.stream deliver every row in order; an error mid-stream and an early break leave the pool usable', { skip }, async () => {
  const p = via(main, { poolSize: 2 })
  let n = 0
  for await (const row of p.stream('select g, $1::text as tag from generate_series(1, $2::int) g', ['t', 5000], { batchSize: 250 })) {
    n++
    if (row.g !== n || row.tag !== 't') assert.fail(`row ${n}: ${JSON.stringify(row)}`)
  }
  assert.equal(n, 5000)

  await p.transaction(async (tx) => {
    await tx.query("insert into pgb_t (id, label) select g, 'streamed' from generate_series(100, 399) g")
    const ids = []
    for await (const row of tx.stream("select id from pgb_t where label = $1 order by id", ['streamed'], { batchSize: 64 })) ids.push(row.id)
    assert.deepEqual(ids, Array.from({ length: 300 }, (_, i) => 100 + i))
  })

  await assert.rejects(async () => {
    for await (const row of p.stream('select 1 / (1000 - g) as v from generate_series(1, 2000) g', [], { batchSize: 100 })) void row
  }, { code: '22012' })

  let seen = 0
  for await (const row of p.stream('select g from generate_series(1, 100000) g', [], { batchSize: 100 })) {
    if (++seen === 150) break
    void row
  }
  assert.equal(seen, 150)
  assert.deepEqual(await p.query('select count(*)::int as n from pgb_t where label = $1', ['streamed']), [{ n: 300 }])
  const more = await Promise.all(Array.from({ length: 10 }, (_, i) => p.query('select $1::int as i', [i])))
  assert.deepEqual(more.map((r) => r[0].i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})

test('prepare: false: a checked-out connection works through the bouncer', { skip }, async () => {
  const p = via(main, { poolSize: 2 })
  const c = await p.connect()
  try {
    const rows = await c.query('select $1::int + 1 as v', [41])
    assert.deepEqual(rows, [{ v: 42 }])
    assert.equal(rows.rowCount, 1)
    await c.query('begin')
    await c.query('insert into pgb_t (id, label) values ($1, $2)', [20, 'checked-out'])
    await c.query('commit')
  } finally {
    await c.release()
  }
  assert.deepEqual(await p.query('select label from pgb_t where id = 20'), [{ label: 'checked-out' }])
})

// Named statements behind transaction-mode PgBouncer. Our statements are named per
// connection, so two client connections on one server connection use the same name for
// different statements; PgBouncer 1.18 (Debian 12) does not track prepared statements, and
// 1.21+ does not either with max_prepared_statements = 0 (as the harness sets it).
test('without prepare: false, named statements collide on the shared server connection (42P05/26000, named in the message)', { skip }, async () => {
  const one = await bouncer(1) // one server connection, so the collision is certain
  const a = named(one, { poolSize: 1 })
  const b = named(one, { poolSize: 1 })
  assert.deepEqual(await a.query('select $1::int as a', [1]), [{ a: 1 }])
  const err = await b.query('select $1::text as b', ['x']).then(() => null, (e) => e)
  assert.ok(err, `the second client's named statement did not collide (PgBouncer ${one.version}, ${one.preparedStatements})`)
  assert.ok(['42P05', '26000'].includes(err.code), `${err.code}: ${err.message}`)
  assert.match(err.message, /prepared statement "[^"]+" (already exists|does not exist)/)
  assert.match(err.hint, /pooler in transaction mode \(PgBouncer\), use prepare: false/)
  // The same statements per statement unnamed ({ prepare: false } as the third argument), on
  // pools that prepare by default: every one runs.
  const c = named(one, { poolSize: 3 })
  const d = named(one, { poolSize: 3 })
  const out = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    (i % 2 ? c : d).query(`select ${i % 17}::int as k, $1::int as i`, [i], { prepare: false })))
  assert.deepEqual(out.map((r) => r[0].i), Array.from({ length: 200 }, (_, i) => i))
  // And a mixed workload of named statements fails, each failure one of the two codes.
  const mixed = await Promise.allSettled(Array.from({ length: 100 }, (_, i) =>
    (i % 2 ? c : d).query(`select ${i % 7}::int as k, $1::int as i`, [i])))
  const failed = mixed.filter((r) => r.status === 'rejected').map((r) => r.reason)
  assert.ok(failed.length > 0, 'some named statements collided')
  for (const e of failed) assert.ok(['42P05', '26000'].includes(e.code), `${e.code}: ${e.message}`)
})

test('prepare: false: Drizzle and Kysely (test/orm/) through the bouncer, transactions included', { skip }, async () => {
  const { drizzleFor } = require('./orm/drizzle.js')
  const { HyperionDialect } = require('./orm/kysely.js')
  const { sql, eq } = require('drizzle-orm')
  const { pgTable, integer, text } = require('drizzle-orm/pg-core')
  const { Kysely } = require('kysely')
  const p = via(main, { poolSize: 3 })
  const t = pgTable('pgb_t', { id: integer('id').primaryKey(), label: text('label').notNull() })
  const db = drizzleFor(p)
  await db.insert(t).values([{ id: 500, label: 'drizzle' }, { id: 501, label: 'drizzle' }])
  await db.transaction(async (tx) => {
    await tx.update(t).set({ label: 'drizzle-tx' }).where(eq(t.id, 500))
    await tx.execute(sql`select pg_sleep(0.01)`)
  })
  await assert.rejects(db.transaction(async (tx) => { await tx.delete(t).where(eq(t.id, 501)); throw new Error('undo') }), /undo/)
  assert.deepEqual(await db.select().from(t).where(sql`${t.id} in (500, 501)`).orderBy(t.id), [{ id: 500, label: 'drizzle-tx' }, { id: 501, label: 'drizzle' }])

  const k = new Kysely({ dialect: new HyperionDialect({ pool: p }) })
  await k.transaction().execute(async (trx) => {
    await trx.insertInto('pgb_t').values({ id: 502, label: 'kysely' }).execute()
    const r = await trx.updateTable('pgb_t').set({ label: 'kysely-tx' }).where('id', 'in', [501, 502]).executeTakeFirst()
    assert.equal(r.numUpdatedRows, 2n)
  })
  await assert.rejects(k.transaction().execute(async (trx) => { await trx.deleteFrom('pgb_t').execute(); throw new Error('undo') }), /undo/)
  assert.deepEqual(await k.selectFrom('pgb_t').select(['id', 'label']).where('id', '>=', 500).orderBy('id').execute(),
    [{ id: 500, label: 'drizzle-tx' }, { id: 501, label: 'kysely-tx' }, { id: 502, label: 'kysely-tx' }])
})
