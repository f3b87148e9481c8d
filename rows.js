'use strict'
// Assembles row objects from a result the native layer hands over in columns (one typed
// array, string or JSON text per column; see napi/src/rows.rs for the layout, and
// napi/src/rows/kind.rs for the column kinds, whose letters `columnKinds()` reports). For each
// shape of result (column names and kinds) a row-building function is compiled once, so V8
// creates every row from the same object literal: one hidden class, no per-row property
// definition calls across N-API.

const native = require('./loader.js')

// The letter of each column kind, by name (defined once, in Rust).
const K = native.columnKinds()
const builders = new Map()
// BigInt64Array holds native-endian values; a DataView reads them in the order given.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const MAX_BUILDERS = 1000

function decodeError(message) {
  const err = new Error(message)
  err.code = 'DECODE_ERROR'
  return err
}

// A property key in an object literal. `__proto__` must be computed, or the literal would
// set the prototype instead of defining a column.
function key(name) {
  const quoted = JSON.stringify(name)
  return name === '__proto__' ? `[${quoted}]` : quoted
}

// The expression for one value of a column (or, kinds `shaped` and `array`, of a json
// column of documents of one shape: each place in the shape is a column of its own, of the
// kinds below plus `null`, null in every row so far, and nested `shaped` and `array`; see
// napi/src/rows/shaped.rs). `id` names the variables, `src` and `nulls` are the expressions
// of the column's data and NULL map, `sub` the column itself (for the containers). Returns
// the declarations to hoist out of the row loop and the expression per row.
function field(kind, id, src, nulls, sub) {
  let prelude = `const v${id} = ${src};`
  let expr
  switch (kind) {
    case K.shaped:
    case K.array: {
      prelude = `const m${id} = ${src}.cols, n${id} = ${src}.nulls;`
      const places = []
      for (let k = 0; k < sub.kinds.length; k++) {
        const f = field(sub.kinds[k], `${id}_${k}`, `m${id}[${k}]`, `n${id}[${k}]`, sub.cols[k])
        prelude += f.prelude
        places.push(kind === K.array ? f.expr : `${key(sub.names[k])}: ${f.expr}`)
      }
      expr = kind === K.array ? `[${places.join(', ')}]` : `{${places.join(', ')}}`
      break
    }
    case K.null:
      return { prelude: '', expr: 'null' }
    case K.bool:
      expr = `v${id}[i] === 1`
      break
    case K.int32:
    case K.float64:
    case K.values:
      expr = `v${id}[i]`
      break
    case K.bigint64:
      // A DataView read allocates a 24-byte BigInt where an optimized BigInt64Array read
      // allocates 40 (V8 11); a large result keeps one per row and value.
      prelude = `const v${id} = new DataView(${src}.buffer, ${src}.byteOffset, ${src}.byteLength);`
      expr = `v${id}.getBigInt64(i * 8, ${LITTLE_ENDIAN})`
      break
    case K.text:
      prelude = `const v${id} = ${src}[0], o${id} = ${src}[1];`
      expr = `v${id}.slice(o${id}[i], o${id}[i + 1])`
      break
    case K.table:
      // Repeated values: the distinct strings and an index per row.
      prelude = `const v${id} = ${src}[0], x${id} = ${src}[1];`
      expr = `v${id}[x${id}[i]]`
      break
    case K.bytes:
      // Buffer.from(arrayBuffer, offset, length) makes the same view as subarray() without
      // its species lookup (about 20% less time per value).
      prelude = `const v${id} = ${src}[0].buffer, b${id} = ${src}[0].byteOffset, o${id} = ${src}[1];`
      expr = `Buffer.from(v${id}, b${id} + o${id}[i], o${id}[i + 1] - o${id}[i])`
      break
    case K.json:
      prelude = `const v${id} = parseJson(${src}, n);`
      expr = `v${id}[i]`
      break
    default:
      throw decodeError(`unknown column kind ${kind}`)
  }
  // json and values columns carry their NULLs in place; the others have a NULL map when needed.
  if (kind !== K.json && kind !== K.values) {
    prelude += `const z${id} = ${nulls};`
    expr = `(z${id} !== null && z${id}[i] === 1 ? null : ${expr})`
  }
  return { prelude, expr }
}

