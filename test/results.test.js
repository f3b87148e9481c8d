'use strict'
// What a query resolves to besides its rows: non-enumerable `command`, `rowCount` and
// `fields` on the array; rows as arrays (`rowMode: 'array'`); and the `onNotice` hook.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { useCluster } = require('./support.js')

const suite = useCluster()

test('the command tag: command and rowCount of INSERT, UPDATE, DELETE, SELECT and CREATE TABLE', async () => {
  const p = suite.pool()
  await p.query('drop table if exists results_t')
  const created = await p.query('create table results_t (id int primary key, v text)')
  assert.deepEqual([...created], [])
  assert.equal(created.command, 'CREATE')
  assert.equal(created.rowCount, null)
  const inserted = await p.query("insert into results_t select g, 'x' from generate_series(1, 5) g")
  assert.equal(inserted.command, 'INSERT')
  assert.equal(inserted.rowCount, 5)
  const updated = await p.query("update results_t set v = 'y'")
  assert.deepEqual(updated, [])
  assert.equal(updated.command, 'UPDATE')
  assert.equal(updated.rowCount, 5)
  const selected = await p.query('select id from results_t order by id')
  assert.equal(selected.command, 'SELECT')
  assert.equal(selected.rowCount, 5)
  assert.equal(selected.length, 5)
  const deleted = await p.query('delete from results_t where id > $1', [3])
  assert.equal(deleted.command, 'DELETE')
  assert.equal(deleted.rowCount, 2)
  const tx = await p.begin()
  const inTx = await tx.query("update results_t set v = 'z' where id = 1 returning id")
  assert.equal(inTx.command, 'UPDATE')
  assert.equal(inTx.rowCount, 1)
  assert.deepEqual(inTx, [{ id: 1 }])
  await tx.rollback()
})

test('fields: name, typeOid and format in column order, duplicate names kept', async () => {
  const p = suite.pool()
  const rows = await p.query("select 1::int4 as a, 'x'::text as b, 2::int8 as a")
  assert.deepEqual(rows.fields.map((f) => f.name), ['a', 'b', 'a'])
  assert.deepEqual(rows.fields.map((f) => f.typeOid), [23, 25, 20])
  for (const f of rows.fields) assert.ok(f.format === 'text' || f.format === 'binary')
  assert.deepEqual(Object.keys(rows.fields[0]), ['name', 'typeOid', 'format'])
  // The same statement again: the same fields.
  const again = await p.query("select 1::int4 as a, 'x'::text as b, 2::int8 as a")
  assert.deepEqual(again.fields, rows.fields)
  assert.ok(Object.isFrozen(again.fields))
  const none = await p.query('select')
  assert.deepEqual(none.fields, [])
})

test('command, rowCount and fields are not enumerable: JSON and keys of the array are unchanged', async () => {
  const p = suite.pool()
  for (const n of [2, 20000]) { // a small result (row objects from Rust) and a large one (columns)
    const rows = await p.query('select g as id from generate_series(1, $1::int) g', [n])
    assert.equal(rows.rowCount, n)
    assert.equal(rows.command, 'SELECT')
    assert.deepEqual(rows.fields.map((f) => f.name), ['id'])
    assert.deepEqual(Object.keys(rows), Object.keys(Array.from({ length: n }, (_, i) => i)))
    assert.equal(JSON.stringify(rows), JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: i + 1 }))))
    for (const k of ['command', 'rowCount', 'fields']) {
      assert.equal(Object.getOwnPropertyDescriptor(rows, k).enumerable, false)
    }
  }
})

