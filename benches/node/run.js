#!/usr/bin/env node
'use strict'
// The Node.js comparison of the project's BENCHMARKS.md (W1-W8; the figures are in
// benches/README.md): hyperiondb-client side by side with node-postgres, postgres.js, Bun SQL
// and pgbench on the same server, in one run, and tokio-postgres (Rust) for W1 and W2.
//
//   node benches/node/run.js [--workload W2 ...|W1,W2] (W8: one fault of each kind, 1 rep) [--client hyperion,pg] [--reps 5]
//                            [--server harness|system] [--pg-bin DIR] [--w3-shape wide,json,strings|all]
//                            [--w1-pin] [--quick | --quick=W2,W4,W5] [--hyperion-node FILE]
//                            [--node-flags "--max-semi-space-size=64 ..."]
//                            [--out DIR (default benches/node/results) | --no-write]
//   node benches/node/run.js --tls [--workload C1,W1,W2] [--reps 3]   # TLS: see below
//   node benches/node/run.js --serve      # start the server + schema, print BENCH_CONN, wait
//   node benches/node/run.js --report results/<date>.json   # redraw latest.md/.png from a run
//   node benches/node/run.js --workload S1,S2,S3   # streams and COPY, 1M rows (issue 19)
//
// Starts its own server with the project's cluster harness (test/cluster.js). W1-W5 and W7
// run on the primary alone: the standbys are stopped and synchronous_standby_names cleared,
// so that WAL replay and sync-rep waits do not share the 2 cores with the clients. W6 gets a
// fresh 3-node synchronous cluster per sample, and so does W8 (one per client and fault kind:
// partition, freeze; needs root and iptables for the partition; one repetition). Every sample is a fresh process
// (sample.js under node, or under bun for Bun SQL; pgbench is spawned directly); clients
// are interleaved (A B C, then C B A, ...). Writes results/<date>.json, results/latest.md
// and results/latest.png. --node-flags runs every Node.js sample (all clients alike; not Bun's,
// not pgbench) with those V8/Node flags, to see a workload under a tuned runtime; the flags are
// recorded in the results.
// --tls: certificates made with the openssl CLI (test/certs.js), ssl = on for the server, and
// every client connects with verify-full against the CA, as its users configure it (pgbench:
// PGSSLMODE=verify-full). Workloads C1 (connect time: plain, TLS, and direct SSL for
// hyperiondb-client, the only one of these clients with it), W1 and W2 by default; written
// to results/TLS unless --out says otherwise.
// --server system: W1-W5 (and W3's shapes, S1-S3) on a PostgreSQL at its default settings
// (fsync on, default shared_buffers; initdb into a temp dir, only port, socket dir and
// listen_addresses set) from the installed binaries: --pg-bin, HYPERION_PG_BIN, or Debian's
// /usr/lib/postgresql/<v>/bin (apt-get install -y postgresql). Stopped by pid at the end.
// Written to results/system unless --out says otherwise. The default, --server harness, is
// the project's cluster harness (fsync=off, shared_buffers=32MB).
// W3 runs as a service meets it: the row limit bound as a parameter (where id <= $1) and a
// 2 ms setInterval on the event loop during the query (its longest gap is reported).
// --w3-shape picks the data: wide (BENCHMARKS.md's 10 columns, the default), json (jsonb with
// booleans, nulls, floats, nested objects and arrays), strings (5 distinct text columns); as
// workloads they are W3, W3-json and W3-strings. S1 streams 1M rows (for await over
// pool.stream, against pg-query-stream, pg-cursor, postgres.js .cursor() and Bun SQL's
// DECLARE/FETCH), S2 is COPY FROM of 1M rows from a generator, S3 COPY TO of 1M rows
// (against pg-copy-streams, postgres.js and Bun SQL's writable()/readable()); rows/s and peak
// RSS growth. They are not in the default set: name them.
// tokio-postgres (client tokio-postgres, W1 and W2, and W1-same/W1-cross): BENCHMARKS.md's
// "tokio-postgres (Rust, 1 thread)", the Rust binary benches/src/bin/tokio_pg.rs on a
// current_thread runtime, spawned directly like pgbench, BENCH_CONN as for sample.js (NoTls:
// n/a under --tls). Built here with `cargo build --release -p benches --bin tokio_pg` when
// the binary is missing or older than its source ($CARGO_TARGET_DIR or target/).
// --w1-pin adds W1-same and W1-cross (or name them in --workload): W1 with the server's
// postmaster and all its children pinned to CPU 0 (taskset -a -p; new backends inherit it)
// and the client started under taskset -c 0 (same CPU as its backend) or -c 1 (the other
// CPU), every W1 client; the server's affinity goes back to all CPUs after each sample. On a
// 2-core VM, unpinned W1 is a lottery of where the scheduler puts the client and its backend
// (same CPU: ~60k q/s, cross-CPU: ~12k, for Bun SQL and hyperiondb-client alike); the two
// variants measure each placement on purpose. Needs taskset (util-linux) and permission to
// set the server's affinity (root, or the server running as this user). In the default set
// (either server; about 1.5 min more at 5 repetitions), not in --tls's.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const { spawn, execFileSync } = require('node:child_process')

const ROOT = path.resolve(__dirname, '../..')
const HERE = __dirname
const RESULTS = path.join(HERE, 'results')
const TMP = path.join(RESULTS, 'tmp') // gitignored
const { createCluster } = require(path.join(ROOT, 'test/cluster.js'))
const { SIZES, SCHEMA, SCHEMA_AFTER, SCHEMA_STREAM, SCHEMA_STREAM_AFTER } = require('./lib/workloads.js')
const { startSystemServer } = require('./lib/system-server.js')
const report = require('./lib/report.js')
const { tokioPgBinary } = require('./lib/tokio-pg.js')