// `arrays`: each row an array literal in column order (`rowMode: 'array'`), else an object
// literal keyed by column name.
function compile(kinds, names, cols, arrays) {
  let prelude = ''
  const fields = []
  for (let c = 0; c < kinds.length; c++) {
    const f = field(kinds[c], `${c}`, `cols[${c}]`, `nulls[${c}]`, cols[c])
    prelude += f.prelude
    fields.push(arrays ? f.expr : `${key(names[c])}: ${f.expr}`)
  }
  const row = arrays ? `[${fields.join(', ')}]` : `{${fields.join(', ')}}`
  const body = `${prelude}
for (let i = 0; i < n; i++) rows.push(${row});
return rows;`
  // Named, for profiles and V8's traces (test/rows-classes.test.js reads them).
  // eslint-disable-next-line no-new-func
  return new Function(`'use strict'; return function buildRows(n, cols, nulls, parseJson, rows) {${body}}`)()
}

// One JSON.parse for a whole json/jsonb column (its values joined into one JSON array).
function parseJson(text, n) {
  let values
  try {
    values = JSON.parse(text)
  } catch (e) {
    throw decodeError(`cannot decode json value: ${e.message}`)
  }
  if (!Array.isArray(values) || values.length !== n) throw decodeError('cannot decode json column')
  return values
}

// The same rows without compiling code, for processes that forbid it
// (`--disallow-code-generation-from-strings`, or a CSP-like embedder): one reader closure per
// column, the keys defined in column order on a fresh object, so every row has the same keys
// in the same order (and, from V8's view, the same hidden-class transitions) as the compiled
// literal. Slower per row; chosen once per process, not per result.
function reader(kind, src, nulls, sub, n) {
  let get
  switch (kind) {
    case K.shaped:
    case K.array: {
      const names = sub.names
      const reads = Array.from(sub.kinds, (k, j) => reader(k, src.cols[j], src.nulls[j], src.cols[j], n))
      get = kind === K.array
        ? (i) => reads.map((read) => read(i))
        : (i) => {
            const o = {}
            for (let j = 0; j < reads.length; j++) define(o, names[j], reads[j](i))
            return o
          }
      break
    }
    case K.null:
      return () => null
    case K.bool:
      get = (i) => src[i] === 1
      break
    case K.int32:
    case K.float64:
    case K.values:
      get = (i) => src[i]
      break
    case K.bigint64: {
      const view = new DataView(src.buffer, src.byteOffset, src.byteLength)
      get = (i) => view.getBigInt64(i * 8, LITTLE_ENDIAN)
      break
    }
    case K.text: {
      const [text, offsets] = src
      get = (i) => text.slice(offsets[i], offsets[i + 1])
      break
    }
    case K.table: {
      const [values, index] = src
      get = (i) => values[index[i]]
      break
    }
    case K.bytes: {
      const buffer = src[0].buffer
      const base = src[0].byteOffset
      const offsets = src[1]
      get = (i) => Buffer.from(buffer, base + offsets[i], offsets[i + 1] - offsets[i])
      break
    }
    case K.json: {
      // NULLs are in place (JSON null).
      const values = parseJson(src, n)
      return (i) => values[i]
    }
    default:
      throw decodeError(`unknown column kind ${kind}`)
  }
  if (kind !== K.values && nulls !== null && nulls !== undefined) {
    const plain = get
    get = (i) => (nulls[i] === 1 ? null : plain(i))
  }
  return get
}

// A plain data property, also for `__proto__` (which assignment would treat as the prototype).
function define(o, name, value) {
  if (name === '__proto__') Object.defineProperty(o, name, { value, writable: true, enumerable: true, configurable: true })
  else o[name] = value
}

function interpret(kinds, names, arrays) {
  return (n, cols, nulls, _parseJson, rows) => {
    const reads = []
    for (let c = 0; c < kinds.length; c++) reads.push(reader(kinds[c], cols[c], nulls[c], cols[c], n))
    if (arrays) {
      for (let i = 0; i < n; i++) {
        const row = new Array(reads.length)
        for (let c = 0; c < reads.length; c++) row[c] = reads[c](i)
        rows.push(row)
      }
      return rows
    }
    for (let i = 0; i < n; i++) {
      const row = {}
      for (let c = 0; c < reads.length; c++) define(row, names[c], reads[c](i))
      rows.push(row)
    }
    return rows
  }
}

// Whether this process may compile code from strings: asked once, by trying.
const CAN_COMPILE = (() => {
  try {
    return new Function('return true')() // eslint-disable-line no-new-func
  } catch {
    return false
  }
})()