test('every result is an array of its own: sequential queries past the stock of blank arrays, then a burst', async () => {
  // A small result's array is a blank made ahead (rows.js's restock, called after the
  // queries of a round were written): one handed out twice would show here as two results
  // sharing an array, or a result with another's rows or tag.
  const p = suite.pool()
  const seen = new Set()
  const check = (rows, i) => {
    assert.ok(!seen.has(rows), `result ${i} is another result's array`)
    seen.add(rows)
    assert.deepStrictEqual(rows, i % 3 === 0 ? [] : [{ i }])
    assert.equal(rows.command, 'SELECT')
    assert.equal(rows.rowCount, i % 3 === 0 ? 0 : 1)
    assert.deepEqual(rows.fields.map((f) => f.name), ['i'])
  }
  const one = (i) => p.query('select $1::int as i where $1::int % 3 <> 0', [i])
  // The stock after each sequential query: on the JS thread's executor a result takes one
  // blank and the executor refills the stock when it runs low; the runtime I/O mode never
  // refills it, and every result makes its own.
  const { stocked } = require('../rows.js')
  const stock = []
  for (let i = 0; i < 60; i++) {
    check(await one(i), i)
    stock.push(stocked())
  }
  if (process.env.HYPERION_IO === 'thread') {
    assert.ok(stock.every((n) => n === 0), `stock ${stock}`)
  } else {
    assert.ok(stock.some((n, k) => k > 0 && n === stock[k - 1] - 1), `no result took a blank: stock ${stock}`)
    assert.ok(stock.some((n, k) => k > 0 && n > stock[k - 1]), `the stock was never refilled: ${stock}`)
  }
  const burst = await Promise.all(Array.from({ length: 300 }, (_, i) => one(i)))
  burst.forEach(check)
  for (let i = 0; i < 40; i++) check(await one(i), i)
})

test("rowMode 'array': rows as arrays in column order, duplicate names kept", async () => {
  const p = suite.pool()
  const rows = await p.query("select 1::int4 as a, 'x' as b, null::text as a", [], { rowMode: 'array' })
  assert.deepEqual(rows, [[1, 'x', null]])
  assert.deepEqual(rows.fields.map((f) => f.name), ['a', 'b', 'a'])
  assert.equal(rows.command, 'SELECT')
  const many = await p.query('select g, g * 2 as g from generate_series(1, 30000) g', [], { rowMode: 'array' })
  assert.equal(many.length, 30000)
  assert.deepEqual(many[29999], [30000, 60000])
  assert.equal(many.rowCount, 30000)
  const tx = await p.begin()
  assert.deepEqual(await tx.query('select 1 as x, 2 as x', [], { rowMode: 'array' }), [[1, 2]])
  await tx.rollback()
  const objects = await p.query('select 1 as x, 2 as x', [], { rowMode: 'object' })
  assert.deepEqual(objects, [{ x: 2 }])
  await assert.rejects(p.query('select 1', [], { rowMode: 'rows' }), { code: 'INVALID_ARGUMENT' })
})

test('onNotice gets every notice of a query before it settles', async () => {
  const notices = []
  const p = suite.pool({ onNotice: (n) => notices.push(n) })
  await p.query(`do $$ begin
    raise notice 'first %', 1 using detail = 'some detail', hint = 'a hint';
    raise warning 'second';
  end $$`)
  assert.equal(notices.length, 2)
  assert.equal(notices[0].severity, 'NOTICE')
  assert.equal(notices[0].code, '00000')
  assert.equal(notices[0].message, 'first 1')
  assert.equal(notices[0].detail, 'some detail')
  assert.equal(notices[0].hint, 'a hint')
  assert.equal(notices[1].severity, 'WARNING')
  assert.equal(notices[1].code, '01000')
  assert.equal(notices[1].message, 'second')
  // In a transaction, and with a hook that throws (ignored).
  const q = suite.pool({ onNotice: () => { throw new Error('ignored') } })
  await q.query("do $$ begin raise notice 'x'; end $$")
  const tx = await p.begin()
  await tx.query("do $$ begin raise notice 'in tx'; end $$")
  await tx.rollback()
  assert.equal(notices.at(-1).message, 'in tx')
  assert.throws(() => suite.pool({ onNotice: 5 }), { code: 'INVALID_CONFIG' })
})
