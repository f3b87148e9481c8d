'use strict'
// rows.js builds row objects with compiled code where the process allows it and with
// closures where it does not (`node --disallow-code-generation-from-strings`). Both must
// produce the same rows: checked on a synthetic columnar result holding every column kind,
// NULLs, a shaped json column (with an array and an object nested in it) and awkward names, built here and in a child process that
// forbids code generation. No server needed.

const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')

// The result is built the same way in both processes from this function's source.
function rowsOfSynthetic() {
  const { rowsOf, CAN_COMPILE } = require(process.env.HYPERION_ROOT + '/rows.js')
  const K = require(process.env.HYPERION_ROOT + '/loader.js').columnKinds()
  const n = 5
  const offsets = (parts) => {
    const o = new Uint32Array(parts.length + 1)
    for (let i = 0; i < parts.length; i++) o[i + 1] = o[i] + parts[i].length
    return o
  }
  const texts = ['a', '', 'héllo', 'x'.repeat(3), '\u0000z']
  const bytes = [Buffer.from([1, 2]), Buffer.alloc(0), Buffer.from('abc'), Buffer.from([255]), Buffer.from([0])]
  const nullsAt = (...at) => Uint8Array.from({ length: n }, (_, i) => (at.includes(i) ? 1 : 0))
  // An array of a bool and an object in each place: null in row 3, its object in row 1.
  const pair = {
    kinds: K.bool + K.shaped,
    names: null,
    cols: [Uint8Array.from([1, 0, 1, 0, 1]), { kinds: K.float64, names: ['x'], cols: [Float64Array.from([0.5, 0, -2, 0, 1e-9])], nulls: [null] }],
    nulls: [null, nullsAt(1)],
  }
  const shaped = {
    kinds: K.int32 + K.text + K.null + K.array,
    names: ['id', 'label', 'never', 'pair'],
    cols: [Int32Array.from([1, 2, 3, 4, 5]), [texts.join(''), offsets(texts)], null, pair],
    nulls: [nullsAt(2), null, null, nullsAt(3)],
  }
  const cols = [
    Uint8Array.from([1, 0, 1, 0, 1]),
    Int32Array.from([0, -1, 2147483647, -2147483648, 7]),
    Float64Array.from([0.5, -0, NaN, Infinity, -1e300]),
    BigInt64Array.from([0n, -1n, 9223372036854775807n, -9223372036854775808n, 9007199254740993n]),
    [texts.join(''), offsets(texts)],
    [['red', 'green'], Uint32Array.from([0, 1, 1, 0, 0])],
    [Buffer.concat(bytes), offsets(bytes)],
    JSON.stringify([{ a: 1 }, null, [1, 'two'], 'str', 3.5]),
    ['12.30', null, 'NaN', '-1', '0'],
    shaped,
    null,
  ]
  const kinds = K.bool + K.int32 + K.float64 + K.bigint64 + K.text + K.table + K.bytes + K.json + K.values + K.shaped + K.null
  const names = ['flag', 'int', 'float', 'big', '__proto__', 'colour', 'bin', 'doc', 'num', 'shaped', 'nothing']
  const nulls = [nullsAt(1), nullsAt(0, 4), null, nullsAt(3), nullsAt(2), null, nullsAt(1), null, null, nullsAt(4), null]
  const rows = rowsOf({ n, kinds, names, cols, nulls })
  const arrays = rowsOf({ n, kinds, names, cols, nulls }, true)
  // Every value with its type, keys in order, own-property-ness of __proto__ included.
  const describe = (v) =>
    v === null ? null
      : typeof v === 'bigint' ? { bigint: String(v) }
      : Buffer.isBuffer(v) ? { buffer: v.toString('hex') }
      : typeof v === 'number' ? { number: Object.is(v, -0) ? '-0' : String(v) }
      : typeof v === 'object' ? { proto: Object.getPrototypeOf(v) === Object.prototype ? 'Object' : Array.isArray(v) ? 'Array' : 'other', entries: Object.keys(v).map((k) => [k, describe(v[k])]) }
      : { [typeof v]: v }
  return { CAN_COMPILE, rows: rows.map(describe), arrays: arrays.map(describe) }
}

