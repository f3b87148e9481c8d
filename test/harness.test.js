'use strict';
// Tests of the cluster harness itself (test/cluster.js + test/admin.js).
//   node --test test/harness.test.js
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { execFileSync } = require('node:child_process');
const { clusterForTests } = require('./cluster');
const { startProxy } = require('./faultproxy');
const admin = require('./admin');

let cluster;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { if (await fn()) return; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(50);
  }
}

function connectAs(i, user, password) {
  const { host, port } = cluster.node(i);
  const conn = cluster.connection(user);
  return admin.connect({ host, port, user, password: password === undefined ? conn.password : password, database: conn.database });
}

// 'timeout' if `p` has not settled within `ms`; else { value } or { error }.
function within(p, ms) {
  return Promise.race([p.then((value) => ({ value }), (error) => ({ error })), sleep(ms).then(() => 'timeout')]);
}

// Every event of a raw socket, in order, with the data received.
function watch(sock) {
  const w = { events: [], data: Buffer.alloc(0), chunks: [] };
  sock.on('connect', () => w.events.push('connect'));
  sock.on('data', (d) => { w.events.push('data'); w.data = Buffer.concat([w.data, d]); w.chunks.push(d.length); });
  sock.on('end', () => w.events.push('end'));
  sock.on('error', (e) => w.events.push(e.code));
  sock.on('close', () => w.events.push('close'));
  return w;
}

