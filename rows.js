'use strict'
// Assembles row objects from a result the native layer hands over in columns (one typed
// array, string or JSON text per column; see napi/src/rows.rs for the layout). For each
// shape of result (column names and kinds) a row-building function is compiled once, so V8
// creates every row from the same object literal: one hidden class, no per-row property
// definition calls across N-API.

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

// The members of a json column of flat objects (kind `o`, see napi/src/rows/shaped.rs) as
// one object literal: number (`i` when all are int32), boolean, string (joined with offsets,
// or `d`: a table and an index per value), or `n` (null in every row so far); JSON nulls
// come in a map per member.
function shapedObject(c, sub) {
  let prelude = `const m${c} = cols[${c}].cols, n${c} = cols[${c}].nulls;`
  const fields = []
  for (let k = 0; k < sub.kinds.length; k++) {
    const v = `v${c}_${k}`
    let expr
    switch (sub.kinds[k]) {
      case 'i':
      case 'f':
        prelude += `const ${v} = m${c}[${k}];`
        expr = `${v}[i]`
        break
      case 'b':
        prelude += `const ${v} = m${c}[${k}];`
        expr = `${v}[i] === 1`
        break
      case 's':
        prelude += `const ${v} = m${c}[${k}][0], o${c}_${k} = m${c}[${k}][1];`
        expr = `${v}.slice(o${c}_${k}[i], o${c}_${k}[i + 1])`
        break
      case 'd':
        prelude += `const ${v} = m${c}[${k}][0], x${c}_${k} = m${c}[${k}][1];`
        expr = `${v}[x${c}_${k}[i]]`
        break
      case 'n':
        expr = 'null'
        break
      default:
        throw decodeError(`unknown json member kind ${sub.kinds[k]}`)
    }
    if (sub.kinds[k] !== 'n') {
      prelude += `const z${c}_${k} = n${c}[${k}];`
      expr = `(z${c}_${k} !== null && z${c}_${k}[i] === 1 ? null : ${expr})`
    }
    fields.push(`${key(sub.names[k])}: ${expr}`)
  }
  return { prelude, expr: `{${fields.join(', ')}}` }
}

function compile(kinds, names, cols) {
  let prelude = ''
  const fields = []
  for (let c = 0; c < kinds.length; c++) {
    let expr
    switch (kinds[c]) {
      case 'o': {
        const o = shapedObject(c, cols[c])
        prelude += o.prelude
        expr = o.expr
        break
      }
      case 'b':
        prelude += `const v${c} = cols[${c}];`
        expr = `v${c}[i] === 1`
        break
      case 'i':
      case 'f':
        prelude += `const v${c} = cols[${c}];`
        expr = `v${c}[i]`
        break
      case 'g':
        // A DataView read allocates a 24-byte BigInt where an optimized BigInt64Array read
        // allocates 40 (V8 11); a large result keeps one per row and value.
        prelude += `const v${c} = new DataView(cols[${c}].buffer, cols[${c}].byteOffset, cols[${c}].byteLength);`
        expr = `v${c}.getBigInt64(i * 8, ${LITTLE_ENDIAN})`
        break
      case 's':
        prelude += `const v${c} = cols[${c}][0], o${c} = cols[${c}][1];`
        expr = `v${c}.slice(o${c}[i], o${c}[i + 1])`
        break
      case 'd':
        // A column of repeated values: its distinct strings and an index per row.
        prelude += `const v${c} = cols[${c}][0], x${c} = cols[${c}][1];`
        expr = `v${c}[x${c}[i]]`
        break
      case 'y':
        // Buffer.from(arrayBuffer, offset, length) makes the same view as subarray() without
        // its species lookup (about 20% less time per value).
        prelude += `const v${c} = cols[${c}][0].buffer, b${c} = cols[${c}][0].byteOffset, o${c} = cols[${c}][1];`
        expr = `Buffer.from(v${c}, b${c} + o${c}[i], o${c}[i + 1] - o${c}[i])`
        break
      case 'j':
        prelude += `const v${c} = parseJson(cols[${c}], n);`
        expr = `v${c}[i]`
        break
      case 'v':
        prelude += `const v${c} = cols[${c}];`
        expr = `v${c}[i]`
        break
      default:
        throw decodeError(`unknown column kind ${kinds[c]}`)
    }
    // j and v columns carry their NULLs in place; the others have a NULL map when needed.
    if (kinds[c] !== 'j' && kinds[c] !== 'v') {
      prelude += `const z${c} = nulls[${c}];`
      expr = `(z${c} !== null && z${c}[i] === 1 ? null : ${expr})`
    }
    fields.push(`${key(names[c])}: ${expr}`)
  }
  const body = `'use strict';${prelude}
for (let i = 0; i < n; i++) rows.push({${fields.join(', ')}});
return rows;`
  // eslint-disable-next-line no-new-func
  return new Function('n', 'cols', 'nulls', 'parseJson', 'rows', body)
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

function builder(shape, make) {
  let build = builders.get(shape)
  if (build === undefined) {
    build = make()
    if (builders.size >= MAX_BUILDERS) builders.clear()
    builders.set(shape, build)
  }
  return build
}

// Appends the rows of one chunk of columns to `rows`.
function append(rows, r) {
  if (r.names.length === 0) return rows
  // Keys of json members may hold any character but the control characters: with them the
  // shape is JSON (which no kinds string starts like).
  const shape = r.kinds.includes('o')
    ? JSON.stringify([r.kinds, r.names, r.cols.map((c, i) => (r.kinds[i] === 'o' ? [c.kinds, c.names] : 0))])
    : r.kinds + '\u0000' + r.names.join('\u0000')
  return builder(shape, () => compile(r.kinds, r.names, r.cols))(r.n, r.cols, r.nulls, parseJson, rows)
}

/**
 * The rows of a native result, as plain objects keyed by column name. A large result comes
 * in chunks while it is still arriving (`rest` on the first; see napi/src/stream.rs): the
 * rows of one chunk are built while the next is decoded, and a chunk of a later attempt
 * (the pool retried the query) replaces everything before it. Resolves synchronously
 * (returns the array) when the result came whole.
 */
function rowsOf(r) {
  if (Array.isArray(r)) return r // a small result comes as finished row objects
  if (r.rest) return rest(r)
  return append([], r)
}

async function rest(first) {
  const more = first.rest
  let attempt = first.attempt
  let rows = append([], first)
  let r = first
  while (!r.last) {
    r = more.take() ?? (await more.next())
    if (r.attempt !== attempt) {
      rows = []
      attempt = r.attempt
    }
    append(rows, r)
  }
  return rows
}

module.exports = { rowsOf }