const WORKLOADS = ['C1', 'W1', 'W1-same', 'W1-cross', 'W2', 'W3', 'W3-json', 'W3-strings', 'W4', 'W5', 'W6', 'W7', 'W8', 'S1', 'S2', 'S3', 'B1']
const W3_SHAPES = { wide: 'W3', json: 'W3-json', strings: 'W3-strings' }
// Not run unless named (--workload) or, for W3's shapes, picked with --w3-shape.
const NOT_DEFAULT = new Set(['C1', 'W3-json', 'W3-strings', 'S1', 'S2', 'S3', 'B1'])
// Who runs each workload, in the order of the first repetition.
const CLIENTS = {
  C1: ['hyperion:plain', 'hyperion:tls', 'hyperion:direct', 'pg:plain', 'pg:tls', 'postgres:plain', 'postgres:tls', 'bun:plain', 'bun:tls'],
  W1: ['hyperion', 'pg', 'postgres', 'bun', 'pgbench', 'tokio-postgres'],
  // --w1-pin: W1 with the client on the server's CPU (same) or on the other one (cross).
  'W1-same': ['hyperion', 'pg', 'postgres', 'bun', 'pgbench', 'tokio-postgres'],
  'W1-cross': ['hyperion', 'pg', 'postgres', 'bun', 'pgbench', 'tokio-postgres'],
  W2: ['hyperion', 'pg', 'postgres', 'bun', 'pgbench', 'tokio-postgres'],
  W3: ['hyperion', 'hyperion:parse', 'pg', 'postgres', 'bun'],
  'W3-json': ['hyperion', 'pg', 'postgres', 'bun'],
  'W3-strings': ['hyperion', 'pg', 'postgres', 'bun'],
  // S1: pg = pg-query-stream, pg:cursor = pg-cursor; S2/S3: pg = pg-copy-streams.
  S1: ['hyperion', 'pg', 'pg:cursor', 'postgres', 'bun'],
  S2: ['hyperion', 'pg', 'postgres', 'bun'],
  S3: ['hyperion', 'pg', 'postgres', 'bun'],
  W4: ['hyperion', 'pg', 'postgres', 'bun'],
  W5: ['hyperion', 'pg', 'postgres', 'bun'],
  B1: ['hyperion', 'pg', 'postgres', 'bun'],
  W6: ['hyperion', 'pg', 'postgres', 'bun'],
  W7: ['hyperion:v0', 'hyperion:v500', 'hyperion:off'],
  // W8: client:fault, one fault of each kind per client (BENCHMARKS.md), so one repetition
  // whatever --reps says.
  W8: ['hyperion:partition', 'pg:partition', 'postgres:partition', 'bun:partition', 'bun:freeze', 'postgres:freeze', 'pg:freeze', 'hyperion:freeze'],
}
// --w1-pin: the CPU the client of each variant runs on (the server is on CPU 0).
const W1_PIN = { 'W1-same': 0, 'W1-cross': 1 }
// What a sample process runs: W1-same and W1-cross are W1.
const baseWorkload = (w) => (W1_PIN[w] !== undefined ? 'W1' : w)
const W8_BOUND_MS = 20000 // the sample stops waiting on any call 20 s after the election
const SAMPLE_TIMEOUT_MS = 15 * 60 * 1000

const wall = () => performance.timeOrigin + performance.now()
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`)

// ---------------------------------------------------------------------------------------
function parseArgs(argv) {
  const o = { workloads: [], clients: null, reps: 5, quick: new Set(), serve: false, write: true, hyperionNode: null, out: null, report: null, nodeFlags: [], tls: false, server: 'harness', pgBin: null, w3Shapes: null, w1Pin: false }
  const list = (v) => String(v).split(',').map((s) => s.trim()).filter(Boolean)
  const wl = (x) => (/^w[13]-/i.test(x) ? `${x.slice(0, 3).toUpperCase()}${x.slice(3).toLowerCase()}` : x.toUpperCase())
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const val = () => (inline !== undefined ? inline : argv[++i])
    switch (flag) {
      case '--workload': case '-w': o.workloads.push(...list(val()).map(wl)); break
      case '--client': case '-c': o.clients = [...(o.clients || []), ...list(val())]; break
      case '--reps': o.reps = Number(val()); break
      case '--quick': for (const w of inline !== undefined ? list(inline).map(wl) : WORKLOADS) o.quick.add(w); break
      case '--serve': o.serve = true; break
      case '--tls': o.tls = true; break
      case '--w1-pin': o.w1Pin = true; break
      case '--server': o.server = String(val()); break
      case '--pg-bin': o.pgBin = path.resolve(val()); break
      case '--w3-shape': o.w3Shapes = [...(o.w3Shapes || []), ...list(val()).flatMap((x) => (x === 'all' ? Object.keys(W3_SHAPES) : [x]))]; break
      case '--report': o.report = path.resolve(val()); break
      case '--no-write': o.write = false; break
      case '--out': o.out = path.resolve(val()); break
      case '--hyperion-node': o.hyperionNode = path.resolve(val()); break
      case '--node-flags': o.nodeFlags.push(...String(val()).split(/\s+/).filter(Boolean)); break
      case '--help': case '-h':
        process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2).filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n')
        process.exit(0)
        break
      default: throw new Error(`unknown option ${a} (see --help)`)
    }
  }
  if (o.server !== 'harness' && o.server !== 'system') throw new Error('--server is harness or system')
  const system = o.server === 'system'
  if (!o.workloads.length) o.workloads = o.tls ? ['C1', 'W1', 'W2'] : WORKLOADS.filter((w) => !NOT_DEFAULT.has(w) && (!system || !['W6', 'W7', 'W8'].includes(w)))
  if (o.w3Shapes) {
    for (const sh of o.w3Shapes) if (!W3_SHAPES[sh]) throw new Error(`unknown --w3-shape ${sh} (wide, json, strings, all)`)
    // --w3-shape replaces W3 (named or by default) with the shapes picked; alone, it runs just them.
    const had = o.workloads.includes('W3') || !o.workloads.some((w) => w.startsWith('W3'))
    if (had) o.workloads = [...o.workloads.filter((w) => w !== 'W3'), ...o.w3Shapes.map((sh) => W3_SHAPES[sh])]
  }
  // --w1-pin adds W1's pinned variants to what runs (named or by default).
  if (o.w1Pin) for (const w of Object.keys(W1_PIN)) if (!o.workloads.includes(w)) o.workloads.push(w)
  if (!o.out) o.out = o.tls ? path.join(RESULTS, 'TLS') : system ? path.join(RESULTS, 'system') : RESULTS
  for (const w of o.workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}`)
  if (system && o.workloads.some((w) => ['W6', 'W7', 'W8', 'C1'].includes(w))) throw new Error('--server system runs W1-W5, W3\'s shapes and S1-S3 (W6-W8 need the harness\'s cluster, C1 its TLS)')
  if (system && o.tls) throw new Error('--tls runs on the harness server only')
  o.workloads = WORKLOADS.filter((w) => o.workloads.includes(w))
  if (o.tls && o.workloads.some((w) => w !== 'C1' && w !== 'W1' && w !== 'W2')) throw new Error('--tls runs C1, W1 and W2 only')
  if (o.workloads.includes('C1') && !o.tls) throw new Error('C1 needs --tls')
  if (!Number.isInteger(o.reps) || o.reps < 1) throw new Error('--reps must be a positive integer')
  return o
}

