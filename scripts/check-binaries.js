#!/usr/bin/env node
'use strict'
// Checks what each built addon asks of the machine that loads it, from the ELF file alone
// (readelf, binutils), so the binaries for other architectures are checked too:
// - the machine (x86-64 or AArch64) matches the file name;
// - gnu: the highest GLIBC_ symbol version it needs is at most the floor (GLIBC_FLOOR,
//   default 2.17: RHEL 7 and everything newer), and every library it needs is part of glibc;
// - musl: no GLIBC_ versions at all, no interpreter but musl's, and nothing needed beyond
//   musl's libc and libgcc_s (what Node itself needs on Alpine).
// With --load, also loads every binary this machine can run: the host's own (gnu x64 here)
// in this Node, and x64 musl through musl's dynamic loader (Debian's `musl` + `musl-tools`):
// a small musl program dlopens it, with every N-API function it imports stubbed out, so
// musl resolves each libc symbol, runs its initialisers and finds napi_register_module_v1.
// arm64 under qemu user-mode emulation, where it is installed (Debian: qemu-user, and
// libc6:arm64 / musl:arm64 musl-dev:arm64 gcc-aarch64-linux-gnu after
// `dpkg --add-architecture arm64`; scripts/check-arm64.js installs them): gnu in the
// official arm64 Node (pinned in scripts/node-bin.js), which requires it and calls
// hello(); musl with the same dlopen program, cross-compiled against musl's arm64 libc.
// What cannot be loaded here stops at the ELF checks, and says so.
// Usage: node scripts/check-binaries.js [--load] [file.node ...]   (default: npm/*/*.node)
// Exits 1 when a file breaks a rule, 2 when there is nothing to check.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const FLOOR = process.env.GLIBC_FLOOR || '2.17'
const GLIBC_LIBS = /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libgcc_s\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$/
const MUSL_LIBS = /^(libc\.so|libc\.musl-(x86_64|aarch64)\.so\.1|ld-musl-(x86_64|aarch64)\.so\.1|libgcc_s\.so\.1)$/
const MACHINE = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' }

const cmp = (a, b) => {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0)
  return 0
}

