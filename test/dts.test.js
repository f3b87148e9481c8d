'use strict'
// client.d.ts is hand-written: these tests keep it honest. The README's usage (test/types/
// usage.ts) must compile under `--strict`, its `@ts-expect-error` lines must be errors, and
// what the declarations export must be what client.js exports, and the defaults they document
// must be the native layer's. No server needed.

const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const ts = require('typescript')

const ROOT = path.join(__dirname, '..')

test('the README usage type-checks against client.d.ts under --strict, and the misuses do not', () => {
  const program = ts.createProgram([path.join(__dirname, 'types/usage.ts')], {
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    types: ['node'],
  })
  const problems = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${path.relative(ROOT, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : ''
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n')
  })
  assert.deepStrictEqual(problems, [])
})

test('client.d.ts declares what client.js exports, with the same methods', () => {
  const file = path.join(ROOT, 'client.d.ts')
  const program = ts.createProgram([file], { noEmit: true, types: [] })
  const checker = program.getTypeChecker()
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file))
  // name -> the public methods and properties of a class, [] for a function
  const declared = {}
  for (const sym of checker.getExportsOfModule(moduleSymbol)) {
    if (!(sym.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Class))) continue // types only
    const members = []
    if (sym.flags & ts.SymbolFlags.Class) {
      for (const [name, m] of sym.members) {
        const isPrivate = (m.declarations || []).some((d) => ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Private)
        if (!isPrivate && m.flags & (ts.SymbolFlags.Method | ts.SymbolFlags.Property)) members.push(name)
      }
    }
    declared[sym.name] = members.sort()
  }
  const client = require('../client.js')
  const actual = {}
  for (const [name, value] of Object.entries(client)) {
    assert.strictEqual(typeof value, 'function', `${name} is exported but is not a function or class`)
    const isClass = /^class\b/.test(Function.prototype.toString.call(value))
    const descriptors = isClass ? Object.getOwnPropertyDescriptors(value.prototype) : {}
    actual[name] = Object.keys(descriptors)
      .filter((m) => m !== 'constructor' && (typeof descriptors[m].value === 'function' || descriptors[m].get))
      .sort()
  }
  assert.deepStrictEqual(actual, declared)
})

test('the retry defaults client.d.ts documents are the ones the native layer applies', () => {
  const file = path.join(ROOT, 'client.d.ts')
  const program = ts.createProgram([file], { noEmit: true, types: [] })
  const checker = program.getTypeChecker()
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)))
  // member name -> its doc comment, for one exported interface
  const docs = (name) => {
    const out = {}
    for (const [member, sym] of exports.find((e) => e.name === name).members) {
      out[member] = ts.displayPartsToString(sym.getDocumentationComment(checker))
    }
    return out
  }
  const documented = {}
  for (const [name, doc] of Object.entries(docs('RetryOptions'))) {
    const m = /Default (\d+)\./.exec(doc)
    assert.ok(m, `RetryOptions.${name} documents its default`)
    documented[name] = Number(m[1])
  }
  const defaults = { ...require('../index.js').retryDefaults() }
  assert.deepStrictEqual(documented, defaults)
  const transaction = /retry\.maxAttempts \((\d+)\)/.exec(docs('TransactionOptions').maxAttempts)
  assert.ok(transaction, 'TransactionOptions.maxAttempts documents its default')
  assert.strictEqual(Number(transaction[1]), defaults.maxAttempts)
})
