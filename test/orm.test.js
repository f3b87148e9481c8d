'use strict'
// Drizzle and Kysely end to end through our pool, on checked-out connections (`pool.connect()`)
// where they need one: test/orm/drizzle.js (Drizzle's pg-proxy driver, plus transactions) and
// test/orm/kysely.js (a Kysely dialect whose driver checks connections out of the pool). Each
// query builder: create table, insert, select with where, update with the affected count,
// delete, a transaction that commits and one that rolls back.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')
const { drizzleFor } = require('./orm/drizzle.js')
const { HyperionDialect } = require('./orm/kysely.js')

const { sql, eq, and, gt, lt, asc, count, TransactionRollbackError } = require('drizzle-orm')
const { pgTable, serial, text, integer, boolean, jsonb, timestamp, bigint } = require('drizzle-orm/pg-core')
const { Kysely, sql: ksql } = require('kysely')

const suite = useCluster()

// Every checkout has gone back to the pool (a release, and Kysely's after a controlled
// transaction's commit, may land a tick after the awaited call).
async function allReleased(pool) {
  for (let i = 0; i < 200 && pool.status().inUse !== 0; i++) await new Promise((r) => setTimeout(r, 10))
  assert.equal(pool.status().inUse, 0, 'a connection was never released')
}

const users = pgTable('orm_drizzle_users', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  age: integer('age'),
  active: boolean('active').notNull().default(true),
  meta: jsonb('meta'),
  score: bigint('score', { mode: 'bigint' }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
})

test('Drizzle: create table, insert, select with where, update with its count, delete', async () => {
  const pool = suite.pool({ poolSize: 2 })
  const db = drizzleFor(pool)
  await db.execute(sql`drop table if exists orm_drizzle_users`)
  await db.execute(sql`create table orm_drizzle_users (
    id serial primary key, name text not null, age int, active bool not null default true,
    meta jsonb, score int8, created_at timestamptz not null default now())`)

  const inserted = await db.insert(users).values([
    { name: 'ada', age: 36, meta: { langs: ['en', 'fr'] }, score: 2n ** 60n },
    { name: 'brian', age: 28 },
    { name: 'cleo', age: 41, active: false },
  ]).returning()
  assert.deepEqual(inserted.map((u) => [u.id, u.name, u.age, u.active]), [[1, 'ada', 36, true], [2, 'brian', 28, true], [3, 'cleo', 41, false]])
  assert.deepEqual(inserted[0].meta, { langs: ['en', 'fr'] })
  assert.equal(inserted[0].score, 2n ** 60n)
  assert.ok(inserted[0].createdAt instanceof Date && !Number.isNaN(inserted[0].createdAt.getTime()), String(inserted[0].createdAt))
  assert.ok(Math.abs(inserted[0].createdAt.getTime() - Date.now()) < 60000)

  const older = await db.select({ name: users.name, age: users.age }).from(users)
    .where(and(eq(users.active, true), gt(users.age, 30))).orderBy(asc(users.id))
  assert.deepEqual(older, [{ name: 'ada', age: 36 }])
  const [byId] = await db.select().from(users).where(eq(users.id, 2))
  assert.equal(byId.name, 'brian')
  assert.equal(byId.meta, null)
  assert.deepEqual(await db.select({ n: count() }).from(users), [{ n: 3 }])

  // Without RETURNING, Drizzle's pg-proxy resolves to our result: its rowCount is the count.
  const updated = await db.update(users).set({ active: false }).where(lt(users.age, 40))
  assert.equal(updated.command, 'UPDATE')
  assert.equal(updated.rowCount, 2)
  const returned = await db.update(users).set({ age: sql`${users.age} + 1` }).where(eq(users.active, false)).returning({ id: users.id, age: users.age })
  assert.deepEqual(returned.sort((a, b) => a.id - b.id), [{ id: 1, age: 37 }, { id: 2, age: 29 }, { id: 3, age: 42 }])

  const deleted = await db.delete(users).where(eq(users.name, 'cleo')).returning({ id: users.id })
  assert.deepEqual(deleted, [{ id: 3 }])
  const none = await db.delete(users).where(eq(users.name, 'nobody'))
  assert.equal(none.rowCount, 0)
  assert.deepEqual((await db.select({ id: users.id }).from(users).orderBy(users.id)).map((r) => r.id), [1, 2])

  // A server error reaches the caller as Drizzle's DrizzleQueryError, ours (SQLSTATE in .code)
  // as its cause.
  await assert.rejects(db.insert(users).values({ id: 1, name: 'dup' }), (e) => e.cause?.code === '23505' && e.cause.constraint === 'orm_drizzle_users_pkey')
})

