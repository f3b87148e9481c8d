'use strict';
// A real PgBouncer (Debian's `pgbouncer` package) in front of one node of the test cluster.
//
//   const { startPgBouncer, pgbouncerBinary } = require('./pgbouncer');
//   const b = await startPgBouncer({ target: { host, port }, user, password, database, mode: 'transaction' });
//   createPool({ hosts: [`${b.host}:${b.port}`], user, password, database, prepare: false });
//   await b.admin('show servers');   // the console (database "pgbouncer"), as `user`
//   await b.stop();
//
// The binary: `pgbouncer` on the PATH or in /usr/sbin; when missing, it is installed with
// `apt-get install -y pgbouncer` (after `apt-get update` if needed) as root, or through
// passwordless `sudo -n` (GitHub's runners).
// Its ini and userlist go to a temp dir; it listens on a free 127.0.0.1 port (no Unix
// socket), in the foreground, as a child process. PgBouncer refuses to run as root: as root it
// runs as the `postgres` user (created by postgresql-common, which the package depends on),
// else `nobody`. Authentication: the userlist holds the cleartext password, so PgBouncer
// authenticates the client with `auth_type` (default scram-sha-256, as the cluster's
// app_scram role) and logs into the server with SCRAM or MD5 as the server asks.
// `max_prepared_statements = 0` is written when the version knows it (1.21+); older
// versions do not track prepared statements at all, which is the same thing.
// Stopped by pid (SIGTERM, then SIGKILL), by the exit handler, and, if this process is
// killed, by a small detached shell that waits for it to go.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, spawnSync } = require('node:child_process');
const admin = require('./admin');
const { freePorts } = require('./cluster');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function which(name) {
  for (const d of [...(process.env.PATH || '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin']) {
    if (d && fs.existsSync(path.join(d, name))) return path.join(d, name);
  }
  return null;
}

function versionOf(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10000 });
  const m = /PgBouncer\s+(\d+)\.(\d+)(?:\.(\d+))?/.exec(`${r.stdout}${r.stderr}`);
  return m ? { version: `${m[1]}.${m[2]}.${m[3] || 0}`, major: Number(m[1]), minor: Number(m[2]) } : null;
}

let cached;
/**
 * `{ bin, version, major, minor }` of the pgbouncer binary, installing Debian's package first
 * when it is missing and this process is root; `{ error }` (a message saying what to do) when
 * there is none. Synchronous, so that a test file can decide to skip at load.
 */
function pgbouncerBinary() {
  if (cached && !cached.error) return cached;
  let bin = which('pgbouncer');
  // As root, apt-get itself; otherwise through passwordless sudo where there is one (GitHub's
  // runners), never asking for a password.
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = !root && which('sudo') && spawnSync('sudo', ['-n', 'true'], { timeout: 10000 }).status === 0;
  if (!bin && (root || sudo) && which('apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const apt = (args) => root
      ? spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 300000 })
      : spawnSync('sudo', ['-n', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args], { env, encoding: 'utf8', timeout: 300000 });
    const install = () => apt(['install', '-y', '-qq', '--no-install-recommends', 'pgbouncer']);
    let r = install();
    if (r.status !== 0) {
      apt(['update', '-qq']);
      r = install();
    }
    bin = which('pgbouncer');
    if (!bin) return (cached = { error: `pgbouncer is not installed and \`apt-get install -y pgbouncer\` failed: ${(r.stderr || r.stdout || String(r.error)).trim().slice(-500)}` });
  }
  if (!bin) return (cached = { error: 'pgbouncer is not installed (as root: `apt-get install -y pgbouncer`; PgBouncer 1.18+ from any source works, on the PATH)' });
  const v = versionOf(bin);
  if (!v) return (cached = { error: `${bin} --version: no PgBouncer version in its output` });
  return (cached = { bin, ...v });
}