// iptables rules of this cluster (its comment tag), v4 and v6.
function ourRules(tag) {
  let out = '';
  for (const bin of ['iptables', 'ip6tables']) { try { out += execFileSync(bin, ['-w', '5', '-S', 'INPUT'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { /* absent */ } }
  return out.split('\n').filter((l) => l.includes(tag));
}

const standbyIndex = () => [0, 1, 2].find((k) => k !== cluster.primaryIndex());
const notRoot = typeof process.getuid === 'function' && process.getuid() !== 0;
const local = !process.env.HYPERION_HOSTS;

async function valueOn(i, sql, user = 'app_scram') {
  const c = await connectAs(i, user);
  try { return await c.value(sql); } finally { await c.end(); }
}

async function assertHealthy() {
  const st = await cluster.status();
  const primaries = st.nodes.filter((n) => n.role === 'primary');
  const standbys = st.nodes.filter((n) => n.role === 'standby');
  assert.equal(primaries.length, 1, JSON.stringify(st));
  assert.equal(standbys.length, 2, JSON.stringify(st));
  assert.equal(st.primary, primaries[0].index);
  assert.equal(cluster.primaryIndex(), st.primary);
  assert.equal(primaries[0].readOnly, false);
  const c = await cluster.admin(st.primary);
  try {
    const { rows } = await c.query('select application_name, state, sync_state from pg_stat_replication order by 1');
    assert.deepEqual(rows.map((r) => r.application_name).sort(), standbys.map((n) => n.name).sort());
    for (const r of rows) {
      assert.equal(r.state, 'streaming');
      assert.ok(['sync', 'quorum'].includes(r.sync_state), `sync_state ${r.sync_state}`);
    }
  } finally { await c.end(); }
  return st;
}

before(async () => { cluster = await clusterForTests(); });
after(async () => { if (cluster) await cluster.destroy(); });

test('status: one primary, two synchronous streaming standbys', async () => {
  const st = await assertHealthy();
  assert.equal(st.nodes.length, 3);
  assert.ok(cluster.version() >= 12);
  const conn = cluster.connection();
  assert.equal(conn.hosts.length, 3);
  assert.equal(conn.user, 'app_scram');
  assert.equal(conn.database, 'hyperion');
});

test('auth: scram, md5, trust; wrong password is 28P01', async () => {
  const p = cluster.primaryIndex();
  for (const user of ['app_scram', 'app_md5', 'app_trust']) {
    assert.equal(await valueOn(p, 'select current_user', user), user);
  }
  // the md5 role really is stored as md5, the scram role as SCRAM
  const c = await cluster.admin(p);
  try {
    const { rows } = await c.query("select rolname, left(rolpassword, 3) as kind from pg_authid where rolname like 'app_%' order by 1");
    assert.deepEqual(rows, [{ rolname: 'app_md5', kind: 'md5' }, { rolname: 'app_scram', kind: 'SCR' }, { rolname: 'app_trust', kind: null }]);
  } finally { await c.end(); }
  for (const user of ['app_scram', 'app_md5']) {
    await assert.rejects(connectAs(p, user, 'wrong'), (e) => e.code === '28P01');
  }
  if (cluster.ipv6) {
    const c6 = await admin.connect({ host: '::1', port: cluster.node(p).port, user: 'app_scram', password: 'scram-pass', database: 'hyperion' });
    assert.equal(await c6.value('select 1'), '1');
    await c6.end();
  }
});

test('fence: an existing session gets 25006 and sees transaction_read_only=on', async () => {
  const p = cluster.primaryIndex();
  const s = await connectAs(p, 'app_scram');
  try {
    await s.query('drop table if exists fence_t');
    await s.query('create table fence_t (id int)');
    await s.query('insert into fence_t values (1)');
    await cluster.fence(p);
    await assert.rejects(s.query('insert into fence_t values (2)'), (e) => e.code === '25006' && e.severity === 'ERROR');
    assert.equal(await s.value('show transaction_read_only'), 'on');
    assert.equal((await cluster.status()).nodes[p].readOnly, true);
    await cluster.unfence(p);
    await s.query('insert into fence_t values (3)'); // the same session is writable again
    assert.equal(await s.value('select count(*) from fence_t'), '2');
  } finally { await s.end(); }
});

test('failover(stop): acknowledged write survives, new primary writable, other standby follows', async (t) => {
  const old = cluster.primaryIndex();
  const s = await connectAs(old, 'app_scram');
  await s.query('drop table if exists fo_t');
  await s.query('create table fo_t (id int primary key, v text)');
  assert.equal(await s.value("show synchronous_commit"), 'on');
  const r = await s.query("insert into fo_t values (1, 'before failover')");
  assert.equal(r.command, 'INSERT 0 1');
  await s.end();

  const t0 = Date.now();
  const { oldPrimary, newPrimary } = await cluster.failover({ mode: 'stop' });
  const ms = Date.now() - t0;
  assert.equal(oldPrimary, old);
  assert.notEqual(newPrimary, old);
  assert.equal(cluster.primaryIndex(), newPrimary);
  t.diagnostic(`failover took ${ms}ms`);

  assert.equal(await valueOn(newPrimary, 'select v from fo_t where id = 1'), 'before failover');
  const w = await connectAs(newPrimary, 'app_md5');
  try {
    assert.equal((await w.query("insert into fo_t values (2, 'after failover')")).command, 'INSERT 0 1');
  } finally { await w.end(); }

  const other = [0, 1, 2].find((k) => k !== old && k !== newPrimary);
  await waitFor('row 2 on the other standby', async () => (await valueOn(other, 'select v from fo_t where id = 2')) === 'after failover');
  const st = await cluster.status();
  assert.equal(st.nodes[old].role, 'down');
  assert.equal(st.nodes[other].role, 'standby');
  assert.ok(st.replication.some((x) => x.name === `node${other}` && x.state === 'streaming' && ['sync', 'quorum'].includes(x.sync_state)));
});

test('heal: back to one primary and two streaming standbys', async () => {
  const p = cluster.primaryIndex();
  await cluster.heal();
  const st = await assertHealthy();
  assert.equal(st.primary, p);
  // every node has all the data
  for (const k of [0, 1, 2]) {
    await waitFor(`rows on node${k}`, async () => (await valueOn(k, 'select count(*) from fo_t')) === '2');
  }
});

test('failover(fence) + heal', async () => {
  const old = cluster.primaryIndex();
  const { oldPrimary, newPrimary } = await cluster.failover({ mode: 'fence' });
  assert.equal(oldPrimary, old);
  assert.notEqual(newPrimary, old);
  const st = await cluster.status();
  assert.equal(st.nodes[old].role, 'primary'); // still running, but fenced
  assert.equal(st.nodes[old].readOnly, true);
  assert.equal(st.primary, newPrimary);
  await assert.rejects(valueOn(old, "insert into fo_t values (3, 'x') returning id"), (e) => e.code === '25006');
  assert.equal(await valueOn(newPrimary, "insert into fo_t values (3, 'fenced failover') returning id"), '3');
  await cluster.heal();
  await assertHealthy();
  await waitFor('row 3 on the old primary', async () => (await valueOn(old, 'select v from fo_t where id = 3')) === 'fenced failover');
});

const rootSkip = (!local && 'needs the harness\'s own cluster') || (notRoot && 'partition needs root (iptables)');

test('partition: a new connect and an open session get no answer (no RST, no FIN); healPartition restores both', { skip: rootSkip }, async (t) => {
  const k = standbyIndex();
  const { host, port } = cluster.node(k);
  const s = await cluster.admin(k);
  const raw = [];
  try {
    assert.equal(await s.value('select 1'), '1');
    await cluster.partition(k);
    assert.equal(cluster.isPartitioned(k), true);
    assert.equal(ourRules(`${cluster.tag}-node${k}`).length >= 2, true);
    const sock = net.connect(port, host);
    raw.push(sock);
    const w = watch(sock);
    const sock6 = cluster.ipv6 ? net.connect(port, '::1') : null;
    const w6 = sock6 && watch(sock6);
    if (sock6) raw.push(sock6);
    const pending = s.query('select 2 as x');
    assert.equal(await within(pending, 1000), 'timeout', 'the open session got an answer through the partition');
    assert.deepEqual(w.events, [], 'a new connect completed or failed through the partition');
    if (w6) assert.deepEqual(w6.events, [], 'a new connect to [::1] completed or failed through the partition');
    assert.equal(s.closed, false);
    const healed = Date.now();
    await cluster.healPartition(k);
    assert.deepEqual(ourRules(`${cluster.tag}-node${k}`), []);
    assert.equal((await pending).rows[0].x, '2'); // the same session, at its next retransmission
    t.diagnostic(`open session answered ${Date.now() - healed}ms after healPartition`);
    assert.equal(await valueOn(k, 'select 3'), '3'); // and new connections work
  } finally {
    await cluster.healPartition(k);
    for (const r of raw) r.destroy();
    await s.end();
  }
});

test('freeze: TCP connects still complete (kernel alive) but nothing answers; thaw restores', { skip: !local && 'needs the harness\'s own cluster' }, async () => {
  const k = standbyIndex();
  const { host, port } = cluster.node(k);
  const s = await cluster.admin(k);
  const raw = [];
  try {
    assert.equal(await s.value('select 1'), '1');
    await cluster.freeze(k);
    assert.equal(cluster.isFrozen(k), true);
    const sock = net.connect(port, host);
    raw.push(sock);
    const w = watch(sock);
    sock.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])); // SSLRequest: 'N' or 'S' if alive
    const pending = s.query('select 2 as x');
    assert.equal(await within(pending, 1000), 'timeout', 'a frozen backend answered');
    assert.deepEqual(w.events, ['connect'], 'the kernel completed the handshake; the postmaster said nothing');
    await cluster.thaw(k);
    assert.equal(cluster.isFrozen(k), false);
    assert.equal((await pending).rows[0].x, '2');
    await waitFor('the postmaster to answer the SSLRequest', () => w.data.length === 1, 5000);
    assert.equal(w.data.toString(), 'N');
  } finally {
    await cluster.thaw(k);
    for (const r of raw) r.destroy();
    await s.end();
  }
});