test('Drizzle: db.transaction commits on one checked-out connection; tx.rollback() and a throw roll back', async () => {
  const pool = suite.pool({ poolSize: 2 })
  const db = drizzleFor(pool)
  await db.execute(sql`create table if not exists orm_drizzle_users (
    id serial primary key, name text not null, age int, active bool not null default true,
    meta jsonb, score int8, created_at timestamptz not null default now())`)
  await db.delete(users)

  const pids = new Set()
  const id = await db.transaction(async (tx) => {
    const [row] = await tx.insert(users).values({ name: 'tx-commit', age: 1 }).returning({ id: users.id })
    await tx.update(users).set({ age: 2 }).where(eq(users.id, row.id))
    for (let i = 0; i < 3; i++) pids.add((await tx.execute(sql`select pg_backend_pid() as pid`))[0].pid)
    // Not visible outside the transaction yet.
    assert.deepEqual(await db.select().from(users).where(eq(users.id, row.id)), [])
    return row.id
  })
  assert.equal(pids.size, 1)
  assert.deepEqual(await db.select({ name: users.name, age: users.age }).from(users).where(eq(users.id, id)), [{ name: 'tx-commit', age: 2 }])

  await assert.rejects(db.transaction(async (tx) => {
    await tx.insert(users).values({ name: 'tx-rollback' })
    tx.rollback()
  }), TransactionRollbackError)
  await assert.rejects(db.transaction(async (tx) => {
    await tx.insert(users).values({ name: 'tx-throw' })
    throw new Error('changed my mind')
  }), /changed my mind/)
  // A statement error inside aborts the transaction: the callback's catch cannot commit it.
  await assert.rejects(db.transaction(async (tx) => {
    await tx.insert(users).values({ name: 'tx-aborted' })
    await tx.execute(sql`select 1/0`).catch(() => {})
  }), { code: '25P02' })
  assert.deepEqual((await db.select({ name: users.name }).from(users)).map((r) => r.name), ['tx-commit'])
  await allReleased(pool)
})

