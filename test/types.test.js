'use strict'
// The type table, both ways, through a real server. One table of cases drives every test:
// each case is a PostgreSQL type, a SQL literal, the JS value it must decode to, and the JS
// parameters that must bind to it (numbers, BigInts, booleans and Buffers go in binary,
// strings in text, arrays as array literals). Each case is checked as a column value (the
// server parses the literal), as a parameter (we encode, the server decodes, we decode
// again), against the server's own text of what we sent, and as NULL.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')
const { useCluster } = require('./support.js')

const suite = useCluster({
  async setup(s) {
    const p = s.pool({ poolSize: 1 })
    // Idempotent on a long-lived cluster (HYPERION_HOSTS).
    for (const sql of ['drop table if exists later_t', 'drop type if exists later_mood', 'drop type if exists mood',
      'drop domain if exists posint', 'drop domain if exists short_text']) await p.query(sql)
    await p.query("create type mood as enum ('sad', 'ok', 'happy ☺')")
    await p.query('create domain posint as int4 check (value > 0)')
    await p.query('create domain short_text as text')
  },
})

const BIG = '9'.repeat(1000) + '.' + '0'.repeat(999) + '1'
const D = (ms) => new Date(ms)

// [type, SQL literal, expected JS value, parameters that bind to the same value]
const CASES = [
  ['bool', 'true', true, [true, 't', 'yes']],
  ['bool', 'false', false, [false, 'f']],
  ['int2', '-32768', -32768, [-32768, '-32768']],
  ['int2', '32767', 32767, [32767, 32767n]],
  ['int4', '-2147483648', -2147483648, [-2147483648, '-2147483648', -2147483648n]],
  ['int4', '2147483647', 2147483647, [2147483647]],
  ['int8', '-9223372036854775808', -9223372036854775808n, [-9223372036854775808n, '-9223372036854775808']],
  ['int8', '9223372036854775807', 9223372036854775807n, [9223372036854775807n]],
  ['int8', '9007199254740993', 9007199254740993n, [9007199254740993n]],
  ['int8', '42', 42n, [42, 42n, '42']],
  ['oid', '4294967295', 4294967295, [4294967295, '4294967295']],
  ['float4', '1.5', 1.5, [1.5, '1.5']],
  ['float4', '0.1', Math.fround(0.1), [0.1]],
  ['float8', "'NaN'", NaN, [NaN, 'NaN']],
  ['float8', "'Infinity'", Infinity, [Infinity, 'Infinity']],
  ['float8', "'-Infinity'", -Infinity, [-Infinity]],
  ['float8', "'-0'", -0, [-0]],
  ['float8', '5e-324', 5e-324, [5e-324]],
  ['float8', '1.7976931348623157e308', 1.7976931348623157e308, [1.7976931348623157e308]],
  ['float8', '0.1', 0.1, [0.1, '0.1']],
  ['numeric', '12.30', '12.30', ['12.30']],
  ['numeric(12,2)', '12.3', '12.30', ['12.3', 12.3]],
  ['numeric', '-0.000001', '-0.000001', ['-0.000001']],
  ['numeric', '0.000', '0.000', ['0.000']],
  ['numeric', '1.5', '1.5', [1.5]],
  ['numeric', '1180591620717411303424', '1180591620717411303424', [2n ** 70n, '1180591620717411303424']],
  ['numeric', BIG, BIG, [BIG]],
  ['numeric', "'NaN'", 'NaN', ['NaN', NaN]],
  // numeric takes infinities from PostgreSQL 14 on (the matrix runs 13 too): see casesFor.
  ['numeric', "'Infinity'", 'Infinity', ['Infinity', Infinity], 14],
  ['numeric', "'-Infinity'", '-Infinity', [-Infinity], 14],
  ['text', "''", '', ['']],
  ['text', "'héllo 😀 ✓ 中文'", 'héllo 😀 ✓ 中文', ['héllo 😀 ✓ 中文']],
  ['text', "'a\"b\\c'", 'a"b\\c', ['a"b\\c']],
  ['varchar(5)', "'abc'", 'abc', ['abc']],
  ['bpchar(5)', "'ab'", 'ab   ', ['ab']],
  ['name', "'pg_class'", 'pg_class', ['pg_class']],
  ['"char"', "'x'", 'x', ['x']],
  ['mood', "'happy ☺'", 'happy ☺', ['happy ☺']],
  ['posint', '5', 5, [5, '5']],
  ['short_text', "'dom'", 'dom', ['dom']],
  ['uuid', "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc999c0b4ef8bb6d6bb9bd380a11']],
  ['bytea', "'\\x00ff10'", Buffer.from([0, 255, 16]), [Buffer.from([0, 255, 16]), '\\x00ff10']],
  ['bytea', "''", Buffer.alloc(0), [Buffer.alloc(0)]],
  ['json', `'{"b":[1,"x",null],"a":{}}'`, { b: [1, 'x', null], a: {} }, [{ b: [1, 'x', null], a: {} }]],
  ['jsonb', `'{"b":1,"a":"é"}'`, { a: 'é', b: 1 }, [{ b: 1, a: 'é' }, '{"a":"é","b":1}']],
  ['jsonb', "'[1,[2,{\"x\":null}]]'", [1, [2, { x: null }]], [[1, [2, { x: null }]]]],
  ['jsonb', "'\"s\"'", 's', ['"s"']],
  ['jsonb', "'3.5'", 3.5, ['3.5']],
  ['jsonb', "'null'", null, ['null']],
  ['timestamptz', "'2024-01-02 03:04:05.123456+02'", '2024-01-02T01:04:05.123456Z',
    ['2024-01-02T01:04:05.123456Z', '2024-01-02 03:04:05.123456+02']],
  ['timestamptz', "'2024-01-02 03:04:05.678+00'", '2024-01-02T03:04:05.678000Z', [D(Date.UTC(2024, 0, 2, 3, 4, 5, 678))]],
  ['timestamptz', "'1969-12-31 23:59:59.999999+00'", '1969-12-31T23:59:59.999999Z', ['1969-12-31T23:59:59.999999Z']],
  // A Date binds to timestamptz and timestamp in binary (microseconds since 2000): before
  // 1970 and 2000, and BC, as well as after.
  ['timestamptz', "'1969-12-31 23:59:59.999+00'", '1969-12-31T23:59:59.999000Z', [D(-1)]],
  ['timestamptz', "'1999-12-31 23:59:59.999+00'", '1999-12-31T23:59:59.999000Z', [D(Date.UTC(1999, 11, 31, 23, 59, 59, 999))]],
  ['timestamptz', "'infinity'", 'infinity', ['infinity']],
  ['timestamptz', "'-infinity'", '-infinity', ['-infinity']],
  ['timestamptz', "'4714-11-24 00:00:00+00 BC'", '-004713-11-24T00:00:00.000000Z', ['4714-11-24 00:00:00+00 BC']],
  ['timestamptz', "'0044-03-15 12:00:00+00 BC'", '-000043-03-15T12:00:00.000000Z', ['0044-03-15 12:00:00+00 BC', D(Date.UTC(-43, 2, 15, 12))]],
  ['timestamptz', "'294276-12-31 23:59:59.999999+00'", '+294276-12-31T23:59:59.999999Z', ['294276-12-31 23:59:59.999999+00']],
  ['timestamp', "'2024-02-29 23:59:59.999999'", '2024-02-29T23:59:59.999999', ['2024-02-29T23:59:59.999999']],
  // A Date to timestamp: its UTC wall-clock time, as its ISO text (with Z) gave before.
  ['timestamp', "'2024-02-29 23:59:59.999'", '2024-02-29T23:59:59.999000', [D(Date.UTC(2024, 1, 29, 23, 59, 59, 999))]],
  ['timestamp', "'0044-03-15 12:00:00 BC'", '-000043-03-15T12:00:00.000000', [D(Date.UTC(-43, 2, 15, 12))]],
  ['timestamp', "'0001-01-01 00:00:00'", '0001-01-01T00:00:00.000000', ['0001-01-01 00:00:00']],
  ['timestamp', "'10000-01-01 00:00:00'", '+010000-01-01T00:00:00.000000', ['10000-01-01 00:00:00']],
  ['date', "'2024-02-29'", '2024-02-29', ['2024-02-29', D(Date.UTC(2024, 1, 29))]],
  ['date', "'5874897-12-31'", '+5874897-12-31', ['5874897-12-31']],
  ['date', "'4714-11-24 BC'", '-004713-11-24', ['4714-11-24 BC']],
  ['date', "'infinity'", 'infinity', ['infinity']],
  ['time', "'24:00:00'", '24:00:00.000000', ['24:00:00']],
  ['time', "'00:00:00.000001'", '00:00:00.000001', ['00:00:00.000001']],
  ['int4[]', "'{1,NULL,3}'", [1, null, 3], [[1, null, 3], '{1,NULL,3}']],
  ['int4[]', "'{{1,2},{3,4}}'", [[1, 2], [3, 4]], [[[1, 2], [3, 4]]]],
  ['int4[]', "'{{{1},{2}},{{3},{4}}}'", [[[1], [2]], [[3], [4]]], [[[[1], [2]], [[3], [4]]]]],
  ['int4[]', "'[0:1]={7,8}'", [7, 8], []], // lower bounds are dropped: JS arrays start at 0
  ['int4[]', "'{}'", [], [[]]],
  ['int8[]', "'{-9223372036854775808,9223372036854775807}'", [-9223372036854775808n, 9223372036854775807n],
    [[-9223372036854775808n, 9223372036854775807n]]],
  ['text[]', `'{"a\\"b","NULL",NULL,"","x,y","{}"}'`, ['a"b', 'NULL', null, '', 'x,y', '{}'],
    [['a"b', 'NULL', null, '', 'x,y', '{}']]],
  ['text[]', "'{}'", [], [[]]],
  ['bool[]', "'{t,f,NULL}'", [true, false, null], [[true, false, null]]],
  ['float8[]', "'{NaN,-Infinity,1.5}'", [NaN, -Infinity, 1.5], [[NaN, -Infinity, 1.5]]],
  ['numeric[]', "'{1.50,-0.001,NaN}'", ['1.50', '-0.001', 'NaN'], [['1.50', '-0.001', 'NaN']]],
  ['uuid[]', "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'", ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    [['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11']]],
  ['bytea[]', "'{\"\\\\x0001\",NULL}'", [Buffer.from([0, 1]), null], [[Buffer.from([0, 1]), null]]],
  ['jsonb[]', `array['{"a":1}'::jsonb, '[1]'::jsonb]`, [{ a: 1 }, [1]], [[{ a: 1 }, [1]]]],
  ['timestamptz[]', "'{\"2024-01-01 00:00:00+00\",infinity}'", ['2024-01-01T00:00:00.000000Z', 'infinity'],
    [['2024-01-01T00:00:00Z', 'infinity'], [D(Date.UTC(2024, 0, 1)), 'infinity']]],
  ['date[]', "'{2024-01-01,NULL}'", ['2024-01-01', null], [['2024-01-01', null]]],
  ['mood[]', "'{sad,NULL,\"happy ☺\"}'", ['sad', null, 'happy ☺'], [['sad', null, 'happy ☺']]],
  ['posint[]', "'{1,2}'", [1, 2], [[1, 2]]],
  // Types outside the table come back as the server's text.
  ['interval', "'1 day 02:00:00'", '1 day 02:00:00', ['1 day 2 hours']],
  ['point', "'(1,2)'", '(1,2)', ['(1,2)']],
  ['interval[]', "'{\"1 day\",NULL}'", ['1 day', null], [['1 day', null]]],
  ['box[]', "'{(1,1),(0,0);(3,3),(2,2)}'", ['(1,1),(0,0)', '(3,3),(2,2)'], [['(1,1),(0,0)', '(3,3),(2,2)']]],
]

function same(actual, expected, what) {
  if (Buffer.isBuffer(expected)) {
    assert.ok(Buffer.isBuffer(actual), `${what}: expected a Buffer, got ${typeof actual}`)
    assert.ok(actual.equals(expected), `${what}: ${actual.toString('hex')} != ${expected.toString('hex')}`)
    return
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${what}: expected an array, got ${inspect(actual)}`)
    assert.equal(actual.length, expected.length, `${what}: length`)
    expected.forEach((e, i) => same(actual[i], e, `${what}[${i}]`))
    return
  }
  assert.deepStrictEqual(actual, expected, what)
}

const show = (v) => inspect(v, { breakLength: Infinity })

// The cases the server's major can express (a fifth element: the first major that can).
function casesFor(major) {
  return CASES.filter((c) => c[4] === undefined || major >= c[4])
}

test('every case decodes as a column value, and as NULL', async () => {
  const pool = suite.pool({ poolSize: 2 })
  await Promise.all(casesFor(suite.cluster.version()).map(async ([type, lit, expected]) => {
    const rows = await pool.query(`select (${lit})::${type} as v, null::${type} as n`)
    same(rows[0].v, expected, `${lit}::${type}`)
    assert.strictEqual(rows[0].n, null, `null::${type}`)
  }))
})

test('every case binds as a parameter (binary and text) and round-trips', async () => {
  const pool = suite.pool({ poolSize: 2 })
  await Promise.all(casesFor(suite.cluster.version()).flatMap(([type, lit, expected, params]) => params.map(async (p) => {
    const what = `${show(p)} -> ${type}`
    // The server compares what we sent with its own parse of the literal (json has no
    // equality operator: compared as jsonb; point and box have none either: compared as text).
    const cmp = { json: '::jsonb', point: '::text', 'box[]': '::text' }[type] ?? ''
    const rows = await pool.query(`select $1::${type} as v, $1::${type}${cmp} is not distinct from (${lit})::${type}${cmp} as eq, $2::${type} as n`, [p, null])
    same(rows[0].v, expected, what)
    assert.equal(rows[0].eq, true, `${what}: the server sees another value`)
    assert.strictEqual(rows[0].n, null)
  })))
})

test('one row of many types: nulls in every column, then values', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const types = [...new Set(CASES.map((c) => c[0]))]
  const cols = types.map((t, i) => `$${i + 1}::${t} as c${i}`).join(', ')
  const firstOf = (t) => CASES.find((c) => c[0] === t)
  const rows = await pool.query(`select ${cols} union all select ${types.map((t, i) => `(${firstOf(t)[1]})::${t}`).join(', ')}`, types.map(() => null))
  assert.equal(rows.length, 2)
  types.forEach((t, i) => {
    assert.strictEqual(rows[0][`c${i}`], null, `null ${t}`)
    same(rows[1][`c${i}`], firstOf(t)[2], t)
  })
})

test('a JS array binds as JSON where the target is not an array type; objects as jsonb', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const [r] = await pool.query('select $1::jsonb as a, $2::json as b, $3::jsonb as c, jsonb_typeof($1::jsonb) as t', [
    [1, 'two', null, { three: [3] }, undefined, new Date(0)], { nested: [true, { x: 'é' }] }, [],
  ])
  assert.deepStrictEqual(r.a, [1, 'two', null, { three: [3] }, null, '1970-01-01T00:00:00.000Z'])
  assert.deepStrictEqual(r.b, { nested: [true, { x: 'é' }] })
  assert.deepStrictEqual(r.c, [])
  assert.equal(r.t, 'array')
  // A Date is what JSON.stringify makes of it: alone, in an array, in an object, in any year;
  // bound to text, its toISOString().
  const dates = [new Date(0), new Date('0000-06-01T00:00:00.000Z'), new Date('+010000-01-01T00:00:00.000Z')]
  const [d] = await pool.query('select $1::jsonb as alone, $2::jsonb as arr, $3::jsonb as obj, $4::text as txt', [
    dates[0], dates, { d: dates[2] }, dates[2],
  ])
  assert.deepStrictEqual(d, {
    alone: JSON.parse(JSON.stringify(dates[0])),
    arr: JSON.parse(JSON.stringify(dates)),
    obj: JSON.parse(JSON.stringify({ d: dates[2] })),
    txt: dates[2].toISOString(),
  })
})

test('values that cannot bind are refused before sending, and the connection stays usable', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const refused = [
    ['int2', 32768], ['int2', -32769], ['int4', 2147483648], ['int4', 1.5], ['int4', NaN],
    ['int8', 2n ** 63n], ['int8', -(2n ** 63n) - 1n], ['int8', 2 ** 64], ['oid', -1], ['int4', 2n ** 40n],
    ['int4[]', [1, 1.5]], ['int2[]', [[1], [40000]]], ['int4', { a: 1 }], ['int4', [1]], ['bool', 1],
    ['bytea', 5], ['int4', Buffer.from([1])], ['text[]', [Buffer.from([1])]], ['float8', 2n ** 60n + 1n],
    // JSON has no BigInt (JSON.stringify throws too); rounding it would lose digits.
    ['jsonb', { n: 1n }], ['jsonb', [1n]], ['jsonb', 1n], ['json', 1n],
  ]
  for (const [type, value] of refused) {
    await assert.rejects(pool.query(`select $1::${type} as v`, [value]), (e) => {
      assert.equal(e.code, 'INVALID_PARAMETER', `${show(value)} -> ${type}: ${e.message}`)
      assert.match(e.message, /parameter \$1/)
      return true
    })
  }
  const rows = await pool.query('select 1::int4 as ok')
  assert.deepStrictEqual(rows, [{ ok: 1 }])
  assert.equal(pool.status().size, 1, 'the refused parameters did not cost the connection')
})

test('parameters in every position bind in order, holes and undefined as NULL, each element read once', async () => {
  // The first four reach the native side as arguments too (client.js reads params[0..3]),
  // the rest from the array: both paths, and the paths that take options or a transaction.
  const pool = suite.pool({ poolSize: 1 })
  const sql = 'select $1::int4 as a, $2::text as b, $3::int4 as c, $4::text as d, $5::int4 as e, $6::text as f'
  const want = [{ a: 1, b: 'two', c: null, d: 'four', e: 5, f: null }]
  assert.deepStrictEqual(await pool.query(sql, [1, 'two', undefined, 'four', 5, null]), want)
  const sparse = [1, 'two', , 'four', 5] // eslint-disable-line no-sparse-arrays
  sparse.length = 6
  assert.deepStrictEqual(await pool.query(sql, sparse), want)
  assert.deepStrictEqual(await pool.query(sql, sparse, { timeoutMs: 10000 }), want)
  const tx = await pool.begin()
  assert.deepStrictEqual(await tx.query(sql, sparse), want)
  await tx.rollback()
  assert.deepStrictEqual(await pool.query('select $1::int4 as x', [7]), [{ x: 7 }])
  assert.deepStrictEqual(await pool.query('select 1 as x'), [{ x: 1 }])
  assert.deepStrictEqual(await pool.query('select 1 as x', undefined), [{ x: 1 }])
  await assert.rejects(pool.query(sql, [1, 'two']), (e) => typeof e.code === 'string')
  let reads = 0
  const counted = [0, 2]
  Object.defineProperty(counted, 0, { get: () => { reads++; return 9 }, enumerable: true })
  assert.deepStrictEqual(await pool.query('select $1::int4 as x, $2::int4 as y', counted), [{ x: 9, y: 2 }])
  assert.equal(reads, 1, 'element 0 was read once')
})

test('text and SQL of every length around the native read buffer arrive whole, multi-byte characters included', async () => {
  // The native side reads a string into a 4 KB buffer in one pass and measures it again only
  // when V8 may have cut it short (it writes whole characters, so a cut lands up to 3 bytes
  // before the end). Strings whose UTF-8 ends at each byte around 4 KB, with a 2-, 3- or
  // 4-byte character last, as a parameter and inside the statement's text.
  const pool = suite.pool({ poolSize: 1 })
  try {
    for (const last of ['é', '☺', '😀']) {
      const width = Buffer.byteLength(last)
      for (let bytes = 4088; bytes <= 4100; bytes++) {
        const text = 'x'.repeat(bytes - width) + last
        assert.equal(Buffer.byteLength(text), bytes)
        const [p] = await pool.query('select $1::text as t, octet_length($1::text) as n', [text])
        assert.equal(p.n, bytes)
        assert.equal(p.t, text)
        // In the SQL text: the literal after 'select ' and the quote; the text's own length
        // shifts the statement's length across the same bytes.
        const [q] = await pool.query(`select '${text}'::text as t`)
        assert.equal(q.t, text)
      }
    }
  } finally {
    await pool.end()
  }
})

test('text that turns non-ASCII partway through a large result reads back whole, also after collections', async () => {
  // A column's text crosses as Latin-1 while its values are ASCII and as UTF-16 from its first
  // value that is not (large texts as external strings): column t turns in a later batch,
  // column u in the middle of each 1000 rows, with characters past U+FFFF and NULLs between.
  const pool = suite.pool({ poolSize: 1 })
  try {
    const want = (i) => ({
      i,
      t: i % 9 === 0 ? null : i < 20000 ? `ascii-${i}` : `ü☺😀-${i}${'x'.repeat(i % 5)}`,
      u: `${i % 1000 === 500 ? 'ä' : ''}late-${i}`,
    })
    const check = (rows) => {
      assert.equal(rows.length, 30000)
      for (const r of rows) assert.deepStrictEqual({ ...r }, want(r.i))
    }
    const rows = await pool.query(`select i, case when i % 9 = 0 then null when i < 20000 then 'ascii-' || i
        else 'ü☺😀-' || i || repeat('x', i % 5) end as t,
        case when i % 1000 = 500 then 'ä' else '' end || 'late-' || i as u
      from generate_series(1, 30000) i`)
    check(rows)
    // Garbage enough for many young-generation collections; the texts must outlive them.
    for (let k = 0; k < 20; k++) {
      let junk = []
      for (let j = 0; j < 100000; j++) junk.push({ j, s: `junk-${j}` })
      junk = null
    }
    check(rows)
    // And one per value, small (copied, not external).
    const small = await pool.query(`select 'ascii' as a, 'ä😀' as b, null::text as c`)
    assert.deepStrictEqual(small, [{ a: 'ascii', b: 'ä😀', c: null }])
  } finally {
    await pool.end()
  }
})

test('a self-referencing array parameter is refused, not a stack overflow', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const a = [1]
  a.push(a)
  await assert.rejects(pool.query('select $1::jsonb', [a]), { code: 'INVALID_PARAMETER' })
})

test('a 16 MB bytea round-trips', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const big = Buffer.alloc(16 << 20)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  const [r] = await pool.query('select $1::bytea as b, length($1::bytea) as n, md5($1::bytea) as h', [big])
  assert.equal(r.n, 16 << 20)
  assert.ok(r.b.equals(big))
  assert.equal(r.h, require('node:crypto').createHash('md5').update(big).digest('hex'))
})

test('a 50,000-row result with NULLs and non-ASCII text assembles every column right', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const rows = await pool.query(`select i, case when i % 7 = 0 then null else 'é-' || i end as t,
      case when i % 5 = 0 then null else (i * 1.5)::numeric(10,2) end as n,
      case when i % 3 = 0 then null else i % 2 = 0 end as b,
      case when i % 11 = 0 then null else jsonb_build_object('i', i) end as j,
      case when i % 13 = 0 then null else int4send(i) end as y,
      array[i, null] as a,
      case when i = 1 then -9223372036854775808 when i = 2 then 9223372036854775807
        when i % 17 = 0 then null else (i - 25000)::int8 * 368934881474191 end as g
    from generate_series(1, 50000) i`)
  assert.equal(rows.length, 50000)
  for (const r of rows) {
    const i = r.i
    assert.strictEqual(r.t, i % 7 === 0 ? null : `é-${i}`)
    assert.strictEqual(r.n, i % 5 === 0 ? null : (i * 1.5).toFixed(2))
    assert.strictEqual(r.b, i % 3 === 0 ? null : i % 2 === 0)
    assert.deepStrictEqual(r.j, i % 11 === 0 ? null : { i })
    if (i % 13 === 0) assert.strictEqual(r.y, null)
    else assert.equal(r.y.readInt32BE(0), i)
    assert.deepStrictEqual(r.a, [i, null])
    const g = i === 1 ? -(2n ** 63n) : i === 2 ? 2n ** 63n - 1n : i % 17 === 0 ? null : BigInt(i - 25000) * 368934881474191n
    assert.strictEqual(r.g, g)
  }
})

// A large result's text and enum columns come as a table of their distinct values while
// those repeat (napi/src/rows/strings.rs), else as one text with offsets.
test('text and enum columns of repeated values, and of values that stop repeating, decode whole', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const rows = await pool.query(`select i,
      (array['new', 'paid', 'shipped', 'void', 'é☺'])[1 + i % 5] as status,
      case when i % 4 = 0 then null else (array['sad', 'ok', 'happy ☺']::mood[])[1 + i % 3] end as m,
      case when i <= 100 then 'x' else 'v' || (i % 300) end as grows,
      '' as empty,
      ('c' || (i % 2))::char(2) as code
    from generate_series(1, 1000) i order by i`)
  assert.equal(rows.length, 1000)
  for (const r of rows) {
    const i = r.i
    assert.strictEqual(r.status, ['new', 'paid', 'shipped', 'void', 'é☺'][i % 5])
    assert.strictEqual(r.m, i % 4 === 0 ? null : ['sad', 'ok', 'happy ☺'][i % 3])
    assert.strictEqual(r.grows, i <= 100 ? 'x' : `v${i % 300}`)
    assert.strictEqual(r.empty, '')
    assert.strictEqual(r.code, `c${i % 2}`)
  }
})

// A large result's json column of documents of one shape is built place by place
// (napi/src/rows/shaped.rs); every other json value is parsed as JSON text. Both must give
// what JSON.parse gives for the server's own text of the value, in every column below.
test('json columns of one shape, and of anything else, decode as JSON.parse does', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const obj = (i) => `jsonb_build_object('n', ${i}, 'f', ${i} + 0.5, 'b', ${i} % 2 = 0, 't', 'k' || (${i} % 10), 'u', 'é😀' || ${i}, 'e', '')`
  const columns = {
    // one shape all along, with SQL NULLs, 300 distinct strings in 'u' (more than one table holds)
    flat: `case when i % 9 = 0 then null else ${obj('i')} end`,
    // numbers JSON.parse rounds, -0 (stays a float), infinity, integers past 2^53, odd keys
    numbers: `('{"__proto__": ' || (i - 150) || ', "1": -0, "0": 9007199254740993, "big": 1e400, ` +
      `"tiny": 1e-400, "x y": 0.1, "neg": -2147483649}')::json`,
    // a member that is null at first, then a string; one that is always null
    late: `jsonb_build_object('s', case when i < 100 then null else 'v' || i end, 'z', null)`,
    // the shape changes midway: redone as JSON text
    keys: `case when i = 200 then '{"other": 1}'::jsonb else jsonb_build_object('k', i) end`,
    kinds: `jsonb_build_object('k', case when i = 250 then to_jsonb('s'::text) else to_jsonb(i) end)`,
    nested: `case when i = 120 then '{"a": {"b": [1]}}'::jsonb else jsonb_build_object('a', i) end`,
    // nested objects and arrays of one shape: nulls at every depth, an object that is null
    // at first, mixed kinds by position, empty containers, nested arrays
    deep: `case when i % 11 = 0 then null else jsonb_build_object('id', i, 'tags', jsonb_build_array('t' || (i % 7), i % 13, i % 2 = 0),
      'meta', case when i % 17 = 0 then null else jsonb_build_object('r', i / 8.0, 'p', case when i % 3 = 0 then null else i - 1 end,
        'f', jsonb_build_object('a', i % 2 = 1, 'b', null), 'path', jsonb_build_array(jsonb_build_object('k', i % 5, 'v', -i * 0.5)))
      end, 'late', case when i < 50 then null else jsonb_build_object('x', 'é😀' || i, 'e', '{}'::jsonb, 'l', '[]'::jsonb) end,
      'grid', jsonb_build_array(jsonb_build_array(i, i + 1), jsonb_build_array(null, -i))) end`,
    // arrays at the top level
    tuple: `jsonb_build_array(i, 'x' || i, i % 2 = 0, null, jsonb_build_object('n', i))`,
    // arrays whose length changes midway, and from row to row: JSON text
    lengths: `case when i < 150 then jsonb_build_array(i) else jsonb_build_array(i, i) end`,
    ragged: `to_jsonb(array_fill(i, array[i % 4]))`,
    // deeper than the shaped path goes, and wider
    deeper: `('${'['.repeat(20)}' || i || '${']'.repeat(20)}')::jsonb`,
    wider: `('[' || repeat(i || ',', 300) || i || ']')::jsonb`,
    // a document that is JSON null, not SQL NULL
    jsonnull: `case when i % 50 = 0 then 'null'::jsonb else jsonb_build_object('a', i) end`,
    escaped: `jsonb_build_object('q', 'say "hi" ' || i, 'tab', E'\t')`,
    duplicate: `'{"a": 1, "a": 2}'::json`,
    scalar: `to_jsonb(i)`,
    empty: `'{}'::jsonb`,
  }
  const names = Object.keys(columns)
  const sql = `select ${names.map((n) => `${columns[n]} as ${n}, (${columns[n]})::text as ${n}_text`).join(', ')}
    from generate_series(1, 300) i order by i`
  const rows = await pool.query(sql)
  assert.equal(rows.length, 300)
  for (const r of rows) {
    for (const n of names) {
      const text = r[`${n}_text`]
      const want = text === null ? null : JSON.parse(text)
      assert.deepStrictEqual(r[n], want, `${n}: ${text}`)
      if (want !== null && typeof want === 'object') {
        assert.deepStrictEqual(Object.keys(r[n]), Object.keys(want), `${n} key order`)
        assert.equal(Object.getPrototypeOf(r[n]), Object.getPrototypeOf(want))
      }
    }
    assert.ok(Object.is(r.numbers['1'], -0))
    assert.equal(r.numbers.big, Infinity)
  }
})

test('columns named __proto__ or twice are plain properties (the last one wins)', async () => {
  const pool = suite.pool({ poolSize: 1 })
  const [r] = await pool.query('select 1 as "__proto__", 2 as a, 3 as a, 4 as "x""y"')
  assert.equal(Object.getPrototypeOf(r), Object.prototype)
  assert.deepStrictEqual(Object.keys(r), ['__proto__', 'a', 'x"y'])
  assert.equal(r.a, 3)
  assert.equal(Object.getOwnPropertyDescriptor(r, '__proto__').value, 1)
  // The same through the columnar path of a large result.
  const many = await pool.query('select i as "__proto__", 2 as a, i as a from generate_series(1, 100) i')
  assert.equal(many.length, 100)
  assert.equal(Object.getPrototypeOf(many[99]), Object.prototype)
  assert.deepStrictEqual(Object.entries(many[99]), [['__proto__', 100], ['a', 100]])
})

test('enums created after the pool started are learnt, also on a standby', async () => {
  const pool = suite.pool({ poolSize: 1 })
  await pool.query('select 1') // the pool is up and has learnt its first types
  await pool.query("create type later_mood as enum ('meh', 'fine')")
  await pool.query('create table later_t (m later_mood, ms later_mood[])')
  await pool.query('insert into later_t values ($1, $2)', ['fine', ['meh', null]])
  assert.deepStrictEqual(await pool.query('select m, ms from later_t'), [{ m: 'fine', ms: ['meh', null] }])
  const reader = suite.pool({ mode: 'read-only', poolSize: 1 })
  let rows
  for (let i = 0; i < 100; i++) {
    try {
      rows = await reader.query('select m, ms, pg_is_in_recovery() as standby from later_t')
      if (rows.length === 1) break
    } catch (e) {
      if (e.code !== '42P01' && e.code !== '42704') throw e // not replayed yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.deepStrictEqual(rows, [{ m: 'fine', ms: ['meh', null], standby: true }])
})
