#!/usr/bin/env node
'use strict'
// The release, short of publishing, tried as a user would meet it: builds the x64-gnu
// binary the way release.yml does (zig, glibc floor), checks it, packs the main package
// and every platform package that has a binary, installs the packed main package and the
// x64-gnu package into a scratch project outside the repository (offline: nothing comes
// from the registry) and, on a PATH with no cargo or rustc, runs a query against a local
// PostgreSQL with `require`, then with `import`; then type-checks the published .d.ts
// files, as installed, with `tsc --noEmit --strict` (CommonJS and ESM consumers).
// Usage: npm run release:dry   (SKIP_BUILD=1 reuses npm/linux-x64-gnu's binary)

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const t0 = Date.now()
const step = (s) => console.log(`\n==> ${s} (${((Date.now() - t0) / 1000).toFixed(0)}s)`)
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts })
const out = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts }).trim()

async function main() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-release-dry-'))

  if (!process.env.SKIP_BUILD) {
    step('build linux-x64-gnu with zig against the glibc floor')
    run('bash', [path.join(ROOT, 'scripts/build-target.sh'), 'x86_64-unknown-linux-gnu'], { cwd: ROOT })
  }
  step('check the binaries')
  run(process.execPath, [path.join(ROOT, 'scripts/check-binaries.js'), '--load'], { cwd: ROOT })

  step('pack')
  const packs = path.join(work, 'packs')
  fs.mkdirSync(packs)
  const pack = (dir) => {
    const [info] = JSON.parse(out('npm', ['pack', '--json', '--pack-destination', packs], { cwd: dir }))
    console.log(`${info.filename}: ${info.files.map((f) => f.path).join(' ')}`)
    return { file: path.join(packs, info.filename), files: info.files.map((f) => f.path).sort() }
  }
  // The optional dependencies on the platform packages exist only in what is published
  // (scripts/optional-deps.js).
  const pkgFile = path.join(ROOT, 'package.json')
  const pkgText = fs.readFileSync(pkgFile, 'utf8')
  let main
  try {
    run(process.execPath, [path.join(ROOT, 'scripts/optional-deps.js'), '--write'], { cwd: ROOT })
    main = pack(ROOT)
  } finally {
    fs.writeFileSync(pkgFile, pkgText)
  }
  const expected = [...pkg.files, 'LICENSE', 'README.md', 'package.json'].sort()
  if (JSON.stringify(main.files) !== JSON.stringify(expected)) throw new Error(`main package holds ${main.files}, expected ${expected}`)
  const platforms = {}
  for (const p of fs.readdirSync(path.join(ROOT, 'npm'))) {
    if (fs.existsSync(path.join(ROOT, 'npm', p, `hyperiondb-client.${p}.node`))) platforms[p] = pack(path.join(ROOT, 'npm', p))
    else console.log(`npm/${p}: no binary built here, not packed`)
  }
  if (!platforms['linux-x64-gnu']) throw new Error('no linux-x64-gnu package')

  step('install the packed main and linux-x64-gnu packages into a scratch project, offline')
  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true }))
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', main.file, platforms['linux-x64-gnu'].file], { cwd: app })
  const installed = fs.readdirSync(path.join(app, 'node_modules')).sort()
  console.log(`node_modules: ${installed.join(' ')}`)

  // A PATH with node and npm only: a hidden build from source would fail here.
  const bin = path.join(work, 'bin')
  fs.mkdirSync(bin)
  fs.symlinkSync(process.execPath, path.join(bin, 'node'))
  const env = { ...process.env, PATH: `${bin}:/usr/bin:/bin` }
  delete env.CARGO_HOME
  delete env.RUSTUP_HOME
  for (const tool of ['cargo', 'rustc']) {
    try {
      const where = out('sh', ['-c', `command -v ${tool}`], { env })
      throw new Error(`${tool} is still on the PATH: ${where}`)
    } catch (e) {
      if (e.message.includes('still on the PATH')) throw e
    }
  }

  step('start a local PostgreSQL')
  const { createCluster } = require(path.join(ROOT, 'test/cluster.js'))
  const cluster = await createCluster({ nodes: 1 })
  try {
    const conn = JSON.stringify(cluster.connection())
    const query = (lang) => `const pool = createPool({ ...${conn}, poolSize: 1 })
const rows = await pool.query("select 41 + $1::int4 as answer, 9007199254740993::int8 as big, '${lang}' as via", [1])
await pool.end()
if (rows[0].answer !== 42 || rows[0].big !== 9007199254740993n) throw new Error('wrong result: ' + JSON.stringify(rows, (k, v) => typeof v === 'bigint' ? String(v) : v))
console.log('${lang}: ' + rows[0].answer + ', int8 ' + rows[0].big + 'n, from ' + require_.resolve('hyperiondb-client'))`
    step('query with require, no cargo or rustc on the PATH')
    fs.writeFileSync(path.join(app, 'cjs.js'), `const { createPool } = require('hyperiondb-client'); const require_ = require;\n(async () => {\n${query('require')}\n})().catch((e) => { console.error(e); process.exit(1) })\n`)
    run('node', ['cjs.js'], { cwd: app, env })
    step('query with import')
    fs.writeFileSync(path.join(app, 'esm.mjs'), `import { createPool } from 'hyperiondb-client'\nimport { createRequire } from 'node:module'\nconst require_ = createRequire(import.meta.url)\n${query('import')}\n`)
    run('node', ['esm.mjs'], { cwd: app, env })
  } finally {
    await cluster.destroy()
  }

  step('tsc --noEmit --strict over the published .d.ts files, as a CommonJS and an ESM consumer')
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc')
  const types = path.join(ROOT, 'node_modules/@types')
  const dts = fs.readdirSync(path.join(app, 'node_modules/hyperiondb-client')).filter((f) => f.endsWith('.d.ts'))
  console.log(`published declarations: ${dts.join(' ')}`)
  fs.writeFileSync(path.join(app, 'use-cjs.ts'), `import { createPool, type Pool } from 'hyperiondb-client'\nconst pool: Pool = createPool({ hosts: ['localhost'], user: 'app' })\nvoid pool.query('select 1').then((rows) => rows.length)\n`)
  fs.writeFileSync(path.join(app, 'use-esm.mts'), `import { createPool, type Pool } from 'hyperiondb-client'\nimport client from 'hyperiondb-client'\nconst pool: Pool = createPool({ hosts: ['localhost'], user: 'app' })\nconst again: Pool = client.createPool({ hosts: ['localhost'], user: 'app' })\nvoid Promise.all([pool.end(), again.end()])\n`)
  const common = ['--noEmit', '--strict', '--types', 'node', '--typeRoots', types, '--skipLibCheck', 'false']
  for (const f of dts) run(process.execPath, [tsc, ...common, path.join('node_modules/hyperiondb-client', f)], { cwd: app })
  run(process.execPath, [tsc, ...common, '--module', 'node16', '--moduleResolution', 'node16', 'use-cjs.ts', 'use-esm.mts'], { cwd: app })

  fs.rmSync(work, { recursive: true, force: true })
  step('release:dry passed')
}

main().catch((e) => {
  console.error(`release:dry failed: ${e.stack || e}`)
  process.exit(1)
})