function clientsFor(w, opts) {
  return CLIENTS[w].filter((c) => !opts.clients || opts.clients.includes(c) || opts.clients.includes(c.split(':')[0]))
}

// ---------------------------------------------------------------------------------------
// The hyperion build under test: a snapshot of client.js + index.js + a RELEASE .node, so
// that a debug rebuild of the repository root during the run cannot change what is measured.
function elfHasDebugInfo(file) {
  const b = fs.readFileSync(file)
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) throw new Error(`${file} is not a 64-bit ELF file`)
  const shoff = Number(b.readBigUInt64LE(0x28))
  const shentsize = b.readUInt16LE(0x3a)
  const shnum = b.readUInt16LE(0x3c)
  const shstrndx = b.readUInt16LE(0x3e)
  const strOff = Number(b.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18))
  for (let i = 0; i < shnum; i++) {
    const nameOff = b.readUInt32LE(shoff + i * shentsize)
    const end = b.indexOf(0, strOff + nameOff)
    if (b.toString('latin1', strOff + nameOff, end) === '.debug_info') return true
  }
  return false
}

function git(args) {
  try { return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { return null }
}

function snapshotHyperion(opts) {
  const rootNode = path.join(ROOT, 'hyperiondb-client.linux-x64-gnu.node')
  const cargoRelease = path.join(ROOT, 'target/release/libhyperiondb_client.so')
  let src = opts.hyperionNode
  let note = null
  if (!src) {
    if (fs.existsSync(rootNode) && !elfHasDebugInfo(rootNode)) src = rootNode
    else if (fs.existsSync(cargoRelease) && !elfHasDebugInfo(cargoRelease)) {
      src = cargoRelease
      note = `${path.relative(ROOT, rootNode)} is a debug build (or missing): using ${path.relative(ROOT, cargoRelease)}`
      log(`warning: ${note}`)
    } else {
      throw new Error('no release build of the native addon: run `npx napi build --platform --release --cargo-cwd napi --js index.js --dts index.d.ts` first')
    }
  } else if (elfHasDebugInfo(src)) {
    log(`warning: ${src} has debug info (debug build?)`)
  }
  const dir = path.join(TMP, 'hyperion')
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  // Every top-level .js module (client.js and what it requires: rows.js, loader.js, ...).
  for (const f of ['package.json', ...fs.readdirSync(ROOT).filter((x) => x.endsWith('.js') && x !== 'demo.js')]) {
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f))
  }
  fs.copyFileSync(src, path.join(dir, 'hyperiondb-client.linux-x64-gnu.node'))
  const st = fs.statSync(src)
  return {
    client: path.join(dir, 'client.js'),
    info: {
      binary: path.relative(ROOT, src) || src,
      binaryMtime: st.mtime.toISOString(),
      binarySha256: crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 16),
      release: true,
      note,
      gitHead: git(['rev-parse', '--short', 'HEAD']),
      gitDirty: !!git(['status', '--porcelain', '--untracked-files=no']),
    },
  }
}

// ---------------------------------------------------------------------------------------
function findBun() {
  const p = path.join(HERE, 'node_modules/.bin/bun')
  return fs.existsSync(p) ? p : null
}

function findPgbench() {
  const cands = []
  try {
    for (const v of fs.readdirSync('/usr/lib/postgresql').sort((a, b) => parseFloat(b) - parseFloat(a))) cands.push(`/usr/lib/postgresql/${v}/bin/pgbench`)
  } catch { /* none */ }
  for (const d of (process.env.PATH || '').split(path.delimiter)) if (d) cands.push(path.join(d, 'pgbench'))
  for (const c of cands) {
    try {
      const v = execFileSync(c, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
      return { bin: c, version: v }
    } catch { /* next */ }
  }
  return null
}

// The version of a crate in the workspace's Cargo.lock (what the Rust sample is built with).
function lockedCrate(name) {
  try {
    const lock = fs.readFileSync(path.join(ROOT, 'Cargo.lock'), 'utf8')
    const pkg = lock.split('[[package]]').find((p) => p.includes(`\nname = "${name}"\n`))
    const m = pkg && /\nversion = "([^"]+)"/.exec(pkg)
    return m ? m[1] : null
  } catch { return null }
}

function versions(tools, hyperion) {
  const v = { node: process.version }
  const pkg = (name) => {
    for (let d = path.dirname(require.resolve(name, { paths: [HERE] })); d !== path.dirname(d); d = path.dirname(d)) {
      const f = path.join(d, 'package.json')
      if (fs.existsSync(f)) {
        const p = JSON.parse(fs.readFileSync(f, 'utf8'))
        if (p.name === name) return p.version
      }
    }
    return null
  }
  v.hyperion = `${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version} (${hyperion.info.gitHead}${hyperion.info.gitDirty ? '+dirty' : ''})`
  v.pg = pkg('pg')
  for (const h of ['pg-cursor', 'pg-query-stream', 'pg-copy-streams']) { try { v[h] = pkg(h) } catch { v[h] = null } }
  v.postgres = pkg('postgres')
  v.bun = tools.bun ? execFileSync(tools.bun, ['--version'], { encoding: 'utf8' }).trim() : null
  v.pgbench = tools.pgbench ? tools.pgbench.version : null
  v['tokio-postgres'] = lockedCrate('tokio-postgres')
  v.tokio = lockedCrate('tokio')
  return v
}