// Both partition and freeze failovers leave the old primary running and unreachable; heal()
// must bring it back as a standby, never as a second writable primary.
async function faultedFailover(t, mode) {
  const old = cluster.primaryIndex();
  await valueOn(old, 'create table if not exists fo_t (id int primary key, v text)');
  assert.equal(await valueOn(old, `insert into fo_t values (10 + ${old}, 'before ${mode}') on conflict (id) do update set v = excluded.v returning v`), `before ${mode}`);
  const t0 = Date.now();
  const { oldPrimary, newPrimary, electedAt } = await cluster.failover({ mode });
  try {
    assert.equal(oldPrimary, old);
    assert.notEqual(newPrimary, old);
    assert.ok(electedAt >= t0 && electedAt <= Date.now(), `electedAt ${electedAt}`);
    t.diagnostic(`new primary writable ${electedAt - t0}ms after failover({ mode: '${mode}' }) began`);
    if (mode === 'partition') assert.equal(cluster.isPartitioned(old), true);
    else assert.equal(cluster.isFrozen(old), true);
    assert.equal(cluster.isRunning(old), true);
    await assert.rejects(cluster.admin(old, { connectTimeout: 300 }), (e) => e.code === 'ETIMEDOUT');
    assert.equal(await valueOn(newPrimary, `select v from fo_t where id = 10 + ${old}`), `before ${mode}`);
    assert.equal(await valueOn(newPrimary, "insert into fo_t values (20, 'after') on conflict (id) do update set v = excluded.v returning v"), 'after');

    const h0 = Date.now();
    await cluster.heal();
    t.diagnostic(`heal took ${Date.now() - h0}ms`);
    const st = await assertHealthy();
    assert.equal(st.primary, newPrimary);
    assert.equal(st.nodes[old].role, 'standby');
    assert.equal(cluster.isPartitioned(old) || cluster.isFrozen(old), false);
    assert.deepEqual(ourRules(cluster.tag), []);
    await waitFor('the new row on the old primary', async () => (await valueOn(old, 'select v from fo_t where id = 20')) === 'after');
  } finally {
    // Undo the fault if heal() did not run: stopped first, so it cannot come back writable.
    if (cluster.isFrozen(old) || cluster.isPartitioned(old)) {
      await cluster.stop(old, 'immediate');
      await cluster.healPartition(old);
    }
  }
}