function builder(shape, make) {
  let build = builders.get(shape)
  if (build === undefined) {
    build = make()
    if (builders.size >= MAX_BUILDERS) builders.clear()
    builders.set(shape, build)
  }
  return build
}

// The kinds and names of a chunk or a json container, with those of the containers in it.
function signature(c) {
  return [c.kinds, c.names, c.cols.map((col, i) => (c.kinds[i] === K.shaped || c.kinds[i] === K.array ? signature(col) : 0))]
}

// Appends the rows of one chunk of columns to `rows` (as arrays with `arrays`).
function append(rows, r, arrays) {
  if (r.names.length === 0) return rows
  // Keys of json members may hold any character but the control characters: with them the
  // shape is JSON (which no kinds string starts like). Array rows' shapes start with \u0001.
  let shape = r.kinds.includes(K.shaped) || r.kinds.includes(K.array)
    ? JSON.stringify(signature(r))
    : r.kinds + '\u0000' + r.names.join('\u0000')
  if (arrays) shape = '\u0001' + shape
  const make = CAN_COMPILE ? () => compile(r.kinds, r.names, r.cols, arrays) : () => interpret(r.kinds, r.names, arrays)
  builder(shape, make)(r.n, r.cols, r.nulls, parseJson, rows)
  keepClasses(r)
  return rows
}

// One chunk and one json container, without their columns, kept from one result to the
// next. The optimized row builders (and `append` and `rest`) are specialized for the hidden
// classes of these objects, which the native side makes; V8 keeps such a class only while
// an object has it, and when a full GC finds none (a large result built, used and dropped,
// then a major collection: the usual life of a service) it drops the class and with it
// every optimized function that depended on it ("weak objects"), so that the next large
// result's rows were built by unoptimized code until V8 compiled the builder again. A
// copy made in JS, its properties set in the same order, has the same class. Nothing of a
// result's data is kept: only its row count, column kinds, names and metadata.
const NO_COLUMNS = []
let keptChunk = null
let keptContainer = null

function keepClasses(r) {
  const kinds = r.kinds
  for (let c = 0; c < kinds.length; c++) {
    if (kinds[c] === K.shaped || kinds[c] === K.array) {
      keptContainer = withoutColumns(r.cols[c])
      break
    }
  }
  keptChunk = withoutColumns(r)
  // The first chunk of a streamed result holds the stream.
  if (keptChunk.rest != null) keptChunk.rest = null
}

function withoutColumns(o) {
  const copy = Object.assign({}, o)
  copy.cols = NO_COLUMNS
  copy.nulls = NO_COLUMNS
  return copy
}

// The native side calls these two (registered below): `rowsOf` for a query that resolves to
// finished rows (client.js's plain `query`), and the makers for every small result.
//
// A small result (at most 64 values) comes as finished rows: the native side calls the
// maker of its columns (one per statement, made by `smallMaker` and kept there) with the
// result's tag, fields, host (when traced), row count and every value in row order, and
// resolves to what it returns: the rows array, or `[rows, host]` when traced. Each row is one
// object literal, as for large results.
function smallMaker(names) {
  const shape = '\u0002' + names.join('\u0000')
  return builder(shape, () => (CAN_COMPILE ? compileSmall(names) : interpretSmall(names)))
}

function compileSmall(names) {
  const w = names.length
  const row = (o) => `{${names.map((name, c) => `${key(name)}: v[${o} + ${c}]`).join(', ')}}`
  const body = `const rows = take();
if (n === 1) rows.push(${row(0)});
else for (let i = 0, o = 0; i < n; i++, o += ${w}) rows.push(${row('o')});
rows.command = command;
rows.rowCount = rowCount;
rows.fields = fields;
return host === undefined ? rows : [rows, host];`
  // eslint-disable-next-line no-new-func
  return new Function('take', `'use strict'; return function buildSmallRows(command, rowCount, fields, host, n, ...v) {${body}}`)(take)
}

function interpretSmall(names) {
  const w = names.length
  return (command, rowCount, fields, host, n, ...v) => {
    const rows = take()
    for (let i = 0, o = 0; i < n; i++, o += w) {
      const row = {}
      for (let c = 0; c < w; c++) define(row, names[c], v[o + c])
      rows.push(row)
    }
    rows.command = command
    rows.rowCount = rowCount
    rows.fields = fields
    return host === undefined ? rows : [rows, host]
  }
}