// ---------------------------------------------------------------------------------------
// Processes
function runProcess(cmd, args, { env, timeoutMs = SAMPLE_TIMEOUT_MS, onLine, onSpawn } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: HERE, env: { ...process.env, ...env }, stdio: [onSpawn ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    if (onSpawn) { child.stdin.on('error', () => {}); onSpawn(child) }
    let out = ''
    let err = ''
    let buf = ''
    child.stdout.on('data', (d) => {
      out += d
      if (onLine) {
        buf += d
        let i
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i))
          buf = buf.slice(i + 1)
        }
      }
    })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, out, err: err + e.message }) })
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err }) })
  })
}

// A sample's process: under `taskset -c <cpu>` for W1-same / W1-cross.
function launch(workload, cmd, args, opts) {
  const cpu = W1_PIN[workload]
  return cpu === undefined ? runProcess(cmd, args, opts) : runProcess('taskset', ['-c', String(cpu), cmd, ...args], opts)
}

function parseResult(r) {
  const line = r.out.split('\n').reverse().find((l) => l.startsWith('@@RESULT '))
  if (line) return JSON.parse(line.slice(9))
  const tail = (r.err || r.out).trim().split('\n').slice(-6).join(' | ')
  return { ok: false, error: `exit ${r.signal || r.code}: ${tail || 'no output'}` }
}

async function nodeSample(client, workload, ctx) {
  const [name] = client.split(':')
  const env = { BENCH_CONN: JSON.stringify(ctx.conn), HYPERION_CLIENT: ctx.hyperion.client }
  const args = ['sample.js', '--client', client, '--workload', baseWorkload(workload), ...(ctx.opts.quick.has(workload) ? ['--quick'] : [])]
  // A client that hangs (S3: postgres.js's paused socket, see clients/postgres.js) costs 3 min, not 15.
  const timeoutMs = /^S\d$/.test(workload) ? 3 * 60 * 1000 : SAMPLE_TIMEOUT_MS
  const r = name === 'bun'
    ? (ctx.tools.bun ? await launch(workload, ctx.tools.bun, args, { env, timeoutMs }) : { code: -1, out: '', err: 'bun binary not found (npm install --prefix benches/node)' })
    : await launch(workload, process.execPath, ['--expose-gc', ...ctx.opts.nodeFlags, ...args], { env, timeoutMs })
  return parseResult(r)
}

// tokio-postgres (Rust, current_thread runtime): benches/src/bin/tokio_pg.rs, spawned directly.
async function tokioPgSample(workload, ctx) {
  const t = ctx.tools.tokioPg
  if (ctx.conn.tls) return { ok: false, na: true, error: 'tokio-postgres: not run under --tls (the sample connects with NoTls)' }
  if (!t || !t.bin) return { ok: false, na: !!(t && t.na), error: (t && t.error) || 'the tokio-postgres sample was not built' }
  const env = { BENCH_CONN: JSON.stringify(ctx.conn) }
  const args = ['--workload', baseWorkload(workload), ...(ctx.opts.quick.has(workload) ? ['--quick'] : [])]
  return parseResult(await launch(workload, t.bin, args, { env }))
}

