'use strict'
// `run.js --server system`: a PostgreSQL at its default settings (fsync on, the default
// shared_buffers, ...) from the installed server binaries, for W1-W5 (BENCHMARKS.md: "Run
// W1-W5 on two servers"). initdb into a fresh temporary directory, start the server on a free
// loopback port, and stop it by pid at the end. Nothing in postgresql.conf is changed; the
// only settings given (on the command line) are port, unix_socket_directories and
// listen_addresses. initdb's own auth options make TCP connections use SCRAM (the socket,
// used for the admin work, is trust).
//
// Binaries: --pg-bin DIR, else HYPERION_PG_BIN, else the newest /usr/lib/postgresql/<v>/bin
// (Debian's `postgresql` package), else `pg_config --bindir`. As root, initdb and postgres
// run as an unprivileged user (HYPERION_PG_USER, default nobody), as test/cluster.js does.

const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const { spawn, execFileSync } = require('node:child_process')

const ADMIN = 'bench_admin'
const USER = 'bench'
const PASSWORD = 'bench-pass'
const DATABASE = 'bench'

function findBin(explicit) {
  const cands = []
  if (explicit) cands.push(explicit)
  if (process.env.HYPERION_PG_BIN) cands.push(process.env.HYPERION_PG_BIN)
  try {
    for (const v of fs.readdirSync('/usr/lib/postgresql').filter((x) => /^\d+$/.test(x)).sort((a, b) => b - a)) cands.push(`/usr/lib/postgresql/${v}/bin`)
  } catch { /* none */ }
  try { cands.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) } catch { /* none */ }
  for (const d of cands) if (['initdb', 'postgres'].every((b) => fs.existsSync(path.join(d, b)))) return path.resolve(d)
  throw new Error('--server system: no PostgreSQL binaries found (apt-get install -y postgresql, or set HYPERION_PG_BIN / --pg-bin)')
}

function runAs() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null
  const user = process.env.HYPERION_PG_USER || 'nobody'
  let uid = 65534
  let gid = 65534
  try {
    const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === user)
    if (line) { const f = line.split(':'); uid = Number(f[2]); gid = Number(f[3]) }
  } catch { /* defaults */ }
  return { user, uid, gid }
}