function readelf(args, file) {
  return execFileSync('readelf', ['-W', ...args, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function inspect(file) {
  const m = path.basename(file).match(/\.linux-(x64|arm64)-(gnu|musl)\.node$/)
  if (!m) return { file, problems: ['the name does not say linux-<x64|arm64>-<gnu|musl>'] }
  const [, arch, abi] = m
  const machine = (readelf(['-h'], file).match(/Machine:\s+(.*)/) || [])[1]
  const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((x) => x[1])
  const interp = (readelf(['-l'], file).match(/Requesting program interpreter: (.*)\]/) || [])[1] || null
  const glibc = [...new Set([...readelf(['-V'], file).matchAll(/Name: GLIBC_([0-9.]+)/g)].map((x) => x[1]))].sort(cmp)
  const highest = glibc.length ? glibc[glibc.length - 1] : null
  const problems = []
  if (machine !== MACHINE[arch]) problems.push(`machine is ${machine}, expected ${MACHINE[arch]}`)
  if (abi === 'gnu') {
    if (highest && cmp(highest, FLOOR) > 0) problems.push(`needs GLIBC_${highest}, over the floor ${FLOOR} (symbols: ${glibcSymbolsOver(file, FLOOR).join(', ')})`)
    for (const lib of needed) if (!GLIBC_LIBS.test(lib)) problems.push(`needs ${lib}, not part of glibc`)
  } else {
    if (glibc.length) problems.push(`needs glibc symbol versions (${glibc.join(', ')}): it is not a musl build`)
    if (interp && !/^\/lib\/ld-musl-(x86_64|aarch64)\.so\.1$/.test(interp)) problems.push(`interpreter ${interp} is not musl's`)
    for (const lib of needed) if (!MUSL_LIBS.test(lib)) problems.push(`needs ${lib}, not part of musl`)
    if (!needed.some((l) => /^libc\.(so|musl-)/.test(l))) problems.push('does not link musl libc dynamically (a static-libc cdylib cannot be loaded by Node)')
  }
  return { file, arch, abi, machine, needed, interp, highest, problems }
}

// The symbols that pull the version over the floor, to say what to fix.
function glibcSymbolsOver(file, floor) {
  const out = readelf(['--dyn-syms'], file)
  const syms = new Set()
  for (const m of out.matchAll(/\s(\S+)@GLIBC_([0-9.]+)/g)) if (cmp(m[2], floor) > 0) syms.add(`${m[1]}@GLIBC_${m[2]}`)
  return [...syms].slice(0, 8)
}

// Loads `file` if this machine can; returns a line saying how, or null when it cannot.
function load(r) {
  const glibc = process.report.getReport().header.glibcVersionRuntime
  if (r.arch === process.arch && r.abi === (glibc ? 'gnu' : 'musl')) {
    execFileSync(process.execPath, ['-e', `const b = require(${JSON.stringify(r.file)}); if (typeof b.hello !== 'function') process.exit(1)`], { stdio: 'inherit' })
    return `loaded by node ${process.version}`
  }
  if (r.arch === 'x64' && r.abi === 'musl' && fs.existsSync('/lib/ld-musl-x86_64.so.1') && whichSync('musl-gcc')) {
    return muslDlopen(r.file)
  }
  if (r.arch === 'arm64' && process.arch === 'x64' && whichSync('qemu-aarch64')) {
    // glibc for arm64 from multiarch (libc6:arm64). Not a sysroot through QEMU_LD_PREFIX /
    // qemu -L: Node spins for minutes at start under it.
    if (r.abi === 'gnu' && fs.existsSync('/lib/ld-linux-aarch64.so.1')) {
      const node = require('./node-bin.js').nodeBinary('arm64-20')
      const code = `const b = require(${JSON.stringify(r.file)}); const s = b.hello('arm64'); if (process.arch !== 'arm64' || !/^hello arm64 /.test(s)) { console.error(process.arch, s); process.exit(1) }`
      execFileSync('qemu-aarch64', [node, '-e', code], { stdio: 'inherit' })
      return `loaded by the arm64 node ${execFileSync('qemu-aarch64', [node, '--version'], { encoding: 'utf8' }).trim()} under qemu-aarch64, hello() answered`
    }
    const specs = '/usr/lib/aarch64-linux-musl/musl-gcc.specs'
    if (r.abi === 'musl' && fs.existsSync('/lib/ld-musl-aarch64.so.1') && fs.existsSync(specs) && whichSync('aarch64-linux-gnu-gcc')) {
      return muslDlopen(r.file, { cc: ['aarch64-linux-gnu-gcc', '-specs', specs], run: ['qemu-aarch64'] }) + ' under qemu-aarch64'
    }
  }
  return null
}

function whichSync(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

// cc: the musl compiler command (x64: musl-gcc); run: what runs the program (arm64: qemu).
function muslDlopen(file, { cc = ['musl-gcc'], run = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'musl-load-'))
  const undef = [...readelf(['--dyn-syms'], file).matchAll(/\sUND\s+(napi_\w+|node_api_\w+)/g)].map((m) => m[1])
  const stubs = [...new Set(undef)].map((n) => `int ${n}(void) { return 9; }`).join('\n')
  fs.writeFileSync(path.join(dir, 'load.c'), `#include <dlfcn.h>
#include <stdio.h>
${stubs}
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen: %s\\n", dlerror()); return 1; }
  if (!dlsym(h, "napi_register_module_v1")) { fprintf(stderr, "no napi_register_module_v1\\n"); return 1; }
  return 0;
}
`)
  execFileSync(cc[0], [...cc.slice(1), '-rdynamic', '-o', path.join(dir, 'load'), path.join(dir, 'load.c')], { stdio: 'inherit' })
  const cmd = [...run, path.join(dir, 'load'), file]
  execFileSync(cmd[0], cmd.slice(1), { stdio: 'inherit' })
  fs.rmSync(dir, { recursive: true, force: true })
  return `dlopened by musl's loader (${new Set(undef).size} N-API imports stubbed)`
}

function main() {
  const args = process.argv.slice(2)
  const loadToo = args[0] === '--load'
  let files = (loadToo ? args.slice(1) : args).map((f) => path.resolve(f))
  if (files.length === 0) {
    const dirs = [...fs.readdirSync(path.join(ROOT, 'npm')).map((d) => path.join(ROOT, 'npm', d))]
    for (const d of dirs) for (const f of fs.readdirSync(d)) if (f.endsWith('.node')) files.push(path.join(d, f))
  }
  if (files.length === 0) {
    console.error('check-binaries: no .node files to check (build one first)')
    process.exit(2)
  }
  let failed = false
  for (const file of files) {
    const r = inspect(file)
    const rel = path.relative(process.cwd(), file)
    if (r.problems.length) {
      failed = true
      console.error(`FAIL ${rel}\n  - ${r.problems.join('\n  - ')}`)
    } else {
      const what = r.abi === 'gnu' ? `highest GLIBC_${r.highest} (floor ${FLOOR})` : `interpreter ${r.interp || 'none'}`
      console.log(`ok   ${rel}: ${r.machine}, ${what}, needs ${r.needed.join(' ')}`)
      if (loadToo) {
        try {
          console.log(`     ${load(r) || 'not loaded: this machine cannot run it (ELF checks only)'}`)
        } catch (e) {
          failed = true
          console.error(`FAIL ${rel}: does not load: ${e.message.split('\n')[0]}`)
        }
      }
    }
  }
  process.exit(failed ? 1 : 0)
}

if (require.main === module) main()
module.exports = { inspect, muslDlopen }