// pgbench (C, libpq): the reference for what the server allows. -M prepared, same SQL.
async function pgbenchSample(workload, ctx) {
  const pb = ctx.tools.pgbench
  if (!pb) return { ok: false, na: true, error: 'no pgbench binary found' }
  const size = SIZES[baseWorkload(workload)][ctx.opts.quick.has(workload) ? 'quick' : 'full']
  const w1 = baseWorkload(workload) === 'W1'
  const dir = fs.mkdtempSync(path.join(TMP, 'pgbench-'))
  try {
    const script = path.join(dir, `${workload}.sql`)
    fs.writeFileSync(script, w1
      ? '\\set x random(1, 1000000)\nselect :x::int4 as x;\n'
      : '\\set id random(1, 10000)\nselect id, label, amount, created_at from bench_small where id = :id;\n')
    const c = ctx.conn
    const common = ['-n', '-M', 'prepared', '-f', script, '-h', c.host, '-p', String(c.port), '-U', c.user]
    const shape = w1 ? ['-c', '1', '-j', '1'] : ['-c', '10', '-j', '2']
    const clients = w1 ? 1 : 10
    const env = { PGPASSWORD: c.password, PGDATABASE: c.database, ...(c.tls ? { PGSSLMODE: 'verify-full', PGSSLROOTCERT: c.tls.ca } : {}) }
    const check = (r, total) => {
      const out = r.out
      const m = /number of transactions actually processed: (\d+)\/(\d+)/.exec(out)
      const failed = /number of failed transactions: (\d+)/.exec(out)
      if (r.code !== 0 || !m || Number(m[1]) !== total || (failed && Number(failed[1]) !== 0)) {
        throw new Error(`pgbench failed (exit ${r.code}): ${(r.err + out).trim().split('\n').slice(-4).join(' | ')}`)
      }
    }
    const warm = await launch(workload, pb.bin, [...common, ...shape, '-t', String(Math.ceil(size.warm / clients)), c.database], { env })
    check(warm, Math.ceil(size.warm / clients) * clients)
    const perClient = Math.ceil(size.n / clients)
    const timeBin = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null
    const args = [...common, ...shape, '-t', String(perClient), ...(w1 ? ['-l', `--log-prefix=${path.join(dir, 'log')}`] : []), c.database]
    const r = timeBin ? await launch(workload, timeBin, ['-f', '@@TIME %U %S', pb.bin, ...args], { env }) : await launch(workload, pb.bin, args, { env })
    check(r, perClient * clients)
    const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.out)
    if (!tps) throw new Error(`pgbench: no tps in output: ${r.out.slice(-300)}`)
    const metrics = { value: Number(tps[1]), unit: 'queries/s', queries: perClient * clients, checks: 'pgbench transaction counts and failures' }
    const t = /@@TIME ([\d.]+) ([\d.]+)/.exec(r.err)
    if (t) metrics.cpu_us_per_query = ((Number(t[1]) + Number(t[2])) * 1e6) / metrics.queries
    if (w1) {
      const lat = []
      for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('log'))) {
        for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
          const p = line.split(' ')
          if (p.length >= 3) lat.push(Number(p[2]))
        }
      }
      lat.sort((a, b) => a - b)
      metrics.p50_us = lat[Math.ceil(0.5 * lat.length) - 1]
      metrics.p99_us = lat[Math.ceil(0.99 * lat.length) - 1]
    }
    return { ok: true, client: 'pgbench', workload, version: pb.version, runtime: 'C (libpq)', metrics }
  } catch (e) {
    return { ok: false, error: e.message }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// The server for W1-W5/W7: the harness's cluster, reduced to its primary.
async function standalonePrimary({ tls = false, streams = false } = {}) {
  const c = await createCluster()
  const p = c.primaryIndex()
  const a = await c.admin(p)
  try {
    await a.query("alter system set synchronous_standby_names = ''")
    await a.query('select pg_reload_conf()')
  } finally { await a.end() }
  for (let i = 0; i < c.nodes.length; i++) if (i !== p) await c.stop(i, 'fast')
  for (let tries = 0; ; tries++) {
    const b = await c.admin(p)
    const { rows } = await b.query('show synchronous_standby_names')
    await b.end()
    if (rows[0].synchronous_standby_names === '') break
    if (tries > 100) throw new Error('synchronous_standby_names did not clear')
    await new Promise((r) => setTimeout(r, 50))
  }
  const b = await c.admin(p)
  let server
  try {
    await b.query(SCHEMA)
    await b.query(SCHEMA_AFTER)
    if (streams) {
      await b.query(SCHEMA_STREAM)
      await b.query(SCHEMA_STREAM_AFTER)
    }
    server = (await b.query('show server_version')).rows[0].server_version
  } finally { await b.end() }
  const conn = { ...c.connection(), host: c.node(p).host, port: c.node(p).port }
  delete conn.hosts
  if (tls) {
    const { makeCertificates, enableSsl } = require(path.join(ROOT, 'test/certs.js'))
    const certDir = fs.mkdtempSync(path.join(TMP, 'tls-'))
    makeCertificates(certDir, 'bench_cert')
    await enableSsl(c, p, certDir)
    conn.tls = { ca: path.join(certDir, 'ca.pem') }
    const origDestroy = c.destroy
    c.destroy = async function () {
      try { return await origDestroy.apply(this, arguments) } finally { fs.rmSync(certDir, { recursive: true, force: true }) }
    }
  }
  // --w1-pin: the primary's postmaster (test/cluster.js reads it from postmaster.pid).
  return { cluster: c, conn, server, postmasterPid: () => c._pid(p) }
}

// --server system: the installed PostgreSQL at its default settings, schema as for the harness.
async function systemServer({ pgBin, streams = false } = {}) {
  const s = await startSystemServer({ pgBin, log })
  try {
    const b = await s.admin()
    try {
      await b.query(SCHEMA)
      await b.query(SCHEMA_AFTER)
      if (streams) {
        await b.query(SCHEMA_STREAM)
        await b.query(SCHEMA_STREAM_AFTER)
      }
    } finally { await b.end() }
  } catch (e) {
    await s.stop()
    throw e
  }
  return {
    conn: s.conn,
    server: s.version,
    settings: s.settings,
    bin: s.bin,
    postmasterPid: () => s.pid,
    cluster: { destroy: () => s.stop() },
  }
}

async function startServer(opts) {
  const streams = opts.workloads.some((w) => /^S\d$/.test(w))
  return opts.server === 'system' ? systemServer({ pgBin: opts.pgBin, streams }) : standalonePrimary({ tls: opts.tls, streams })
}

// ---------------------------------------------------------------------------------------
// --w1-pin: CPU affinity of the server (its postmaster and every process under it).
function processTree(root) {
  const children = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    let st
    try { st = fs.readFileSync(`/proc/${d}/stat`, 'utf8') } catch { continue } // gone
    const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1])
    if (!children.has(ppid)) children.set(ppid, [])
    children.get(ppid).push(Number(d))
  }
  const out = []
  for (const queue = [root]; queue.length;) {
    const pid = queue.shift()
    out.push(pid)
    queue.push(...(children.get(pid) || []))
  }
  return out
}

const cpusAllowed = (pid) => (/^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8')) || [])[1]

// The postmaster first (what it forks from then on inherits the mask), then everything already
// under it. A process that exits meanwhile is skipped; the postmaster must take the mask.
function pinServer(pm, cpus) {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pm)], { stdio: ['ignore', 'ignore', 'pipe'] })
  for (const pid of processTree(pm).slice(1)) {
    try { execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }) } catch { /* exited */ }
  }
  const got = cpusAllowed(pm)
  if (got !== cpus) throw new Error(`the postmaster (pid ${pm}) has CPUs ${got} after taskset -p -c ${cpus}`)
}

// Runs one W1-same / W1-cross sample with the server on CPU 0; all CPUs again afterwards,
// whatever happened.
async function pinnedSample(workload, ctx, run) {
  const n = os.cpus().length
  if (n < 2) return { ok: false, na: true, error: `${workload}: needs 2 CPUs (this machine has ${n})` }
  const pm = ctx.postmasterPid && ctx.postmasterPid()
  if (!pm) return { ok: false, error: `${workload}: the server's postmaster pid is unknown` }
  const all = `0-${n - 1}`
  try {
    pinServer(pm, '0')
  } catch (e) {
    try { pinServer(pm, all) } catch { /* reported below */ }
    const missing = e.code === 'ENOENT'
    return { ok: false, na: missing, error: missing ? 'taskset not found (util-linux)' : `pinning the server to CPU 0 failed: ${String(e.stderr || e.message).trim().split('\n')[0]}` }
  }
  let res
  try {
    res = await run()
  } finally {
    try { pinServer(pm, all) } catch (e) { log(`warning: restoring the server's CPU affinity (taskset -p -c ${all} ${pm}) failed: ${String(e.stderr || e.message).trim()}`) }
  }
  if (res.ok && res.metrics) res.metrics.pin = { server_cpus: '0', client_cpus: String(W1_PIN[workload]) }
  return res
}

