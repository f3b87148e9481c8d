'use strict'
// What a consumer installs: the manifest (no install-time scripts, exports that exist, the
// per-platform packages consistent with it) and the loader's behaviour when the binary is
// missing, of the wrong version or broken. No server needed; the loader runs in child
// processes, from a copy of it in a directory where nothing else is.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const PLATFORMS = fs.readdirSync(path.join(ROOT, 'npm')).sort()

// The scratch directories made here, removed when the file's tests are done (they were
// left in the system's temporary directory, a few per run).
const scratchDirs = []
test.after(() => {
  for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true })
})

// A directory holding only loader.js and a package.json of `version`, plus `files`.
function scratch(files = {}, version = pkg.version) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-loader-'))
  scratchDirs.push(dir)
  fs.copyFileSync(path.join(ROOT, 'loader.js'), path.join(dir, 'loader.js'))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: pkg.name, version }))
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), text)
  }
  return dir
}

// Runs `require(dir/loader.js)`; `preload` is code run first (to pose as another libc).
function load(dir, preload = '') {
  const code = `${preload}; try { console.log(JSON.stringify(require(${JSON.stringify(path.join(dir, 'loader.js'))}))) } catch (e) { console.error(e.code + ' ' + e.message); process.exit(3) }`
  return spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' })
}

const glibc = process.report.getReport().header.glibcVersionRuntime
const here = `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
const POSE_AS_MUSL = `const g = process.report.getReport.bind(process.report); process.report.getReport = () => { const r = g(); delete r.header.glibcVersionRuntime; return r }`

test('the published manifest runs nothing at install and exports files that exist', () => {
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare', 'prepack', 'postpack', 'prepublish']) {
    assert.strictEqual(pkg.scripts[s], undefined, `script ${s} would run for consumers or at pack time`)
  }
  assert.deepStrictEqual(pkg.exports['.'], { types: './client.d.ts', import: './client.mjs', require: './client.js' })
  for (const f of [...pkg.files, pkg.main, pkg.types, ...Object.values(pkg.exports['.'])]) {
    assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} is published but missing`)
  }
  assert.strictEqual(pkg.engines.node, '>=20')
  assert.strictEqual(pkg.license, 'MIT')
  assert.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) hyperiondb-client contributors\n/)
  assert.match(pkg.repository.url, /^git\+https:\/\/github\.com\//)
})

test('every per-platform package is an optional dependency at the same version, and Cargo agrees', () => {
  const cargo = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "(.*)"$/m)[1]
  assert.strictEqual(cargo, pkg.version, 'Cargo.toml and package.json versions differ')
  assert.deepStrictEqual(PLATFORMS, ['linux-arm64-gnu', 'linux-arm64-musl', 'linux-x64-gnu', 'linux-x64-musl'])
  const expected = {}
  for (const p of PLATFORMS) {
    const sub = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', p, 'package.json'), 'utf8'))
    const [, arch, abi] = p.split('-')
    assert.strictEqual(sub.name, `${pkg.name}-${p}`)
    assert.strictEqual(sub.version, pkg.version, `${sub.name} is not at ${pkg.version}`)
    assert.deepStrictEqual([sub.os, sub.cpu, sub.libc], [['linux'], [arch], [abi === 'gnu' ? 'glibc' : 'musl']])
    assert.deepStrictEqual(sub.files, [`${pkg.name}.${p}.node`])
    assert.strictEqual(sub.main, `${pkg.name}.${p}.node`)
    assert.strictEqual(sub.scripts, undefined)
    expected[sub.name] = pkg.version
  }
  // Written only to publish (a platform package of an unreleased version cannot be in the
  // lock file, and npm ci refuses a package.json the lock disagrees with).
  assert.strictEqual(pkg.optionalDependencies, undefined)
  assert.deepStrictEqual(require('../scripts/optional-deps.js').optionalDependencies(), expected)
})

test('without any binary, the error names the platform, the libc and both places tried', () => {
  const dir = scratch()
  const r = load(dir)
  assert.strictEqual(r.status, 3, r.stdout + r.stderr)
  assert.match(r.stderr, /^ERR_HYPERIONDB_NATIVE_NOT_FOUND /)
  assert.ok(r.stderr.includes(`platform ${here}`), r.stderr)
  if (glibc) assert.ok(r.stderr.includes(`(glibc ${glibc})`), r.stderr)
  assert.ok(r.stderr.includes(`the package hyperiondb-client-${here}: not installed`), r.stderr)
  assert.ok(r.stderr.includes(`the local build ${path.join(dir, `hyperiondb-client.${here}.node`)}: no such file`), r.stderr)
})

test('under musl the loader looks for the musl package and file, and says musl', () => {
  const dir = scratch()
  const r = load(dir, POSE_AS_MUSL)
  assert.strictEqual(r.status, 3, r.stdout + r.stderr)
  const musl = `linux-${process.arch}-musl`
  assert.ok(r.stderr.includes(`platform ${musl}`), r.stderr)
  assert.match(r.stderr, /\(musl/)
  assert.ok(r.stderr.includes(`hyperiondb-client-${musl}: not installed`), r.stderr)
  assert.ok(r.stderr.includes(path.join(dir, `hyperiondb-client.${musl}.node`)), r.stderr)
})

test('the installed platform package loads; of another version or broken, it is reported', () => {
  const sub = `node_modules/hyperiondb-client-${here}`
  const fake = (version, main) => ({
    [`${sub}/package.json`]: JSON.stringify({ name: `hyperiondb-client-${here}`, version, main: 'binding.js' }),
    [`${sub}/binding.js`]: main,
  })
  let r = load(scratch(fake(pkg.version, 'module.exports = { from: "package" }')))
  assert.strictEqual(r.status, 0, r.stderr)
  assert.deepStrictEqual(JSON.parse(r.stdout), { from: 'package' })

  r = load(scratch(fake('0.0.1', 'module.exports = { from: "package" }')))
  assert.strictEqual(r.status, 3)
  assert.ok(r.stderr.includes(`hyperiondb-client-${here}: version 0.0.1, but hyperiondb-client is ${pkg.version}`), r.stderr)

  r = load(scratch(fake(pkg.version, 'throw new Error("GLIBC_2.99 not found (pretend)")')))
  assert.strictEqual(r.status, 3)
  assert.ok(r.stderr.includes(`hyperiondb-client-${here}: GLIBC_2.99 not found (pretend)`), r.stderr)
})

test('the ES module entry exports what client.js exports, the same objects', async () => {
  const cjs = require('../client.js')
  const esm = await import('../client.mjs')
  assert.deepStrictEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), Object.keys(cjs).sort())
  for (const k of Object.keys(cjs)) assert.strictEqual(esm[k], cjs[k], k)
  assert.strictEqual(esm.default, cjs)
})