test('failover(partition): new primary elected; heal() makes the old one a streaming standby', { skip: rootSkip }, (t) => faultedFailover(t, 'partition'));
test('failover(freeze): new primary elected; heal() makes the old one a streaming standby', { skip: !local && 'needs the harness\'s own cluster' }, (t) => faultedFailover(t, 'freeze'));

// ---- faultproxy ----------------------------------------------------------------------------
async function echoServer() {
  const srv = { received: 0, chunks: [], sockets: new Set() };
  srv.server = net.createServer((c) => {
    c.setNoDelay(true);
    srv.sockets.add(c);
    c.on('error', () => {});
    c.on('close', () => srv.sockets.delete(c));
    c.on('data', (d) => { srv.received += d.length; srv.chunks.push(d.length); c.write(d); });
  });
  await new Promise((r) => srv.server.listen(0, '127.0.0.1', r));
  srv.port = srv.server.address().port;
  srv.close = () => { for (const c of srv.sockets) c.destroy(); return new Promise((r) => srv.server.close(r)); };
  return srv;
}

async function connectTo(port) {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  const w = watch(sock);
  await waitFor('connect', () => w.events.includes('connect'), 2000);
  return { sock, w };
}

test('faultproxy: pass, latency and drip, through to the real server and to an echo server', async () => {
  const primary = cluster.node(cluster.primaryIndex());
  const pg = await startProxy({ target: primary });
  const echo = await echoServer();
  const p = await startProxy({ target: { host: '127.0.0.1', port: echo.port } });
  const socks = [];
  try {
    const c = await admin.connect({ host: '127.0.0.1', port: pg.port, user: 'app_scram', password: 'scram-pass', database: 'hyperion' });
    try {
      assert.equal(await c.value('select inet_server_port()'), String(primary.port));
      pg.setMode('latency', { ms: 150 });
      let t0 = Date.now();
      assert.equal(await c.value('select 1'), '1');
      assert.ok(Date.now() - t0 >= 290, `round trip ${Date.now() - t0}ms with 150ms each way`);
      pg.setMode('pass');
      t0 = Date.now();
      assert.equal(await c.value('select 1'), '1');
      assert.ok(Date.now() - t0 < 150, 'pass again');
    } finally { await c.end(); }

    const a = await connectTo(p.port);
    socks.push(a.sock);
    p.setMode('latency', { ms: 100 });
    const t0 = Date.now();
    a.sock.write('a'); a.sock.write('b'); await sleep(20); a.sock.write('c');
    await waitFor('abc echoed', () => a.w.data.length === 3, 3000);
    assert.equal(a.w.data.toString(), 'abc'); // order kept
    assert.ok(Date.now() - t0 >= 215, `echo after ${Date.now() - t0}ms with 100ms each way`);

    p.setMode('drip', { bytes: 5, ms: 15 });
    a.w.data = Buffer.alloc(0);
    a.w.chunks = [];
    echo.chunks = [];
    const t1 = Date.now();
    a.sock.write('x'.repeat(40));
    await waitFor('40 bytes echoed', () => a.w.data.length === 40, 5000);
    const ms = Date.now() - t1;
    // The proxy writes 5 bytes every 15 ms; a reader that was busy for longer (a loaded
    // machine) reads two or more drips at once, so sizes are multiples of 5, not 5 each
    // (CI saw 5,10,5,... once). More than one read on each side, and the time it took,
    // show the pacing.
    const dripped = (chunks) => chunks.length > 1 && chunks.every((n) => n % 5 === 0);
    assert.ok(dripped(echo.chunks) && dripped(a.w.chunks), `chunks ${echo.chunks} / ${a.w.chunks}`);
    assert.ok(ms >= 8 * 15, `40 bytes at 5 per 15ms took ${ms}ms`);
  } finally {
    for (const s of socks) s.destroy();
    await p.close();
    await pg.close();
    await echo.close();
  }
});