function pgEnv() {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v
  env.LC_ALL = 'C.UTF-8'
  env.LANG = 'C.UTF-8'
  return env
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function sh(file, args, as, timeoutMs = 180000) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: pgEnv(), cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], ...(as ? { uid: as.uid, gid: as.gid } : {}) })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (e) => { clearTimeout(t); reject(e) })
    child.on('close', (code) => { clearTimeout(t); code === 0 ? resolve(out) : reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (${code}): ${out.trim().slice(-800)}`)) })
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// -> { conn: { host, port, user, password, database }, admin(database) -> pg.Client (connected),
//      version, settings: { name: value }, bin, pid, stop() }
async function startSystemServer({ pgBin, log = () => {} } = {}) {
  const bin = findBin(pgBin)
  const as = runAs()
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-bench-sys-'))
  const dataDir = path.join(base, 'data')
  const sockDir = path.join(base, 'sock')
  fs.mkdirSync(sockDir)
  if (as) { fs.chownSync(base, as.uid, as.gid); fs.chownSync(sockDir, as.uid, as.gid) }
  fs.chmodSync(base, 0o755)
  let child = null
  let exited = null
  const cleanup = () => { try { fs.rmSync(base, { recursive: true, force: true }) } catch { /* best effort */ } }
  try {
    log(`initdb (${bin}) into ${dataDir} ...`)
    await sh(path.join(bin, 'initdb'), ['-D', dataDir, '-U', ADMIN, '-E', 'UTF8', '--auth-local=trust', '--auth-host=scram-sha-256'], as)
    const port = await freePort()
    const logFile = path.join(base, 'server.log')
    const fd = fs.openSync(logFile, 'a')
    if (as) fs.fchownSync(fd, as.uid, as.gid)
    child = spawn(path.join(bin, 'postgres'), ['-D', dataDir, '-p', String(port), '-k', sockDir, '-c', "listen_addresses=127.0.0.1"], {
      env: pgEnv(), cwd: '/', stdio: ['ignore', fd, fd], ...(as ? { uid: as.uid, gid: as.gid } : {}),
    })
    fs.closeSync(fd)
    child.on('exit', (code, sig) => { exited = sig || code })
    const pg = require('pg')
    const admin = async (database = DATABASE) => {
      const c = new pg.Client({ host: sockDir, port, user: ADMIN, database })
      await c.connect()
      return c
    }
    for (let i = 0; ; i++) {
      if (exited !== null) throw new Error(`postgres exited (${exited}): ${fs.readFileSync(logFile, 'utf8').trim().slice(-800)}`)
      try { const c = await admin('postgres'); await c.end(); break } catch (e) {
        if (i > 300) throw new Error(`postgres did not accept connections in 30 s: ${e.message}`)
        await sleep(100)
      }
    }
    const c = await admin('postgres')
    let version
    const settings = {}
    try {
      await c.query(`create role ${USER} login password '${PASSWORD}'`)
      await c.query(`create database ${DATABASE} owner ${USER}`)
      version = (await c.query('show server_version')).rows[0].server_version
      const names = ['fsync', 'synchronous_commit', 'shared_buffers', 'work_mem', 'wal_level', 'max_connections', 'full_page_writes', 'password_encryption', 'TimeZone']
      const { rows } = await c.query('select name, setting, unit from pg_settings where name = any($1)', [names])
      for (const r of rows) settings[r.name] = r.unit && r.unit !== '' && /^\d+$/.test(r.setting) ? `${r.setting} x ${r.unit}` : r.setting
      settings.shared_buffers = (await c.query('show shared_buffers')).rows[0].shared_buffers
      settings.work_mem = (await c.query('show work_mem')).rows[0].work_mem
    } finally { await c.end() }
    log(`PostgreSQL ${version} (system binaries, default settings: fsync ${settings.fsync}, shared_buffers ${settings.shared_buffers}) pid ${child.pid} on 127.0.0.1:${port}`)
    const pid = child.pid
    let stopped = false
    // If this process exits without stop() (an error, process.exit), the server goes too:
    // SIGQUIT is PostgreSQL's immediate shutdown. (Ctrl-C reaches it as well: same process group.)
    const onExit = () => { if (exited === null) { try { process.kill(pid, 'SIGQUIT') } catch { /* gone */ } } }
    process.once('exit', onExit)
    // A SIGTERM/SIGHUP/SIGINT to this process alone: the server goes too, and the process
    // exits as it would have, unless someone else (run.js --serve) handles the signal.
    const onSignal = (sig) => {
      onExit()
      try { fs.rmSync(base, { recursive: true, force: true }) } catch { /* best effort */ }
      if (process.listenerCount(sig) === 0) process.exit(128 + (os.constants.signals[sig] || 0))
    }
    const sigs = ['SIGTERM', 'SIGHUP', 'SIGINT']
    for (const sig of sigs) process.once(sig, onSignal)
    const stop = async () => {
      if (stopped) return
      stopped = true
      process.removeListener('exit', onExit)
      for (const sig of sigs) process.removeListener(sig, onSignal)
      if (exited === null) {
        try { process.kill(pid, 'SIGINT') } catch { /* gone */ } // fast shutdown
        for (let i = 0; exited === null && i < 300; i++) await sleep(100)
        if (exited === null) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } await sleep(200) }
      }
      cleanup()
    }
    return {
      conn: { host: '127.0.0.1', port, user: USER, password: PASSWORD, database: DATABASE },
      admin, version, settings, bin, pid, stop,
    }
  } catch (e) {
    if (child && exited === null) { try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ } }
    await sleep(200)
    cleanup()
    throw e
  }
}

module.exports = { startSystemServer, findBin }