test('Kysely: schema builder, insert, select with where, update and delete with their counts, introspection, stream', async () => {
  const pool = suite.pool({ poolSize: 2 })
  const db = new Kysely({ dialect: new HyperionDialect({ pool }) })
  await db.schema.dropTable('orm_kysely_pets').ifExists().execute()
  await db.schema.createTable('orm_kysely_pets')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('species', 'text', (c) => c.notNull())
    .addColumn('age', 'integer')
    .addColumn('born', 'date')
    .execute()

  const ins = await db.insertInto('orm_kysely_pets').values([
    { name: 'rex', species: 'dog', age: 3, born: '2021-05-01' },
    { name: 'tom', species: 'cat', age: 7 },
    { name: 'fido', species: 'dog', age: 11 },
  ]).executeTakeFirst()
  assert.equal(ins.numInsertedOrUpdatedRows, 3n)
  const returned = await db.insertInto('orm_kysely_pets').values({ name: 'kit', species: 'cat', age: 1 }).returning(['id', 'name']).executeTakeFirstOrThrow()
  assert.deepEqual(returned, { id: 4, name: 'kit' })

  const dogs = await db.selectFrom('orm_kysely_pets').select(['name', 'age', 'born']).where('species', '=', 'dog').where('age', '>', 2).orderBy('id').execute()
  assert.deepEqual(dogs, [{ name: 'rex', age: 3, born: '2021-05-01' }, { name: 'fido', age: 11, born: null }])
  const { n } = await db.selectFrom('orm_kysely_pets').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
  assert.equal(n, 4n)

  const upd = await db.updateTable('orm_kysely_pets').set({ age: ksql`age + 1` }).where('species', '=', 'cat').executeTakeFirst()
  assert.equal(upd.numUpdatedRows, 2n)
  const del = await db.deleteFrom('orm_kysely_pets').where('name', 'in', ['fido', 'nobody']).executeTakeFirst()
  assert.equal(del.numDeletedRows, 1n)
  assert.deepEqual(await db.selectFrom('orm_kysely_pets').select(['name', 'age']).orderBy('name').execute(),
    [{ name: 'kit', age: 2 }, { name: 'rex', age: 3 }, { name: 'tom', age: 8 }])
  await assert.rejects(db.insertInto('orm_kysely_pets').values({ name: 'rex', species: 'dog' }).execute(), { code: '23505' })

  const tables = await db.introspection.getTables()
  const pets = tables.find((t) => t.name === 'orm_kysely_pets')
  assert.ok(pets, 'introspection lists the table')
  assert.deepEqual(pets.columns.map((c) => c.name).sort(), ['age', 'born', 'id', 'name', 'species'])

  const streamed = []
  for await (const row of db.selectFrom(ksql`generate_series(1, 1000)`.as('g')).select(ksql`g`.as('g')).stream(64)) streamed.push(row.g)
  assert.deepEqual(streamed, Array.from({ length: 1000 }, (_, i) => i + 1))
  await allReleased(pool)
})

test('Kysely: a transaction commits on one connection; a throw rolls it back; savepoints', async () => {
  const pool = suite.pool({ poolSize: 2 })
  const db = new Kysely({ dialect: new HyperionDialect({ pool }) })
  await db.schema.createTable('orm_kysely_ledger').ifNotExists()
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('memo', 'text', (c) => c.notNull())
    .addColumn('amount', 'numeric(12, 2)', (c) => c.notNull())
    .execute()
  await db.deleteFrom('orm_kysely_ledger').execute()

  const pids = await db.transaction().setIsolationLevel('serializable').execute(async (trx) => {
    await trx.insertInto('orm_kysely_ledger').values([{ memo: 'in', amount: '100.50' }, { memo: 'out', amount: '-20.25' }]).execute()
    const seen = new Set()
    for (let i = 0; i < 3; i++) seen.add((await ksql`select pg_backend_pid() as pid`.execute(trx)).rows[0].pid)
    const { rows } = await ksql`show transaction_isolation`.execute(trx)
    assert.deepEqual(rows, [{ transaction_isolation: 'serializable' }])
    // Not visible outside before COMMIT.
    assert.deepEqual(await db.selectFrom('orm_kysely_ledger').selectAll().execute(), [])
    return seen
  })
  assert.equal(pids.size, 1)
  const { total } = await db.selectFrom('orm_kysely_ledger').select((eb) => eb.fn.sum('amount').as('total')).executeTakeFirstOrThrow()
  assert.equal(total, '80.25')

  await assert.rejects(db.transaction().execute(async (trx) => {
    await trx.insertInto('orm_kysely_ledger').values({ memo: 'lost', amount: '1' }).execute()
    throw new Error('changed my mind')
  }), /changed my mind/)

  // A controlled transaction with a savepoint rolled back to.
  const trx = await db.startTransaction().execute()
  await trx.insertInto('orm_kysely_ledger').values({ memo: 'kept', amount: '1.00' }).execute()
  const sp = await trx.savepoint('sp1').execute()
  await sp.insertInto('orm_kysely_ledger').values({ memo: 'undone', amount: '2.00' }).execute()
  await sp.rollbackToSavepoint('sp1').execute()
  await trx.commit().execute()

  assert.deepEqual((await db.selectFrom('orm_kysely_ledger').select('memo').orderBy('id').execute()).map((r) => r.memo), ['in', 'out', 'kept'])
  await allReleased(pool)
})