// W6: one failover per sample, on a fresh 3-node synchronous cluster.
async function failoverSample(client, ctx) {
  const [name] = client.split(':')
  if (name === 'bun' && !ctx.tools.bun) return { ok: false, error: 'bun binary not found' }
  const c = await createCluster()
  try {
    const p = c.primaryIndex()
    const a = await c.admin(p)
    try {
      await a.query('create table w6 (k int4 primary key, writer int4 not null, at timestamptz not null default now()); grant all on w6 to public')
      ctx.server6 = ctx.server6 || (await a.query('show server_version')).rows[0].server_version
    } finally { await a.end() }
    const base = c.connection()
    const conn = { user: base.user, password: base.password, database: base.database, hosts: c.nodes.map((_, i) => ({ host: c.node(i).host, port: c.node(i).port })), primary: p }
    const env = { BENCH_CONN: JSON.stringify(conn), HYPERION_CLIENT: ctx.hyperion.client }
    const args = ['sample.js', '--client', client, '--workload', 'W6']
    let tLoss = null
    let fo = null
    let foDone = null
    const origStop = c.stop
    c.stop = function (i, mode) {
      if (i === p && tLoss === null) tLoss = wall() // the moment the harness starts stopping the primary
      return origStop.call(this, i, mode)
    }
    const onLine = (line) => {
      if (line === '@@READY' && !foDone) {
        const t = wall()
        foDone = c.failover({ mode: 'stop' }).then((r) => { fo = { ...r, ms: wall() - t } }, (e) => { fo = { error: e.message } })
      }
    }
    const r = name === 'bun'
      ? await runProcess(ctx.tools.bun, args, { env, onLine, timeoutMs: 120000 })
      : await runProcess(process.execPath, args, { env, onLine, timeoutMs: 120000 })
    if (foDone) await foDone
    const res = parseResult(r)
    if (!res.ok) return res
    if (!fo) return { ok: false, error: 'the sample never reported steady state (@@READY)' }
    if (fo.error) return { ok: false, error: `failover failed: ${fo.error}` }
    const m = res.metrics
    const newPort = c.node(fo.newPrimary).port
    const b = await c.admin(fo.newPrimary)
    let present
    try { present = new Set((await b.query('select k from w6')).rows.map((row) => row.k)) } finally { await b.end() }
    const lost = m.acked.filter((k) => !present.has(String(k)))
    const first = m.firstAck[newPort]
    const strayPorts = Object.keys(m.firstAck).map(Number).filter((pt) => pt !== m.oldPort && pt !== newPort)
    const metrics = {
      value: first !== undefined ? first - tLoss : null,
      unit: 'ms to first write on the new primary',
      lost: lost.length,
      lost_keys: lost.slice(0, 20),
      acked: m.acked.length,
      errors: m.errors,
      reconnects: m.reconnects,
      old_primary_last_ack_ms: m.lastAck[m.oldPort] !== undefined ? m.lastAck[m.oldPort] - tLoss : null,
      harness_failover_ms: fo.ms,
      old_primary: p,
      new_primary: fo.newPrimary,
      driving: ctx.adapters[name].multiHost ? 'client multi-host' : 'app-level reconnect (probe hosts for a writable primary, re-create the pool)',
    }
    const problems = []
    if (m.timedOut) problems.push('no write was acknowledged by the new primary within 60 s')
    if (lost.length) problems.push(`${lost.length} acknowledged writes lost (e.g. ${lost.slice(0, 5).join(', ')})`)
    if (strayPorts.length) problems.push(`writes acknowledged by unexpected servers ${strayPorts.join(', ')}`)
    if (problems.length) return { ok: false, client, workload: 'W6', version: res.version, error: problems.join('; '), metrics }
    return { ...res, metrics }
  } finally {
    await c.destroy()
  }
}


// W8: one real fault per sample (partition or freeze of the primary), on a fresh 3-node
// synchronous cluster; the harness promotes the most caught-up standby and reports electedAt.
async function w8Sample(client, ctx) {
  const [name, fault] = client.split(':')
  if (name === 'bun' && !ctx.tools.bun) return { ok: false, error: 'bun binary not found' }
  const c = await createCluster()
  let child = null
  try {
    const p = c.primaryIndex()
    const a = await c.admin(p)
    try {
      await a.query('create table w6 (k int4 primary key, writer int4 not null, at timestamptz not null default now()); grant all on w6 to public')
      ctx.server6 = ctx.server6 || (await a.query('show server_version')).rows[0].server_version
    } finally { await a.end() }
    const base = c.connection()
    const conn = { user: base.user, password: base.password, database: base.database, hosts: c.nodes.map((_, i) => ({ host: c.node(i).host, port: c.node(i).port })), primary: p }
    const env = { BENCH_CONN: JSON.stringify(conn), HYPERION_CLIENT: ctx.hyperion.client }
    const args = ['sample.js', '--client', client, '--workload', 'W8']
    let fo = null
    let foDone = null
    const onLine = (line) => {
      if (line === '@@READY' && !foDone) {
        const t = wall()
        foDone = c.failover({ mode: fault }).then((r) => {
          fo = { ...r, ms: wall() - t, faultAt: t }
          if (child && child.stdin.writable) child.stdin.write(`@@ELECTED ${r.electedAt}\n`)
        }, (e) => {
          // The fault could not be applied (no iptables, say): the sample would wait for an
          // election that never comes until its timeout; stop it and report why.
          fo = { error: e.message }
          if (child) child.kill('SIGKILL')
        })
      }
    }
    const opts = { env, onLine, onSpawn: (ch) => { child = ch }, timeoutMs: 180000 }
    const r = name === 'bun'
      ? await runProcess(ctx.tools.bun, args, opts)
      : await runProcess(process.execPath, args, opts)
    if (foDone) await foDone
    if (fo && fo.error) return { ok: false, error: `failover failed: ${fo.error}` }
    const res = parseResult(r)
    if (!res.ok) return { ...res, client, workload: 'W8' }
    if (!fo) return { ok: false, error: 'the sample never reported steady state (@@READY)' }
    const m = res.metrics
    const newPort = c.node(fo.newPrimary).port
    const b = await c.admin(fo.newPrimary)
    let present
    try { present = new Set((await b.query('select k from w6')).rows.map((row) => row.k)) } finally { await b.end() }
    const lost = m.acked.filter((k) => !present.has(String(k)))
    const first = m.firstAck[newPort]
    const strayPorts = Object.keys(m.firstAck).map(Number).filter((pt) => pt !== m.oldPort && pt !== newPort)
    const metrics = {
      fault,
      value: first !== undefined ? first - fo.electedAt : null,
      unit: 'ms from the election to the first write acknowledged by the new primary',
      blocked10: m.blocked10,
      blocked10_ages_ms: m.blocked10AgesMs,
      blocked_end: m.blockedEnd,
      end_ms_after_election: m.endMsAfterElection,
      pending_at_election: m.pendingAtElection,
      writers_back_ms: m.writersBackMs,
      longest_settled_call_ms: m.longestSettledCallMs,
      lost: lost.length,
      lost_keys: lost.slice(0, 20),
      acked: m.acked.length,
      errors: m.errors,
      reconnects: m.reconnects,
      old_primary_last_ack_ms: m.lastAck[m.oldPort] !== undefined ? m.lastAck[m.oldPort] - fo.electedAt : null,
      fault_to_election_ms: fo.electedAt - fo.faultAt,
      harness_failover_ms: fo.ms,
      old_primary: p,
      new_primary: fo.newPrimary,
      ha_config: m.ha,
      driving: ctx.adapters[name].multiHost ? 'client multi-host' : 'app-level reconnect (probe hosts for a writable primary, re-create the pool)',
    }
    // A client that never recovers, or leaves callers blocked, is a result, not an error.
    // Only lost acknowledged writes and writes acknowledged by a stray server fail the check.
    const problems = []
    if (lost.length) problems.push(`${lost.length} acknowledged writes lost (e.g. ${lost.slice(0, 5).join(', ')})`)
    if (strayPorts.length) problems.push(`writes acknowledged by unexpected servers ${strayPorts.join(', ')}`)
    if (problems.length) return { ok: false, client, workload: 'W8', version: res.version, error: problems.join('; '), metrics }
    return { ...res, metrics }
  } finally {
    await c.destroy()
  }
}