// `command`, `rowCount` and `fields` on the rows array: non-enumerable (so that
// `deepStrictEqual(rows, [...])`, `Object.keys` and `console.log` see a plain array), plain
// data properties. Defining them costs about 0.4 µs a result on Node 20 (V8's generic C++
// path, three times), storing to them once defined is three inline-cached stores (20 ns).
// So a small result's array is a blank made before it was needed, its properties defined
// and its values undefined: `restock` makes them when the native side calls it, at the end of a
// round of the event loop's work, after the next queries were written to their sockets
// (napi/src/uvloop). A sequential query then pays for its blank while the server runs the
// query, not between the answer's arrival and the next query's write. With the stock empty
// (a burst, or the runtime I/O mode, which never restocks) a blank is made on the spot.
// Without a value (undefined until the result's stores): a descriptor of one member is read
// faster than one of two (`ToPropertyDescriptor`; 441 against 487 ns a blank, Node 20).
const BLANK = { writable: true }

// A variable, not a literal: an array literal of literals shares a copy-on-write backing
// store, and `pop` on one (until V8 optimizes `blank`) empties the store, so that the row's
// push grew it to 17 slots (`%DebugPrint`, Node 20).
const SEED = null

function blank() {
  // Room for one row in elements of any kind: a point query's row then goes in without the
  // growth of an empty array's backing store to 17 slots.
  const rows = [SEED]
  rows.pop()
  Object.defineProperty(rows, 'command', BLANK)
  Object.defineProperty(rows, 'rowCount', BLANK)
  Object.defineProperty(rows, 'fields', BLANK)
  return rows
}

const blanks = []

// A small result's array: one from the stock, or a blank made now.
function take() {
  return blanks.length !== 0 ? blanks.pop() : blank()
}

function restock(upTo) {
  while (blanks.length < upTo) blanks.push(blank())
}

// How many blanks are in stock (for the tests).
function stocked() {
  return blanks.length
}

native.setRowBuilders(smallMaker, rowsOf, restock)

// The last chunk's metadata on the rows array: a large result's array is a blank of its own
// (large results are few; the stock is for the small ones, whose path is timed).
function withMeta(rows, last) {
  rows.command = last.command
  rows.rowCount = last.rowCount
  rows.fields = last.fields
  return rows
}

/**
 * The rows of a native result, as plain objects keyed by column name (with `arrays`, as
 * arrays in column order; the native side then always sends columns). A large result comes
 * in chunks while it is still arriving (`rest` on the first; see napi/src/stream.rs): the
 * rows of one chunk are built while the next is decoded, and a chunk of a later attempt
 * (the pool retried the query) replaces everything before it. Resolves synchronously
 * (returns the array) when the result came whole. The array carries the result's
 * `command`, `rowCount` and `fields`.
 */
function rowsOf(r, arrays = false, info = undefined) {
  // A small result comes finished (`smallMaker`): the rows, or when traced [rows, host].
  if (Array.isArray(r)) {
    if (info === undefined) return r
    info.host = r[1]
    return r[0]
  }
  if (r.rest) return rest(r, arrays, info)
  if (info !== undefined) info.host = r.host
  return withMeta(append(blank(), r, arrays), r)
}

// How long the chunks of one result may be built without letting the event loop turn.
const YIELD_AFTER_MS = 4

async function rest(first, arrays, info) {
  const more = first.rest
  let attempt = first.attempt
  let rows = append(blank(), first, arrays)
  let r = first
  // Chunks that arrive faster than they are built (a large jsonb result) were all built in
  // one turn of the event loop, the awaits of ready chunks being microtasks: timers and I/O
  // waited up to 120 ms for a 50,000-row json result. Past a few ms the loop yields between
  // two chunks; the wait for a chunk still to come yields by itself.
  let since = performance.now()
  while (!r.last) {
    const ready = more.take()
    r = ready ?? (await more.next())
    if (ready == null) since = performance.now()
    if (r.attempt !== attempt) {
      rows = blank()
      attempt = r.attempt
    }
    append(rows, r, arrays)
    if (performance.now() - since > YIELD_AFTER_MS) {
      await new Promise(setImmediate)
      since = performance.now()
    }
  }
  if (info !== undefined) info.host = r.host
  return withMeta(rows, r)
}

module.exports = { rowsOf, smallMaker, restock, stocked, CAN_COMPILE }
