'use strict'
// Statements on a real server: how many stay prepared on a connection under concurrency,
// and what happens to a statement's description when the schema or the session's
// search_path changes under it, prepared (named) or not (`prepare: false`).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const suite = useCluster()

/** The statements prepared on the connection `q` runs on (a one-connection pool). */
async function prepared(q) {
  const rows = await q.query('select name, statement from pg_prepared_statements order by name')
  return rows
}

test('concurrent first runs of the same SQL on one connection leave at most statementCacheSize prepared', async () => {
  const cap = 4
  const p = suite.pool({ poolSize: 1, statementCacheSize: cap })
  await p.query('select 1')
  for (let k = 0; k < 5; k++) {
    const got = await Promise.all(
      Array.from({ length: 50 }, (_, i) => p.query(`select ${k} + $1::int + ${i % 3} as x`, [i]))
    )
    got.forEach((r, i) => assert.deepEqual(r, [{ x: k + i + (i % 3) }]))
  }
  const rows = await prepared(p)
  assert.ok(rows.length <= cap, `${rows.length} statements prepared on the server, cap ${cap}: ${JSON.stringify(rows)}`)
  // Every statement the server holds is one the cache knows: each text once.
  assert.equal(new Set(rows.map((r) => r.statement)).size, rows.length, JSON.stringify(rows))
})

test('prepare: false, a column added: the next run describes again instead of failing at Bind', async () => {
  const p = suite.pool({ poolSize: 1, prepare: false })
  await p.query('drop table if exists st_add')
  await p.query('create table st_add (a int, b int)')
  await p.query('insert into st_add values (1, 2)')
  assert.deepEqual(await p.query('select * from st_add'), [{ a: 1, b: 2 }])
  await p.query('alter table st_add add column c text')
  await p.query("update st_add set c = 'x'")
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await p.query('select * from st_add'), [{ a: 1, b: 2, c: 'x' }])
  }
})

test('prepare: false, one column becomes two: decoded as the server sent them', async () => {
  // One result format in Bind applies to every column: no Bind error to notice it by.
  const p = suite.pool({ poolSize: 1, prepare: false })
  await p.query('drop table if exists st_one')
  await p.query('create table st_one (a int)')
  await p.query('insert into st_one values (7)')
  assert.deepEqual(await p.query('select * from st_one'), [{ a: 7 }])
  await p.query('alter table st_one add column b int, add column c text')
  await p.query("update st_one set b = 42, c = 'hello'")
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await p.query('select * from st_one'), [{ a: 7, b: 42, c: 'hello' }])
  }
})

test('prepare: false, a column type changed, a result large enough to stream: decoded by the new type', async () => {
  const p = suite.pool({ poolSize: 1, prepare: false })
  await p.query('drop table if exists st_type')
  await p.query('create table st_type (a int, b int)')
  await p.query('insert into st_type select g, g from generate_series(1, 40000) g')
  const sql = 'select * from st_type order by b'
  const before = await p.query(sql)
  assert.deepEqual(before[39999], { a: 40000, b: 40000 })
  await p.query('alter table st_type alter column a type text')
  for (let i = 0; i < 2; i++) {
    const after = await p.query(sql)
    assert.equal(after.length, 40000)
    assert.deepEqual(after[0], { a: '1', b: 1 })
    assert.deepEqual(after[39999], { a: '40000', b: 40000 })
  }
})

test('prepare: false, a checkout with another search_path: its own table, not the description cached for the text', async () => {
  const p = suite.pool({ poolSize: 2, prepare: false })
  await p.script(
    'drop schema if exists st_app cascade; create schema st_app; drop table if exists public.st_sp; ' +
      'create table public.st_sp (a int, b int); insert into public.st_sp values (1, 2); ' +
      "create table st_app.st_sp (a text, b text, c text); insert into st_app.st_sp values ('x', 'y', 'z')"
  )
  assert.deepEqual(await p.query('select * from st_sp'), [{ a: 1, b: 2 }])
  const c = await p.connect()
  try {
    await c.query('set search_path = st_app')
    assert.deepEqual(await c.query('select * from st_sp'), [{ a: 'x', b: 'y', c: 'z' }])
    assert.deepEqual(await c.query('select * from st_sp'), [{ a: 'x', b: 'y', c: 'z' }])
    await c.query('reset search_path')
  } finally {
    await c.release()
  }
  assert.deepEqual(await p.query('select * from st_sp'), [{ a: 1, b: 2 }])
})

test('prepared: a column added or a type changed, no 0A000 outside a transaction, the old statement closed', async () => {
  const p = suite.pool({ poolSize: 1 })
  await p.query('drop table if exists st_named')
  await p.query('create table st_named (a int, b int)')
  await p.query('insert into st_named values (1, 2)')
  const sql = 'select * from st_named'
  assert.deepEqual(await p.query(sql), [{ a: 1, b: 2 }])
  await p.query('alter table st_named add column c text')
  for (let i = 0; i < 2; i++) assert.deepEqual(await p.query(sql), [{ a: 1, b: 2, c: null }])
  await p.query('alter table st_named alter column a type text')
  for (let i = 0; i < 2; i++) assert.deepEqual(await p.query(sql), [{ a: '1', b: 2, c: null }])
  // Through a checkout too.
  await p.query('alter table st_named alter column b type bigint')
  const c = await p.connect()
  try {
    assert.deepEqual(await c.query(sql), [{ a: '1', b: 2n, c: null }])
  } finally {
    await c.release()
  }
  const same = (await prepared(p)).filter((r) => r.statement === sql)
  assert.equal(same.length, 1, JSON.stringify(same))
})

test('prepared: DISCARD ALL or DEALLOCATE ALL on a connection, and its statements are prepared again, not 26000 for good', async () => {
  const p = suite.pool({ poolSize: 1 })
  const sql = 'select $1::int + 1 as n'
  assert.deepEqual(await p.query(sql, [1]), [{ n: 2 }])
  for (const reset of ['DISCARD ALL', 'DEALLOCATE ALL']) {
    // A checkout reset before it is given back, as a pooler or a framework does.
    const c = await p.connect()
    try {
      assert.deepEqual(await c.query(sql, [2]), [{ n: 3 }])
      await c.query(reset)
      assert.deepEqual(await c.query(sql, [3]), [{ n: 4 }], `on the checkout after ${reset}`)
      await c.query(reset)
    } finally {
      await c.release()
    }
    // The same connection, back in the pool, its statement gone from the server again.
    assert.deepEqual(await p.query(sql, [4]), [{ n: 5 }], `through the pool after ${reset}`)
    assert.deepEqual(await p.query(sql, [5]), [{ n: 6 }])
  }
})

test('prepared: in a transaction the stale statement fails it, and the next transaction works', async () => {
  const p = suite.pool({ poolSize: 1 })
  await p.query('drop table if exists st_tx')
  await p.query('create table st_tx (a int)')
  await p.query('insert into st_tx values (1)')
  const sql = 'select * from st_tx'
  assert.deepEqual(await p.query(sql), [{ a: 1 }])
  await p.query('alter table st_tx add column b int')
  const tx = await p.begin()
  await assert.rejects(tx.query(sql), { code: '0A000' })
  await tx.rollback()
  const tx2 = await p.begin()
  assert.deepEqual(await tx2.query(sql), [{ a: 1, b: null }])
  await tx2.commit()
  assert.deepEqual(await p.query(sql), [{ a: 1, b: null }])
})