// ---------------------------------------------------------------------------------------
async function serve(opts) {
  const s = await startServer(opts)
  const hyperion = snapshotHyperion({})
  process.stdout.write(`export BENCH_CONN='${JSON.stringify(s.conn)}'\nexport HYPERION_CLIENT='${hyperion.client}'\n# PostgreSQL ${s.server}; Ctrl-C stops the server\n`)
  const keepAlive = setInterval(() => {}, 1 << 30) // signal listeners alone do not keep node running
  await new Promise((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve) })
  clearInterval(keepAlive)
  await s.cluster.destroy()
}

function fmtMetric8(m) {
  return `${m.value === null ? 'no write on the new primary' : `${Math.round(m.value)} ms`} (blocked at 10 s: ${m.blocked10}, at end: ${m.blocked_end}; lost ${m.lost}, acked ${m.acked})`
}

function fmtMetric(w, m) {
  if (w === 'W8' && m) return fmtMetric8(m)
  if (!m || m.value === null || m.value === undefined) return '?'
  if (w === 'C1') return `${m.value.toFixed(2)} ms (p90 ${m.p90_ms.toFixed(2)}, first ${m.first_ms.toFixed(1)})`
  const v = w === 'W6' ? `${Math.round(m.value)} ms` : `${Math.round(m.value).toLocaleString('en-US')} ${m.unit}`
  const extra = []
  if (m.p50_us !== undefined) extra.push(`p50 ${m.p50_us.toFixed(0)}us p99 ${m.p99_us.toFixed(0)}us`)
  if (baseWorkload(w) !== 'W1' && m.cpu_us_per_query !== undefined) extra.push(`${m.cpu_us_per_query.toFixed(1)} cpu-us/q`)
  if (m.rss_growth_mb !== undefined) extra.push(`rss +${m.rss_growth_mb.toFixed(1)} MB`)
  if (m.loop_max_gap_ms !== undefined) extra.push(`loop gap ${m.loop_max_gap_ms.toFixed(0)} ms`)
  if (w === 'W6') extra.push(`lost ${m.lost}, acked ${m.acked}`)
  return extra.length ? `${v} (${extra.join(', ')})` : v
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  fs.mkdirSync(TMP, { recursive: true })
  if (opts.serve) return serve(opts)
  if (opts.report) {
    const r = JSON.parse(fs.readFileSync(opts.report, 'utf8'))
    r.summary = report.summarize(r)
    fs.writeFileSync(path.join(opts.out, 'latest.md'), report.markdown(r))
    fs.writeFileSync(path.join(opts.out, 'latest.png'), report.chart(r))
    log(`redrew latest.md and latest.png in ${path.relative(process.cwd(), opts.out) || '.'} from ${path.relative(process.cwd(), opts.report)}`)
    return
  }
  const started = new Date()
  const loadBefore = +os.loadavg()[0].toFixed(2)
  log(`load average before the run: ${os.loadavg().map((x) => x.toFixed(2)).join(', ')}`)
  const tools = { bun: findBun(), pgbench: findPgbench(), tokioPg: null }
  const hyperion = snapshotHyperion(opts)
  if (!opts.tls && opts.workloads.some((w) => clientsFor(w, opts).includes('tokio-postgres'))) tools.tokioPg = tokioPgBinary(log)
  const adapters = {}
  try {
    for (const n of ['hyperion', 'pg', 'postgres', 'bun']) adapters[n] = require(`./clients/${n}.js`)
  } catch (e) {
    if (e.code === 'MODULE_NOT_FOUND') throw new Error(`${e.message.split('\n')[0]}: run \`npm install --prefix benches/node\` first`)
    throw e
  }
  const ctx = { opts, tools, hyperion, adapters, conn: null }
  const ver = versions(tools, hyperion)
  const samples = []
  const command = `node benches/node/run.js ${process.argv.slice(2).join(' ')}`.trim()
  log(`hyperion build: ${hyperion.info.binary} (sha256 ${hyperion.info.binarySha256}, ${hyperion.info.binaryMtime})`)
  log(`versions: ${Object.entries(ver).map(([k, v]) => `${k} ${v}`).join(', ')}`)

  const record = (rep, order, workload, client, res, ms) => {
    // The machine's 1-minute load average after the sample (this run's own processes included).
    const load1 = +os.loadavg()[0].toFixed(2)
    const s = { workload, client, rep, order, ok: !!res.ok, wall_ms: Math.round(ms), load1, ...res }
    samples.push(s)
    log(`[rep ${rep + 1}/${workload === 'W8' ? 1 : opts.reps}] ${workload} ${client.padEnd(15)} ${res.ok ? fmtMetric(workload, res.metrics) : `${res.na ? 'n/a' : 'ERROR'}: ${res.error}`}  (${(ms / 1000).toFixed(1)} s, load ${load1})`)
  }

  const main = opts.workloads.filter((w) => w !== 'W6' && w !== 'W8')
  let server = null
  let serverInfo = null
  if (main.length) {
    log(opts.server === 'system' ? 'starting the system PostgreSQL at its default settings ...' : 'starting the server (harness cluster reduced to its primary) ...')
    const s = await startServer(opts)
    ctx.conn = s.conn
    ctx.postmasterPid = s.postmasterPid
    server = s.server
    serverInfo = s
    log(`PostgreSQL ${server} on ${s.conn.host}:${s.conn.port}${opts.tls ? ' (ssl = on)' : ''}`)
    try {
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const w of main) {
          let list = clientsFor(w, opts)
          if (rep % 2 === 1) list = list.slice().reverse()
          for (const [order, client] of list.entries()) {
            const t = performance.now()
            const one = () => (client === 'pgbench' ? pgbenchSample(w, ctx) : client === 'tokio-postgres' ? tokioPgSample(w, ctx) : nodeSample(client, w, ctx))
            const res = W1_PIN[w] !== undefined ? await pinnedSample(w, ctx, one) : await one()
            // W1-same / W1-cross samples run W1 and say so: the record keeps the variant.
            record(rep, order, w, client, { ...res, workload: w }, performance.now() - t)
          }
        }
      }
    } finally {
      await s.cluster.destroy()
    }
  }
  if (opts.workloads.includes('W6')) {
    for (let rep = 0; rep < opts.reps; rep++) {
      let list = clientsFor('W6', opts)
      if (rep % 2 === 1) list = list.slice().reverse()
      for (const [order, client] of list.entries()) {
        const t = performance.now()
        let res
        try { res = await failoverSample(client, ctx) } catch (e) { res = { ok: false, error: e.message.split('\n')[0] } }
        record(rep, order, 'W6', client, res, performance.now() - t)
      }
    }
    server = server || ctx.server6
  }
  if (opts.workloads.includes('W8')) {
    for (const [order, client] of clientsFor('W8', opts).entries()) {
      const t = performance.now()
      let res
      try { res = await w8Sample(client, ctx) } catch (e) { res = { ok: false, error: e.message.split('\n')[0] } }
      record(0, order, 'W8', client, res, performance.now() - t)
    }
    server = server || ctx.server6
  }

  const loads = samples.map((x) => x.load1).filter(Number.isFinite).sort((a, b) => a - b)
  const result = {
    date: started.toISOString(),
    load: { before: loadBefore, after: +os.loadavg()[0].toFixed(2), samples_min: loads[0], samples_median: loads[Math.floor(loads.length / 2)], samples_max: loads[loads.length - 1] },
    finished: new Date().toISOString(),
    command,
    machine: { nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length, cpu: os.cpus()[0] && os.cpus()[0].model, memGb: +(os.totalmem() / 2 ** 30).toFixed(1), kernel: os.release() },
    server: opts.server === 'system'
      ? { version: server, kind: 'system', bin: serverInfo && serverInfo.bin, settings: serverInfo && serverInfo.settings, setup: `system PostgreSQL (${serverInfo && serverInfo.bin}) at its default settings: a fresh initdb, nothing in postgresql.conf changed (only port, unix_socket_directories and listen_addresses given on the command line; ${serverInfo ? `fsync ${serverInfo.settings.fsync}, synchronous_commit ${serverInfo.settings.synchronous_commit}, shared_buffers ${serverInfo.settings.shared_buffers}, work_mem ${serverInfo.settings.work_mem}` : ''})` }
      : { version: server, kind: 'harness', setup: 'test/cluster.js (fsync=off, shared_buffers=32MB); W1-W5/W7 on the primary alone (standbys stopped, synchronous_standby_names cleared); W6 and W8 on a fresh 3-node cluster (synchronous ANY 1 of 2 standbys) per sample' + (opts.tls ? '; ssl = on (test/certs.js: P-256 ECDSA server certificate signed with SHA-384 by a test CA), every client verify-full against the CA' : '') },
    versions: ver,
    hyperionBuild: hyperion.info,
    options: { workloads: opts.workloads, clients: opts.clients, reps: opts.reps, quick: [...opts.quick], nodeFlags: opts.nodeFlags, tls: opts.tls, server: opts.server },
    sizes: Object.fromEntries(opts.workloads.filter((w) => SIZES[w]).map((w) => [w, SIZES[w][opts.quick.has(w) ? 'quick' : 'full']])),
    notes: report.NOTES,
    samples,
  }
  result.summary = report.summarize(result)
  const md = report.markdown(result)
  process.stdout.write(`\n${md}\n`)
  if (opts.write) {
    const stamp = started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')
    fs.mkdirSync(opts.out, { recursive: true })
    const jsonFile = path.join(opts.out, `${stamp}.json`)
    fs.writeFileSync(jsonFile, JSON.stringify(result, null, 1) + '\n')
    fs.writeFileSync(path.join(opts.out, 'latest.md'), md)
    fs.writeFileSync(path.join(opts.out, 'latest.png'), report.chart(result))
    log(`wrote ${[jsonFile, 'latest.md', 'latest.png'].map((f) => path.relative(process.cwd(), path.resolve(opts.out, f))).join(', ')}`)
  }
  if (samples.some((s) => !s.ok && !s.na)) process.exitCode = 1
}

// Errors in samples are results; an error here (no server, no build) is not.
main().catch((e) => {
  log(e && e.stack ? e.stack : String(e))
  process.exit(2)
})