function inChild(flags) {
  const code = `process.stdout.write(JSON.stringify((${rowsOfSynthetic})()))`
  const r = spawnSync(process.execPath, [...flags, '-e', code], { encoding: 'utf8', env: { ...process.env, HYPERION_ROOT: ROOT } })
  assert.strictEqual(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('rows built without code generation are the rows built with it', () => {
  const fast = inChild([])
  const slow = inChild(['--disallow-code-generation-from-strings'])
  assert.strictEqual(fast.CAN_COMPILE, true)
  assert.strictEqual(slow.CAN_COMPILE, false)
  assert.strictEqual(fast.rows.length, 5)
  assert.deepStrictEqual(slow.rows, fast.rows)
  // Spot checks, so that two equally wrong builders cannot pass.
  const row0 = Object.fromEntries(fast.rows[0].entries)
  assert.deepStrictEqual(row0.big, { bigint: '0' })
  assert.deepStrictEqual(row0.__proto__, { string: 'a' })
  assert.deepStrictEqual(row0.int, null)
  assert.deepStrictEqual(Object.fromEntries(fast.rows[1].entries).int, { number: "-1" })
  assert.deepStrictEqual(Object.fromEntries(fast.rows[4].entries).shaped, null)
  assert.deepStrictEqual(Object.fromEntries(fast.rows[2].entries).shaped.entries[0], ['id', null])
  const pairOf = (i) => Object.fromEntries(Object.fromEntries(fast.rows[i].entries).shaped.entries).pair
  assert.deepStrictEqual(pairOf(0), { proto: 'Array', entries: [['0', { boolean: true }], ['1', { proto: 'Object', entries: [['x', { number: '0.5' }]] }]] })
  assert.deepStrictEqual(pairOf(1).entries[1], ['1', null])
  assert.deepStrictEqual(pairOf(3), null)
})

test("rowMode 'array' rows are the same values in column order, with and without code generation", () => {
  const fast = inChild([])
  const slow = inChild(['--disallow-code-generation-from-strings'])
  assert.deepStrictEqual(slow.arrays, fast.arrays)
  assert.strictEqual(fast.arrays.length, 5)
  for (let i = 0; i < 5; i++) {
    assert.strictEqual(fast.arrays[i].proto, 'Array')
    assert.deepStrictEqual(fast.arrays[i].entries.map(([, v]) => v), fast.rows[i].entries.map(([, v]) => v))
  }
})

// A small result's maker (what the native side calls with the values in row order): the same
// rows with and without code generation, meta on the array, and [rows, host] when traced.
function smallRows() {
  const { smallMaker, restock, stocked, CAN_COMPILE } = require(process.env.HYPERION_ROOT + '/rows.js')
  const fields = Object.freeze([])
  const make = smallMaker(['id', '__proto__', 'id', '0', 'note'])
  // Two blank arrays in stock (the native side restocks after its writes): the first two
  // results take them, the third makes its own.
  const stock = [stocked()]
  restock(2)
  stock.push(stocked())
  const rows = make('SELECT', 2, fields, undefined, 2, 1, 'a', 2, 'zero', null, 3, { x: 1 }, 4, 'zero2', 'n')
  stock.push(stocked())
  const traced = make('SELECT', 1, fields, 7, 1, 5, 'b', 6, 'z', 'm')
  stock.push(stocked())
  const empty = smallMaker([])('INSERT', 3, fields, null, 3)
  stock.push(stocked())
  const describe = (r) => ({
    isArray: Array.isArray(r),
    meta: [r.command, r.rowCount, r.fields === fields, Object.keys(r).length],
    // Non-enumerable, and not to be deleted or redefined.
    attributes: ['command', 'rowCount', 'fields'].map((k) => {
      const d = Object.getOwnPropertyDescriptor(r, k)
      return [d.enumerable, d.configurable]
    }),
    rows: r.map((row) => ({ keys: Object.keys(row), proto: Object.getPrototypeOf(row) === Object.prototype, values: Object.keys(row).map((k) => row[k]) })),
  })
  return {
    CAN_COMPILE,
    stock,
    sameMaker: smallMaker(['id', '__proto__', 'id', '0', 'note']) === make,
    rows: describe(rows),
    traced: [traced.length, traced[1], describe(traced[0])],
    empty: [empty.length, empty[1], describe(empty[0])],
  }
}

test('small results: the rows the native side asks for, with and without code generation', () => {
  const run = (flags) => {
    const code = `process.stdout.write(JSON.stringify((${smallRows})()))`
    const r = spawnSync(process.execPath, [...flags, '-e', code], { encoding: 'utf8', env: { ...process.env, HYPERION_ROOT: ROOT } })
    assert.strictEqual(r.status, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  const fast = run([])
  const slow = run(['--disallow-code-generation-from-strings'])
  assert.strictEqual(fast.CAN_COMPILE, true)
  assert.strictEqual(slow.CAN_COMPILE, false)
  const { CAN_COMPILE: _a, ...f } = fast
  const { CAN_COMPILE: _b, ...s } = slow
  assert.deepStrictEqual(s, f)
  assert.strictEqual(f.sameMaker, true, 'one maker per set of names')
  assert.deepStrictEqual(f.stock, [0, 2, 1, 0, 0], 'the first two results took the stock, the third made its own')
  // Integer-like keys come first, as in any object; a repeated name keeps its last value.
  assert.deepStrictEqual(f.rows.rows, [
    { keys: ['0', 'id', '__proto__', 'note'], proto: true, values: ['zero', 2, 'a', null] },
    { keys: ['0', 'id', '__proto__', 'note'], proto: true, values: ['zero2', 4, { x: 1 }, 'n'] },
  ])
  assert.deepStrictEqual(f.rows.meta, ['SELECT', 2, true, 2])
  for (const r of [f.rows, f.traced[2], f.empty[2]]) assert.deepStrictEqual(r.attributes, [[false, false], [false, false], [false, false]])
  assert.strictEqual(f.rows.isArray, true)
  assert.deepStrictEqual(f.traced.slice(0, 2), [2, 7])
  assert.deepStrictEqual(f.traced[2].rows, [{ keys: ['0', 'id', '__proto__', 'note'], proto: true, values: ['z', 6, 'b', 'm'] }])
  // No columns: as many empty rows as the count says; a traced one with an unknown host.
  assert.deepStrictEqual(f.empty, [2, null, { isArray: true, meta: ['INSERT', 3, true, 3], attributes: [[false, false], [false, false], [false, false]], rows: [{ keys: [], proto: true, values: [] }, { keys: [], proto: true, values: [] }, { keys: [], proto: true, values: [] }] }])
})