// The user PgBouncer runs as when we are root: postgres if it exists, else nobody.
function runAs() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const users = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  for (const name of [process.env.HYPERION_PGBOUNCER_USER, 'postgres', 'nobody']) {
    const f = name && users.find((u) => u[0] === name);
    if (f) return { user: name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return { user: 'nobody', uid: 65534, gid: 65534 };
}

const q = (s) => `"${String(s).replace(/"/g, '""')}"`; // userlist.txt quoting

const live = new Set();
let exitHandler = false;
function killLiveSync() {
  for (const b of live) { try { process.kill(b.pid, 'SIGKILL'); } catch { /* gone */ } try { fs.rmSync(b.dir, { recursive: true, force: true }); } catch { /* best effort */ } }
  live.clear();
}

/**
 * Starts PgBouncer in front of `target` ({ host, port }). Options: `user`, `password` (the
 * role clients log in as; it is also admin_users, for the console), `database` (the name
 * clients use, and the server database unless `serverDatabase`), `mode` (pool_mode, default
 * 'transaction'), `poolSize` (default_pool_size, default 3), `authType` (default
 * 'scram-sha-256'), `settings` (more [pgbouncer] lines, key -> value).
 * Resolves to `{ host, port, pid, dir, version, logFile, log(), admin(sql), stop() }`.
 */
async function startPgBouncer({ target, user, password, database = 'hyperion', serverDatabase, mode = 'transaction', poolSize = 3, authType = 'scram-sha-256', settings = {} } = {}) {
  const info = pgbouncerBinary();
  if (info.error) throw new Error(info.error);
  if (!target || !target.port) throw new Error('startPgBouncer needs target: { host, port }');
  const as = runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-pgbouncer-'));
  fs.chmodSync(dir, 0o700);
  const [port] = await freePorts(1, false);
  const knowsPrepared = info.major > 1 || info.minor >= 21;
  const ini = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: authType,
    auth_file: path.join(dir, 'userlist.txt'),
    admin_users: user,
    pool_mode: mode,
    default_pool_size: poolSize,
    max_client_conn: 200,
    ...(knowsPrepared ? { max_prepared_statements: 0 } : {}),
    logfile: path.join(dir, 'pgbouncer.log'),
    log_connections: 0,
    log_disconnections: 0,
    ...settings,
  };
  const lines = [
    '[databases]',
    `${database} = host=${target.host || '127.0.0.1'} port=${target.port} dbname=${serverDatabase || database}`,
    '',
    '[pgbouncer]',
    ...Object.entries(ini).map(([k, v]) => `${k} = ${v}`),
    '',
  ];
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), lines.join('\n'));
  fs.writeFileSync(path.join(dir, 'userlist.txt'), `${q(user)} ${q(password)}\n`, { mode: 0o600 });
  if (as) for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) fs.chownSync(path.join(dir, f), as.uid, as.gid);

  const child = spawn(info.bin, [path.join(dir, 'pgbouncer.ini')], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...(as ? { uid: as.uid, gid: as.gid } : {}),
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => { exited = signal || code; resolve(); }));
  child.on('error', (e) => { out += String(e); exited = exited ?? 'error'; });
  const logFile = ini.logfile;
  const log = () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
  const entry = { pid: child.pid, dir };
  live.add(entry);
  if (!exitHandler) { exitHandler = true; process.on('exit', killLiveSync); }
  // If this process is killed (no exit handler runs), a detached shell ends PgBouncer.
  try {
    const w = spawn('/bin/sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; ` +
      `if ! kill -0 ${process.pid} 2>/dev/null; then kill -9 ${child.pid} 2>/dev/null; rm -rf '${dir}'; fi`], { detached: true, stdio: 'ignore' });
    w.on('error', () => {});
    w.unref();
  } catch { /* best effort */ }

  let stopped = null;
  const stop = () => {
    stopped = stopped || (async () => {
      if (exited === null) {
        try { child.kill('SIGTERM'); } catch { /* gone */ }
        const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
        await exit;
        clearTimeout(t);
      }
      live.delete(entry);
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  // Ready when it accepts a TCP connection.
  const deadline = Date.now() + 10000;
  for (;;) {
    if (exited !== null) {
      await stop();
      throw new Error(`pgbouncer exited (${exited}) at startup:\n${out}\n${log()}`);
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) { await stop(); throw new Error(`pgbouncer did not listen on ${port} within 10 s:\n${out}\n${log()}`); }
    await sleep(50);
  }

  return {
    host: '127.0.0.1',
    port,
    pid: child.pid,
    dir,
    version: info.version,
    preparedStatements: knowsPrepared ? 'max_prepared_statements = 0' : `not tracked (PgBouncer ${info.version} < 1.21)`,
    logFile,
    log,
    /** Runs `sql` on the admin console (database "pgbouncer"); resolves to admin.js's `{ rows }`. */
    async admin(sql) {
      const c = await admin.connect({ host: '127.0.0.1', port, user, password, database: 'pgbouncer', connectTimeout: 3000 });
      try { return await c.query(sql); } finally { await c.end().catch(() => {}); }
    },
    stop,
  };
}

module.exports = { startPgBouncer, pgbouncerBinary };