test('faultproxy: blackhole holds open and new connections silent; reset sends RST; close ends all', async () => {
  const echo = await echoServer();
  const p = await startProxy({ target: { host: '127.0.0.1', port: echo.port } });
  const socks = [];
  try {
    const a = await connectTo(p.port);
    socks.push(a.sock);
    a.sock.write('1');
    await waitFor('echo', () => a.w.data.toString() === '1', 2000);

    p.setMode('blackhole');
    const before = echo.received;
    a.sock.write('2');
    const b = await connectTo(p.port); // accepted: the proxy's kernel and process are there
    socks.push(b.sock);
    b.sock.write('3');
    await sleep(300);
    assert.equal(a.w.data.toString(), '1', 'no answer on an open connection');
    assert.deepEqual(b.w.events, ['connect'], 'no answer, no close on a new connection');
    assert.equal(echo.received, before, 'nothing forwarded');
    assert.equal(p.connections, 2);

    p.setMode('pass'); // what was held goes through
    await waitFor('held bytes delivered', () => a.w.data.toString() === '12' && b.w.data.toString() === '3', 2000);

    p.setMode('reset');
    await waitFor('RST on the open connections', () => a.w.events.includes('ECONNRESET') && b.w.events.includes('ECONNRESET'), 2000);
    const c = net.connect(p.port, '127.0.0.1');
    socks.push(c);
    const cw = watch(c);
    await waitFor('RST on a new connection', () => cw.events.includes('ECONNRESET'), 2000);
    assert.equal(p.connections, 0);

    p.setMode('pass');
    const d = await connectTo(p.port);
    socks.push(d.sock);
    await p.close();
    await waitFor('close() ends open connections', () => d.w.events.includes('close'), 2000);
    const e = net.connect(p.port, '127.0.0.1');
    const ew = watch(e);
    await waitFor('no listener after close()', () => ew.events.includes('ECONNREFUSED'), 2000);
  } finally {
    for (const s of socks) s.destroy();
    await p.close();
    await echo.close();
  }
});

test('a test process that exits, or is killed outright, leaves no cluster and no fault behind', async () => {
  // process.exit() runs the exit handler; SIGKILL skips it, and only the harness's watchdog can
  // clean up. Each child partitions (as root) and freezes its node first.
  const { spawn } = require('node:child_process');
  const fs = require('node:fs');
  const child = (how) => new Promise((resolve, reject) => {
    const script = `
      const { createCluster } = require(${JSON.stringify(require.resolve('./cluster'))});
      createCluster({ nodes: 1 }).then(async (c) => {
        if (${!notRoot}) await c.partition(0);
        await c.freeze(0);
        const rules = ${!notRoot} ? require('node:child_process').execFileSync('iptables', ['-w', '5', '-S', 'INPUT'], { encoding: 'utf8' }).split('\\n').filter((l) => l.includes(c.tag)).length : 0;
        console.log(JSON.stringify({ dir: c.baseDir, pid: c._pid(0), tag: c.tag, frozen: c.isFrozen(0), rules }));
        if (${JSON.stringify(how)} === 'kill') process.kill(process.pid, 'SIGKILL'); else process.exit(0);
      });
    `;
    const ch = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    ch.stdout.on('data', (d) => { out += d; });
    ch.stderr.on('data', (d) => { err += d; });
    ch.on('error', reject);
    ch.on('close', (code, signal) => {
      try { resolve({ code, signal, ...JSON.parse(out.trim().split('\n').pop()) }); } catch { reject(new Error(`child (${how}) ${signal || code}: ${err}`)); }
    });
  });
  const [killed, exited] = await Promise.all([child('kill'), child('exit')]);
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(exited.code, 0);
  for (const r of [killed, exited]) {
    assert.ok(r.pid > 0 && r.frozen);
    if (!notRoot) assert.ok(r.rules >= 2, `the child's partition rules: ${r.rules}`);
    // gone, or a zombie not yet reaped by init (it has exited)
    const gone = () => { try { return /\)\s+[ZX]/.test(fs.readFileSync(`/proc/${r.pid}/stat`, 'utf8')); } catch { return true; } };
    await waitFor('the postmaster to stop, the rules and the directory to go', () => gone() && !fs.existsSync(r.dir) && ourRules(r.tag).length === 0, 20000);
  }
});
